//! The client listener: HTTP/1 connections up to a cap, with timeouts, and the client's real
//! address behind trusted proxies.
//!
//! - A connection must send a request's headers within [`HEADER_TIMEOUT`] of opening, or of its
//!   previous response (so an idle keep-alive connection closes too); bodies are timed by the
//!   extractor that reads them.
//! - At most `max` connections are served at once, a cap that sits below the open-file limit
//!   with a reserve, so that accepting (and refusing) never fails for want of a descriptor. At
//!   the cap, a new connection takes the place of the longest-idle one (no request in flight:
//!   a keep-alive connection between requests, or one that never finished its headers), so
//!   that a crowd of idle or slow connections cannot lock real clients out; only when every
//!   connection is busy is the newcomer answered 503 and closed. A failed `accept` (out of
//!   descriptors anyway) pauses instead of spinning or stopping the server.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hearth_config::Cidr;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// Time to send a request's headers, counted from the connection's start or its last response.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Descriptors kept back from the connection cap: the database, log files, outbound
/// connections, and the connections being refused.
const RESERVED_DESCRIPTORS: u64 = 128;

/// How many connections to serve at once: what the operator or profile asks, but never so many
/// that the process runs out of file descriptors.
pub fn connection_cap(wanted: u32) -> usize {
    let cap = match open_file_limit() {
        Some(limit) => u64::from(wanted).min(limit.saturating_sub(RESERVED_DESCRIPTORS).max(16)),
        None => u64::from(wanted),
    };
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (no libc call needed).
fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Which peers may tell us who the client is.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(ranges: Vec<Cidr>) -> Self {
        Self(ranges)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|range| range.contains(ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
    /// nearest hop in `X-Forwarded-For` that is not itself trusted (each proxy appends the
    /// address it saw, so the list is read from the right).
    pub fn client(&self, peer: SocketAddr, headers: &http::HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        let mut client = peer.ip();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                // A hop we cannot read: stop at the last address we could vouch for.
                Err(_) => break,
            }
        }
        SocketAddr::new(client, peer.port())
    }
}

/// The open connections, so that an idle one can make room.
#[derive(Default)]
struct Connections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Tracked>>,
}

