//! Profiles, account data, tags, filters, capabilities and well-known discovery over real HTTP,
//! on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use ruma::user_id;
use serde_json::{Value, json};

const ALICE: &str = "@alice:hearth.test";
const BOB: &str = "@bob:hearth.test";

async fn profiles_and_member_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let anon = Api::new(&server, None);
    let profile = |user: &str| format!("/_matrix/client/v3/profile/{user}");

    // A fresh account has an empty profile; unknown users have none.
    assert_eq!(anon.ok(Method::GET, &profile(ALICE), None).await, json!({}));
    for path in [
        profile("@nobody:hearth.test"),
        format!("{}/displayname", profile("@nobody:hearth.test")),
        format!("{}/avatar_url", profile("@nobody:hearth.test")),
    ] {
        let (status, body) = anon.get(&path).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            "{path}"
        );
    }

    let room = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/join"),
        Some(json!({})),
    )
    .await;
    let member = alice.member_event(&room, ALICE).await;
    assert_eq!(member["membership"], "join");
    assert!(member.get("displayname").is_none(), "{member}");

    // Setting the display name: readable by anyone, and written into the member event.
    alice
        .ok(
            Method::PUT,
            &format!("{}/displayname", profile(ALICE)),
            Some(json!({"displayname": "Alice Liddell"})),
        )
        .await;
    assert_eq!(
        anon.ok(
            Method::GET,
            &format!("{}/displayname", profile(ALICE)),
            None
        )
        .await,
        json!({"displayname": "Alice Liddell"})
    );
    let member = bob.member_event(&room, ALICE).await;
    assert_eq!(member["membership"], "join");
    assert_eq!(member["displayname"], "Alice Liddell");

    alice
        .ok(
            Method::PUT,
            &format!("{}/avatar_url", profile(ALICE)),
            Some(json!({"avatar_url": "mxc://hearth.test/rabbit"})),
        )
        .await;
    assert_eq!(
        anon.ok(Method::GET, &format!("{}/avatar_url", profile(ALICE)), None)
            .await,
        json!({"avatar_url": "mxc://hearth.test/rabbit"})
    );
    assert_eq!(
        anon.ok(Method::GET, &profile(ALICE), None).await,
        json!({"displayname": "Alice Liddell", "avatar_url": "mxc://hearth.test/rabbit"})
    );
    let member = bob.member_event(&room, ALICE).await;
    assert_eq!(member["displayname"], "Alice Liddell");
    assert_eq!(member["avatar_url"], "mxc://hearth.test/rabbit");
    // Bob's member event is his own business.
    assert!(
        bob.member_event(&room, BOB)
            .await
            .get("displayname")
            .is_none()
    );

    // Nobody sets another user's profile; nothing changes when they try.
    for (field, value) in [
        ("displayname", json!("Mallory")),
        ("avatar_url", json!("mxc://hearth.test/evil")),
    ] {
        let (status, body) = bob
            .put(
                &format!("{}/{field}", profile(ALICE)),
                json!({ field: value }),
            )
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            "{field}"
        );
    }
    let (status, body) = anon
        .put(
            &format!("{}/displayname", profile(ALICE)),
            json!({"displayname": "x"}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
    );
    assert_eq!(
        anon.ok(Method::GET, &profile(ALICE), None).await,
        json!({"displayname": "Alice Liddell", "avatar_url": "mxc://hearth.test/rabbit"})
    );

    // Any URI is an avatar URL, as the spec has it, not only mxc:// ones.
    let avatar = format!("{}/avatar_url", profile(ALICE));
    alice
        .ok(
            Method::PUT,
            &avatar,
            Some(json!({"avatar_url": "https://example.org/a.png"})),
        )
        .await;
    assert_eq!(
        anon.ok(Method::GET, &avatar, None).await["avatar_url"],
        "https://example.org/a.png"
    );
    alice
        .ok(
            Method::PUT,
            &avatar,
            Some(json!({"avatar_url": "mxc://hearth.test/rabbit"})),
        )
        .await;

    // Bad values are refused.
    let (status, body) = alice.put(&avatar, json!({"avatar_url": "not a uri"})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    let (status, body) = alice
        .put(
            &format!("{}/displayname", profile(ALICE)),
            json!({"displayname": "x".repeat(300)}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );

    // Clearing the display name removes it from the profile and the member event.
    alice
        .ok(
            Method::PUT,
            &format!("{}/displayname", profile(ALICE)),
            Some(json!({"displayname": ""})),
        )
        .await;
    assert_eq!(
        anon.ok(Method::GET, &profile(ALICE), None).await,
        json!({"avatar_url": "mxc://hearth.test/rabbit"})
    );
    let member = bob.member_event(&room, ALICE).await;
    assert_eq!(member["membership"], "join");
    assert!(member.get("displayname").is_none(), "{member}");
    assert_eq!(member["avatar_url"], "mxc://hearth.test/rabbit");

    // Joins and new rooms carry the current profile from the start.
    bob.ok(
        Method::PUT,
        &format!("{}/displayname", profile(BOB)),
        Some(json!({"displayname": "Bob"})),
    )
    .await;
    let other = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{other}/join"),
        Some(json!({})),
    )
    .await;
    assert_eq!(alice.member_event(&other, BOB).await["displayname"], "Bob");
    let own = bob.create_room("public_chat").await;
    assert_eq!(bob.member_event(&own, BOB).await["displayname"], "Bob");
}
on_both_backends!(profiles_and_member_events);

async fn account_data(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    let global = |t: &str| format!("/_matrix/client/v3/user/{ALICE}/account_data/{t}");
    let in_room =
        |t: &str| format!("/_matrix/client/v3/user/{ALICE}/rooms/{room}/account_data/{t}");

    for path in [global("org.example.x"), in_room("org.example.x")] {
        let (status, body) = alice.get(&path).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            "{path}"
        );
    }
    let before = server.store().max_account_data_stream().await.unwrap();

    alice
        .ok(
            Method::PUT,
            &global("org.example.x"),
            Some(json!({"global": true, "n": [1, 2]})),
        )
        .await;
    alice
        .ok(
            Method::PUT,
            &in_room("org.example.x"),
            Some(json!({"room": true})),
        )
        .await;
    assert_eq!(
        alice.ok(Method::GET, &global("org.example.x"), None).await,
        json!({"global": true, "n": [1, 2]})
    );
    assert_eq!(
        alice.ok(Method::GET, &in_room("org.example.x"), None).await,
        json!({"room": true})
    );
    // Overwrite.
    alice
        .ok(
            Method::PUT,
            &global("org.example.x"),
            Some(json!({"global": 2})),
        )
        .await;
    assert_eq!(
        alice.ok(Method::GET, &global("org.example.x"), None).await,
        json!({"global": 2})
    );

    // What /sync will read: both entries, after the position from before.
    let changed = server
        .store()
        .account_data_since(user_id!("@alice:hearth.test"), before)
        .await
        .unwrap();
    assert_eq!(changed.len(), 2, "{changed:?}");
    assert_eq!(
        changed[0].room_id.as_ref().map(|r| r.as_str()),
        Some(room.as_str())
    );
    assert_eq!(changed[1].room_id, None);
    assert_eq!(
        serde_json::from_str::<Value>(&changed[1].content).unwrap(),
        json!({"global": 2})
    );

    // Only one's own account data.
    for path in [global("org.example.x"), in_room("org.example.x")] {
        let (status, body) = bob.get(&path).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            "{path}"
        );
        let (status, body) = bob.put(&path, json!({"evil": true})).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            "{path}"
        );
    }
    assert_eq!(
        alice.ok(Method::GET, &global("org.example.x"), None).await,
        json!({"global": 2})
    );

    // Server-managed types are refused, as the spec says: 405 M_BAD_JSON.
    for path in [
        global("m.fully_read"),
        global("m.push_rules"),
        in_room("m.fully_read"),
        in_room("m.push_rules"),
    ] {
        let (status, body) = alice.put(&path, json!({"event_id": "$x"})).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::METHOD_NOT_ALLOWED, "M_BAD_JSON"),
            "{path}"
        );
    }
    // Content must be an object.
    let (status, body) = alice.put(&global("org.example.y"), json!([1, 2])).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    // The room id must be one.
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/user/{ALICE}/rooms/not-a-room/account_data/org.example.x"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
}
on_both_backends!(account_data);

