//! The typed sections of `hearth.toml`. Each field's doc comment is its documentation; the
//! defaults here are the ones `config/hearth.example.toml` shows.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub media: MediaConfig,
    pub federation: FederationConfig,
    pub registration: RegistrationConfig,
    pub rate_limits: RateLimitsConfig,
    pub logging: LoggingConfig,
    pub well_known: WellKnownConfig,
    pub rooms: RoomsConfig,
}

/// `[rooms]`: defaults for new rooms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// The room version `createRoom` uses when the client names none: 10, 11 or 12 (the spec
    /// asks for a stable version of at least 10; clients may still ask for any of 1 to 12).
    pub default_version: String,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        Self {
            default_version: "12".to_owned(),
        }
    }
}

/// `[server]`: identity and the client listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The server name: the part after the colon in `@user:server_name`. Cannot change later.
    pub server_name: String,
    /// Address the client-server API listens on.
    pub listen: SocketAddr,
    /// Directory for everything Hearth keeps on disk unless a more specific path is set.
    pub data_dir: PathBuf,
    /// The ed25519 signing key file. Default: `<data_dir>/signing.key`.
    pub signing_key: Option<PathBuf>,
    /// The hardware this runs on, which sets costs and pool sizes: `pi5`, `small-vps` or
    /// `8vcpu`.
    pub profile: HardwareProfile,
    /// The most client connections open at once; more are refused at once with 503. Unset: the
    /// profile's number. Either way it stays below the process's open-file limit, with a reserve
    /// for the database and the refusals themselves.
    pub max_connections: Option<u32>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (IP addresses or CIDR ranges, e.g.
    /// `["127.0.0.1", "10.0.0.0/8"]`). Per-address rate limits then count the client's address
    /// as the nearest untrusted hop names it; from anywhere else the header is ignored.
    pub trusted_proxies: Vec<String>,
}

/// Tuned settings for a class of machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HardwareProfile {
    /// Raspberry Pi 5 (4 cores, 4-8 GiB): frugal memory per password hash.
    Pi5,
    /// A 1-2 vCPU virtual machine.
    #[default]
    SmallVps,
    /// An 8 vCPU machine: stronger password hashing, more parallel work.
    #[serde(rename = "8vcpu")]
    EightVcpu,
}

/// argon2id costs: memory in KiB, iterations, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Costs {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl HardwareProfile {
    /// Client connections open at once when `[server] max_connections` is unset.
    pub fn max_connections(self) -> u32 {
        match self {
            Self::Pi5 => 1_000,
            Self::SmallVps => 2_000,
            Self::EightVcpu => 8_000,
        }
    }

    /// Parsed events kept in memory, shared by every sync (about 1-2 KiB each).
    pub fn pdu_cache_entries(self) -> usize {
        match self {
            Self::Pi5 => 2_048,
            Self::SmallVps => 4_096,
            Self::EightVcpu => 16_384,
        }
    }

    /// Password hashing costs: never below OWASP's argon2id minimum (19 MiB, 2 passes).
    pub fn argon2(self) -> Argon2Costs {
        match self {
            Self::Pi5 | Self::SmallVps => Argon2Costs {
                memory_kib: 19 * 1024,
                iterations: 2,
                parallelism: 1,
            },
            Self::EightVcpu => Argon2Costs {
                memory_kib: 64 * 1024,
                iterations: 3,
                parallelism: 2,
            },
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            server_name: "localhost".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8008)),
            data_dir: PathBuf::from("hearth-data"),
            signing_key: None,
            profile: HardwareProfile::default(),
            max_connections: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Which database engine holds Hearth's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseBackend {
    /// Embedded SQLite file; needs no database server.
    #[default]
    Sqlite,
    /// A PostgreSQL server, for larger installs.
    Postgres,
}

/// SQLite's `synchronous` setting. `full` survives a power cut; `normal` survives a process kill
/// but may lose the last commits on power loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    #[default]
    Full,
    Normal,
}

/// `[database]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite` (default) or `postgres`.
    pub backend: DatabaseBackend,
    /// SQLite database file. Default: `<data_dir>/hearth.db`.
    pub sqlite_path: Option<PathBuf>,
    /// SQLite durability; see [`SqliteSynchronous`].
    pub sqlite_synchronous: SqliteSynchronous,
    /// PostgreSQL connection URL, e.g. `postgres://hearth@localhost/hearth`. Required for `postgres`.
    pub url: Option<String>,
    /// Maximum pooled connections for readers.
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            backend: DatabaseBackend::Sqlite,
            sqlite_path: None,
            sqlite_synchronous: SqliteSynchronous::Full,
            url: None,
            max_connections: 8,
        }
    }
}

/// `[media]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Directory for the local media store. Default: `<data_dir>/media`.
    pub path: Option<PathBuf>,
}

/// `[federation]`: which servers this one federates with, and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FederationConfig {
    /// `off`, `allowlist` (the default: only the servers in `allow`) or `open`. Unset, it
    /// follows `enabled` if that is set (`false`: `off`), else `allowlist`.
    pub mode: Option<FederationMode>,
    /// The old name of `mode`, kept working for one release: `false` is `off`, `true` is
    /// `allowlist`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Where the federation API listens, over TLS. Unset: no federation listener.
    pub listen: Option<SocketAddr>,
    /// The listener's certificate chain (PEM). Required with `listen`.
    pub tls_certificate: Option<PathBuf>,
    /// The listener's private key (PEM). Required with `listen`.
    pub tls_private_key: Option<PathBuf>,
    /// An extra CA bundle (PEM) trusted for outbound connections, besides the system roots.
    pub ca_file: Option<PathBuf>,
    /// Partner servers allowed to federate with this one. Empty means nobody.
    pub allow: Vec<String>,
    /// Server name -> `host:port`, bypassing discovery (private deployments, tests).
    pub overrides: std::collections::BTreeMap<String, String>,
}

