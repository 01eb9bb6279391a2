//! `hearth keys ...`: the server's signing key.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Context;
use clap::Subcommand;
use hearth_config::Config;
use hearth_keys::SigningKey;
use ruma::ServerName;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Replace the signing key with a new one. The old key stays published as an old verify
    /// key (so what it signed still verifies); a running server signs with the new key from
    /// its next start.
    Rotate,
}

pub(crate) fn run(config_path: Option<&Path>, command: KeysCommand) -> anyhow::Result<()> {
    let config = Config::load(config_path, std::env::vars())?;
    let server_name = <&ServerName>::try_from(config.server.server_name.as_str())
        .context("server.server_name")?;
    let path = config.signing_key_path();
    match command {
        KeysCommand::Rotate => {
            let (new, old) = SigningKey::rotate(server_name, &path, SystemTime::now())?;
            println!(
                "rotated {}: signing with {} now, {old} kept as an old verify key in {}",
                path.display(),
                new.key_id(),
                hearth_keys::old_keys_path(&path).display()
            );
            println!("restart hearth serve to sign with the new key");
        }
    }
    Ok(())
}
