//! The small, still-specified modules that Element Web, widgets and calls use: OpenID tokens
//! and the userinfo lookup a third party checks them with. On SQLite and PostgreSQL.
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
