//! `PUT /_matrix/client/v3/profile/{userId}/avatar_url` — set one's avatar URL.
//! <https://spec.matrix.org/v1.16/client-server-api/#put_matrixclientv3profileuseridkeyname>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::profile::set_avatar_url::v3 as endpoint;
use ruma::api::error::ErrorKind;

use super::{MAX_AVATAR_URL_BYTES, propagate};
use crate::client::user_access::ensure_self;
use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let body = &request.body;
    ensure_self(request.caller()?, &body.user_id, "profile")?;
    state
        .rate_limits
        .profile
        .check(RateKey::user(&body.user_id))?;
    // An empty (or absent) URL removes the avatar, as clients expect.
    let url = body
        .avatar_url
        .as_ref()
        .filter(|url| !url.as_str().is_empty());
    if let Some(url) = url {
        let invalid =
            |why: String| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, why);
        if url.as_str().len() > MAX_AVATAR_URL_BYTES {
            return Err(invalid(format!(
                "avatar URLs are at most {MAX_AVATAR_URL_BYTES} bytes"
            )));
        }
        // The spec asks for a URI (`format: uri`); clients set mxc:// ones, but others are
        // allowed, and kept as they are.
        if !is_uri(url.as_str()) {
            return Err(invalid(
                "avatar_url must be a URI, like mxc://server/media".into(),
            ));
        }
    }
    state
        .rooms
        .store()
        .set_avatar_url(&body.user_id, url.map(|url| url.as_str()))
        .await?;
    propagate(&state, &body.user_id).await?;
    Ok(RumaResponse(endpoint::Response::new()))
}

/// An absolute URI as RFC 3986 has it, roughly: a scheme (a letter, then letters, digits, `+`,
/// `-` or `.`), a colon, and a rest without spaces or control characters.
fn is_uri(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once(':') else {
        return false;
    };
    let mut scheme_chars = scheme.chars();
    scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::is_uri;

    #[test]
    fn uris() {
        for good in [
            "mxc://hearth.test/rabbit",
            "https://example.org/a.png",
            "urn:isbn:0451450523",
        ] {
            assert!(is_uri(good), "{good}");
        }
        for bad in [
            "rabbit",
            "://x",
            "1x:y",
            "mxc:",
            "mxc://a b",
            "mxc://a\nb",
            "",
        ] {
            assert!(!is_uri(bad), "{bad}");
        }
    }
}
