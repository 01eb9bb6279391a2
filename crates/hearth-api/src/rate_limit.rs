//! Token-bucket rate limiting for the endpoints a client (or an attacker) could hammer: login,
//! registration, and sending events. Each limit keeps one bucket per client: the user once
//! logged in, the IP address before (an IPv6 address counts by its /64, which one host
//! typically holds whole). Over the limit, the answer is 429 `M_LIMIT_EXCEEDED` with
//! `retry_after_ms` and a `Retry-After` header.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use hearth_config::{RateLimit, RateLimitsConfig};
use ruma::api::error::ErrorKind;
use ruma::api::error::{LimitExceededErrorData, RetryAfter};
use ruma::{OwnedUserId, UserId};

use crate::ApiError;

/// Buckets kept per limit before idle ones are dropped (a full bucket is the same as none).
const MAX_BUCKETS: usize = 65_536;

/// The limits the handlers apply.
#[derive(Clone, Debug)]
pub struct RateLimits {
    pub(crate) login: Limiter,
    pub(crate) login_account: Limiter,
    pub(crate) register: Limiter,
    pub(crate) send: Limiter,
    pub(crate) membership: Limiter,
    pub(crate) room_membership: Limiter,
    pub(crate) profile: Limiter,
    pub(crate) settings: Limiter,
    pub(crate) ephemeral: Limiter,
}

impl RateLimits {
    pub fn new(config: &RateLimitsConfig) -> Self {
        Self {
            login: Limiter::new(config.login),
            login_account: Limiter::new(config.login_account),
            register: Limiter::new(config.register),
            send: Limiter::new(config.send),
            membership: Limiter::new(config.membership),
            room_membership: Limiter::new(config.room_membership),
            profile: Limiter::new(config.profile),
            settings: Limiter::new(config.settings),
            ephemeral: Limiter::new(config.ephemeral),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(&RateLimitsConfig::default())
    }
}

/// Whom a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum RateKey {
    User(OwnedUserId),
    Room(ruma::OwnedRoomId),
    Ip(IpAddr),
    /// No peer address known (only when the router is served without connect info).
    Unknown,
}

impl RateKey {
    pub(crate) fn user(user: &UserId) -> Self {
        Self::User(user.to_owned())
    }

    pub(crate) fn room(room: &ruma::RoomId) -> Self {
        Self::Room(room.to_owned())
    }

    pub(crate) fn ip(ip: Option<IpAddr>) -> Self {
        match ip {
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::Ip(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    Self::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
            Some(v4) => Self::Ip(v4),
            None => Self::Unknown,
        }
    }
}

/// The peer's IP address, when the server runs with connect info (the binary always does).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// One limit: a token bucket per key.
#[derive(Clone)]
pub(crate) struct Limiter {
    inner: Arc<Inner>,
}

struct Inner {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<RateKey, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("per_second", &self.inner.per_second)
            .field("burst", &self.inner.burst)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            inner: Arc::new(Inner {
                // The config is validated; these floors only keep the arithmetic sane.
                per_second: limit.per_second.max(f64::MIN_POSITIVE),
                burst: f64::from(limit.burst.max(1)),
                buckets: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Take one request from the key's bucket, or answer 429.
    pub(crate) fn check(&self, key: RateKey) -> Result<(), ApiError> {
        self.take(key, Instant::now())
            .map_err(ApiError::limit_exceeded)
    }

    /// 429 if the key's bucket is empty, without taking anything: for limits that only count
    /// failures ([`Limiter::charge`] them once they happen).
    pub(crate) fn check_available(&self, key: &RateKey) -> Result<(), ApiError> {
        let now = Instant::now();
        let Inner {
            per_second, burst, ..
        } = *self.inner;
        let buckets = self
            .inner
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(bucket) = buckets.get(key) else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        let tokens = (bucket.tokens + elapsed * per_second).min(burst);
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(ApiError::limit_exceeded(Duration::from_secs_f64(
                (1.0 - tokens) / per_second,
            )))
        }
    }

    /// Take a token for a failure that happened (an empty bucket stays empty).
    pub(crate) fn charge(&self, key: RateKey) {
        let _ = self.take(key, Instant::now());
    }

    /// Take one token at `now`; if there is none, how long until there is.
    fn take(&self, key: RateKey, now: Instant) -> Result<(), Duration> {
        let Inner {
            per_second, burst, ..
        } = *self.inner;
        let mut buckets = self
            .inner
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&key) {
            self.prune(&mut buckets, now);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }

    /// Drop the buckets that have refilled (they hold nothing a fresh one would not); if that
    /// is not enough, the half that was idle longest.
    fn prune(&self, buckets: &mut HashMap<RateKey, Bucket>, now: Instant) {
        let Inner {
            per_second, burst, ..
        } = *self.inner;
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < burst
        });
        if buckets.len() >= MAX_BUCKETS {
            let mut ages: Vec<Instant> = buckets.values().map(|b| b.at).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            buckets.retain(|_, b| b.at > cutoff);
        }
    }
}

