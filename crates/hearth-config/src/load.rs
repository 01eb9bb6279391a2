//! Loading: file + environment overrides -> checked [`Config`], with every problem reported at once.
//!
//! serde stops at the first bad field, so each key is first checked on its own (deserialising its
//! section from a one-key table, every other field defaulted); only a fully clean table is then
//! deserialised as a whole.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::sections::WellKnownConfig;
use crate::sections::{
    Config, DatabaseBackend, DatabaseConfig, FederationConfig, FederationMode, LoggingConfig,
    MediaConfig, RateLimitsConfig, RegistrationConfig, RoomsConfig, ServerConfig,
};

/// Environment variables `HEARTH_SECTION__KEY` override `[section] key`.
pub const ENV_PREFIX: &str = "HEARTH_";

/// Where a setting came from, so errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// An environment variable: its name and raw text.
    Env {
        var: String,
        raw: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Env { var, .. } => write!(f, "environment variable {var}"),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `section.key` (or just `section`, or the file name for a syntax error).
    pub key: String,
    pub source: Option<Source>,
    pub message: String,
}

/// Every problem found, in key order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration ({} problem(s)):",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  - {}", p.key)?;
            if let Some(source) = &p.source {
                write!(f, " (from {source})")?;
            }
            write!(f, ": {}", p.message)?;
        }
        Ok(())
    }
}

type Origins = BTreeMap<(String, String), Source>;

