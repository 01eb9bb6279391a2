//! Hearth driven by matrix-sdk, the Rust SDK inside Element X: two users log in, create and
//! join rooms, talk, set names and topics, type, redact, paginate history, leave, kick and ban,
//! and each sees the other through /sync. On SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_tests::{Backend, TestServer};
use matrix_sdk::config::SyncSettings;
use matrix_sdk::room::MessagesOptions;
use matrix_sdk::ruma::api::client::receipt::create_receipt::v3::ReceiptType;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::events::ignored_user_list::IgnoredUserListEventContent;
use matrix_sdk::ruma::events::receipt::ReceiptThread;
use matrix_sdk::ruma::events::room::member::{MembershipState, OriginalSyncRoomMemberEvent};
use matrix_sdk::ruma::events::room::message::{
    OriginalSyncRoomMessageEvent, RoomMessageEventContent,
};
use matrix_sdk::ruma::events::tag::{TagInfo, TagName};
use matrix_sdk::ruma::events::typing::SyncTypingEvent;
use matrix_sdk::ruma::{OwnedRoomId, OwnedUserId, RoomId};
use matrix_sdk::{Client, RoomState};

use hearth_tests::on_both_backends;

/// What an event handler recorded.
type Seen<T> = Arc<Mutex<Vec<T>>>;

/// A logged-in matrix-sdk client that records what it sees through sync.
struct User {
    client: Client,
    id: OwnedUserId,
    messages: Seen<(OwnedRoomId, String)>,
    members: Seen<(OwnedRoomId, String, MembershipState)>,
    typing: Seen<(OwnedRoomId, Vec<String>)>,
    settings: SyncSettings,
}

impl User {
    async fn new(server: &TestServer, name: &str) -> Self {
        server.register(name).await.unwrap();
        let client = Client::builder()
            .homeserver_url(&server.base)
            .build()
            .await
            .unwrap();
        client
            .matrix_auth()
            .login_username(name, "correct horse battery staple")
            .initial_device_display_name("matrix-sdk test")
            .send()
            .await
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let seen = messages.clone();
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
        let members = Arc::new(Mutex::new(Vec::new()));
        let seen = members.clone();
        client.add_event_handler(
            move |event: OriginalSyncRoomMemberEvent, room: matrix_sdk::Room| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push((
                        room.room_id().to_owned(),
                        event.state_key.to_string(),
                        event.content.membership.clone(),
                    ));
                }
            },
        );
        let typing = Arc::new(Mutex::new(Vec::new()));
        let seen = typing.clone();
        client.add_event_handler(move |event: SyncTypingEvent, room: matrix_sdk::Room| {
            let seen = seen.clone();
            async move {
                let users = event
                    .content
                    .user_ids
                    .iter()
                    .map(|u| u.to_string())
                    .collect();
                seen.lock()
                    .unwrap()
                    .push((room.room_id().to_owned(), users));
            }
        });
        let id = client.user_id().unwrap().to_owned();
        Self {
            client,
            id,
            messages,
            members,
            typing,
            settings: SyncSettings::default().timeout(Duration::from_millis(500)),
        }
    }

    /// Sync until `done` holds (or give up after a generous number of rounds).
    async fn sync_until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        for _ in 0..40 {
            let response = self.client.sync_once(self.settings.clone()).await.unwrap();
            self.settings = self.settings.clone().token(response.next_batch);
            if done(self) {
                return;
            }
        }
        panic!("{} never saw: {what}", self.id);
    }

    fn saw_message(&self, room: &RoomId, body: &str) -> bool {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .any(|(r, b)| r == room && b == body)
    }

    fn saw_membership(
        &self,
        room: &RoomId,
        user: &OwnedUserId,
        membership: MembershipState,
    ) -> bool {
        self.members
            .lock()
            .unwrap()
            .iter()
            .any(|(r, u, m)| r == room && u == user.as_str() && *m == membership)
    }

    fn room(&self, room: &RoomId) -> matrix_sdk::Room {
        self.client.get_room(room).unwrap()
    }
}

