//! The append pipeline end to end, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeSet, HashSet};

use common::*;
use hearth_rooms::{Append, EventDraft, MAX_DELTA_CHAIN, RoomError};
use hearth_store::TxnKey;
use hearth_store::testing::TestStore;
use ruma::events::StateEventType;
use ruma::{OwnedTransactionId, RoomVersionId, device_id};
use serde_json::json;

const TASKS: usize = 8;
const MESSAGES: usize = 1000;

/// 1,000 messages appended concurrently from several tasks form one linear, consistent chain.
async fn concurrent_appends_are_linear(test: TestStore) {
    let rooms = rooms(&test);
    let alice = user("alice");
    let room = room(&rooms, RoomVersionId::V12, "public").await;
    let mut persisted = rooms.subscribe();

    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let rooms = rooms.clone();
        let room = room.clone();
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..MESSAGES / TASKS {
                ids.push(
                    send(
                        &rooms,
                        &room,
                        &alice,
                        text(&format!("task {t} message {i}")),
                    )
                    .await
                    .event_id,
                );
            }
            ids
        }));
    }
    let mut sent = HashSet::new();
    for task in tasks {
        sent.extend(task.await.unwrap());
    }
    assert_eq!(
        sent.len(),
        MESSAGES,
        "every append returned a distinct event"
    );

    let timeline = test.store.room_timeline(&room).await.unwrap();
    assert_eq!(
        timeline.len(),
        MESSAGES + 5,
        "create, 4 initial state events, the messages"
    );
    // Stream order, depth order and the prev_events chain all agree.
    for pair in timeline.windows(2) {
        let ((s0, id0, d0), (s1, id1, d1)) = (&pair[0], &pair[1]);
        assert!(s1 > s0, "stream positions increase");
        assert_eq!(*d1, d0 + 1, "depth grows by one");
        assert_eq!(
            test.store.prev_events(id1).await.unwrap(),
            vec![id0.clone()],
            "linear DAG"
        );
    }
    let head = test.store.room_head(&room).await.unwrap().unwrap();
    let last = timeline.last().unwrap();
    assert_eq!(
        head.extremities,
        vec![(last.1.clone(), last.2)],
        "one forward extremity: the last event"
    );
    for id in &sent {
        assert!(timeline.iter().any(|(_, t, _)| t == id), "{id} is stored");
    }
    // The notifier announced the last position.
    assert_eq!(*persisted.borrow_and_update(), last.0);
    // Every stored event re-parses to its own id (hash, canonical JSON and id derivation agree).
    let ids: Vec<_> = timeline.iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(rooms.load_pdus(&ids).await.unwrap().len(), ids.len());
}
on_both_backends!(concurrent_appends_are_linear);

