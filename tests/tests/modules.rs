//! The small, still-specified modules that Element Web, widgets and calls use: OpenID tokens
//! and the userinfo lookup a third party checks them with, the support contacts, event
//! reports. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};

async fn openid_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let request = "/_matrix/client/v3/user/@alice:hearth.test/openid/request_token";

    // No body, as the spec's empty one allows.
    let (status, issued) = alice.raw(Method::POST, request, Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    assert_eq!(issued["token_type"], "Bearer");
    assert_eq!(issued["matrix_server_name"], "hearth.test");
    assert_eq!(issued["expires_in"], 3600);
    let token = issued["access_token"].as_str().unwrap();

    // The third party asks, with no credentials of its own.
    let anon = Api::new(&server, None);
    let info = anon
        .ok(
            Method::GET,
            &format!("/_matrix/federation/v1/openid/userinfo?access_token={token}"),
            None,
        )
        .await;
    assert_eq!(info, serde_json::json!({"sub": "@alice:hearth.test"}));
    let (status, body) = anon
        .get("/_matrix/federation/v1/openid/userinfo?access_token=hth_forged")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
    );
    // The OpenID token is no access token.
    let (status, _) = Api::new(&server, Some(token))
        .get("/_matrix/client/v3/account/whoami")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Nobody gets a token in someone else's name.
    let (status, body) = bob.post(request, serde_json::json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "{body}"
    );
}
on_both_backends!(openid_tokens);

/// `/.well-known/matrix/support`: 404 until configured, then the page and the contacts.
async fn support_contacts(backend: Backend) {
    let bare = TestServer::start(backend).await;
    let (status, body) = Api::new(&bare, None)
        .get("/.well-known/matrix/support")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let server = TestServer::start_with(backend, |c| {
        c.well_known.support_page = Some("https://example.org/help".into());
        c.well_known.admin_contacts = vec!["@admin:hearth.test".into(), "admin@example.org".into()];
        c.well_known.security_contacts = vec!["security@example.org".into()];
    })
    .await;
    let support = Api::new(&server, None)
        .ok(Method::GET, "/.well-known/matrix/support", None)
        .await;
    assert_eq!(
        support,
        serde_json::json!({
            "support_page": "https://example.org/help",
            "contacts": [
                {"role": "m.role.admin", "matrix_id": "@admin:hearth.test"},
                {"role": "m.role.admin", "email_address": "admin@example.org"},
                {"role": "m.role.security", "email_address": "security@example.org"},
            ],
        })
    );
}
on_both_backends!(support_contacts);

/// Reporting an event: kept for the admins; 404 for an event the reporter cannot see.
async fn event_reports(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) =
        hearth_tests::api::users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let rude = alice.send_text(&room, "rude").await;
    let report = format!("/_matrix/client/v3/rooms/{room}/report/{rude}");
    let answer = bob
        .ok(
            Method::POST,
            &report,
            Some(serde_json::json!({"reason": "spam"})),
        )
        .await;
    assert_eq!(answer, serde_json::json!({}));
    // No body: the reason is optional.
    let (status, _) = bob.raw(Method::POST, &report, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let stranger = Api::user(&server, "stranger").await;
    let (status, body) = stranger.post(&report, serde_json::json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
        "{body}"
    );
    let missing = format!("/_matrix/client/v3/rooms/{room}/report/$nothing");
    let (status, _) = bob.post(&missing, serde_json::json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_backends!(event_reports);
