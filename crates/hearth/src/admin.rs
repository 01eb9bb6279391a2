//! `hearth admin ...`: operator tasks that work on the database directly.

mod registration_token;

use std::path::Path;

use anyhow::Context;
use clap::Subcommand;
use hearth_accounts::{Accounts, DeviceRequest};
use hearth_config::Config;
use hearth_store::Store;
use ruma::OwnedServerName;

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Create a user account (registration may stay closed).
    CreateUser {
        /// The localpart: `alice` for @alice:server_name.
        name: String,
        /// The account's password.
        #[arg(long)]
        password: String,
        /// Make the user a server administrator.
        #[arg(long)]
        admin: bool,
    },
    /// Manage registration tokens (for `[registration] token_required`).
    #[command(subcommand)]
    RegistrationToken(registration_token::TokenCommand),
}

pub(crate) fn run(config_path: Option<&Path>, command: AdminCommand) -> anyhow::Result<()> {
    let config = Config::load(config_path, std::env::vars())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let server_name = OwnedServerName::try_from(config.server.server_name.as_str())
            .context("server.server_name")?;
        let store = Store::open(&config).await.context("opening the database")?;
        let accounts = Accounts::new(store, server_name, hearth::password_hashing(&config));
        match command {
            AdminCommand::CreateUser {
                name,
                password,
                admin,
            } => {
                let device = DeviceRequest {
                    inhibit_login: true,
                    ..DeviceRequest::default()
                };
                let registered = accounts
                    .register(&name, Some(&password), device, admin)
                    .await?;
                println!(
                    "created {}{}",
                    registered.user_id,
                    if admin { " (admin)" } else { "" }
                );
            }
            AdminCommand::RegistrationToken(command) => {
                registration_token::run(&config, &accounts, command).await?;
            }
        }
        anyhow::Ok(())
    })
}
