//! /sync over HTTP: initial and incremental syncs, limited timelines and state deltas, the
//! long-poll woken by new events, invites, leaves, lazy-loaded members, stored filters, typing,
//! receipts and read markers. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn joined<'a>(sync: &'a Value, room: &str) -> &'a Value {
    &sync["rooms"]["join"][room]
}

fn bodies(room: &Value) -> Vec<String> {
    room["timeline"]["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["content"]["body"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn has_state(room: &Value, kind: &str, key: &str) -> bool {
    room["state"]["events"].as_array().is_some_and(|events| {
        events
            .iter()
            .any(|e| e["type"] == kind && e["state_key"] == key)
    })
}

async fn initial_and_incremental(backend: Backend) {
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
    for i in 0..15 {
        alice.send_text(&room, &format!("m{i}")).await;
    }

    // Initial sync: the last 10 events, limited, with the state before them.
    let first = bob.sync(None, 0).await;
    let entry = joined(&first, &room);
    assert_eq!(entry["timeline"]["limited"], true);
    assert_eq!(entry["timeline"]["events"].as_array().unwrap().len(), 10);
    assert_eq!(bodies(entry).last().map(String::as_str), Some("m14"));
    assert!(has_state(entry, "m.room.create", ""));
    assert!(has_state(entry, "m.room.member", "@alice:hearth.test"));
    assert_eq!(entry["summary"]["m.joined_member_count"], 2);
    let since = first["next_batch"].as_str().unwrap().to_owned();

    // Nothing new: the long-poll times out empty.
    let started = Instant::now();
    let quiet = bob.sync(Some(&since), 300).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "waited for the timeout"
    );
    assert!(quiet["rooms"]["join"].as_object().unwrap().is_empty());

    // A send wakes a waiting sync long before its timeout.
    let waiting = {
        let server = &server;
        let since = since.clone();
        async move {
            let bob = Api::new(server, bob_token(server).await.as_deref());
            let started = Instant::now();
            (bob.sync(Some(&since), 10_000).await, started.elapsed())
        }
    };
    let sender = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        alice.send_text(&room, "wake up").await
    };
    let ((woken, waited), _) = tokio::join!(waiting, sender);
    assert!(
        waited < Duration::from_secs(5),
        "woken by the send, not the timeout ({waited:?})"
    );
    let entry = joined(&woken, &room);
    assert_eq!(bodies(entry), ["wake up"]);
    assert_eq!(entry["timeline"]["limited"], false);
    assert!(
        entry["state"]["events"].as_array().unwrap().is_empty(),
        "no state delta when not limited"
    );

    // A gap bigger than the limit: limited, with the state that changed inside the gap.
    let since = woken["next_batch"].as_str().unwrap().to_owned();
    alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/"),
            json!({"topic": "new"}),
        )
        .await;
    for i in 0..12 {
        alice.send_text(&room, &format!("n{i}")).await;
    }
    let gap = bob.sync(Some(&since), 0).await;
    let entry = joined(&gap, &room);
    assert_eq!(entry["timeline"]["limited"], true);
    assert!(
        has_state(entry, "m.room.topic", ""),
        "the topic change fell in the gap"
    );
    assert!(
        !has_state(entry, "m.room.create", ""),
        "unchanged state is not resent"
    );

    // Pagination from prev_batch continues right before the timeline.
    let prev = entry["timeline"]["prev_batch"].as_str().unwrap();
    let page = bob
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=1&from={prev}"),
            None,
        )
        .await;
    assert_eq!(page["chunk"][0]["content"]["body"], "n1");

    // Bad tokens are refused.
    let (status, body) = bob.get("/_matrix/client/v3/sync?since=garbage").await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
}
on_both_backends!(initial_and_incremental);

/// Log bob in again (a second device), for a second concurrent sync connection.
async fn bob_token(server: &TestServer) -> Option<String> {
    let login = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "bob"},
                       "password": "correct horse battery staple"});
    let body = Api::new(server, None)
        .ok(Method::POST, "/_matrix/client/v3/login", Some(login))
        .await;
    body["access_token"].as_str().map(str::to_owned)
}

