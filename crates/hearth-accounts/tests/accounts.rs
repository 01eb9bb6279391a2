//! The accounts service on SQLite and PostgreSQL alike.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_accounts::{
    AccountError, Accounts, DeviceRequest, PasswordHashing, Session, hash_access_token,
};
use hearth_store::testing::{Location, TestStore};
use ruma::{OwnedDeviceId, OwnedUserId, device_id, owned_device_id, owned_server_name, user_id};

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

fn accounts(test: &TestStore) -> Accounts {
    Accounts::new(
        test.store.clone(),
        owned_server_name!("hearth.test"),
        PasswordHashing::insecure_fast_for_tests(),
    )
}

fn device(id: Option<&str>, name: Option<&str>) -> DeviceRequest {
    DeviceRequest {
        device_id: id.map(OwnedDeviceId::from),
        display_name: name.map(str::to_owned),
        inhibit_login: false,
        refresh_token: false,
    }
}

fn no_login() -> DeviceRequest {
    DeviceRequest {
        inhibit_login: true,
        ..DeviceRequest::default()
    }
}

async fn register(accounts: &Accounts, localpart: &str, password: &str) -> Session {
    accounts
        .register(localpart, Some(password), device(None, None), false)
        .await
        .unwrap()
        .session
        .unwrap()
}

on_both_backends!(register_login_authenticate_logout);
async fn register_login_authenticate_logout(test: TestStore) {
    let accounts = accounts(&test);
    let registered = accounts
        .register("alice", Some("pw-1"), device(None, Some("Phone")), false)
        .await
        .unwrap();
    let alice: OwnedUserId = "@alice:hearth.test".try_into().unwrap();
    assert_eq!(registered.user_id, alice);
    let first = registered.session.unwrap();
    assert_eq!(first.user_id, alice);
    // Generated device ids are 10 uppercase letters; tokens carry the prefix.
    assert_eq!(first.device_id.as_str().len(), 10);
    assert!(
        first
            .device_id
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_uppercase())
    );
    assert!(first.access_token.starts_with("hth_"));

    let who = accounts.authenticate(&first.access_token).await.unwrap();
    assert_eq!(who.user_id, alice);
    assert_eq!(who.device_id, first.device_id);
    assert!(!who.is_admin);

    let second = accounts
        .login_password(&alice, "pw-1", device(None, Some("Laptop")))
        .await
        .unwrap();
    assert_ne!(second.device_id, first.device_id);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(
        accounts
            .authenticate(&second.access_token)
            .await
            .unwrap()
            .device_id,
        second.device_id
    );
    let names: Vec<_> = accounts
        .devices(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.display_name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&Some("Phone".into())) && names.contains(&Some("Laptop".into())));

    // Logging out ends that token and its device, nothing else.
    accounts.logout(&first.access_token).await.unwrap();
    assert!(matches!(
        accounts.authenticate(&first.access_token).await,
        Err(AccountError::UnknownToken)
    ));
    assert!(matches!(
        accounts.logout(&first.access_token).await,
        Err(AccountError::UnknownToken)
    ));
    assert!(matches!(
        accounts.device(&alice, &first.device_id).await,
        Err(AccountError::NotFound)
    ));
    assert!(accounts.authenticate(&second.access_token).await.is_ok());
    assert!(matches!(
        accounts.authenticate("hth_not-a-token").await,
        Err(AccountError::UnknownToken)
    ));

    // Logging out everywhere ends the rest.
    let third = accounts
        .login_password(&alice, "pw-1", device(None, None))
        .await
        .unwrap();
    accounts.logout_all(&alice).await.unwrap();
    for token in [&second.access_token, &third.access_token] {
        assert!(matches!(
            accounts.authenticate(token).await,
            Err(AccountError::UnknownToken)
        ));
    }
    assert!(accounts.devices(&alice).await.unwrap().is_empty());
}