async fn tags(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    let tags = format!("/_matrix/client/v3/user/{ALICE}/rooms/{room}/tags");

    assert_eq!(
        alice.ok(Method::GET, &tags, None).await,
        json!({"tags": {}})
    );
    alice
        .ok(
            Method::PUT,
            &format!("{tags}/u.work"),
            Some(json!({"order": 0.5})),
        )
        .await;
    alice
        .ok(Method::PUT, &format!("{tags}/m.favourite"), Some(json!({})))
        .await;
    assert_eq!(
        alice.ok(Method::GET, &tags, None).await,
        json!({"tags": {"u.work": {"order": 0.5}, "m.favourite": {}}})
    );
    // Re-tagging updates the order.
    alice
        .ok(
            Method::PUT,
            &format!("{tags}/u.work"),
            Some(json!({"order": 0.25})),
        )
        .await;
    assert_eq!(
        alice.ok(Method::GET, &tags, None).await["tags"]["u.work"],
        json!({"order": 0.25})
    );

    alice
        .ok(Method::DELETE, &format!("{tags}/u.work"), None)
        .await;
    // Removing a tag that isn't there is fine.
    alice
        .ok(Method::DELETE, &format!("{tags}/u.never"), None)
        .await;
    assert_eq!(
        alice.ok(Method::GET, &tags, None).await,
        json!({"tags": {"m.favourite": {}}})
    );
    // Tags are the room's m.tag account data, so sync delivers them.
    assert_eq!(
        alice
            .ok(
                Method::GET,
                &format!("/_matrix/client/v3/user/{ALICE}/rooms/{room}/account_data/m.tag"),
                None
            )
            .await,
        json!({"tags": {"m.favourite": {}}})
    );
    let rows = server
        .store()
        .account_data_since(user_id!("@alice:hearth.test"), 0)
        .await
        .unwrap();
    assert!(
        rows.iter().any(|r| r.data_type == "m.tag"
            && r.room_id.as_ref().map(|r| r.as_str()) == Some(room.as_str())),
        "{rows:?}"
    );

    // Only one's own tags.
    let (status, body) = bob.get(&tags).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = bob.put(&format!("{tags}/u.evil"), json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = bob.delete(&format!("{tags}/m.favourite"), json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    assert_eq!(
        alice.ok(Method::GET, &tags, None).await,
        json!({"tags": {"m.favourite": {}}})
    );
}
on_both_backends!(tags);

async fn filters(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let filters = format!("/_matrix/client/v3/user/{ALICE}/filter");

    let filter = json!({
        "room": {"timeline": {"limit": 10, "types": ["m.room.message"]}},
        "presence": {"not_types": ["*"]},
        "event_fields": ["content.body", "type"]
    });
    let body = alice.ok(Method::POST, &filters, Some(filter.clone())).await;
    let id = body["filter_id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty() && !id.starts_with('{'), "{id}");
    assert_eq!(
        alice
            .ok(Method::GET, &format!("{filters}/{id}"), None)
            .await,
        filter
    );
    // A different filter gets a different id.
    let other = alice
        .ok(Method::POST, &filters, Some(json!({"room": {"rooms": []}})))
        .await;
    assert_ne!(other["filter_id"], json!(id));

    // Malformed filters are refused.
    for bad in [
        json!({"room": {"timeline": {"limit": "ten"}}}),
        json!({"event_fields": "content.body"}),
        json!([]),
    ] {
        let (status, body) = alice.post(&filters, bad.clone()).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
            "{bad}"
        );
    }

    // Unknown ids, and other users' filters.
    let (status, body) = alice.get(&format!("{filters}/999")).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let (status, body) = bob.get(&format!("{filters}/{id}")).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = bob.post(&filters, json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    // Bob's own filter ids are his own.
    let bobs = bob
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/user/{BOB}/filter"),
            Some(json!({"room": {"timeline": {"limit": 1}}})),
        )
        .await;
    let bobs = bobs["filter_id"].as_str().unwrap();
    assert_eq!(
        bob.ok(
            Method::GET,
            &format!("/_matrix/client/v3/user/{BOB}/filter/{bobs}"),
            None
        )
        .await,
        json!({"room": {"timeline": {"limit": 1}}})
    );
}
on_both_backends!(filters);

async fn capabilities(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let body = alice
        .ok(Method::GET, "/_matrix/client/v3/capabilities", None)
        .await;
    let caps = &body["capabilities"];
    assert_eq!(caps["m.change_password"], json!({"enabled": true}));
    assert_eq!(caps["m.set_displayname"], json!({"enabled": true}));
    assert_eq!(caps["m.set_avatar_url"], json!({"enabled": true}));
    assert_eq!(caps["m.3pid_changes"], json!({"enabled": false}));
    assert_eq!(caps["m.room_versions"]["default"], "12");
    let available = caps["m.room_versions"]["available"].as_object().unwrap();
    let expected: Vec<String> = (1..=12).map(|v| v.to_string()).collect();
    let mut versions: Vec<&String> = available.keys().collect();
    versions.sort_by_key(|v| v.parse::<u32>().unwrap());
    assert_eq!(versions, expected.iter().collect::<Vec<_>>());
    assert!(available.values().all(|s| s == "stable"), "{available:?}");

    let (status, body) = Api::new(&server, None)
        .get("/_matrix/client/v3/capabilities")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::UNAUTHORIZED, "M_MISSING_TOKEN")
    );
}
on_both_backends!(capabilities);

async fn well_known(backend: Backend) {
    // Unset: 404, so clients and servers use the server name as it is.
    let server = TestServer::start(backend).await;
    let anon = Api::new(&server, None);
    for path in ["/.well-known/matrix/client", "/.well-known/matrix/server"] {
        let (status, body) = anon.get(path).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            "{path}"
        );
    }
    drop(anon);
    server.server.unwrap().stop().await.unwrap();

    let server = TestServer::start_with(backend, |config| {
        config.well_known.client_base_url = Some("https://matrix.hearth.test".into());
        config.well_known.server = Some("matrix.hearth.test:443".into());
    })
    .await;
    let response = reqwest::get(server.url("/.well-known/matrix/client"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        "*"
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"m.homeserver": {"base_url": "https://matrix.hearth.test"}})
    );
    let anon = Api::new(&server, None);
    assert_eq!(
        anon.ok(Method::GET, "/.well-known/matrix/server", None)
            .await,
        json!({"m.server": "matrix.hearth.test:443"})
    );
}
on_both_backends!(well_known);
