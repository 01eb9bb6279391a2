//! Event relationships over real HTTP, on SQLite and PostgreSQL: the relations API, threads,
//! bundled aggregations in every rendering, `/context`, and room upgrades.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode, urlencode, users_in_room};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The event ids of a chunk, comparable with `[&id, ...]`.
#[derive(Debug)]
struct Ids(Vec<String>);

impl<const N: usize> PartialEq<[&String; N]> for Ids {
    fn eq(&self, other: &[&String; N]) -> bool {
        self.0.len() == N && self.0.iter().zip(other).all(|(a, b)| a == *b)
    }
}

const NONE: [&String; 0] = [];

fn ids(chunk: &Value) -> Ids {
    Ids(chunk
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {chunk}"))
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_owned())
        .collect())
}

fn thread_reply(root: &str, body: &str) -> Value {
    json!({"msgtype": "m.text", "body": body,
           "m.relates_to": {"rel_type": "m.thread", "event_id": root, "is_falling_back": true,
                            "m.in_reply_to": {"event_id": root}}})
}

fn edit(original: &str, body: &str) -> Value {
    json!({"msgtype": "m.text", "body": format!("* {body}"),
           "m.new_content": {"msgtype": "m.text", "body": body},
           "m.relates_to": {"rel_type": "m.replace", "event_id": original}})
}

/// Listing children: all of them, by rel_type, by event type, paginated both ways, recursing,
/// and what is no relation (plain replies, other rooms, redacted children).
async fn relations_listing_and_pagination(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let root = alice.send_text(&room, "root").await;
    let t1 = bob
        .send(&room, "m.room.message", thread_reply(&root, "t1"))
        .await;
    let t2 = alice
        .send(&room, "m.room.message", thread_reply(&root, "t2"))
        .await;
    let t3 = bob
        .send(&room, "m.room.message", thread_reply(&root, "t3"))
        .await;
    // A rich reply has no rel_type: no relation.
    alice
        .send(
            &room,
            "m.room.message",
            json!({"msgtype": "m.text", "body": "re",
                   "m.relates_to": {"m.in_reply_to": {"event_id": root}}}),
        )
        .await;
    let reference = alice
        .send(
            &room,
            "org.example.note",
            json!({"m.relates_to": {"rel_type": "m.reference", "event_id": root}}),
        )
        .await;
    let edit_t1 = bob.send(&room, "m.room.message", edit(&t1, "t1!")).await;
    // The same parent id claimed from another room is no child of this room's event.
    let elsewhere = alice.create_room("public_chat").await;
    alice
        .send(
            &elsewhere,
            "org.example.note",
            json!({"m.relates_to": {"rel_type": "m.reference", "event_id": root}}),
        )
        .await;

    let base = format!("/_matrix/client/v1/rooms/{room}/relations/{root}");
    let all = alice.ok(Method::GET, &base, None).await;
    assert_eq!(
        ids(&all["chunk"]),
        [&reference, &t3, &t2, &t1],
        "newest first, direct children only"
    );
    assert!(all.get("next_batch").is_none() && all.get("recursion_depth").is_none());
    assert_eq!(all["chunk"][1]["content"]["body"], "t3");

    let threads = alice
        .ok(Method::GET, &format!("{base}/m.thread"), None)
        .await;
    assert_eq!(ids(&threads["chunk"]), [&t3, &t2, &t1]);
    let typed = alice
        .ok(
            Method::GET,
            &format!("{base}/m.thread/m.room.message"),
            None,
        )
        .await;
    assert_eq!(ids(&typed["chunk"]), [&t3, &t2, &t1]);
    let none = alice
        .ok(Method::GET, &format!("{base}/m.thread/m.reaction"), None)
        .await;
    assert_eq!(ids(&none["chunk"]), NONE);
    let refs = alice
        .ok(Method::GET, &format!("{base}/m.reference"), None)
        .await;
    assert_eq!(ids(&refs["chunk"]), [&reference]);

    // Backwards in pages of two, then forwards.
    let page1 = alice
        .ok(Method::GET, &format!("{base}/m.thread?limit=2"), None)
        .await;
    assert_eq!(ids(&page1["chunk"]), [&t3, &t2]);
    let next = page1["next_batch"].as_str().unwrap().to_owned();
    let page2 = alice
        .ok(
            Method::GET,
            &format!("{base}/m.thread?limit=2&from={next}"),
            None,
        )
        .await;
    assert_eq!(ids(&page2["chunk"]), [&t1]);
    assert!(page2.get("next_batch").is_none(), "{page2}");
    assert_eq!(page2["prev_batch"].as_str(), Some(next.as_str()));
    let upto = alice
        .ok(Method::GET, &format!("{base}/m.thread?to={next}"), None)
        .await;
    assert_eq!(ids(&upto["chunk"]), [&t3, &t2], "`to` stops the page");
    let forward = alice
        .ok(Method::GET, &format!("{base}/m.thread?dir=f&limit=2"), None)
        .await;
    assert_eq!(ids(&forward["chunk"]), [&t1, &t2]);
    let next = forward["next_batch"].as_str().unwrap();
    let forward2 = alice
        .ok(
            Method::GET,
            &format!("{base}/m.thread?dir=f&limit=2&from={next}"),
            None,
        )
        .await;
    assert_eq!(ids(&forward2["chunk"]), [&t3]);

    // Recursing reaches the edit of a thread reply; a rel_type filter applies at every level.
    let deep = alice
        .ok(Method::GET, &format!("{base}?recurse=true"), None)
        .await;
    assert_eq!(ids(&deep["chunk"]), [&edit_t1, &reference, &t3, &t2, &t1]);
    assert_eq!(deep["recursion_depth"], 3);
    let deep_threads = alice
        .ok(Method::GET, &format!("{base}/m.thread?recurse=true"), None)
        .await;
    assert_eq!(ids(&deep_threads["chunk"]), [&t3, &t2, &t1]);

    // A redacted child is no child any more.
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/redact/{t2}/r1"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let threads = alice
        .ok(Method::GET, &format!("{base}/m.thread"), None)
        .await;
    assert_eq!(ids(&threads["chunk"]), [&t3, &t1]);

    // Unknown parents and outsiders get 404; bad tokens 400.
    let (status, body) = alice
        .get(&format!("/_matrix/client/v1/rooms/{room}/relations/$nope"))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let carol = Api::user(&server, "carol").await;
    let (status, body) = carol.get(&base).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let (status, body) = alice.get(&format!("{base}?from=junk")).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
}
on_both_backends!(relations_listing_and_pagination);

