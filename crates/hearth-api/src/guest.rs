//! Guest accounts (`POST /register?kind=guest`, behind `[registration] guests`) may call only
//! what the spec's "Guest access" module lists; anything else answers 403
//! `M_GUEST_ACCESS_FORBIDDEN`. Checked once, in the extractor, against the endpoint's path
//! template, whatever version prefix the client used.

use axum::http::Method;

/// `(method, path after /_matrix/client/{version})`, as ruma's path templates write them.
const ALLOWED: &[(Method, &str)] = &[
    // Retrieving events.
    (Method::GET, "/rooms/{room_id}/state"),
    (Method::GET, "/rooms/{room_id}/context/{event_id}"),
    (Method::GET, "/rooms/{room_id}/event/{event_id}"),
    (
        Method::GET,
        "/rooms/{room_id}/state/{event_type}/{state_key}",
    ),
    (Method::GET, "/rooms/{room_id}/messages"),
    (Method::GET, "/rooms/{room_id}/members"),
    (Method::GET, "/rooms/{room_id}/initialSync"),
    (Method::GET, "/sync"),
    (Method::GET, "/events"),
    (Method::GET, "/media/download/{server_name}/{media_id}"),
    (
        Method::GET,
        "/media/download/{server_name}/{media_id}/{filename}",
    ),
    (Method::GET, "/media/thumbnail/{server_name}/{media_id}"),
    // Sending events.
    (Method::POST, "/rooms/{room_id}/join"),
    (Method::POST, "/rooms/{room_id}/leave"),
    (Method::PUT, "/rooms/{room_id}/send/{event_type}/{txn_id}"),
    (
        Method::PUT,
        "/rooms/{room_id}/state/{event_type}/{state_key}",
    ),
    (Method::PUT, "/sendToDevice/{event_type}/{txn_id}"),
    // Their own account.
    (Method::PUT, "/profile/{user_id}/displayname"),
    (Method::GET, "/devices"),
    (Method::GET, "/devices/{device_id}"),
    (Method::PUT, "/devices/{device_id}"),
    (Method::GET, "/account/whoami"),
    // NOTSPEC-compatible: not listed, but a guest must be able to end its session.
    (Method::POST, "/logout"),
    // End-to-end encryption.
    (Method::POST, "/keys/upload"),
    (Method::POST, "/keys/query"),
    (Method::POST, "/keys/claim"),
];

/// Whether a guest may call the endpoint with this method and these path templates.
pub(crate) fn may_call<'a>(method: &Method, mut paths: impl Iterator<Item = &'a str>) -> bool {
    paths.any(|path| {
        let Some(rest) = path.strip_prefix("/_matrix/client/") else {
            return false;
        };
        // Past the version segment (`v3`, `r0`, `v1`); unstable paths are not for guests.
        let Some((_, rest)) = rest.split_once('/') else {
            return false;
        };
        let rest = format!("/{rest}");
        ALLOWED.iter().any(|(m, p)| m == method && *p == rest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_endpoints_only() {
        let may = |method: Method, path: &str| may_call(&method, std::iter::once(path));
        assert!(may(Method::GET, "/_matrix/client/v3/sync"));
        assert!(may(Method::GET, "/_matrix/client/r0/sync"));
        assert!(may(
            Method::PUT,
            "/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}"
        ));
        assert!(!may(Method::POST, "/_matrix/client/v3/createRoom"));
        assert!(!may(Method::POST, "/_matrix/client/v3/sync"));
        assert!(!may(Method::GET, "/_matrix/client/unstable/org.x/sync"));
        assert!(!may(
            Method::POST,
            "/_matrix/client/v3/join/{room_id_or_alias}"
        ));
        assert!(!may(Method::GET, "/_matrix/key/v2/server"));
    }
}
