//! Federation between real servers: two Hearth processes' worth of servers in this process,
//! each with its own name, database, signing key and TLS federation listener (certificates
//! from a test CA), finding each other through `[federation] overrides`. And the test itself
//! as a server — a partner speaking with a partner's real key, or a stranger — sending signed
//! requests straight to a federation listener.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::Method;
use serde_json::{Value, json};

use hearth_keys::SigningKey;
use hearth_tests::api::{Api, errcode, urlencode};
use hearth_tests::federation::{FakeServer, Peer, TestCa, row_counts, start_peer};
use hearth_tests::{Backend, TestServer, on_both_backends};

/// `a.test` on SQLite and `b.test` on `backend`, partners of each other.
async fn pair(backend: Backend, ca: &TestCa) -> (Peer, TestServer, Peer, TestServer) {
    let (a, b) = (Peer::new("a.test"), Peer::new("b.test"));
    let server_a = start_peer(Backend::Sqlite, ca, &a, &[&b], |_| {}).await;
    let server_b = start_peer(backend, ca, &b, &[&a], |_| {}).await;
    (a, server_a, b, server_b)
}

/// The signing key a server uses, read from its data directory.
fn key_of(server: &TestServer) -> SigningKey {
    let name = server.config.server.server_name.as_str();
    SigningKey::load(name.try_into().unwrap(), &server.config.signing_key_path()).unwrap()
}

async fn partners_answer_queries_about_their_users_and_aliases(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let alice = Api::user(&server_a, "alice").await;
    let bob = Api::user(&server_b, "bob").await;
    bob.ok(
        Method::PUT,
        "/_matrix/client/v3/profile/@bob:b.test/displayname",
        Some(json!({ "displayname": "Bob of B" })),
    )
    .await;
    let room = bob
        .create_room_with(json!({ "room_alias_name": "lounge" }))
        .await;
    let bob_device = bob
        .ok(Method::GET, "/_matrix/client/v3/account/whoami", None)
        .await["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let upload = json!({
        "device_keys": {
            "user_id": "@bob:b.test",
            "device_id": bob_device,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                format!("ed25519:{bob_device}"): "ZWQyNTUxOSBrZXkgb2YgYm9i",
                format!("curve25519:{bob_device}"): "Y3VydmUgb2YgYm9i",
            },
            "signatures": {},
        },
        "one_time_keys": {
            "signed_curve25519:AAAAAQ": { "key": "b25lIHRpbWU" },
            "signed_curve25519:AAAAAg": { "key": "dHdvIHRpbWU" },
        },
    });
    bob.ok(Method::POST, "/_matrix/client/v3/keys/upload", Some(upload))
        .await;

    // Alice's client asks her server for Bob's keys; her server asks his. A stranger's user
    // is a failure, and nothing is sent there.
    let keys = alice
        .ok(
            Method::POST,
            "/_matrix/client/v3/keys/query",
            Some(json!({ "device_keys": { "@bob:b.test": [], "@eve:evil.test": [] } })),
        )
        .await;
    assert!(
        keys["device_keys"]["@bob:b.test"][&bob_device]["keys"].is_object(),
        "{keys}"
    );
    assert_eq!(keys["failures"]["evil.test"]["status"], 403, "{keys}");
    let claimed = alice
        .ok(
            Method::POST,
            "/_matrix/client/v3/keys/claim",
            Some(
                json!({ "one_time_keys": { "@bob:b.test": { &bob_device: "signed_curve25519" } } }),
            ),
        )
        .await;
    let first = claimed["one_time_keys"]["@bob:b.test"][&bob_device]
        .as_object()
        .unwrap_or_else(|| panic!("{claimed}"))
        .clone();
    assert_eq!(first.len(), 1, "{claimed}");

    // Alice's server asks Bob's: a profile, one field of it, an alias.
    let profile = alice
        .ok(Method::GET, "/_matrix/client/v3/profile/@bob:b.test", None)
        .await;
    assert_eq!(profile["displayname"], "Bob of B", "{profile}");
    let name = alice
        .ok(
            Method::GET,
            "/_matrix/client/v3/profile/@bob:b.test/displayname",
            None,
        )
        .await;
    assert_eq!(name["displayname"], "Bob of B");
    let (status, body) = alice.get("/_matrix/client/v3/profile/@nobody:b.test").await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (404, "M_NOT_FOUND"),
        "{body}"
    );
    let alias = alice
        .ok(
            Method::GET,
            &format!(
                "/_matrix/client/v3/directory/room/{}",
                urlencode("#lounge:b.test")
            ),
            None,
        )
        .await;
    assert_eq!(alias["room_id"], room.as_str());
    assert_eq!(alias["servers"], json!(["b.test"]));

    // To check A's signatures, B fetched and kept A's key, checked against A's own signature.
    let keys = server_b
        .store()
        .server_keys("a.test".try_into().unwrap())
        .await
        .unwrap()
        .expect("B keeps A's keys");
    assert_eq!(keys.keys[0].key_id, key_of(&server_a).key_id().as_str());

    // A stranger's users are not asked about: 403, and nothing goes out.
    let (status, body) = alice.get("/_matrix/client/v3/profile/@eve:evil.test").await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (403, "M_FORBIDDEN"),
        "{body}"
    );

    // B's federation listener speaks TLS with the certificate for its name.
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let (status, version) = as_a
        .request(
            &b,
            "b.test",
            Method::GET,
            "/_matrix/federation/v1/version",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(version["server"]["name"], "Hearth");

    // Bob's devices and keys, as B tells A.
    let (status, devices) = as_a
        .request(
            &b,
            "b.test",
            Method::GET,
            "/_matrix/federation/v1/user/devices/@bob:b.test",
            None,
        )
        .await;
    assert_eq!(status, 200, "{devices}");
    assert_eq!(devices["user_id"], "@bob:b.test");
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1, "{devices}");
    assert_eq!(devices["devices"][0]["device_id"], bob_device.as_str());
    assert!(devices["stream_id"].as_u64().unwrap() > 0, "{devices}");
    let (status, keys) = as_a
        .request(
            &b,
            "b.test",
            Method::POST,
            "/_matrix/federation/v1/user/keys/query",
            Some(&json!({ "device_keys": { "@bob:b.test": [], "@alice:a.test": [] } })),
        )
        .await;
    assert_eq!(status, 200, "{keys}");
    assert!(
        keys["device_keys"]["@bob:b.test"][&bob_device].is_object(),
        "{keys}"
    );
    assert!(
        keys["device_keys"].get("@alice:a.test").is_none(),
        "only B's users: {keys}"
    );
    let (status, claimed) = as_a
        .request(
            &b,
            "b.test",
            Method::POST,
            "/_matrix/federation/v1/user/keys/claim",
            Some(&json!({ "one_time_keys": { "@bob:b.test": { &bob_device: "signed_curve25519" } } })),
        )
        .await;
    assert_eq!(status, 200, "{claimed}");
    let second = claimed["one_time_keys"]["@bob:b.test"][&bob_device]
        .as_object()
        .unwrap_or_else(|| panic!("{claimed}"));
    assert_eq!(second.len(), 1, "{claimed}");
    assert_ne!(
        first.keys().next(),
        second.keys().next(),
        "each key is claimed once"
    );
    let (status, body) = as_a
        .request(
            &b,
            "b.test",
            Method::GET,
            "/_matrix/federation/v1/user/devices/@alice:a.test",
            None,
        )
        .await;
    assert_eq!((status.as_u16(), errcode(&body)), (404, "M_NOT_FOUND"));

    // The notary serves B's own key, countersigned, and A's, and no stranger's.
    let (status, notary) = as_a
        .request(
            &b,
            "b.test",
            Method::POST,
            "/_matrix/key/v2/query",
            Some(&json!({ "server_keys": { "b.test": {}, "a.test": {}, "evil.test": {} } })),
        )
        .await;
    assert_eq!(status, 200, "{notary}");
    let servers: Vec<&str> = notary["server_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["server_name"].as_str().unwrap())
        .collect();
    assert_eq!(servers.len(), 2, "{notary}");
    assert!(servers.contains(&"a.test") && servers.contains(&"b.test"));
    let a_keys = notary["server_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["server_name"] == "a.test")
        .unwrap();
    assert!(
        a_keys["signatures"]["a.test"].is_object(),
        "A's own signature is kept"
    );
    assert!(
        a_keys["signatures"]["b.test"].is_object(),
        "B countersigns: {a_keys}"
    );
}
on_both_backends!(partners_answer_queries_about_their_users_and_aliases);

/// Every federation endpoint that takes a signature, with a body where it needs one.
fn signed_endpoints() -> Vec<(Method, &'static str, Option<Value>)> {
    vec![
        (
            Method::GET,
            "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ab.test",
            None,
        ),
        (
            Method::GET,
            "/_matrix/federation/v1/query/directory?room_alias=%23lounge%3Ab.test",
            None,
        ),
        (
            Method::GET,
            "/_matrix/federation/v1/user/devices/@bob:b.test",
            None,
        ),
        (
            Method::POST,
            "/_matrix/federation/v1/user/keys/query",
            Some(json!({ "device_keys": { "@bob:b.test": [] } })),
        ),
        (
            Method::POST,
            "/_matrix/federation/v1/user/keys/claim",
            Some(json!({ "one_time_keys": { "@bob:b.test": { "DEV": "signed_curve25519" } } })),
        ),
        (
            Method::GET,
            "/_matrix/federation/v1/make_leave/!room:b.test/@eve:evil.test",
            None,
        ),
        (
            Method::PUT,
            "/_matrix/federation/v2/send_leave/!room:b.test/$leave",
            Some(json!({})),
        ),
        (
            Method::PUT,
            "/_matrix/federation/v2/invite/!room:evil.test/$invite",
            Some(json!({ "room_version": "10", "event": {}, "invite_room_state": [] })),
        ),
    ]
}

async fn strangers_are_refused_everywhere_and_leave_no_trace(backend: Backend) {
    let ca = TestCa::new();
    let (_a, _server_a, b, server_b) = pair(backend, &ca).await;
    let _bob = Api::user(&server_b, "bob").await;
    let before = row_counts(&server_b).await;

    // A correctly signed request from a server that is not a partner. Its key cannot even be
    // fetched (nothing serves evil.test): a refusal that came after a key fetch would be 401.
    let evil = FakeServer::new("evil.test", &ca, &b);
    for (method, path, body) in signed_endpoints() {
        let (status, answer) = evil
            .request(&b, "b.test", method, path, body.as_ref())
            .await;
        assert_eq!(
            (status.as_u16(), errcode(&answer)),
            (403, "M_FORBIDDEN"),
            "{path}: {answer}"
        );
    }
    // Also on the client listener, where a TLS proxy may forward federation.
    let (method, path, _) = &signed_endpoints()[0];
    let plain = reqwest::Client::new();
    let url = format!("http://{}{path}", server_b.address);
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(&url)
        .body(Vec::new())
        .unwrap();
    let x_matrix = ruma::api::federation::authentication::XMatrix::sign_http_request(
        &request,
        ruma::api::federation::authentication::XMatrixSigningInput::new(
            "evil.test".try_into().unwrap(),
            "b.test".try_into().unwrap(),
            evil.key.pair(),
        ),
    )
    .unwrap();
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from(&x_matrix),
    );
    let response = plain
        .execute(reqwest::Request::try_from(request).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // No signature at all.
    let (status, answer) = FakeServer::new("b.test", &ca, &b)
        .send(
            http::Request::get(format!(
                "https://b.test:{}/_matrix/federation/v1/user/devices/@bob:b.test",
                b.federation.port()
            ))
            .body(Vec::new())
            .unwrap(),
        )
        .await;
    assert_eq!((status.as_u16(), errcode(&answer)), (401, "M_UNAUTHORIZED"));

    // The notary says nothing about strangers, and fetches nothing for them.
    let (status, notary) = evil
        .request(
            &b,
            "b.test",
            Method::GET,
            "/_matrix/key/v2/query/evil.test",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(notary["server_keys"], json!([]));

    assert_eq!(
        row_counts(&server_b).await,
        before,
        "a stranger left a trace"
    );
}
on_both_backends!(strangers_are_refused_everywhere_and_leave_no_trace);

async fn a_partners_requests_must_be_signed_by_it_for_us(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let _bob = Api::user(&server_b, "bob").await;
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let devices = "/_matrix/federation/v1/user/devices/@bob:b.test";

    let (status, _) = as_a.request(&b, "b.test", Method::GET, devices, None).await;
    assert_eq!(status, 200);

    // Signed for another server.
    let (status, answer) = as_a.request(&b, "c.test", Method::GET, devices, None).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (401, "M_UNAUTHORIZED"),
        "{answer}"
    );

    // A's name, a key A does not have.
    let impostor = FakeServer::new("a.test", &ca, &b);
    let (status, answer) = impostor
        .request(&b, "b.test", Method::GET, devices, None)
        .await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (401, "M_UNAUTHORIZED"),
        "{answer}"
    );

    // A's key id, another key's signature.
    let real = key_of(&server_a);
    let forged_key = SigningKey::from_seed(
        "a.test".try_into().unwrap(),
        real.version(),
        [7; 32],
        std::path::Path::new("<test>"),
    )
    .unwrap();
    let forger = FakeServer::with_key(forged_key, &ca, &b);
    let (status, answer) = forger
        .request(&b, "b.test", Method::GET, devices, None)
        .await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (401, "M_UNAUTHORIZED"),
        "{answer}"
    );

    // Signed over one body, sent with another.
    let query = "/_matrix/federation/v1/user/keys/query";
    let url = format!("https://b.test:{}{query}", b.federation.port());
    let signed_body = serde_json::to_vec(&json!({ "device_keys": { "@bob:b.test": [] } })).unwrap();
    let signed = http::Request::post(&url).body(signed_body).unwrap();
    let x_matrix = ruma::api::federation::authentication::XMatrix::sign_http_request(
        &signed,
        ruma::api::federation::authentication::XMatrixSigningInput::new(
            "a.test".try_into().unwrap(),
            "b.test".try_into().unwrap(),
            real.pair(),
        ),
    )
    .unwrap();
    let other_body =
        serde_json::to_vec(&json!({ "device_keys": { "@alice:b.test": [] } })).unwrap();
    let mut tampered = http::Request::post(&url).body(other_body).unwrap();
    tampered.headers_mut().insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from(&x_matrix),
    );
    let (status, answer) = as_a.send(tampered).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (401, "M_UNAUTHORIZED"),
        "{answer}"
    );

    // B knows A's key now, from A itself.
    assert!(
        server_b
            .store()
            .server_keys("a.test".try_into().unwrap())
            .await
            .unwrap()
            .is_some()
    );
}
on_both_backends!(a_partners_requests_must_be_signed_by_it_for_us);

