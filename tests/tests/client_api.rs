//! The client-server API over real HTTP: accounts, rooms, and hostile input, on SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn registration_and_sessions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = Api::new(&server, None);

    // Without auth: the UIA challenge naming the dummy stage.
    let (status, body) = anon
        .post(
            "/_matrix/client/v3/register",
            json!({"username": "alice", "password": "pw-alice-123"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["flows"][0]["stages"][0], "m.login.dummy");
    let session = body["session"].as_str().unwrap().to_owned();

    let (status, body) = anon
        .post(
            "/_matrix/client/v3/register",
            json!({"username": "alice", "password": "pw-alice-123",
                   "auth": {"type": "m.login.dummy", "session": session},
                   "initial_device_display_name": "laptop"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user_id"], "@alice:hearth.test");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let device = body["device_id"].as_str().unwrap().to_owned();

    // Taken and invalid names.
    let (status, body) = anon
        .get("/_matrix/client/v3/register/available?username=alice")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );
    let (status, body) = anon
        .get("/_matrix/client/v3/register/available?username=bob")
        .await;
    assert_eq!(
        (status, body["available"].clone()),
        (StatusCode::OK, json!(true))
    );
    let (status, body) = anon
        .post(
            "/_matrix/client/v3/register",
            json!({"username": "alice", "password": "x", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_USER_IN_USE")
    );
    let (status, body) = anon
        .post(
            "/_matrix/client/v3/register",
            json!({"username": "Not Valid", "password": "x", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_USERNAME")
    );

    // whoami with the header and with the deprecated query parameter.
    let alice = Api::new(&server, Some(&token));
    let (status, body) = alice.get("/_matrix/client/v3/account/whoami").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["user_id"].as_str(), body["device_id"].as_str()),
        (Some("@alice:hearth.test"), Some(device.as_str()))
    );
    // No third-party identifiers are bound to accounts here.
    let (status, body) = alice.get("/_matrix/client/v3/account/3pid").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"threepids": []})));
    let (status, _) = anon
        .get(&format!(
            "/_matrix/client/v3/account/whoami?access_token={token}"
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = anon.get("/_matrix/client/v3/account/whoami").await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
    );
    let (status, body) = Api::new(&server, Some("hth_bogus"))
        .get("/_matrix/client/v3/account/whoami")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN")
    );

    // Password login: localpart or full id; wrong passwords and unknown users look the same.
    let (status, body) = anon.get("/_matrix/client/v3/login").await;
    assert_eq!(
        (status, body["flows"][0]["type"].as_str()),
        (StatusCode::OK, Some("m.login.password"))
    );
    let login = |user: &str, password: &str| json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password});
    let (status, body) = anon
        .post("/_matrix/client/v3/login", login("alice", "pw-alice-123"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["access_token"].as_str().unwrap().to_owned();
    assert_ne!(body["device_id"].as_str(), Some(device.as_str()));
    let (status, _) = anon
        .post(
            "/_matrix/client/v3/login",
            login("@alice:hearth.test", "pw-alice-123"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (wrong_status, wrong) = anon
        .post("/_matrix/client/v3/login", login("alice", "nope"))
        .await;
    let (unknown_status, unknown) = anon
        .post("/_matrix/client/v3/login", login("nobody", "nope"))
        .await;
    assert_eq!(
        (wrong_status, errcode(&wrong)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    assert_eq!(
        (unknown_status, unknown.clone()),
        (wrong_status, wrong),
        "no user enumeration"
    );

    // Logout ends that session only; logout/all ends the rest.
    let (status, _) = Api::new(&server, Some(&second))
        .post("/_matrix/client/v3/logout", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = Api::new(&server, Some(&second))
        .get("/_matrix/client/v3/account/whoami")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        alice.get("/_matrix/client/v3/account/whoami").await.0,
        StatusCode::OK
    );
    assert_eq!(
        alice
            .post("/_matrix/client/v3/logout/all", json!({}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        alice.get("/_matrix/client/v3/account/whoami").await.0,
        StatusCode::UNAUTHORIZED
    );
}
on_both_backends!(registration_and_sessions);

async fn rooms_messages_and_membership(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;

    let (status, body) = alice
        .post(
            "/_matrix/client/v3/createRoom",
            json!({"preset": "private_chat", "name": "Plans", "topic": "weekend",
                   "initial_state": [{"type": "m.room.guest_access", "content": {"guest_access": "forbidden"}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let room = body["room_id"].as_str().unwrap().to_owned();
    let (status, body) = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{room}/state/m.room.name/"
        ))
        .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::OK, Some("Plans"))
    );
    let (_, body) = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{room}/state/m.room.join_rules/"
        ))
        .await;
    assert_eq!(body["join_rule"], "invite");
    let (_, body) = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{room}/state/m.room.guest_access/"
        ))
        .await;
    assert_eq!(
        body["guest_access"], "forbidden",
        "initial_state overrides the preset"
    );
    let (_, state) = alice
        .get(&format!("/_matrix/client/v3/rooms/{room}/state"))
        .await;
    let types: Vec<_> = state
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    for t in [
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.history_visibility",
        "m.room.name",
        "m.room.topic",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }

    // Bob can't join an invite-only room, can't read it, can't send to it.
    let (status, body) = bob
        .post(&format!("/_matrix/client/v3/rooms/{room}/join"), json!({}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = bob
        .get(&format!("/_matrix/client/v3/rooms/{room}/state"))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = bob
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/t1"),
            json!({"msgtype": "m.text", "body": "hi"}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );

    // Invited, he can.
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            json!({"user_id": "@bob:hearth.test"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = bob
        .post(&format!("/_matrix/client/v3/rooms/{room}/join"), json!({}))
        .await;
    assert_eq!(
        (status, body["room_id"].as_str()),
        (StatusCode::OK, Some(room.as_str()))
    );

    // Sending is idempotent per transaction id.
    let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/txn-1");
    let (status, first) = bob
        .put(&path, json!({"msgtype": "m.text", "body": "hello"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, again) = bob
        .put(&path, json!({"msgtype": "m.text", "body": "hello"}))
        .await;
    assert_eq!(first["event_id"], again["event_id"]);
    let event_id = first["event_id"].as_str().unwrap();
    // ... and per endpoint: the same id for a reaction or a redaction is another request.
    let (status, reaction) = bob
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.reaction/txn-1"),
            json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": "+1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reaction}");
    let (status, redaction) = bob
        .put(
            &format!(
                "/_matrix/client/v3/rooms/{room}/redact/{}/txn-1",
                reaction["event_id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{redaction}");
    let ids = [
        &first["event_id"],
        &reaction["event_id"],
        &redaction["event_id"],
    ];
    assert!(
        ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2],
        "three requests, three events: {ids:?}"
    );
    let (status, event) = alice
        .get(&format!("/_matrix/client/v3/rooms/{room}/event/{event_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (event["sender"].as_str(), event["content"]["body"].as_str()),
        (Some("@bob:hearth.test"), Some("hello"))
    );

    // Bob (power 0) may not change power levels or the name.
    let (status, body) = bob
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/"),
            json!({"users": {"@bob:hearth.test": 100}}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, _) = bob
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/"),
            json!({"name": "Mine"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, body) = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{room}/state/m.room.name/"
        ))
        .await;
    assert_eq!(body["name"], "Plans");

    // Leaving freezes what one reads at the leave (the spec's rule for /state).
    assert_eq!(
        bob.post(&format!("/_matrix/client/v3/rooms/{room}/leave"), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        bob.get(&format!("/_matrix/client/v3/rooms/{room}/state"))
            .await
            .0,
        StatusCode::OK
    );
}
on_both_backends!(rooms_messages_and_membership);

/// Bad input gets the right Matrix error, and nothing is written.
async fn hostile_input(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let (_, body) = alice
        .post(
            "/_matrix/client/v3/createRoom",
            json!({"preset": "public_chat"}),
        )
        .await;
    let room = body["room_id"].as_str().unwrap().to_owned();
    let before = server
        .store()
        .room_timeline(&room.parse::<ruma::OwnedRoomId>().unwrap())
        .await
        .unwrap();
    let send = |txn: &str| format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");

    let (status, body) = alice
        .raw(Method::PUT, &send("a"), b"{not json".to_vec())
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_NOT_JSON")
    );
    let (status, body) = alice.raw(Method::PUT, &send("b"), b"[1, 2]".to_vec()).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    let (status, body) = alice
        .raw(
            Method::POST,
            "/_matrix/client/v3/createRoom",
            br#"{"preset": 5}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    let (status, body) = alice
        .raw(Method::PUT, &send("c"), vec![b' '; 2 << 20])
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE")
    );
    let big = "x".repeat(70_000);
    let (status, body) = alice
        .put(&send("d"), json!({"msgtype": "m.text", "body": big}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "M_TOO_LARGE")
    );
    let (status, body) = alice
        .put(
            &send("e"),
            json!({"msgtype": "m.text", "body": "x", "n": 1.5}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    let (status, body) = alice
        .put(
            "/_matrix/client/v3/rooms/not-a-room/send/m.room.message/f",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    let (status, body) = alice
        .put(
            "/_matrix/client/v3/rooms/!nowhere:hearth.test/send/m.room.message/g",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/createRoom",
            json!({"room_version": "999"}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNSUPPORTED_ROOM_VERSION")
    );

    let after = server
        .store()
        .room_timeline(&room.parse::<ruma::OwnedRoomId>().unwrap())
        .await
        .unwrap();
    assert_eq!(before, after, "no refused request wrote anything");
    // The server is still healthy.
    assert_eq!(
        alice
            .put(&send("ok"), json!({"msgtype": "m.text", "body": "fine"}))
            .await
            .0,
        StatusCode::OK
    );
}
on_both_backends!(hostile_input);

#[tokio::test]
async fn registration_is_closed_by_default() {
    // A server with the default registration setting.
    let dir = tempfile::tempdir().unwrap();
    let mut config = hearth_config::Config::default();
    config.server.listen = ([127, 0, 0, 1], 0).into();
    config.server.data_dir = dir.path().to_path_buf();
    let server = hearth::Server::start(
        config,
        hearth_accounts::PasswordHashing::insecure_fast_for_tests(),
    )
    .await
    .unwrap();
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/_matrix/client/v3/register",
            server.address
        ))
        .json(&json!({"username": "x", "password": "y", "auth": {"type": "m.login.dummy"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: Value = response.json().await.unwrap();
    assert_eq!(errcode(&body), "M_FORBIDDEN");
    server.stop().await.unwrap();
}

async fn search(api: &Api<'_>, term: &str) -> Vec<String> {
    let body = json!({"search_term": term, "limit": 10});
    let found = api
        .ok(
            Method::POST,
            "/_matrix/client/v3/user_directory/search",
            Some(body),
        )
        .await;
    found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["user_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The user directory finds people one shares a room with, or who are in public rooms, by id
/// or display name — and nobody else.
async fn user_directory(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let carol = Api::user(&server, "carol").await;
    let dave = Api::user(&server, "dave").await;
    alice
        .put(
            "/_matrix/client/v3/profile/@bob:hearth.test/displayname",
            json!({"displayname": "x"}),
        )
        .await;
    bob.put(
        "/_matrix/client/v3/profile/@bob:hearth.test/displayname",
        json!({"displayname": "Bobby Tables"}),
    )
    .await;

    // Alice and Bob share a private room; Carol sits in a public, published room; Dave is alone.
    let private = alice.create_room("private_chat").await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{private}/invite"),
            Some(json!({"user_id": "@bob:hearth.test"})),
        )
        .await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{private}/join"),
        Some(json!({})),
    )
    .await;
    let public = carol
        .ok(
            Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({"preset": "public_chat", "visibility": "public"})),
        )
        .await;
    assert!(public["room_id"].is_string());
    dave.create_room("private_chat").await;

    assert_eq!(
        search(&alice, "tables").await,
        ["@bob:hearth.test"],
        "by display name"
    );
    assert_eq!(
        search(&alice, "CAROL").await,
        ["@carol:hearth.test"],
        "public rooms, any case"
    );
    assert!(
        search(&alice, "dave").await.is_empty(),
        "no shared or public room"
    );
    assert!(search(&dave, "bob").await.is_empty());
    assert!(
        search(&alice, "%").await.is_empty(),
        "LIKE wildcards are literal"
    );
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/user_directory/search",
            json!({"limit": 3}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );

    // Users come and go as their rooms change join rules and history visibility.
    let public = public["room_id"].as_str().unwrap();
    carol
        .set_state(
            public,
            "m.room.join_rules",
            "",
            json!({"join_rule": "invite"}),
        )
        .await;
    assert!(
        search(&alice, "carol").await.is_empty(),
        "the room is no longer public"
    );
    let dave_room = dave.create_room("private_chat").await;
    assert!(search(&alice, "dave").await.is_empty());
    dave.set_state(
        &dave_room,
        "m.room.history_visibility",
        "",
        json!({"history_visibility": "world_readable"}),
    )
    .await;
    assert_eq!(
        search(&alice, "dave").await,
        ["@dave:hearth.test"],
        "a world-readable room is public"
    );
    carol
        .set_state(
            public,
            "m.room.join_rules",
            "",
            json!({"join_rule": "public"}),
        )
        .await;
    assert_eq!(search(&alice, "carol").await, ["@carol:hearth.test"]);
}
on_both_backends!(user_directory);

/// Ids, event types and state keys over 255 bytes are refused.
async fn oversized_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let room = alice.create_room("public_chat").await;
    let long = "k".repeat(256);
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/{long}"),
            json!({"topic": "x"}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
        "{body}"
    );
    let (status, _) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/{long}/t1"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fits = "k".repeat(255);
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/{fits}"),
            json!({"topic": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let long_room = format!("!{}:hearth.test", "r".repeat(250));
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{long_room}/send/m.room.message/t2"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        "{body}"
    );
}
on_both_backends!(oversized_keys);

/// Clients that ask for a refresh token get one, with an expiring access token; /refresh
/// rotates both, and the old refresh token works until the new tokens are used (a client that
/// lost the answer refreshes again).
async fn refresh_tokens(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register("alice").await.unwrap();
    let anon = Api::new(&server, None);
    let login = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
                       "password": "correct horse battery staple", "refresh_token": true});
    let session = anon
        .ok(Method::POST, "/_matrix/client/v3/login", Some(login))
        .await;
    let refresh = session["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_owned();
    assert!(session["expires_in_ms"].as_u64().is_some_and(|ms| ms > 0));

    let lost = anon
        .ok(
            Method::POST,
            "/_matrix/client/v3/refresh",
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    // The answer never reached the client: the same refresh token works again, and what the
    // lost answer held is void.
    let renewed = anon
        .ok(
            Method::POST,
            "/_matrix/client/v3/refresh",
            Some(json!({"refresh_token": refresh})),
        )
        .await;
    assert!(
        !Api::new(&server, lost["access_token"].as_str())
            .token_works()
            .await
    );
    let (status, _) = anon
        .post(
            "/_matrix/client/v3/refresh",
            json!({"refresh_token": lost["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let access = renewed["access_token"].as_str().unwrap();
    assert!(Api::new(&server, Some(access)).token_works().await);
    assert!(
        !Api::new(&server, session["access_token"].as_str())
            .token_works()
            .await,
        "the old token ended"
    );
    let (status, body) = anon
        .post(
            "/_matrix/client/v3/refresh",
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_UNKNOWN_TOKEN"),
        "retired once the new access token was used"
    );
    // Using the new refresh token retires the old one as well.
    let third = anon
        .ok(
            Method::POST,
            "/_matrix/client/v3/refresh",
            Some(json!({"refresh_token": renewed["refresh_token"]})),
        )
        .await;
    let fourth = anon
        .ok(
            Method::POST,
            "/_matrix/client/v3/refresh",
            Some(json!({"refresh_token": third["refresh_token"]})),
        )
        .await;
    let (status, _) = anon
        .post(
            "/_matrix/client/v3/refresh",
            json!({"refresh_token": renewed["refresh_token"]}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "retired by its successor's use"
    );
    assert!(
        Api::new(&server, fourth["access_token"].as_str())
            .token_works()
            .await
    );
}
on_both_backends!(refresh_tokens);

/// A kick never lifts a ban, and an unban never kicks.
async fn kick_and_unban_check_the_target(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/join"),
        Some(json!({})),
    )
    .await;
    let bob_id = json!({"user_id": "@bob:hearth.test"});

    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/unban"),
            bob_id.clone(),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "bob isn't banned"
    );
    assert_eq!(
        alice.member_event(&room, "@bob:hearth.test").await["membership"],
        "join"
    );

    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/ban"),
            Some(bob_id.clone()),
        )
        .await;
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/kick"),
            bob_id.clone(),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "a kick can't unban"
    );
    assert_eq!(
        alice.member_event(&room, "@bob:hearth.test").await["membership"],
        "ban"
    );
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/unban"),
            Some(bob_id),
        )
        .await;
    assert_eq!(
        alice.member_event(&room, "@bob:hearth.test").await["membership"],
        "leave"
    );
}
on_both_backends!(kick_and_unban_check_the_target);

/// "Jump to date": the event nearest a time, in either direction; none past the ends; members
/// only; a forgotten room's history is gone. And a send retransmitted after leaving still gets
/// its first answer.
async fn timestamp_to_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("private_chat").await;
    let mut sent = Vec::new();
    for body in ["one", "two", "three"] {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        sent.push(alice.send_text(&room, body).await);
    }
    let mut times = Vec::new();
    for id in &sent {
        let event = alice
            .ok(
                Method::GET,
                &format!("/_matrix/client/v3/rooms/{room}/event/{id}"),
                None,
            )
            .await;
        times.push(event["origin_server_ts"].as_i64().unwrap());
    }
    let path = |ts: i64, dir: &str| {
        format!("/_matrix/client/v1/rooms/{room}/timestamp_to_event?ts={ts}&dir={dir}")
    };
    let found = alice.ok(Method::GET, &path(times[1], "f"), None).await;
    assert_eq!(found["event_id"], sent[1].as_str(), "{found}");
    assert_eq!(found["origin_server_ts"], times[1]);
    let found = alice.ok(Method::GET, &path(times[1] - 1, "b"), None).await;
    assert_eq!(found["event_id"], sent[0].as_str(), "{found}");
    let found = alice.ok(Method::GET, &path(times[2] + 1, "b"), None).await;
    assert_eq!(found["event_id"], sent[2].as_str(), "{found}");
    let (status, body) = alice.get(&path(times[2] + 1, "f")).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let (status, body) = bob.get(&path(times[0], "f")).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = alice.get(&path(times[0], "sideways")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Leave and forget: the history is out of reach.
    let last_words = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/bye");
    let said = alice
        .ok(
            Method::PUT,
            &last_words,
            Some(json!({"msgtype": "m.text", "body": "bye"})),
        )
        .await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/leave"),
            Some(json!({})),
        )
        .await;
    assert_eq!(alice.get(&path(times[0], "f")).await.0, StatusCode::OK);
    // A retransmission still gets its first answer; a new send is refused.
    let again = alice
        .ok(
            Method::PUT,
            &last_words,
            Some(json!({"msgtype": "m.text", "body": "bye"})),
        )
        .await;
    assert_eq!(said["event_id"], again["event_id"]);
    let (status, _) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/new"),
            json!({"msgtype": "m.text", "body": "hello?"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/forget"),
            Some(json!({})),
        )
        .await;
    let (status, body) = alice
        .get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
}
on_both_backends!(timestamp_to_event);

/// Browser clients: pre-flight requests are answered on every path without running the
/// endpoint, and every response (errors too) carries the CORS headers.
async fn cors_for_browser_clients(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = Api::new(&server, None);
    let (status, _, headers) = anon
        .call_with_headers(Method::OPTIONS, "/_matrix/client/v3/login", None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(headers["access-control-allow-origin"], "*");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("PUT") && methods.contains("OPTIONS"),
        "{methods}"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed.contains("Authorization"), "{allowed}");
    // OPTIONS runs nothing: a pre-flight of a register call registers nobody.
    let (status, _, _) = anon
        .call_with_headers(
            Method::OPTIONS,
            "/_matrix/client/v3/register",
            Some(json!({"username": "ghost", "password": "pw", "auth": {"type": "m.login.dummy"}})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for path in [
        "/_matrix/client/versions",
        "/_matrix/client/v3/account/whoami",
        "/_matrix/client/v3/no/such/endpoint",
        "/.well-known/matrix/client",
    ] {
        let (_, _, headers) = anon.call_with_headers(Method::GET, path, None).await;
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
    }
    let (status, _) = anon
        .get("/_matrix/client/v3/register/available?username=ghost")
        .await;
    assert_eq!(status, StatusCode::OK, "the pre-flight registered nobody");
}
on_both_backends!(cors_for_browser_clients);
