//! Account storage tests (users, devices, access tokens), run on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_store::testing::TestStore;
use hearth_store::{NewSession, NewUser, RemoveDevices, StoreError};
use ruma::{OwnedDeviceId, OwnedUserId, device_id, owned_device_id, owned_user_id, user_id};

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

fn user(id: OwnedUserId, admin: bool) -> NewUser {
    NewUser {
        user_id: id,
        password_hash: Some("$argon2id$fake".into()),
        is_admin: admin,
        is_guest: false,
    }
}

fn session(device: OwnedDeviceId, name: Option<&str>, token_hash: &str) -> NewSession {
    NewSession {
        device_id: device,
        display_name: name.map(str::to_owned),
        token_hash: token_hash.into(),
        expires_at_ms: None,
        refresh_token_hash: None,
    }
}

on_both_backends!(create_and_duplicate);
async fn create_and_duplicate(test: TestStore) {
    let store = &test.store;
    let alice = owned_user_id!("@alice:x.test");
    assert!(!store.user_exists(&alice).await.unwrap());
    assert!(store.user(&alice).await.unwrap().is_none());

    store
        .create_user(&user(alice.clone(), true), None)
        .await
        .unwrap();
    assert!(store.user_exists(&alice).await.unwrap());
    let row = store.user(&alice).await.unwrap().unwrap();
    assert_eq!(row.user_id, alice);
    assert_eq!(row.password_hash.as_deref(), Some("$argon2id$fake"));
    assert!(row.is_admin);
    assert!(!row.deactivated);
    assert!(row.created_at_ms > 0);
    // inhibited login: no device was created
    assert!(store.devices(&alice).await.unwrap().is_empty());

    // A second create fails distinguishably and changes nothing, not even with a session.
    let again = store
        .create_user(
            &NewUser {
                user_id: alice.clone(),
                password_hash: None,
                is_admin: false,
                is_guest: false,
            },
            Some(&session(owned_device_id!("DEV"), None, "h-dup")),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let row = store.user(&alice).await.unwrap().unwrap();
    assert_eq!(row.password_hash.as_deref(), Some("$argon2id$fake"));
    assert!(row.is_admin);
    assert!(store.devices(&alice).await.unwrap().is_empty());
    assert!(store.access_token("h-dup").await.unwrap().is_none());

    // Another user is independent.
    let bob = owned_user_id!("@bob:x.test");
    store
        .create_user(&user(bob.clone(), false), None)
        .await
        .unwrap();
    assert!(!store.user(&bob).await.unwrap().unwrap().is_admin);
}

on_both_backends!(sessions_and_tokens);
async fn sessions_and_tokens(test: TestStore) {
    let store = &test.store;
    let alice = owned_user_id!("@alice:x.test");
    store
        .create_user(
            &user(alice.clone(), false),
            Some(&session(owned_device_id!("PHONE"), Some("Phone"), "h1")),
        )
        .await
        .unwrap();

    let owner = store.access_token("h1").await.unwrap().unwrap();
    assert_eq!(owner.user_id, alice);
    assert_eq!(owner.device_id, "PHONE");
    assert!(!owner.is_admin);
    assert!(!owner.deactivated);
    assert!(store.access_token("nope").await.unwrap().is_none());
    let phone = store
        .device(&alice, device_id!("PHONE"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(phone.display_name.as_deref(), Some("Phone"));

    // Signing in to the same device again replaces its token and keeps its name.
    store
        .start_session(
            &alice,
            &session(owned_device_id!("PHONE"), Some("Ignored"), "h2"),
        )
        .await
        .unwrap();
    assert!(store.access_token("h1").await.unwrap().is_none());
    assert_eq!(
        store.access_token("h2").await.unwrap().unwrap().device_id,
        "PHONE"
    );
    let devices = store.devices(&alice).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].display_name.as_deref(), Some("Phone"));

    // A second device; an extra token on it; revoking one token keeps the device.
    store
        .start_session(&alice, &session(owned_device_id!("LAPTOP"), None, "h3"))
        .await
        .unwrap();
    store
        .insert_access_token("h4", &alice, device_id!("LAPTOP"))
        .await
        .unwrap();
    let dup = store
        .insert_access_token("h4", &alice, device_id!("LAPTOP"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert!(store.delete_access_token("h4").await.unwrap());
    assert!(!store.delete_access_token("h4").await.unwrap());
    assert!(store.access_token("h4").await.unwrap().is_none());
    assert!(store.access_token("h3").await.unwrap().is_some());

    // Devices are listed in id order and can be renamed.
    let ids: Vec<_> = store
        .devices(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(ids, ["LAPTOP", "PHONE"]);
    assert!(
        store
            .rename_device(&alice, device_id!("LAPTOP"), Some("Work"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .rename_device(&alice, device_id!("NONE"), Some("x"))
            .await
            .unwrap()
    );
    let laptop = store
        .device(&alice, device_id!("LAPTOP"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(laptop.display_name.as_deref(), Some("Work"));

    // Revoking all tokens but the phone's keeps every device.
    assert_eq!(
        store
            .delete_user_access_tokens(&alice, Some(device_id!("PHONE")))
            .await
            .unwrap(),
        1
    );
    assert!(store.access_token("h3").await.unwrap().is_none());
    assert!(store.access_token("h2").await.unwrap().is_some());
    assert_eq!(store.devices(&alice).await.unwrap().len(), 2);
    assert_eq!(
        store.delete_user_access_tokens(&alice, None).await.unwrap(),
        1
    );
    assert!(store.access_token("h2").await.unwrap().is_none());

    // A device for a user that does not exist is refused by the foreign key.
    assert!(
        store
            .create_device(user_id!("@ghost:x.test"), device_id!("D"), None)
            .await
            .is_err()
    );
    assert!(
        store
            .create_device(&alice, device_id!("NEW"), Some("New"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_device(&alice, device_id!("NEW"), Some("Other"))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .device(&alice, device_id!("NEW"))
            .await
            .unwrap()
            .unwrap()
            .display_name
            .as_deref(),
        Some("New")
    );
}

on_both_backends!(device_deletion_takes_tokens);
async fn device_deletion_takes_tokens(test: TestStore) {
    let store = &test.store;
    let alice = owned_user_id!("@alice:x.test");
    let bob = owned_user_id!("@bob:x.test");
    store
        .create_user(
            &user(alice.clone(), false),
            Some(&session(owned_device_id!("A1"), None, "a1")),
        )
        .await
        .unwrap();
    for (device, hash) in [("A2", "a2"), ("A3", "a3"), ("A4", "a4")] {
        store
            .start_session(&alice, &session(device.into(), None, hash))
            .await
            .unwrap();
    }
    store
        .insert_access_token("a1-extra", &alice, device_id!("A1"))
        .await
        .unwrap();
    store
        .create_user(
            &user(bob.clone(), false),
            Some(&session(owned_device_id!("A1"), None, "b1")),
        )
        .await
        .unwrap();

    // One device: both of its tokens go, the same device id of another user stays.
    assert!(store.delete_device(&alice, device_id!("A1")).await.unwrap());
    assert!(!store.delete_device(&alice, device_id!("A1")).await.unwrap());
    assert!(store.access_token("a1").await.unwrap().is_none());
    assert!(store.access_token("a1-extra").await.unwrap().is_none());
    assert!(
        store
            .device(&alice, device_id!("A1"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.access_token("b1").await.unwrap().is_some());

    // Several at once; unknown ids are skipped.
    let deleted = store
        .delete_devices(&alice, &["A2".into(), "NOPE".into()])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(store.access_token("a2").await.unwrap().is_none());
    assert!(store.access_token("a3").await.unwrap().is_some());

    // All but one.
    let deleted = store
        .delete_user_devices(&alice, Some(device_id!("A4")))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    assert!(store.access_token("a3").await.unwrap().is_none());
    assert!(store.access_token("a4").await.unwrap().is_some());
    assert_eq!(store.devices(&alice).await.unwrap().len(), 1);

    // All.
    assert_eq!(store.delete_user_devices(&alice, None).await.unwrap(), 1);
    assert!(store.access_token("a4").await.unwrap().is_none());
    assert!(store.devices(&alice).await.unwrap().is_empty());
    assert_eq!(store.devices(&bob).await.unwrap().len(), 1);
}

on_both_backends!(password_and_deactivation);
async fn password_and_deactivation(test: TestStore) {
    let store = &test.store;
    let alice = owned_user_id!("@alice:x.test");
    store
        .create_user(
            &user(alice.clone(), true),
            Some(&session(owned_device_id!("D1"), None, "t1")),
        )
        .await
        .unwrap();
    store
        .start_session(&alice, &session(owned_device_id!("D2"), None, "t2"))
        .await
        .unwrap();

    // Unknown users are reported, not created.
    let ghost = user_id!("@ghost:x.test");
    assert!(
        !store
            .set_password_hash(ghost, Some("h"), RemoveDevices::All)
            .await
            .unwrap()
    );
    assert!(!store.set_deactivated(ghost, true).await.unwrap());
    assert!(!store.user_exists(ghost).await.unwrap());

    // Changing the hash alone signs nobody out.
    assert!(
        store
            .set_password_hash(&alice, Some("new1"), RemoveDevices::None)
            .await
            .unwrap()
    );
    let row = store.user(&alice).await.unwrap().unwrap();
    assert_eq!(row.password_hash.as_deref(), Some("new1"));
    assert_eq!(store.devices(&alice).await.unwrap().len(), 2);

    // Changing it and signing out the other devices keeps only the current one.
    assert!(
        store
            .set_password_hash(
                &alice,
                Some("new2"),
                RemoveDevices::AllExcept(device_id!("D2"))
            )
            .await
            .unwrap()
    );
    assert!(store.access_token("t1").await.unwrap().is_none());
    assert!(store.access_token("t2").await.unwrap().is_some());
    let devices = store.devices(&alice).await.unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].device_id, "D2");

    // Deactivation: flag set, hash gone, devices and tokens gone, id still taken.
    assert!(store.set_deactivated(&alice, true).await.unwrap());
    let row = store.user(&alice).await.unwrap().unwrap();
    assert!(row.deactivated);
    assert!(row.password_hash.is_none());
    assert!(store.access_token("t2").await.unwrap().is_none());
    assert!(store.devices(&alice).await.unwrap().is_empty());
    assert!(store.user_exists(&alice).await.unwrap());
    let again = store.create_user(&user(alice.clone(), false), None).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    // A token issued afterwards still reports the flag, so callers can refuse it.
    store
        .start_session(&alice, &session(owned_device_id!("D3"), None, "t3"))
        .await
        .unwrap();
    assert!(store.access_token("t3").await.unwrap().unwrap().deactivated);
    assert!(store.access_token("t3").await.unwrap().unwrap().is_admin);

    assert!(store.set_deactivated(&alice, false).await.unwrap());
    assert!(!store.user(&alice).await.unwrap().unwrap().deactivated);
}

on_both_backends!(accounts_survive_reopen);
async fn accounts_survive_reopen(test: TestStore) {
    let alice = owned_user_id!("@alice:x.test");
    test.store
        .create_user(
            &user(alice.clone(), false),
            Some(&session(owned_device_id!("D"), Some("Desk"), "tok")),
        )
        .await
        .unwrap();
    let reopened = test.location.reopen().await.unwrap();
    let owner = reopened.access_token("tok").await.unwrap().unwrap();
    assert_eq!(owner.user_id, alice);
    assert_eq!(
        reopened
            .device(&alice, device_id!("D"))
            .await
            .unwrap()
            .unwrap()
            .display_name
            .as_deref(),
        Some("Desk")
    );
}