/// A section's name and the check that deserialises one key of it.
type SectionCheck = (&'static str, fn(&Table) -> Result<(), String>);

const SECTIONS: &[SectionCheck] = &[
    ("server", check_as::<ServerConfig>),
    ("database", check_as::<DatabaseConfig>),
    ("media", check_as::<MediaConfig>),
    ("federation", check_as::<FederationConfig>),
    ("registration", check_as::<RegistrationConfig>),
    ("rooms", check_as::<RoomsConfig>),
    ("rate_limits", check_as::<RateLimitsConfig>),
    ("logging", check_as::<LoggingConfig>),
    ("well_known", check_as::<WellKnownConfig>),
];

fn check_as<T: DeserializeOwned>(table: &Table) -> Result<(), String> {
    Value::Table(table.clone())
        .try_into::<T>()
        .map(drop)
        .map_err(|e| e.message().to_owned())
}

impl Config {
    /// Load from an optional file plus the given environment (pass `std::env::vars()`).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, path) = match file {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => (text, Some(path.to_path_buf())),
                Err(e) => {
                    return Err(ConfigError {
                        problems: vec![Problem {
                            key: path.display().to_string(),
                            source: None,
                            message: format!("cannot read config file: {e}"),
                        }],
                    });
                }
            },
            None => (String::new(), None),
        };
        Self::from_toml(&text, path, env)
    }

    /// Parse TOML text (from `path`, if any) and apply environment overrides.
    pub fn from_toml(
        text: &str,
        path: Option<PathBuf>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file_label = path
            .as_ref()
            .map_or("<config>".to_owned(), |p| p.display().to_string());
        let mut table: Table = text.parse().map_err(|e: toml::de::Error| ConfigError {
            problems: vec![Problem {
                key: file_label.clone(),
                source: None,
                message: format!("not valid TOML: {}", e.message()),
            }],
        })?;

        let mut problems = Vec::new();
        let mut origins = Origins::new();
        if let Some(path) = &path {
            for (section, value) in &table {
                if let Value::Table(keys) = value {
                    for key in keys.keys() {
                        origins.insert((section.clone(), key.clone()), Source::File(path.clone()));
                    }
                }
            }
        }
        apply_env(&mut table, &mut origins, &mut problems, env);
        check_keys(&mut table, &origins, &mut problems);
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }

        let config: Config = Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError {
                problems: vec![Problem {
                    key: file_label,
                    source: None,
                    message: e.to_string(),
                }],
            })?;
        config.validate(&origins)?;
        Ok(config)
    }

    /// Rules that involve more than one key's type.
    fn validate(&self, origins: &Origins) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem = |section: &str, key: &str, message: String| {
            problems.push(Problem {
                key: format!("{section}.{key}"),
                source: origins.get(&(section.to_owned(), key.to_owned())).cloned(),
                message,
            });
        };
        if !["10", "11", "12"].contains(&self.rooms.default_version.as_str()) {
            problem("rooms", "default_version", "must be 10, 11 or 12".into());
        }
        if let Err(message) = check_server_name(&self.server.server_name) {
            problem("server", "server_name", message);
        }
        if self.database.backend == DatabaseBackend::Postgres {
            match &self.database.url {
                None => problem(
                    "database",
                    "url",
                    "required when backend = \"postgres\"".into(),
                ),
                Some(url)
                    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") =>
                {
                    problem(
                        "database",
                        "url",
                        "must start with postgres:// or postgresql://".into(),
                    )
                }
                Some(_) => {}
            }
        }
        for proxy in &self.server.trusted_proxies {
            if let Err(message) = proxy.parse::<crate::Cidr>() {
                problem("server", "trusted_proxies", message);
            }
        }
        if self.server.max_connections == Some(0) {
            problem("server", "max_connections", "must be at least 1".into());
        }
        if self.database.max_connections == 0 {
            problem("database", "max_connections", "must be at least 1".into());
        }
        let federation = &self.federation;
        if let (Some(mode), Some(enabled)) = (federation.mode, federation.enabled)
            && (mode == FederationMode::Off) == enabled
        {
            problem(
                "federation",
                "enabled",
                "contradicts mode; enabled is mode's old name, leave it out".into(),
            );
        }
        if federation.listen.is_some() && federation.effective_mode() != FederationMode::Off {
            for (key, value) in [
                ("tls_certificate", &federation.tls_certificate),
                ("tls_private_key", &federation.tls_private_key),
            ] {
                if value.is_none() {
                    problem(
                        "federation",
                        key,
                        "required with listen (the federation listener speaks TLS)".into(),
                    );
                }
            }
        }
        for (name, target) in &federation.overrides {
            if let Err(message) = check_server_name(name) {
                problem("federation", &format!("overrides.{name}"), message);
            } else if check_server_name(target).is_err() || !has_port(target) {
                problem(
                    "federation",
                    &format!("overrides.{name}"),
                    format!("`{target}` is not host:port"),
                );
            }
        }
        for (i, name) in self.federation.allow.iter().enumerate() {
            if let Err(message) = check_server_name(name) {
                problem("federation", &format!("allow[{i}]"), message);
            }
        }
        for (key, limit) in [
            ("login", self.rate_limits.login),
            ("register", self.rate_limits.register),
            ("send", self.rate_limits.send),
        ] {
            if !(limit.per_second.is_finite() && limit.per_second > 0.0) {
                problem(
                    "rate_limits",
                    key,
                    "per_second must be a positive number".into(),
                );
            }
            if limit.burst == 0 {
                problem("rate_limits", key, "burst must be at least 1".into());
            }
        }
        if let Some(url) = &self.well_known.client_base_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problem(
                "well_known",
                "client_base_url",
                "must start with https:// or http://".into(),
            );
        }
        if let Some(server) = &self.well_known.server
            && let Err(message) = check_server_name(server)
        {
            problem("well_known", "server", message);
        }
        if let Some(page) = &self.well_known.support_page
            && !(page.starts_with("https://") || page.starts_with("http://"))
        {
            problem(
                "well_known",
                "support_page",
                "must start with https:// or http://".into(),
            );
        }
        for (key, contacts) in [
            ("admin_contacts", &self.well_known.admin_contacts),
            ("security_contacts", &self.well_known.security_contacts),
        ] {
            for contact in contacts {
                let valid = if let Some(id) = contact.strip_prefix('@') {
                    id.split_once(':').is_some_and(|(local, server)| {
                        !local.is_empty()
                            && !local.contains(char::is_whitespace)
                            && check_server_name(server).is_ok()
                    })
                } else {
                    contact.contains('@') && !contact.contains(char::is_whitespace)
                };
                if !valid {
                    problem(
                        "well_known",
                        key,
                        format!("{contact:?} is neither a Matrix user id nor an email address"),
                    );
                }
            }
        }
        if self.logging.level.trim().is_empty() {
            problem("logging", "level", "must not be empty".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { problems })
        }
    }
}