/// With federation off, nothing is asked of anyone, partners or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federation_off_asks_nobody() {
    let ca = TestCa::new();
    let (a, b) = (Peer::new("a.test"), Peer::new("b.test"));
    let server_b = start_peer(Backend::Sqlite, &ca, &b, &[&a], |_| {}).await;
    let server_a = start_peer(Backend::Sqlite, &ca, &a, &[&b], |config| {
        config.federation.mode = Some(hearth_config::FederationMode::Off);
    })
    .await;
    let alice = Api::user(&server_a, "alice").await;
    let _bob = Api::user(&server_b, "bob").await;
    let (status, body) = alice.get("/_matrix/client/v3/profile/@bob:b.test").await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (403, "M_FORBIDDEN"),
        "{body}"
    );
    // And it serves no federation listener.
    assert!(
        server_a
            .server
            .as_ref()
            .unwrap()
            .federation_address
            .is_none()
    );
}

/// A message event of `room` from `sender`, signed by the sender's server with `key`.
fn signed_pdu(key: &SigningKey, room: &str, sender: &str, depth: i64) -> Value {
    let rules = ruma::RoomVersionId::V10.rules().unwrap();
    let value = json!({
        "room_id": room,
        "sender": sender,
        "type": "m.room.message",
        "content": { "msgtype": "m.text", "body": format!("message {depth}") },
        "prev_events": [],
        "auth_events": [],
        "depth": depth,
        "origin_server_ts": 1_700_000_000_000_u64,
    });
    let mut object: ruma::CanonicalJsonObject = serde_json::from_value(value).unwrap();
    ruma::signatures::hash_and_sign_event(
        key.server_name().as_str(),
        key.pair(),
        &mut object,
        &rules.redaction,
    )
    .unwrap();
    serde_json::to_value(&object).unwrap()
}

