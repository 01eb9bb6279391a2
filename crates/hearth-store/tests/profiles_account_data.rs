//! Profiles, account data and filters, run on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use hearth_store::testing::TestStore;
use hearth_store::{AccountDataRow, NewUser, Profile};
use ruma::{owned_room_id, owned_user_id, room_id, user_id};

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

async fn profiles(test: TestStore) {
    let store = &test.store;
    let alice = owned_user_id!("@alice:x.test");
    // Unknown users have no profile at all.
    assert_eq!(store.profile(&alice).await.unwrap(), None);
    store
        .create_user(
            &NewUser {
                user_id: alice.clone(),
                password_hash: None,
                is_admin: false,
                is_guest: false,
            },
            None,
        )
        .await
        .unwrap();
    // A user who never set anything has an empty one.
    assert_eq!(
        store.profile(&alice).await.unwrap(),
        Some(Profile::default())
    );

    store.set_displayname(&alice, Some("Alice")).await.unwrap();
    store
        .set_avatar_url(&alice, Some("mxc://x.test/abc"))
        .await
        .unwrap();
    let both = Profile {
        displayname: Some("Alice".into()),
        avatar_url: Some("mxc://x.test/abc".into()),
    };
    assert_eq!(store.profile(&alice).await.unwrap(), Some(both.clone()));

    // Setting one field leaves the other alone; clearing works.
    store.set_displayname(&alice, Some("Al")).await.unwrap();
    let profile = store.profile(&alice).await.unwrap().unwrap();
    assert_eq!(profile.displayname.as_deref(), Some("Al"));
    assert_eq!(profile.avatar_url, both.avatar_url);
    store.set_displayname(&alice, None).await.unwrap();
    let profile = store.profile(&alice).await.unwrap().unwrap();
    assert_eq!(profile.displayname, None);
    assert_eq!(profile.avatar_url, both.avatar_url);
    store.set_avatar_url(&alice, None).await.unwrap();
    assert_eq!(
        store.profile(&alice).await.unwrap(),
        Some(Profile::default())
    );
}
on_both_backends!(profiles);

/// How long a wake may take before we call it missing.
const NO_NEWS: std::time::Duration = std::time::Duration::from_millis(20);

async fn account_data_round_trip_and_stream(test: TestStore) {
    let store = &test.store;
    let alice = user_id!("@alice:x.test");
    let bob = user_id!("@bob:x.test");
    let room = room_id!("!r:x.test");
    assert_eq!(store.max_account_data_stream().await.unwrap(), 0);
    assert!(store.account_data_since(alice, 0).await.unwrap().is_empty());
    assert_eq!(store.account_data(alice, None, "m.x").await.unwrap(), None);

    let mut waiter = store.notifier().waiter();
    waiter.watch(hearth_store::Topic::User(alice.to_owned()));
    let p1 = store
        .set_account_data(alice, None, "m.x", r#"{"a":1}"#)
        .await
        .unwrap();
    // Writers tell alice's syncs that something of hers changed.
    assert!(tokio::time::timeout(NO_NEWS, waiter.woken()).await.is_ok());
    let p2 = store
        .set_account_data(alice, Some(room), "m.x", r#"{"r":1}"#)
        .await
        .unwrap();
    assert!(tokio::time::timeout(NO_NEWS, waiter.woken()).await.is_ok());
    let p3 = store
        .set_account_data(bob, None, "m.x", r#"{"b":1}"#)
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(NO_NEWS, waiter.woken()).await.is_err(),
        "bob's data is no news to alice"
    );
    assert!(p1 < p2 && p2 < p3, "{p1} {p2} {p3}");
    assert_eq!(store.max_account_data_stream().await.unwrap(), p3);

    // Global and room entries of the same type are separate.
    assert_eq!(
        store
            .account_data(alice, None, "m.x")
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"a":1}"#)
    );
    assert_eq!(
        store
            .account_data(alice, Some(room), "m.x")
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"r":1}"#)
    );
    assert_eq!(
        store
            .account_data(alice, Some(room_id!("!other:x.test")), "m.x")
            .await
            .unwrap(),
        None
    );

    let all = store.account_data_since(alice, 0).await.unwrap();
    assert_eq!(
        all,
        vec![
            AccountDataRow {
                room_id: None,
                data_type: "m.x".into(),
                content: r#"{"a":1}"#.into(),
                stream_ordering: p1,
            },
            AccountDataRow {
                room_id: Some(owned_room_id!("!r:x.test")),
                data_type: "m.x".into(),
                content: r#"{"r":1}"#.into(),
                stream_ordering: p2,
            },
        ]
    );
    // Overwriting moves the entry to a new position; "since" shows only what changed after it.
    let p4 = store
        .set_account_data(alice, None, "m.x", r#"{"a":2}"#)
        .await
        .unwrap();
    assert!(p4 > p3);
    let since = store.account_data_since(alice, p3).await.unwrap();
    assert_eq!(since.len(), 1);
    assert_eq!(since[0].content, r#"{"a":2}"#);
    assert_eq!(since[0].stream_ordering, p4);
    assert_eq!(store.account_data_since(alice, 0).await.unwrap().len(), 2);
    assert!(
        store
            .account_data_since(alice, p4)
            .await
            .unwrap()
            .is_empty()
    );

    // A read-modify-write that decides not to write changes nothing, not even the stream.
    let unchanged = store
        .update_account_data(alice, None, "m.x", |current| {
            assert_eq!(current, Some(r#"{"a":2}"#));
            None
        })
        .await
        .unwrap();
    assert_eq!(unchanged, None);
    assert_eq!(store.max_account_data_stream().await.unwrap(), p4);
}
on_both_backends!(account_data_round_trip_and_stream);

async fn concurrent_writers_get_distinct_positions(test: TestStore) {
    let store = test.store.clone();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let user = ruma::OwnedUserId::try_from(format!("@u{}:x.test", i % 3)).unwrap();
            store
                .set_account_data(&user, None, &format!("t.{i}"), "{}")
                .await
                .unwrap()
        }));
    }
    let mut positions = BTreeSet::new();
    for task in tasks {
        assert!(positions.insert(task.await.unwrap()), "duplicate position");
    }
    assert_eq!(positions.len(), 24);
    assert_eq!(
        store.max_account_data_stream().await.unwrap(),
        *positions.last().unwrap()
    );

    // Concurrent read-modify-writes of one entry lose no update.
    let user = user_id!("@counter:x.test");
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update_account_data(user, None, "t.count", |current| {
                    let n: u64 = current.map_or(0, |c| c.parse().unwrap());
                    Some((n + 1).to_string())
                })
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        store
            .account_data(user, None, "t.count")
            .await
            .unwrap()
            .as_deref(),
        Some("16")
    );
}
on_both_backends!(concurrent_writers_get_distinct_positions);

