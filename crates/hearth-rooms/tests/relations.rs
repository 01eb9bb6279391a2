//! The relations index the pipeline keeps, the bundled aggregations built from it, and room
//! upgrades, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hearth_rooms::{EventDraft, Reader, RoomError, Upgrade};
use hearth_store::ChildrenQuery;
use hearth_store::testing::TestStore;
use ruma::events::StateEventType;
use ruma::{OwnedEventId, RoomVersionId};
use serde_json::{Value, json};

fn related(rel_type: &str, parent: &OwnedEventId, extra: Value) -> EventDraft {
    let mut content = json!({"msgtype": "m.text", "body": "child",
                             "m.relates_to": {"rel_type": rel_type, "event_id": parent}});
    if let (Some(content), Value::Object(extra)) = (content.as_object_mut(), extra) {
        content.extend(extra);
    }
    EventDraft::message("m.room.message", content)
}

/// Relations are indexed with their events; a plain reply is none; a redaction removes the
/// child; aggregations count only what the reader is shown.
async fn relations_are_indexed_and_bundled(test: TestStore) {
    let rooms = rooms(&test);
    let (alice, bob) = (user("alice"), user("bob"));
    let room = room(&rooms, RoomVersionId::V12, "public").await;
    send(&rooms, &room, &bob, member(&bob, "join")).await;
    let root = send(&rooms, &room, &alice, text("root")).await.event_id;
    let t1 = send(&rooms, &room, &bob, related("m.thread", &root, json!({}))).await;
    let reply = EventDraft::message(
        "m.room.message",
        json!({"body": "re", "m.relates_to": {"m.in_reply_to": {"event_id": root}}}),
    );
    send(&rooms, &room, &alice, reply).await;
    let edit = send(
        &rooms,
        &room,
        &alice,
        related(
            "m.replace",
            &root,
            json!({"m.new_content": {"msgtype": "m.text", "body": "root v2"}}),
        ),
    )
    .await
    .event_id;
    // Not a valid edit: another sender.
    send(
        &rooms,
        &room,
        &bob,
        related("m.replace", &root, json!({"m.new_content": {"body": "x"}})),
    )
    .await;
    let t2 = send(&rooms, &room, &alice, related("m.thread", &root, json!({}))).await;

    let children = |rel_type: Option<&'static str>| {
        let store = test.store.clone();
        let (room, root) = (room.clone(), root.clone());
        async move {
            store
                .relation_children(&ChildrenQuery {
                    room: &room,
                    parent: &root,
                    rel_type,
                    event_type: None,
                    depth: 1,
                    after: 0,
                    before: i64::MAX,
                    limit: 100,
                    backwards: false,
                })
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.event_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        children(None).await.len(),
        4,
        "the plain reply is no relation"
    );
    assert_eq!(
        children(Some("m.thread")).await,
        [t1.event_id.clone(), t2.event_id.clone()]
    );

    let pdu = rooms.pdu(&root).await.unwrap().unwrap();
    let render = |upto: i64| {
        let (rooms, pdu, bob) = (rooms.clone(), pdu.clone(), bob.clone());
        async move {
            rooms
                .client_events_for(Reader { user: &bob, upto }, &[pdu])
                .await
                .unwrap()
                .pop()
                .unwrap()
        }
    };
    let now = test.store.current_stream();
    let event = render(now).await;
    let relations = &event["unsigned"]["m.relations"];
    assert_eq!(relations["m.thread"]["count"], 2);
    assert_eq!(
        relations["m.thread"]["latest_event"]["event_id"],
        t2.event_id.as_str()
    );
    assert_eq!(relations["m.thread"]["current_user_participated"], true);
    assert_eq!(relations["m.replace"]["event_id"], edit.as_str());
    // As of the first thread reply: one child, no edit yet.
    let event = render(t1.stream).await;
    let relations = &event["unsigned"]["m.relations"];
    assert_eq!(relations["m.thread"]["count"], 1);
    assert!(relations.get("m.replace").is_none());

    // A thread off an event that relates itself is refused.
    let nested = related("m.thread", &t1.event_id, json!({}));
    assert!(matches!(
        try_send(&rooms, &room, &alice, nested).await,
        Err(RoomError::BadRelation(_))
    ));

    // Redacting a child breaks the relation.
    send(
        &rooms,
        &room,
        &alice,
        EventDraft::redaction(t2.event_id.clone(), None),
    )
    .await;
    assert_eq!(
        children(Some("m.thread")).await,
        std::slice::from_ref(&t1.event_id)
    );
    let event = render(test.store.current_stream()).await;
    assert_eq!(event["unsigned"]["m.relations"]["m.thread"]["count"], 1);
}
on_both_backends!(relations_are_indexed_and_bundled);

/// An upgrade from version 11 to 12: predecessor without an event id, state copied, the
/// upgrader (now a creator) out of `users`, the old room tombstoned and locked down.
async fn upgrade_to_v12(test: TestStore) {
    let rooms = rooms(&test);
    let (alice, bob) = (user("alice"), user("bob"));
    let room = room(&rooms, RoomVersionId::V11, "public").await;
    send(&rooms, &room, &bob, member(&bob, "join")).await;
    send(
        &rooms,
        &room,
        &alice,
        EventDraft::state("m.room.name", "", json!({"name": "Hall"})),
    )
    .await;
    let upgrade = |user: &ruma::UserId| Upgrade {
        room: room.clone(),
        user: user.to_owned(),
        new_version: RoomVersionId::V12,
        additional_creators: Vec::new(),
        creator_join_content: serde_json::Map::new(),
    };
    assert!(matches!(
        rooms.upgrade_room(upgrade(&bob)).await,
        Err(RoomError::Forbidden(_))
    ));
    let new_room = rooms.upgrade_room(upgrade(&alice)).await.unwrap();

    let content = |room: ruma::OwnedRoomId, kind: &'static str| {
        let rooms = rooms.clone();
        async move {
            let state = rooms.current_state(&room).await.unwrap();
            let id = state.get(&(StateEventType::from(kind), String::new()))?;
            let pdu = rooms.pdu(id).await.unwrap()?;
            Some(serde_json::from_str::<Value>(pdu.content().get()).unwrap())
        }
    };
    let create = content(new_room.clone(), "m.room.create").await.unwrap();
    assert_eq!(create["predecessor"], json!({"room_id": room}));
    assert_eq!(
        content(new_room.clone(), "m.room.name").await.unwrap()["name"],
        "Hall"
    );
    let levels = content(new_room.clone(), "m.room.power_levels")
        .await
        .unwrap();
    assert!(levels["users"].get(alice.as_str()).is_none(), "{levels}");
    let tombstone = content(room.clone(), "m.room.tombstone").await.unwrap();
    assert_eq!(tombstone["replacement_room"], new_room.as_str());
    let old_levels = content(room.clone(), "m.room.power_levels").await.unwrap();
    assert_eq!(
        (
            old_levels["events_default"].clone(),
            old_levels["invite"].clone()
        ),
        (json!(50), json!(50))
    );
    assert!(matches!(
        try_send(&rooms, &room, &bob, text("still here?")).await,
        Err(RoomError::Forbidden(_))
    ));
}
on_both_backends!(upgrade_to_v12);
