//! World-readable rooms and room previews, as Element Web peeks at a room before joining:
//! anyone reads `/messages`, `/event`, `/context` and `/members` of a `world_readable` room,
//! `initialSync` gives its state and latest messages and `/events?room_id=` its new events;
//! each event is still judged by the history visibility it was sent under. On SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn bodies(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["content"]["body"].as_str())
        .collect()
}

async fn world_readable_rooms_are_previewed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let stranger = Api::user(&server, "stranger").await;
    let room = alice.create_room("public_chat").await;
    alice.send_text(&room, "secret").await;
    let shut = format!("/_matrix/client/v3/rooms/{room}/initialSync");
    let (status, body) = stranger.get(&shut).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "not world-readable yet: {body}"
    );
    let (status, _) = stranger
        .get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    alice
        .set_state(
            &room,
            "m.room.history_visibility",
            "",
            json!({"history_visibility": "world_readable"}),
        )
        .await;
    let hello = alice.send_text(&room, "hello").await;

    // The history endpoints, for someone who never joined.
    let messages = stranger
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"),
            None,
        )
        .await;
    assert_eq!(
        bodies(&messages["chunk"]),
        ["hello"],
        "what was sent while the history was shared stays hidden"
    );
    let event = stranger
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/event/{hello}"),
            None,
        )
        .await;
    assert_eq!(event["content"]["body"], "hello");
    let context = stranger
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/context/{hello}"),
            None,
        )
        .await;
    assert_eq!(context["event"]["event_id"], hello.as_str());
    let members = stranger
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/members"),
            None,
        )
        .await;
    assert!(
        members.to_string().contains("@alice:hearth.test"),
        "{members}"
    );

    // initialSync: state, latest messages, no membership.
    let preview = stranger.ok(Method::GET, &shut, None).await;
    assert_eq!(preview["room_id"], room.as_str());
    assert_eq!(bodies(&preview["messages"]["chunk"]), ["hello"]);
    assert!(preview.get("membership").is_none(), "{preview}");
    assert_eq!(preview["visibility"], "private");
    let types: Vec<&str> = preview["state"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    for kind in [
        "m.room.create",
        "m.room.history_visibility",
        "m.room.member",
    ] {
        assert!(types.contains(&kind), "{kind} missing from {types:?}");
    }
    let end = preview["messages"]["end"].as_str().unwrap().to_owned();

    // /events: nothing new within the timeout, then a new event wakes the wait.
    let events = |from: &str, timeout: u64| {
        format!("/_matrix/client/v3/events?room_id={room}&from={from}&timeout={timeout}")
    };
    let quiet = stranger.ok(Method::GET, &events(&end, 100), None).await;
    assert!(bodies(&quiet["chunk"]).is_empty(), "{quiet}");
    assert_eq!(quiet["end"], end.as_str());
    let long_poll = events(&end, 10_000);
    let waiting = stranger.ok(Method::GET, &long_poll, None);
    let sending = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        alice.send_text(&room, "live").await
    };
    let (woken, _) = tokio::join!(waiting, sending);
    assert_eq!(bodies(&woken["chunk"]), ["live"], "{woken}");
    let next = woken["end"].as_str().unwrap();
    let after = stranger.ok(Method::GET, &events(next, 100), None).await;
    assert!(bodies(&after["chunk"]).is_empty(), "read once: {after}");

    // A member gets their membership too.
    let own = alice.ok(Method::GET, &shut, None).await;
    assert_eq!(own["membership"], "join");
    assert_eq!(
        bodies(&own["messages"]["chunk"]),
        ["secret", "hello", "live"]
    );

    // The deprecated event stream without a room is not served.
    let (status, _) = stranger.get("/_matrix/client/v3/events").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
on_both_backends!(world_readable_rooms_are_previewed);

