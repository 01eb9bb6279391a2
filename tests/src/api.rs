//! A small HTTP client for the client-server API tests: an optional access token, JSON in and
//! out, and the status with every answer.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::TestServer;

/// A client of one test server, logged in or not.
pub struct Api<'s> {
    pub server: &'s TestServer,
    pub token: Option<String>,
    http: reqwest::Client,
}

/// The `errcode` of an error body (`<none>` when there is none).
pub fn errcode(body: &Value) -> &str {
    body["errcode"].as_str().unwrap_or("<none>")
}

#[allow(clippy::unwrap_used, clippy::expect_used)]
impl<'s> Api<'s> {
    pub fn new(server: &'s TestServer, token: Option<&str>) -> Self {
        Self {
            server,
            token: token.map(str::to_owned),
            http: reqwest::Client::new(),
        }
    }

    /// Register `name` and use its token.
    pub async fn user(server: &'s TestServer, name: &str) -> Self {
        let token = server.register(name).await.expect("register");
        Self::new(server, Some(&token))
    }

    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, HeaderMap) {
        let mut request = self.http.request(method, self.server.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, body, _) = self.call_with_headers(method, path, body).await;
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, Some(body)).await
    }

    /// Expect 200 and return the body.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.call(method, path, body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    /// Send raw bytes with a JSON content type, on a fresh connection: the server may answer an
    /// oversized body early and close the connection, which a pooled client would reuse.
    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut request = http.request(method, self.server.url(path)).body(body);
        request = request.header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// Whether this client's access token still works.
    pub async fn token_works(&self) -> bool {
        let (status, body) = self.get("/_matrix/client/v3/account/whoami").await;
        match status {
            StatusCode::OK => true,
            StatusCode::UNAUTHORIZED => {
                assert_eq!(errcode(&body), "M_UNKNOWN_TOKEN", "{body}");
                false
            }
            other => panic!("whoami: {other} {body}"),
        }
    }

    /// Create a room with a preset; returns its id.
    pub async fn create_room(&self, preset: &str) -> String {
        let body = self
            .ok(
                Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(json!({ "preset": preset })),
            )
            .await;
        body["room_id"].as_str().unwrap().to_owned()
    }

    /// The content of the room's `m.room.member` event for `user` (expects 200).
    pub async fn member_event(&self, room: &str, user: &str) -> Value {
        let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}");
        self.ok(Method::GET, &path, None).await
    }

    /// Send a text message; returns the event id.
    pub async fn send_text(&self, room: &str, body: &str) -> String {
        let txn = format!("t{}", rand_suffix());
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
        let response = self
            .ok(
                Method::PUT,
                &path,
                Some(json!({"msgtype": "m.text", "body": body})),
            )
            .await;
        response["event_id"].as_str().unwrap().to_owned()
    }

    /// One `/sync`, from `since` if given, waiting up to `timeout_ms`.
    pub async fn sync(&self, since: Option<&str>, timeout_ms: u64) -> Value {
        let mut path = format!("/_matrix/client/v3/sync?timeout={timeout_ms}");
        if let Some(since) = since {
            path.push_str(&format!("&since={since}"));
        }
        self.ok(Method::GET, &path, None).await
    }

    /// One `/sync` with an inline filter (and any extra query, like `&full_state=true`),
    /// answering at once.
    pub async fn sync_with(&self, since: Option<&str>, filter: &Value, extra: &str) -> Value {
        let mut path = format!(
            "/_matrix/client/v3/sync?timeout=0&filter={}{extra}",
            urlencode(&filter.to_string())
        );
        if let Some(since) = since {
            path.push_str(&format!("&since={since}"));
        }
        self.ok(Method::GET, &path, None).await
    }

    /// Create a room with this `createRoom` body; returns its id.
    pub async fn create_room_with(&self, body: Value) -> String {
        let body = self
            .ok(Method::POST, "/_matrix/client/v3/createRoom", Some(body))
            .await;
        body["room_id"].as_str().unwrap().to_owned()
    }

    /// Join a room by id (expects 200).
    pub async fn join(&self, room: &str) {
        let path = format!("/_matrix/client/v3/rooms/{room}/join");
        self.ok(Method::POST, &path, Some(json!({}))).await;
    }

    /// Send an event of `kind`, with a fresh transaction id: the status and body.
    pub async fn try_send(&self, room: &str, kind: &str, content: Value) -> (StatusCode, Value) {
        let txn = format!("t{}", rand_suffix());
        let path = format!("/_matrix/client/v3/rooms/{room}/send/{kind}/{txn}");
        self.put(&path, content).await
    }

    /// Send an event of `kind` (expects 200); returns the event id.
    pub async fn send(&self, room: &str, kind: &str, content: Value) -> String {
        let (status, body) = self.try_send(room, kind, content).await;
        assert_eq!(status, StatusCode::OK, "send {kind}: {body}");
        body["event_id"].as_str().unwrap().to_owned()
    }

    /// Set a state event (expects 200); returns the event id.
    pub async fn set_state(&self, room: &str, kind: &str, key: &str, content: Value) -> String {
        let path = format!("/_matrix/client/v3/rooms/{room}/state/{kind}/{key}");
        let body = self.ok(Method::PUT, &path, Some(content)).await;
        body["event_id"].as_str().unwrap().to_owned()
    }

    /// The content of a state event (expects 200).
    pub async fn get_state(&self, room: &str, kind: &str, key: &str) -> Value {
        let path = format!("/_matrix/client/v3/rooms/{room}/state/{kind}/{key}");
        self.ok(Method::GET, &path, None).await
    }
}

/// The common start of a test: `names[0]` creates a room with `preset` and the others join it.
/// Returns the room id and the users' clients in the order of `names`.
pub async fn users_in_room<'s>(
    server: &'s TestServer,
    preset: &str,
    names: &[&str],
) -> (String, Vec<Api<'s>>) {
    let mut users = Vec::new();
    for name in names {
        users.push(Api::user(server, name).await);
    }
    let room = match users.first() {
        Some(creator) => creator.create_room(preset).await,
        None => panic!("users_in_room needs at least one user"),
    };
    for user in users.iter().skip(1) {
        if preset != "public_chat" {
            let invitee = user_id_of(user).await;
            let path = format!("/_matrix/client/v3/rooms/{room}/invite");
            users[0]
                .ok(Method::POST, &path, Some(json!({ "user_id": invitee })))
                .await;
        }
        user.join(&room).await;
    }
    (room, users)
}

async fn user_id_of(user: &Api<'_>) -> String {
    let whoami = user
        .ok(Method::GET, "/_matrix/client/v3/account/whoami", None)
        .await;
    whoami["user_id"].as_str().unwrap_or_default().to_owned()
}

/// Percent-encode a query-string or path value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    nanos ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 32)
}

/// Run one async test body `fn name(Backend)` on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
            }
        }
    };
}
