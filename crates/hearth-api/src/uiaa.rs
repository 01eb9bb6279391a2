//! User-interactive authentication: the 401 challenge that lists the flows a client can follow.
//! Only single-stage flows exist so far (`m.login.dummy` for registration).

use axum::http::StatusCode;
use rand::RngExt;
use serde_json::json;

use crate::ApiError;

/// A set of flows to offer.
pub(crate) struct UiaFlow {
    stages: Vec<&'static str>,
}

impl UiaFlow {
    pub(crate) fn dummy() -> Self {
        Self {
            stages: vec!["m.login.dummy"],
        }
    }

    /// The 401 answer: flows, params and a session id for the client to echo.
    pub(crate) fn challenge(&self) -> ApiError {
        ApiError::uia(json!({
            "flows": [{ "stages": self.stages }],
            "params": {},
            "session": random_string(24),
        }))
    }
}

fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A localpart for registrations that don't ask for one.
pub(crate) fn random_localpart() -> String {
    format!("u{}", random_string(12).to_lowercase())
}

impl ApiError {
    /// A UIA challenge: status 401 with the flows body instead of an errcode body.
    pub(crate) fn uia(body: serde_json::Value) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            errcode: "",
            message: String::new(),
            body: Some(body),
        }
    }
}
