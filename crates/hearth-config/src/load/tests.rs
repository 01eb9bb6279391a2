use std::path::PathBuf;

use super::*;
use crate::sections::SqliteSynchronous;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn empty_config_is_the_embedded_default() {
    let config = Config::from_toml("", None, env(&[])).expect("defaults are valid");
    assert_eq!(config, Config::default());
    assert_eq!(config.server.server_name, "localhost");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8008");
    assert_eq!(config.database.backend, DatabaseBackend::Sqlite);
    assert_eq!(config.sqlite_path(), PathBuf::from("hearth-data/hearth.db"));
    assert_eq!(
        config.federation.effective_mode(),
        FederationMode::Allowlist
    );
    assert!(config.federation.listen.is_none() && config.federation.allow.is_empty());
}

#[test]
fn env_overrides_file_and_parses_types() {
    let text = "[server]\nserver_name = \"example.org\"\nlisten = \"0.0.0.0:8008\"\n";
    let config = Config::from_toml(
        text,
        Some("hearth.toml".into()),
        env(&[
            ("HEARTH_SERVER__LISTEN", "127.0.0.1:9000"),
            ("HEARTH_DATABASE__MAX_CONNECTIONS", "3"),
            ("HEARTH_DATABASE__SQLITE_SYNCHRONOUS", "normal"),
            (
                "HEARTH_FEDERATION__ALLOW",
                "[\"a.example\", \"b.example:8448\"]",
            ),
            ("HEARTH_TEST_SOMETHING", "ignored: no double underscore"),
            ("PATH", "/usr/bin"),
        ]),
    )
    .expect("valid");
    assert_eq!(config.server.server_name, "example.org");
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(config.database.max_connections, 3);
    assert_eq!(
        config.database.sqlite_synchronous,
        SqliteSynchronous::Normal
    );
    assert_eq!(config.federation.allow, vec!["a.example", "b.example:8448"]);
}

#[test]
fn numeric_looking_env_value_can_be_a_string() {
    let config =
        Config::from_toml("", None, env(&[("HEARTH_SERVER__SERVER_NAME", "1234")])).expect("valid");
    assert_eq!(config.server.server_name, "1234");
}

#[test]
fn every_bad_key_is_reported_with_its_name() {
    let text = r#"
[server]
listen = "not an address"
server_nme = "typo.example"

[database]
backend = "oracle"
max_connections = -1

[bogus]
x = 1
"#;
    let err = Config::from_toml(
        text,
        Some("hearth.toml".into()),
        env(&[("HEARTH_FEDERATION__ENABLED", "maybe")]),
    )
    .expect_err("invalid");
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    for expected in [
        "server.listen",
        "server.server_nme",
        "database.backend",
        "database.max_connections",
        "bogus",
        "federation.enabled",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
    }
    let shown = err.to_string();
    assert!(
        shown.contains("environment variable HEARTH_FEDERATION__ENABLED"),
        "{shown}"
    );
    assert!(shown.contains("(from hearth.toml)"), "{shown}");
}

#[test]
fn cross_key_rules_are_all_reported() {
    let text = r#"
[server]
server_name = "bad name!"
[database]
backend = "postgres"
max_connections = 0
[federation]
mode = "off"
enabled = true
listen = "0.0.0.0:8448"
allow = ["ok.example", "not ok"]
overrides = { "b.example" = "127.0.0.1", "c.example" = "127.0.0.1:8449" }
"#;
    let err = Config::from_toml(text, None, env(&[])).expect_err("invalid");
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.server_name",
            "database.url",
            "database.max_connections",
            "federation.enabled",
            "federation.overrides.b.example",
            "federation.allow[1]"
        ]
    );
}

#[test]
fn rate_limits_from_file_and_env_are_checked() {
    let text = "[rate_limits]\nlogin = { per_second = 2, burst = 4 }\n";
    let config = Config::from_toml(
        text,
        None,
        env(&[(
            "HEARTH_RATE_LIMITS__SEND",
            "{ per_second = 0.25, burst = 3 }",
        )]),
    )
    .expect("valid");
    assert_eq!(config.rate_limits.login.per_second, 2.0);
    assert_eq!(config.rate_limits.login.burst, 4);
    assert_eq!(config.rate_limits.send.per_second, 0.25);
    assert_eq!(
        config.rate_limits.register,
        RateLimitsConfig::default().register
    );

    let bad = "[rate_limits]\nlogin = { per_second = 0, burst = 4 }\nsend = { per_second = 1, burst = 0 }\nregister = { per_second = 1 }\n";
    let err = Config::from_toml(bad, None, env(&[])).expect_err("invalid");
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["rate_limits.register"], "{err}");
    let bad = "[rate_limits]\nlogin = { per_second = 0, burst = 4 }\nsend = { per_second = 1, burst = 0 }\n";
    let err = Config::from_toml(bad, None, env(&[])).expect_err("invalid");
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["rate_limits.login", "rate_limits.send"], "{err}");
}

