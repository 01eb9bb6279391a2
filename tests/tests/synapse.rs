//! Interop with a real Synapse (installed from PyPI by `tests/with-postgres`): a Hearth user
//! and a Synapse user join each other's rooms, in room versions 10 and 12, and talk both
//! ways. Both servers have IP-literal names and TLS certificates from the test CA; each
//! federates only with the other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::Method;
use serde_json::json;

use hearth_tests::api::Api;
use hearth_tests::federation::{Peer, TestCa, free_port, start_peer};
use hearth_tests::synapse::Synapse;
use hearth_tests::{Backend, on_both_backends};

async fn until_seen(api: &Api<'_>, room: &str, body: &str, synapse: &Synapse) {
    for _ in 0..200 {
        let answer = api
            .ok(
                Method::GET,
                &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=30"),
                None,
            )
            .await;
        let seen = answer["chunk"]
            .as_array()
            .is_some_and(|c| c.iter().any(|e| e["content"]["body"] == body));
        if seen {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("Hearth never showed {body:?}\n{}", synapse.log_tail());
}

async fn hearth_and_synapse_join_each_others_rooms(backend: Backend) {
    let ca = TestCa::new();
    let port = free_port();
    let hearth_peer = Peer {
        name: format!("127.0.0.1:{port}"),
        federation: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let synapse = Synapse::start(&ca, &hearth_peer.name).await;
    let synapse_peer = Peer {
        name: synapse.name.clone(),
        federation: synapse.name.parse().unwrap(),
    };
    let server = start_peer(backend, &ca, &hearth_peer, &[&synapse_peer], |_| {}).await;
    let alice = Api::user(&server, "alice").await;
    let sam = synapse.user("sam").await;

    for version in ["10", "12"] {
        // Sam joins Alice's room on Hearth.
        let room = alice
            .create_room_with(json!({ "preset": "public_chat", "room_version": version }))
            .await;
        sam.ok(
            Method::POST,
            &format!(
                "/_matrix/client/v3/join/{room}?server_name={}",
                hearth_peer.name
            ),
            Some(json!({})),
        )
        .await;
        alice
            .send_text(&room, &format!("hello Sam, v{version}"))
            .await;
        sam.until_seen(&room, &format!("hello Sam, v{version}"))
            .await;
        sam.send_text(&room, &format!("hello Alice, v{version}"))
            .await;
        until_seen(&alice, &room, &format!("hello Alice, v{version}"), &synapse).await;

        // Alice joins Sam's room on Synapse.
        let room = sam
            .create_room(json!({ "preset": "public_chat", "room_version": version }))
            .await;
        alice
            .ok(
                Method::POST,
                &format!(
                    "/_matrix/client/v3/join/{room}?server_name={}",
                    synapse.name
                ),
                Some(json!({})),
            )
            .await;
        sam.send_text(&room, &format!("welcome, v{version}")).await;
        until_seen(&alice, &room, &format!("welcome, v{version}"), &synapse).await;
        alice.send_text(&room, &format!("thanks, v{version}")).await;
        sam.until_seen(&room, &format!("thanks, v{version}")).await;

        // Invites both ways, to private rooms: Alice invites Sam, who accepts ...
        let room = alice
            .create_room_with(json!({ "preset": "private_chat", "room_version": version }))
            .await;
        alice
            .ok(
                Method::POST,
                &format!("/_matrix/client/v3/rooms/{room}/invite"),
                Some(json!({ "user_id": sam.user_id })),
            )
            .await;
        sam.ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/join"),
            Some(json!({})),
        )
        .await;
        sam.send_text(&room, &format!("invited in, v{version}"))
            .await;
        until_seen(&alice, &room, &format!("invited in, v{version}"), &synapse).await;

        // ... Sam invites Alice, who accepts one invite and declines another.
        let room = sam
            .create_room(json!({ "preset": "private_chat", "room_version": version }))
            .await;
        let declined = sam
            .create_room(json!({ "preset": "private_chat", "room_version": version }))
            .await;
        for room in [&room, &declined] {
            sam.ok(
                Method::POST,
                &format!("/_matrix/client/v3/rooms/{room}/invite"),
                Some(json!({ "user_id": "@alice:".to_owned() + &hearth_peer.name })),
            )
            .await;
        }
        alice
            .ok(
                Method::POST,
                &format!("/_matrix/client/v3/rooms/{room}/join"),
                Some(json!({})),
            )
            .await;
        alice
            .send_text(&room, &format!("accepted, v{version}"))
            .await;
        sam.until_seen(&room, &format!("accepted, v{version}"))
            .await;
        alice
            .ok(
                Method::POST,
                &format!("/_matrix/client/v3/rooms/{declined}/leave"),
                Some(json!({})),
            )
            .await;
        let alice_id = format!("@alice:{}", hearth_peer.name);
        let member = sam
            .ok(
                Method::GET,
                &format!("/_matrix/client/v3/rooms/{declined}/state/m.room.member/{alice_id}"),
                None,
            )
            .await;
        assert_eq!(member["membership"], "leave", "{member}");
    }
}
on_both_backends!(hearth_and_synapse_join_each_others_rooms);