async fn two_users_talk(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut alice = User::new(&server, "alice").await;
    let mut bob = User::new(&server, "bob").await;

    // Alice creates a private room and invites Bob; Bob sees the invite and joins.
    let mut request = CreateRoom::new();
    request.preset = Some(RoomPreset::PrivateChat);
    request.name = Some("Plans".into());
    request.invite = vec![bob.id.clone()];
    let room = alice.client.create_room(request).await.unwrap();
    let room_id = room.room_id().to_owned();
    bob.sync_until("the invite", |b| {
        b.client
            .get_room(&room_id)
            .is_some_and(|r| r.state() == RoomState::Invited)
    })
    .await;
    bob.room(&room_id).join().await.unwrap();
    let bob_id = bob.id.clone();
    alice
        .sync_until("bob's join", |a| {
            a.saw_membership(&room_id, &bob_id, MembershipState::Join)
        })
        .await;

    // They talk.
    alice
        .room(&room_id)
        .send(RoomMessageEventContent::text_plain("hello bob"))
        .await
        .unwrap();
    bob.sync_until("alice's message", |b| b.saw_message(&room_id, "hello bob"))
        .await;
    let reply = bob
        .room(&room_id)
        .send(RoomMessageEventContent::text_plain("hi alice"))
        .await
        .unwrap();
    alice
        .sync_until("bob's reply", |a| a.saw_message(&room_id, "hi alice"))
        .await;

    // Name and topic changes reach the other side.
    alice
        .room(&room_id)
        .set_name("Weekend plans".into())
        .await
        .unwrap();
    alice.room(&room_id).set_room_topic("hiking").await.unwrap();
    bob.sync_until("the new name and topic", |b| {
        let room = b.room(&room_id);
        room.name().as_deref() == Some("Weekend plans") && room.topic().as_deref() == Some("hiking")
    })
    .await;

    // Typing.
    bob.room(&room_id).typing_notice(true).await.unwrap();
    let bob_name = bob.id.to_string();
    alice
        .sync_until("bob typing", |a| {
            a.typing
                .lock()
                .unwrap()
                .iter()
                .any(|(r, users)| r == &room_id && users.contains(&bob_name))
        })
        .await;

    // Redaction: Bob redacts his reply; history shows it redacted.
    bob.room(&room_id)
        .redact(&reply.response.event_id, Some("typo"), None)
        .await
        .unwrap();
    let page = alice
        .room(&room_id)
        .messages(MessagesOptions::backward())
        .await
        .unwrap();
    let redacted = page
        .chunk
        .iter()
        .map(|e| e.raw().deserialize_as::<serde_json::Value>().unwrap())
        .find(|e| e["event_id"] == reply.response.event_id.as_str())
        .expect("the reply is in history");
    assert_eq!(
        redacted["content"],
        serde_json::json!({}),
        "redacted content is pruned"
    );
    assert!(redacted["unsigned"]["redacted_because"].is_object());
    // Paginating back reaches the room's creation.
    let types: Vec<String> = page
        .chunk
        .iter()
        .map(|e| e.raw().get_field::<String>("type").unwrap().unwrap())
        .collect();
    assert!(types.contains(&"m.room.message".to_owned()));

    // Bob leaves; Alice sees it.
    bob.room(&room_id).leave().await.unwrap();
    alice
        .sync_until("bob's leave", |a| {
            a.saw_membership(&room_id, &bob_id, MembershipState::Leave)
        })
        .await;
    bob.sync_until("the room as left", |b| {
        b.room(&room_id).state() == RoomState::Left
    })
    .await;
}
on_both_backends!(two_users_talk);

