//! A real Synapse as a federation partner: installed from PyPI by `tests/with-postgres` (its
//! Python at `$HEARTH_TEST_SYNAPSE`), started on loopback with an IP-literal server name,
//! TLS from the test CA, federating only with the Hearth it is told about.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth_store::testing::tempfile_free::TempDir;
use serde_json::{Value, json};

use crate::federation::{TestCa, free_port};

/// A running Synapse, stopped when dropped.
pub struct Synapse {
    /// Its server name, `127.0.0.1:PORT` (the federation port).
    pub name: String,
    /// Its client API, plain HTTP.
    pub client_base: String,
    child: Child,
    dir: TempDir,
}

impl Drop for Synapse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python that has Synapse installed.
fn python() -> PathBuf {
    std::env::var_os("HEARTH_TEST_SYNAPSE").map(PathBuf::from).expect(
        "HEARTH_TEST_SYNAPSE is not set: run the tests under tests/with-postgres, which installs Synapse",
    )
}

impl Synapse {
    /// Start Synapse federating with `partner` (a server name such as `127.0.0.1:PORT`).
    pub async fn start(ca: &TestCa, partner: &str) -> Self {
        let dir = TempDir::new("hearth-synapse").expect("temp dir");
        let path = dir.path();
        let federation_port = free_port();
        let client_port = free_port();
        let name = format!("127.0.0.1:{federation_port}");
        let (cert, key) = ca.issue("127.0.0.1");
        let log_config = path.join("log.yaml");
        std::fs::write(
            &log_config,
            format!(
                "version: 1\nformatters:\n  precise:\n    format: '%(asctime)s %(name)s %(levelname)s %(request)s %(message)s'\nfilters:\n  context:\n    (): synapse.logging.context.LoggingContextFilter\n    request: \"\"\nhandlers:\n  file:\n    class: logging.FileHandler\n    formatter: precise\n    filters: [context]\n    filename: {}\nroot:\n  level: INFO\n  handlers: [file]\ndisable_existing_loggers: false\n",
                path.join("homeserver.log").display()
            ),
        )
        .expect("log config");
        let unlimited = json!({ "per_second": 10000, "burst_count": 10000 });
        let config = json!({
            "server_name": name,
            "pid_file": path.join("homeserver.pid"),
            "listeners": [
                {
                    "port": federation_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                    "tls": true, "resources": [{ "names": ["federation"], "compress": false }],
                },
                {
                    "port": client_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                    "tls": false, "x_forwarded": false,
                    "resources": [{ "names": ["client"], "compress": false }],
                },
            ],
            "tls_certificate_path": cert,
            "tls_private_key_path": key,
            "database": { "name": "sqlite3", "args": { "database": path.join("homeserver.db") } },
            "log_config": log_config,
            "media_store_path": path.join("media"),
            "signing_key_path": path.join("signing.key"),
            "report_stats": false,
            "enable_registration": true,
            "enable_registration_without_verification": true,
            "trusted_key_servers": [],
            "suppress_key_server_warning": true,
            "federation_custom_ca_list": [ca.ca_file],
            "federation_verify_certificates": true,
            "ip_range_blacklist": [],
            "federation_domain_whitelist": [partner],
            "federation": { "destination_min_retry_interval": "1s" },
            "rc_message": unlimited,
            "rc_registration": unlimited,
            "rc_login": { "address": unlimited, "account": unlimited, "failed_attempts": unlimited },
            "rc_joins": { "local": unlimited, "remote": unlimited },
            "rc_invites": { "per_room": unlimited, "per_user": unlimited, "per_issuer": unlimited },
            "rc_federation": { "window_size": 1000, "sleep_limit": 10000, "reject_limit": 10000, "concurrent": 100 },
        });
        // JSON is YAML.
        let config_file = path.join("homeserver.yaml");
        std::fs::write(&config_file, config.to_string()).expect("config");
        let status = Command::new(python())
            .args(["-m", "synapse.app.homeserver", "--generate-keys", "-c"])
            .arg(&config_file)
            .stdout(Stdio::null())
            .status()
            .expect("run synapse --generate-keys");
        assert!(status.success(), "synapse --generate-keys failed");
        let child = Command::new(python())
            .args(["-m", "synapse.app.homeserver", "-c"])
            .arg(&config_file)
            .stdout(std::fs::File::create(path.join("stdout.log")).expect("stdout log"))
            .stderr(std::fs::File::create(path.join("stderr.log")).expect("stderr log"))
            .spawn()
            .expect("start synapse");
        let synapse = Self {
            name,
            client_base: format!("http://127.0.0.1:{client_port}"),
            child,
            dir,
        };
        synapse.wait_until_up().await;
        synapse
    }

    async fn wait_until_up(&self) {
        let http = reqwest::Client::new();
        for _ in 0..600 {
            let url = format!("{}/_matrix/client/versions", self.client_base);
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Synapse did not start:\n{}", self.log_tail());
    }

    /// The end of Synapse's log, for a failing test's message.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for file in ["stderr.log", "homeserver.log"] {
            let text = std::fs::read_to_string(self.dir.path().join(file)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let start = lines.len().saturating_sub(60);
            out.push_str(&format!("--- {file}\n{}\n", lines[start..].join("\n")));
        }
        out
    }

    /// Register `name` (dummy auth) and return a client for them.
    pub async fn user(&self, name: &str) -> SynapseUser<'_> {
        let http = reqwest::Client::new();
        let url = format!("{}/_matrix/client/v3/register", self.client_base);
        let body = json!({
            "username": name, "password": "correct horse battery staple",
            "auth": { "type": "m.login.dummy" }, "inhibit_login": false,
        });
        let answer: Value = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("register answer");
        let token = answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {answer}"))
            .to_owned();
        SynapseUser {
            synapse: self,
            http,
            token,
            user_id: format!("@{name}:{}", self.name),
        }
    }
}

/// A Synapse user's client.
pub struct SynapseUser<'s> {
    pub synapse: &'s Synapse,
    http: reqwest::Client,
    token: String,
    pub user_id: String,
}

impl SynapseUser<'_> {
    /// A client-API call; returns status and JSON body.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.synapse.client_base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("synapse request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A call that must succeed.
    pub async fn ok(&self, method: http::Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self.call(method, path, body).await;
        assert_eq!(
            status,
            200,
            "Synapse {path}: {answer}\n{}",
            self.synapse.log_tail()
        );
        answer
    }

    pub async fn create_room(&self, body: Value) -> String {
        self.ok(
            http::Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(body),
        )
        .await["room_id"]
            .as_str()
            .expect("room id")
            .to_owned()
    }

    pub async fn send_text(&self, room: &str, text: &str) {
        let txn = format!("t{}", rand_suffix());
        self.ok(
            http::Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"),
            Some(json!({ "msgtype": "m.text", "body": text })),
        )
        .await;
    }

    /// The room's latest messages' bodies.
    pub async fn latest_bodies(&self, room: &str) -> Vec<String> {
        let (_, answer) = self
            .call(
                http::Method::GET,
                &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=30"),
                None,
            )
            .await;
        answer["chunk"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait (up to 20 s) until the room shows `text`.
    pub async fn until_seen(&self, room: &str, text: &str) {
        for _ in 0..200 {
            if self.latest_bodies(room).await.iter().any(|b| b == text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "Synapse never showed {text:?} in {room}\n{}",
            self.synapse.log_tail()
        );
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}
