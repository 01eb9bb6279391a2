//! Simplified sliding sync (MSC4186) driven by matrix-sdk-ui, the engine of Element X: its
//! `SyncService` and `RoomListService` with the configuration Element X runs (two connections,
//! `room-list` and `encryption`, and their required state, timeline limits and extensions). The
//! room list fills in recency order with names, counts and latest events, reorders when an older
//! room gets a message; a room's `Timeline` receives live messages and paginates back to the
//! start. Then the wire format itself: incremental answers after `pos`, and hostile requests.
//! On SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::pin::pin;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use hearth_tests::{Backend, TestServer};
use matrix_sdk::Client;
use matrix_sdk::ruma::OwnedRoomId;
use matrix_sdk::ruma::api::client::room::create_room::v3::{Request as CreateRoom, RoomPreset};
use matrix_sdk::ruma::events::room::message::RoomMessageEventContent;
use matrix_sdk::sliding_sync::VersionBuilder;
use matrix_sdk_ui::eyeball_im::{Vector, VectorDiff};
use matrix_sdk_ui::room_list_service::filters::new_filter_non_left;
use matrix_sdk_ui::room_list_service::{RoomListItem, State as RoomListState};
use matrix_sdk_ui::sync_service::{State as SyncState, SyncService};
use matrix_sdk_ui::timeline::{LatestEventValue, RoomExt};
use serde_json::{Value, json};

use hearth_tests::on_both_backends;

const PASSWORD: &str = "correct horse battery staple";
const PATIENCE: Duration = Duration::from_secs(30);

/// A client that finds sliding sync the way Element X does: from `/versions`.
async fn element_x(server: &TestServer, name: &str) -> Client {
    server.register(name).await.unwrap();
    let client = Client::builder()
        .homeserver_url(&server.base)
        .sliding_sync_version_builder(VersionBuilder::DiscoverNative)
        .build()
        .await
        .unwrap();
    client
        .matrix_auth()
        .login_username(name, PASSWORD)
        .initial_device_display_name("Element X")
        .send()
        .await
        .unwrap();
    client
}

/// Apply room-list diffs until `done` holds.
async fn rooms_until(
    what: &str,
    entries: &mut (impl Stream<Item = Vec<VectorDiff<RoomListItem>>> + Unpin),
    rooms: &mut Vector<RoomListItem>,
    done: impl Fn(&Vector<RoomListItem>) -> bool,
) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !done(rooms) {
            for diff in entries.next().await.expect("room list stream ended") {
                diff.apply(rooms);
            }
        }
    })
    .await;
    let names: Vec<_> = rooms.iter().map(name).collect();
    assert!(
        waited.is_ok(),
        "room list never showed {what}; it shows {names:?}"
    );
}

