//! `hearth init`: a working config file and a signing key, ready for `hearth serve`.

use std::path::Path;

use anyhow::{Context, bail};
use hearth_config::Config;
use hearth_keys::SigningKey;
use ruma::ServerName;

const EXAMPLE: &str = include_str!("../../../config/hearth.example.toml");

pub(crate) fn run(server_name: &str, data: &Path, config_path: &Path) -> anyhow::Result<()> {
    if config_path.exists() {
        bail!(
            "{} exists already; refusing to overwrite it",
            config_path.display()
        );
    }
    let server = <&ServerName>::try_from(server_name)
        .with_context(|| format!("`{server_name}` is not a valid server name"))?;
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let data = std::fs::canonicalize(data)?;
    let text = render(server_name, &data)?;
    // Prove the file we are about to write is one `serve` accepts.
    let config = Config::from_toml(&text, Some(config_path.to_path_buf()), std::iter::empty())
        .context("generated config does not validate (this is a bug)")?;
    let key = SigningKey::generate(server)?;
    key.save_new(&config.signing_key_path())?;
    std::fs::write(config_path, text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    println!(
        "wrote {} and signing key {}",
        config_path.display(),
        config.signing_key_path().display()
    );
    println!(
        "start the server with: hearth serve --config {}",
        config_path.display()
    );
    Ok(())
}

/// The documented example with this server's values filled in.
fn render(server_name: &str, data: &Path) -> anyhow::Result<String> {
    let quote = |s: &str| toml_string(s);
    let data_str = data.to_str().context("data directory path is not UTF-8")?;
    let mut out = String::with_capacity(EXAMPLE.len());
    for line in EXAMPLE.lines() {
        let replaced = if line.starts_with("server_name = ") {
            format!("server_name = {}", quote(server_name))
        } else if line.starts_with("data_dir = ") {
            format!("data_dir = {}", quote(data_str))
        } else {
            line.to_owned()
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    Ok(out)
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
