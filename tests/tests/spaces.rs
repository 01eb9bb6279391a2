//! Spaces over HTTP: the room hierarchy, depth first in the spec's order, limited to what the
//! user may see, with pagination. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn create(api: &Api<'_>, body: Value) -> String {
    api.ok(Method::POST, "/_matrix/client/v3/createRoom", Some(body))
        .await["room_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn add_child(api: &Api<'_>, space: &str, child: &str, content: Value) {
    api.ok(
        Method::PUT,
        &format!("/_matrix/client/v3/rooms/{space}/state/m.space.child/{child}"),
        Some(content),
    )
    .await;
}

fn room_ids(body: &Value) -> Vec<&str> {
    body["rooms"]
        .as_array()
        .unwrap_or_else(|| panic!("no rooms: {body}"))
        .iter()
        .map(|r| r["room_id"].as_str().unwrap())
        .collect()
}

async fn hierarchy(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let space = create(
        &alice,
        json!({"preset": "public_chat", "name": "Team", "creation_content": {"type": "m.space"}}),
    )
    .await;
    let general = create(&alice, json!({"preset": "public_chat", "name": "General"})).await;
    let secret = create(&alice, json!({"preset": "private_chat", "name": "Secret"})).await;
    let sub = create(
        &alice,
        json!({"preset": "public_chat", "name": "Sub", "creation_content": {"type": "m.space"}}),
    )
    .await;
    let deep = create(&alice, json!({"preset": "public_chat", "name": "Deep"})).await;
    let gone = create(&alice, json!({"preset": "public_chat", "name": "Gone"})).await;
    let via = json!(["hearth.test"]);
    // `order` sorts first; the rest by the child event's time.
    add_child(&alice, &space, &sub, json!({"via": via})).await;
    add_child(&alice, &space, &secret, json!({"via": via})).await;
    add_child(
        &alice,
        &space,
        &general,
        json!({"via": via, "order": "a", "suggested": true}),
    )
    .await;
    add_child(&alice, &space, &gone, json!({})).await; // no via: not a child
    add_child(&alice, &sub, &deep, json!({"via": via})).await;
    add_child(&alice, &secret, &deep, json!({"via": via})).await;

    let path = format!("/_matrix/client/v1/rooms/{space}/hierarchy");
    // Alice sees everything: the space, then depth first in order.
    let all = alice.ok(Method::GET, &path, None).await;
    assert_eq!(
        room_ids(&all),
        [
            space.as_str(),
            general.as_str(),
            sub.as_str(),
            deep.as_str(),
            secret.as_str()
        ],
        "{all}"
    );
    let root = &all["rooms"][0];
    assert_eq!(root["room_type"], "m.space");
    assert_eq!(root["name"], "Team");
    assert_eq!(root["num_joined_members"], 1);
    assert_eq!(root["children_state"].as_array().unwrap().len(), 3);
    assert_eq!(root["children_state"][0]["state_key"], general.as_str());
    assert!(root["children_state"][0]["origin_server_ts"].is_u64());
    assert!(all.get("next_batch").is_none());

    // Bob is in none of them: the public rooms, not the private one.
    let seen = bob.ok(Method::GET, &path, None).await;
    assert_eq!(
        room_ids(&seen),
        [
            space.as_str(),
            general.as_str(),
            sub.as_str(),
            deep.as_str()
        ],
        "{seen}"
    );
    let shallow = bob
        .ok(Method::GET, &format!("{path}?max_depth=1"), None)
        .await;
    assert_eq!(
        room_ids(&shallow),
        [space.as_str(), general.as_str(), sub.as_str()]
    );
    let suggested = bob
        .ok(Method::GET, &format!("{path}?suggested_only=true"), None)
        .await;
    assert_eq!(room_ids(&suggested), [space.as_str(), general.as_str()]);

    // Pages of two.
    let first = bob.ok(Method::GET, &format!("{path}?limit=2"), None).await;
    assert_eq!(room_ids(&first), [space.as_str(), general.as_str()]);
    let token = first["next_batch"].as_str().unwrap();
    let second = bob
        .ok(Method::GET, &format!("{path}?limit=2&from={token}"), None)
        .await;
    assert_eq!(room_ids(&second), [sub.as_str(), deep.as_str()]);
    assert!(second.get("next_batch").is_none(), "{second}");
    let (status, body) = bob
        .get(&format!("{path}?limit=2&from={token}&max_depth=1"))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    let (status, body) = bob.get(&format!("{path}?from=nonsense")).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    let (status, _) = bob.get(&format!("{path}?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A knock join rule means nothing in a room version without knocking: such a room is as
    // closed as an invite-only one.
    let old = create(
        &alice,
        json!({"preset": "private_chat", "room_version": "6",
               "initial_state": [{"type": "m.room.join_rules", "state_key": "",
                                  "content": {"join_rule": "knock"}}]}),
    )
    .await;
    // A room bob may not see, or that does not exist, has no hierarchy for him.
    for room in [secret.as_str(), old.as_str(), "!nowhere:hearth.test"] {
        let (status, body) = bob
            .get(&format!("/_matrix/client/v1/rooms/{room}/hierarchy"))
            .await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::FORBIDDEN, "M_FORBIDDEN")
        );
    }
}
on_both_backends!(hierarchy);
