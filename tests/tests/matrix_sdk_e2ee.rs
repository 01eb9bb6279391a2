//! End-to-end encryption driven by matrix-sdk (feature `e2e-encryption`), the crypto engine
//! inside Element X: two users talk in an encrypted room and decrypt each other; Alice sets up
//! cross-signing and recovery (secret storage plus key backup); a second device of hers
//! recovers with the recovery key, is cross-signed, decrypts history from the backup and new
//! messages as they come. On SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_tests::{Backend, TestServer};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::events::room::encryption::RoomEncryptionEventContent;
use matrix_sdk::ruma::events::room::message::{
    OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::{AnySyncMessageLikeEvent, AnySyncTimelineEvent, InitialStateEvent};
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId};
use matrix_sdk::{Client, RoomState};

use hearth_tests::on_both_backends;

const PASSWORD: &str = "correct horse battery staple";

/// One logged-in device that records the messages it could read.
struct Device {
    client: Client,
    user: OwnedUserId,
    messages: Arc<Mutex<Vec<(OwnedRoomId, String)>>>,
    settings: SyncSettings,
}

impl Device {
    async fn login(server: &TestServer, name: &str) -> Self {
        let client = Client::builder()
            .homeserver_url(&server.base)
            .build()
            .await
            .unwrap();
        client
            .matrix_auth()
            .login_username(name, PASSWORD)
            .initial_device_display_name(name)
            .send()
            .await
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let seen = messages.clone();
        // Handlers see encrypted messages only once decrypted.
        client.add_event_handler(
            move |event: OriginalSyncRoomMessageEvent, room: matrix_sdk::Room| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push((room.room_id().to_owned(), event.content.body().to_owned()));
                }
            },
        );
        let user = client.user_id().unwrap().to_owned();
        let mut device = Self {
            client,
            user,
            messages,
            settings: SyncSettings::default().timeout(Duration::from_millis(300)),
        };
        // The first sync uploads the device's keys.
        device.sync_once().await;
        device
    }

    async fn sync_once(&mut self) {
        let response = self.client.sync_once(self.settings.clone()).await.unwrap();
        self.settings = self.settings.clone().token(response.next_batch);
    }

    /// Sync until `done` holds.
    async fn sync_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        for _ in 0..60 {
            self.sync_once().await;
            if done(self) {
                return;
            }
        }
        panic!("{} never saw: {what}", self.user);
    }

    fn read(&self, room: &RoomId, body: &str) -> bool {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .any(|(r, b)| r == room && b == body)
    }

    async fn send(&self, room: &RoomId, body: &str) {
        self.client
            .get_room(room)
            .unwrap()
            .send(RoomMessageEventContent::text_plain(body))
            .await
            .unwrap();
    }
}

/// The bodies of the messages of a room that `device` can decrypt from `/messages`.
async fn readable_history(device: &Device, room: &RoomId) -> Vec<String> {
    let room = device.client.get_room(room).unwrap();
    let page = room.messages(MessagesOptions::backward()).await.unwrap();
    page.chunk
        .iter()
        .filter(|event| event.encryption_info().is_some())
        .filter_map(|event| match event.raw().deserialize() {
            Ok(AnySyncTimelineEvent::MessageLike(AnySyncMessageLikeEvent::RoomMessage(m))) => {
                m.as_original().map(|m| m.content.body().to_owned())
            }
            _ => None,
        })
        .collect()
}

