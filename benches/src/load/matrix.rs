//! Just enough of the Matrix client-server API for the load generator, spoken as plain JSON over
//! reqwest so that it works against any homeserver (Hearth, Synapse, ...), not only ours.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::Counters;
use std::sync::Arc;

/// Longest we follow a server's `retry_after_ms` before giving up on a request.
const MAX_THROTTLE_RETRIES: u32 = 50;
/// Time allowed for an ordinary request; a long-poll gets its own timeout on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A failed request: an HTTP error with its Matrix errcode, or a transport failure.
#[derive(Debug)]
pub enum Failure {
    Http {
        status: StatusCode,
        errcode: String,
        error: String,
    },
    Transport(reqwest::Error),
}

impl Failure {
    /// A short label for the error table (no ids, so equal failures add up).
    pub fn kind(&self) -> String {
        match self {
            Self::Http {
                status, errcode, ..
            } => format!("HTTP {} {errcode}", status.as_u16()),
            Self::Transport(e) if e.is_timeout() => "timeout".to_owned(),
            Self::Transport(e) if e.is_connect() => "connect error".to_owned(),
            Self::Transport(e) if e.is_decode() => "undecodable body".to_owned(),
            Self::Transport(_) => "transport error".to_owned(),
        }
    }

    /// Worth trying again (with the same transaction id, so a retry can't duplicate a message).
    pub fn transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => status.is_server_error(),
            Self::Transport(_) => true,
        }
    }

    pub fn errcode(&self) -> Option<&str> {
        match self {
            Self::Http { errcode, .. } => Some(errcode),
            Self::Transport(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http {
                status,
                errcode,
                error,
            } => write!(f, "HTTP {status} {errcode}: {error}"),
            Self::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Failure {}

/// A response that arrived, whatever its status; `at` is when its body was complete.
struct Reply {
    status: StatusCode,
    body: Value,
    at: Instant,
}

/// One HTTP client (its own connection pool) talking to one server.
#[derive(Clone, Debug)]
pub struct Http {
    client: Client,
    base: Url,
    counters: Arc<Counters>,
}

impl Http {
    pub fn new(base: &Url, counters: Arc<Counters>) -> anyhow::Result<Self> {
        if base.cannot_be_a_base() {
            bail!("{base} is not a usable base URL");
        }
        let client = Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            base: base.clone(),
            counters,
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Checked in `new`: an http(s) base always has path segments.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// One request; 429s are waited out (as `retry_after_ms` asks) and counted, not returned.
    async fn request(
        &self,
        method: Method,
        segments: &[&str],
        token: Option<&str>,
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let url = self.url(segments);
        let mut throttled = 0;
        loop {
            let mut builder = self
                .client
                .request(method.clone(), url.clone())
                .query(query)
                .timeout(timeout);
            if let Some(token) = token {
                builder = builder.bearer_auth(token);
            }
            if let Some(body) = body {
                builder = builder.json(body);
            }
            let response = builder.send().await.map_err(Failure::Transport)?;
            let status = response.status();
            let bytes = response.bytes().await.map_err(Failure::Transport)?;
            let at = Instant::now();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status == StatusCode::TOO_MANY_REQUESTS && throttled < MAX_THROTTLE_RETRIES {
                throttled += 1;
                self.counters
                    .throttled
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let wait = body["retry_after_ms"].as_u64().unwrap_or(1000);
                tokio::time::sleep(Duration::from_millis(wait.clamp(10, 30_000))).await;
                continue;
            }
            return Ok(Reply { status, body, at });
        }
    }

    /// Like `request`, with anything but 2xx turned into a [`Failure`].
    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        token: Option<&str>,
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(Instant, Value), Failure> {
        let reply = self
            .request(method, segments, token, query, body, timeout)
            .await?;
        if reply.status.is_success() {
            Ok((reply.at, reply.body))
        } else {
            Err(http_failure(reply))
        }
    }

    /// Register `localpart` through the user-interactive m.login.dummy flow.
    pub async fn register(&self, localpart: &str, password: &str) -> Result<Session, Failure> {
        let path = ["_matrix", "client", "v3", "register"];
        let mut body = json!({
            "username": localpart,
            "password": password,
            "initial_device_display_name": "hearth-load",
        });
        let first = self
            .request(Method::POST, &path, None, &[], Some(&body), REQUEST_TIMEOUT)
            .await?;
        let reply = if first.status == StatusCode::UNAUTHORIZED {
            let dummy_only = first.body["flows"].as_array().is_some_and(|flows| {
                flows
                    .iter()
                    .any(|f| f["stages"] == json!(["m.login.dummy"]))
            });
            if !dummy_only {
                return Err(Failure::Http {
                    status: first.status,
                    errcode: "M_FORBIDDEN".to_owned(),
                    error: format!(
                        "registration offers no m.login.dummy flow ({}); \
                         create the users yourself and use --login",
                        first.body["flows"]
                    ),
                });
            }
            body["auth"] = json!({"type": "m.login.dummy", "session": first.body["session"]});
            self.request(Method::POST, &path, None, &[], Some(&body), REQUEST_TIMEOUT)
                .await?
        } else {
            first
        };
        if !reply.status.is_success() {
            return Err(http_failure(reply));
        }
        self.session(&reply.body)
    }

    /// Log in as an existing user with a password.
    pub async fn login(&self, localpart: &str, password: &str) -> Result<Session, Failure> {
        let body = json!({
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
            "initial_device_display_name": "hearth-load",
        });
        let path = ["_matrix", "client", "v3", "login"];
        let (_, reply) = self
            .call(Method::POST, &path, None, &[], Some(&body), REQUEST_TIMEOUT)
            .await?;
        self.session(&reply)
    }

    fn session(&self, reply: &Value) -> Result<Session, Failure> {
        match (reply["user_id"].as_str(), reply["access_token"].as_str()) {
            (Some(user_id), Some(token)) => Ok(Session {
                http: self.clone(),
                user_id: user_id.to_owned(),
                token: token.to_owned(),
            }),
            _ => Err(Failure::Http {
                status: StatusCode::OK,
                errcode: "(no access token)".to_owned(),
                error: format!("unexpected answer {reply}"),
            }),
        }
    }
}

fn http_failure(reply: Reply) -> Failure {
    Failure::Http {
        status: reply.status,
        errcode: reply.body["errcode"].as_str().unwrap_or("-").to_owned(),
        error: reply.body["error"].as_str().unwrap_or_default().to_owned(),
    }
}

/// A logged-in device.
#[derive(Clone, Debug)]
pub struct Session {
    http: Http,
    pub user_id: String,
    token: String,
}

impl Session {
    /// The same login on a fresh connection pool, so a long-poll never queues behind a send.
    pub fn with_own_connection(&self) -> anyhow::Result<Self> {
        Ok(Self {
            http: Http::new(&self.http.base, self.http.counters.clone())?,
            ..self.clone()
        })
    }

    async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(Instant, Value), Failure> {
        self.http
            .call(method, segments, Some(&self.token), query, body, timeout)
            .await
    }

    /// `POST /createRoom` with the public_chat preset; the new room's id.
    pub async fn create_public_room(&self, name: &str) -> Result<String, Failure> {
        let body = json!({"preset": "public_chat", "name": name});
        let path = ["_matrix", "client", "v3", "createRoom"];
        let (_, reply) = self
            .call(Method::POST, &path, &[], Some(&body), REQUEST_TIMEOUT)
            .await?;
        reply["room_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure::Http {
                status: StatusCode::OK,
                errcode: "(no room_id)".to_owned(),
                error: format!("unexpected answer {reply}"),
            })
    }

    /// `POST /join/{roomIdOrAlias}`.
    pub async fn join(&self, room: &str) -> Result<(), Failure> {
        let path = ["_matrix", "client", "v3", "join", room];
        let body = json!({});
        self.call(Method::POST, &path, &[], Some(&body), REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// `PUT /rooms/{roomId}/send/m.room.message/{txnId}`.
    pub async fn send_message(
        &self,
        room: &str,
        txn: &str,
        content: &Value,
    ) -> Result<(), Failure> {
        let path = [
            "_matrix",
            "client",
            "v3",
            "rooms",
            room,
            "send",
            "m.room.message",
            txn,
        ];
        self.call(Method::PUT, &path, &[], Some(content), REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// `GET /sync`, long-polling up to `timeout_ms`; the response and when it arrived in full.
    pub async fn sync(
        &self,
        since: Option<&str>,
        timeout_ms: u64,
        filter: &str,
    ) -> Result<(Instant, Value), Failure> {
        let timeout = timeout_ms.to_string();
        let mut query = vec![
            ("timeout", timeout.as_str()),
            ("filter", filter),
            ("set_presence", "offline"),
        ];
        if let Some(since) = since {
            query.push(("since", since));
        }
        let path = ["_matrix", "client", "v3", "sync"];
        let limit = REQUEST_TIMEOUT + Duration::from_millis(timeout_ms);
        self.call(Method::GET, &path, &query, None, limit).await
    }

    /// Simplified sliding sync (MSC4186), long-polling up to `timeout_ms` after `pos`; the
    /// response and when it arrived in full.
    pub async fn sliding_sync(
        &self,
        pos: Option<&str>,
        timeout_ms: u64,
        body: &Value,
    ) -> Result<(Instant, Value), Failure> {
        let timeout = timeout_ms.to_string();
        let mut query = vec![("timeout", timeout.as_str()), ("set_presence", "offline")];
        if let Some(pos) = pos {
            query.push(("pos", pos));
        }
        let path = [
            "_matrix",
            "client",
            "unstable",
            "org.matrix.simplified_msc3575",
            "sync",
        ];
        let limit = REQUEST_TIMEOUT + Duration::from_millis(timeout_ms);
        self.call(Method::POST, &path, &query, Some(body), limit)
            .await
    }

    /// `GET /rooms/{roomId}/messages`, backwards from `from`.
    pub async fn messages_before(
        &self,
        room: &str,
        from: &str,
        limit: u32,
    ) -> Result<(Instant, Value), Failure> {
        let limit = limit.to_string();
        let query = [("dir", "b"), ("from", from), ("limit", limit.as_str())];
        let path = ["_matrix", "client", "v3", "rooms", room, "messages"];
        self.call(Method::GET, &path, &query, None, REQUEST_TIMEOUT)
            .await
    }
}
