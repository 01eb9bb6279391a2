//! Two-server federation in tests: a test CA, certificates for made-up server names, servers
//! that find each other through `[federation] overrides`, and signed requests from the test
//! itself acting as a (well-behaved or hostile) server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hearth_keys::SigningKey;
use hearth_store::testing::tempfile_free::TempDir;
use ruma::ServerName;
use ruma::api::federation::authentication::XMatrix;
use serde_json::Value;

use crate::{Backend, TestServer};

/// A certificate authority for test server names.
pub struct TestCa {
    dir: TempDir,
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
    /// The CA certificate (PEM), for `[federation] ca_file`.
    pub ca_file: PathBuf,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = TempDir::new("hearth-ca").expect("temp dir");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Hearth test CA");
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, cert.pem()).expect("write CA");
        Self {
            dir,
            key,
            params,
            ca_file,
        }
    }

    /// A certificate for `name` (a hostname or an IP address): `(certificate, private key)`
    /// PEM files.
    pub fn issue(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("certificate");
        let cert_file = self.dir.path().join(format!("{name}.crt"));
        let key_file = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_file, cert.pem()).expect("write certificate");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        (cert_file, key_file)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A port free right now on 127.0.0.1 (for a server whose partners must know it in advance).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A federating server's name, where its federation listener is, and how partners find it.
pub struct Peer {
    pub name: String,
    pub federation: SocketAddr,
}

impl Peer {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            federation: SocketAddr::from(([127, 0, 0, 1], free_port())),
        }
    }
}

/// Start `me` federating with `partners` (all found through overrides, trusted through the
/// test CA); `configure` adjusts the config further.
pub async fn start_peer(
    backend: Backend,
    ca: &TestCa,
    me: &Peer,
    partners: &[&Peer],
    configure: impl FnOnce(&mut hearth_config::Config),
) -> TestServer {
    // A name with a port (`127.0.0.1:8448`) is certified for its host.
    let host = me
        .name
        .rsplit_once(':')
        .filter(|(_, port)| port.parse::<u16>().is_ok())
        .map_or(me.name.as_str(), |(host, _)| host);
    let (cert, key) = ca.issue(host);
    TestServer::start_with(backend, |config| {
        config.server.server_name = me.name.clone();
        let federation = &mut config.federation;
        federation.mode = Some(hearth_config::FederationMode::Allowlist);
        federation.listen = Some(me.federation);
        federation.tls_certificate = Some(cert);
        federation.tls_private_key = Some(key);
        federation.ca_file = Some(ca.ca_file.clone());
        for partner in partners {
            federation.allow.push(partner.name.clone());
            federation
                .overrides
                .insert(partner.name.clone(), partner.federation.to_string());
        }
        configure(config);
    })
    .await
}

/// The test acting as a server: its own signing key, sending signed requests straight to a
/// server's federation listener.
pub struct FakeServer {
    pub key: SigningKey,
    http: reqwest::Client,
}

impl FakeServer {
    /// A new server identity `name`, trusting the test CA and reaching `target` (name and
    /// address) directly.
    pub fn new(name: &str, ca: &TestCa, target: &Peer) -> Self {
        let key =
            SigningKey::generate(<&ServerName>::try_from(name).expect("server name")).expect("key");
        Self::with_key(key, ca, target)
    }

    /// The same with an existing key (a real server's, to speak in its name).
    pub fn with_key(key: SigningKey, ca: &TestCa, target: &Peer) -> Self {
        let ca_pem = std::fs::read(&ca.ca_file).expect("read CA");
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("CA"))
            .resolve(&target.name, target.federation)
            .build()
            .expect("client");
        Self { key, http }
    }

    /// Send `method path` with `body` to `target`, signed for `destination` (normally the
    /// target's own name).
    pub async fn request(
        &self,
        target: &Peer,
        destination: &str,
        method: http::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (http::StatusCode, Value) {
        let url = format!("https://{}:{}{path}", target.name, target.federation.port());
        let bytes = body
            .map(|b| serde_json::to_vec(b).expect("json"))
            .unwrap_or_default();
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(&url)
            .body(bytes.clone())
            .expect("request");
        // Signed over plain canonical JSON as Hearth checks it, so that a test may send what
        // ruma's signer refuses (a float, say).
        let destination: &ServerName = destination.try_into().expect("destination");
        let signed = hearth_federation::inbound::signed_bytes(
            &method,
            path,
            self.key.server_name(),
            destination,
            &bytes,
        )
        .expect("signable body");
        let signature = ruma::signatures::KeyPair::sign(self.key.pair(), &signed);
        let x_matrix = XMatrix::new(
            self.key.server_name().to_owned(),
            destination.to_owned(),
            self.key.key_id().clone(),
            ruma::serde::Base64::new(signature.as_bytes().to_vec()),
        );
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from(&x_matrix),
        );
        self.send(request).await
    }

    /// Send a request exactly as given (a test's own forgery).
    pub async fn send(&self, request: http::Request<Vec<u8>>) -> (http::StatusCode, Value) {
        let request = reqwest::Request::try_from(request).expect("request");
        let response = self.http.execute(request).await.expect("send");
        let status = response.status();
        let body = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

/// Rows in every table of a server's database: what a refused request must leave unchanged.
pub async fn row_counts(server: &TestServer) -> std::collections::BTreeMap<String, i64> {
    let mut counts = std::collections::BTreeMap::new();
    match server.config.database.backend {
        hearth_config::DatabaseBackend::Sqlite => {
            let url = format!("sqlite://{}?mode=ro", server.config.sqlite_path().display());
            let pool = sqlx::SqlitePool::connect(&url).await.expect("open sqlite");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            for table in tables {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM \"{table}\""
                )))
                .fetch_one(&pool)
                .await
                .expect("count");
                counts.insert(table, n);
            }
            pool.close().await;
        }
        hearth_config::DatabaseBackend::Postgres => {
            let url = server.config.database.url.clone().expect("postgres url");
            let pool = sqlx::PgPool::connect(&url).await.expect("open postgres");
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .fetch_all(&pool)
            .await
            .expect("tables");
            for table in tables {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM \"{table}\""
                )))
                .fetch_one(&pool)
                .await
                .expect("count");
                counts.insert(table, n);
            }
            pool.close().await;
        }
    }
    counts
}