async fn transactions_are_checked_piece_by_piece(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let bob = Api::user(&server_b, "bob").await;
    let bob_device = bob
        .ok(Method::GET, "/_matrix/client/v3/account/whoami", None)
        .await["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let room = bob
        .create_room_with(json!({ "preset": "public_chat", "room_version": "10" }))
        .await;
    let first = bob.sync(None, 0).await;
    let since = first["next_batch"].as_str().unwrap().to_owned();
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let to_device = |message_id: &str, sender: &str| {
        json!({
            "edu_type": "m.direct_to_device",
            "content": {
                "sender": sender,
                "type": "m.room_key_request",
                "message_id": message_id,
                "messages": { "@bob:b.test": { &bob_device: { "action": "request_cancellation", "request_id": message_id, "requesting_device_id": "ADEV" } } },
            },
        })
    };
    let send = |txn: &str, pdus: Vec<Value>, edus: Vec<Value>| {
        let path = format!("/_matrix/federation/v1/send/{txn}");
        let body = json!({
            "origin": "a.test",
            "origin_server_ts": 1_700_000_000_000_u64,
            "pdus": pdus,
            "edus": edus,
        });
        let as_a = &as_a;
        let b = &b;
        async move {
            as_a.request(b, "b.test", Method::PUT, &path, Some(&body))
                .await
        }
    };

    // A to-device message from a user of A reaches Bob's device, once, however often it is
    // sent; one claiming a user of another server does not.
    let (status, answer) = send(
        "t1",
        vec![],
        vec![
            to_device("m1", "@alice:a.test"),
            to_device("m2", "@eve:evil.test"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = send("t1", vec![], vec![to_device("m1", "@alice:a.test")]).await;
    assert_eq!(status, 200);
    let (status, _) = send("t2", vec![], vec![to_device("m1", "@alice:a.test")]).await;
    assert_eq!(status, 200);
    // The same transaction twice at once: handled once.
    let (first_try, second_try) = tokio::join!(
        send("t1c", vec![], vec![to_device("m9", "@alice:a.test")]),
        send("t1c", vec![], vec![to_device("m9", "@alice:a.test")]),
    );
    assert_eq!(
        (first_try.0, second_try.0),
        (http::StatusCode::OK, http::StatusCode::OK)
    );
    let synced = bob.sync(Some(&since), 0).await;
    let events = synced["to_device"]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{synced}");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["content"]["request_id"] == "m9")
            .count(),
        1,
        "{synced}"
    );
    assert_eq!(events[0]["sender"], "@alice:a.test");
    assert_eq!(events[0]["content"]["request_id"], "m1");

    // Malformed PDUs (a float, a depth past 2^53) among 48 good ones: 200, the good ones
    // accepted, each on its own, and the malformed ones not answered at all (they have no
    // event id to answer under).
    let key_a = key_of(&server_a);
    let state = state_ids(&bob, &room).await;
    let id_of = |kind: &str, key: &str| state[&(kind.to_owned(), key.to_owned())].clone();
    let (create, power, join_rules) = (
        id_of("m.room.create", ""),
        id_of("m.room.power_levels", ""),
        id_of("m.room.join_rules", ""),
    );
    let mut alice = RemoteUser {
        key: &key_a,
        user: "@alice:a.test".into(),
        depth: 100,
    };
    let head = latest(&bob, &room).await[0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (join, join_event) = alice.event(
        &room,
        "m.room.member",
        Some("@alice:a.test"),
        json!({ "membership": "join" }),
        &[&head],
        &[&create, &power, &join_rules],
    );
    let mut pdus = vec![join_event];
    let mut prev = join.clone();
    for n in 1..48 {
        let (id, event) = alice.event(
            &room,
            "m.room.message",
            None,
            json!({ "msgtype": "m.text", "body": format!("good {n}") }),
            &[&prev],
            &[&create, &power, &join],
        );
        pdus.push(event);
        prev = id;
    }
    pdus.insert(
        7,
        json!({ "room_id": room, "type": "m.room.message", "depth": 2.5 }),
    );
    let mut huge = signed_pdu(&key_a, &room, "@alice:a.test", 1);
    huge["depth"] = json!(1_u64 << 60);
    pdus.push(huge);
    assert_eq!(pdus.len(), 50);
    let (status, answer) = send("t3", pdus, vec![]).await;
    assert_eq!(status, 200, "{answer}");
    let results = answer["pdus"].as_object().unwrap();
    assert_eq!(results.len(), 48, "{answer}");
    assert!(results.values().all(|r| *r == json!({})), "{answer}");
    // The synthetic ones that name no auth events are rejected, each on its own.
    let (status, answer) = send(
        "t3b",
        (1..=3)
            .map(|depth| signed_pdu(&key_a, &room, "@alice:a.test", depth))
            .collect(),
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        answer["pdus"]
            .as_object()
            .unwrap()
            .values()
            .all(|r| r["error"].as_str().is_some_and(|e| e.contains("rejected"))),
        "{answer}"
    );
    // A stranger's event in a partner's transaction is refused before any key is fetched.
    let evil = SigningKey::generate("evil.test".try_into().unwrap()).unwrap();
    let (status, answer) = send(
        "t4",
        vec![signed_pdu(&evil, &room, "@eve:evil.test", 1)],
        vec![],
    )
    .await;
    assert_eq!(status, 200);
    let (_, outcome) = answer["pdus"].as_object().unwrap().iter().next().unwrap();
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("not a federation partner"),
        "{answer}"
    );

    // Too much in one transaction, or a transaction in another server's name: 400.
    let many: Vec<Value> = (1..=51)
        .map(|depth| signed_pdu(&key_a, &room, "@alice:a.test", depth))
        .collect();
    let (status, answer) = send("t5", many, vec![]).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (400, "M_INVALID_PARAM"),
        "{answer}"
    );
    let edus: Vec<Value> = (0..101)
        .map(|i| to_device(&format!("x{i}"), "@alice:a.test"))
        .collect();
    let (status, _) = send("t6", vec![], edus).await;
    assert_eq!(status, 400);
    let (status, answer) = as_a
        .request(
            &b,
            "b.test",
            Method::PUT,
            "/_matrix/federation/v1/send/t7",
            Some(&json!({ "origin": "c.test", "origin_server_ts": 1, "pdus": [], "edus": [] })),
        )
        .await;
    assert_eq!(status, 400, "{answer}");

    let seen = latest(&bob, &room).await;
    assert!(
        seen.iter().any(|e| e["content"]["body"] == "good 47"),
        "the good ones are in the room"
    );
}
on_both_backends!(transactions_are_checked_piece_by_piece);

/// A user of a partner server, building and signing its own events for a room of ours, as
/// its server would.
struct RemoteUser<'k> {
    key: &'k SigningKey,
    user: String,
    depth: i64,
}

impl RemoteUser<'_> {
    /// An event (room version 10) and its id.
    fn event(
        &mut self,
        room: &str,
        kind: &str,
        state_key: Option<&str>,
        content: Value,
        prev: &[&str],
        auth: &[&str],
    ) -> (String, Value) {
        let rules = ruma::RoomVersionId::V10.rules().unwrap();
        self.depth += 1;
        let mut value = json!({
            "room_id": room,
            "sender": self.user,
            "type": kind,
            "content": content,
            "prev_events": prev,
            "auth_events": auth,
            "depth": self.depth,
            "origin_server_ts": ruma::MilliSecondsSinceUnixEpoch::now(),
        });
        if let Some(key) = state_key {
            value["state_key"] = json!(key);
        }
        let mut object: ruma::CanonicalJsonObject = serde_json::from_value(value).unwrap();
        ruma::signatures::hash_and_sign_event(
            self.key.server_name().as_str(),
            self.key.pair(),
            &mut object,
            &rules.redaction,
        )
        .unwrap();
        let id = format!(
            "${}",
            ruma::signatures::reference_hash(&object, &rules).unwrap()
        );
        (id, serde_json::to_value(&object).unwrap())
    }
}

/// The event ids of a room's current state, by `type` and `state_key`.
async fn state_ids(
    api: &Api<'_>,
    room: &str,
) -> std::collections::BTreeMap<(String, String), String> {
    let state = api
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/state"),
            None,
        )
        .await;
    state
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["state_key"].as_str().unwrap().to_owned(),
                ),
                e["event_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The ids of the room's latest events as the client sees them, newest first.
async fn latest(api: &Api<'_>, room: &str) -> Vec<Value> {
    let page = api
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=20"),
            None,
        )
        .await;
    page["chunk"].as_array().unwrap().clone()
}