impl ApiError {
    /// 429 `M_LIMIT_EXCEEDED`, telling the client how long to wait.
    pub(crate) fn limit_exceeded(wait: Duration) -> Self {
        // A millisecond more, so that a client that waits exactly this long is let through.
        let delay = RetryAfter::Delay(wait + Duration::from_millis(1));
        let mut data = LimitExceededErrorData::new();
        data.retry_after = Some(delay);
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::LimitExceeded(data),
            "too many requests; try again later",
        );
        error.retry_after = Some(wait);
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: u32) -> Limiter {
        Limiter::new(RateLimit { per_second, burst })
    }

    #[test]
    fn burst_then_refill() {
        let limiter = limiter(2.0, 3);
        let key = RateKey::Unknown;
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limiter.take(key.clone(), start).is_ok());
        }
        let wait = limiter.take(key.clone(), start).expect_err("burst used up");
        assert!(
            wait > Duration::from_millis(400) && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert!(
            limiter
                .take(key.clone(), start + Duration::from_millis(300))
                .is_err(),
            "not refilled yet"
        );
        assert!(
            limiter
                .take(key.clone(), start + Duration::from_millis(500))
                .is_ok()
        );
        // A long pause refills to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.take(key.clone(), later).is_ok());
        }
        assert!(limiter.take(key, later).is_err());
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let limiter = limiter(1.0, 1);
        let now = Instant::now();
        let alice = RateKey::user(ruma::user_id!("@alice:x.test"));
        let bob = RateKey::user(ruma::user_id!("@bob:x.test"));
        assert!(limiter.take(alice.clone(), now).is_ok());
        assert!(limiter.take(alice, now).is_err());
        assert!(limiter.take(bob, now).is_ok());
    }

    #[test]
    fn ipv6_counts_by_prefix() {
        let a: IpAddr = "2001:db8:1:2::1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        let b: IpAddr = "2001:db8:1:2:ffff::9"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        let c: IpAddr = "2001:db8:1:3::1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(RateKey::ip(Some(a)), RateKey::ip(Some(b)));
        assert_ne!(RateKey::ip(Some(a)), RateKey::ip(Some(c)));
        let mapped: IpAddr = "::ffff:192.0.2.1"
            .parse()
            .unwrap_or(IpAddr::V4([0; 4].into()));
        assert_eq!(
            RateKey::ip(Some(mapped)),
            RateKey::Ip(IpAddr::V4([192, 0, 2, 1].into()))
        );
    }

    #[test]
    fn pruning_keeps_the_table_bounded() {
        let limiter = limiter(1.0, 2);
        let now = Instant::now();
        for i in 0..(MAX_BUCKETS as u32 + 10) {
            let ip = IpAddr::V4(i.into());
            assert!(limiter.take(RateKey::ip(Some(ip)), now).is_ok());
        }
        let len = limiter
            .inner
            .buckets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        assert!(len <= MAX_BUCKETS, "{len}");
    }

    #[tokio::test]
    async fn answer_is_429_with_retry_after() {
        let error = ApiError::limit_exceeded(Duration::from_millis(1500));
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        let response = axum::response::IntoResponse::into_response(error);
        assert_eq!(response.headers()["retry-after"], "2");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["errcode"], "M_LIMIT_EXCEEDED");
        assert_eq!(body["retry_after_ms"], 1501);
    }
}
