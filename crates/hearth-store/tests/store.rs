//! Storage tests, run on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_store::testing::TestStore;
use hearth_store::{NewEvent, NewStateGroup, RoomBatch, StoreError};
use ruma::{OwnedEventId, OwnedRoomId, RoomVersionId, owned_user_id};

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

fn event(id: &str, prev: &[&OwnedEventId], group: i64, state_key: Option<&str>) -> NewEvent {
    NewEvent {
        event_id: OwnedEventId::try_from(id).unwrap(),
        sender: owned_user_id!("@a:x.test"),
        event_type: if state_key.is_some() {
            "m.room.topic"
        } else {
            "m.room.message"
        }
        .into(),
        state_key: state_key.map(str::to_owned),
        depth: 1,
        origin_server_ts: 1,
        json: "{}".into(),
        prev_events: prev.iter().map(|p| (*p).clone()).collect(),
        auth_events: Vec::new(),
        state_group_before: group,
        state_group_after: group,
        txn: None,
    }
}

/// A new room whose first event is `$create`, in a state group of its own.
async fn new_room(test: &TestStore, room: &str) -> (OwnedRoomId, i64) {
    let room = OwnedRoomId::try_from(room).unwrap();
    let group = test.store.allocate_state_group();
    let create = event("$create-r", &[], group, Some(""));
    let id = create.event_id.clone();
    test.store
        .persist(RoomBatch {
            room_id: room.clone(),
            room_version: RoomVersionId::V11,
            creates_room: true,
            state_groups: vec![NewStateGroup {
                id: group,
                parent: None,
                chain_len: 0,
                delta: vec![(("m.room.topic".into(), String::new()), Some(id.clone()))],
            }],
            events: vec![create],
            forward_extremities: vec![id.clone()],
            current_state_group: group,
            current_state: vec![(("m.room.topic".into(), String::new()), id)],
            memberships: Vec::new(),
            redactions: Vec::new(),
            relations: Vec::new(),
            apart: Vec::new(),
        })
        .await
        .unwrap();
    (room, group)
}

fn message_batch(room: &OwnedRoomId, group: i64, ids: &[&str]) -> RoomBatch {
    let events: Vec<_> = ids.iter().map(|id| event(id, &[], group, None)).collect();
    RoomBatch {
        room_id: room.clone(),
        room_version: RoomVersionId::V11,
        creates_room: false,
        state_groups: Vec::new(),
        forward_extremities: vec![events.last().unwrap().event_id.clone()],
        events,
        current_state_group: group,
        current_state: Vec::new(),
        memberships: Vec::new(),
        redactions: Vec::new(),
        relations: Vec::new(),
        apart: Vec::new(),
    }
}

async fn migrations_are_idempotent_and_versioned(test: TestStore) {
    let (room, _) = new_room(&test, "!r:x.test").await;
    drop(test.store);
    // Reopening runs the migrations again: nothing to do, nothing lost.
    let store = test.location.reopen().await.unwrap();
    assert!(store.room_head(&room).await.unwrap().is_some());
    assert_eq!(
        store.integrity_check().await.unwrap(),
        vec!["ok".to_owned()]
    );
}
on_both_backends!(migrations_are_idempotent_and_versioned);

async fn a_failing_batch_does_not_fail_its_neighbours(test: TestStore) {
    let (room, group) = new_room(&test, "!r:x.test").await;
    let good = message_batch(&room, group, &["$a", "$b"]);
    // `$create-r` exists already: this batch must fail, alone.
    let bad = message_batch(&room, group, &["$c", "$create-r"]);
    let (good, bad) = tokio::join!(test.store.persist(good), test.store.persist(bad));
    let positions = good.unwrap();
    assert_eq!(positions.len(), 2);
    assert_eq!(positions[1], positions[0] + 1);
    assert!(matches!(bad, Err(StoreError::Database(_))));
    let ids: Vec<_> = test
        .store
        .room_timeline(&room)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id, _)| id.to_string())
        .collect();
    assert_eq!(
        ids,
        ["$create-r", "$a", "$b"],
        "the failed batch left nothing, not even $c"
    );
    // Stream positions stay gapless after the rollback.
    let next = test
        .store
        .persist(message_batch(&room, group, &["$d"]))
        .await
        .unwrap();
    assert_eq!(next, vec![positions[1] + 1]);
    assert_eq!(*test.store.subscribe().borrow(), positions[1] + 1);
}
on_both_backends!(a_failing_batch_does_not_fail_its_neighbours);

async fn state_groups_apply_deltas_and_removals(test: TestStore) {
    let (room, root) = new_room(&test, "!r:x.test").await;
    let store = &test.store;
    let (g1, g2) = (store.allocate_state_group(), store.allocate_state_group());
    let key = |t: &str| (t.to_owned(), String::new());
    let mut batch = message_batch(&room, g2, &["$m"]);
    batch.state_groups = vec![
        NewStateGroup {
            id: g1,
            parent: Some(root),
            chain_len: 1,
            delta: vec![(
                key("m.room.name"),
                Some(OwnedEventId::try_from("$create-r").unwrap()),
            )],
        },
        NewStateGroup {
            id: g2,
            parent: Some(g1),
            chain_len: 2,
            delta: vec![(key("m.room.topic"), None)],
        },
    ];
    store.persist(batch).await.unwrap();
    let s1 = store.state_group(g1).await.unwrap();
    assert_eq!(s1.len(), 2);
    let s2 = store.state_group(g2).await.unwrap();
    assert_eq!(
        s2.keys().collect::<Vec<_>>(),
        vec![&key("m.room.name")],
        "topic removed by the delta"
    );
    assert_eq!(
        store
            .state_after_event(ruma::event_id!("$m"))
            .await
            .unwrap(),
        Some(s2)
    );
    assert_eq!(
        store
            .state_after_event(ruma::event_id!("$nope"))
            .await
            .unwrap(),
        None
    );
}
on_both_backends!(state_groups_apply_deltas_and_removals);