async fn remote_events_go_through_the_pipeline(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(json!({ "preset": "public_chat", "room_version": "10" }))
        .await;
    let other_room = bob.create_room_with(json!({ "room_version": "10" })).await;
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let key_a = key_of(&server_a);
    let mut alice = RemoteUser {
        key: &key_a,
        user: "@alice:a.test".into(),
        depth: 100,
    };
    let txn_counter = std::cell::Cell::new(0);
    let send = |pdus: Vec<Value>| {
        txn_counter.set(txn_counter.get() + 1);
        let path = format!("/_matrix/federation/v1/send/p{}", txn_counter.get());
        let body = json!({
            "origin": "a.test", "origin_server_ts": 1_700_000_000_000_u64,
            "pdus": pdus, "edus": [],
        });
        let (as_a, b) = (&as_a, &b);
        async move {
            let (status, answer) = as_a
                .request(b, "b.test", Method::PUT, &path, Some(&body))
                .await;
            assert_eq!(status, 200, "{answer}");
            answer["pdus"].clone()
        }
    };
    let state = state_ids(&bob, &room).await;
    let id_of = |kind: &str, key: &str| state[&(kind.to_owned(), key.to_owned())].clone();
    let (create, power, join_rules) = (
        id_of("m.room.create", ""),
        id_of("m.room.power_levels", ""),
        id_of("m.room.join_rules", ""),
    );
    let head = latest(&bob, &room).await[0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Alice joins the public room, signed by her server.
    let (join, event) = alice.event(
        &room,
        "m.room.member",
        Some("@alice:a.test"),
        json!({ "membership": "join" }),
        &[&head],
        &[&create, &power, &join_rules],
    );
    let answer = send(vec![event]).await;
    assert_eq!(answer[&join], json!({}), "{answer}");
    let members = bob
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
            None,
        )
        .await;
    assert!(members["joined"]["@alice:a.test"].is_object(), "{members}");

    // Her message, then two at once after it: the room forks, and both are in it.
    let (hello, event) = alice.event(
        &room,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": "hello from A" }),
        &[&join],
        &[&create, &power, &join],
    );
    let hello_event = event.clone();
    assert_eq!(send(vec![event]).await[&hello], json!({}));
    let (left, first) = alice.event(
        &room,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": "left" }),
        &[&hello],
        &[&create, &power, &join],
    );
    let (right, second) = alice.event(
        &room,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": "right" }),
        &[&hello],
        &[&create, &power, &join],
    );
    let answer = send(vec![first, second]).await;
    assert_eq!(
        (&answer[&left], &answer[&right]),
        (&json!({}), &json!({})),
        "{answer}"
    );
    let room_id: ruma::OwnedRoomId = room.as_str().try_into().unwrap();
    let extremities = server_b
        .store()
        .room_head(&room_id)
        .await
        .unwrap()
        .unwrap()
        .extremities;
    assert_eq!(extremities.len(), 2, "{extremities:?}");
    let bodies: Vec<String> = latest(&bob, &room)
        .await
        .iter()
        .filter(|e| e["sender"] == "@alice:a.test" && e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    // Bob's next message joins the two branches.
    bob.send_text(&room, "both seen").await;
    let extremities = server_b
        .store()
        .room_head(&room_id)
        .await
        .unwrap()
        .unwrap()
        .extremities;
    assert_eq!(extremities.len(), 1);

    // The same event again is no news: answered as fine, stored once.
    let answer = send(vec![hello_event]).await;
    assert_eq!(answer[&hello], json!({}), "{answer}");
    let hellos = latest(&bob, &room)
        .await
        .iter()
        .filter(|e| e["content"]["body"] == "hello from A")
        .count();
    assert_eq!(hellos, 1);

    // Someone who never joined: rejected, kept apart, never seen.
    let key_a2 = key_of(&server_a);
    let mut carol = RemoteUser {
        key: &key_a2,
        user: "@carol:a.test".into(),
        depth: 100,
    };
    let (stray, event) = carol.event(
        &room,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": "let me in" }),
        &[&left],
        &[&create, &power],
    );
    let answer = send(vec![event]).await;
    assert!(
        answer[&stray]["error"]
            .as_str()
            .unwrap()
            .contains("rejected"),
        "{answer}"
    );
    let stray_id: ruma::OwnedEventId = stray.as_str().try_into().unwrap();
    assert_eq!(
        server_b
            .store()
            .apart_status(&stray_id)
            .await
            .unwrap()
            .map(|(s, _)| s),
        Some(hearth_store::ApartStatus::Rejected)
    );

    // Auth events of another room: rejected.
    let other_create =
        state_ids(&bob, &other_room).await[&("m.room.create".to_owned(), String::new())].clone();
    let (mixed, event) = alice.event(
        &room,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": "mixed" }),
        &[&left],
        &[&other_create, &power, &join],
    );
    let answer = send(vec![event]).await;
    assert!(
        answer[&mixed]["error"]
            .as_str()
            .unwrap()
            .contains("another room"),
        "{answer}"
    );

    // Bob bans Alice; her server then sends a message that does not know of the ban (its
    // prev event is from before). The state before it allows it, the room's state does not:
    // soft-failed, accepted as received but never shown.
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/ban"),
        Some(json!({ "user_id": "@alice:a.test" })),
    )
    .await;
    let (late, event) = alice.event(
        &room,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": "did not see the ban" }),
        &[&right],
        &[&create, &power, &join],
    );
    let answer = send(vec![event]).await;
    assert_eq!(answer[&late], json!({}), "{answer}");
    let late_id: ruma::OwnedEventId = late.as_str().try_into().unwrap();
    assert_eq!(
        server_b
            .store()
            .apart_status(&late_id)
            .await
            .unwrap()
            .map(|(s, _)| s),
        Some(hearth_store::ApartStatus::SoftFailed)
    );
    let seen = latest(&bob, &room).await;
    assert!(
        seen.iter().all(|e| e["event_id"] != late.as_str()),
        "a soft-failed event was served"
    );
    let extremities = server_b
        .store()
        .room_head(&room_id)
        .await
        .unwrap()
        .unwrap()
        .extremities;
    assert!(
        extremities.iter().all(|(id, _)| id.as_str() != late),
        "nor is it an extremity"
    );
}
on_both_backends!(remote_events_go_through_the_pipeline);

/// Concurrent state changes from two servers: the room's state is the v2 resolution of both
/// branches, whatever order they arrived in.
async fn concurrent_state_changes_are_resolved(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(json!({ "preset": "public_chat", "room_version": "10" }))
        .await;
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let key_a = key_of(&server_a);
    let mut alice = RemoteUser {
        key: &key_a,
        user: "@alice:a.test".into(),
        depth: 100,
    };
    let send = |txn: &'static str, pdus: Vec<Value>| {
        let path = format!("/_matrix/federation/v1/send/{txn}");
        let body = json!({
            "origin": "a.test", "origin_server_ts": 1_700_000_000_000_u64,
            "pdus": pdus, "edus": [],
        });
        let (as_a, b) = (&as_a, &b);
        async move {
            let (status, answer) = as_a
                .request(b, "b.test", Method::PUT, &path, Some(&body))
                .await;
            assert_eq!(status, 200, "{answer}");
            answer["pdus"].clone()
        }
    };
    let state = state_ids(&bob, &room).await;
    let id_of = |kind: &str| state[&(kind.to_owned(), String::new())].clone();
    let (create, join_rules) = (id_of("m.room.create"), id_of("m.room.join_rules"));
    let head = latest(&bob, &room).await[0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (join, event) = alice.event(
        &room,
        "m.room.member",
        Some("@alice:a.test"),
        json!({ "membership": "join" }),
        &[&head],
        &[&create, &id_of("m.room.power_levels"), &join_rules],
    );
    assert_eq!(send("s1", vec![event]).await[&join], json!({}));

    // Bob lets Alice change the name; then both rename the room at once, Bob first.
    let mut levels = bob.get_state(&room, "m.room.power_levels", "").await;
    levels["users"]["@alice:a.test"] = json!(50);
    let power = bob
        .set_state(&room, "m.room.power_levels", "", levels)
        .await;
    bob.set_state(&room, "m.room.name", "", json!({ "name": "Bob's name" }))
        .await;
    // Alice's rename knows the power change but not Bob's rename: a fork.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (rename, event) = alice.event(
        &room,
        "m.room.name",
        Some(""),
        json!({ "name": "Alice's name" }),
        &[&power],
        &[&create, &power, &join],
    );
    assert_eq!(send("s2", vec![event]).await[&rename], json!({}));

    // Both renames have the same power level event above them, so resolution orders them by
    // time: Alice's, the later, wins.
    let name = bob.get_state(&room, "m.room.name", "").await;
    assert_eq!(name["name"], "Alice's name", "{name}");
    let room_id: ruma::OwnedRoomId = room.as_str().try_into().unwrap();
    let extremities = server_b
        .store()
        .room_head(&room_id)
        .await
        .unwrap()
        .unwrap()
        .extremities;
    assert_eq!(extremities.len(), 2);
    // And a local event after it keeps the resolved state.
    let after = bob.send_text(&room, "after the fork").await;
    let name = bob.get_state(&room, "m.room.name", "").await;
    assert_eq!(name["name"], "Alice's name");

    // The other way round: Alice's topic is made first but arrives after Bob's. Bob's, the
    // later, wins, although it was applied first.
    let (topic, event) = alice.event(
        &room,
        "m.room.topic",
        Some(""),
        json!({ "topic": "Alice's topic" }),
        &[&after],
        &[&create, &power, &join],
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    bob.set_state(&room, "m.room.topic", "", json!({ "topic": "Bob's topic" }))
        .await;
    assert_eq!(send("s3", vec![event]).await[&topic], json!({}));
    let current = bob.get_state(&room, "m.room.topic", "").await;
    assert_eq!(current["topic"], "Bob's topic", "{current}");
}
on_both_backends!(concurrent_state_changes_are_resolved);

