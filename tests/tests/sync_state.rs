//! The state sections of `/sync` to the letter of the spec: `full_state`, lazy-loaded members
//! in incremental and gapped syncs (with and without `include_redundant_members`), and the
//! room summary's heroes. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, users_in_room};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::Method;
use serde_json::{Value, json};

fn joined<'a>(sync: &'a Value, room: &str) -> &'a Value {
    &sync["rooms"]["join"][room]
}

fn next(sync: &Value) -> String {
    sync["next_batch"].as_str().unwrap().to_owned()
}

fn bodies(room: &Value) -> Vec<&str> {
    room["timeline"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect()
}

/// The state keys of the `m.room.member` events in the room's `state` section, sorted.
fn state_members(room: &Value) -> Vec<&str> {
    let mut members: Vec<&str> = room["state"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "m.room.member")
        .filter_map(|e| e["state_key"].as_str())
        .collect();
    members.sort_unstable();
    members
}

fn state_types(room: &Value) -> Vec<&str> {
    room["state"]["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["type"].as_str())
        .collect()
}

async fn full_state(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    alice.send_text(&room, "before").await;
    let first = bob.sync(None, 0).await;
    let since = next(&first);
    alice.send_text(&room, "after").await;

    // The whole state, but a timeline that still starts at the token.
    let filter = json!({});
    let full = bob
        .sync_with(Some(&since), &filter, "&full_state=true")
        .await;
    let entry = joined(&full, &room);
    assert_eq!(bodies(entry), ["after"], "{entry}");
    assert_eq!(entry["timeline"]["limited"], false);
    let types = state_types(entry);
    for kind in ["m.room.create", "m.room.join_rules", "m.room.power_levels"] {
        assert!(types.contains(&kind), "{kind} missing from {types:?}");
    }
    assert_eq!(
        state_members(entry),
        ["@alice:hearth.test", "@bob:hearth.test"]
    );

    // With nothing new, the room still comes with its state.
    let since = next(&full);
    let quiet = bob
        .sync_with(Some(&since), &filter, "&full_state=true")
        .await;
    let entry = joined(&quiet, &room);
    assert!(bodies(entry).is_empty(), "{entry}");
    assert!(state_types(entry).contains(&"m.room.create"), "{entry}");
    // And without full_state, nothing at all.
    let plain = bob.sync_with(Some(&since), &filter, "").await;
    assert!(joined(&plain, &room).is_null(), "{plain}");
}
on_both_backends!(full_state);

async fn lazy_members_in_incremental_syncs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let names = ["alice", "bob", "carol", "dave"];
    let mut users = Vec::new();
    for name in names {
        users.push(Api::user(&server, name).await);
    }
    let [alice, bob, carol, dave] = &users[..] else {
        unreachable!()
    };
    // A named room: its summary has no heroes, whose members would be sent too.
    let room = alice
        .create_room_with(json!({"preset": "public_chat", "name": "Lazy"}))
        .await;
    for user in [bob, carol, dave] {
        user.join(&room).await;
    }
    for i in 0..3 {
        alice.send_text(&room, &format!("warm up {i}")).await;
    }
    let lazy = json!({"room": {"timeline": {"limit": 2}, "state": {"lazy_load_members": true}}});
    let redundant = json!({"room": {"timeline": {"limit": 2},
        "state": {"lazy_load_members": true, "include_redundant_members": true}}});

    // Initial: only the members of the timeline's senders (and the user's own).
    let initial = alice.sync_with(None, &lazy, "").await;
    assert_eq!(
        state_members(joined(&initial, &room)),
        ["@alice:hearth.test"]
    );
    let t1 = next(&initial);

    // Incremental, no gap: a new speaker's member comes with their message.
    carol.send_text(&room, "hi").await;
    let second = alice.sync_with(Some(&t1), &lazy, "").await;
    let entry = joined(&second, &room);
    assert_eq!(bodies(entry), ["hi"]);
    assert_eq!(entry["timeline"]["limited"], false);
    assert_eq!(state_members(entry), ["@carol:hearth.test"]);
    let t2 = next(&second);

    // Once sent, not again.
    carol.send_text(&room, "again").await;
    let third = alice.sync_with(Some(&t2), &lazy, "").await;
    assert_eq!(bodies(joined(&third, &room)), ["again"]);
    assert!(state_members(joined(&third, &room)).is_empty(), "{third}");
    let t3 = next(&third);

    // Unless the filter asks for redundant members.
    carol.send_text(&room, "third").await;
    let asked = alice.sync_with(Some(&t3), &redundant, "").await;
    let members = state_members(joined(&asked, &room));
    assert!(members.contains(&"@carol:hearth.test"), "{members:?}");
    let t4 = next(&asked);

    // A client that retries from a token older than the response that carried a member gets
    // it again: that response may never have arrived.
    let retry = alice.sync_with(Some(&t1), &lazy, "").await;
    let members = state_members(joined(&retry, &room));
    assert!(members.contains(&"@carol:hearth.test"), "{members:?}");

    // A gap: a membership change inside it comes with the state, though its user is silent;
    // the silent bob does not.
    dave.set_state(
        &room,
        "m.room.member",
        "@dave:hearth.test",
        json!({"membership": "join", "displayname": "Dave D."}),
    )
    .await;
    for i in 0..3 {
        alice.send_text(&room, &format!("gap {i}")).await;
    }
    let gapped = alice.sync_with(Some(&t4), &lazy, "").await;
    let entry = joined(&gapped, &room);
    assert_eq!(entry["timeline"]["limited"], true, "{entry}");
    assert_eq!(bodies(entry), ["gap 1", "gap 2"]);
    let members = state_members(entry);
    assert!(members.contains(&"@dave:hearth.test"), "{members:?}");
    assert!(!members.contains(&"@bob:hearth.test"), "{members:?}");
    let dave_event = entry["state"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["state_key"] == "@dave:hearth.test")
        .unwrap();
    assert_eq!(dave_event["content"]["displayname"], "Dave D.");
}
on_both_backends!(lazy_members_in_incremental_syncs);

async fn heroes_follow_the_summary_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob", "carol"]).await;
    let alice = &users[0];

    // Unnamed: the other joined members, in the order they joined, never the user.
    let sync = alice.sync(None, 0).await;
    let summary = &joined(&sync, &room)["summary"];
    assert_eq!(
        summary["m.heroes"],
        json!(["@bob:hearth.test", "@carol:hearth.test"])
    );
    assert_eq!(summary["m.joined_member_count"], 3);
    assert_eq!(summary["m.invited_member_count"], 0);

    // At most five, the first to join.
    let mut later = Vec::new();
    for i in 0..5 {
        let user = Api::user(&server, &format!("late{i}")).await;
        user.join(&room).await;
        later.push(user);
    }
    let sync = alice.sync(None, 0).await;
    let heroes = joined(&sync, &room)["summary"]["m.heroes"].clone();
    assert_eq!(
        heroes,
        json!([
            "@bob:hearth.test",
            "@carol:hearth.test",
            "@late0:hearth.test",
            "@late1:hearth.test",
            "@late2:hearth.test"
        ])
    );

    // Lazy loading: the heroes' members come with the state even though they are silent.
    let lazy = json!({"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": true}}});
    alice.send_text(&room, "hello").await;
    let sync = alice.sync_with(None, &lazy, "").await;
    let members = state_members(joined(&sync, &room));
    for hero in heroes.as_array().unwrap() {
        let hero = hero.as_str().unwrap();
        assert!(members.contains(&hero), "{hero} missing from {members:?}");
    }
    assert!(!members.contains(&"@late4:hearth.test"), "{members:?}");

    // Named: no heroes, the counts only.
    alice
        .set_state(&room, "m.room.name", "", json!({"name": "Named"}))
        .await;
    let sync = alice.sync(None, 0).await;
    let summary = &joined(&sync, &room)["summary"];
    assert!(summary.get("m.heroes").is_none(), "{summary}");
    assert_eq!(summary["m.joined_member_count"], 8);

    // With nobody else joined or invited, the heroes are those who left.
    let (lonely, users) = users_in_room(&server, "public_chat", &["erin", "frank"]).await;
    let path = format!("/_matrix/client/v3/rooms/{lonely}/leave");
    users[1].ok(Method::POST, &path, Some(json!({}))).await;
    let sync = users[0].sync(None, 0).await;
    assert_eq!(
        joined(&sync, &lonely)["summary"]["m.heroes"],
        json!(["@frank:hearth.test"])
    );
}
on_both_backends!(heroes_follow_the_summary_rules);

