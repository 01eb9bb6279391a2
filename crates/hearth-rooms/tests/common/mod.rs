//! Shared set-up for the rooms integration tests: a store on each backend, a signing key, and a
//! room with the usual initial state.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use hearth_keys::SigningKey;
use hearth_rooms::{Append, Appended, EventDraft, Rooms};
use hearth_store::testing::TestStore;
use ruma::{OwnedRoomId, OwnedUserId, RoomVersionId, UserId, server_name};
use serde_json::json;

/// Run one async test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(hearth_store::testing::sqlite().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(hearth_store::testing::postgres().await).await
            }
        }
    };
}

pub fn user(name: &str) -> OwnedUserId {
    UserId::parse(format!("@{name}:hearth.test")).unwrap()
}

pub fn rooms(test: &TestStore) -> Rooms {
    let key = SigningKey::generate(server_name!("hearth.test")).unwrap();
    Rooms::new(test.store.clone(), Arc::new(key))
}

pub async fn send(
    rooms: &Rooms,
    room: &OwnedRoomId,
    sender: &UserId,
    draft: EventDraft,
) -> Appended {
    rooms
        .append(
            room,
            Append {
                sender: sender.to_owned(),
                draft,
                txn: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("append by {sender} failed: {e}"))
}

pub async fn try_send(
    rooms: &Rooms,
    room: &OwnedRoomId,
    sender: &UserId,
    draft: EventDraft,
) -> Result<Appended, hearth_rooms::RoomError> {
    rooms
        .append(
            room,
            Append {
                sender: sender.to_owned(),
                draft,
                txn: None,
            },
        )
        .await
}

pub fn member(user: &UserId, membership: &str) -> EventDraft {
    EventDraft::state(
        "m.room.member",
        user.as_str(),
        json!({ "membership": membership }),
    )
}

/// The users map of a power levels event, without the creator in v12 (creators are implicit).
pub fn power_levels(version: &RoomVersionId, users: &[(&UserId, i64)]) -> EventDraft {
    let v12 = version
        .rules()
        .unwrap()
        .authorization
        .explicitly_privilege_room_creators;
    let users: serde_json::Map<_, _> = users
        .iter()
        .filter(|(u, _)| !(v12 && u.localpart() == "alice"))
        .map(|(u, l)| (u.to_string(), json!(l)))
        .collect();
    EventDraft::state(
        "m.room.power_levels",
        "",
        json!({
            "users": users, "users_default": 0, "events_default": 0, "state_default": 50,
            "ban": 50, "kick": 50, "redact": 50, "invite": 0,
            "events": { "m.room.power_levels": 100 }
        }),
    )
}

/// A room created by @alice with join, power levels (alice 100), join rule and history visibility.
pub async fn room(rooms: &Rooms, version: RoomVersionId, join_rule: &str) -> OwnedRoomId {
    room_with(rooms, version, join_rule, serde_json::Map::new()).await
}

/// [`room`], with `extra` merged into the create content (e.g. `additional_creators`).
pub async fn room_with(
    rooms: &Rooms,
    version: RoomVersionId,
    join_rule: &str,
    extra: serde_json::Map<String, serde_json::Value>,
) -> OwnedRoomId {
    let alice = user("alice");
    let (room, _) = rooms.create_room(&version, &alice, extra).await.unwrap();
    send(rooms, &room, &alice, member(&alice, "join")).await;
    send(
        rooms,
        &room,
        &alice,
        power_levels(&version, &[(&alice, 100)]),
    )
    .await;
    send(
        rooms,
        &room,
        &alice,
        EventDraft::state("m.room.join_rules", "", json!({ "join_rule": join_rule })),
    )
    .await;
    send(
        rooms,
        &room,
        &alice,
        EventDraft::state(
            "m.room.history_visibility",
            "",
            json!({ "history_visibility": "shared" }),
        ),
    )
    .await;
    room
}

pub fn text(body: &str) -> EventDraft {
    EventDraft::message(
        "m.room.message",
        json!({ "msgtype": "m.text", "body": body }),
    )
}
