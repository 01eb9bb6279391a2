//! User-interactive authentication over real HTTP: devices, password changes, deactivation,
//! registration tokens, and rate limits, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

fn login_body(user: &str, password: &str) -> Value {
    json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
           "password": password})
}

/// Log in a new device; returns (access token, device id).
async fn login(server: &TestServer, user: &str, password: &str, name: &str) -> (String, String) {
    let mut body = login_body(user, password);
    body["initial_device_display_name"] = name.into();
    let (status, body) = Api::new(server, None)
        .post("/_matrix/client/v3/login", body)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["device_id"].as_str().unwrap().to_owned(),
    )
}

fn password_auth(user: &str, password: &str, session: Option<&str>) -> Value {
    let mut auth = json!({"type": "m.login.password",
                          "identifier": {"type": "m.id.user", "user": user},
                          "password": password});
    if let Some(session) = session {
        auth["session"] = session.into();
    }
    auth
}

/// The 401 challenge offering exactly `stages`; returns its session id.
fn challenge_session(status: StatusCode, body: &Value, stages: &[&str]) -> String {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["flows"], json!([{ "stages": stages }]), "{body}");
    assert!(body["params"].is_object(), "{body}");
    body["session"].as_str().expect("a session id").to_owned()
}

async fn devices_and_uia(backend: Backend) {
    let server = &TestServer::start(backend).await;
    let alice = Api::new(server, Some(&server.register("alice").await.unwrap()));
    let (_, me) = alice.get("/_matrix/client/v3/account/whoami").await;
    let first_device = me["device_id"].as_str().unwrap().to_owned();
    let (phone_token, phone) = login(server, "alice", PASSWORD, "phone").await;
    let phone_api = Api::new(server, Some(&phone_token));

    // Listing, reading and renaming.
    let (status, body) = alice.get("/_matrix/client/v3/devices").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut ids: Vec<_> = body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![first_device.clone(), phone.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    let (status, body) = alice
        .get(&format!("/_matrix/client/v3/devices/{phone}"))
        .await;
    assert_eq!(
        (status, body["display_name"].as_str()),
        (StatusCode::OK, Some("phone")),
        "{body}"
    );
    let (status, _) = alice
        .put(
            &format!("/_matrix/client/v3/devices/{phone}"),
            json!({"display_name": "tablet"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = alice
        .get(&format!("/_matrix/client/v3/devices/{phone}"))
        .await;
    assert_eq!(body["display_name"], "tablet");
    let (status, _) = alice
        .put(&format!("/_matrix/client/v3/devices/{phone}"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "no display_name: unchanged");
    let (_, body) = alice
        .get(&format!("/_matrix/client/v3/devices/{phone}"))
        .await;
    assert_eq!(body["display_name"], "tablet");
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"display_name": "x"}))),
        (Method::DELETE, Some(json!({}))),
    ] {
        let (status, body) = alice
            .call(
                method.clone(),
                "/_matrix/client/v3/devices/NOSUCHDEVICE",
                body,
            )
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            "{method}"
        );
    }

    // Deleting a device: first the challenge.
    let path = format!("/_matrix/client/v3/devices/{phone}");
    let (status, body) = alice.delete(&path, json!({})).await;
    let session = challenge_session(status, &body, &["m.login.password"]);
    assert!(body.get("completed").is_none(), "{body}");
    assert!(body.get("errcode").is_none(), "{body}");

    // A stage that is not offered does not pass.
    let (status, body) = alice
        .delete(
            &path,
            json!({"auth": {"type": "m.login.dummy", "session": session}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["session"], session.as_str());
    assert!(phone_api.token_works().await, "dummy deleted nothing");

    // A wrong password: 401 with the flows, M_FORBIDDEN and nothing completed.
    let (status, body) = alice
        .delete(
            &path,
            json!({"auth": password_auth("alice", "wrong", Some(&session))}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(errcode(&body), "M_FORBIDDEN", "{body}");
    assert!(body["error"].is_string(), "{body}");
    assert_eq!(body["completed"], json!([]), "{body}");
    assert_eq!(body["flows"], json!([{"stages": ["m.login.password"]}]));
    assert_eq!(body["session"], session.as_str());

    // Someone else's password, even a right one, does not authenticate alice.
    let bob_token = server.register("bob").await.unwrap();
    let bob = Api::new(server, Some(&bob_token));
    let (status, body) = alice
        .delete(
            &path,
            json!({"auth": password_auth("bob", PASSWORD, Some(&session))}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_FORBIDDEN"),
        "{body}"
    );
    // Nor can bob use alice's session, for this or any other request.
    let (status, body) = bob
        .post(
            "/_matrix/client/v3/account/password",
            json!({"new_password": "hijacked", "auth": password_auth("bob", PASSWORD, Some(&session))}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "{body}"
    );
    // And alice's session for this device does not delete another one.
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/delete_devices",
            json!({"devices": [first_device], "auth": password_auth("alice", PASSWORD, Some(&session))}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "{body}"
    );
    assert!(alice.token_works().await);
    assert!(phone_api.token_works().await);

    // The right password (by full user id this time): deleted, and its token is dead.
    let (status, body) = alice
        .delete(
            &path,
            json!({"auth": password_auth("@alice:hearth.test", PASSWORD, Some(&session))}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!phone_api.token_works().await);
    assert!(alice.token_works().await);
    let (status, _) = alice.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The session was spent.
    let (_, laptop) = login(server, "alice", PASSWORD, "laptop").await;
    let (status, body) = alice
        .delete(
            &format!("/_matrix/client/v3/devices/{laptop}"),
            json!({"auth": password_auth("alice", PASSWORD, Some(&session))}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
        "{body}"
    );

    // Several at once, authenticating straight away without asking for the flows first.
    let (tablet_token, tablet) = login(server, "alice", PASSWORD, "tablet").await;
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/delete_devices",
            json!({"devices": [laptop, tablet, "NOSUCHDEVICE"]}),
        )
        .await;
    let session = challenge_session(status, &body, &["m.login.password"]);
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/delete_devices",
            json!({"devices": [tablet, "NOSUCHDEVICE", laptop],
                   "auth": password_auth("alice", PASSWORD, Some(&session))}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "same devices in another order: {body}"
    );
    assert!(!Api::new(server, Some(&tablet_token)).token_works().await);
    let (_, body) = alice.get("/_matrix/client/v3/devices").await;
    assert_eq!(body["devices"].as_array().unwrap().len(), 1, "{body}");
    let (_, other) = login(server, "alice", PASSWORD, "other").await;
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/delete_devices",
            json!({"devices": [other], "auth": password_auth("alice", PASSWORD, None)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Bob's devices are not alice's to see.
    let (_, bob_me) = bob.get("/_matrix/client/v3/account/whoami").await;
    let bob_device = bob_me["device_id"].as_str().unwrap();
    let (status, _) = alice
        .get(&format!("/_matrix/client/v3/devices/{bob_device}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

on_both_backends!(devices_and_uia);

async fn change_password(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::new(&server, Some(&server.register("alice").await.unwrap()));
    let (other_token, _) = login(&server, "alice", PASSWORD, "phone").await;
    let (third_token, _) = login(&server, "alice", PASSWORD, "tablet").await;
    let path = "/_matrix/client/v3/account/password";

    let (status, body) = alice.post(path, json!({"new_password": ""})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_WEAK_PASSWORD")
    );
    let (status, body) = alice.post(path, json!({"new_password": "new-pw-1"})).await;
    let session = challenge_session(status, &body, &["m.login.password"]);
    let (status, body) = alice
        .post(
            path,
            json!({"new_password": "new-pw-1", "auth": password_auth("alice", "nope", Some(&session))}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_FORBIDDEN")
    );
    assert!(Api::new(&server, Some(&other_token)).token_works().await);
    let (status, body) = alice
        .post(
            path,
            json!({"new_password": "new-pw-1", "auth": password_auth("alice", PASSWORD, Some(&session))}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The current device stays; the others are logged out (logout_devices defaults to true).
    assert!(alice.token_works().await);
    assert!(!Api::new(&server, Some(&other_token)).token_works().await);
    assert!(!Api::new(&server, Some(&third_token)).token_works().await);
    let anon = Api::new(&server, None);
    let (status, body) = anon
        .post("/_matrix/client/v3/login", login_body("alice", PASSWORD))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "the old password stopped working"
    );
    let (kept_token, _) = login(&server, "alice", "new-pw-1", "phone").await;

    // With logout_devices = false, the other devices stay signed in.
    let (status, body) = alice
        .post(
            path,
            json!({"new_password": "new-pw-2", "logout_devices": false,
                   "auth": password_auth("alice", "new-pw-1", None)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(Api::new(&server, Some(&kept_token)).token_works().await);
    login(&server, "alice", "new-pw-2", "laptop").await;

    // Without an access token there is no account to change.
    let (status, body) = anon
        .post(
            path,
            json!({"new_password": "x", "auth": password_auth("alice", "new-pw-2", None)}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
    );
}
on_both_backends!(change_password);

async fn deactivate(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::new(&server, Some(&server.register("alice").await.unwrap()));
    let bob = Api::new(&server, Some(&server.register("bob").await.unwrap()));
    let (alice_phone, _) = login(&server, "alice", PASSWORD, "phone").await;

    // Alice is joined to one room (bob too) and invited to another.
    let (_, body) = alice
        .post(
            "/_matrix/client/v3/createRoom",
            json!({"preset": "public_chat"}),
        )
        .await;
    let joined = body["room_id"].as_str().unwrap().to_owned();
    let (status, _) = bob
        .post(
            &format!("/_matrix/client/v3/rooms/{joined}/join"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = bob
        .post(
            "/_matrix/client/v3/createRoom",
            json!({"preset": "private_chat", "invite": []}),
        )
        .await;
    let invited = body["room_id"].as_str().unwrap().to_owned();
    let (status, body) = bob
        .post(
            &format!("/_matrix/client/v3/rooms/{invited}/invite"),
            json!({"user_id": "@alice:hearth.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let path = "/_matrix/client/v3/account/deactivate";
    let (status, body) = alice.post(path, json!({})).await;
    let session = challenge_session(status, &body, &["m.login.password"]);
    let (status, body) = alice
        .post(
            path,
            json!({"auth": password_auth("alice", "wrong", Some(&session))}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_FORBIDDEN")
    );
    assert!(alice.token_works().await, "nothing happened yet");
    let (status, body) = alice
        .post(
            path,
            json!({"auth": password_auth("alice", PASSWORD, Some(&session)), "erase": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id_server_unbind_result"], "no-support");

    // Every session is gone and nobody can log in as alice again, nor take the name.
    assert!(!alice.token_works().await);
    assert!(!Api::new(&server, Some(&alice_phone)).token_works().await);
    let (status, body) = Api::new(&server, None)
        .post("/_matrix/client/v3/login", login_body("alice", PASSWORD))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = Api::new(&server, None)
        .post(
            "/_matrix/client/v3/register",
            json!({"username": "alice", "password": "x", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );

    // Bob sees alice leave the room she was in, and decline the invite.
    for room in [&joined, &invited] {
        let (status, member) = bob
            .get(&format!(
                "/_matrix/client/v3/rooms/{room}/state/m.room.member/@alice:hearth.test"
            ))
            .await;
        assert_eq!(status, StatusCode::OK, "{member}");
        assert_eq!(member["membership"], "leave", "{room}: {member}");
    }
    // And the room goes on without her.
    let (status, _) = bob
        .put(
            &format!("/_matrix/client/v3/rooms/{joined}/send/m.room.message/t1"),
            json!({"msgtype": "m.text", "body": "still here"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}
on_both_backends!(deactivate);

/// `erase: true`: who joins afterwards sees the erased user's messages redacted; who was in
/// the room when they were sent still sees them.
async fn deactivate_with_erase(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) =
        hearth_tests::api::users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let said = alice.send_text(&room, "forget me").await;
    let path = "/_matrix/client/v3/account/deactivate";
    let (status, body) = alice.post(path, json!({})).await;
    let session = challenge_session(status, &body, &["m.login.password"]);
    let auth = password_auth("alice", PASSWORD, Some(&session));
    alice
        .ok(
            Method::POST,
            path,
            Some(json!({"auth": auth, "erase": true})),
        )
        .await;

    let event = format!("/_matrix/client/v3/rooms/{room}/event/{said}");
    let messages = format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=20");
    let body_of = |chunk: &Value| -> Vec<Value> {
        chunk["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event_id"] == said.as_str())
            .map(|e| e["content"]["body"].clone())
            .collect()
    };
    // Bob was there: unchanged.
    assert_eq!(
        bob.ok(Method::GET, &event, None).await["content"]["body"],
        "forget me"
    );
    assert_eq!(
        body_of(&bob.ok(Method::GET, &messages, None).await),
        [json!("forget me")]
    );

    // Carol comes later (the room shows its history to members): redacted everywhere.
    let carol = Api::user(&server, "carol").await;
    carol.join(&room).await;
    let seen = carol.ok(Method::GET, &event, None).await;
    assert_eq!(seen["content"], json!({}), "{seen}");
    assert_eq!(
        body_of(&carol.ok(Method::GET, &messages, None).await),
        [Value::Null]
    );
    let sync = carol.sync(None, 0).await;
    let timeline = sync["rooms"]["join"][&room]["timeline"]["events"].clone();
    let in_sync = timeline
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == said.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(in_sync["content"], json!({}), "{timeline}");
}
on_both_backends!(deactivate_with_erase);

async fn registration_tokens(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.registration.token_required = true;
    })
    .await;
    let store = server.store();
    store
        .create_registration_token("once-only", Some(1), None)
        .await
        .unwrap();
    store
        .create_registration_token("many.uses~ok-1", None, None)
        .await
        .unwrap();
    store
        .create_registration_token("expired", None, Some(1_000))
        .await
        .unwrap();
    let anon = Api::new(&server, None);
    let register = "/_matrix/client/v3/register";
    let validity = |token: &str| {
        format!("/_matrix/client/v1/register/m.login.registration_token/validity?token={token}")
    };
    let is_valid = |token: String| {
        let anon = &anon;
        async move {
            let (status, body) = anon.get(&token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["valid"].as_bool().unwrap()
        }
    };
    assert!(is_valid(validity("once-only")).await);
    assert!(is_valid(validity("many.uses~ok-1")).await);
    assert!(!is_valid(validity("expired")).await);
    assert!(!is_valid(validity("unknown")).await);
    assert!(!is_valid(validity("not%20a%20token")).await);
    assert!(!is_valid(validity(&"x".repeat(65))).await);

    // The flows now ask for a token; the dummy stage no longer registers anyone.
    let (status, body) = anon
        .post(register, json!({"username": "alice", "password": PASSWORD}))
        .await;
    let session = challenge_session(status, &body, &["m.login.registration_token"]);
    let (status, body) = anon
        .post(
            register,
            json!({"username": "alice", "password": PASSWORD,
                   "auth": {"type": "m.login.dummy", "session": session}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["completed"], json!([]));
    let token_auth = |token: &str, session: Option<&str>| {
        let mut auth = json!({"type": "m.login.registration_token", "token": token});
        if let Some(session) = session {
            auth["session"] = session.into();
        }
        auth
    };
    for bad in ["wrong", "expired"] {
        let (status, body) = anon
            .post(
                register,
                json!({"username": "alice", "password": PASSWORD,
                       "auth": token_auth(bad, Some(&session))}),
            )
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::UNAUTHORIZED, "M_FORBIDDEN"),
            "{bad}: {body}"
        );
        assert_eq!(body["flows"][0]["stages"][0], "m.login.registration_token");
        assert_eq!(body["completed"], json!([]));
    }

    // A good token registers, and its one use is spent.
    let (status, body) = anon
        .post(
            register,
            json!({"username": "alice", "password": PASSWORD,
                   "auth": token_auth("once-only", Some(&session))}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@alice:hearth.test");
    let alice_token = body["access_token"].as_str().unwrap();
    assert!(Api::new(&server, Some(alice_token)).token_works().await);
    let row = store
        .registration_token("once-only")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.pending, row.completed), (0, 1));
    assert!(!is_valid(validity("once-only")).await);

    // Used up.
    let (status, body) = anon
        .post(
            register,
            json!({"username": "bob", "password": PASSWORD,
                   "auth": token_auth("once-only", None)}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_FORBIDDEN"),
        "{body}"
    );
    assert!(body["session"].is_string());

    // An unlimited token keeps working; each registration counts.
    for name in ["bob", "carol"] {
        let (status, body) = anon
            .post(
                register,
                json!({"username": name, "password": PASSWORD,
                       "auth": token_auth("many.uses~ok-1", None)}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let row = store
        .registration_token("many.uses~ok-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.pending, row.completed), (0, 2));

    // A taken name is refused before any token use is reserved.
    let (status, body) = anon
        .post(
            register,
            json!({"username": "carol", "password": PASSWORD,
                   "auth": token_auth("many.uses~ok-1", None)}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );
    let row = store
        .registration_token("many.uses~ok-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.pending, row.completed), (0, 2));
}
on_both_backends!(registration_tokens);

/// With registration closed, every token is invalid: the validity check answers 403.
#[tokio::test]
async fn token_validity_when_registration_is_closed() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.registration.enabled = false;
    })
    .await;
    let (status, body) = Api::new(&server, None)
        .get("/_matrix/client/v1/register/m.login.registration_token/validity?token=abc")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
}

async fn rate_limits(backend: Backend) {
    let server = TestServer::start_with(backend, |config| {
        config.rate_limits.login = hearth_config::RateLimit {
            per_second: 0.01,
            burst: 3,
        };
        config.rate_limits.login_account = hearth_config::RateLimit {
            per_second: 0.01,
            burst: 2,
        };
        config.rate_limits.send = hearth_config::RateLimit {
            per_second: 0.01,
            burst: 3,
        };
    })
    .await;
    let alice = Api::new(&server, Some(&server.register("alice").await.unwrap()));
    let bob_token = server.register("bob").await.unwrap();
    let anon = Api::new(&server, None);
    let login = |user: &'static str, password: &'static str| {
        anon.call_with_headers(
            Method::POST,
            "/_matrix/client/v3/login",
            Some(login_body(user, password)),
        )
    };

    // Successful logins cost nothing.
    for _ in 0..5 {
        assert_eq!(login("alice", PASSWORD).await.0, StatusCode::OK);
    }
    // Failures count per account (two allowed here) ...
    assert_eq!(login("alice", "wrong").await.0, StatusCode::FORBIDDEN);
    assert_eq!(login("alice", "wrong").await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        login("alice", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS,
        "the account is locked for a while, whatever the password"
    );
    // ... and per address (three here): bob, on the same address, is still let in until the
    // address itself has failed too often.
    assert_eq!(login("bob", PASSWORD).await.0, StatusCode::OK);
    assert_eq!(login("bob", "wrong").await.0, StatusCode::FORBIDDEN);
    let answers = [login("bob", PASSWORD).await];
    assert_eq!(answers[0].0, StatusCode::TOO_MANY_REQUESTS);
    let (_, body, headers) = &answers[0];
    assert_eq!(errcode(body), "M_LIMIT_EXCEEDED", "{body}");
    let retry_ms = body["retry_after_ms"].as_u64().expect("retry_after_ms");
    // One request per 100 s comes back after up to 100 s.
    assert!((1..=100_001).contains(&retry_ms), "{retry_ms}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, retry_ms.div_ceil(1000), "{retry_ms}");

    // Sending is limited per user: alice runs out, bob does not.
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/createRoom",
            json!({"preset": "public_chat"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let room = body["room_id"].as_str().unwrap().to_owned();
    let send = |txn: &str| format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
    let message = json!({"msgtype": "m.text", "body": "hi"});
    assert_eq!(
        alice.put(&send("1"), message.clone()).await.0,
        StatusCode::OK
    );
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/"),
            json!({"topic": "t"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = alice.put(&send("2"), message.clone()).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED"),
        "{body}"
    );
    assert!(body["retry_after_ms"].as_u64().unwrap() > 0);
    let bob = Api::new(&server, Some(&bob_token));
    let (status, body) = bob
        .post(&format!("/_matrix/client/v3/rooms/{room}/join"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(bob.put(&send("b1"), message).await.0, StatusCode::OK);
}
on_both_backends!(rate_limits);
