//! The disk fills up while people write: writes fail with a clear error and nothing is lost.
//!
//! The data directory sits on a small tmpfs (mounting one needs root; as another user the test
//! says so and does nothing). Users send messages, write account data and register while the
//! disk is full; then space comes back and writes resume without a restart; then the server is
//! stopped (SIGTERM in one run, SIGKILL in the other) and started again. Every write that was
//! answered 200 must be there, and nothing that was answered with an error may be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use common::{Server, hearth, serve};

/// A tmpfs of a few MiB, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u32) -> Option<Self> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return None;
        }
        std::fs::create_dir_all(at).unwrap();
        let size = format!("size={mib}m");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount -t tmpfs failed although we are root"
        );
        Some(Self(at.to_path_buf()))
    }

    /// Write a filler file until the file system refuses more.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).and_then(|()| file.flush()).is_ok() {}
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[derive(Clone)]
struct User {
    http: reqwest::Client,
    base: String,
    name: String,
    token: String,
}

impl User {
    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn register(base: &str, name: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/_matrix/client/v3/register"))
        .json(&json!({
            "username": name, "password": "full disk, full heart",
            "auth": {"type": "m.login.dummy"}
        }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login(base: &str, name: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/_matrix/client/v3/login"))
        .json(&json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": name},
            "password": "full disk, full heart"
        }))
        .send()
        .await
        .unwrap()
        .status()
}

async fn user(base: &str, name: &str) -> User {
    let (status, body) = register(base, name).await;
    assert_eq!(status, 200, "register {name}: {body}");
    User {
        http: reqwest::Client::new(),
        base: base.to_owned(),
        name: name.to_owned(),
        token: body["access_token"].as_str().unwrap().to_owned(),
    }
}

/// What the server acknowledged, and how the refusals looked.
#[derive(Default)]
struct Ledger {
    /// Message body -> event id, for every send answered 200.
    sent: BTreeMap<String, String>,
    /// Per user, the account-data values in the order they were acknowledged.
    account_data: BTreeMap<String, Vec<u64>>,
    registered: BTreeSet<String>,
    refused_registrations: BTreeSet<String>,
    /// (status, errcode) of every refusal.
    refusals: Vec<(StatusCode, String)>,
}

impl Ledger {
    fn refused(&mut self, status: StatusCode, body: &Value) {
        self.refusals
            .push((status, body["errcode"].as_str().unwrap_or("").to_owned()));
    }
}

/// Each user sends `count` messages and writes account data after each, one request at a time.
async fn write_round(users: &[User], room: &str, round: &'static str, count: u64) -> Ledger {
    let mut tasks = tokio::task::JoinSet::new();
    for user in users.iter().cloned() {
        let room = room.to_owned();
        tasks.spawn(async move {
            let mut ledger = Ledger::default();
            for i in 0..count {
                let body = format!("{round}-{}-{i}", user.name);
                let (status, answer) = user
                    .call(
                        reqwest::Method::PUT,
                        &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{body}"),
                        json!({"msgtype": "m.text", "body": body}),
                    )
                    .await;
                if status == 200 {
                    let id = answer["event_id"].as_str().unwrap().to_owned();
                    ledger.sent.insert(body, id);
                } else {
                    ledger.refused(status, &answer);
                }
                let value = serial(round, i);
                let (status, answer) = user
                    .call(
                        reqwest::Method::PUT,
                        &format!(
                            "/_matrix/client/v3/user/@{}:hearth.test/account_data/org.hearth.test",
                            user.name
                        ),
                        json!({"n": value}),
                    )
                    .await;
                if status == 200 {
                    ledger
                        .account_data
                        .entry(user.name.clone())
                        .or_default()
                        .push(value);
                } else {
                    ledger.refused(status, &answer);
                }
            }
            ledger
        });
    }
    let mut all = Ledger::default();
    while let Some(ledger) = tasks.join_next().await {
        all.merge(ledger.unwrap());
    }
    all
}

/// Account-data values grow over the whole test, so "the last acknowledged" is the largest.
fn serial(round: &str, i: u64) -> u64 {
    let base = match round {
        "before" => 0,
        "full" => 1_000,
        _ => 2_000,
    };
    base + i
}

impl Ledger {
    fn merge(&mut self, other: Ledger) {
        self.sent.extend(other.sent);
        for (user, values) in other.account_data {
            self.account_data.entry(user).or_default().extend(values);
        }
        self.registered.extend(other.registered);
        self.refused_registrations
            .extend(other.refused_registrations);
        self.refusals.extend(other.refusals);
    }
}

fn start(config: &Path) -> Server {
    let mut command = hearth();
    command.arg("serve").arg("--config").arg(config);
    serve(command)
}

#[derive(Clone, Copy, PartialEq)]
enum Stop {
    Term,
    Kill,
}

async fn full_disk_then(stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), 24) else {
        eprintln!("skipped: mounting a tmpfs to fill needs root");
        return;
    };
    let config = dir.path().join("hearth.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[server]
server_name = "hearth.test"
listen = "127.0.0.1:0"
data_dir = "{}"
[registration]
enabled = true
[rate_limits]
login = {{ per_second = 1000.0, burst = 10000 }}
register = {{ per_second = 1000.0, burst = 10000 }}
send = {{ per_second = 1000.0, burst = 10000 }}
[logging]
level = "warn,hearth=info"
"#,
            disk.0.join("data").display()
        ),
    )
    .unwrap();

    let mut server = start(&config);
    let base = server.base.clone();
    let mut users = Vec::new();
    for name in ["ann", "bob", "cat", "dan"] {
        users.push(user(&base, name).await);
    }
    let (status, created) = users[0]
        .call(
            reqwest::Method::POST,
            "/_matrix/client/v3/createRoom",
            json!({"preset": "public_chat"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let room = created["room_id"].as_str().unwrap().to_owned();
    for user in &users[1..] {
        let (status, body) = user
            .call(
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/join/{room}"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let mut ledger = write_round(&users, &room, "before", 5).await;
    assert!(ledger.refusals.is_empty(), "refused with space left");

    // The disk fills up while people write and sign up.
    let filler = disk.fill();
    let full = write_round(&users, &room, "full", 40).await;
    let mut full_registrations = Ledger::default();
    for i in 0..5 {
        let name = format!("newcomer{i}");
        match register(&base, &name).await {
            (StatusCode::OK, _) => full_registrations.registered.insert(name),
            (status, body) => {
                full_registrations.refused(status, &body);
                full_registrations.refused_registrations.insert(name)
            }
        };
    }
    let refusals = full.refusals.len() + full_registrations.refusals.len();
    eprintln!(
        "disk full: {} messages and {} registrations accepted, {refusals} writes refused",
        full.sent.len(),
        full_registrations.registered.len()
    );
    // Checked last, so that a server that swallows writes fails on what it lost.
    let full_refusals: Vec<_> = full
        .refusals
        .iter()
        .chain(&full_registrations.refusals)
        .cloned()
        .collect();
    ledger.merge(full);
    ledger.merge(full_registrations);

    // Space comes back: writes resume at once, without a restart.
    std::fs::remove_file(filler).unwrap();
    let after = write_round(&users, &room, "after", 5).await;
    assert!(
        after.refusals.is_empty(),
        "writes refused after space came back: {:?}",
        after.refusals
    );
    ledger.merge(after);
    let (status, newcomer) = register(&base, "latecomer").await;
    assert_eq!(status, 200, "{newcomer}");
    ledger.registered.insert("latecomer".into());
    let (status, sync) = users[1]
        .call(reqwest::Method::GET, "/_matrix/client/v3/sync", Value::Null)
        .await;
    assert_eq!(status, 200, "sync after the disk was full: {sync}");

    match stop {
        Stop::Term => assert!(server.terminate(), "hearth did not exit cleanly on SIGTERM"),
        Stop::Kill => server.kill(),
    }
    drop(server);

    let server = start(&config);
    let base = server.base.clone();
    for user in &mut users {
        user.base.clone_from(&base);
    }
    check_everything_acknowledged(&users, &room, &ledger).await;
    for name in &ledger.registered {
        assert_eq!(
            login(&base, name).await,
            200,
            "{name} registered but cannot log in"
        );
    }
    for name in &ledger.refused_registrations {
        assert_eq!(
            login(&base, name).await,
            403,
            "{name}'s registration was refused but the account exists"
        );
    }
    assert!(
        refusals >= 10,
        "only {refusals} writes were refused on a full disk"
    );
    for (status, errcode) in &full_refusals {
        assert_eq!(
            (*status, errcode.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN"),
            "a full disk is a clear, retryable error"
        );
    }
}

async fn check_everything_acknowledged(users: &[User], room: &str, ledger: &Ledger) {
    let reader = &users[1];
    // Every message in the room, oldest to newest.
    let mut bodies = BTreeMap::new();
    let mut from: Option<String> = None;
    loop {
        let mut path = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100");
        if let Some(from) = &from {
            path.push_str(&format!("&from={from}"));
        }
        let (status, page) = reader.call(reqwest::Method::GET, &path, Value::Null).await;
        assert_eq!(status, 200, "{page}");
        for event in page["chunk"].as_array().unwrap() {
            if event["type"] == "m.room.message" {
                bodies.insert(
                    event["content"]["body"].as_str().unwrap().to_owned(),
                    event["event_id"].as_str().unwrap().to_owned(),
                );
            }
        }
        match page["end"].as_str() {
            Some(end) if !page["chunk"].as_array().unwrap().is_empty() => {
                from = Some(end.to_owned());
            }
            _ => break,
        }
    }
    for (body, id) in &ledger.sent {
        assert_eq!(
            bodies.get(body),
            Some(id),
            "acknowledged message {body} was lost"
        );
    }
    for body in bodies.keys() {
        assert!(
            ledger.sent.contains_key(body),
            "{body} was refused but is in the room"
        );
    }
    for user in users {
        let (status, content) = user
            .call(
                reqwest::Method::GET,
                &format!(
                    "/_matrix/client/v3/user/@{}:hearth.test/account_data/org.hearth.test",
                    user.name
                ),
                Value::Null,
            )
            .await;
        assert_eq!(status, 200, "{content}");
        let last = ledger.account_data[&user.name].iter().max().unwrap();
        assert_eq!(content["n"], *last, "{}'s account data", user.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_then_sigterm_loses_nothing() {
    full_disk_then(Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_then_sigkill_loses_nothing() {
    full_disk_then(Stop::Kill).await;
}
