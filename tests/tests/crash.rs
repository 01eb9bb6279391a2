//! SIGKILL while appending: every append that returned success is there after restart, the
//! database passes its own integrity check, and the room's graph is whole and can grow again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hearth_store::Store;
use ruma::{OwnedEventId, OwnedRoomId};

const KILL_AFTER: usize = 400;

/// Run the stress binary until it has acknowledged `count` appends, then SIGKILL it.
/// Returns the room (if it created one) and the acknowledged event ids.
fn run_and_kill(
    kind: &str,
    location: &str,
    room: Option<&OwnedRoomId>,
    count: usize,
) -> (Option<OwnedRoomId>, Vec<OwnedEventId>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_append-stress"));
    command
        .arg(kind)
        .arg(location)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(room) = room {
        command.arg(room.as_str());
    }
    let mut child = command.spawn().expect("start append-stress");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut created, mut acked) = (None, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < count {
        assert!(
            Instant::now() < deadline,
            "append-stress too slow: {} acks",
            acked.len()
        );
        let line = lines.next().expect("append-stress ended early").unwrap();
        if let Some(id) = line.strip_prefix("ROOM ") {
            created = Some(id.parse().unwrap());
        } else if let Some(id) = line.strip_prefix("OK ") {
            acked.push(id.parse().unwrap());
        }
    }
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
    child.wait().unwrap();
    // Lines the child wrote before dying are acknowledgements too.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("OK ") {
            acked.push(id.parse().unwrap());
        }
    }
    (created, acked)
}

/// Everything acknowledged is stored; the engine finds no corruption; the chain is linear and
/// its head is the last event.
async fn check(store: &Store, room: &OwnedRoomId, acked: &[OwnedEventId]) -> usize {
    assert_eq!(
        store.integrity_check().await.unwrap(),
        vec!["ok".to_owned()]
    );
    let timeline = store.room_timeline(room).await.unwrap();
    let stored: std::collections::HashSet<_> =
        timeline.iter().map(|(_, id, _)| id.clone()).collect();
    for id in acked {
        assert!(stored.contains(id), "acknowledged {id} was lost");
    }
    for pair in timeline.windows(2) {
        assert_eq!(pair[1].2, pair[0].2 + 1, "depth grows by one");
        assert_eq!(
            store.prev_events(&pair[1].1).await.unwrap(),
            vec![pair[0].1.clone()]
        );
    }
    let head = store.room_head(room).await.unwrap().unwrap();
    let last = timeline.last().unwrap();
    assert_eq!(head.extremities, vec![(last.1.clone(), last.2)]);
    timeline.len()
}

async fn crash_and_recover(kind: &'static str, location: String) {
    let loc = location.clone();
    let (room, acked) =
        tokio::task::spawn_blocking(move || run_and_kill(kind, &loc, None, KILL_AFTER))
            .await
            .unwrap();
    let room = room.expect("the first run creates the room");
    let store = hearth_tests::open(kind, &location).await.unwrap();
    let first = check(&store, &room, &acked).await;
    assert!(first >= KILL_AFTER + 2);
    drop(store);

    // A second life: the room resumes from what was persisted, and survives another kill.
    let (loc, room2) = (location.clone(), room.clone());
    let (_, more) =
        tokio::task::spawn_blocking(move || run_and_kill(kind, &loc, Some(&room2), 100))
            .await
            .unwrap();
    let store = hearth_tests::open(kind, &location).await.unwrap();
    let second = check(&store, &room, &more).await;
    assert!(second >= first + 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    crash_and_recover("--sqlite", path.to_str().unwrap().to_owned()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_appends_postgres() {
    crash_and_recover("--postgres", hearth_store::testing::postgres_url().await).await;
}