async fn invites_leaves_and_lazy_members(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let carol = Api::user(&server, "carol").await;
    let since = bob.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();

    let room = alice.create_room("private_chat").await;
    alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.name/"),
            json!({"name": "Secret"}),
        )
        .await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            Some(json!({"user_id": "@bob:hearth.test"})),
        )
        .await;
    let invited = bob.sync(Some(&since), 1000).await;
    let state = invited["rooms"]["invite"][&room]["invite_state"]["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        state
            .iter()
            .any(|e| e["type"] == "m.room.name" && e["content"]["name"] == "Secret")
    );
    assert!(state.iter().any(|e| e["type"] == "m.room.member"
        && e["state_key"] == "@bob:hearth.test"
        && e["content"]["membership"] == "invite"));
    assert!(
        state.iter().all(|e| e.get("event_id").is_none()),
        "stripped state"
    );

    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/join"),
        Some(json!({})),
    )
    .await;
    carol.sync(None, 0).await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            Some(json!({"user_id": "@carol:hearth.test"})),
        )
        .await;
    carol
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/join"),
            Some(json!({})),
        )
        .await;
    carol.send_text(&room, "carol here").await;

    // Lazy loading: only the members who speak in the timeline (and oneself).
    let filter = json!({"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": true}}});
    let path = format!(
        "/_matrix/client/v3/sync?filter={}",
        urlencode(&filter.to_string())
    );
    let lazy = bob.ok(Method::GET, &path, None).await;
    let entry = joined(&lazy, &room);
    assert!(has_state(entry, "m.room.member", "@carol:hearth.test"));
    assert!(has_state(entry, "m.room.member", "@bob:hearth.test"));
    assert!(
        !has_state(entry, "m.room.member", "@alice:hearth.test"),
        "alice didn't speak"
    );

    // The same filter stored and used by id.
    let stored = bob
        .ok(
            Method::POST,
            "/_matrix/client/v3/user/@bob:hearth.test/filter",
            Some(filter),
        )
        .await;
    let id = stored["filter_id"].as_str().unwrap();
    let by_id = bob
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/sync?filter={id}"),
            None,
        )
        .await;
    assert!(!has_state(
        joined(&by_id, &room),
        "m.room.member",
        "@alice:hearth.test"
    ));
    let (status, body) = bob.get("/_matrix/client/v3/sync?filter=999").await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );

    // Leaving puts the room in `leave` with the leave event in its timeline.
    let since = bob.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/leave"),
        Some(json!({})),
    )
    .await;
    let left = bob.sync(Some(&since), 1000).await;
    let timeline = left["rooms"]["leave"][&room]["timeline"]["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        timeline
            .iter()
            .any(|e| e["type"] == "m.room.member" && e["content"]["membership"] == "leave")
    );
    assert!(left["rooms"]["join"].get(&room).is_none());
    // Alice's messages after the leave never reach bob.
    let since = left["next_batch"].as_str().unwrap().to_owned();
    alice.send_text(&room, "after bob left").await;
    let later = bob.sync(Some(&since), 300).await;
    assert!(
        later["rooms"]["join"].get(&room).is_none() && later["rooms"]["leave"].get(&room).is_none()
    );
}
on_both_backends!(invites_leaves_and_lazy_members);

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn typing_receipts_and_read_markers(backend: Backend) {
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
    let message = alice.send_text(&room, "read me").await;
    let since = alice.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();

    // Typing shows up in the other user's ephemeral events.
    bob.ok(
        Method::PUT,
        &format!("/_matrix/client/v3/rooms/{room}/typing/@bob:hearth.test"),
        Some(json!({"typing": true, "timeout": 30000})),
    )
    .await;
    let sync = alice.sync(Some(&since), 1000).await;
    let ephemeral = joined(&sync, &room)["ephemeral"]["events"]
        .as_array()
        .unwrap()
        .clone();
    assert!(ephemeral.iter().any(
        |e| e["type"] == "m.typing" && e["content"]["user_ids"] == json!(["@bob:hearth.test"])
    ));
    let (status, _) = bob
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/typing/@alice:hearth.test"),
            json!({"typing": true, "timeout": 1000}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no typing for others");

    // A public receipt reaches alice; a private one doesn't.
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{message}"),
        Some(json!({})),
    )
    .await;
    let sync = alice.sync(Some(&since), 1000).await;
    let receipt = joined(&sync, &room)["ephemeral"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "m.receipt")
        .cloned()
        .expect("a receipt event");
    assert!(receipt["content"][&message]["m.read"]["@bob:hearth.test"]["ts"].is_u64());

    let since = sync["next_batch"].as_str().unwrap().to_owned();
    let bob_since = bob.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/read_markers"),
        Some(json!({"m.fully_read": message, "m.read.private": message})),
    )
    .await;
    let alices = alice.sync(Some(&since), 300).await;
    let private_seen = joined(&alices, &room)["ephemeral"]["events"]
        .as_array()
        .is_some_and(|events| {
            events
                .iter()
                .any(|e| e.to_string().contains("m.read.private"))
        });
    assert!(!private_seen, "private receipts stay private");
    let bobs = bob.sync(Some(&bob_since), 1000).await;
    let entry = joined(&bobs, &room);
    assert!(
        entry["ephemeral"]["events"]
            .to_string()
            .contains("m.read.private"),
        "but the owner sees them"
    );
    assert!(
        entry["account_data"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "m.fully_read" && e["content"]["event_id"] == message.as_str())
    );

    // Receipts for events that aren't in the room are refused.
    let (status, body) = bob
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/$nope"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
}
on_both_backends!(typing_receipts_and_read_markers);

