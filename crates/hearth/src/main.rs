//! `hearth`: the Hearth homeserver binary.

mod admin;
mod init;
mod keys;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc rather than the system allocator: a homeserver builds and drops many small JSON
/// trees per request, and glibc's malloc took about a fifth of the CPU under sync load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hearth", version, about = "A lean Matrix homeserver appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a documented hearth.toml and a new signing key.
    Init {
        /// The server name, the part after the colon in @user:server_name. Cannot change later.
        #[arg(long)]
        server_name: String,
        /// Data directory for the database, media and signing key.
        #[arg(long, default_value = "hearth-data")]
        data: PathBuf,
        /// Where to write the config file.
        #[arg(long, default_value = "hearth.toml")]
        config: PathBuf,
    },
    /// Run the server. Without --config it runs on the embedded default in ./hearth-data.
    Serve {
        /// The config file (hearth.toml). Environment variables HEARTH_SECTION__KEY override it.
        #[arg(long, env = "HEARTH_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Operator tasks on the server's database (the server may be running).
    Admin {
        /// The config file, as for `serve`.
        #[arg(long, env = "HEARTH_CONFIG")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// The server's signing key.
    Keys {
        /// The config file, as for `serve`.
        #[arg(long, env = "HEARTH_CONFIG")]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init {
            server_name,
            data,
            config,
        } => init::run(&server_name, &data, &config),
        Command::Serve { config } => serve::run(config.as_deref()),
        Command::Admin { config, command } => admin::run(config.as_deref(), command),
        Command::Keys { config, command } => keys::run(config.as_deref(), command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e:#}");
            ExitCode::FAILURE
        }
    }
}
