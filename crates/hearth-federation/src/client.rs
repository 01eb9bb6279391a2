//! Outbound requests: to partners only, found by [`Discovery`], over TLS verified against the
//! system roots plus `[federation] ca_file`, signed with `X-Matrix`, answers read within a
//! size limit.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hearth_keys::SigningKey;
use ruma::ServerName;
use ruma::api::auth_scheme::NoAuthentication;
use ruma::api::federation::authentication::{ServerSignatures, XMatrixSigningInput};
use ruma::api::path_builder::SinglePath;
use ruma::api::{
    IncomingResponseExt, OutgoingRequest, OutgoingRequestExt, error::FromHttpResponseError,
};

use crate::discovery::{Discovery, Targets};
use crate::{FederationError, Policy};

/// How long a connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole exchange may take unless the endpoint needs longer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Answers larger than this are refused (a `send_join` of a very large room is the largest).
pub const MAX_RESPONSE_BYTES: usize = 128 << 20;

/// The TLS roots for outbound connections: the system's plus the operator's extra bundle.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, FederationError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "skipping a system CA certificate");
    }
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| {
                FederationError::Config(format!("[federation] ca_file {}: {e}", path.display()))
            })?;
        if certs.is_empty() {
            return Err(FederationError::Config(format!(
                "[federation] ca_file {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                FederationError::Config(format!("[federation] ca_file {}: {e}", path.display()))
            })?;
        }
    }
    if roots.is_empty() {
        tracing::warn!("no trusted CA certificates: outbound federation will fail TLS");
    }
    tracing::debug!(system = added, "outbound TLS roots");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| FederationError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Requests to other servers.
#[derive(Debug)]
pub struct Client {
    policy: Policy,
    key: Arc<SigningKey>,
    http: reqwest::Client,
    pub(crate) discovery: Discovery,
}

impl Client {
    pub fn new(
        policy: Policy,
        key: Arc<SigningKey>,
        tls: rustls::ClientConfig,
        overrides: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, FederationError> {
        let targets = Arc::new(Targets::default());
        let build = |redirects| {
            reqwest::Client::builder()
                .use_preconfigured_tls(tls.clone())
                .dns_resolver(targets.clone())
                .connect_timeout(CONNECT_TIMEOUT)
                .timeout(REQUEST_TIMEOUT)
                .redirect(redirects)
                .user_agent(concat!("Hearth/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| FederationError::Config(format!("HTTP client: {e}")))
        };
        // Federation requests never follow redirects; `.well-known` lookups may (spec).
        let http = build(reqwest::redirect::Policy::none())?;
        let well_known = build(reqwest::redirect::Policy::limited(5))?;
        let discovery = Discovery::new(overrides, well_known, targets)?;
        Ok(Self {
            policy,
            key,
            http,
            discovery,
        })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Send a signed request to `destination` and parse its answer.
    pub async fn send<R>(
        &self,
        destination: &ServerName,
        request: R,
    ) -> Result<R::IncomingResponse, FederationError>
    where
        R: OutgoingRequest<Authentication = ServerSignatures, PathBuilder = SinglePath>,
    {
        self.policy.check(destination)?;
        let target = self.discovery.resolve(destination).await?;
        let input = XMatrixSigningInput::new(
            self.key.server_name().to_owned(),
            destination.to_owned(),
            self.key.pair(),
        );
        let request = request
            .try_into_http_request::<Vec<u8>>(&target.base_url(), input, ())
            .map_err(|e| bad(destination, format!("cannot build the request: {e}")))?;
        let (status, headers, body) = self
            .exchange(destination, &target.host_header, request, REQUEST_TIMEOUT)
            .await?;
        parse::<R>(destination, status, headers, &body)
    }

    /// Send an unauthenticated request (the key endpoint) to `destination`.
    pub async fn send_unsigned<R>(
        &self,
        destination: &ServerName,
        request: R,
    ) -> Result<(R::IncomingResponse, Vec<u8>), FederationError>
    where
        R: OutgoingRequest<Authentication = NoAuthentication, PathBuilder = SinglePath>,
    {
        self.policy.check(destination)?;
        let target = self.discovery.resolve(destination).await?;
        let request = request
            .try_into_http_request::<Vec<u8>>(&target.base_url(), (), ())
            .map_err(|e| bad(destination, format!("cannot build the request: {e}")))?;
        let (status, headers, body) = self
            .exchange(destination, &target.host_header, request, REQUEST_TIMEOUT)
            .await?;
        let parsed = parse::<R>(destination, status, headers, &body)?;
        Ok((parsed, body))
    }

    async fn exchange(
        &self,
        destination: &ServerName,
        host_header: &str,
        request: http::Request<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(http::StatusCode, http::HeaderMap, Vec<u8>), FederationError> {
        let unreachable = |why: String| FederationError::Unreachable {
            server: destination.to_owned(),
            why,
        };
        let mut request = reqwest::Request::try_from(request)
            .map_err(|e| bad(destination, format!("cannot build the request: {e}")))?;
        if let Ok(host) = http::HeaderValue::from_str(host_header) {
            request.headers_mut().insert(http::header::HOST, host);
        }
        *request.timeout_mut() = Some(timeout);
        let mut response = self.http.execute(request).await.map_err(|e| {
            // The next attempt looks the server up afresh.
            self.discovery.forget(destination);
            unreachable(error_chain(&e))
        })?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unreachable(error_chain(&e)))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(bad(
                    destination,
                    format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, headers, body))
    }
}

fn bad(server: &ServerName, why: String) -> FederationError {
    FederationError::BadResponse {
        server: server.to_owned(),
        why,
    }
}

/// An error with its causes, which is where reqwest puts the interesting part (TLS, refused).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn parse<R: OutgoingRequest>(
    server: &ServerName,
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: &[u8],
) -> Result<R::IncomingResponse, FederationError> {
    if !status.is_success() {
        let errcode = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("errcode")?.as_str().map(str::to_owned));
        return Err(FederationError::Remote {
            server: server.to_owned(),
            status,
            errcode,
            body: String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
        });
    }
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    R::IncomingResponse::try_from_http_response(response).map_err(|e| match e {
        FromHttpResponseError::Server(_) => bad(server, "an error with a success status".into()),
        e => bad(server, e.to_string()),
    })
}
