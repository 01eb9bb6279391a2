//! `Ruma<T>`: the one extractor every client endpoint uses. It caps the body before reading it,
//! tells "not JSON" from "wrong JSON", authenticates the access token the endpoint's auth scheme
//! asks for (header or the deprecated `access_token` query parameter), and hands the handler a
//! typed ruma request.

use std::collections::HashMap;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::{StatusCode, header};
use ruma::api::auth_scheme::{
    AccessToken, AccessTokenOptional, AppserviceToken, AppserviceTokenOptional, NoAccessToken,
    NoAuthentication,
};
use ruma::api::error::ErrorKind;
use ruma::api::error::{DeserializationError, FromHttpRequestError};
use ruma::api::federation::authentication::ServerSignatures;
use ruma::api::path_builder::PathBuilder;
use ruma::api::{IncomingRequest, IncomingRequestExt};

use crate::{ApiError, ApiState};

/// Request bodies larger than this are refused before they are read (media uploads will have
/// their own limit).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Request bodies of server-server endpoints larger than this are refused.
pub const MAX_FEDERATION_BODY_BYTES: usize = 8 << 20;

/// A request body must arrive whole within this: a client trickling bytes holds a connection
/// and a task, and gets cut off.
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether an endpoint wants an access token, or a server's signature.
pub(crate) trait TokenPolicy {
    const REQUIRED: bool;
    const ACCEPTED: bool;
    /// A server-server endpoint: the request must be signed with `X-Matrix` by a partner.
    const SIGNED: bool = false;
}

macro_rules! policy {
    ($($scheme:ty => $required:expr, $accepted:expr;)*) => {
        $(impl TokenPolicy for $scheme {
            const REQUIRED: bool = $required;
            const ACCEPTED: bool = $accepted;
        })*
    };
}

policy! {
    AccessToken => true, true;
    AccessTokenOptional => false, true;
    AppserviceToken => true, true;
    AppserviceTokenOptional => false, true;
    NoAuthentication => false, false;
    NoAccessToken => false, false;
}

impl TokenPolicy for ServerSignatures {
    const REQUIRED: bool = false;
    const ACCEPTED: bool = false;
    const SIGNED: bool = true;
}

/// Who made the request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: ruma::OwnedUserId,
    pub device_id: ruma::OwnedDeviceId,
    pub is_admin: bool,
    /// A guest account: only the spec's guest endpoints answer it (see `guest.rs`).
    pub is_guest: bool,
    /// The access token, for endpoints that act on the session itself (logout).
    pub access_token: String,
}

/// A parsed, authenticated ruma request.
pub struct Ruma<T> {
    pub body: T,
    pub caller: Option<Caller>,
    /// For a server-server endpoint: the partner whose signature the request carries.
    origin: Option<ruma::OwnedServerName>,
    /// The request had no body at all, which ruma reads as `{}`: right for endpoints whose
    /// body is optional, wrong for those whose body *is* the content.
    empty_body: bool,
    /// The body as sent (already checked by `json_limits`), for the fields of newer proposals
    /// that ruma's types do not carry yet.
    raw_body: axum::body::Bytes,
}

impl<T> Ruma<T> {
    /// The caller, for endpoints whose scheme requires a token (the extractor guarantees it).
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::MissingToken,
                "missing access token",
            )
        })
    }

    /// The signing server, for endpoints whose scheme is `X-Matrix` (the extractor
    /// guarantees it).
    pub fn origin(&self) -> Result<&ruma::ServerName, ApiError> {
        self.origin.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::Unauthorized,
                "this endpoint needs an X-Matrix signature",
            )
        })
    }

    /// The body as sent (empty when there was none).
    pub fn raw_body(&self) -> &[u8] {
        &self.raw_body
    }

    /// Refuse a missing body, for endpoints whose body is the event or account-data content.
    pub fn require_body(&self) -> Result<(), ApiError> {
        if self.empty_body {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::NotJson,
                "this endpoint needs a JSON object as its body",
            ));
        }
        Ok(())
    }
}

fn access_token(request: &Request) -> Result<Option<String>, ApiError> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::UnknownToken(Default::default()),
                "malformed Authorization header",
            )
        })?;
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(Some(token.trim().to_owned()))
            }
            _ => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::UnknownToken(Default::default()),
                "the Authorization header must use the Bearer scheme",
            )),
        };
    }
    // NOTSPEC-compatible: deprecated since v1.11 but still sent by older clients and test suites.
    let query = Query::<HashMap<String, String>>::try_from_uri(request.uri()).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidParam,
            "malformed query string",
        )
    })?;
    Ok(query.0.get("access_token").cloned())
}