async fn positions_survive_reopening(test: TestStore) {
    let alice = user_id!("@alice:x.test");
    let p1 = test
        .store
        .set_account_data(alice, None, "m.x", "{}")
        .await
        .unwrap();
    drop(test.store);
    let store = test.location.reopen().await.unwrap();
    assert_eq!(store.max_account_data_stream().await.unwrap(), p1);
    let p2 = store
        .set_account_data(alice, None, "m.y", "{}")
        .await
        .unwrap();
    assert!(p2 > p1);
}
on_both_backends!(positions_survive_reopening);

async fn filters(test: TestStore) {
    let store = &test.store;
    let alice = user_id!("@alice:x.test");
    let bob = user_id!("@bob:x.test");
    let a = store.create_filter(alice, r#"{"a":1}"#).await.unwrap();
    let b = store.create_filter(alice, r#"{"b":1}"#).await.unwrap();
    assert_ne!(a, b);
    // The same filter again gets the same id.
    assert_eq!(store.create_filter(alice, r#"{"a":1}"#).await.unwrap(), a);
    assert_eq!(
        store.filter(alice, &a).await.unwrap().as_deref(),
        Some(r#"{"a":1}"#)
    );
    assert_eq!(
        store.filter(alice, &b).await.unwrap().as_deref(),
        Some(r#"{"b":1}"#)
    );
    // Ids are per user: bob's first filter may share alice's id, but not her filter.
    let c = store.create_filter(bob, r#"{"c":1}"#).await.unwrap();
    assert_eq!(
        store.filter(bob, &c).await.unwrap().as_deref(),
        Some(r#"{"c":1}"#)
    );
    assert_eq!(
        store.filter(alice, &c).await.unwrap().as_deref(),
        Some(r#"{"a":1}"#).filter(|_| c == a)
    );
    assert_eq!(store.filter(alice, "nope").await.unwrap(), None);
    assert_eq!(store.filter(alice, "99").await.unwrap(), None);
    // Ids are never handed out twice, also under concurrency.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_filter(alice, &format!(r#"{{"n":{i}}}"#))
                .await
                .unwrap()
        }));
    }
    let mut ids = BTreeSet::from([a, b]);
    for task in tasks {
        assert!(ids.insert(task.await.unwrap()));
    }
}
on_both_backends!(filters);