/// Sign a `make_join` template as the joining server would: its event id and the event.
fn sign_template(key: &SigningKey, template: &Value) -> (String, Value) {
    sign_as(key, "10", template.clone())
}

async fn partners_users_join_our_rooms(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(json!({ "preset": "public_chat", "room_version": "10" }))
        .await;
    let private = bob
        .create_room_with(json!({ "preset": "private_chat", "room_version": "10" }))
        .await;
    let key_a = key_of(&server_a);
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let make_join = |room: &str, user: &str, ver: &str| {
        let path = format!("/_matrix/federation/v1/make_join/{room}/{user}?{ver}");
        let (as_a, b) = (&as_a, &b);
        async move { as_a.request(b, "b.test", Method::GET, &path, None).await }
    };

    let (status, made) = make_join(&room, "@alice:a.test", "ver=9&ver=10").await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["room_version"], "10");
    let template = &made["event"];
    assert_eq!(template["type"], "m.room.member");
    assert_eq!(template["content"]["membership"], "join");
    let head = latest(&bob, &room).await[0]["event_id"].clone();
    assert_eq!(template["prev_events"], json!([head]));
    assert_eq!(
        template["auth_events"].as_array().unwrap().len(),
        3,
        "{template}"
    );

    let (join, event) = sign_template(&key_a, template);
    let (status, joined) = as_a
        .request(
            &b,
            "b.test",
            Method::PUT,
            &format!("/_matrix/federation/v2/send_join/{room}/{join}"),
            Some(&event),
        )
        .await;
    assert_eq!(status, 200, "{joined}");
    // The state before the join, as Bob's server has it, and the chain that authorises it.
    let before: std::collections::BTreeSet<String> = state_ids(&bob, &room)
        .await
        .into_iter()
        .filter(|((kind, key), _)| !(kind == "m.room.member" && key == "@alice:a.test"))
        .map(|(_, id)| id)
        .collect();
    let rules = ruma::RoomVersionId::V10.rules().unwrap();
    let ids = |list: &Value| -> std::collections::BTreeSet<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|pdu| {
                let object: ruma::CanonicalJsonObject =
                    serde_json::from_value(pdu.clone()).unwrap();
                format!(
                    "${}",
                    ruma::signatures::reference_hash(&object, &rules).unwrap()
                )
            })
            .collect()
    };
    assert_eq!(ids(&joined["state"]), before, "{joined}");
    let chain = ids(&joined["auth_chain"]);
    assert!(
        !chain.is_empty() && chain.iter().all(|id| before.contains(id)),
        "{joined}"
    );
    let members = bob
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
            None,
        )
        .await;
    assert!(members["joined"]["@alice:a.test"].is_object(), "{members}");

    // Only for the asking server's own users, in versions it speaks, into rooms that let
    // them in, and the join must be a join.
    let (status, answer) = make_join(&room, "@carol:c.test", "ver=10").await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (403, "M_FORBIDDEN"),
        "{answer}"
    );
    let (status, answer) = make_join(&room, "@alice:a.test", "ver=1").await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (400, "M_INCOMPATIBLE_ROOM_VERSION"),
        "{answer}"
    );
    assert_eq!(answer["room_version"], "10");
    let (status, answer) = make_join(&private, "@dave:a.test", "ver=10").await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (403, "M_FORBIDDEN"),
        "{answer}"
    );
    let (status, answer) = make_join("!nowhere:b.test", "@dave:a.test", "ver=10").await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (404, "M_NOT_FOUND"),
        "{answer}"
    );

    let (_, made) = make_join(&room, "@erin:a.test", "ver=10").await;
    let mut not_a_join = made["event"].clone();
    not_a_join["content"]["membership"] = json!("leave");
    let (id, event) = sign_template(&key_a, &not_a_join);
    let (status, answer) = as_a
        .request(
            &b,
            "b.test",
            Method::PUT,
            &format!("/_matrix/federation/v2/send_join/{room}/{id}"),
            Some(&event),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    // Under another event id.
    let (_, event) = sign_template(&key_a, &made["event"]);
    let (status, answer) = as_a
        .request(
            &b,
            "b.test",
            Method::PUT,
            &format!("/_matrix/federation/v2/send_join/{room}/$other"),
            Some(&event),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
}
on_both_backends!(partners_users_join_our_rooms);

async fn local_users_join_partners_rooms(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, _b, server_b) = pair(backend, &ca).await;
    let alice = Api::user(&server_a, "alice").await;
    alice
        .ok(
            Method::PUT,
            "/_matrix/client/v3/profile/@alice:a.test/displayname",
            Some(json!({ "displayname": "Alice of A" })),
        )
        .await;
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(json!({
            "preset": "public_chat", "room_version": "10",
            "room_alias_name": "lounge", "name": "The lounge",
        }))
        .await;
    let private = bob
        .create_room_with(json!({ "preset": "private_chat", "room_version": "10" }))
        .await;

    // By alias: A asks B where the room is, joins through B, and has the room.
    let joined = alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/join/{}", urlencode("#lounge:b.test")),
            Some(json!({})),
        )
        .await;
    assert_eq!(joined["room_id"], room.as_str(), "{joined}");
    let members_here = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
            None,
        )
        .await;
    assert!(
        members_here["joined"]["@bob:b.test"].is_object(),
        "{members_here}"
    );
    assert_eq!(
        members_here["joined"]["@alice:a.test"]["display_name"],
        "Alice of A"
    );
    let name = alice.get_state(&room, "m.room.name", "").await;
    assert_eq!(name["name"], "The lounge");
    let synced = alice.sync(None, 0).await;
    let joined_room = &synced["rooms"]["join"][&room];
    assert!(joined_room.is_object(), "{synced}");
    // And B has Alice as a member.
    let members_there = bob
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
            None,
        )
        .await;
    assert_eq!(
        members_there["joined"]["@alice:a.test"]["display_name"],
        "Alice of A"
    );

    // A room that does not let her in, and rooms only strangers could let her into.
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/join/{private}?server_name=b.test"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (403, "M_FORBIDDEN"),
        "{body}"
    );
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/join/{}", urlencode("!room:evil.test")),
            json!({}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (403, "M_FORBIDDEN"),
        "{body}"
    );
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/join/{private}?via=evil.test"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (403, "M_FORBIDDEN"),
        "{body}"
    );
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/join/{}", urlencode("#room:evil.test")),
            json!({}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (403, "M_FORBIDDEN"),
        "{body}"
    );
}
on_both_backends!(local_users_join_partners_rooms);