on_both_backends!(duplicate_and_invalid_usernames);
async fn duplicate_and_invalid_usernames(test: TestStore) {
    let accounts = accounts(&test);
    assert!(accounts.available("alice").await.unwrap());
    accounts
        .register("alice", Some("pw"), no_login(), true)
        .await
        .unwrap();
    assert!(!accounts.available("alice").await.unwrap());
    let again = accounts
        .register("alice", Some("other"), device(None, None), false)
        .await;
    assert!(matches!(again, Err(AccountError::UserInUse)), "{again:?}");
    // The failed attempt changed nothing: the first password still works, the flag is kept.
    let session = accounts
        .login_password(user_id!("@alice:hearth.test"), "pw", device(None, None))
        .await
        .unwrap();
    assert!(
        accounts
            .authenticate(&session.access_token)
            .await
            .unwrap()
            .is_admin
    );

    // "@" + localpart + ":hearth.test" may be at most 255 bytes: 242 for the localpart.
    let longest = "x".repeat(242);
    let too_long = "x".repeat(243);
    for bad in ["Alice", "al ice", "", "al:ice", "élise", too_long.as_str()] {
        let result = accounts.register(bad, Some("pw"), no_login(), false).await;
        assert!(
            matches!(result, Err(AccountError::InvalidUsername(_))),
            "{bad:?}: {result:?}"
        );
        assert!(
            matches!(
                accounts.available(bad).await,
                Err(AccountError::InvalidUsername(_))
            ),
            "{bad:?}"
        );
    }
    let registered = accounts
        .register(&longest, None, no_login(), false)
        .await
        .unwrap();
    assert_eq!(registered.user_id.as_str().len(), 255);
    assert!(registered.session.is_none());
    accounts
        .register("a.b_c=d-e/f+0", None, no_login(), false)
        .await
        .unwrap();
}

