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