async fn forgotten_rooms_disappear(backend: Backend) {
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
    let forget = format!("/_matrix/client/v3/rooms/{room}/forget");
    let (status, body) = bob.post(&forget, json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
        "still joined"
    );

    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/leave"),
        Some(json!({})),
    )
    .await;
    let include_leave = format!(
        "/_matrix/client/v3/sync?filter={}",
        urlencode(r#"{"room":{"include_leave":true}}"#)
    );
    let before = bob.ok(Method::GET, &include_leave, None).await;
    assert!(
        before["rooms"]["leave"].get(&room).is_some(),
        "a left room is listed with include_leave"
    );
    bob.ok(Method::POST, &forget, Some(json!({}))).await;
    let after = bob.ok(Method::GET, &include_leave, None).await;
    assert!(
        after["rooms"]["leave"].get(&room).is_none(),
        "until it is forgotten"
    );

    // Rejoining brings it back.
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/join"),
        Some(json!({})),
    )
    .await;
    assert!(
        bob.sync(None, 0).await["rooms"]["join"]
            .get(&room)
            .is_some()
    );
}
on_both_backends!(forgotten_rooms_disappear);

/// History visibility applies to /sync, /messages and /event alike.
async fn history_visibility(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    for (visibility, bob_sees_before) in [("joined", false), ("shared", true), ("invited", false)] {
        let room = alice.create_room("public_chat").await;
        alice
            .ok(
                Method::PUT,
                &format!("/_matrix/client/v3/rooms/{room}/state/m.room.history_visibility/"),
                Some(json!({"history_visibility": visibility})),
            )
            .await;
        let before = alice.send_text(&room, "before").await;
        bob.ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/join"),
            Some(json!({})),
        )
        .await;
        alice.send_text(&room, "after").await;

        let sync = bob.sync(None, 0).await;
        let seen = bodies(joined(&sync, &room));
        assert_eq!(
            seen.contains(&"before".to_owned()),
            bob_sees_before,
            "{visibility}: sync {seen:?}"
        );
        assert!(seen.contains(&"after".to_owned()), "{visibility}");
        let page = bob
            .ok(
                Method::GET,
                &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=50"),
                None,
            )
            .await;
        let paged: Vec<_> = page["chunk"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["content"]["body"].as_str())
            .collect();
        assert_eq!(
            paged.contains(&"before"),
            bob_sees_before,
            "{visibility}: messages {paged:?}"
        );
        let (status, _) = bob
            .get(&format!("/_matrix/client/v3/rooms/{room}/event/{before}"))
            .await;
        assert_eq!(
            status == StatusCode::OK,
            bob_sees_before,
            "{visibility}: event {status}"
        );
    }
}
on_both_backends!(history_visibility);

fn presence_of<'a>(sync: &'a Value, user: &str) -> Option<&'a Value> {
    sync["presence"]["events"]
        .as_array()?
        .iter()
        .find(|e| e["type"] == "m.presence" && e["sender"] == user)
        .map(|e| &e["content"])
}