on_both_backends!(bad_logins_look_alike);
async fn bad_logins_look_alike(test: TestStore) {
    let accounts = accounts(&test);
    register(&accounts, "alice", "right").await;
    accounts
        .register("nopass", None, no_login(), false)
        .await
        .unwrap();

    let attempts = [
        (user_id!("@alice:hearth.test"), "wrong"),
        (user_id!("@nobody:hearth.test"), "right"),
        (user_id!("@alice:elsewhere.test"), "right"),
        (user_id!("@nopass:hearth.test"), ""),
    ];
    let mut messages = Vec::new();
    for (user, password) in attempts {
        let result = accounts
            .login_password(user, password, device(None, None))
            .await;
        match result {
            Err(e @ AccountError::Forbidden) => messages.push(e.to_string()),
            other => panic!("{user}: {other:?}"),
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // No device was left behind by the failures.
    assert_eq!(
        accounts
            .devices(user_id!("@alice:hearth.test"))
            .await
            .unwrap()
            .len(),
        1
    );

    let alice = user_id!("@alice:hearth.test");
    assert!(accounts.check_password(alice, "right").await.unwrap());
    assert!(!accounts.check_password(alice, "wrong").await.unwrap());
    assert!(
        !accounts
            .check_password(user_id!("@nobody:hearth.test"), "right")
            .await
            .unwrap()
    );
}

on_both_backends!(tokens_and_passwords_are_stored_hashed);
async fn tokens_and_passwords_are_stored_hashed(test: TestStore) {
    let accounts = accounts(&test);
    let session = register(&accounts, "alice", "correct horse battery").await;

    // The store knows the token only under its hash.
    let store = &test.store;
    assert!(
        store
            .access_token(&session.access_token)
            .await
            .unwrap()
            .is_none()
    );
    let hash = hash_access_token(&session.access_token);
    assert_eq!(hash.len(), 64);
    assert_eq!(
        store.access_token(&hash).await.unwrap().unwrap().device_id,
        session.device_id
    );

    let user = store
        .user(user_id!("@alice:hearth.test"))
        .await
        .unwrap()
        .unwrap();
    let password_hash = user.password_hash.unwrap();
    // The configured cost parameters are the ones used.
    assert!(
        password_hash.starts_with("$argon2id$v=19$m=8,t=1,p=1$"),
        "{password_hash}"
    );
    assert!(!password_hash.contains("correct horse battery"));

    // On SQLite, look at the bytes on disk: the hash is there, the token and password are not.
    if let Location::Sqlite(path) = &test.location {
        let mut bytes = std::fs::read(path).unwrap();
        let wal = path.with_extension("db-wal");
        if let Ok(more) = std::fs::read(&wal) {
            bytes.extend(more);
        }
        let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(contains(&hash), "the scan must be able to see stored data");
        assert!(contains("$argon2id$"));
        assert!(!contains(&session.access_token));
        assert!(!contains(session.access_token.trim_start_matches("hth_")));
        assert!(!contains("correct horse battery"));
    }
}

on_both_backends!(default_hashing_is_owasp_argon2id);
async fn default_hashing_is_owasp_argon2id(test: TestStore) {
    let accounts = Accounts::new(
        test.store.clone(),
        owned_server_name!("hearth.test"),
        PasswordHashing::default(),
    );
    register(&accounts, "alice", "pw").await;
    let hash = test
        .store
        .user(user_id!("@alice:hearth.test"))
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(
        accounts
            .check_password(user_id!("@alice:hearth.test"), "pw")
            .await
            .unwrap()
    );
    // Hashes made with other parameters still verify: each carries its own.
    let cheap = Accounts::new(
        test.store.clone(),
        owned_server_name!("hearth.test"),
        PasswordHashing::insecure_fast_for_tests(),
    );
    assert!(
        cheap
            .check_password(user_id!("@alice:hearth.test"), "pw")
            .await
            .unwrap()
    );
    assert!(
        PasswordHashing {
            memory_kib: 1,
            iterations: 1,
            parallelism: 1
        }
        .validate()
        .is_err()
    );
    assert!(PasswordHashing::default().validate().is_ok());
}

on_both_backends!(deactivation_removes_access);
async fn deactivation_removes_access(test: TestStore) {
    let accounts = accounts(&test);
    let session = register(&accounts, "alice", "pw").await;
    let alice = session.user_id.clone();
    let other = register(&accounts, "bob", "pw").await;

    accounts.deactivate(&alice).await.unwrap();
    assert!(matches!(
        accounts.authenticate(&session.access_token).await,
        Err(AccountError::UnknownToken)
    ));
    assert!(matches!(
        accounts
            .login_password(&alice, "pw", device(None, None))
            .await,
        Err(AccountError::Forbidden)
    ));
    assert!(!accounts.check_password(&alice, "pw").await.unwrap());
    assert!(accounts.devices(&alice).await.unwrap().is_empty());
    // The id stays taken.
    assert!(!accounts.available("alice").await.unwrap());
    assert!(matches!(
        accounts
            .register("alice", Some("pw"), no_login(), false)
            .await,
        Err(AccountError::UserInUse)
    ));
    // Others are untouched.
    assert!(accounts.authenticate(&other.access_token).await.is_ok());
    assert!(matches!(
        accounts.deactivate(user_id!("@nobody:hearth.test")).await,
        Err(AccountError::NotFound)
    ));
}

on_both_backends!(change_password_logs_out_other_devices);
async fn change_password_logs_out_other_devices(test: TestStore) {
    let accounts = accounts(&test);
    let first = register(&accounts, "alice", "old").await;
    let alice = first.user_id.clone();
    let second = accounts
        .login_password(&alice, "old", device(None, None))
        .await
        .unwrap();
    let third = accounts
        .login_password(&alice, "old", device(None, None))
        .await
        .unwrap();

    // Without logout, every device stays.
    accounts
        .change_password(&alice, "middle", false, None)
        .await
        .unwrap();
    for s in [&first, &second, &third] {
        assert!(accounts.authenticate(&s.access_token).await.is_ok());
    }

    // With logout, only the kept device stays.
    accounts
        .change_password(&alice, "new", true, Some(&second.device_id))
        .await
        .unwrap();
    assert!(accounts.authenticate(&second.access_token).await.is_ok());
    for s in [&first, &third] {
        assert!(matches!(
            accounts.authenticate(&s.access_token).await,
            Err(AccountError::UnknownToken)
        ));
    }
    let left: Vec<_> = accounts
        .devices(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(left, std::slice::from_ref(&second.device_id));

    for old in ["old", "middle"] {
        assert!(matches!(
            accounts
                .login_password(&alice, old, device(None, None))
                .await,
            Err(AccountError::Forbidden)
        ));
    }
    assert!(accounts.check_password(&alice, "new").await.unwrap());
    accounts
        .login_password(&alice, "new", device(None, None))
        .await
        .unwrap();

    // Logging out all devices, none kept.
    accounts
        .change_password(&alice, "newer", true, None)
        .await
        .unwrap();
    assert!(accounts.devices(&alice).await.unwrap().is_empty());
    assert!(matches!(
        accounts
            .change_password(user_id!("@nobody:hearth.test"), "x", true, None)
            .await,
        Err(AccountError::NotFound)
    ));
}

on_both_backends!(devices_reuse_rename_delete);
async fn devices_reuse_rename_delete(test: TestStore) {
    let accounts = accounts(&test);
    let first = accounts
        .register(
            "alice",
            Some("pw"),
            device(Some("MYPHONE"), Some("Phone")),
            false,
        )
        .await
        .unwrap()
        .session
        .unwrap();
    let alice = first.user_id.clone();
    assert_eq!(first.device_id, "MYPHONE");

    // Logging in again on the same device replaces its token and keeps its name.
    let again = accounts
        .login_password(&alice, "pw", device(Some("MYPHONE"), Some("Renamed?")))
        .await
        .unwrap();
    assert_eq!(again.device_id, "MYPHONE");
    assert!(matches!(
        accounts.authenticate(&first.access_token).await,
        Err(AccountError::UnknownToken)
    ));
    assert!(accounts.authenticate(&again.access_token).await.is_ok());
    let phone = accounts
        .device(&alice, device_id!("MYPHONE"))
        .await
        .unwrap();
    assert_eq!(phone.display_name.as_deref(), Some("Phone"));
    assert_eq!(accounts.devices(&alice).await.unwrap().len(), 1);

    accounts
        .rename_device(&alice, device_id!("MYPHONE"), Some("Work phone"))
        .await
        .unwrap();
    assert_eq!(
        accounts
            .device(&alice, device_id!("MYPHONE"))
            .await
            .unwrap()
            .display_name
            .as_deref(),
        Some("Work phone")
    );
    assert!(matches!(
        accounts
            .rename_device(&alice, device_id!("NOPE"), Some("x"))
            .await,
        Err(AccountError::NotFound)
    ));

    let tablet = accounts
        .login_password(&alice, "pw", device(Some("TABLET"), None))
        .await
        .unwrap();
    accounts
        .delete_devices(
            &alice,
            &[owned_device_id!("MYPHONE"), owned_device_id!("NOPE")],
        )
        .await
        .unwrap();
    assert!(matches!(
        accounts.authenticate(&again.access_token).await,
        Err(AccountError::UnknownToken)
    ));
    assert!(accounts.authenticate(&tablet.access_token).await.is_ok());
    let left: Vec<_> = accounts
        .devices(&alice)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.device_id)
        .collect();
    assert_eq!(left, [owned_device_id!("TABLET")]);

    // An inhibited registration signs nothing in; a later login does.
    let bob = accounts
        .register("bob", Some("pw"), no_login(), false)
        .await
        .unwrap();
    assert!(bob.session.is_none());
    assert!(accounts.devices(&bob.user_id).await.unwrap().is_empty());
    accounts
        .login_password(&bob.user_id, "pw", device(None, None))
        .await
        .unwrap();
    assert_eq!(accounts.devices(&bob.user_id).await.unwrap().len(), 1);
}

/// A refreshable session: the access token expires and the refresh token, used once, buys a
/// new pair for the same device.
async fn refresh_tokens_rotate(test: TestStore) {
    let accounts = accounts(&test);
    let request = DeviceRequest {
        refresh_token: true,
        ..device(Some("PHONE"), None)
    };
    let registered = accounts
        .register("alice", Some("pw-123456"), request, false)
        .await
        .unwrap();
    let session = registered.session.unwrap();
    let refresh = session
        .refresh_token
        .clone()
        .expect("a refresh token was asked for");
    assert_eq!(
        session.expires_in,
        Some(hearth_accounts::ACCESS_TOKEN_LIFETIME)
    );
    assert!(accounts.authenticate(&session.access_token).await.is_ok());

    let next = accounts.refresh(&refresh).await.unwrap();
    assert_eq!(
        (next.user_id.as_str(), next.device_id.as_str()),
        ("@alice:hearth.test", "PHONE")
    );
    assert!(matches!(
        accounts.authenticate(&session.access_token).await,
        Err(AccountError::UnknownToken)
    ));
    assert!(accounts.authenticate(&next.access_token).await.is_ok());
    assert!(
        matches!(
            accounts.refresh(&refresh).await,
            Err(AccountError::UnknownToken)
        ),
        "retired once the new access token was used"
    );
    let again = accounts
        .refresh(next.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert!(accounts.authenticate(&again.access_token).await.is_ok());

    // An expired access token is a soft logout: the refresh token still works.
    let expired = hearth_store::NewSession {
        device_id: owned_device_id!("PHONE"),
        display_name: None,
        token_hash: hash_access_token("hth_expired"),
        expires_at_ms: Some(1),
        refresh_token_hash: Some(hash_access_token("hth_refresh_me")),
    };
    test.store
        .refresh_session(
            &hash_access_token(again.refresh_token.as_deref().unwrap()),
            &expired,
        )
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        accounts.authenticate("hth_expired").await,
        Err(AccountError::TokenExpired)
    ));
    let revived = accounts.refresh("hth_refresh_me").await.unwrap();
    assert!(accounts.authenticate(&revived.access_token).await.is_ok());

    // Without asking, no refresh token and no expiry.
    let plain = accounts
        .login_password(&registered.user_id, "pw-123456", device(None, None))
        .await
        .unwrap();
    assert!(plain.refresh_token.is_none() && plain.expires_in.is_none());
}
on_both_backends!(refresh_tokens_rotate);
