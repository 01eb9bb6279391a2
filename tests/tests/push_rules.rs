//! Push rules (the `/pushrules` endpoints and `m.push_rules` account data) and the unread
//! notification counts of `/sync`, over real HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode, users_in_room};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const RULES: &str = "/_matrix/client/v3/pushrules/";
const GLOBAL: &str = "/_matrix/client/v3/pushrules/global";
const BOB: &str = "@bob:hearth.test";

/// Expect an error and return `(status, errcode)`.
async fn fails(
    api: &Api<'_>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let (status, body) = api.call(method, path, body).await;
    assert_ne!(status, StatusCode::OK, "{path}: {body}");
    (status, errcode(&body).to_owned())
}

fn ids(rules: &Value) -> Vec<&str> {
    rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule_id"].as_str().unwrap())
        .collect()
}

/// The `m.push_rules` content in a sync response's global account data, if there is one.
fn synced_rules(sync: &Value) -> Option<Value> {
    sync["account_data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "m.push_rules")
        .map(|e| e["content"].clone())
}

async fn defaults_and_editing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;

    // The spec's predefined rules (as ruma has them), before anything was changed.
    let all = alice.ok(Method::GET, RULES, None).await;
    let global = &all["global"];
    let overrides = ids(&global["override"]);
    assert_eq!(overrides[0], ".m.rule.master", "{global}");
    for id in [
        ".m.rule.suppress_notices",
        ".m.rule.invite_for_me",
        ".m.rule.member_event",
        ".m.rule.is_user_mention",
        ".m.rule.is_room_mention",
        ".m.rule.tombstone",
        ".m.rule.reaction",
        ".m.rule.room.server_acl",
        ".m.rule.suppress_edits",
    ] {
        assert!(overrides.contains(&id), "{id} missing from {overrides:?}");
    }
    let underrides = ids(&global["underride"]);
    for id in [
        ".m.rule.call",
        ".m.rule.encrypted_room_one_to_one",
        ".m.rule.room_one_to_one",
        ".m.rule.message",
        ".m.rule.encrypted",
    ] {
        assert!(underrides.contains(&id), "{id} missing from {underrides:?}");
    }
    let master = &global["override"][0];
    assert_eq!(master["enabled"], false);
    assert_eq!(master["default"], true);
    assert_eq!(
        alice.ok(Method::GET, &format!("{GLOBAL}/"), None).await,
        *global
    );
    let mention = alice
        .ok(
            Method::GET,
            &format!("{GLOBAL}/override/.m.rule.is_user_mention"),
            None,
        )
        .await;
    assert_eq!(mention["enabled"], true);
    assert!(
        mention["conditions"][0]["value"] == "@alice:hearth.test",
        "{mention}"
    );
    assert!(
        mention["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["set_tweak"] == "highlight"),
        "{mention}"
    );

    // The initial sync carries the whole ruleset as m.push_rules, every kind present.
    let first = alice.sync(None, 0).await;
    let synced = synced_rules(&first).expect("m.push_rules in the initial sync");
    assert_eq!(ids(&synced["global"]["override"])[0], ".m.rule.master");
    for kind in ["override", "content", "room", "sender", "underride"] {
        assert!(synced["global"][kind].is_array(), "{kind}: {synced}");
    }
    let since = first["next_batch"].as_str().unwrap().to_owned();
    // ... once: an incremental sync has nothing new.
    assert_eq!(synced_rules(&alice.sync(Some(&since), 0).await), None);

    // User-defined content rules: a new rule goes first; `before` and `after` place it.
    let actions = json!(["notify", {"set_tweak": "sound", "value": "default"}]);
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/cake"),
            Some(json!({"pattern": "cake*lie", "actions": actions})),
        )
        .await;
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/pie?before=cake"),
            Some(json!({"pattern": "pie", "actions": []})),
        )
        .await;
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/tart?after=pie"),
            Some(json!({"pattern": "tart", "actions": []})),
        )
        .await;
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/scone"),
            Some(json!({"pattern": "scone", "actions": []})),
        )
        .await;
    let content = alice.ok(Method::GET, RULES, None).await["global"]["content"].clone();
    assert_eq!(ids(&content), ["scone", "pie", "tart", "cake"]);
    // Moving an existing rule below another.
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/scone?after=cake"),
            Some(json!({"pattern": "scone", "actions": []})),
        )
        .await;
    let content = alice.ok(Method::GET, RULES, None).await["global"]["content"].clone();
    assert_eq!(ids(&content), ["pie", "tart", "cake", "scone"]);
    let cake = alice
        .ok(Method::GET, &format!("{GLOBAL}/content/cake"), None)
        .await;
    assert_eq!(
        cake,
        json!({"rule_id": "cake", "pattern": "cake*lie", "actions": actions,
               "enabled": true, "default": false})
    );

    // The change reaches /sync as new m.push_rules account data.
    let synced = synced_rules(&alice.sync(Some(&since), 0).await).expect("changed rules synced");
    assert_eq!(
        ids(&synced["global"]["content"]),
        ["pie", "tart", "cake", "scone"]
    );

    // Rules that can't be created.
    // Every kind's fields, so that only the path can be at fault.
    let rule = json!({"pattern": "x", "conditions": [], "actions": []});
    for (path, expected) in [
        (
            format!("{GLOBAL}/content/.m.rule.mine"),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        ),
        (
            format!("{GLOBAL}/override/.m.rule.master"),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        ),
        (
            format!("{GLOBAL}/content/new?before=.m.rule.contains_user_name"),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        ),
        (
            format!("{GLOBAL}/content/new?before=nonexistent"),
            (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
        ),
        (
            format!("{GLOBAL}/content/new?after=nonexistent"),
            (StatusCode::BAD_REQUEST, "M_UNKNOWN"),
        ),
        (
            format!("{GLOBAL}/content/a%5Cb"),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        ),
        (
            format!("{GLOBAL}/sender/not-a-user-id"),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        ),
        (
            format!("{GLOBAL}/nonsense/new"),
            (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        ),
    ] {
        let (status, errcode) = fails(&alice, Method::PUT, &path, Some(rule.clone())).await;
        assert_eq!((status, errcode.as_str()), expected, "{path}");
    }
    // A content rule needs its pattern.
    let (status, errcode) = fails(
        &alice,
        Method::PUT,
        &format!("{GLOBAL}/content/new"),
        Some(json!({"actions": []})),
    )
    .await;
    assert_eq!(
        (status, errcode.as_str()),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON")
    );
    // Nothing was half-written.
    let content = alice.ok(Method::GET, RULES, None).await["global"]["content"].clone();
    assert_eq!(ids(&content), ["pie", "tart", "cake", "scone"]);

    // Server-default rules can be disabled and enabled, and their actions changed...
    let enabled = format!("{GLOBAL}/underride/.m.rule.message/enabled");
    assert_eq!(
        alice.ok(Method::GET, &enabled, None).await,
        json!({"enabled": true})
    );
    alice
        .ok(Method::PUT, &enabled, Some(json!({"enabled": false})))
        .await;
    assert_eq!(
        alice.ok(Method::GET, &enabled, None).await,
        json!({"enabled": false})
    );
    let master = format!("{GLOBAL}/override/.m.rule.master/enabled");
    alice
        .ok(Method::PUT, &master, Some(json!({"enabled": true})))
        .await;
    assert_eq!(
        alice.ok(Method::GET, &master, None).await,
        json!({"enabled": true})
    );
    alice
        .ok(Method::PUT, &master, Some(json!({"enabled": false})))
        .await;
    assert_eq!(
        alice.ok(Method::GET, &master, None).await,
        json!({"enabled": false})
    );
    alice
        .ok(Method::PUT, &enabled, Some(json!({"enabled": true})))
        .await;
    assert_eq!(
        alice.ok(Method::GET, &enabled, None).await,
        json!({"enabled": true})
    );

    let message_actions = format!("{GLOBAL}/underride/.m.rule.message/actions");
    assert_eq!(
        alice.ok(Method::GET, &message_actions, None).await,
        json!({"actions": ["notify"]})
    );
    let loud = json!(["notify", {"set_tweak": "highlight"}]);
    alice
        .ok(
            Method::PUT,
            &message_actions,
            Some(json!({"actions": loud})),
        )
        .await;
    assert_eq!(
        alice.ok(Method::GET, &message_actions, None).await,
        json!({"actions": ["notify", {"set_tweak": "highlight"}]})
    );
    let message = alice
        .ok(
            Method::GET,
            &format!("{GLOBAL}/underride/.m.rule.message"),
            None,
        )
        .await;
    assert_eq!(message["default"], true);
    assert_eq!(
        message["actions"],
        json!(["notify", {"set_tweak": "highlight"}])
    );
    // ... and a user rule's too, without touching its pattern or place.
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/tart/enabled"),
            Some(json!({"enabled": false})),
        )
        .await;
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/tart/actions"),
            Some(json!({"actions": ["notify"]})),
        )
        .await;
    let tart = alice
        .ok(Method::GET, &format!("{GLOBAL}/content/tart"), None)
        .await;
    assert_eq!(
        tart,
        json!({"rule_id": "tart", "pattern": "tart", "actions": ["notify"],
               "enabled": false, "default": false})
    );
    // Replacing a rule keeps whether it is enabled.
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/content/tart"),
            Some(json!({"pattern": "tarte", "actions": []})),
        )
        .await;
    let tart = alice
        .ok(Method::GET, &format!("{GLOBAL}/content/tart"), None)
        .await;
    assert_eq!(
        (tart["pattern"].clone(), tart["enabled"].clone()),
        (json!("tarte"), json!(false))
    );
    let content = alice.ok(Method::GET, RULES, None).await["global"]["content"].clone();
    assert_eq!(ids(&content), ["pie", "tart", "cake", "scone"]);

    // Server-default rules can't be deleted; user rules can, once.
    let (status, errcode) = fails(
        &alice,
        Method::DELETE,
        &format!("{GLOBAL}/override/.m.rule.master"),
        None,
    )
    .await;
    assert_eq!(
        (status, errcode.as_str()),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    assert_eq!(
        alice
            .ok(
                Method::GET,
                &format!("{GLOBAL}/override/.m.rule.master"),
                None
            )
            .await["rule_id"],
        ".m.rule.master"
    );
    alice
        .ok(Method::DELETE, &format!("{GLOBAL}/content/cake"), None)
        .await;
    let content = alice.ok(Method::GET, RULES, None).await["global"]["content"].clone();
    assert_eq!(ids(&content), ["pie", "tart", "scone"]);

    // Unknown rules: 404 M_NOT_FOUND everywhere.
    for (method, path, body) in [
        (Method::GET, format!("{GLOBAL}/content/cake"), None),
        (Method::DELETE, format!("{GLOBAL}/content/cake"), None),
        (Method::GET, format!("{GLOBAL}/content/cake/enabled"), None),
        (
            Method::PUT,
            format!("{GLOBAL}/content/cake/enabled"),
            Some(json!({"enabled": true})),
        ),
        (Method::GET, format!("{GLOBAL}/content/cake/actions"), None),
        (
            Method::PUT,
            format!("{GLOBAL}/content/cake/actions"),
            Some(json!({"actions": []})),
        ),
        // A rule of another kind is not found under this one.
        (
            Method::GET,
            format!("{GLOBAL}/underride/.m.rule.master"),
            None,
        ),
        (
            Method::DELETE,
            format!("{GLOBAL}/override/.m.rule.no_such_default"),
            None,
        ),
    ] {
        let (status, errcode) = fails(&alice, method.clone(), &path, body).await;
        assert_eq!(
            (status, errcode.as_str()),
            (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
            "{method} {path}"
        );
    }
    // A kind that does not exist is a malformed path, not a missing rule.
    {
        let path = format!("{GLOBAL}/nonsense/.m.rule.master");
        let (status, errcode) = fails(&alice, Method::GET, &path, None).await;
        assert_eq!(
            (status, errcode.as_str()),
            (StatusCode::BAD_REQUEST, "M_UNRECOGNIZED")
        );
    }

    // Room and sender rules, keyed by their ids.
    let room_rule = format!("{GLOBAL}/room/!quiet:hearth.test");
    alice
        .ok(Method::PUT, &room_rule, Some(json!({"actions": []})))
        .await;
    alice
        .ok(
            Method::PUT,
            &format!("{GLOBAL}/sender/{BOB}"),
            Some(json!({"actions": ["notify"]})),
        )
        .await;
    let global = alice.ok(Method::GET, RULES, None).await["global"].clone();
    assert_eq!(ids(&global["room"]), ["!quiet:hearth.test"]);
    assert_eq!(ids(&global["sender"]), [BOB]);

    // Concurrent changes don't lose each other.
    let puts = (0..8).map(|i| {
        let alice = &alice;
        async move {
            alice
                .ok(
                    Method::PUT,
                    &format!("{GLOBAL}/override/concurrent{i}"),
                    Some(json!({"conditions": [], "actions": []})),
                )
                .await
        }
    });
    hearth_tests::join_all(puts).await;
    let overrides = alice.ok(Method::GET, RULES, None).await["global"]["override"].clone();
    for i in 0..8 {
        assert!(
            ids(&overrides).contains(&format!("concurrent{i}").as_str()),
            "{overrides}"
        );
    }
    // User override rules sit below .m.rule.master and above the other defaults.
    assert_eq!(ids(&overrides)[0], ".m.rule.master");
    assert!(ids(&overrides)[1].starts_with("concurrent"));

    // Everyone has their own rules.
    let bobs = bob.ok(Method::GET, RULES, None).await["global"].clone();
    assert_eq!(bobs["content"], json!([]));
    assert_eq!(
        bob.ok(
            Method::GET,
            &format!("{GLOBAL}/underride/.m.rule.message/actions"),
            None
        )
        .await,
        json!({"actions": ["notify"]})
    );
    let bob_mention = bob
        .ok(
            Method::GET,
            &format!("{GLOBAL}/override/.m.rule.is_user_mention"),
            None,
        )
        .await;
    assert_eq!(bob_mention["conditions"][0]["value"], BOB);
}
on_both_backends!(defaults_and_editing);

/// The room's `unread_notifications` in a sync response.
fn unread(sync: &Value, room: &str) -> (u64, u64) {
    let counts = &sync["rooms"]["join"][room]["unread_notifications"];
    (
        counts["notification_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no counts for {room}: {sync}")),
        counts["highlight_count"].as_u64().unwrap(),
    )
}