struct Tracked {
    /// Requests being answered on the connection.
    in_flight: Arc<AtomicUsize>,
    /// Since when nothing is in flight (or since it opened).
    idle_since: Arc<Mutex<Instant>>,
    close: Arc<Notify>,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Tracked>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ask the longest-idle connection to close; false if every connection is busy. It leaves
    /// the table at once, so that each newcomer makes its own room.
    fn evict_idle(&self) -> bool {
        let mut open = self.lock();
        let idlest = open
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| *c.idle_since.lock().unwrap_or_else(|p| p.into_inner()))
            .map(|(id, _)| *id);
        match idlest.and_then(|id| open.remove(&id)) {
            Some(connection) => {
                connection.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Counts a request in flight on its connection while it is being answered.
struct InFlight {
    count: Arc<AtomicUsize>,
    idle_since: Arc<Mutex<Instant>>,
}

impl InFlight {
    fn start(count: &Arc<AtomicUsize>, idle_since: &Arc<Mutex<Instant>>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self {
            count: count.clone(),
            idle_since: idle_since.clone(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Shared {
    app: Router,
    permits: Arc<Semaphore>,
    connections: Connections,
    proxies: TrustedProxies,
    builder: hyper::server::conn::http1::Builder,
    /// Becomes true when the server stops: connections finish the request at hand and close.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The federation listener's TLS (the client listener speaks plain HTTP, for a proxy).
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// How long a stopping server waits for the requests in flight (long-polling syncs give up
/// their wait early; a slow one is cut off after this).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `app` on `listener` until `shutdown`, then let open requests finish. With `tls`,
/// each connection's TLS handshake must complete within [`HEADER_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    max_connections: usize,
    proxies: TrustedProxies,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        app,
        permits: Arc::new(Semaphore::new(max_connections)),
        connections: Connections::default(),
        proxies,
        builder,
        stopping,
        tls,
    });
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection; pausing");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        tokio::spawn(connection(shared.clone(), stream, peer));
    }
    drop(listener);
    stop.send_replace(true);
    // Every connection holds a permit until it has closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, shared.permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}

fn in_flight_now(shared: &Shared, id: u64) -> usize {
    shared
        .connections
        .lock()
        .get(&id)
        .map_or(0, |c| c.in_flight.load(Ordering::Acquire))
}

async fn permit(shared: &Shared) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = shared.permits.clone().try_acquire_owned() {
        return Some(permit);
    }
    if !shared.connections.evict_idle() {
        return None;
    }
    tokio::time::timeout(
        Duration::from_secs(1),
        shared.permits.clone().acquire_owned(),
    )
    .await
    .ok()?
    .ok()
}

async fn connection(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let Some(permit) = permit(&shared).await else {
        return refuse(stream).await;
    };
    let _ = stream.set_nodelay(true);
    match shared.tls.clone() {
        None => serve_connection(shared, permit, TokioIo::new(stream), peer).await,
        Some(acceptor) => {
            match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    serve_connection(shared, permit, TokioIo::new(stream), peer).await;
                }
                // A failed or slow handshake is the peer's business; at debug for operators
                // chasing a partner's TLS trouble.
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_connection<I>(
    shared: Arc<Shared>,
    permit: OwnedSemaphorePermit,
    io: I,
    peer: SocketAddr,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let id = shared.connections.next.fetch_add(1, Ordering::Relaxed);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let idle_since = Arc::new(Mutex::new(Instant::now()));
    let close = Arc::new(Notify::new());
    shared.connections.lock().insert(
        id,
        Tracked {
            in_flight: in_flight.clone(),
            idle_since: idle_since.clone(),
            close: close.clone(),
        },
    );
    let service = {
        let shared = shared.clone();
        hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            let guard = InFlight::start(&in_flight, &idle_since);
            let client = shared.proxies.client(peer, request.headers());
            request.extensions_mut().insert(ConnectInfo(client));
            let answer = shared
                .app
                .clone()
                .oneshot(request.map(axum::body::Body::new));
            async move {
                let response = answer.await;
                drop(guard);
                response
            }
        })
    };
    let mut served = std::pin::pin!(shared.builder.serve_connection(io, service));
    let mut stopping = shared.stopping.clone();
    let already_stopping = *stopping.borrow_and_update();
    if !already_stopping {
        tokio::select! {
            // Errors here are the client's (a reset, a timeout): nothing to report.
            _ = served.as_mut() => {}
            () = close.notified() => {}
            // The only change there is: the server is stopping.
            changed = stopping.changed() => {
                if changed.is_ok() && in_flight_now(&shared, id) > 0 {
                    // Finish the request at hand, then close.
                    served.as_mut().graceful_shutdown();
                    let _ = served.as_mut().await;
                }
            }
        }
    }
    shared.connections.lock().remove(&id);
    drop(permit);
}

/// Over the cap: say so and close, so the client neither waits nor holds a descriptor.
async fn refuse(mut stream: TcpStream) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 5\r\nconnection: close\r\ncontent-length: 71\r\n\r\n\
{\"errcode\":\"M_UNKNOWN\",\"error\":\"too many connections; try again later\"}";
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(BUSY)).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_well_formed() {
        let text =
            "{\"errcode\":\"M_UNKNOWN\",\"error\":\"too many connections; try again later\"}";
        assert_eq!(text.len(), 71);
    }

    fn forwarded(value: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let proxies = TrustedProxies::new(vec![
            "127.0.0.1".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let ip = |peer, header: &str| proxies.client(peer, &forwarded(header)).ip().to_string();
        assert_eq!(ip(proxy, "203.0.113.7"), "203.0.113.7");
        // A client's own claim at the left is skipped: the nearest untrusted hop counts.
        assert_eq!(ip(proxy, "1.1.1.1, 203.0.113.7, 10.1.2.3"), "203.0.113.7");
        assert_eq!(ip(stranger, "203.0.113.7"), "192.0.2.9");
        assert_eq!(ip(proxy, "garbage"), "127.0.0.1");
        assert_eq!(
            proxies
                .client(proxy, &http::HeaderMap::new())
                .ip()
                .to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn the_cap_stays_below_the_descriptor_limit() {
        if let Some(limit) = open_file_limit() {
            assert!((connection_cap(u32::MAX) as u64) < limit);
        }
        assert!(connection_cap(10) <= 10);
    }
}