/// A leave and a join in the same batch: someone else's show in the timeline; the user's own
/// rejoin puts the room under `join`, sent whole as for a new join, and not under `leave`.
async fn leave_and_join_in_one_batch(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let since = next(&bob.sync(None, 0).await);
    let leave = format!("/_matrix/client/v3/rooms/{room}/leave");

    // Alice leaves and comes back.
    alice.ok(Method::POST, &leave, Some(json!({}))).await;
    alice.join(&room).await;
    let sync = bob.sync(Some(&since), 0).await;
    let memberships: Vec<&str> = joined(&sync, &room)["timeline"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .filter_map(|e| e["content"]["membership"].as_str())
        .collect();
    assert_eq!(memberships, ["leave", "join"]);
    let since = next(&sync);

    // Bob himself leaves and rejoins between two syncs.
    bob.ok(Method::POST, &leave, Some(json!({}))).await;
    alice.send_text(&room, "while bob was out").await;
    bob.join(&room).await;
    let sync = bob.sync(Some(&since), 0).await;
    assert!(sync["rooms"]["leave"].get(&room).is_none(), "{sync}");
    let entry = joined(&sync, &room);
    assert!(
        state_types(entry).contains(&"m.room.create"),
        "sent whole: {entry}"
    );
    assert!(
        state_members(entry).contains(&"@alice:hearth.test"),
        "{entry}"
    );
}
on_both_backends!(leave_and_join_in_one_batch);