async fn unread_counts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let first = bob.sync(None, 0).await;
    assert_eq!(unread(&first, &room), (0, 0));
    let mut since = first["next_batch"].as_str().unwrap().to_owned();

    // Two plain messages and one that mentions bob: in a two-member room every message notifies
    // (.m.rule.room_one_to_one), the mention also highlights (.m.rule.is_user_mention).
    alice.send_text(&room, "hello").await;
    alice
        .send(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "bob: look",
                   "m.mentions": {"user_ids": [BOB]}}),
        )
        .await;
    alice.send_text(&room, "anyone?").await;
    let sync = bob.sync(Some(&since), 0).await;
    assert_eq!(unread(&sync, &room), (3, 1), "{sync}");
    since = sync["next_batch"].as_str().unwrap().to_owned();
    // Alice's own messages don't count for her.
    assert_eq!(unread(&alice.sync(None, 0).await, &room), (0, 0));

    // Bob writing means he read what came before.
    bob.send_text(&room, "here").await;
    let sync = bob.sync(Some(&since), 0).await;
    assert_eq!(unread(&sync, &room), (0, 0), "{sync}");
    since = sync["next_batch"].as_str().unwrap().to_owned();

    // Notices don't notify (.m.rule.suppress_notices); an @room mention from someone allowed to
    // make one highlights (.m.rule.is_room_mention, alice has power 100).
    alice
        .send(
            &room,
            "m.room.message",
            json!({"msgtype": "m.notice", "body": "bot says"}),
        )
        .await;
    alice
        .send(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "@room hi", "m.mentions": {"room": true}}),
        )
        .await;
    let sync = bob.sync(Some(&since), 0).await;
    assert_eq!(unread(&sync, &room), (1, 1), "{sync}");
    since = sync["next_batch"].as_str().unwrap().to_owned();

    // A third member: plain messages still notify (.m.rule.message) but no longer through the
    // one-to-one rule; and bob's own rules decide: with .m.rule.message off they don't count.
    let carol = Api::user(&server, "carol").await;
    carol.join(&room).await;
    bob.ok(
        Method::PUT,
        &format!("{GLOBAL}/underride/.m.rule.message/enabled"),
        Some(json!({"enabled": false})),
    )
    .await;
    carol.send_text(&room, "hi all").await;
    let sync = bob.sync(Some(&since), 0).await;
    assert_eq!(unread(&sync, &room), (1, 1), "{sync}");
    since = sync["next_batch"].as_str().unwrap().to_owned();

    // With the master rule on, nothing notifies.
    bob.ok(
        Method::PUT,
        &format!("{GLOBAL}/override/.m.rule.master/enabled"),
        Some(json!({"enabled": true})),
    )
    .await;
    carol.send_text(&room, "still there?").await;
    let sync = bob.sync(Some(&since), 0).await;
    assert_eq!(unread(&sync, &room), (0, 0), "{sync}");
}
on_both_backends!(unread_counts);

