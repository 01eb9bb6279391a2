//! Appends messages to one room from several tasks, forever, printing `OK <event id>` for each
//! append the moment it has returned success. The crash test kills this process with SIGKILL and
//! then checks that every printed event survived.
//!
//! Usage: `append-stress (--sqlite PATH | --postgres URL) [ROOM_ID]`. Without a room it creates
//! one and prints `ROOM <id>` first.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use hearth_keys::SigningKey;
use hearth_rooms::{Append, EventDraft, Rooms};
use ruma::{OwnedRoomId, RoomVersionId, owned_user_id, server_name};
use serde_json::json;

const TASKS: usize = 4;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, location) = match args.as_slice() {
        [kind, location, ..] => (kind.as_str(), location.as_str()),
        _ => anyhow::bail!("usage: append-stress (--sqlite PATH | --postgres URL) [ROOM_ID]"),
    };
    let store = hearth_tests::open(kind, location).await?;
    let rooms = Rooms::new(
        store,
        Arc::new(SigningKey::generate(server_name!("hearth.test"))?),
    );
    let alice = owned_user_id!("@alice:hearth.test");
    let room: OwnedRoomId = match args.get(2) {
        Some(id) => id.parse().context("room id")?,
        None => {
            let (room, _) = rooms
                .create_room(&RoomVersionId::V12, &alice, Default::default())
                .await?;
            let join = EventDraft::state(
                "m.room.member",
                alice.as_str(),
                json!({"membership": "join"}),
            );
            rooms
                .append(
                    &room,
                    Append {
                        sender: alice.clone(),
                        draft: join,
                        txn: None,
                    },
                )
                .await?;
            println!("ROOM {room}");
            room
        }
    };
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (rooms, room, alice, out) = (rooms.clone(), room.clone(), alice.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let draft = EventDraft::message(
                    "m.room.message",
                    json!({"msgtype": "m.text", "body": format!("{t}/{i}")}),
                );
                let appended = rooms
                    .append(
                        &room,
                        Append {
                            sender: alice.clone(),
                            draft,
                            txn: None,
                        },
                    )
                    .await?;
                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                writeln!(out, "OK {}", appended.event_id)?;
                out.flush()?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