/// Wait (up to 10 s) until `room`'s recent messages, as `api` sees them, include `body`.
async fn until_seen(api: &Api<'_>, room: &str, body: &str) {
    for _ in 0..200 {
        if latest(api, room)
            .await
            .iter()
            .any(|e| e["content"]["body"] == body)
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{body:?} never arrived");
}

async fn messages_flow_both_ways_and_catch_up(backend: Backend) {
    let ca = TestCa::new();
    let (_a, mut server_a, _b, server_b) = pair(backend, &ca).await;
    let alice_token = server_a.register("alice").await.unwrap();
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(json!({ "preset": "public_chat", "room_version": "12" }))
        .await;
    {
        let alice = Api::new(&server_a, Some(&alice_token));
        alice
            .ok(
                Method::POST,
                &format!("/_matrix/client/v3/join/{room}?server_name=b.test"),
                Some(json!({})),
            )
            .await;
        bob.send_text(&room, "hello Alice").await;
        until_seen(&alice, &room, "hello Alice").await;
        alice.send_text(&room, "hello Bob").await;
        until_seen(&bob, &room, "hello Bob").await;
    }

    // A goes down; Bob keeps talking; A comes back and gets what it missed.
    let stopped = server_a.server.take().unwrap();
    stopped.stop().await.unwrap();
    bob.send_text(&room, "while you were away 1").await;
    bob.send_text(&room, "while you were away 2").await;
    let restarted = hearth::Server::start(
        server_a.config.clone(),
        hearth_accounts::PasswordHashing::insecure_fast_for_tests(),
    )
    .await
    .unwrap();
    server_a.address = restarted.address;
    server_a.base = format!("http://{}", restarted.address);
    server_a.server = Some(restarted);
    let alice = Api::new(&server_a, Some(&alice_token));
    until_seen(&alice, &room, "while you were away 2").await;
    until_seen(&alice, &room, "while you were away 1").await;
}
on_both_backends!(messages_flow_both_ways_and_catch_up);

async fn partners_read_only_rooms_they_are_in(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(json!({ "preset": "public_chat", "room_version": "10" }))
        .await;
    let other_room = bob.create_room_with(json!({ "room_version": "10" })).await;
    let secret = bob.send_text(&other_room, "not for A").await;
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let get = |path: String| {
        let (as_a, b) = (&as_a, &b);
        async move { as_a.request(b, "b.test", Method::GET, &path, None).await }
    };
    let first = bob.send_text(&room, "one").await;

    // Before anyone of A is in the room, nothing of it is readable.
    let (status, answer) = get(format!("/_matrix/federation/v1/event/{first}")).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (403, "M_FORBIDDEN"),
        "{answer}"
    );

    // Alice of A joins; now A reads the room, and still nothing of the other.
    let key_a = key_of(&server_a);
    let (_, made) = get(format!(
        "/_matrix/federation/v1/make_join/{room}/@alice:a.test?ver=10"
    ))
    .await;
    let (join, event) = sign_template(&key_a, &made["event"]);
    let (status, _) = as_a
        .request(
            &b,
            "b.test",
            Method::PUT,
            &format!("/_matrix/federation/v2/send_join/{room}/{join}"),
            Some(&event),
        )
        .await;
    assert_eq!(status, 200);
    let second = bob.send_text(&room, "two").await;
    let third = bob.send_text(&room, "three").await;

    let (status, answer) = get(format!("/_matrix/federation/v1/event/{first}")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["pdus"][0]["content"]["body"], "one", "{answer}");
    let (status, answer) = get(format!("/_matrix/federation/v1/event/{secret}")).await;
    assert_eq!(status, 403, "{answer}");
    // An event of the other room asked for under this room's name.
    let (status, answer) = get(format!(
        "/_matrix/federation/v1/state_ids/{room}?event_id={}",
        urlencode(&secret)
    ))
    .await;
    assert_eq!(status, 404, "{answer}");

    let (status, ids) = get(format!(
        "/_matrix/federation/v1/state_ids/{room}?event_id={}",
        urlencode(&third)
    ))
    .await;
    assert_eq!(status, 200, "{ids}");
    let state: Vec<&str> = ids["pdu_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        state.contains(&join.as_str()),
        "the state before `three` has Alice's join: {ids}"
    );
    assert!(!ids["auth_chain_ids"].as_array().unwrap().is_empty());
    let (status, full) = get(format!(
        "/_matrix/federation/v1/state/{room}?event_id={}",
        urlencode(&third)
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(full["pdus"].as_array().unwrap().len(), state.len());
    let (status, auth) = get(format!("/_matrix/federation/v1/event_auth/{room}/{third}")).await;
    assert_eq!(status, 200);
    assert!(auth["auth_chain"].as_array().unwrap().len() >= 3, "{auth}");

    // The events between Alice's join and `three`, and history back from `three`.
    let (status, missing) = as_a
        .request(
            &b,
            "b.test",
            Method::POST,
            &format!("/_matrix/federation/v1/get_missing_events/{room}"),
            Some(&json!({ "earliest_events": [join], "latest_events": [third], "limit": 10 })),
        )
        .await;
    assert_eq!(status, 200, "{missing}");
    let bodies: Vec<&str> = missing["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["content"]["body"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(bodies, vec!["two"], "{missing}");
    let _ = second;
    let (status, history) = get(format!(
        "/_matrix/federation/v1/backfill/{room}?v={}&limit=3",
        urlencode(&third)
    ))
    .await;
    assert_eq!(status, 200, "{history}");
    let pdus = history["pdus"].as_array().unwrap();
    assert_eq!(pdus.len(), 3, "{history}");
    assert_eq!(
        pdus[2]["content"]["body"], "three",
        "oldest first: {history}"
    );
    assert_eq!(pdus[1]["content"]["body"], "two");

    // The room's server ACL turns A away: no reads, no joins, no events heard from it.
    bob.set_state(
        &room,
        "m.room.server_acl",
        "",
        json!({ "allow": ["*"], "deny": ["a.test"], "allow_ip_literals": false }),
    )
    .await;
    let (status, answer) = get(format!("/_matrix/federation/v1/event/{first}")).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (403, "M_FORBIDDEN"),
        "{answer}"
    );
    let (status, answer) = get(format!(
        "/_matrix/federation/v1/make_join/{room}/@zed:a.test?ver=10"
    ))
    .await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (403, "M_FORBIDDEN"),
        "{answer}"
    );
    let state = state_ids(&bob, &room).await;
    let id_of = |kind: &str, key: &str| state[&(kind.to_owned(), key.to_owned())].clone();
    let mut alice = RemoteUser {
        key: &key_a,
        user: "@alice:a.test".into(),
        depth: 200,
    };
    let head = latest(&bob, &room).await[0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (banned, event) = alice.event(
        &room,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": "still here?" }),
        &[&head],
        &[
            &id_of("m.room.create", ""),
            &id_of("m.room.power_levels", ""),
            &id_of("m.room.member", "@alice:a.test"),
        ],
    );
    let body = json!({ "origin": "a.test", "origin_server_ts": 1, "pdus": [event], "edus": [] });
    let (status, answer) = as_a
        .request(
            &b,
            "b.test",
            Method::PUT,
            "/_matrix/federation/v1/send/acl1",
            Some(&body),
        )
        .await;
    assert_eq!(status, 200);
    assert!(answer["pdus"].get(&banned).is_none(), "{answer}");
    assert!(
        latest(&bob, &room)
            .await
            .iter()
            .all(|e| e["event_id"] != banned.as_str())
    );
}
on_both_backends!(partners_read_only_rooms_they_are_in);

async fn typing_and_receipts_cross_servers(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, _b, server_b) = pair(backend, &ca).await;
    let alice = Api::user(&server_a, "alice").await;
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(json!({ "preset": "public_chat" }))
        .await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/join/{room}?server_name=b.test"),
            Some(json!({})),
        )
        .await;
    let hello = alice.send_text(&room, "typing next").await;
    until_seen(&bob, &room, "typing next").await;

    // Alice types on A; Bob's client on B sees it.
    alice
        .ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/typing/@alice:a.test"),
            Some(json!({ "typing": true, "timeout": 20000 })),
        )
        .await;
    let mut seen_typing = false;
    for _ in 0..100 {
        let synced = bob.sync(None, 0).await;
        let ephemeral = &synced["rooms"]["join"][&room]["ephemeral"]["events"];
        if ephemeral.as_array().is_some_and(|events| {
            events.iter().any(|e| {
                e["type"] == "m.typing"
                    && e["content"]["user_ids"]
                        .as_array()
                        .is_some_and(|u| u.iter().any(|u| u == "@alice:a.test"))
            })
        }) {
            seen_typing = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen_typing, "Alice's typing never reached B");

    // Bob reads Alice's message on B; Alice's client on A sees the receipt.
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/receipt/m.read/{hello}"),
        Some(json!({})),
    )
    .await;
    let mut seen_receipt = false;
    for _ in 0..100 {
        let synced = alice.sync(None, 0).await;
        let ephemeral = &synced["rooms"]["join"][&room]["ephemeral"]["events"];
        if ephemeral.as_array().is_some_and(|events| {
            events.iter().any(|e| {
                e["type"] == "m.receipt"
                    && e["content"][&hello]["m.read"]["@bob:b.test"].is_object()
            })
        }) {
            seen_receipt = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(seen_receipt, "Bob's receipt never reached A");
}
on_both_backends!(typing_and_receipts_cross_servers);

/// Wait (up to 10 s) until `api`'s sync shows `room` under `section` (`invite`, `join`,
/// `leave`); returns that room's entry.
async fn until_in_sync(api: &Api<'_>, section: &str, room: &str) -> Value {
    for _ in 0..200 {
        let synced = api.sync(None, 0).await;
        let entry = &synced["rooms"][section][room];
        if entry.is_object() {
            return entry.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{room} never showed under {section}");
}

async fn invites_cross_servers_and_can_be_declined(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, _b, server_b) = pair(backend, &ca).await;
    let alice = Api::user(&server_a, "alice").await;
    let bob = Api::user(&server_b, "bob").await;

    for version in ["10", "12"] {
        // Bob invites Alice to a private room of B's: her sync shows the invite, with the
        // room's stripped state as B sent it.
        let room = bob
            .create_room_with(json!({
                "preset": "private_chat", "room_version": version, "name": "Bob's den",
            }))
            .await;
        bob.ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            Some(json!({ "user_id": "@alice:a.test", "reason": "come in" })),
        )
        .await;
        let invited = until_in_sync(&alice, "invite", &room).await;
        let stripped = invited["invite_state"]["events"].as_array().unwrap();
        let of = |kind: &str| stripped.iter().find(|e| e["type"] == kind).cloned();
        assert_eq!(of("m.room.name").unwrap()["content"]["name"], "Bob's den");
        assert!(of("m.room.create").is_some(), "{invited}");
        let invite = of("m.room.member").unwrap();
        assert_eq!(invite["sender"], "@bob:b.test");
        assert_eq!(invite["content"]["membership"], "invite");
        assert_eq!(invite["content"]["reason"], "come in");
        // On B the invite is in the room, signed by both servers.
        assert_eq!(
            bob.member_event(&room, "@alice:a.test").await["membership"],
            "invite"
        );

        // Sliding sync shows it too.
        let (status, sliding) = alice
            .call(
                Method::POST,
                "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
                Some(json!({ "lists": { "all": { "ranges": [[0, 20]], "timeline_limit": 1 } } })),
            )
            .await;
        assert_eq!(status.as_u16(), 200, "{sliding}");
        let entry = &sliding["rooms"][&room];
        assert_eq!(entry["name"], "Bob's den", "{sliding}");
        assert!(entry["invite_state"].is_array(), "{sliding}");

        // She accepts without naming a server: the join goes through the inviting server.
        alice
            .ok(
                Method::POST,
                &format!("/_matrix/client/v3/rooms/{room}/join"),
                Some(json!({})),
            )
            .await;
        until_in_sync(&alice, "join", &room).await;
        assert_eq!(
            bob.member_event(&room, "@alice:a.test").await["membership"],
            "join"
        );
        bob.send_text(&room, "welcome").await;
        until_seen(&alice, &room, "welcome").await;

        // She leaves, as a member: an ordinary event B receives.
        alice
            .ok(
                Method::POST,
                &format!("/_matrix/client/v3/rooms/{room}/leave"),
                Some(json!({})),
            )
            .await;
        for _ in 0..200 {
            if bob.member_event(&room, "@alice:a.test").await["membership"] == "leave" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(
            bob.member_event(&room, "@alice:a.test").await["membership"],
            "leave"
        );
    }

    // Bob takes an invite back before Alice answers it: her invite ends.
    let room = bob
        .create_room_with(json!({ "preset": "private_chat", "room_version": "12" }))
        .await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/invite"),
        Some(json!({ "user_id": "@alice:a.test" })),
    )
    .await;
    until_in_sync(&alice, "invite", &room).await;
    let since = alice.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/kick"),
        Some(json!({ "user_id": "@alice:a.test" })),
    )
    .await;
    let mut revoked = false;
    for _ in 0..200 {
        let synced = alice.sync(Some(&since), 0).await;
        if synced["rooms"]["leave"][&room].is_object() {
            revoked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(revoked, "the revoked invite never ended");
    assert!(alice.sync(None, 0).await["rooms"]["invite"][&room].is_null());

    // Alice invites Bob to a room of A's; Bob declines through A.
    let room = alice
        .create_room_with(json!({ "preset": "private_chat", "room_version": "12", "name": "Ours" }))
        .await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            Some(json!({ "user_id": "@bob:b.test" })),
        )
        .await;
    assert_eq!(
        alice.member_event(&room, "@bob:b.test").await["membership"],
        "invite"
    );
    until_in_sync(&bob, "invite", &room).await;
    let before = bob.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/leave"),
        Some(json!({ "reason": "not now" })),
    )
    .await;
    let declined = alice.member_event(&room, "@bob:b.test").await;
    assert_eq!(declined["membership"], "leave");
    assert_eq!(declined["reason"], "not now");
    // Bob's next sync has the room under `leave`, with his leave event.
    let synced = bob.sync(Some(&before), 0).await;
    let left = &synced["rooms"]["leave"][&room];
    let timeline = left["timeline"]["events"].as_array().unwrap();
    assert_eq!(timeline.len(), 1, "{synced}");
    assert_eq!(timeline[0]["content"]["membership"], "leave", "{synced}");
    assert!(synced["rooms"]["invite"][&room].is_null(), "{synced}");
    let synced = bob.sync(None, 0).await;
    assert!(synced["rooms"]["invite"][&room].is_null(), "{synced}");
    // A declined invite can be forgotten.
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/forget"),
        Some(json!({})),
    )
    .await;

    // Nobody outside the partners is invited, and nothing is left behind.
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            json!({ "user_id": "@eve:evil.test" }),
        )
        .await;
    assert_eq!(
        (status.as_u16(), errcode(&body)),
        (403, "M_FORBIDDEN"),
        "{body}"
    );
    let member = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{room}/state/m.room.member/@eve:evil.test"
        ))
        .await;
    assert_eq!(member.0.as_u16(), 404, "{:?}", member.1);
    // A partner's user who does not exist: B refuses, A keeps nothing.
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            json!({ "user_id": "@nobody:b.test" }),
        )
        .await;
    assert_eq!(status.as_u16(), 403, "{body}");
    let member = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{room}/state/m.room.member/@nobody:b.test"
        ))
        .await;
    assert_eq!(member.0.as_u16(), 404, "{:?}", member.1);
}
on_both_backends!(invites_cross_servers_and_can_be_declined);

