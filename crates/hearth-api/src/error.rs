//! The one mapping from failures to Matrix errors: HTTP status + `errcode` + `error`.
//!
//! Error codes are ruma's typed [`ErrorKind`], never strings: the kinds that carry data
//! (`soft_logout`, `retry_after_ms`) serialize it themselves.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
pub use ruma::api::error::ErrorKind;
use ruma::api::error::{ErrorCode, StandardErrorBody, UnknownTokenErrorData};

/// A Matrix error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub message: String,
    /// A body other than `{errcode, error}`, for the one answer shaped differently (the UIA
    /// challenge).
    pub(crate) body: Option<serde_json::Value>,
    /// For 429 and 503: how long the client should wait, sent as the `Retry-After` header.
    pub(crate) retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            body: None,
            retry_after: None,
        }
    }

    /// An error whose errcode ruma has no kind for (unstable or newer codes): built through
    /// ruma's own parser, so that it still serializes as a typed kind.
    pub fn custom(status: StatusCode, errcode: &str, message: impl Into<String>) -> Self {
        let kind = serde_json::from_value(serde_json::json!({ "errcode": errcode }))
            .unwrap_or(ErrorKind::Unknown);
        Self::new(status, kind, message)
    }

    /// The `errcode` this error answers with.
    pub fn errcode(&self) -> ErrorCode {
        self.kind.errcode()
    }

    /// The database cannot take the request for now (a full disk, say): nothing was written, and
    /// the client may try again later.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "storage unavailable");
        Self {
            retry_after: Some(std::time::Duration::from_secs(5)),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::Unknown,
                "the server cannot store this right now; nothing was saved, try again later",
            )
        }
    }

    /// An internal failure: logged with its cause, reported to the client without internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Unknown,
            "internal server error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (self.status, Json(body)).into_response(),
            None => (
                self.status,
                Json(StandardErrorBody::new(self.kind, self.message)),
            )
                .into_response(),
        };
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up so that a client that waits this long is let through.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let seconds = seconds.max(1);
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<hearth_rooms::RoomError> for ApiError {
    fn from(e: hearth_rooms::RoomError) -> Self {
        use hearth_rooms::RoomError as E;
        match e {
            E::UnknownRoom(_) => {
                Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, e.to_string())
            }
            E::RoomExists(_) => {
                Self::new(StatusCode::BAD_REQUEST, ErrorKind::RoomInUse, e.to_string())
            }
            E::UnsupportedVersion(_) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::UnsupportedRoomVersion,
                e.to_string(),
            ),
            E::Forbidden(_) => {
                Self::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, e.to_string())
            }
            E::TooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::TooLarge,
                e.to_string(),
            ),
            E::Invalid(_) => Self::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, e.to_string()),
            // The spec has no errcode for this yet and names M_UNKNOWN.
            E::BadRelation(_) => {
                Self::new(StatusCode::BAD_REQUEST, ErrorKind::Unknown, e.to_string())
            }
            E::MissingEvent(_) => {
                Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, e.to_string())
            }
            E::Store(s) if s.is_unavailable() => Self::unavailable(s),
            E::StateResolution(_) | E::Store(_) | E::Shutdown => Self::internal(e),
        }
    }
}

impl From<hearth_accounts::AccountError> for ApiError {
    fn from(e: hearth_accounts::AccountError) -> Self {
        use hearth_accounts::AccountError as E;
        match e {
            E::UserInUse => Self::new(StatusCode::BAD_REQUEST, ErrorKind::UserInUse, e.to_string()),
            E::InvalidUsername(_) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidUsername,
                e.to_string(),
            ),
            E::Forbidden => Self::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, e.to_string()),
            E::UnknownToken => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::UnknownToken(Default::default()),
                e.to_string(),
            ),
            E::TokenExpired => {
                let mut soft_logout = UnknownTokenErrorData::new();
                soft_logout.soft_logout = true;
                Self::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorKind::UnknownToken(soft_logout),
                    e.to_string(),
                )
            }
            E::NotFound => Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, e.to_string()),
            E::Store(s) if s.is_unavailable() => Self::unavailable(s),
            E::Store(_) | E::Internal(_) => Self::internal(e),
        }
    }
}

/// Unknown endpoints: 404 `M_UNRECOGNIZED`, as the spec asks. Under `/pushrules` the
/// endpoints exist but the path is malformed (a scope other than `global`, a missing kind, rule
/// id or trailing slash, an attribute other than `enabled` and `actions`): 400.
pub(crate) async fn unrecognized(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    if path.starts_with("/_matrix/client/") && path.contains("/pushrules") {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorKind::Unrecognized,
            format!(
                "malformed push rule path {path}: it is /pushrules/, /pushrules/global/, \
                 /pushrules/global/{{kind}}/{{ruleId}} or .../{{ruleId}}/enabled|actions"
            ),
        );
    }
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorKind::Unrecognized,
        format!("unrecognized request: {method} {}", uri.path()),
    )
}