#[test]
fn syntax_error_names_the_file() {
    let err = Config::from_toml("[server\n", Some("/etc/hearth.toml".into()), env(&[]))
        .expect_err("invalid");
    assert_eq!(err.problems[0].key, "/etc/hearth.toml");
}

#[test]
fn server_names() {
    for ok in [
        "localhost",
        "example.org",
        "example.org:8448",
        "1.2.3.4:5",
        "[::1]",
        "[::1]:8448",
    ] {
        assert!(check_server_name(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "exa mple.org",
        "example.org:",
        "example.org:123456",
        "[::1",
        "[zz]",
        "[::1]x",
    ] {
        assert!(check_server_name(bad).is_err(), "{bad}");
    }
}

#[test]
fn example_config_is_true() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/hearth.example.toml"
    );
    let text = std::fs::read_to_string(path).expect("config/hearth.example.toml exists");
    let config = Config::from_toml(&text, Some(path.into()), env(&[])).expect("example is valid");
    // The example documents the defaults: every value in it is the default value.
    assert_eq!(config, Config::default());
    // And it mentions every key, so the documentation is complete.
    let table: Table = text
        .lines()
        .map(|l| {
            l.strip_prefix("# ")
                .filter(|l| l.contains(" = "))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
        .parse()
        .expect("uncommented example parses");
    let full = Value::try_from(Config::default()).expect("serialises");
    let Value::Table(full) = full else {
        unreachable!("a struct serialises to a table")
    };
    for (section, keys) in &full {
        let Value::Table(keys) = keys else { continue };
        for key in keys.keys() {
            assert!(
                table.get(section).and_then(|s| s.get(key)).is_some(),
                "{section}.{key} is not documented in the example"
            );
        }
    }
}

#[test]
fn well_known_is_optional_and_checked() {
    let config = Config::from_toml("", None, env(&[])).expect("valid");
    assert_eq!(config.well_known.client_base_url, None);
    assert_eq!(config.well_known.server, None);
    let text = "[well_known]\nclient_base_url = \"https://matrix.example.org\"\n";
    let config = Config::from_toml(
        text,
        None,
        env(&[("HEARTH_WELL_KNOWN__SERVER", "matrix.example.org:443")]),
    )
    .expect("valid");
    assert_eq!(
        config.well_known.client_base_url.as_deref(),
        Some("https://matrix.example.org")
    );
    assert_eq!(
        config.well_known.server.as_deref(),
        Some("matrix.example.org:443")
    );
    let bad = "[well_known]\nclient_base_url = \"matrix.example.org\"\nserver = \"bad name:x\"\n";
    let err = Config::from_toml(bad, None, env(&[])).expect_err("invalid");
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["well_known.client_base_url", "well_known.server"],
        "{err}"
    );
}

#[test]
fn default_room_version_is_at_least_10() {
    let config =
        Config::from_toml("[rooms]\ndefault_version = \"11\"\n", None, env(&[])).expect("valid");
    assert_eq!(config.rooms.default_version, "11");
    for bad in ["9", "1", "13", "x"] {
        let err = Config::from_toml("", None, env(&[("HEARTH_ROOMS__DEFAULT_VERSION", bad)]))
            .expect_err(bad);
        assert_eq!(err.problems[0].key, "rooms.default_version", "{bad}");
    }
}

#[test]
fn federation_mode_and_its_old_name() {
    let mode = |text: &str| {
        Config::from_toml(text, None, env(&[]))
            .expect("valid")
            .federation
            .effective_mode()
    };
    assert_eq!(mode(""), FederationMode::Allowlist);
    assert_eq!(mode("[federation]\nenabled = false\n"), FederationMode::Off);
    assert_eq!(
        mode("[federation]\nenabled = true\n"),
        FederationMode::Allowlist
    );
    assert_eq!(
        mode("[federation]\nmode = \"open\"\n"),
        FederationMode::Open
    );

    // A listener speaks TLS: it needs its certificate and key.
    let err = Config::from_toml("[federation]\nlisten = \"0.0.0.0:8448\"\n", None, env(&[]))
        .expect_err("no certificate");
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["federation.tls_certificate", "federation.tls_private_key"]
    );

    // Overrides from the environment, as an inline table.
    let config = Config::from_toml(
        "",
        None,
        env(&[(
            "HEARTH_FEDERATION__OVERRIDES",
            r#"{ "b.test" = "127.0.0.1:8449" }"#,
        )]),
    )
    .expect("valid");
    assert_eq!(config.federation.overrides["b.test"], "127.0.0.1:8449");
}
