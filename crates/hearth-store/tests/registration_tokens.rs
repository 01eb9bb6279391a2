//! Registration token storage: reserving, spending and giving back uses, on SQLite and
//! PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_store::testing::TestStore;
use hearth_store::{RegistrationTokenRow, StoreError};

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

async fn counts(test: &TestStore, token: &str) -> (i64, i64) {
    let row = test.store.registration_token(token).await.unwrap().unwrap();
    (row.pending, row.completed)
}

on_both_backends!(uses_are_reserved_spent_and_given_back);
async fn uses_are_reserved_spent_and_given_back(test: TestStore) {
    let store = &test.store;
    store
        .create_registration_token("two", Some(2), None)
        .await
        .unwrap();
    assert!(matches!(
        store.create_registration_token("two", None, None).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.registration_token("two").await.unwrap(),
        Some(RegistrationTokenRow {
            token: "two".into(),
            uses_allowed: Some(2),
            pending: 0,
            completed: 0,
            expiry_ms: None,
        })
    );
    assert!(store.registration_token("none").await.unwrap().is_none());
    assert!(!store.reserve_registration_token("none").await.unwrap());

    // Two registrations in progress take both uses; a third is refused.
    assert!(store.reserve_registration_token("two").await.unwrap());
    assert!(store.reserve_registration_token("two").await.unwrap());
    assert!(!store.reserve_registration_token("two").await.unwrap());
    assert_eq!(counts(&test, "two").await, (2, 0));
    // One completes, one is abandoned: the abandoned use is free again.
    store.complete_registration_token("two").await.unwrap();
    store.release_registration_token("two").await.unwrap();
    assert_eq!(counts(&test, "two").await, (0, 1));
    assert!(store.reserve_registration_token("two").await.unwrap());
    store.complete_registration_token("two").await.unwrap();
    assert_eq!(counts(&test, "two").await, (0, 2));
    assert!(!store.reserve_registration_token("two").await.unwrap());
    // A release that finds nothing pending leaves 0, never below.
    store.release_registration_token("two").await.unwrap();
    assert_eq!(counts(&test, "two").await, (0, 2));

    // Expired tokens are refused; unlimited ones are not; a restart forgets pending uses.
    store
        .create_registration_token("old", None, Some(1))
        .await
        .unwrap();
    assert!(!store.reserve_registration_token("old").await.unwrap());
    store
        .create_registration_token("open", None, Some(i64::MAX))
        .await
        .unwrap();
    for _ in 0..5 {
        assert!(store.reserve_registration_token("open").await.unwrap());
    }
    store.reset_pending_registration_tokens().await.unwrap();
    assert_eq!(counts(&test, "open").await, (0, 0));
    let all: Vec<_> = store
        .registration_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token)
        .collect();
    assert_eq!(all, ["old", "open", "two"]);
}

on_both_backends!(concurrent_reservations_never_overdraw);
async fn concurrent_reservations_never_overdraw(test: TestStore) {
    let store = test.store.clone();
    store
        .create_registration_token("three", Some(3), None)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.reserve_registration_token("three").await.unwrap() })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        granted += usize::from(task.await.unwrap());
    }
    assert_eq!(granted, 3);
    assert_eq!(counts(&test, "three").await, (3, 0));
}