/// Syncing marks a user online for those who share a room with them; an explicit status with a
/// message reaches them too, nobody else sees it, and filters can leave presence out.
async fn presence(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let carol = Api::user(&server, "carol").await;
    let room = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/join"),
        Some(json!({})),
    )
    .await;
    let path = "/_matrix/client/v3/presence/@alice:hearth.test/status";
    assert_eq!(bob.get(path).await.1["presence"], "offline");

    // Alice's sync (set_presence defaults to online) marks her online; she sees herself.
    let first = alice.sync(None, 0).await;
    assert_eq!(
        presence_of(&first, "@alice:hearth.test").map(|c| c["presence"].clone()),
        Some(json!("online"))
    );
    let bob_first = bob.sync(None, 0).await;
    let seen = presence_of(&bob_first, "@alice:hearth.test").expect("bob sees alice");
    assert_eq!(seen["presence"], "online");
    assert_eq!(seen["currently_active"], true);
    let (status, body) = bob.get(path).await;
    assert_eq!(
        (status, body["presence"].as_str()),
        (StatusCode::OK, Some("online"))
    );
    // Carol shares no room with alice.
    let carol_first = carol.sync(None, 0).await;
    assert!(presence_of(&carol_first, "@alice:hearth.test").is_none());
    let (status, body) = carol.get(path).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );

    // An explicit status wakes bob's waiting sync, with the message.
    let since = bob_first["next_batch"].as_str().unwrap().to_owned();
    let waiting = async {
        let started = Instant::now();
        (bob.sync(Some(&since), 10_000).await, started.elapsed())
    };
    let setting = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        alice
            .ok(
                Method::PUT,
                path,
                Some(json!({"presence": "unavailable", "status_msg": "at lunch"})),
            )
            .await
    };
    let ((update, waited), _) = tokio::join!(waiting, setting);
    assert!(waited < Duration::from_secs(5), "woken, not timed out");
    let seen = presence_of(&update, "@alice:hearth.test").expect("the new status");
    assert_eq!(
        (seen["presence"].as_str(), seen["status_msg"].as_str()),
        (Some("unavailable"), Some("at lunch"))
    );
    // A sync with set_presence=offline leaves her status alone.
    alice
        .ok(
            Method::GET,
            "/_matrix/client/v3/sync?timeout=0&set_presence=offline",
            None,
        )
        .await;
    assert_eq!(bob.get(path).await.1["presence"], "unavailable");

    // Carol joins the room: her next sync brings alice's presence though it has not changed.
    let carol_since = carol_first["next_batch"].as_str().unwrap().to_owned();
    carol
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/join"),
            Some(json!({})),
        )
        .await;
    let carol_next = carol.sync(Some(&carol_since), 0).await;
    let seen = presence_of(&carol_next, "@alice:hearth.test").expect("a new room-mate's presence");
    assert_eq!(seen["status_msg"], "at lunch");

    // Bad requests: another user's status, an unknown state, an unknown set_presence.
    let (status, body) = bob.put(path, json!({"presence": "online"})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = alice.put(path, json!({"presence": "asleep"})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    let (status, body) = alice
        .get("/_matrix/client/v3/sync?timeout=0&set_presence=dancing")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );

    // A filter without presence gets none.
    let filter = json!({"presence": {"not_types": ["*"]}}).to_string();
    let filtered = bob
        .ok(
            Method::GET,
            &format!(
                "/_matrix/client/v3/sync?timeout=0&filter={}",
                urlencode(&filter)
            ),
            None,
        )
        .await;
    assert!(
        filtered["presence"]["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
on_both_backends!(presence);

/// Knocking: a knock shows up for the knocker (with the room's stripped state) and for the
/// members; an invite lets the knocker in; a leave takes a knock back; rooms that do not take
/// knocks refuse them.
async fn knocking(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let carol = Api::user(&server, "carol").await;
    let room = alice
        .ok(
            Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({"preset": "private_chat", "name": "Knock knock",
                        "initial_state": [{"type": "m.room.join_rules", "state_key": "",
                                           "content": {"join_rule": "knock"}}]})),
        )
        .await["room_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_since = alice.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_since = bob.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();

    let knocked = bob
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/knock/{room}"),
            Some(json!({"reason": "let me in"})),
        )
        .await;
    assert_eq!(knocked["room_id"], room.as_str());
    let sync = bob.sync(Some(&bob_since), 0).await;
    let state = &sync["rooms"]["knock"][&room]["knock_state"]["events"];
    let kinds: Vec<&str> = state
        .as_array()
        .unwrap_or_else(|| panic!("no knock: {sync}"))
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"m.room.join_rules") && kinds.contains(&"m.room.name"),
        "{kinds:?}"
    );
    let own = state.as_array().unwrap().last().unwrap();
    assert_eq!(
        (own["type"].as_str(), own["content"]["membership"].as_str()),
        (Some("m.room.member"), Some("knock"))
    );
    assert_eq!(own["content"]["reason"], "let me in");
    // The members see the knock in the room.
    let sync = alice.sync(Some(&alice_since), 0).await;
    let knock = joined(&sync, &room)["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["state_key"] == "@bob:hearth.test")
        .cloned()
        .unwrap_or_else(|| panic!("no knock in {sync}"));
    assert_eq!(knock["content"]["membership"], "knock");

    // Rooms without the knock join rule refuse knocks.
    let public = alice.create_room("public_chat").await;
    let (status, body) = carol
        .post(&format!("/_matrix/client/v3/knock/{public}"), json!({}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    let (status, body) = carol
        .post("/_matrix/client/v3/knock/%23nowhere:hearth.test", json!({}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );

    // Alice lets bob in by inviting him; he joins.
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            Some(json!({"user_id": "@bob:hearth.test"})),
        )
        .await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/join"),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        alice.member_event(&room, "@bob:hearth.test").await["membership"],
        "join"
    );
    // A member has nothing to knock for.
    let (status, body) = bob
        .post(&format!("/_matrix/client/v3/knock/{room}"), json!({}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "{body}"
    );

    // Carol knocks and takes it back.
    let carol_since = carol.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    carol
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/knock/{room}"),
            Some(json!({})),
        )
        .await;
    carol
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/leave"),
            Some(json!({})),
        )
        .await;
    let sync = carol.sync(Some(&carol_since), 0).await;
    assert!(sync["rooms"]["leave"].get(&room).is_some(), "{sync}");
    assert!(sync["rooms"]["knock"].get(&room).is_none(), "{sync}");
}
on_both_backends!(knocking);

/// Waits until `user` has `count` syncs registered with the notifier.
async fn until_waiting(server: &TestServer, user: &str, count: usize) {
    let topic = hearth_store::Topic::User(user.try_into().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.store().notifier().waiting_on(&topic) < count {
        assert!(
            Instant::now() < deadline,
            "{user}'s syncs never started waiting"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The notifier wakes only the syncs news concerns: a v2 and a sliding sync long-poll of
/// alice's sleep through everything that happens in a room she is not in, and wake for a
/// to-device message to her device and for an invite.
async fn news_wakes_only_who_it_concerns(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let device = alice.get("/_matrix/client/v3/account/whoami").await.1["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Alice's own room: her syncs watch it.
    let hers = alice.create_room("private_chat").await;
    let his = bob.create_room("private_chat").await;
    let since = alice.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    let sliding = "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync";
    let body = json!({"lists": {"all": {"ranges": [[0, 10]], "timeline_limit": 1}}});
    let (status, first) = alice.post(sliding, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let pos = first["pos"].as_str().unwrap().to_owned();

    let poll = format!("{sliding}?pos={pos}&timeout=20000");
    let polls = async {
        let v2 = alice.sync(Some(&since), 20_000);
        let v5 = alice.post(&poll, body.clone());
        tokio::join!(v2, v5)
    };
    let news = async {
        until_waiting(&server, "@alice:hearth.test", 2).await;
        let wakes = server.store().notifier().wakes();
        // Messages, typing, receipts and account data in bob's room, and bob's presence.
        for i in 0..5 {
            let event = bob.send_text(&his, &format!("m{i}")).await;
            bob.ok(
                Method::POST,
                &format!("/_matrix/client/v3/rooms/{his}/receipt/m.read/{event}"),
                Some(json!({})),
            )
            .await;
        }
        bob.ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{his}/typing/@bob:hearth.test"),
            Some(json!({"typing": true, "timeout": 1000})),
        )
        .await;
        bob.ok(
            Method::PUT,
            "/_matrix/client/v3/user/@bob:hearth.test/account_data/m.x",
            Some(json!({"a": 1})),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            server.store().notifier().wakes(),
            wakes,
            "news in a room alice is not in woke her"
        );
        // A to-device message for her device wakes both of her syncs.
        bob.ok(
            Method::PUT,
            "/_matrix/client/v3/sendToDevice/m.x/t1",
            Some(json!({"messages": {"@alice:hearth.test": {device.as_str(): {"n": 1}}}})),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.store().notifier().wakes() < wakes + 2 {
            assert!(
                Instant::now() < deadline,
                "the to-device message woke nobody"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The sliding connection did not ask for to-device messages: woken, it found nothing
        // for itself and waits on. An invite is news about alice: it wakes her.
        bob.ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{his}/invite"),
            Some(json!({"user_id": "@alice:hearth.test"})),
        )
        .await;
    };
    let started = Instant::now();
    let ((v2, (status, v5)), ()) = tokio::join!(polls, news);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "woken, not timed out"
    );
    assert_eq!(v2["to_device"]["events"][0]["content"]["n"], 1, "{v2}");
    assert!(v2["rooms"]["join"].get(&his).is_none());
    assert_eq!(status, StatusCode::OK, "{v5}");
    assert!(v5["rooms"][&his]["invite_state"].is_array(), "{v5}");
    assert!(
        v5["rooms"].get(&hers).is_none(),
        "nothing new in her own room: {v5}"
    );
}
on_both_backends!(news_wakes_only_who_it_concerns);
