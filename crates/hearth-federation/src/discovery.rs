//! Where a server name lives: the spec's resolution steps, with `[federation] overrides`
//! first. <https://spec.matrix.org/v1.16/server-server-api/#resolving-server-names>
//!
//! The outcome is a [`Destination`]: the name the TLS certificate must carry (also the URL's
//! host, so SNI and verification use it), the port, the `Host` header, and where to connect
//! when that is not the name's own address (an override, an SRV target). Outbound requests
//! resolve the URL's host through [`Targets`], which knows those connect-to hosts.
//!
//! Results are cached: a `.well-known` answer as its `Cache-Control` says (24 h by default,
//! 48 h at most), a failed one for an hour, everything else for an hour. The cache holds at
//! most [`MAX_CACHED`] servers and starts over when full.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use ruma::{OwnedServerName, ServerName};

use crate::FederationError;

/// The port federation uses when nothing says otherwise.
pub const DEFAULT_PORT: u16 = 8448;
/// How many servers' resolutions are cached.
pub const MAX_CACHED: usize = 4_096;
/// A `.well-known` response larger than this is treated as invalid.
const WELL_KNOWN_MAX_BYTES: usize = 64 * 1024;
const WELL_KNOWN_TIMEOUT: Duration = Duration::from_secs(10);
const WELL_KNOWN_DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
const WELL_KNOWN_MAX_TTL: Duration = Duration::from_secs(48 * 3600);
const FAILURE_TTL: Duration = Duration::from_secs(3600);
const OTHER_TTL: Duration = Duration::from_secs(3600);

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The URL's host: what the certificate must name (a hostname or an IP literal).
    pub tls_name: String,
    pub port: u16,
    /// The `Host` header.
    pub host_header: String,
    /// Where to connect instead of `tls_name`'s own addresses (an override's or SRV record's
    /// host), if anywhere.
    pub connect_to: Option<String>,
}

impl Destination {
    /// `https://host:port`, brackets around an IPv6 literal.
    pub fn base_url(&self) -> String {
        match self.tls_name.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("https://[{ip}]:{}", self.port),
            _ => format!("https://{}:{}", self.tls_name, self.port),
        }
    }
}

/// The connect-to hosts of the destinations in use, by URL host, for the HTTP client's DNS
/// lookups. Names without an entry resolve as themselves (through the system resolver, so
/// `/etc/hosts` applies).
#[derive(Debug, Default)]
pub struct Targets(RwLock<HashMap<String, String>>);

impl Targets {
    fn set(&self, tls_name: &str, connect_to: Option<&str>) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        match connect_to {
            Some(host) => {
                if map.len() >= MAX_CACHED && !map.contains_key(tls_name) {
                    map.clear();
                }
                map.insert(tls_name.to_owned(), host.to_owned());
            }
            None => {
                map.remove(tls_name);
            }
        }
    }

    fn lookup_name(&self, name: &str) -> String {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_owned())
    }
}

impl reqwest::dns::Resolve for Targets {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = self.lookup_name(name.as_str());
        Box::pin(async move {
            // The port is the URL's; the client puts it in.
            let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
                Ok(ip) => vec![SocketAddr::new(ip, 0)],
                Err(_) => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// `host[:port]` as the spec writes server names and delegations: the host (brackets kept
/// off an IPv6 literal) and the port if any. `None` when it is not that shape.
pub fn split_host_port(text: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        return match after {
            "" => Some((ip.to_owned(), None)),
            _ => Some((ip.to_owned(), Some(after.strip_prefix(':')?.parse().ok()?))),
        };
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port.parse::<u16>().ok()?)),
        None => (text, None),
    };
    let valid = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    valid.then(|| (host.to_owned(), port))
}

fn is_ip(host: &str) -> bool {
    host.parse::<IpAddr>().is_ok()
}

/// `max-age` of a `Cache-Control` header, bounded as the spec recommends.
fn cache_ttl(headers: &http::HeaderMap) -> Duration {
    let max_age = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|directive| {
            let (name, value) = directive.trim().split_once('=')?;
            name.eq_ignore_ascii_case("max-age")
                .then(|| value.trim().parse::<u64>().ok())
                .flatten()
        });
    max_age
        .map(Duration::from_secs)
        .unwrap_or(WELL_KNOWN_DEFAULT_TTL)
        .min(WELL_KNOWN_MAX_TTL)
}

