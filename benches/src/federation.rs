//! Two federating Hearths in one process for the federation benchmarks: `a.test` and
//! `b.test` on SQLite in a temporary directory, TLS federation listeners with certificates
//! from a throwaway CA, partners of each other through `[federation] overrides`.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use hearth_accounts::PasswordHashing;
use hearth_config::{Config, FederationMode};
use hearth_store::testing::tempfile_free::TempDir;
use serde_json::{Value, json};

/// The two servers, on a runtime of their own.
pub struct Pair {
    pub runtime: tokio::runtime::Runtime,
    pub a: hearth::Server,
    pub b: hearth::Server,
    _dir: TempDir,
}

impl Pair {
    pub fn start() -> anyhow::Result<Self> {
        let dir = TempDir::new("hearth-fed-bench")?;
        certificates(dir.path(), &["a.test", "b.test"])?;
        let (port_a, port_b) = (free_port()?, free_port()?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("hearth-server")
            .build()?;
        let hashing = PasswordHashing::insecure_fast_for_tests;
        let a = runtime.block_on(hearth::Server::start(
            config(dir.path(), "a.test", port_a, "b.test", port_b),
            hashing(),
        ))?;
        let b = runtime.block_on(hearth::Server::start(
            config(dir.path(), "b.test", port_b, "a.test", port_a),
            hashing(),
        ))?;
        Ok(Self {
            runtime,
            a,
            b,
            _dir: dir,
        })
    }

    pub fn base_a(&self) -> String {
        format!("http://{}", self.a.address)
    }

    pub fn base_b(&self) -> String {
        format!("http://{}", self.b.address)
    }

    pub fn stop(self) -> anyhow::Result<()> {
        let Self { runtime, a, b, .. } = self;
        runtime.block_on(async {
            a.stop().await?;
            b.stop().await
        })
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A config for `name` federating with `partner` at `partner_port`.
pub fn config(dir: &Path, name: &str, port: u16, partner: &str, partner_port: u16) -> Config {
    let mut config = Config::default();
    config.server.server_name = name.to_owned();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.data_dir = dir.join(name);
    config.registration.enabled = true;
    for limit in config.rate_limits.every_mut() {
        *limit = crate::load::server::LIFTED;
    }
    let federation = &mut config.federation;
    federation.mode = Some(FederationMode::Allowlist);
    federation.listen = Some(SocketAddr::from(([127, 0, 0, 1], port)));
    federation.tls_certificate = Some(dir.join(format!("{name}.crt")));
    federation.tls_private_key = Some(dir.join(format!("{name}.key")));
    federation.ca_file = Some(dir.join("ca.pem"));
    federation.allow = vec![partner.to_owned()];
    federation
        .overrides
        .insert(partner.to_owned(), format!("127.0.0.1:{partner_port}"));
    config
}

/// A CA and a certificate for each name, as PEM files in `dir`.
pub fn certificates(dir: &Path, names: &[&str]) -> anyhow::Result<()> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key)?.pem())?;
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    for name in names {
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec![(*name).to_owned()])?.signed_by(&key, &issuer)?;
        std::fs::write(dir.join(format!("{name}.crt")), cert.pem())?;
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem())?;
    }
    Ok(())
}

/// Register `name` on the server at `base`; its access token.
pub async fn register(http: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<String> {
    let body = json!({
        "username": name, "password": "bench password",
        "auth": { "type": "m.login.dummy" },
    });
    let answer: Value = http
        .post(format!("{base}/_matrix/client/v3/register"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("registering {name}: {answer}"))
}

/// Peak resident memory of this process so far (`VmHWM`), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    peak_rss_mib_of("self")
}

/// Peak resident memory so far (`VmHWM`) of process `pid` (`"self"` for this one), in MiB.
pub fn peak_rss_mib_of(pid: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