/// `value` hashed and signed by `key` as an event of room `version`, and its event id.
fn sign_as(key: &SigningKey, version: &str, value: Value) -> (String, Value) {
    let rules = ruma::RoomVersionId::try_from(version)
        .unwrap()
        .rules()
        .unwrap();
    let mut object: ruma::CanonicalJsonObject = serde_json::from_value(value).unwrap();
    ruma::signatures::hash_and_sign_event(
        key.server_name().as_str(),
        key.pair(),
        &mut object,
        &rules.redaction,
    )
    .unwrap();
    let id = format!(
        "${}",
        ruma::signatures::reference_hash(&object, &rules).unwrap()
    );
    (id, serde_json::to_value(&object).unwrap())
}

async fn partners_invites_are_checked(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, b, server_b) = pair(backend, &ca).await;
    let bob = Api::user(&server_b, "bob").await;
    let as_a = FakeServer::with_key(key_of(&server_a), &ca, &b);
    let key = key_of(&server_a);
    let invite = |room: &str, sender: &str, target: &str, kind: &str, version: &str| {
        sign_as(
            &key,
            version,
            json!({
                "room_id": room, "sender": sender, "state_key": target, "type": kind,
                "content": { "membership": "invite" },
                "prev_events": ["$prev"], "auth_events": ["$create"], "depth": 5,
                "origin_server_ts": 1_700_000_000_000_u64,
            }),
        )
    };
    let put = |id: String, room: &str, version: &str, event: Value, state: Value| {
        let path = format!(
            "/_matrix/federation/v2/invite/{}/{}",
            urlencode(room),
            urlencode(&id)
        );
        let body = json!({ "room_version": version, "event": event, "invite_room_state": state });
        let (as_a, b) = (&as_a, &b);
        async move {
            as_a.request(b, "b.test", Method::PUT, &path, Some(&body))
                .await
        }
    };
    let before = row_counts(&server_b).await;

    // What B must not sign: each answered 400 M_INVALID_PARAM.
    let refused = [
        invite(
            "!r:a.test",
            "@mallory:a.test",
            "@bob:a.test",
            "m.room.member",
            "10",
        ),
        invite(
            "!r:a.test",
            "@mallory:c.test",
            "@bob:b.test",
            "m.room.member",
            "10",
        ),
        invite(
            "!r:a.test",
            "@mallory:a.test",
            "@bob:b.test",
            "m.room.topic",
            "10",
        ),
    ];
    for (id, event) in refused {
        let (status, answer) = put(id, "!r:a.test", "10", event, json!([])).await;
        assert_eq!(
            (status.as_u16(), errcode(&answer)),
            (400, "M_INVALID_PARAM"),
            "{answer}"
        );
    }
    // An invite under another event id than its own.
    let (_, event) = invite(
        "!r:a.test",
        "@mallory:a.test",
        "@bob:b.test",
        "m.room.member",
        "10",
    );
    let (status, answer) = put("$other".into(), "!r:a.test", "10", event, json!([])).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (400, "M_INVALID_PARAM")
    );
    // A tampered signature.
    let (id, mut event) = invite(
        "!r:a.test",
        "@mallory:a.test",
        "@bob:b.test",
        "m.room.member",
        "10",
    );
    event["depth"] = json!(6);
    let (status, answer) = put(id, "!r:a.test", "10", event, json!([])).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (400, "M_INVALID_PARAM")
    );
    // A room version B does not speak.
    let (id, event) = invite(
        "!r:a.test",
        "@mallory:a.test",
        "@bob:b.test",
        "m.room.member",
        "10",
    );
    let (status, answer) = put(id, "!r:a.test", "org.example.99", event, json!([])).await;
    assert_eq!(
        (status.as_u16(), errcode(&answer)),
        (400, "M_INCOMPATIBLE_ROOM_VERSION"),
        "{answer}"
    );
    // Room version 12: `invite_room_state` must hold the room's create event, as a PDU.
    let (create_id, create) = sign_as(
        &key,
        "12",
        json!({
            "sender": "@mallory:a.test", "state_key": "", "type": "m.room.create",
            "content": { "room_version": "12" },
            "prev_events": [], "auth_events": [], "depth": 1,
            "origin_server_ts": 1_700_000_000_000_u64,
        }),
    );
    let room12 = format!("!{}", &create_id[1..]);
    let v12 = |state: Value| {
        let (id, event) = sign_as(
            &key,
            "12",
            json!({
                "room_id": room12, "sender": "@mallory:a.test", "state_key": "@bob:b.test",
                "type": "m.room.member", "content": { "membership": "invite" },
                "prev_events": [&create_id], "auth_events": [], "depth": 2,
                "origin_server_ts": 1_700_000_000_000_u64,
            }),
        );
        put(id, &room12, "12", event, state)
    };
    let stripped_create = json!({
        "type": "m.room.create", "state_key": "", "sender": "@mallory:a.test",
        "content": { "room_version": "12" },
    });
    for state in [json!([]), json!([stripped_create])] {
        let (status, answer) = v12(state).await;
        assert_eq!(
            (status.as_u16(), errcode(&answer)),
            (400, "M_INVALID_PARAM"),
            "{answer}"
        );
    }
    // Only A's key, fetched to check A's requests, is new.
    let mut after = row_counts(&server_b).await;
    let mut before = before;
    after.remove("server_keys");
    before.remove("server_keys");
    assert_eq!(after, before, "a refused invite left a trace");

    // The good one: signed by B and answered, and Bob sees it.
    let (status, answer) = v12(json!([create])).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["event"]["signatures"]["b.test"].is_object(),
        "{answer}"
    );
    assert!(
        answer["event"]["signatures"]["a.test"].is_object(),
        "{answer}"
    );
    let invited = until_in_sync(&bob, "invite", &room12).await;
    let stripped = invited["invite_state"]["events"].as_array().unwrap();
    assert_eq!(stripped.len(), 2, "{invited}");
    assert_eq!(stripped[0]["type"], "m.room.create");
    assert_eq!(stripped[1]["sender"], "@mallory:a.test");
}
on_both_backends!(partners_invites_are_checked);