/// The `m.server` of a `.well-known/matrix/server` body, if it is a valid delegation.
pub fn parse_well_known(body: &[u8]) -> Option<(String, Option<u16>)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    split_host_port(value.get("m.server")?.as_str()?)
}

/// Finds servers, with a cache.
#[derive(Debug)]
pub struct Discovery {
    overrides: BTreeMap<OwnedServerName, (String, u16)>,
    /// For `.well-known` lookups (plain HTTPS, redirects followed).
    http: reqwest::Client,
    dns: Option<hickory_resolver::TokioResolver>,
    targets: Arc<Targets>,
    cache: Mutex<HashMap<OwnedServerName, (Destination, Instant)>>,
}

impl Discovery {
    /// Overrides are `server name -> host:port`, checked here.
    pub fn new(
        overrides: &BTreeMap<String, String>,
        http: reqwest::Client,
        targets: Arc<Targets>,
    ) -> Result<Self, FederationError> {
        let overrides = overrides
            .iter()
            .map(|(name, target)| {
                let server = OwnedServerName::try_from(name.as_str()).map_err(|e| {
                    FederationError::Config(format!(
                        "[federation] overrides: {name:?} is not a server name: {e}"
                    ))
                })?;
                let (host, port) = split_host_port(target)
                    .and_then(|(host, port)| Some((host, port?)))
                    .ok_or_else(|| {
                        FederationError::Config(format!(
                            "[federation] overrides: {name:?} = {target:?} is not host:port"
                        ))
                    })?;
                Ok((server, (host, port)))
            })
            .collect::<Result<_, FederationError>>()?;
        let dns = match hickory_resolver::TokioResolver::builder_tokio() {
            Ok(builder) => Some(builder.build()),
            Err(e) => {
                tracing::warn!(error = %e, "no DNS configuration: SRV records will not be used");
                None
            }
        };
        Ok(Self {
            overrides,
            http,
            dns,
            targets,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Where `server` lives (cached).
    pub async fn resolve(&self, server: &ServerName) -> Result<Destination, FederationError> {
        let cached = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(server)
                .filter(|(_, until)| *until > Instant::now())
                .map(|(d, _)| d.clone())
        };
        if let Some(destination) = cached {
            self.targets
                .set(&destination.tls_name, destination.connect_to.as_deref());
            return Ok(destination);
        }
        let (destination, ttl) = self.find(server).await?;
        self.targets
            .set(&destination.tls_name, destination.connect_to.as_deref());
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(
            server.to_owned(),
            (destination.clone(), Instant::now() + ttl),
        );
        Ok(destination)
    }

    /// Forget a server's resolution (after its connections fail, say).
    pub fn forget(&self, server: &ServerName) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(server);
    }

    async fn find(&self, server: &ServerName) -> Result<(Destination, Duration), FederationError> {
        let host = server.host().trim_start_matches('[').trim_end_matches(']');
        if let Some((target, port)) = self.overrides.get(server) {
            // The certificate still names the server; only the address is overridden.
            return Ok((
                Destination {
                    tls_name: host.to_owned(),
                    port: *port,
                    host_header: server.to_string(),
                    connect_to: Some(target.clone()),
                },
                Duration::MAX / 4,
            ));
        }
        // 1. An IP literal, 2. a hostname with a port: as they are.
        if server.is_ip_literal() || server.port().is_some() {
            return Ok((
                Destination {
                    tls_name: host.to_owned(),
                    port: server.port().unwrap_or(DEFAULT_PORT),
                    host_header: server.to_string(),
                    connect_to: None,
                },
                OTHER_TTL,
            ));
        }
        // 3. A delegation in `.well-known`.
        if let Some(((delegated, port), ttl)) = self.well_known(host).await {
            let destination = if is_ip(&delegated) || port.is_some() {
                let host_header = match port {
                    Some(port) if delegated.contains(':') => format!("[{delegated}]:{port}"),
                    Some(port) => format!("{delegated}:{port}"),
                    None => delegated.clone(),
                };
                Destination {
                    tls_name: delegated.clone(),
                    port: port.unwrap_or(DEFAULT_PORT),
                    host_header,
                    connect_to: None,
                }
            } else {
                self.by_srv(&delegated).await
            };
            return Ok((destination, ttl));
        }
        // 4.-6. SRV records of the name itself, else its address on the default port. A
        // failed `.well-known` is asked again after an hour.
        Ok((self.by_srv(host).await, FAILURE_TTL))
    }

    /// `_matrix-fed._tcp.<host>`, then the deprecated `_matrix._tcp.<host>`, else the host on
    /// the default port. The certificate and `Host` name the host either way.
    async fn by_srv(&self, host: &str) -> Destination {
        for service in ["_matrix-fed._tcp", "_matrix._tcp"] {
            if let Some((target, port)) = self.srv(&format!("{service}.{host}.")).await {
                return Destination {
                    tls_name: host.to_owned(),
                    port,
                    host_header: host.to_owned(),
                    connect_to: Some(target),
                };
            }
        }
        Destination {
            tls_name: host.to_owned(),
            port: DEFAULT_PORT,
            host_header: host.to_owned(),
            connect_to: None,
        }
    }

    /// The best SRV record's target and port (lowest priority, then highest weight).
    async fn srv(&self, name: &str) -> Option<(String, u16)> {
        let lookup = self.dns.as_ref()?.srv_lookup(name).await.ok()?;
        let best = lookup
            .iter()
            .min_by_key(|r| (r.priority(), std::cmp::Reverse(r.weight())))?;
        let target = best.target().to_utf8();
        let target = target.trim_end_matches('.');
        // A target of "." means the service is not offered.
        (!target.is_empty()).then(|| (target.to_owned(), best.port()))
    }

    /// `https://<host>/.well-known/matrix/server`: the delegation and how long to keep it, or
    /// `None` (no valid delegation; remembered for an hour by the caller's cache).
    async fn well_known(&self, host: &str) -> Option<((String, Option<u16>), Duration)> {
        let url = format!("https://{host}/.well-known/matrix/server");
        let fetched = tokio::time::timeout(WELL_KNOWN_TIMEOUT, async {
            let mut response = self.http.get(&url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            let ttl = cache_ttl(response.headers());
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.ok()? {
                body.extend_from_slice(&chunk);
                if body.len() > WELL_KNOWN_MAX_BYTES {
                    return None;
                }
            }
            Some((parse_well_known(&body)?, ttl))
        })
        .await
        .ok()
        .flatten();
        if fetched.is_none() {
            tracing::debug!(%host, "no valid .well-known/matrix/server");
        }
        // A zero max-age would mean asking again for every request.
        fetched.map(|(d, ttl)| (d, ttl.max(Duration::from_secs(60))))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_split_as_the_spec_writes_them() {
        assert_eq!(split_host_port("a.test"), Some(("a.test".into(), None)));
        assert_eq!(
            split_host_port("a.test:8449"),
            Some(("a.test".into(), Some(8449)))
        );
        assert_eq!(split_host_port("1.2.3.4"), Some(("1.2.3.4".into(), None)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1".into(), Some(80))));
        assert_eq!(split_host_port("[::1]"), Some(("::1".into(), None)));
        assert_eq!(split_host_port("a.test:"), None);
        assert_eq!(split_host_port("a.test:99999"), None);
        assert_eq!(split_host_port("a test"), None);
        assert_eq!(split_host_port(""), None);
        assert_eq!(split_host_port("[nope]:1"), None);
    }

    #[test]
    fn well_known_bodies_are_read_strictly() {
        assert_eq!(
            parse_well_known(br#"{"m.server": "delegated.test:443"}"#),
            Some(("delegated.test".into(), Some(443)))
        );
        assert_eq!(parse_well_known(br#"{"m.server": 5}"#), None);
        assert_eq!(parse_well_known(b"not json"), None);
        assert_eq!(parse_well_known(br#"{"m.server": "bad host!"}"#), None);
    }

    #[test]
    fn cache_control_is_respected_within_bounds() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(cache_ttl(&headers), WELL_KNOWN_DEFAULT_TTL);
        headers.insert("cache-control", "public, max-age=600".parse().unwrap());
        assert_eq!(cache_ttl(&headers), Duration::from_secs(600));
        headers.insert("cache-control", "max-age=99999999".parse().unwrap());
        assert_eq!(cache_ttl(&headers), WELL_KNOWN_MAX_TTL);
    }

    #[test]
    fn base_urls_bracket_ipv6() {
        let d = Destination {
            tls_name: "::1".into(),
            port: 8448,
            host_header: "[::1]".into(),
            connect_to: None,
        };
        assert_eq!(d.base_url(), "https://[::1]:8448");
    }
}
