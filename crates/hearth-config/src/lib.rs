//! Hearth's configuration: one TOML file, typed sections with documented defaults,
//! `HEARTH_SECTION__KEY` environment overrides, and validation that reports every problem at once.
//!
//! Every key is optional; a missing file section means "all defaults". The defaults are the
//! embedded appliance: server name `localhost`, clients on `127.0.0.1:8008`, SQLite and media
//! in `./hearth-data`, federation off.

mod cidr;
mod load;
mod sections;

pub use cidr::Cidr;
pub use load::{ConfigError, ENV_PREFIX, Problem, Source};
pub use sections::WellKnownConfig;
pub use sections::{
    Argon2Costs, Config, DatabaseBackend, DatabaseConfig, FederationConfig, FederationMode,
    HardwareProfile, LoggingConfig, MediaConfig, RateLimit, RateLimitsConfig, RegistrationConfig,
    RoomsConfig, ServerConfig, SqliteSynchronous,
};