async fn encrypted_room_with_recovery(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.register("alice").await.unwrap();
    server.register("bob").await.unwrap();
    let mut alice = Device::login(&server, "alice").await;
    let mut bob = Device::login(&server, "bob").await;

    // An encrypted private room: the server only ever sees ciphertext.
    let mut request = CreateRoom::new();
    request.preset = Some(RoomPreset::PrivateChat);
    request.invite = vec![bob.user.clone()];
    request.initial_state = vec![
        InitialStateEvent::with_empty_state_key(
            RoomEncryptionEventContent::with_recommended_defaults(),
        )
        .to_raw_any(),
    ];
    let room = alice.client.create_room(request).await.unwrap();
    let room_id = room.room_id().to_owned();
    bob.sync_until("the invite", |b| {
        b.client
            .get_room(&room_id)
            .is_some_and(|r| r.state() == RoomState::Invited)
    })
    .await;
    bob.client.get_room(&room_id).unwrap().join().await.unwrap();
    alice
        .sync_until("bob in the room", |a| {
            a.client
                .get_room(&room_id)
                .is_some_and(|r| r.joined_members_count() == 2)
        })
        .await;

    alice.send(&room_id, "the password is swordfish").await;
    bob.sync_until("alice's encrypted message", |b| {
        b.read(&room_id, "the password is swordfish")
    })
    .await;
    bob.send(&room_id, "noted").await;
    alice
        .sync_until("bob's encrypted reply", |a| a.read(&room_id, "noted"))
        .await;
    // What the server stored is ciphertext.
    let stored = server
        .store()
        .room_events_backwards(&room_id_of(&room_id), 0, i64::MAX, 50)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .filter(|e| e.json.contains(r#""type":"m.room.encrypted""#))
            .count()
            >= 2
    );
    assert!(stored.iter().all(|e| !e.json.contains("swordfish")));

    // Alice sets up cross-signing (no password needed the first time) and recovery, which
    // stores her secrets on the server and backs up her room keys.
    alice
        .client
        .encryption()
        .bootstrap_cross_signing(None)
        .await
        .unwrap();
    let recovery_key = alice
        .client
        .encryption()
        .recovery()
        .enable()
        .wait_for_backups_to_upload()
        .await
        .unwrap();
    assert!(
        alice
            .client
            .encryption()
            .backups()
            .fetch_exists_on_server()
            .await
            .unwrap()
    );

    // A new device of Alice's recovers with the key: it gets her cross-signing keys (and so
    // is cross-signed) and the backup key.
    let mut laptop = Device::login(&server, "alice").await;
    laptop
        .client
        .encryption()
        .recovery()
        .recover(&recovery_key)
        .await
        .unwrap();
    let own = laptop
        .client
        .encryption()
        .get_own_device()
        .await
        .unwrap()
        .unwrap();
    assert!(
        own.is_cross_signed_by_owner(),
        "the new device signed itself"
    );
    // Alice's first device sees the new one as verified through cross-signing.
    let laptop_id = laptop.client.device_id().unwrap().to_owned();
    let alice_user = alice.user.clone();
    for _ in 0..60 {
        alice.sync_once().await;
        let device = alice
            .client
            .encryption()
            .get_device(&alice_user, &laptop_id)
            .await
            .unwrap();
        if device.is_some_and(|d| d.is_verified_with_cross_signing()) {
            break;
        }
    }
    let device = alice
        .client
        .encryption()
        .get_device(&alice_user, &laptop_id)
        .await
        .unwrap()
        .unwrap();
    assert!(device.is_verified_with_cross_signing());

    // History from before the new device existed, decrypted with keys from the backup.
    laptop.sync_once().await;
    laptop
        .client
        .encryption()
        .backups()
        .download_room_keys_for_room(&room_id)
        .await
        .unwrap();
    let history = readable_history(&laptop, &room_id).await;
    assert!(
        history.contains(&"the password is swordfish".to_owned()),
        "{history:?}"
    );

    // New messages reach the new device too, from Bob and from Alice's other device.
    bob.sync_once().await;
    bob.send(&room_id, "welcome, laptop").await;
    laptop
        .sync_until("bob's message on the new device", |l| {
            l.read(&room_id, "welcome, laptop")
        })
        .await;
    alice.send(&room_id, "from my phone").await;
    laptop
        .sync_until("alice's message from her other device", |l| {
            l.read(&room_id, "from my phone")
        })
        .await;
}
on_both_backends!(encrypted_room_with_recovery);

fn room_id_of(room: &RoomId) -> ruma::OwnedRoomId {
    ruma::OwnedRoomId::try_from(room.as_str()).unwrap()
}