async fn read_receipts_reset_unread_counts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let first = alice.send_text(&room, "one").await;
    alice.send_text(&room, "two").await;
    let sync = bob.sync(None, 0).await;
    assert_eq!(unread(&sync, &room), (2, 0), "{sync}");
    let since = sync["next_batch"].as_str().unwrap().to_owned();

    // Read up to the first message: one left.
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{first}"),
        Some(json!({})),
    )
    .await;
    let sync = bob.sync(Some(&since), 0).await;
    assert_eq!(unread(&sync, &room), (1, 0), "{sync}");
    let since = sync["next_batch"].as_str().unwrap().to_owned();

    // A private receipt on the newest one: none left.
    let newest = alice.send_text(&room, "three").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/receipt/m.read.private/{newest}"),
        Some(json!({})),
    )
    .await;
    let sync = bob.sync(Some(&since), 0).await;
    assert_eq!(unread(&sync, &room), (0, 0), "{sync}");
}
on_both_backends!(read_receipts_reset_unread_counts);

/// Per-thread counts (`unread_thread_notifications`): thread replies, and events relating to
/// them, count in their thread; threaded receipts and one's own replies clear only their
/// thread; an unthreaded receipt clears everything before it.
async fn thread_notification_counts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let related = |body: &str, rel_type: &str, parent: &str| {
        json!({"msgtype": "m.text", "body": body,
               "m.relates_to": {"rel_type": rel_type, "event_id": parent}})
    };
    alice.send_text(&room, "main one").await;
    let root = alice.send_text(&room, "a thread starts").await;
    let first = alice
        .send(
            &room,
            "m.room.message",
            related("first reply", "m.thread", &root),
        )
        .await;
    let second = alice
        .send(
            &room,
            "m.room.message",
            related("second reply", "m.thread", &root),
        )
        .await;
    // In the thread through the reply it references.
    alice
        .send(
            &room,
            "m.room.message",
            related("about the first", "m.reference", &first),
        )
        .await;

    let filter = bob
        .ok(
            Method::POST,
            "/_matrix/client/v3/user/@bob:hearth.test/filter",
            Some(json!({"room": {"timeline": {"unread_thread_notifications": true}}})),
        )
        .await["filter_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let threaded = format!("/_matrix/client/v3/sync?timeout=0&filter={filter}");
    let thread_counts = |sync: &Value| -> Option<(u64, u64)> {
        let counts = &sync["rooms"]["join"][room.as_str()]["unread_thread_notifications"];
        let thread = counts.get(root.as_str())?;
        Some((
            thread["notification_count"].as_u64().unwrap(),
            thread["highlight_count"].as_u64().unwrap(),
        ))
    };

    let sync = bob.ok(Method::GET, &threaded, None).await;
    assert_eq!(
        unread(&sync, &room),
        (2, 0),
        "main: the message and the root: {sync}"
    );
    assert_eq!(thread_counts(&sync), Some((3, 0)), "{sync}");
    // Without the filter flag: one count for the room.
    assert_eq!(unread(&bob.sync(None, 0).await, &room), (5, 0));

    // A threaded receipt on the second reply leaves what came after it in the thread.
    let receipt = |event: &str, thread: &str| {
        (
            format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{event}"),
            json!({"thread_id": thread}),
        )
    };
    let (path, body) = receipt(&second, &root);
    bob.ok(Method::POST, &path, Some(body)).await;
    let sync = bob.ok(Method::GET, &threaded, None).await;
    assert_eq!(
        (unread(&sync, &room), thread_counts(&sync)),
        ((2, 0), Some((1, 0))),
        "{sync}"
    );
    // A main-timeline receipt on the root clears the main timeline only.
    let (path, body) = receipt(&root, "main");
    bob.ok(Method::POST, &path, Some(body)).await;
    let sync = bob.ok(Method::GET, &threaded, None).await;
    assert_eq!(
        (unread(&sync, &room), thread_counts(&sync)),
        ((0, 0), Some((1, 0))),
        "{sync}"
    );

    // Bob replying in the thread has read it; the main timeline is not affected by that.
    alice
        .send(
            &room,
            "m.room.message",
            related("third reply", "m.thread", &root),
        )
        .await;
    alice.send_text(&room, "main two").await;
    bob.send(
        &room,
        "m.room.message",
        related("bob replies", "m.thread", &root),
    )
    .await;
    let sync = bob.ok(Method::GET, &threaded, None).await;
    assert_eq!(
        (unread(&sync, &room), thread_counts(&sync)),
        ((1, 0), None),
        "{sync}"
    );

    // A threaded receipt must name the event's thread; a main one, a main-timeline event.
    let (path, body) = receipt(&second, "main");
    let (status, _) = fails(bob, Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (path, body) = receipt(&root, &first);
    let (status, _) = fails(bob, Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A "thread" off an event that does not exist counts in the main timeline, where a
    // main-timeline receipt clears it.
    let phantom = alice
        .send(
            &room,
            "m.room.message",
            related("nowhere", "m.thread", "$not-an-event"),
        )
        .await;
    let sync = bob.ok(Method::GET, &threaded, None).await;
    assert_eq!(unread(&sync, &room), (2, 0), "{sync}");
    let (path, body) = receipt(&phantom, "main");
    bob.ok(Method::POST, &path, Some(body)).await;
    assert_eq!(
        unread(&bob.ok(Method::GET, &threaded, None).await, &room),
        (0, 0)
    );

    // An unthreaded receipt on the newest event reads everything.
    let newest = alice
        .send(
            &room,
            "m.room.message",
            related("fourth reply", "m.thread", &root),
        )
        .await;
    assert_eq!(
        thread_counts(&bob.ok(Method::GET, &threaded, None).await),
        Some((1, 0))
    );
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{newest}"),
        Some(json!({})),
    )
    .await;
    let sync = bob.ok(Method::GET, &threaded, None).await;
    assert_eq!(
        (unread(&sync, &room), thread_counts(&sync)),
        ((0, 0), None),
        "{sync}"
    );
}
on_both_backends!(thread_notification_counts);

/// `GET /notifications`: what the push rules say notified the user, newest first, with the
/// actions, the read flag from receipts, `only=highlight` and pages.
async fn notifications_list(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let plain = alice.send_text(&room, "hello").await;
    let mention = alice
        .send(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "bob, look",
                   "m.mentions": {"user_ids": ["@bob:hearth.test"]}}),
        )
        .await;
    bob.send_text(&room, "mine").await;

    let ids = |page: &Value| -> Vec<String> {
        page["notifications"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(|n| n["event"]["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = bob
        .ok(Method::GET, "/_matrix/client/v3/notifications", None)
        .await;
    assert_eq!(ids(&all), [mention.as_str(), plain.as_str()], "{all}");
    let first = &all["notifications"][0];
    assert_eq!(first["room_id"], room.as_str());
    assert!(first["ts"].is_u64());
    assert!(
        first["actions"]
            .as_array()
            .unwrap()
            .contains(&json!({"set_tweak": "highlight"})),
        "{first}"
    );
    // Bob wrote after both: he has read them.
    assert_eq!(first["read"], true);
    let highlights = bob
        .ok(
            Method::GET,
            "/_matrix/client/v3/notifications?only=highlight",
            None,
        )
        .await;
    assert_eq!(ids(&highlights), [mention.as_str()]);

    // A newer one, unread; pages of one.
    let newest = alice.send_text(&room, "still there?").await;
    let page1 = bob
        .ok(
            Method::GET,
            "/_matrix/client/v3/notifications?limit=1",
            None,
        )
        .await;
    assert_eq!(ids(&page1), [newest.as_str()]);
    assert_eq!(page1["notifications"][0]["read"], false);
    let token = page1["next_token"].as_str().unwrap();
    let page2 = bob
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/notifications?limit=1&from={token}"),
            None,
        )
        .await;
    assert_eq!(ids(&page2), [mention.as_str()]);
    // Someone who joins later was not notified of what came before.
    let carol = Api::user(&server, "carol").await;
    carol.join(&room).await;
    let theirs = carol
        .ok(Method::GET, "/_matrix/client/v3/notifications", None)
        .await;
    assert_eq!(ids(&theirs), Vec::<String>::new(), "{theirs}");
    // Alice is not notified of her own messages.
    let hers = alice
        .ok(Method::GET, "/_matrix/client/v3/notifications", None)
        .await;
    assert!(!ids(&hers).contains(&plain), "{hers}");
    let (status, _) = fails(
        bob,
        Method::GET,
        "/_matrix/client/v3/notifications?from=nonsense",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
on_both_backends!(notifications_list);

/// Paging through notifications reaches an old one behind a long quiet stretch of its room.
async fn notifications_behind_quiet_stretches(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let mut rooms = Vec::new();
    for _ in 0..2 {
        let room = alice.create_room("public_chat").await;
        bob.join(&room).await;
        rooms.push(room);
    }
    let old = alice.send_text(&rooms[0], "old news").await;
    // More quiet events (topic changes notify nobody) than a page looks at per room.
    for i in 0..110 {
        alice
            .set_state(
                &rooms[0],
                "m.room.topic",
                "",
                json!({"topic": format!("topic {i}")}),
            )
            .await;
    }
    for _ in 0..3 {
        alice.send_text(&rooms[1], "busy").await;
    }
    let mut seen = Vec::new();
    let mut from: Option<String> = None;
    for _ in 0..10 {
        let path = match &from {
            Some(token) => format!("/_matrix/client/v3/notifications?limit=20&from={token}"),
            None => "/_matrix/client/v3/notifications?limit=20".to_owned(),
        };
        let page = bob.ok(Method::GET, &path, None).await;
        for n in page["notifications"].as_array().unwrap() {
            seen.push(n["event"]["event_id"].as_str().unwrap().to_owned());
        }
        match page["next_token"].as_str() {
            Some(token) => from = Some(token.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(seen.last(), Some(&old));
}
on_both_backends!(notifications_behind_quiet_stretches);