async fn joins_reach_the_rooms_other_servers(backend: Backend) {
    let ca = TestCa::new();
    let (a, b, c) = (
        Peer::new("a.test"),
        Peer::new("b.test"),
        Peer::new("c.test"),
    );
    let server_a = start_peer(Backend::Sqlite, &ca, &a, &[&b, &c], |_| {}).await;
    let server_b = start_peer(backend, &ca, &b, &[&a, &c], |_| {}).await;
    let server_c = start_peer(Backend::Sqlite, &ca, &c, &[&a, &b], |_| {}).await;
    let alice = Api::user(&server_a, "alice").await;
    let bob = Api::user(&server_b, "bob").await;
    let carol = Api::user(&server_c, "carol").await;
    let room = alice
        .create_room_with(json!({ "preset": "public_chat", "room_version": "12" }))
        .await;
    let server_name = "?server_name=a.test";
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/join/{room}{server_name}"),
        Some(json!({})),
    )
    .await;
    carol
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/join/{room}{server_name}"),
            Some(json!({})),
        )
        .await;
    // Carol joined through A; B hears of her join from A, and of her messages from C.
    for _ in 0..200 {
        let (status, member) = bob
            .get(&format!(
                "/_matrix/client/v3/rooms/{room}/state/m.room.member/@carol:c.test"
            ))
            .await;
        if status == 200 && member["membership"] == "join" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        bob.member_event(&room, "@carol:c.test").await["membership"],
        "join"
    );
    carol.send_text(&room, "hello from C").await;
    until_seen(&bob, &room, "hello from C").await;
    bob.send_text(&room, "hello from B").await;
    until_seen(&carol, &room, "hello from B").await;
}
on_both_backends!(joins_reach_the_rooms_other_servers);

async fn a_room_left_is_joined_again_over_federation(backend: Backend) {
    let ca = TestCa::new();
    let (_a, server_a, _b, server_b) = pair(backend, &ca).await;
    let alice = Api::user(&server_a, "alice").await;
    let bob = Api::user(&server_b, "bob").await;
    let room = bob
        .create_room_with(
            json!({ "preset": "public_chat", "room_version": "12", "name": "Before" }),
        )
        .await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/join/{room}?server_name=b.test"),
            Some(json!({})),
        )
        .await;
    bob.send_text(&room, "first").await;
    until_seen(&alice, &room, "first").await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/leave"),
            Some(json!({})),
        )
        .await;
    for _ in 0..200 {
        if bob.member_event(&room, "@alice:a.test").await["membership"] == "leave" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The room moves on without A.
    bob.set_state(&room, "m.room.name", "", json!({ "name": "After" }))
        .await;
    bob.send_text(&room, "while you were gone").await;

    // Alice comes back, naming no server (a v12 room id names none): A asks the servers it
    // last knew in the room, and takes the room's state as it is now.
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/join/{room}"),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        alice.get_state(&room, "m.room.name", "").await["name"],
        "After"
    );
    assert_eq!(
        bob.member_event(&room, "@alice:a.test").await["membership"],
        "join"
    );
    alice.send_text(&room, "back again").await;
    until_seen(&bob, &room, "back again").await;
    bob.send_text(&room, "welcome back").await;
    until_seen(&alice, &room, "welcome back").await;
}
on_both_backends!(a_room_left_is_joined_again_over_federation);