/// The threads list, and the aggregations bundled with events wherever they are served.
async fn threads_and_bundled_aggregations(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let carol = Api::user(&server, "carol").await;
    carol.join(&room).await;

    let a = alice.send_text(&room, "thread A").await;
    let a1 = bob
        .send(&room, "m.room.message", thread_reply(&a, "a1"))
        .await;
    let b = carol.send_text(&room, "thread B").await;
    let b1 = carol
        .send(&room, "m.room.message", thread_reply(&b, "b1"))
        .await;
    let threads = format!("/_matrix/client/v1/rooms/{room}/threads");
    assert_eq!(
        ids(&alice.ok(Method::GET, &threads, None).await["chunk"]),
        [&b, &a]
    );
    let a2 = alice
        .send(&room, "m.room.message", thread_reply(&a, "a2"))
        .await;
    let list = alice.ok(Method::GET, &threads, None).await;
    assert_eq!(ids(&list["chunk"]), [&a, &b], "newest activity first");
    let summary = &list["chunk"][0]["unsigned"]["m.relations"]["m.thread"];
    assert_eq!(summary["count"], 2);
    assert_eq!(summary["latest_event"]["event_id"], a2.as_str());
    assert_eq!(summary["latest_event"]["content"]["body"], "a2");
    assert_eq!(summary["current_user_participated"], true);

    // Participation: the root's sender or a replier.
    let mine = bob
        .ok(
            Method::GET,
            &format!("{threads}?include=participated"),
            None,
        )
        .await;
    assert_eq!(ids(&mine["chunk"]), [&a]);
    let mine = carol
        .ok(
            Method::GET,
            &format!("{threads}?include=participated"),
            None,
        )
        .await;
    assert_eq!(ids(&mine["chunk"]), [&b]);

    // Pages of one.
    let page1 = alice
        .ok(Method::GET, &format!("{threads}?limit=1"), None)
        .await;
    assert_eq!(ids(&page1["chunk"]), [&a]);
    let next = page1["next_batch"].as_str().unwrap();
    let page2 = alice
        .ok(Method::GET, &format!("{threads}?limit=1&from={next}"), None)
        .await;
    assert_eq!(ids(&page2["chunk"]), [&b]);
    let next = page2["next_batch"].as_str().unwrap();
    let page3 = alice
        .ok(Method::GET, &format!("{threads}?limit=1&from={next}"), None)
        .await;
    assert_eq!(ids(&page3["chunk"]), NONE);
    assert!(page3.get("next_batch").is_none());

    // A thread can't start at an event that relates to something itself.
    let (status, body) = alice
        .try_send(&room, "m.room.message", thread_reply(&a1, "nested"))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_UNKNOWN")
    );

    // Edits: the most recent valid one is bundled whole; others' edits are not valid.
    let _first = alice.send(&room, "m.room.message", edit(&a, "A v2")).await;
    let second = alice.send(&room, "m.room.message", edit(&a, "A v3")).await;
    bob.send(&room, "m.room.message", edit(&a, "hijacked"))
        .await;
    // The newest thread reply edited: latest_event carries its own aggregation.
    let a2_edit = alice.send(&room, "m.room.message", edit(&a2, "a2!")).await;
    let note = bob
        .send(
            &room,
            "org.example.note",
            json!({"m.relates_to": {"rel_type": "m.reference", "event_id": a}}),
        )
        .await;

    let check = |event: &Value| {
        let relations = &event["unsigned"]["m.relations"];
        assert_eq!(
            relations["m.replace"]["event_id"],
            second.as_str(),
            "{event}"
        );
        assert_eq!(
            relations["m.replace"]["content"]["m.new_content"]["body"],
            "A v3"
        );
        assert_eq!(event["content"]["body"], "thread A", "content left intact");
        assert_eq!(relations["m.thread"]["count"], 2);
        assert_eq!(relations["m.thread"]["current_user_participated"], true);
        let latest = &relations["m.thread"]["latest_event"];
        assert_eq!(latest["event_id"], a2.as_str());
        assert_eq!(
            latest["unsigned"]["m.relations"]["m.replace"]["event_id"],
            a2_edit.as_str()
        );
        assert_eq!(
            relations["m.reference"]["chunk"],
            json!([{"event_id": note}])
        );
    };
    // /event
    let event = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/event/{a}"),
            None,
        )
        .await;
    check(&event);
    // /messages
    let messages = bob
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100"),
            None,
        )
        .await;
    let from_messages = messages["chunk"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == a.as_str())
        .unwrap();
    check(from_messages);
    // Carol's view: she took no part in thread A.
    let event = carol
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/event/{a}"),
            None,
        )
        .await;
    assert_eq!(
        event["unsigned"]["m.relations"]["m.thread"]["current_user_participated"],
        false
    );
    // /sync
    let filter = json!({"room": {"timeline": {"limit": 100}}});
    let sync = alice.sync_with(None, &filter, "").await;
    let timeline = &sync["rooms"]["join"][&room]["timeline"]["events"];
    let from_sync = timeline
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == a.as_str())
        .unwrap_or_else(|| panic!("{a} not in {timeline}"));
    check(from_sync);
    let b_sync = timeline
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event_id"] == b.as_str())
        .unwrap();
    assert_eq!(
        b_sync["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"],
        b1.as_str()
    );
    // A later child arrives as an event of its own.
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    let b2 = bob
        .send(&room, "m.room.message", thread_reply(&b, "b2"))
        .await;
    let later = alice.sync(Some(&since), 0).await;
    assert_eq!(
        ids(&later["rooms"]["join"][&room]["timeline"]["events"]),
        [&b2]
    );

    // Redacting the original: no edit is bundled any more (the thread stays).
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/redact/{a}/r1"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/event/{a}"),
            None,
        )
        .await;
    let relations = &event["unsigned"]["m.relations"];
    assert!(relations.get("m.replace").is_none(), "{event}");
    assert_eq!(relations["m.thread"]["count"], 2);
    assert!(event["unsigned"]["redacted_because"].is_object());
}
on_both_backends!(threads_and_bundled_aggregations);