/// What the store answers from memory (the writer's recent events, with their transaction
/// ids, relation and redaction marks) must be what the database answers: the live store is
/// compared with a second one opened on the same database, whose memory is empty.
async fn memory_answers_match_the_database(test: TestStore) {
    use hearth_store::{NewRelation, TxnKey};

    let (room, group) = new_room(&test, "!r:x.test").await;
    let id = |i: usize| OwnedEventId::try_from(format!("$e{i}").as_str()).unwrap();
    let mut ids = Vec::new();
    // More events than the store keeps per room, in batches of one to three, some sent with a
    // transaction id, some relating to or redacting earlier ones.
    let mut next = 0;
    for round in 0..120 {
        let names: Vec<String> = (next..next + 1 + round % 3)
            .map(|i| format!("$e{i}"))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut batch = message_batch(&room, group, &refs);
        for (k, event) in batch.events.iter_mut().enumerate() {
            let n = next + k;
            if n % 4 == 0 {
                event.txn = Some(TxnKey {
                    room_id: room.clone(),
                    user_id: owned_user_id!("@a:x.test"),
                    device_id: "PHONE".into(),
                    endpoint: "send/m.room.message".into(),
                    txn_id: format!("t{n}").into(),
                });
            }
            if n >= 10 && n % 5 == 0 {
                batch.relations.push(NewRelation {
                    event_id: id(n),
                    relates_to: id(n - 7),
                    rel_type: if n % 10 == 0 {
                        "m.thread"
                    } else {
                        "m.reference"
                    }
                    .into(),
                });
            }
            if n >= 10 && n % 11 == 0 {
                batch.redactions.push((id(n - 3), id(n)));
            }
        }
        next += names.len();
        ids.extend(
            names
                .iter()
                .map(|n| OwnedEventId::try_from(n.as_str()).unwrap()),
        );
        test.store.persist(batch).await.unwrap();
    }
    let cold = test.location.reopen().await.unwrap();
    let upto = test.store.current_stream();
    let positions = |events: Vec<hearth_store::StoredEvent>| {
        events
            .iter()
            .map(|e| (e.stream_ordering, e.event_id.clone(), e.json.clone()))
            .collect::<Vec<_>>()
    };
    for after in [
        0,
        1,
        upto / 2,
        upto - 130,
        upto - 128,
        upto - 50,
        upto - 3,
        upto,
    ] {
        for limit in [1, 10, 100, 129, 1000] {
            for end in [upto, upto - 1, upto - 20] {
                assert_eq!(
                    positions(
                        test.store
                            .room_events_backwards(&room, after, end, limit)
                            .await
                            .unwrap()
                    ),
                    positions(
                        cold.room_events_backwards(&room, after, end, limit)
                            .await
                            .unwrap()
                    ),
                    "after {after}, upto {end}, limit {limit}"
                );
            }
        }
    }
    fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
        v.sort();
        v
    }
    let mut events = positions(test.store.events(&ids).await.unwrap());
    events.sort();
    let mut expected = positions(cold.events(&ids).await.unwrap());
    expected.sort();
    assert_eq!(events, expected);
    assert_eq!(events.len(), ids.len());
    for window in [&ids[..], &ids[ids.len() - 60..]] {
        let window = window.to_vec();
        assert_eq!(
            sorted(
                test.store
                    .transaction_ids_of(&owned_user_id!("@a:x.test"), "PHONE".into(), &window)
                    .await
                    .unwrap()
            ),
            sorted(
                cold.transaction_ids_of(&owned_user_id!("@a:x.test"), "PHONE".into(), &window)
                    .await
                    .unwrap()
            )
        );
        assert_eq!(
            sorted(test.store.redactions_of(&window).await.unwrap()),
            sorted(cold.redactions_of(&window).await.unwrap())
        );
        let types = ["m.reference", "m.thread"];
        assert_eq!(
            test.store
                .relations_of(&room, &window, &types, upto)
                .await
                .unwrap(),
            cold.relations_of(&room, &window, &types, upto)
                .await
                .unwrap()
        );
        let user = owned_user_id!("@a:x.test");
        assert_eq!(
            sorted(
                test.store
                    .thread_summaries(&room, &window, upto, &user)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|t| (t.root, t.count, t.latest))
                    .collect()
            ),
            sorted(
                cold.thread_summaries(&room, &window, upto, &user)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|t| (t.root, t.count, t.latest))
                    .collect()
            )
        );
    }
    // The comparison is not between two empty answers.
    let recent: Vec<_> = ids[ids.len() - 60..].to_vec();
    assert!(!test.store.redactions_of(&recent).await.unwrap().is_empty());
    assert!(
        !test
            .store
            .relations_of(&room, &recent, &["m.reference"], upto)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !test
            .store
            .thread_summaries(&room, &recent, upto, &owned_user_id!("@a:x.test"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !test
            .store
            .transaction_ids_of(&owned_user_id!("@a:x.test"), "PHONE".into(), &recent)
            .await
            .unwrap()
            .is_empty()
    );
}
on_both_backends!(memory_answers_match_the_database);
