//! Shared set-up for the benchmarks, and the `hearth-load` load generator.

pub mod federation;
pub mod load;

use std::sync::Arc;

use hearth_keys::SigningKey;
use hearth_rooms::{Append, EventDraft, Rooms};
use ruma::{OwnedRoomId, OwnedUserId, RoomVersionId, owned_user_id, server_name};
use serde_json::json;

pub fn alice() -> OwnedUserId {
    owned_user_id!("@alice:bench.test")
}

pub fn rooms(store: hearth_store::Store) -> Rooms {
    #[allow(clippy::expect_used)]
    let key = SigningKey::generate(server_name!("bench.test")).expect("key generation");
    Rooms::new(store, Arc::new(key))
}

/// A v12 room with alice joined.
pub async fn room(rooms: &Rooms) -> Result<OwnedRoomId, hearth_rooms::RoomError> {
    let (room, _) = rooms
        .create_room(&RoomVersionId::V12, &alice(), Default::default())
        .await?;
    let join = EventDraft::state(
        "m.room.member",
        alice().as_str(),
        json!({"membership": "join"}),
    );
    rooms
        .append(
            &room,
            Append {
                sender: alice(),
                draft: join,
                txn: None,
            },
        )
        .await?;
    Ok(room)
}

pub fn message(i: usize) -> EventDraft {
    EventDraft::message(
        "m.room.message",
        json!({"msgtype": "m.text", "body": format!("message {i}")}),
    )
}