/// `[federation] mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FederationMode {
    /// No federation at all.
    Off,
    /// Only with the servers in `allow`, on every path.
    #[default]
    Allowlist,
    /// With any server.
    Open,
}

impl FederationConfig {
    /// The mode in force, `mode` winning over its old name `enabled`.
    pub fn effective_mode(&self) -> FederationMode {
        match (self.mode, self.enabled) {
            (Some(mode), _) => mode,
            (None, Some(false)) => FederationMode::Off,
            (None, _) => FederationMode::Allowlist,
        }
    }
}

/// `[registration]`. Closed by default: operators create accounts with `hearth admin
/// create-user`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Let anyone reach `/register` and create an account (with `m.login.dummy`).
    pub enabled: bool,
    /// With `enabled`: registering needs a registration token (`m.login.registration_token`)
    /// from `hearth admin registration-token create`.
    pub token_required: bool,
    /// Let anyone create a guest account (`kind=guest`, no password), whether or not
    /// `enabled` is set. Guests may only call the spec's guest endpoints, and join only rooms
    /// whose `m.room.guest_access` is `can_join`.
    pub guests: bool,
}

/// A token bucket: `per_second` requests on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained rate, in requests per second. Must be positive.
    pub per_second: f64,
    /// How many requests may come at once after a quiet spell. At least 1.
    pub burst: u32,
}

/// `[rate_limits]`: per client (the user, or the IP address before login), answered with 429
/// `M_LIMIT_EXCEEDED` when exceeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Failed `POST /login` attempts, per IP address (successful logins cost nothing, so that
    /// an attacker behind a shared address cannot lock its other users out).
    pub login: RateLimit,
    /// Failed `POST /login` attempts, per account, wherever they come from.
    pub login_account: RateLimit,
    /// `POST /register` and the registration token check, per IP address.
    pub register: RateLimit,
    /// Sending events (messages, state, creating rooms), per user.
    pub send: RateLimit,
    /// Membership changes (join, leave, invite, kick, ban, knock), per user.
    pub membership: RateLimit,
    /// Membership changes, per room (a crowd of accounts churning one room).
    pub room_membership: RateLimit,
    /// Profile changes, per user: each one writes a member event in every room of the user.
    pub profile: RateLimit,
    /// Account data, tags, filters, push rules, aliases and the room directory, per user.
    pub settings: RateLimit,
    /// Typing notices, read receipts, read markers and presence, per user.
    pub ephemeral: RateLimit,
}

impl RateLimitsConfig {
    /// Every limit, for setting them all at once (tests and benchmarks lift them).
    pub fn every_mut(&mut self) -> [&mut RateLimit; 9] {
        [
            &mut self.login,
            &mut self.login_account,
            &mut self.register,
            &mut self.send,
            &mut self.membership,
            &mut self.room_membership,
            &mut self.profile,
            &mut self.settings,
            &mut self.ephemeral,
        ]
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        Self {
            login: RateLimit {
                per_second: 1.0,
                burst: 30,
            },
            register: RateLimit {
                per_second: 0.2,
                burst: 10,
            },
            send: RateLimit {
                per_second: 10.0,
                burst: 50,
            },
            login_account: RateLimit {
                per_second: 0.1,
                burst: 5,
            },
            membership: RateLimit {
                per_second: 1.0,
                burst: 30,
            },
            room_membership: RateLimit {
                per_second: 10.0,
                burst: 100,
            },
            profile: RateLimit {
                per_second: 0.1,
                burst: 10,
            },
            settings: RateLimit {
                per_second: 5.0,
                burst: 60,
            },
            ephemeral: RateLimit {
                per_second: 10.0,
                burst: 60,
            },
        }
    }
}

/// `[logging]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A `tracing` filter, e.g. `info` or `hearth=debug,info`. `RUST_LOG` wins if set.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
        }
    }
}

/// `[well_known]`: what `/.well-known/matrix/client` and `/.well-known/matrix/server` answer
/// when Hearth serves the server name's domain itself. Unset keys answer 404 (no delegation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WellKnownConfig {
    /// The client-server API base URL clients should use (`m.homeserver.base_url`), e.g.
    /// `https://matrix.example.org`.
    pub client_base_url: Option<String>,
    /// Where other servers reach this one (`m.server`): `host[:port]`, e.g.
    /// `matrix.example.org:443`.
    pub server: Option<String>,
    /// `/.well-known/matrix/support`: a page where users get help, e.g.
    /// `https://example.org/help`.
    pub support_page: Option<String>,
    /// `/.well-known/matrix/support`: the server's administrators, as Matrix user ids
    /// (`@admin:example.org`) or email addresses.
    pub admin_contacts: Vec<String>,
    /// `/.well-known/matrix/support`: whom to tell about security issues, likewise.
    pub security_contacts: Vec<String>,
}

impl Config {
    /// The SQLite file, resolved against `data_dir`.
    pub fn sqlite_path(&self) -> PathBuf {
        self.database
            .sqlite_path
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("hearth.db"))
    }

    /// The media directory, resolved against `data_dir`.
    pub fn media_path(&self) -> PathBuf {
        self.media
            .path
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("media"))
    }

    /// The signing key file, resolved against `data_dir`.
    pub fn signing_key_path(&self) -> PathBuf {
        self.server
            .signing_key
            .clone()
            .unwrap_or_else(|| self.server.data_dir.join("signing.key"))
    }
}