/// `/context`: the events around one, tokens that continue with `/messages`, the state at the
/// last event (lazily loaded on request), and bundled aggregations.
async fn context_around_an_event(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (room, users) = users_in_room(&server, "public_chat", &["alice", "bob"]).await;
    let (alice, bob) = (&users[0], &users[1]);
    let mut messages = Vec::new();
    for i in 0..10 {
        messages.push(alice.send_text(&room, &format!("m{i}")).await);
    }
    let reply = bob
        .send(&room, "m.room.message", thread_reply(&messages[5], "r"))
        .await;
    let base = format!("/_matrix/client/v3/rooms/{room}/context");

    let context = alice
        .ok(
            Method::GET,
            &format!("{base}/{}?limit=4", messages[5]),
            None,
        )
        .await;
    assert_eq!(context["event"]["event_id"], messages[5].as_str());
    assert_eq!(ids(&context["events_before"]), [&messages[4], &messages[3]]);
    assert_eq!(ids(&context["events_after"]), [&messages[6], &messages[7]]);
    assert_eq!(
        context["event"]["unsigned"]["m.relations"]["m.thread"]["latest_event"]["event_id"],
        reply.as_str()
    );
    let state = context["state"].as_array().unwrap();
    let member_keys: Vec<_> = state
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .map(|e| e["state_key"].as_str().unwrap())
        .collect();
    assert!(member_keys.contains(&"@bob:hearth.test"), "{member_keys:?}");
    assert!(state.iter().any(|e| e["type"] == "m.room.create"));

    // The tokens continue with /messages.
    let start = context["start"].as_str().unwrap();
    let end = context["end"].as_str().unwrap();
    let older = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=2&from={start}"),
            None,
        )
        .await;
    assert_eq!(ids(&older["chunk"]), [&messages[2], &messages[1]]);
    let newer = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=f&limit=2&from={end}"),
            None,
        )
        .await;
    assert_eq!(ids(&newer["chunk"]), [&messages[8], &messages[9]]);

    // Lazy loading: only the members of the senders shown.
    let filter = urlencode(&json!({"lazy_load_members": true}).to_string());
    let lazy = alice
        .ok(
            Method::GET,
            &format!("{base}/{}?limit=2&filter={filter}", messages[2]),
            None,
        )
        .await;
    let members: Vec<_> = lazy["state"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.member")
        .map(|e| e["state_key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(members, ["@alice:hearth.test"]);
    // A type filter applies to the context events but not to the event itself.
    let filter = urlencode(&json!({"not_types": ["m.room.message"]}).to_string());
    let filtered = alice
        .ok(
            Method::GET,
            &format!("{base}/{}?limit=4&filter={filter}", messages[5]),
            None,
        )
        .await;
    assert_eq!(filtered["event"]["event_id"], messages[5].as_str());
    assert!(
        filtered
            .get("events_before")
            .is_none_or(|e| ids(e).0.is_empty())
    );

    // Unknown events 404; outsiders are refused.
    let (status, body) = alice.get(&format!("{base}/$nope")).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let carol = Api::user(&server, "carol").await;
    let (status, body) = carol.get(&format!("{base}/{}", messages[5])).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
    // History visibility: a room whose history is hidden from later joiners.
    let hidden = alice
        .create_room_with(json!({"preset": "public_chat",
            "initial_state": [{"type": "m.room.history_visibility",
                               "content": {"history_visibility": "joined"}}]}))
        .await;
    let secret = alice.send_text(&hidden, "before carol").await;
    carol.join(&hidden).await;
    let (status, body) = carol
        .get(&format!(
            "/_matrix/client/v3/rooms/{hidden}/context/{secret}"
        ))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let (status, body) = carol
        .get(&format!(
            "/_matrix/client/v1/rooms/{hidden}/relations/{secret}"
        ))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
}
on_both_backends!(context_around_an_event);

/// Upgrading a room: refused without the power or for unknown versions; otherwise a new room
/// with the old one's state, the old room tombstoned and locked, aliases and directory moved.
async fn room_upgrade(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    for version in ["10", "12"] {
        let alias = format!("upg{version}");
        let room = alice
            .create_room_with(json!({
                "preset": "public_chat", "visibility": "public", "room_version": version,
                "name": "Old name", "topic": "Old topic", "room_alias_name": alias,
                "initial_state": [{"type": "m.room.encryption",
                                   "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
            }))
            .await;
        bob.join(&room).await;
        let mut levels = alice.get_state(&room, "m.room.power_levels", "").await;
        levels["users"]["@carol:hearth.test"] = json!(50);
        alice
            .set_state(&room, "m.room.power_levels", "", levels)
            .await;
        let (status, body) = alice
            .post(
                &format!("/_matrix/client/v3/rooms/{room}/ban"),
                json!({"user_id": "@mallory:hearth.test", "reason": "spam"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let upgrade = format!("/_matrix/client/v3/rooms/{room}/upgrade");

        let (status, body) = bob.post(&upgrade, json!({"new_version": "12"})).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            "{body}"
        );
        let (status, body) = alice.post(&upgrade, json!({"new_version": "999"})).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::BAD_REQUEST, "M_UNSUPPORTED_ROOM_VERSION")
        );
        // An unknown room: the caller is not in it, and may not upgrade it.
        let (status, body) = alice
            .post(
                "/_matrix/client/v3/rooms/!nowhere:hearth.test/upgrade",
                json!({"new_version": "11"}),
            )
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
            "{body}"
        );
        let target = if version == "10" { "11" } else { "12" };
        let (status, body) = alice.post(&upgrade, json!({"new_version": target})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let new_room = body["replacement_room"].as_str().unwrap().to_owned();
        assert_ne!(new_room, room);

        // The old room: tombstone, locked down, alias gone.
        let tombstone = alice.get_state(&room, "m.room.tombstone", "").await;
        assert_eq!(tombstone["replacement_room"], new_room.as_str());
        let old_levels = alice.get_state(&room, "m.room.power_levels", "").await;
        assert!(
            old_levels["events_default"].as_i64().unwrap() >= 50,
            "{old_levels}"
        );
        assert!(old_levels["invite"].as_i64().unwrap() >= 50, "{old_levels}");
        let (status, body) = bob
            .try_send(
                &room,
                "m.room.message",
                json!({"msgtype": "m.text", "body": "hi"}),
            )
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN")
        );
        let old_alias = alice.get_state(&room, "m.room.canonical_alias", "").await;
        assert!(old_alias.get("alias").is_none(), "{old_alias}");

        // The new room: predecessor, copied state, levels, bans.
        let create = alice.get_state(&new_room, "m.room.create", "").await;
        assert_eq!(create["room_version"], target);
        assert_eq!(create["predecessor"]["room_id"], room.as_str());
        if target == "12" {
            assert!(
                create["predecessor"].get("event_id").is_none(),
                "v12 predecessors name no event: {create}"
            );
        } else {
            // The predecessor event is the old room's last: its tombstone.
            let state = alice
                .ok(
                    Method::GET,
                    &format!("/_matrix/client/v3/rooms/{room}/state"),
                    None,
                )
                .await;
            let tombstone = state
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["type"] == "m.room.tombstone")
                .unwrap();
            assert_eq!(create["predecessor"]["event_id"], tombstone["event_id"]);
        }
        assert_eq!(
            alice.get_state(&new_room, "m.room.name", "").await["name"],
            "Old name"
        );
        assert_eq!(
            alice.get_state(&new_room, "m.room.topic", "").await["topic"],
            "Old topic"
        );
        assert_eq!(
            alice.get_state(&new_room, "m.room.join_rules", "").await["join_rule"],
            "public"
        );
        assert_eq!(
            alice.get_state(&new_room, "m.room.encryption", "").await["algorithm"],
            "m.megolm.v1.aes-sha2"
        );
        let alias_id = format!("#{alias}:hearth.test");
        assert_eq!(
            alice
                .get_state(&new_room, "m.room.canonical_alias", "")
                .await["alias"],
            alias_id.as_str()
        );
        let new_levels = alice.get_state(&new_room, "m.room.power_levels", "").await;
        assert_eq!(new_levels["users"]["@carol:hearth.test"], 50);
        assert_eq!(
            new_levels["users"].get("@alice:hearth.test").is_some(),
            target != "12",
            "a v12 creator is not listed: {new_levels}"
        );
        assert_eq!(new_levels["events_default"], 0, "the new room is open");
        let mallory = alice
            .ok(
                Method::GET,
                &format!(
                    "/_matrix/client/v3/rooms/{new_room}/state/m.room.member/@mallory:hearth.test"
                ),
                None,
            )
            .await;
        assert_eq!(mallory["membership"], "ban");

        // Aliases and the directory entry moved.
        let resolved = alice
            .ok(
                Method::GET,
                &format!("/_matrix/client/v3/directory/room/{}", urlencode(&alias_id)),
                None,
            )
            .await;
        assert_eq!(resolved["room_id"], new_room.as_str());
        let visibility = |r: &str| format!("/_matrix/client/v3/directory/list/room/{r}");
        assert_eq!(
            alice.ok(Method::GET, &visibility(&new_room), None).await["visibility"],
            "public"
        );
        assert_eq!(
            alice.ok(Method::GET, &visibility(&room), None).await["visibility"],
            "private"
        );

        // Bob follows and can talk there.
        bob.join(&new_room).await;
        bob.send_text(&new_room, "made it").await;
    }
}
on_both_backends!(room_upgrade);

/// Threads whose roots the reader may not see (sent before they joined a room that shows
/// history to joined members only) are skipped without shortening the page; and a walk
/// through the pages lists every thread once, however the threads move meanwhile.
async fn threads_skip_roots_the_reader_cannot_see(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice
        .create_room_with(json!({"preset": "public_chat", "initial_state": [{
            "type": "m.room.history_visibility", "state_key": "",
            "content": {"history_visibility": "joined"}}]}))
        .await;
    let hidden: Vec<String> = {
        let mut roots = Vec::new();
        for i in 0..3 {
            roots.push(alice.send_text(&room, &format!("before bob {i}")).await);
        }
        roots
    };
    bob.join(&room).await;
    let seen = alice.send_text(&room, "after bob joined").await;
    alice
        .send(&room, "m.room.message", thread_reply(&seen, "reply"))
        .await;
    // The hidden threads get the newest activity, so they sort first.
    for root in &hidden {
        alice
            .send(&room, "m.room.message", thread_reply(root, "late reply"))
            .await;
    }
    let threads = format!("/_matrix/client/v1/rooms/{room}/threads");
    assert_eq!(
        ids(&alice.ok(Method::GET, &threads, None).await["chunk"])
            .0
            .len(),
        4
    );
    let page = bob
        .ok(Method::GET, &format!("{threads}?limit=1"), None)
        .await;
    assert_eq!(ids(&page["chunk"]), [&seen], "{page}");
    let next = page["next_batch"].as_str().unwrap();
    let rest = bob
        .ok(Method::GET, &format!("{threads}?limit=1&from={next}"), None)
        .await;
    assert_eq!(ids(&rest["chunk"]), NONE);

    // Alice pages one by one; the oldest thread gets a reply meanwhile. It keeps its place
    // in her walk instead of jumping over the pages she has read.
    let mut seen_pages = Vec::new();
    let mut from: Option<String> = None;
    for page_number in 0..5 {
        let path = match &from {
            Some(token) => format!("{threads}?limit=1&from={token}"),
            None => format!("{threads}?limit=1"),
        };
        let page = alice.ok(Method::GET, &path, None).await;
        seen_pages.extend(ids(&page["chunk"]).0);
        if page_number == 0 {
            alice
                .send(&room, "m.room.message", thread_reply(&seen, "late"))
                .await;
        }
        match page["next_batch"].as_str() {
            Some(token) => from = Some(token.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = hidden.iter().rev().cloned().chain([seen]).collect();
    assert_eq!(seen_pages, expected);
}
on_both_backends!(threads_skip_roots_the_reader_cannot_see);