fn name(item: &RoomListItem) -> String {
    item.cached_display_name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

async fn element_x_first_screen(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = element_x(&server, "alice").await;
    let bob = element_x(&server, "bob").await;
    let sync_service = SyncService::builder(alice.clone()).build().await.unwrap();
    sync_service.start().await;
    assert!(matches!(sync_service.state().get(), SyncState::Running));
    let room_list = sync_service.room_list_service();
    let all_rooms = room_list.all_rooms().await.unwrap();
    let (entries, controller) = all_rooms.entries_with_dynamic_adapters(50);
    assert!(controller.set_filter(Box::new(new_filter_non_left())));
    let mut entries = pin!(entries);
    let mut rooms = Vector::new();
    let mut state = room_list.state();
    tokio::time::timeout(PATIENCE, async {
        while state.next().await != Some(RoomListState::Running) {}
    })
    .await
    .expect("the room list service never ran");

    // Two rooms, the older first; Bob joins both.
    let mut ids: Vec<OwnedRoomId> = Vec::new();
    for title in ["Room one", "Room two"] {
        let mut request = CreateRoom::new();
        request.name = Some(title.to_owned());
        request.preset = Some(RoomPreset::PublicChat);
        let room = alice.create_room(request).await.unwrap();
        bob.join_room_by_id(room.room_id()).await.unwrap();
        ids.push(room.room_id().to_owned());
        // The SDK orders rooms by their latest events' timestamps, in milliseconds.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (one, two) = (ids[0].clone(), ids[1].clone());
    rooms_until(
        "both rooms, the newer first, with two members each",
        &mut entries,
        &mut rooms,
        |rooms| {
            rooms.len() == 2
                && name(&rooms[0]) == "Room two"
                && name(&rooms[1]) == "Room one"
                && rooms.iter().all(|r| r.joined_members_count() == 2)
        },
    )
    .await;

    // A message in the older room brings it to the top, as its latest event, counted unread.
    let bobs_one = bob.get_room(&one).unwrap();
    bobs_one
        .send(RoomMessageEventContent::text_plain("hello from bob"))
        .await
        .unwrap();
    rooms_until("Room one on top", &mut entries, &mut rooms, |rooms| {
        rooms.front().is_some_and(|r| r.room_id() == one)
            && rooms[0].unread_notification_counts().notification_count == 1
    })
    .await;
    let room = room_list.room(&one).unwrap();
    let latest = tokio::time::timeout(PATIENCE, async {
        loop {
            if let LatestEventValue::Remote {
                content, sender, ..
            } = room.latest_event().await
                && content
                    .as_message()
                    .is_some_and(|m| m.body() == "hello from bob")
            {
                return sender;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("Room one's latest event never became Bob's message");
    assert_eq!(latest, *bob.user_id().unwrap());
    assert_eq!(rooms[1].room_id(), two);

    // Opening the room: a subscription and a Timeline, live messages, then the history.
    for n in 0..25 {
        bobs_one
            .send(RoomMessageEventContent::text_plain(format!("history {n}")))
            .await
            .unwrap();
    }
    room_list.subscribe_to_rooms(&[&one]).await;
    let timeline = room.timeline().await.unwrap();
    let (mut items, stream) = timeline.subscribe().await;
    let mut stream = pin!(stream);
    bobs_one
        .send(RoomMessageEventContent::text_plain("live one"))
        .await
        .unwrap();
    let bodies = |items: &Vector<std::sync::Arc<matrix_sdk_ui::timeline::TimelineItem>>| {
        items
            .iter()
            .filter_map(|i| i.as_event())
            .filter(|e| e.is_remote_event())
            .filter_map(|e| e.content().as_message().map(|m| m.body().to_owned()))
            .collect::<Vec<_>>()
    };
    tokio::time::timeout(PATIENCE, async {
        while !bodies(&items).iter().any(|b| b == "live one") {
            for diff in stream.next().await.unwrap() {
                diff.apply(&mut items);
            }
        }
    })
    .await
    .expect("the timeline never received the live message");
    let mut reached_start = false;
    for _ in 0..20 {
        if timeline.paginate_backwards(10).await.unwrap() {
            reached_start = true;
            break;
        }
    }
    assert!(
        reached_start,
        "back-pagination never reached the room's start"
    );
    let items = timeline.items().await;
    let bodies = bodies(&items);
    let expected: Vec<String> = std::iter::once("hello from bob".to_owned())
        .chain((0..25).map(|n| format!("history {n}")))
        .chain(std::iter::once("live one".to_owned()))
        .collect();
    assert_eq!(
        bodies, expected,
        "the timeline is the room's whole history, in order"
    );
    // The room's creation is at the start of it (the last page may land after the call).
    let has_creation = |items: &Vector<std::sync::Arc<matrix_sdk_ui::timeline::TimelineItem>>| {
        items.iter().filter_map(|i| i.as_event()).any(|e| {
            matches!(
                e.content(),
                matrix_sdk_ui::timeline::TimelineItemContent::OtherState(s)
                    if s.state_key().is_empty() && format!("{:?}", s.content()).contains("RoomCreate")
            )
        })
    };
    let created = tokio::time::timeout(PATIENCE, async {
        while !has_creation(&timeline.items().await) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        created.is_ok(),
        "the room's creation is not in the paginated timeline"
    );

    // The encryption connection ran too: Alice's device keys reached the server.
    let me = alice.user_id().unwrap().to_string();
    let device = alice.device_id().unwrap().to_string();
    let keys: Value = reqwest::Client::new()
        .post(server.url("/_matrix/client/v3/keys/query"))
        .bearer_auth(alice.access_token().unwrap())
        .json(&json!({"device_keys": { me.clone(): [] }}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys["device_keys"][&me][&device]["keys"].is_object(),
        "Alice's device keys were not uploaded: {keys}"
    );
    sync_service.stop().await;
}
on_both_backends!(element_x_first_screen);

/// POST a sliding sync request; the status and body.
async fn sliding(server: &TestServer, token: &str, query: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!(
            "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync{query}"
        )))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn send_text(server: &TestServer, token: &str, room: &str, body: &str, txn: &str) {
    let response = reqwest::Client::new()
        .put(server.url(&format!(
            "/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"
        )))
        .bearer_auth(token)
        .json(&json!({"msgtype": "m.text", "body": body}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn create_room(server: &TestServer, token: &str, name: &str) -> String {
    create_room_with(server, token, &json!({ "name": name })).await
}

async fn create_room_with(server: &TestServer, token: &str, body: &Value) -> String {
    let response: Value = reqwest::Client::new()
        .post(server.url("/_matrix/client/v3/createRoom"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["room_id"].as_str().unwrap().to_owned()
}

fn room_list_request(limit: u64) -> Value {
    json!({
        "conn_id": "room-list",
        "lists": {"all_rooms": {
            "ranges": [[0, 19]],
            "timeline_limit": limit,
            "required_state": [["m.room.name", ""], ["m.room.member", "$LAZY"], ["m.room.member", "$ME"]],
        }},
        "extensions": {"e2ee": {"enabled": true}, "to_device": {"enabled": true}},
    })
}

/// After `pos`, an answer carries only the rooms with news, and only the news.
async fn incremental_answers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.register("alice").await.unwrap();
    let quiet = create_room(&server, &alice, "Quiet").await;
    let busy = create_room(&server, &alice, "Busy").await;
    send_text(&server, &alice, &busy, "first", "t1").await;

    let (status, first) = sliding(&server, &alice, "?timeout=30000", &room_list_request(5)).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["lists"]["all_rooms"]["count"], 2);
    let rooms = first["rooms"].as_object().unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[&busy]["name"], "Busy");
    assert_eq!(rooms[&busy]["initial"], true);
    assert!(rooms[&busy]["bump_stamp"].as_u64() > rooms[&quiet]["bump_stamp"].as_u64());
    assert_eq!(
        rooms[&busy]["timeline"].as_array().unwrap().last().unwrap()["content"]["body"],
        "first"
    );
    // `$ME` and `$LAZY`: Alice's own member event is there, and the name.
    let state_types: Vec<&str> = rooms[&busy]["required_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(state_types.contains(&"m.room.name") && state_types.contains(&"m.room.member"));
    assert!(
        !state_types.contains(&"m.room.create"),
        "only what was asked for"
    );
    assert!(first["extensions"]["e2ee"]["device_one_time_keys_count"]["signed_curve25519"] == 0);
    assert!(first["extensions"]["to_device"]["next_batch"].is_string());
    let pos = first["pos"].as_str().unwrap().to_owned();

    // Nothing new: the long-poll waits its timeout and answers without rooms.
    let (status, idle) = sliding(
        &server,
        &alice,
        &format!("?pos={pos}&timeout=300"),
        &room_list_request(5),
    )
    .await;
    assert_eq!(status, 200, "{idle}");
    assert!(
        idle["rooms"].as_object().is_none_or(|r| r.is_empty()),
        "{idle}"
    );
    let pos = idle["pos"].as_str().unwrap().to_owned();

    // A message wakes the long-poll; only its room comes, with only the new event, live.
    let waiting = {
        let (token, pos) = (alice.clone(), pos.clone());
        let base = server.base.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!(
                    "{base}/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?pos={pos}&timeout=20000"
                ))
                .bearer_auth(token)
                .json(&room_list_request(5))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    send_text(&server, &alice, &quiet, "news", "t2").await;
    let news = tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap()
        .unwrap();
    let rooms = news["rooms"].as_object().unwrap();
    assert_eq!(rooms.keys().collect::<Vec<_>>(), vec![&quiet], "{news}");
    let room = &rooms[&quiet];
    assert!(room.get("initial").is_none_or(|i| i == false), "{room}");
    let timeline = room["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 1, "{room}");
    assert_eq!(timeline[0]["content"]["body"], "news");
    assert_eq!(room["num_live"], 1);
    assert!(room["bump_stamp"].as_u64() > first["rooms"][&busy]["bump_stamp"].as_u64());
    let newest = news["pos"].as_str().unwrap().to_owned();

    // The response before the newest may be retried (it was perhaps lost); older ones not.
    let (status, retried) = sliding(
        &server,
        &alice,
        &format!("?pos={pos}&timeout=0"),
        &room_list_request(5),
    )
    .await;
    assert_eq!(status, 200, "{retried}");
    assert!(retried["rooms"].get(&quiet).is_some(), "{retried}");
    let (status, error) = sliding(
        &server,
        &alice,
        &format!("?pos={}&timeout=0", first["pos"].as_str().unwrap()),
        &room_list_request(5),
    )
    .await;
    assert_eq!((status, &error["errcode"]), (400, &json!("M_UNKNOWN_POS")));
    let _ = newest;

    // Room type filters: a space is in `room_types: ["m.space"]` lists only.
    let space = create_room_with(
        &server,
        &alice,
        &json!({"name": "Space", "creation_content": {"type": "m.space"}}),
    )
    .await;
    let lists = json!({"lists": {
        "rooms": {"ranges": [[0, 9]], "timeline_limit": 0, "filters": {"not_room_types": ["m.space"]}},
        "spaces": {"ranges": [[0, 9]], "timeline_limit": 0, "filters": {"room_types": ["m.space"]}},
    }});
    let (status, body) = sliding(&server, &alice, "", &lists).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lists"]["rooms"]["count"], 2, "{body}");
    assert_eq!(body["lists"]["spaces"]["count"], 1, "{body}");
    assert!(body["rooms"].get(&space).is_some());

    // To-device messages come `limit` at a time, acknowledged by the next `since`.
    let http = reqwest::Client::new();
    let whoami: Value = http
        .get(server.url("/_matrix/client/v3/account/whoami"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (me, device) = (
        whoami["user_id"].as_str().unwrap(),
        whoami["device_id"].as_str().unwrap(),
    );
    for n in 0..3 {
        let response = http
            .put(server.url(&format!("/_matrix/client/v3/sendToDevice/m.test/td{n}")))
            .bearer_auth(&alice)
            .json(&json!({"messages": { me: { device: {"n": n} } }}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let to_device = |since: Option<&str>| {
        let mut extension = json!({"enabled": true, "limit": 2});
        if let Some(since) = since {
            extension["since"] = json!(since);
        }
        json!({"conn_id": "to-device", "extensions": {"to_device": extension}})
    };
    let (status, body) = sliding(&server, &alice, "", &to_device(None)).await;
    assert_eq!(status, 200, "{body}");
    let batch = &body["extensions"]["to_device"];
    let got: Vec<&Value> = batch["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["content"]["n"])
        .collect();
    assert_eq!(got, vec![&json!(0), &json!(1)], "{body}");
    let since = batch["next_batch"].as_str().unwrap().to_owned();
    let (status, body) = sliding(&server, &alice, "", &to_device(Some(&since))).await;
    assert_eq!(status, 200, "{body}");
    let got: Vec<&Value> = body["extensions"]["to_device"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["content"]["n"])
        .collect();
    assert_eq!(got, vec![&json!(2)], "{body}");
}
on_both_backends!(incremental_answers);

/// Absurd requests get a Matrix error or a bounded answer, never a panic or an unbounded one.
async fn hostile_requests(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.register("alice").await.unwrap();
    let mallory = server.register("mallory").await.unwrap();
    let room = create_room(&server, &alice, "Big").await;
    for n in 0..120 {
        send_text(&server, &alice, &room, &format!("m{n}"), &format!("t{n}")).await;
    }
    let invalid = |(status, body): (u16, Value)| {
        assert_eq!(
            (status, &body["errcode"]),
            (400, &json!("M_INVALID_PARAM")),
            "{body}"
        );
    };

    let inverted = json!({"lists": {"l": {"ranges": [[10, 2]], "timeline_limit": 1}}});
    invalid(sliding(&server, &alice, "", &inverted).await);
    let lists: serde_json::Map<String, Value> = (0..5_000)
        .map(|n| {
            (
                format!("l{n}"),
                json!({"ranges": [[0, 0]], "timeline_limit": 1}),
            )
        })
        .collect();
    invalid(sliding(&server, &alice, "", &json!({ "lists": lists })).await);
    let subscriptions: serde_json::Map<String, Value> = (0..5_000)
        .map(|n| (format!("!r{n}:hearth.test"), json!({"timeline_limit": 1})))
        .collect();
    invalid(
        sliding(
            &server,
            &alice,
            "",
            &json!({ "room_subscriptions": subscriptions }),
        )
        .await,
    );

    let unsubscribe: Vec<String> = (0..5_000).map(|n| format!("!r{n}:hearth.test")).collect();
    invalid(
        sliding(
            &server,
            &alice,
            "",
            &json!({ "unsubscribe_rooms": unsubscribe }),
        )
        .await,
    );
    let tags: Vec<String> = (0..5_000).map(|n| format!("tag{n}")).collect();
    let many_tags = json!({"lists": {"l": {"ranges": [[0, 0]], "timeline_limit": 1, "filters": {"tags": tags}}}});
    invalid(sliding(&server, &alice, "", &many_tags).await);

    // Absurd ranges and timeline limits are served, bounded.
    let huge = json!({"lists": {"l": {
        "ranges": [[0, 9_007_199_254_740_991u64]],
        "timeline_limit": 9_007_199_254_740_991u64,
        "required_state": [["*", "*"]],
    }}});
    let (status, body) = sliding(&server, &alice, "", &huge).await;
    assert_eq!(status, 200, "{body}");
    let timeline = body["rooms"][&room]["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), hearth_sync::sliding::MAX_TIMELINE_LIMIT);
    assert_eq!(body["rooms"][&room]["limited"], true);
    assert_eq!(timeline.last().unwrap()["content"]["body"], "m119");
    let alices_pos = body["pos"].as_str().unwrap().to_owned();

    // Another user's pos, a made-up one, or another connection's: unknown.
    for (token, query, conn) in [
        (&mallory, format!("?pos={alices_pos}"), None),
        (&alice, "?pos=999999999".to_owned(), None),
        (&alice, "?pos=not-a-number".to_owned(), None),
        (&alice, format!("?pos={alices_pos}"), Some("other")),
    ] {
        let mut request = json!({"lists": {"l": {"ranges": [[0, 0]], "timeline_limit": 1}}});
        if let Some(conn) = conn {
            request["conn_id"] = json!(conn);
        }
        let (status, body) = sliding(&server, token, &query, &request).await;
        assert_eq!(
            (status, &body["errcode"]),
            (400, &json!("M_UNKNOWN_POS")),
            "{body}"
        );
    }
    // Mallory sees nothing of Alice's room, even by subscribing to it.
    let peek = json!({"room_subscriptions": { room.clone(): {"timeline_limit": 10, "required_state": [["*", "*"]]} }});
    let (status, body) = sliding(&server, &mallory, "", &peek).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["rooms"].get(&room).is_none(), "{body}");
    // Malformed bodies get M_BAD_JSON or M_NOT_JSON.
    let response = reqwest::Client::new()
        .post(server.url("/_matrix/client/unstable/org.matrix.simplified_msc3575/sync"))
        .bearer_auth(&alice)
        .body("{\"lists\": 12")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        ["M_BAD_JSON", "M_NOT_JSON"].contains(&body["errcode"].as_str().unwrap()),
        "{body}"
    );
    // The server still answers.
    let (status, _) = sliding(&server, &alice, "", &room_list_request(1)).await;
    assert_eq!(status, 200);
}
on_both_backends!(hostile_requests);

/// The answer to `body` after `pos`, without waiting (and it must be a 200).
async fn after(server: &TestServer, token: &str, pos: &str, body: &Value) -> Value {
    let (status, answer) = sliding(server, token, &format!("?pos={pos}&timeout=0"), body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

async fn put(server: &TestServer, token: &str, path: &str, body: &Value) {
    let response = reqwest::Client::new()
        .put(server.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "PUT {path}");
}

/// The rooms of a response, sorted.
fn room_ids(body: &Value) -> Vec<String> {
    let mut rooms: Vec<String> = body["rooms"]
        .as_object()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    rooms.sort();
    rooms
}

/// The filters ruma's types leave out (`spaces`, `tags`, `not_tags`), `unsubscribe_rooms`, and
/// a room whose timeline limit grows being sent again with the longer timeline.
async fn filters_subscriptions_and_limits(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.register("alice").await.unwrap();
    let whoami: Value = reqwest::Client::new()
        .get(server.url("/_matrix/client/v3/account/whoami"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let me = whoami["user_id"].as_str().unwrap().to_owned();
    let space = create_room_with(
        &server,
        &alice,
        &json!({"name": "Space", "creation_content": {"type": "m.space"}}),
    )
    .await;
    let child = create_room(&server, &alice, "Child").await;
    let removed = create_room(&server, &alice, "Removed child").await;
    let favourite = create_room(&server, &alice, "Favourite").await;
    let low = create_room(&server, &alice, "Low priority").await;
    let child_event = |via: Value| json!({ "via": via });
    let state = |room: &str, key: &str| {
        format!("/_matrix/client/v3/rooms/{space}/state/m.space.child/{room}{key}")
    };
    put(
        &server,
        &alice,
        &state(&child, ""),
        &child_event(json!(["hearth.test"])),
    )
    .await;
    // A child event without `via` is no child.
    put(
        &server,
        &alice,
        &state(&removed, ""),
        &child_event(json!([])),
    )
    .await;
    let tag =
        |room: &str, tag: &str| format!("/_matrix/client/v3/user/{me}/rooms/{room}/tags/{tag}");
    put(
        &server,
        &alice,
        &tag(&favourite, "m.favourite"),
        &json!({"order": 0.5}),
    )
    .await;
    put(&server, &alice, &tag(&low, "m.lowpriority"), &json!({})).await;
    put(&server, &alice, &tag(&low, "m.favourite"), &json!({})).await;

    let list = |filters: Value| json!({"lists": {"l": {"ranges": [[0, 20]], "timeline_limit": 0, "filters": filters}}});
    let (status, body) = sliding(&server, &alice, "", &list(json!({"spaces": [space]}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["lists"]["l"]["count"], 1, "{body}");
    assert_eq!(room_ids(&body), vec![child.clone()]);
    // A space the user is not in names no rooms.
    let (_, body) = sliding(
        &server,
        &alice,
        "",
        &list(json!({"spaces": ["!nowhere:hearth.test"]})),
    )
    .await;
    assert_eq!(body["lists"]["l"]["count"], 0, "{body}");
    let (_, body) = sliding(&server, &alice, "", &list(json!({"tags": ["m.favourite"]}))).await;
    let mut both = vec![favourite.clone(), low.clone()];
    both.sort();
    assert_eq!(room_ids(&body), both, "{body}");
    // `not_tags` wins over `tags`.
    let filters = json!({"tags": ["m.favourite"], "not_tags": ["m.lowpriority"]});
    let (_, body) = sliding(&server, &alice, "", &list(filters)).await;
    assert_eq!(room_ids(&body), vec![favourite.clone()], "{body}");
    let (_, body) = sliding(
        &server,
        &alice,
        "",
        &list(json!({"not_tags": ["m.favourite"]})),
    )
    .await;
    assert_eq!(body["lists"]["l"]["count"], 3, "{body}");
    // Filters of the wrong type are refused.
    let (status, body) = sliding(&server, &alice, "", &list(json!({"tags": "m.favourite"}))).await;
    assert_eq!(
        (status, &body["errcode"]),
        (400, &json!("M_BAD_JSON")),
        "{body}"
    );

    // A subscription with one event, then three: the room comes again with three.
    for n in 0..4 {
        send_text(&server, &alice, &child, &format!("c{n}"), &format!("c{n}")).await;
    }
    let subscribe = |limit: u64| json!({"conn_id": "subs", "room_subscriptions": { child.clone(): {"timeline_limit": limit} }});
    let (_, first) = sliding(&server, &alice, "", &subscribe(1)).await;
    assert_eq!(
        first["rooms"][&child]["timeline"].as_array().unwrap().len(),
        1,
        "{first}"
    );
    let pos = first["pos"].as_str().unwrap().to_owned();
    let grown = after(&server, &alice, &pos, &subscribe(3)).await;
    let timeline = grown["rooms"][&child]["timeline"].as_array().unwrap();
    let bodies: Vec<&Value> = timeline.iter().map(|e| &e["content"]["body"]).collect();
    assert_eq!(
        bodies,
        vec![&json!("c1"), &json!("c2"), &json!("c3")],
        "{grown}"
    );
    // A shrinking limit sends nothing again.
    let pos = grown["pos"].as_str().unwrap().to_owned();
    let shrunk = after(&server, &alice, &pos, &subscribe(1)).await;
    assert!(shrunk["rooms"].get(&child).is_none(), "{shrunk}");

    // Unsubscribed, the room gets no more updates; subscribed again, it comes whole.
    let pos = shrunk["pos"].as_str().unwrap().to_owned();
    let unsubscribe = json!({"conn_id": "subs", "unsubscribe_rooms": [child.clone()]});
    let body = after(&server, &alice, &pos, &unsubscribe).await;
    let pos = body["pos"].as_str().unwrap().to_owned();
    send_text(&server, &alice, &child, "while away", "away").await;
    let body = after(&server, &alice, &pos, &unsubscribe).await;
    assert!(body["rooms"].get(&child).is_none(), "{body}");
    let pos = body["pos"].as_str().unwrap().to_owned();
    let back = after(&server, &alice, &pos, &subscribe(2)).await;
    let room = &back["rooms"][&child];
    assert_eq!(room["initial"], true, "{back}");
    assert_eq!(room["timeline"].as_array().unwrap().len(), 2, "{back}");
}
on_both_backends!(filters_subscriptions_and_limits);

/// After `pos`, `required_state` carries the state that changed, and only that: a rename comes
/// with its room (with no gap, and across a gap wider than the timeline), a plain message
/// does not bring the name again.
async fn required_state_changes_after_pos(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.register("alice").await.unwrap();
    let room = create_room(&server, &alice, "Before").await;
    let request = json!({
        "conn_id": "state",
        "lists": {"all": {"ranges": [[0, 9]], "timeline_limit": 1, "required_state": [["m.room.name", ""]]}},
    });
    let (_, first) = sliding(&server, &alice, "", &request).await;
    let mut pos = first["pos"].as_str().unwrap().to_owned();
    let names = |body: &Value| -> Vec<String> {
        body["rooms"][&room]["required_state"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "m.room.name")
            .map(|e| e["content"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let rename = |name: &'static str, txn: &'static str| {
        let (server, alice, room) = (&server, alice.clone(), room.clone());
        async move {
            let response = reqwest::Client::new()
                .put(server.url(&format!(
                    "/_matrix/client/v3/rooms/{room}/state/m.room.name/"
                )))
                .bearer_auth(&alice)
                .json(&json!({ "name": name }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{txn}");
        }
    };

    // No gap: the rename is the one new event.
    rename("During", "r1").await;
    let body = after(&server, &alice, &pos, &request).await;
    assert_eq!(names(&body), ["During"], "{body}");
    pos = body["pos"].as_str().unwrap().to_owned();

    // A message alone: the room comes, without the name again.
    send_text(&server, &alice, &room, "hello", "m1").await;
    let body = after(&server, &alice, &pos, &request).await;
    assert!(body["rooms"].get(&room).is_some(), "{body}");
    assert!(names(&body).is_empty(), "{body}");
    pos = body["pos"].as_str().unwrap().to_owned();

    // A gap: the rename is older than the one event the timeline carries.
    rename("After", "r2").await;
    send_text(&server, &alice, &room, "one", "m2").await;
    send_text(&server, &alice, &room, "two", "m3").await;
    let body = after(&server, &alice, &pos, &request).await;
    assert_eq!(body["rooms"][&room]["limited"], true, "{body}");
    assert_eq!(names(&body), ["After"], "{body}");
}
on_both_backends!(required_state_changes_after_pos);