/// Guests: off by default; when on, a guest account with no password reads world-readable
/// rooms, joins only rooms with `guest_access: can_join`, calls only the guest endpoints, and
/// is made to leave when the room stops letting guests in; then it upgrades to a full account.
async fn guest_access(backend: Backend) {
    let closed = TestServer::start(backend).await;
    let (status, body) = Api::new(&closed, None)
        .post("/_matrix/client/v3/register?kind=guest", json!({}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN")
    );

    // Guests have their own switch: with registration closed, they still get in.
    let guests_only = TestServer::start_with(backend, |c| {
        c.registration.enabled = false;
        c.registration.guests = true;
    })
    .await;
    let (status, body) = Api::new(&guests_only, None)
        .post("/_matrix/client/v3/register?kind=guest", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = Api::new(&guests_only, None)
        .post(
            "/_matrix/client/v3/register",
            json!({"username": "x", "password": "y", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let server = TestServer::start_with(backend, |c| c.registration.guests = true).await;
    let alice = Api::user(&server, "alice").await;
    // No body at all, as a minimal client sends it.
    let (status, guest) = Api::new(&server, None)
        .raw(
            Method::POST,
            "/_matrix/client/v3/register?kind=guest",
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{guest}");
    let guest_id = guest["user_id"].as_str().unwrap().to_owned();
    let guest = Api::new(&server, guest["access_token"].as_str());
    let whoami = guest
        .ok(Method::GET, "/_matrix/client/v3/account/whoami", None)
        .await;
    assert_eq!(whoami["user_id"], guest_id.as_str());

    // Not on the guest list: refused.
    let (status, body) = guest.post("/_matrix/client/v3/createRoom", json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN")
    );

    // A public room forbids guests by default; a room that allows them can be joined.
    let public = alice.create_room("public_chat").await;
    let (status, body) = guest
        .post(
            &format!("/_matrix/client/v3/rooms/{public}/join"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "{body}"
    );
    alice
        .set_state(
            &public,
            "m.room.guest_access",
            "",
            json!({"guest_access": "can_join"}),
        )
        .await;
    guest.join(&public).await;
    guest.send_text(&public, "hi, guest here").await;
    let sync = guest.sync(None, 0).await;
    assert!(sync["rooms"]["join"].get(&public).is_some(), "{sync}");

    // The room stops letting guests in: the guest is made to leave.
    alice
        .set_state(
            &public,
            "m.room.guest_access",
            "",
            json!({"guest_access": "forbidden"}),
        )
        .await;
    let member = alice.member_event(&public, &guest_id).await;
    assert_eq!(member["membership"], "leave", "{member}");

    // The guest becomes a full account under the same user id, with a password.
    let localpart = guest_id
        .trim_start_matches('@')
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let guest_token = guest.token.clone().unwrap();
    let (status, body) = Api::new(&server, None)
        .post(
            "/_matrix/client/v3/register",
            json!({"guest_access_token": guest_token, "username": "someone-else",
                   "password": "pw", "auth": {"type": "m.login.dummy"}}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_USERNAME"),
        "{body}"
    );
    let upgraded = Api::new(&server, None)
        .ok(
            Method::POST,
            "/_matrix/client/v3/register",
            Some(
                json!({"guest_access_token": guest_token, "username": localpart,
                        "password": "a new password", "auth": {"type": "m.login.dummy"}}),
            ),
        )
        .await;
    assert_eq!(upgraded["user_id"], guest_id.as_str());
    let full = Api::new(&server, upgraded["access_token"].as_str());
    full.ok(
        Method::POST,
        "/_matrix/client/v3/createRoom",
        Some(json!({})),
    )
    .await;
    // The old guest token is a full account's now too.
    guest
        .ok(
            Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({})),
        )
        .await;
    let login = json!({"type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": localpart}, "password": "a new password"});
    Api::new(&server, None)
        .ok(Method::POST, "/_matrix/client/v3/login", Some(login))
        .await;
}
on_both_backends!(guest_access);