/// `HEARTH_SECTION__KEY=value`: the value is read as a TOML value (`true`, `8`, `["a", "b"]`),
/// and as a plain string when it is not one.
fn apply_env(
    table: &mut Table,
    origins: &mut Origins,
    problems: &mut Vec<Problem>,
    env: impl IntoIterator<Item = (String, String)>,
) {
    for (var, raw) in env {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let Some((section, key)) = rest.split_once("__") else {
            continue;
        };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let source = Source::Env {
            var: var.clone(),
            raw: raw.clone(),
        };
        let value = format!("v = {raw}")
            .parse::<Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.clone()));
        match table
            .entry(section.clone())
            .or_insert_with(|| Value::Table(Table::new()))
        {
            Value::Table(keys) => {
                keys.insert(key.clone(), value);
                origins.insert((section, key), source);
            }
            _ => problems.push(Problem {
                key: section,
                source: Some(source),
                message: "is not a section in the config file, cannot set a key in it".into(),
            }),
        }
    }
}

fn check_keys(table: &mut Table, origins: &Origins, problems: &mut Vec<Problem>) {
    for (section, value) in table.iter_mut() {
        let Some((_, check)) = SECTIONS.iter().find(|(name, _)| name == section) else {
            let known: Vec<_> = SECTIONS.iter().map(|(n, _)| *n).collect();
            problems.push(Problem {
                key: section.clone(),
                source: first_origin(origins, section),
                message: format!("unknown section; known sections: {}", known.join(", ")),
            });
            continue;
        };
        let Value::Table(keys) = value else {
            problems.push(Problem {
                key: section.clone(),
                source: None,
                message: "must be a table ([section])".into(),
            });
            continue;
        };
        for (key, value) in keys.iter_mut() {
            let origin = origins.get(&(section.clone(), key.clone())).cloned();
            let one = |v: Value| check(&Table::from_iter([(key.clone(), v)]));
            let mut result = one(value.clone());
            // An env value that happened to parse as TOML (e.g. "8008") may be meant as text.
            if let (Err(_), Some(Source::Env { raw, .. })) = (&result, &origin)
                && !value.is_str()
                && one(Value::String(raw.clone())).is_ok()
            {
                *value = Value::String(raw.clone());
                result = Ok(());
            }
            if let Err(message) = result {
                problems.push(Problem {
                    key: format!("{section}.{key}"),
                    source: origin,
                    message,
                });
            }
        }
    }
}

fn first_origin(origins: &Origins, section: &str) -> Option<Source> {
    origins
        .iter()
        .find(|((s, _), _)| s == section)
        .map(|(_, source)| source.clone())
}

/// The server name grammar from the spec's appendices: `host[:port]`, host a DNS name, an IPv4
/// literal or a bracketed IPv6 literal.
/// Whether a (valid) server name names a port.
fn has_port(name: &str) -> bool {
    match name.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, after)| after.starts_with(':')),
        None => name.contains(':'),
    }
}

fn check_server_name(name: &str) -> Result<(), String> {
    let invalid = |why: &str| Err(format!("`{name}` is not a valid server name: {why}"));
    if name.is_empty() || name.len() > 255 {
        return invalid("must be 1 to 255 characters");
    }
    let (host, port) = if let Some(rest) = name.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return invalid("unterminated IPv6 literal");
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return invalid("bad IPv6 literal");
        }
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return invalid("unexpected text after the IPv6 literal"),
        };
        (None, port)
    } else {
        match name.rsplit_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(name), None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return invalid("port must be 1 to 5 digits");
    }
    if let Some(host) = host
        && (host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        return invalid("host may contain only letters, digits, '-' and '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