impl<T> FromRequest<ApiState> for Ruma<T>
where
    T: IncomingRequest + Send,
    T::Authentication: TokenPolicy,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        // Endpoints that take no token ignore whatever Authorization header a proxy adds.
        let token = if <T::Authentication as TokenPolicy>::ACCEPTED {
            access_token(&request)?
        } else {
            None
        };
        let caller = match (token, <T::Authentication as TokenPolicy>::ACCEPTED) {
            (Some(token), true) => Some(state.authenticate(&token).await?),
            (None, true) if <T::Authentication as TokenPolicy>::REQUIRED => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorKind::MissingToken,
                    "this endpoint needs an access token",
                ));
            }
            _ => None,
        };
        if caller.as_ref().is_some_and(|c| c.is_guest)
            && !crate::guest::may_call(&T::METHOD, T::PATH_BUILDER.all_paths())
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorKind::GuestAccessForbidden,
                "guest accounts may not call this endpoint",
            ));
        }

        // A server-server request: the header alone says whether the origin is a partner and
        // which key signed it, before the body is read.
        let authorized = if <T::Authentication as TokenPolicy>::SIGNED {
            Some(state.federation.authorize(request.headers()).await?)
        } else {
            None
        };

        let (mut parts, body) = request.into_parts();
        let path = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::InvalidParam,
                    format!("bad path: {e}"),
                )
            })?;
        let mut path_args: Vec<String> = path.iter().map(|(_, v)| v.to_owned()).collect();
        // An empty last segment (`/state/m.room.name/` or `/state/m.room.name`: the empty state
        // key) is routed without it; ruma still expects the argument.
        let expected = T::PATH_BUILDER
            .all_paths()
            .next()
            .map_or(0, |p| p.matches('{').count());
        path_args.resize(expected.max(path_args.len()), String::new());
        // A transaction of 50 PDUs of up to 64 KiB each, and its EDUs, is larger than a client
        // request may be.
        let limit = if <T::Authentication as TokenPolicy>::SIGNED {
            MAX_FEDERATION_BODY_BYTES
        } else {
            MAX_BODY_BYTES
        };
        let bytes = read_body(&parts.headers, body, limit).await?;
        if !bytes.is_empty() {
            crate::json_limits::check(&bytes)?;
        }
        let origin = match authorized {
            Some(authorized) => {
                let origin = authorized.verify(&parts.method, &parts.uri, &bytes)?;
                // A partner that proved it talks to us is up: what waits for it goes now.
                state.federation.heard_from(&origin);
                Some(origin)
            }
            None => None,
        };
        let empty_body = bytes.is_empty();
        // A missing body is an empty object: the spec lets clients leave out a body whose
        // fields are all optional (`POST /join/{room}`, `/leave`, `/logout`, ...). Endpoints
        // whose body is the content refuse it with `require_body`.
        let body: &[u8] = if empty_body && parts.method != http::Method::GET {
            b"{}"
        } else {
            bytes.as_ref()
        };
        let raw_body = bytes.clone();
        let request = http::Request::from_parts(parts, body);
        let args: Vec<&str> = path_args.iter().map(String::as_str).collect();
        let body = parse_request::<T>(request, &args)?;
        Ok(Self {
            body,
            caller,
            origin,
            empty_body,
            raw_body,
        })
    }
}

/// The whole body, within [`MAX_BODY_BYTES`] and [`BODY_TIMEOUT`]. A client that sent
/// `Expect: 100-continue` with a length over the limit gets the 413 instead of a `100 Continue`
/// (it waits for that answer before sending the body). Without the `Expect`, the body is read up
/// to the limit first: a client still writing when the connection closed under it would see a
/// broken pipe instead of the 413.
async fn read_body(
    headers: &http::HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooLarge,
            format!("request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue && declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Unknown,
            format!(
                "the request body took longer than {} seconds",
                BODY_TIMEOUT.as_secs()
            ),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => {
            let over_limit = std::error::Error::source(&e)
                .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
            if over_limit {
                Err(too_large())
            } else {
                // A broken chunked encoding or a connection that ended mid-body.
                Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::Unknown,
                    format!("cannot read the request body: {e}"),
                ))
            }
        }
    }
}

/// ruma's parser for the endpoint. A few of ruma's deserialisers panic on some malformed input
/// (`POST /login` without a `type`, in ruma-client-api 0.25): that is a bad request too, not a
/// dropped connection or a 500.
pub(crate) fn parse_request<T: IncomingRequest>(
    request: http::Request<&[u8]>,
    args: &[&str],
) -> Result<T, ApiError> {
    if is_login_without_type::<T>(request.body()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::BadJson,
            "a login needs a `type`",
        ));
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        T::try_from_http_request(request, args)
    })) {
        Ok(parsed) => parsed.map_err(parse_error),
        Err(_) => {
            tracing::warn!("the request parser panicked on a malformed body");
            Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::BadJson,
                "invalid request body",
            ))
        }
    }
}

/// The input ruma-client-api 0.25's `LoginInfo` deserialiser panics on (it indexes the object
/// with `["type"]`), refused before it gets there.
fn is_login_without_type<T: IncomingRequest>(body: &[u8]) -> bool {
    T::METHOD == http::Method::POST
        && T::PATH_BUILDER.all_paths().any(|p| p.ends_with("/login"))
        && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .is_ok_and(|object| !object.contains_key("type"))
}

/// Wrong JSON shapes are `M_BAD_JSON`; bad ids and query parameters are `M_INVALID_PARAM`.
fn parse_error(e: FromHttpRequestError) -> ApiError {
    let errcode = match &e {
        FromHttpRequestError::Deserialization(DeserializationError::Json(_)) => ErrorKind::BadJson,
        _ => ErrorKind::InvalidParam,
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        errcode,
        format!("invalid request: {e}"),
    )
}