/// A known path with a method it does not take: 405 `M_UNRECOGNIZED`.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Unrecognized,
        format!("{method} is not supported on {}", uri.path()),
    )
}

impl From<hearth_e2ee::E2eeError> for ApiError {
    fn from(e: hearth_e2ee::E2eeError) -> Self {
        use hearth_e2ee::E2eeError as E;
        match e {
            E::InvalidParam(_) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                e.to_string(),
            ),
            E::BadJson(_) => Self::new(StatusCode::BAD_REQUEST, ErrorKind::BadJson, e.to_string()),
            E::InvalidSignature(_) => Self::custom(
                StatusCode::BAD_REQUEST,
                "M_INVALID_SIGNATURE",
                e.to_string(),
            ),
            E::NotFound(_) => Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, e.to_string()),
            E::WrongBackupVersion {
                current: Some(ref current),
                ..
            } => Self::new(
                StatusCode::FORBIDDEN,
                ErrorKind::WrongRoomKeysVersion(
                    ruma::api::error::WrongRoomKeysVersionErrorData::new(current.clone()),
                ),
                e.to_string(),
            ),
            E::WrongBackupVersion { current: None, .. } => Self::new(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound,
                "there is no current backup version",
            ),
            E::Store(s) => s.into(),
        }
    }
}

impl From<hearth_sync::sliding::SlidingError> for ApiError {
    fn from(e: hearth_sync::sliding::SlidingError) -> Self {
        use hearth_sync::sliding::SlidingError as E;
        match e {
            // MSC4186: an unknown or expired `pos` is a 400 the client answers by starting over.
            E::UnknownPos => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::UnknownPos,
                e.to_string(),
            ),
            E::Invalid(_) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                e.to_string(),
            ),
            E::Sync(s) => s.into(),
        }
    }
}

impl From<hearth_sync::SyncError> for ApiError {
    fn from(e: hearth_sync::SyncError) -> Self {
        use hearth_sync::SyncError as E;
        match e {
            E::Rooms(r) => r.into(),
            E::Store(s) => s.into(),
            E::E2ee(k) => k.into(),
        }
    }
}

impl From<hearth_federation::FederationError> for ApiError {
    fn from(e: hearth_federation::FederationError) -> Self {
        use hearth_federation::FederationError as E;
        match e {
            // Inbound or outbound, a stranger is refused the same way.
            E::NotAllowed(_) | E::Ourselves(_) => {
                Self::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, e.to_string())
            }
            // An inbound request that does not prove where it comes from.
            E::MissingAuthorization(_)
            | E::WrongDestination(_)
            | E::BadSignature(_)
            | E::UnknownKey { .. } => Self::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::Unauthorized,
                e.to_string(),
            ),
            // A partner that does not know what we asked about.
            E::Remote {
                status: StatusCode::NOT_FOUND,
                ..
            } => Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, e.to_string()),
            // A partner that refuses (a room that would not let the user in).
            E::Remote {
                status: StatusCode::FORBIDDEN,
                ..
            } => Self::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, e.to_string()),
            E::Discovery { .. }
            | E::Unreachable { .. }
            | E::Remote { .. }
            | E::BadResponse { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, ErrorKind::Unknown, e.to_string())
            }
            E::BadRequest(_) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                e.to_string(),
            ),
            E::NotYours(_) => Self::new(StatusCode::FORBIDDEN, ErrorKind::Forbidden, e.to_string()),
            E::IncompatibleVersion(ref version) => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::IncompatibleRoomVersion(
                    ruma::api::error::IncompatibleRoomVersionErrorData::new(version.clone()),
                ),
                e.to_string(),
            ),
            E::Room(r) => r.into(),
            E::Store(s) => s.into(),
            E::Config(_) => Self::internal(e),
        }
    }
}

impl From<hearth_store::StoreError> for ApiError {
    fn from(e: hearth_store::StoreError) -> Self {
        if e.is_unavailable() {
            return Self::unavailable(e);
        }
        Self::internal(e)
    }
}

/// A handler panicked: the client gets 500 `M_UNKNOWN` (with the CORS headers, since the panic
/// layer sits inside the CORS one) instead of a dropped connection, and the log says where.
pub(crate) fn panicked(panic: Box<dyn std::any::Any + Send>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    tracing::error!(panic = %what, "request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unknown,
        "internal server error",
    )
    .into_response()
}