/// Retried transactions return the first event, also when the retries race.
async fn transaction_ids_make_appends_idempotent(test: TestStore) {
    let rooms = rooms(&test);
    let alice = user("alice");
    let room = room(&rooms, RoomVersionId::V11, "public").await;
    let txn = TxnKey {
        room_id: room.clone(),
        user_id: alice.clone(),
        device_id: device_id!("PHONE").to_owned(),
        endpoint: "send/m.room.message".into(),
        txn_id: OwnedTransactionId::from("m1"),
    };
    let append = Append {
        sender: alice.clone(),
        draft: text("once"),
        txn: Some(txn.clone()),
    };
    let results = futures_join((0..10).map(|_| {
        let rooms = rooms.clone();
        let room = room.clone();
        let append = append.clone();
        async move { rooms.append(&room, append).await.unwrap() }
    }))
    .await;
    let ids: BTreeSet<_> = results.iter().map(|r| r.event_id.clone()).collect();
    assert_eq!(ids.len(), 1, "one event for one transaction");
    assert_eq!(
        results.iter().filter(|r| !r.duplicate).count(),
        1,
        "exactly one original"
    );

    // A later retry, after the commit, gets the same answer.
    let again = rooms.append(&room, append.clone()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(Some(&again.event_id), ids.first());
    assert_eq!(
        again.stream,
        results.iter().find(|r| !r.duplicate).unwrap().stream
    );

    // The same transaction id from another device is another transaction.
    let other = TxnKey {
        device_id: device_id!("LAPTOP").to_owned(),
        ..txn
    };
    let fresh = rooms
        .append(
            &room,
            Append {
                txn: Some(other),
                ..append
            },
        )
        .await
        .unwrap();
    assert!(!fresh.duplicate);
    assert_ne!(Some(&fresh.event_id), ids.first());
    let messages = test.store.room_timeline(&room).await.unwrap().len();
    assert_eq!(messages, 5 + 2);
}
on_both_backends!(transaction_ids_make_appends_idempotent);

async fn futures_join<F: Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

/// State snapshots: each state event gets a state group; long chains are cut by full snapshots;
/// the state at any event is the state the pipeline saw then.
async fn state_at_every_event(test: TestStore) {
    let rooms = rooms(&test);
    let alice = user("alice");
    let room = room(&rooms, RoomVersionId::V10, "public").await;
    let topics = usize::try_from(MAX_DELTA_CHAIN).unwrap() + 20;
    let mut topic_events = Vec::new();
    for i in 0..topics {
        let draft = EventDraft::state("m.room.topic", "", json!({ "topic": format!("topic {i}") }));
        topic_events.push(send(&rooms, &room, &alice, draft).await.event_id);
        let draft = EventDraft::state("com.example.counter", format!("k{i}"), json!({ "i": i }));
        send(&rooms, &room, &alice, draft).await;
    }
    let topic_key = (StateEventType::RoomTopic, String::new());
    for (i, id) in topic_events.iter().enumerate() {
        let after = rooms.state_after(id).await.unwrap();
        assert_eq!(
            after.get(&topic_key),
            Some(id),
            "topic {i} is the state after its event"
        );
        let counters = after
            .keys()
            .filter(|(t, _)| t.to_string() == "com.example.counter")
            .count();
        assert_eq!(
            counters, i,
            "state after topic {i} has the {i} counters sent before it"
        );
        let before = rooms.state_before(id).await.unwrap();
        assert_eq!(
            before.get(&topic_key),
            i.checked_sub(1).map(|p| &topic_events[p])
        );
    }
    let current = rooms.current_state(&room).await.unwrap();
    assert_eq!(current.get(&topic_key), topic_events.last());
    assert_eq!(
        current.len(),
        5 + 1 + topics,
        "create, member, pl, join rules, history, topic, counters"
    );
    // A message does not change state: before and after are the same.
    let msg = send(&rooms, &room, &alice, text("hi")).await.event_id;
    assert_eq!(
        rooms.state_before(&msg).await.unwrap(),
        rooms.state_after(&msg).await.unwrap()
    );
    assert_eq!(rooms.state_after(&msg).await.unwrap(), current);
}
on_both_backends!(state_at_every_event);

/// A restarted server resumes a room where it left off.
async fn restart_resumes_the_room(test: TestStore) {
    let alice = user("alice");
    let (room, last) = {
        let rooms = rooms(&test);
        let room = room(&rooms, RoomVersionId::V12, "public").await;
        let last = send(&rooms, &room, &alice, text("before restart")).await;
        (room, last)
    };
    let reopened = test.location.reopen().await.unwrap();
    let test2 = TestStore {
        store: reopened,
        dir: None,
        location: test.location.clone(),
    };
    let rooms = rooms(&test2);
    let next = send(&rooms, &room, &alice, text("after restart")).await;
    assert!(next.stream > last.stream);
    assert_eq!(
        test2.store.prev_events(&next.event_id).await.unwrap(),
        vec![last.event_id]
    );
    drop(test);
}
on_both_backends!(restart_resumes_the_room);

/// Refused appends change nothing.
async fn refused_appends_leave_no_trace(test: TestStore) {
    let rooms = rooms(&test);
    let alice = user("alice");
    let mallory = user("mallory");
    let room = room(&rooms, RoomVersionId::V11, "invite").await;
    let before = test.store.room_timeline(&room).await.unwrap();
    let state_before = rooms.current_state(&room).await.unwrap();

    // Not a member.
    let err = try_send(&rooms, &room, &mallory, text("let me in"))
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::Forbidden(_)), "{err}");
    // Invite-only room.
    let err = try_send(&rooms, &room, &mallory, member(&mallory, "join"))
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::Forbidden(_)), "{err}");
    // Content must be an object.
    let err = try_send(
        &rooms,
        &room,
        &alice,
        EventDraft::message("m.room.message", json!([1])),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RoomError::Invalid(_)), "{err}");
    // Floats are not canonical JSON.
    let err = try_send(
        &rooms,
        &room,
        &alice,
        EventDraft::message("m.room.message", json!({"x": 1.5})),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RoomError::Invalid(_)), "{err}");
    // Too large.
    let big = "x".repeat(70_000);
    let err = try_send(&rooms, &room, &alice, text(&big))
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::TooLarge { .. }), "{err}");
    // A second create event.
    let err = try_send(
        &rooms,
        &room,
        &alice,
        EventDraft::state("m.room.create", "", json!({})),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RoomError::Forbidden(_)), "{err}");
    // Someone else's user: we could only sign it with our key, which nobody would accept.
    let eve = ruma::owned_user_id!("@eve:elsewhere.test");
    let err = try_send(&rooms, &room, &eve, text("hi")).await.unwrap_err();
    assert!(matches!(err, RoomError::Forbidden(_)), "{err}");
    // Unknown room.
    let nowhere = ruma::OwnedRoomId::try_from("!nowhere:hearth.test").unwrap();
    let err = try_send(&rooms, &nowhere, &alice, text("hello?"))
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::UnknownRoom(_)), "{err}");

    assert_eq!(test.store.room_timeline(&room).await.unwrap(), before);
    assert_eq!(rooms.current_state(&room).await.unwrap(), state_before);
    // Refusals inside a busy batch don't take their neighbours down.
    let good = send(&rooms, &room, &alice, text("still fine")).await;
    assert_eq!(
        test.store.prev_events(&good.event_id).await.unwrap(),
        vec![before.last().unwrap().1.clone()]
    );
}
on_both_backends!(refused_appends_leave_no_trace);

/// Every room version can be created and used; v1/v2 get server-generated ids, v3+ hash ids,
/// v12 a room id derived from the create event.
async fn every_room_version(test: TestStore) {
    let rooms = rooms(&test);
    let alice = user("alice");
    for n in 1..=12u8 {
        let version = RoomVersionId::try_from(n.to_string()).unwrap();
        let room = room(&rooms, version.clone(), "public").await;
        let msg = send(&rooms, &room, &alice, text("hello")).await.event_id;
        let create = test.store.room_timeline(&room).await.unwrap()[0].1.clone();
        match n {
            1 | 2 => assert!(
                msg.server_name().is_some(),
                "v{n} event ids name the server"
            ),
            _ => assert!(msg.server_name().is_none(), "v{n} event ids are hashes"),
        }
        if n == 12 {
            assert_eq!(
                &room.as_str()[1..],
                &create.as_str()[1..],
                "v12 room id is the create event's hash"
            );
        } else {
            assert_eq!(room.server_name().map(|s| s.as_str()), Some("hearth.test"));
        }
        let pdu = rooms.pdu(&msg).await.unwrap().unwrap();
        assert_eq!(pdu.room(), &room);
    }
}
on_both_backends!(every_room_version);