async fn moderation_and_history(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut alice = User::new(&server, "alice").await;
    let mut bob = User::new(&server, "bob").await;

    let mut request = CreateRoom::new();
    request.preset = Some(RoomPreset::PublicChat);
    let room = alice.client.create_room(request).await.unwrap();
    let room_id = room.room_id().to_owned();
    bob.client.join_room_by_id(&room_id).await.unwrap();
    for i in 0..30 {
        alice
            .room(&room_id)
            .send(RoomMessageEventContent::text_plain(format!("message {i}")))
            .await
            .unwrap();
    }
    // An initial sync is limited; the rest comes from /messages.
    bob.sync_until("the last message", |b| {
        b.saw_message(&room_id, "message 29")
    })
    .await;
    let mut bodies = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let options = MessagesOptions::backward().from(from.as_deref());
        let page = bob.room(&room_id).messages(options).await.unwrap();
        for event in &page.chunk {
            let event = event.raw().deserialize_as::<serde_json::Value>().unwrap();
            if let Some(body) = event["content"]["body"].as_str() {
                bodies.push(body.to_owned());
            }
        }
        match page.end {
            Some(end) if !page.chunk.is_empty() => from = Some(end),
            _ => break,
        }
    }
    let expected: Vec<String> = (0..30).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(bodies, expected, "newest first, every message exactly once");

    // Kick, then ban: Bob can't come back until unbanned.
    let bob_id = bob.id.clone();
    alice
        .room(&room_id)
        .kick_user(&bob_id, Some("cool off"))
        .await
        .unwrap();
    bob.sync_until("being kicked", |b| {
        b.room(&room_id).state() == RoomState::Left
    })
    .await;
    bob.client.join_room_by_id(&room_id).await.unwrap();
    alice
        .room(&room_id)
        .ban_user(&bob_id, Some("spam"))
        .await
        .unwrap();
    assert!(
        bob.client.join_room_by_id(&room_id).await.is_err(),
        "banned users can't rejoin"
    );
    alice
        .room(&room_id)
        .unban_user(&bob_id, None)
        .await
        .unwrap();
    bob.client.join_room_by_id(&room_id).await.unwrap();
    alice
        .sync_until("bob back", |a| {
            a.members
                .lock()
                .unwrap()
                .iter()
                .filter(|(r, u, m)| {
                    r == &room_id && u == bob_id.as_str() && *m == MembershipState::Join
                })
                .count()
                >= 3
        })
        .await;
}
on_both_backends!(moderation_and_history);

async fn profiles_receipts_and_account_data(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut alice = User::new(&server, "alice").await;
    let mut bob = User::new(&server, "bob").await;
    let mut request = CreateRoom::new();
    request.preset = Some(RoomPreset::PublicChat);
    let room_id = alice
        .client
        .create_room(request)
        .await
        .unwrap()
        .room_id()
        .to_owned();
    bob.client.join_room_by_id(&room_id).await.unwrap();

    // Alice's new display name reaches Bob through her member event.
    alice
        .client
        .account()
        .set_display_name(Some("Alice Liddell"))
        .await
        .unwrap();
    let alice_id = alice.id.clone();
    bob.sync_until("alice's display name", |b| {
        let room = b.room(&room_id);
        let member = blocking(room.get_member(&alice_id)).ok().flatten();
        member.is_some_and(|m| m.display_name() == Some("Alice Liddell"))
    })
    .await;

    // Bob reads Alice's message; Alice sees his receipt.
    let sent = alice
        .room(&room_id)
        .send(RoomMessageEventContent::text_plain("read this"))
        .await
        .unwrap();
    bob.sync_until("alice's message", |b| b.saw_message(&room_id, "read this"))
        .await;
    bob.room(&room_id)
        .send_single_receipt(
            ReceiptType::Read,
            ReceiptThread::Unthreaded,
            sent.response.event_id.clone(),
        )
        .await
        .unwrap();
    let bob_id = bob.id.clone();
    let mut seen = None;
    for _ in 0..20 {
        alice.sync_until("anything", |_| true).await;
        seen = alice
            .room(&room_id)
            .load_user_receipt(
                matrix_sdk::ruma::events::receipt::ReceiptType::Read,
                ReceiptThread::Unthreaded,
                &bob_id,
            )
            .await
            .unwrap();
        if seen.is_some() {
            break;
        }
    }
    assert_eq!(
        seen.map(|(event, _)| event),
        Some(sent.response.event_id.clone())
    );

    // Tags and global account data come back to their owner through sync.
    alice
        .room(&room_id)
        .set_tag(TagName::Favorite, TagInfo::new())
        .await
        .unwrap();
    alice.client.account().ignore_user(&bob_id).await.unwrap();
    alice
        .sync_until("the tag", |a| {
            let room = a.room(&room_id);
            blocking(room.tags())
                .ok()
                .flatten()
                .is_some_and(|tags| tags.contains_key(&TagName::Favorite))
        })
        .await;
    let ignored = alice
        .client
        .account()
        .account_data::<IgnoredUserListEventContent>()
        .await
        .unwrap()
        .expect("m.ignored_user_list is stored")
        .deserialize()
        .unwrap();
    assert!(ignored.ignored_users.contains_key(&bob_id));
}
on_both_backends!(profiles_receipts_and_account_data);

/// Run a quick store read of the client inside a synchronous `sync_until` condition (the
/// client's store is in memory).
fn blocking<T>(future: impl Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}
