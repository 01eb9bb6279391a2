//! The end-to-end encryption endpoints over plain HTTP, as any client may call them: keys
//! upload / query / claim (one-time keys once each, then the fallback key), device-list
//! changes in `/sync` and `keys/changes`, send-to-device delivery until acknowledged,
//! cross-signing with real ed25519 signatures, and key backup versions and sessions. Hostile
//! input gets a Matrix error. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use ruma::signatures::{Ed25519KeyPair, sign_json};
use ruma::{CanonicalJsonObject, CanonicalJsonValue};
use serde_json::{Value, json};

/// A user with their device id.
async fn user<'s>(server: &'s TestServer, name: &str) -> (Api<'s>, String, String) {
    let api = Api::user(server, name).await;
    let whoami = api
        .ok(Method::GET, "/_matrix/client/v3/account/whoami", None)
        .await;
    let user = whoami["user_id"].as_str().unwrap().to_owned();
    let device = whoami["device_id"].as_str().unwrap().to_owned();
    (api, user, device)
}

/// An ed25519 key pair whose key id is its public key (as cross-signing keys are named), or
/// the given name (as device keys are).
fn key_pair(name: Option<&str>) -> (Ed25519KeyPair, String) {
    let document = Ed25519KeyPair::generate();
    let probe = Ed25519KeyPair::from_der(&document, String::new()).unwrap();
    let public =
        ruma::serde::Base64::<ruma::serde::base64::Standard, _>::new(probe.public_key()).encode();
    let version = name.map_or_else(|| public.clone(), str::to_owned);
    (
        Ed25519KeyPair::from_der(&document, version).unwrap(),
        public,
    )
}

fn signed(mut value: Value, signer: &str, key: &Ed25519KeyPair) -> Value {
    let mut object: CanonicalJsonObject = serde_json::from_value(value.take()).unwrap();
    sign_json(signer, key, &mut object).unwrap();
    serde_json::to_value(CanonicalJsonValue::Object(object)).unwrap()
}

fn device_keys(user: &str, device: &str, key: &Ed25519KeyPair, public: &str) -> Value {
    signed(
        json!({
            "user_id": user,
            "device_id": device,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                format!("curve25519:{device}"): "c3VycHJpc2UgY3VydmUga2V5",
                format!("ed25519:{device}"): public,
            },
        }),
        user,
        key,
    )
}

fn cross_signing_key(user: &str, usage: &str, public: &str) -> Value {
    json!({
        "user_id": user,
        "usage": [usage],
        "keys": { format!("ed25519:{public}"): public },
    })
}

async fn keys_are_published_and_claimed_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, alice_id, alice_device) = user(&server, "alice").await;
    let (bob, _, _) = user(&server, "bob").await;
    let (device_key, public) = key_pair(Some(&alice_device));
    let upload = json!({
        "device_keys": device_keys(&alice_id, &alice_device, &device_key, &public),
        "one_time_keys": {
            "signed_curve25519:AAAAAQ": { "key": "b25lIHRpbWUga2V5IG9uZQ" },
            "signed_curve25519:AAAAAg": { "key": "b25lIHRpbWUga2V5IHR3bw" },
        },
        "fallback_keys": {
            "signed_curve25519:AAAAAw": { "key": "ZmFsbGJhY2sga2V5", "fallback": true },
        },
    });
    let (status, body) = alice.post("/_matrix/client/v3/keys/upload", upload).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["one_time_key_counts"]["signed_curve25519"], 2);

    // The same key again is fine; the same id with other content is refused, and nothing of
    // that upload is kept.
    let again = json!({ "one_time_keys": {
        "signed_curve25519:AAAAAQ": { "key": "b25lIHRpbWUga2V5IG9uZQ" },
    }});
    let (status, body) = alice.post("/_matrix/client/v3/keys/upload", again).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["one_time_key_counts"]["signed_curve25519"], 2);
    let clash = json!({ "one_time_keys": {
        "signed_curve25519:AAAAAQ": { "key": "c29tZXRoaW5nIGVsc2U" },
        "signed_curve25519:AAAABA": { "key": "bmV3IGtleQ" },
    }});
    let (status, body) = alice.post("/_matrix/client/v3/keys/upload", clash).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(errcode(&body), "M_INVALID_PARAM");
    let (_, body) = alice
        .post("/_matrix/client/v3/keys/upload", json!({}))
        .await;
    assert_eq!(body["one_time_key_counts"]["signed_curve25519"], 2);

    // Device keys must be the uploader's own.
    let (other_key, other_public) = key_pair(Some("OTHER"));
    let foreign =
        json!({ "device_keys": device_keys(&alice_id, "OTHER", &other_key, &other_public) });
    let (status, body) = alice.post("/_matrix/client/v3/keys/upload", foreign).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(errcode(&body), "M_INVALID_PARAM");

    // Bob sees Alice's device, with its name.
    let query = json!({ "device_keys": { &alice_id: [] } });
    let (status, body) = bob.post("/_matrix/client/v3/keys/query", query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let keys = &body["device_keys"][&alice_id][&alice_device];
    assert_eq!(
        keys["keys"][format!("ed25519:{alice_device}")],
        public.as_str()
    );
    assert!(keys["signatures"][&alice_id][format!("ed25519:{alice_device}")].is_string());
    // Users of other servers cannot be asked yet: a failure, not an error.
    let remote = json!({ "device_keys": { "@someone:elsewhere.example": [] } });
    let (status, body) = bob.post("/_matrix/client/v3/keys/query", remote).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["failures"]["elsewhere.example"].is_object(), "{body}");

    // Each one-time key is handed out once, then the fallback key (again and again).
    let claim = json!({ "one_time_keys": { &alice_id: { &alice_device: "signed_curve25519" } } });
    let mut claimed = Vec::new();
    for _ in 0..4 {
        let (status, body) = bob
            .post("/_matrix/client/v3/keys/claim", claim.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let keys = body["one_time_keys"][&alice_id][&alice_device]
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(keys.len(), 1, "{body}");
        claimed.push(keys.keys().next().unwrap().clone());
    }
    assert_eq!(
        claimed,
        [
            "signed_curve25519:AAAAAQ",
            "signed_curve25519:AAAAAg",
            "signed_curve25519:AAAAAw",
            "signed_curve25519:AAAAAw",
        ]
    );
    // Alice's sync counts what is left: no one-time keys, and the fallback key is used.
    let sync = alice.sync(None, 0).await;
    assert_eq!(sync["device_one_time_keys_count"]["signed_curve25519"], 0);
    assert_eq!(sync["device_unused_fallback_key_types"], json!([]));
    // A new fallback key is unused again.
    let fresh = json!({ "fallback_keys": {
        "signed_curve25519:AAAABQ": { "key": "bmV3IGZhbGxiYWNr", "fallback": true },
    }});
    alice
        .ok(Method::POST, "/_matrix/client/v3/keys/upload", Some(fresh))
        .await;
    let sync = alice.sync(None, 0).await;
    assert_eq!(
        sync["device_unused_fallback_key_types"],
        json!(["signed_curve25519"])
    );

    // Unknown users and devices claim nothing, without an error.
    let unknown = json!({ "one_time_keys": {
        "@nobody:localhost": { "NODEVICE": "signed_curve25519" },
        &alice_id: { "NODEVICE": "signed_curve25519" },
    }});
    let (status, body) = bob.post("/_matrix/client/v3/keys/claim", unknown).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["one_time_keys"], json!({}), "{body}");
}
on_both_backends!(keys_are_published_and_claimed_once);

async fn to_device_messages_wait_until_acknowledged(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, alice_id, alice_device) = user(&server, "alice").await;
    let (bob, _, _) = user(&server, "bob").await;
    let first = alice.sync(None, 0).await;
    let since = first["next_batch"].as_str().unwrap().to_owned();

    let message = json!({ "messages": { &alice_id: { &alice_device: { "ping": 1 } } } });
    let path = "/_matrix/client/v3/sendToDevice/org.example.ping/txn1";
    for _ in 0..2 {
        // The same transaction twice is delivered once.
        let (status, body) = bob.put(path, message.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let everyone = json!({ "messages": { &alice_id: { "*": { "ping": 2 } } } });
    bob.ok(
        Method::PUT,
        "/_matrix/client/v3/sendToDevice/org.example.ping/txn2",
        Some(everyone),
    )
    .await;

    let got = alice.sync(Some(&since), 5_000).await;
    let events = got["to_device"]["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{got}");
    assert_eq!(events[0]["type"], "org.example.ping");
    assert_eq!(events[0]["content"]["ping"], 1);
    assert_eq!(events[1]["content"]["ping"], 2);
    assert!(events[0]["sender"].as_str().unwrap().starts_with("@bob"));

    // A retry from the old token (the response was lost) gets them again...
    let retry = alice.sync(Some(&since), 0).await;
    assert_eq!(retry["to_device"]["events"].as_array().unwrap().len(), 2);
    // ...and syncing from the new token acknowledges them.
    let next = got["next_batch"].as_str().unwrap();
    let after = alice.sync(Some(next), 0).await;
    assert_eq!(after["to_device"]["events"], json!([]), "{after}");
    let later = after["next_batch"].as_str().unwrap();
    let again = alice.sync(Some(later), 0).await;
    assert_eq!(again["to_device"]["events"], json!([]));

    // Bodies that are not objects are refused.
    let bad = json!({ "messages": { &alice_id: { &alice_device: "not an object" } } });
    let (status, body) = bob
        .put("/_matrix/client/v3/sendToDevice/org.example.ping/txn3", bad)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
on_both_backends!(to_device_messages_wait_until_acknowledged);

async fn device_list_changes_reach_room_mates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, alice_id, alice_device) = user(&server, "alice").await;
    let (bob, _, _) = user(&server, "bob").await;
    let (carol, carol_id, _) = user(&server, "carol").await;
    let (dave, dave_id, dave_device) = user(&server, "dave").await;
    let room = alice.create_room("public_chat").await;
    bob.join(&room).await;
    let since = bob.sync(None, 0).await["next_batch"]
        .as_str()
        .unwrap()
        .to_owned();

    // Alice publishes keys: Bob, who shares a room with her, hears of it.
    let (key, public) = key_pair(Some(&alice_device));
    let upload = json!({ "device_keys": device_keys(&alice_id, &alice_device, &key, &public) });
    alice
        .ok(Method::POST, "/_matrix/client/v3/keys/upload", Some(upload))
        .await;
    // Dave, who shares no room with Bob, does too: Bob does not hear of it.
    let (key, public) = key_pair(Some(&dave_device));
    let upload = json!({ "device_keys": device_keys(&dave_id, &dave_device, &key, &public) });
    dave.ok(Method::POST, "/_matrix/client/v3/keys/upload", Some(upload))
        .await;
    let got = bob.sync(Some(&since), 5_000).await;
    assert_eq!(got["device_lists"]["changed"], json!([&alice_id]), "{got}");
    let next = got["next_batch"].as_str().unwrap().to_owned();
    let path = format!(
        "/_matrix/client/v3/keys/changes?from={}&to={}",
        hearth_tests::api::urlencode(&since),
        hearth_tests::api::urlencode(&next)
    );
    let changes = bob.ok(Method::GET, &path, None).await;
    assert_eq!(changes["changed"], json!([&alice_id]), "{changes}");

    // Carol joins: Bob now tracks her devices. She leaves: he is told to stop.
    carol.join(&room).await;
    let got = bob.sync(Some(&next), 5_000).await;
    assert!(
        got["device_lists"]["changed"]
            .as_array()
            .unwrap()
            .contains(&json!(carol_id)),
        "{got}"
    );
    let next = got["next_batch"].as_str().unwrap().to_owned();
    carol
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/leave"),
            Some(json!({})),
        )
        .await;
    let got = bob.sync(Some(&next), 5_000).await;
    assert_eq!(got["device_lists"]["left"], json!([&carol_id]), "{got}");

    let (status, body) = bob
        .get("/_matrix/client/v3/keys/changes?from=junk&to=s1")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
on_both_backends!(device_list_changes_reach_room_mates);

async fn cross_signing_keys_are_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, alice_id, alice_device) = user(&server, "alice").await;
    let (bob, bob_id, _) = user(&server, "bob").await;
    let (device_key, device_public) = key_pair(Some(&alice_device));
    let upload = json!({
        "device_keys": device_keys(&alice_id, &alice_device, &device_key, &device_public),
    });
    alice
        .ok(Method::POST, "/_matrix/client/v3/keys/upload", Some(upload))
        .await;

    let (master, master_public) = key_pair(None);
    let (self_signing, self_public) = key_pair(None);
    let (user_signing, user_public) = key_pair(None);
    let (stranger, stranger_public) = key_pair(None);
    let master_key = cross_signing_key(&alice_id, "master", &master_public);
    let self_key = signed(
        cross_signing_key(&alice_id, "self_signing", &self_public),
        &alice_id,
        &master,
    );
    let user_key = signed(
        cross_signing_key(&alice_id, "user_signing", &user_public),
        &alice_id,
        &master,
    );

    // A self-signing key not signed by the master key is refused.
    let forged = signed(
        cross_signing_key(&alice_id, "self_signing", &self_public),
        &alice_id,
        &stranger,
    );
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/keys/device_signing/upload",
            json!({ "master_key": master_key, "self_signing_key": forged }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(errcode(&body), "M_INVALID_SIGNATURE");
    let _ = stranger_public;

    // The first set-up needs no password.
    let first = json!({
        "master_key": master_key,
        "self_signing_key": self_key,
        "user_signing_key": user_key,
    });
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/keys/device_signing/upload",
            first.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The same keys again need none either; new ones do.
    let (status, _) = alice
        .post("/_matrix/client/v3/keys/device_signing/upload", first)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, new_master_public) = key_pair(None);
    let replace =
        json!({ "master_key": cross_signing_key(&alice_id, "master", &new_master_public) });
    let (status, body) = alice
        .post("/_matrix/client/v3/keys/device_signing/upload", replace)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["flows"].is_array(), "{body}");

    // Alice signs her device with her self-signing key; a signature by another key fails.
    let stored = device_keys(&alice_id, &alice_device, &device_key, &device_public);
    let by_self = signed(stored.clone(), &alice_id, &self_signing);
    let (status, body) = alice
        .post(
            "/_matrix/client/v3/keys/signatures/upload",
            json!({ &alice_id: { &alice_device: by_self } }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.get("failures").is_none_or(|f| f == &json!({})),
        "{body}"
    );
    let by_stranger = signed(stored, &alice_id, &stranger);
    let (_, body) = alice
        .post(
            "/_matrix/client/v3/keys/signatures/upload",
            json!({ &alice_id: { &alice_device: by_stranger } }),
        )
        .await;
    assert_eq!(
        body["failures"][&alice_id][&alice_device]["errcode"], "M_INVALID_SIGNATURE",
        "{body}"
    );

    // Bob sees her master and self-signing keys and the signed device, not her user-signing
    // key; Alice sees all three.
    let query = json!({ "device_keys": { &alice_id: [] } });
    let seen = bob
        .ok(
            Method::POST,
            "/_matrix/client/v3/keys/query",
            Some(query.clone()),
        )
        .await;
    assert!(seen["master_keys"][&alice_id].is_object(), "{seen}");
    assert!(seen["self_signing_keys"][&alice_id].is_object(), "{seen}");
    assert!(seen["user_signing_keys"].get(&alice_id).is_none(), "{seen}");
    let device = &seen["device_keys"][&alice_id][&alice_device];
    assert!(
        device["signatures"][&alice_id][format!("ed25519:{self_public}")].is_string(),
        "{seen}"
    );
    let own = alice
        .ok(Method::POST, "/_matrix/client/v3/keys/query", Some(query))
        .await;
    assert!(own["user_signing_keys"][&alice_id].is_object(), "{own}");

    // Bob cannot sign Alice's master key without a user-signing key of his own.
    let by_bob = signed(
        cross_signing_key(&alice_id, "master", &master_public),
        &bob_id,
        &user_signing,
    );
    let (_, body) = bob
        .post(
            "/_matrix/client/v3/keys/signatures/upload",
            json!({ &alice_id: { &master_public: by_bob } }),
        )
        .await;
    assert!(
        body["failures"][&alice_id][&master_public].is_object(),
        "{body}"
    );
}
on_both_backends!(cross_signing_keys_are_checked);

async fn key_backup_keeps_the_better_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, _, _) = user(&server, "alice").await;
    let (status, body) = alice.get("/_matrix/client/v3/room_keys/version").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(errcode(&body), "M_NOT_FOUND");

    let algorithm = json!({
        "algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
        "auth_data": { "public_key": "cHVibGljIGtleQ", "signatures": {} },
    });
    let created = alice
        .ok(
            Method::POST,
            "/_matrix/client/v3/room_keys/version",
            Some(algorithm.clone()),
        )
        .await;
    let version = created["version"].as_str().unwrap().to_owned();
    let info = alice
        .ok(Method::GET, "/_matrix/client/v3/room_keys/version", None)
        .await;
    assert_eq!(info["version"], version.as_str());
    assert_eq!(info["count"], 0);
    assert_eq!(info["auth_data"]["public_key"], "cHVibGljIGtleQ");

    let session = |index: u64, verified: bool, tag: &str| {
        json!({
            "first_message_index": index,
            "forwarded_count": 0,
            "is_verified": verified,
            "session_data": { "ephemeral": tag, "ciphertext": tag, "mac": tag },
        })
    };
    let room = "!room:localhost";
    let path = format!(
        "/_matrix/client/v3/room_keys/keys/{}/sess1?version={version}",
        hearth_tests::api::urlencode(room)
    );
    let (status, body) = alice.put(&path, session(5, false, "first")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1);
    let etag = body["etag"].as_str().unwrap().to_owned();
    // A worse copy (a later first index) is not kept, and the etag stays.
    let (_, body) = alice.put(&path, session(9, false, "worse")).await;
    assert_eq!(body["etag"], etag.as_str());
    // A better one (verified) replaces it, and the etag moves.
    let (_, body) = alice.put(&path, session(7, true, "better")).await;
    assert_ne!(body["etag"], etag.as_str());
    let got = alice.ok(Method::GET, &path, None).await;
    assert_eq!(got["session_data"]["ciphertext"], "better", "{got}");
    let all = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/room_keys/keys?version={version}"),
            None,
        )
        .await;
    assert_eq!(
        all["rooms"][room]["sessions"]["sess1"]["first_message_index"], 7,
        "{all}"
    );

    // A new version becomes the current one; keys for the old one are refused.
    let newer = alice
        .ok(
            Method::POST,
            "/_matrix/client/v3/room_keys/version",
            Some(algorithm),
        )
        .await;
    let newer = newer["version"].as_str().unwrap().to_owned();
    let (status, body) = alice.put(&path, session(1, true, "late")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(errcode(&body), "M_WRONG_ROOM_KEYS_VERSION");
    assert_eq!(body["current_version"], newer.as_str());

    // The algorithm of a version cannot change; deleting it takes its keys.
    let other = json!({ "algorithm": "org.example.other", "auth_data": {} });
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/room_keys/version/{newer}"),
            other,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    alice
        .ok(
            Method::DELETE,
            &format!("/_matrix/client/v3/room_keys/version/{version}"),
            None,
        )
        .await;
    let (status, body) = alice.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let missing = format!(
        "/_matrix/client/v3/room_keys/keys/{}/nope?version={newer}",
        hearth_tests::api::urlencode(room)
    );
    let (status, body) = alice.get(&missing).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = alice.get("/_matrix/client/v3/room_keys/version/junk").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_backends!(key_backup_keeps_the_better_session);

/// Dehydrated devices (MSC3814): stored with their keys, queried and claimed like any device,
/// receiving to-device messages that the rehydrating device reads a page at a time; replaced
/// and deleted with everything they owned. Bad uploads change nothing.
async fn dehydrated_device_lifecycle(backend: Backend) {
    const BASE: &str = "/_matrix/client/unstable/org.matrix.msc3814.v1/dehydrated_device";
    let server = TestServer::start(backend).await;
    let (alice, alice_id, alice_device) = user(&server, "alice").await;
    let (bob, _, _) = user(&server, "bob").await;
    let versions = alice
        .ok(Method::GET, "/_matrix/client/versions", None)
        .await;
    assert_eq!(versions["unstable_features"]["org.matrix.msc3814"], true);

    for method in [Method::GET, Method::DELETE] {
        let (status, body) = alice.call(method, BASE, None).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::NOT_FOUND, "M_NOT_FOUND")
        );
    }
    let data = json!({"algorithm": "org.matrix.msc3814.v2", "device_pickle": "cGlja2xl", "nonce": "bm9uY2U"});
    let dehydrated = |device: &str, data: &Value| {
        let (key, public) = key_pair(Some(device));
        json!({
            "device_id": device,
            "initial_device_display_name": "Dehydrated device",
            "device_data": data,
            "device_keys": device_keys(&alice_id, device, &key, &public),
            "one_time_keys": { "signed_curve25519:AAAAAQ": { "key": "ZGVoeWRyYXRlZCBvdGs" } },
            "fallback_keys": {
                "signed_curve25519:AAAAAg": { "key": "ZGVoeWRyYXRlZCBmYg", "fallback": true },
            },
        })
    };

    // Bad uploads are refused and store nothing.
    let (status, body) = alice
        .put(
            BASE,
            dehydrated("DEHYDRATED1", &json!({"device_pickle": "x"})),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
        "{body}"
    );
    let mut foreign = dehydrated("DEHYDRATED1", &data);
    foreign["device_id"] = json!("SOMEOTHER");
    let (status, body) = alice.put(BASE, foreign).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        "{body}"
    );
    let (status, body) = alice.put(BASE, dehydrated(&alice_device, &data)).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        "{body}"
    );
    let (status, _) = alice.get(BASE).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = alice.put(BASE, dehydrated("DEHYDRATED1", &data)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["device_id"], "DEHYDRATED1");
    let body = alice.ok(Method::GET, BASE, None).await;
    assert_eq!(body["device_id"], "DEHYDRATED1");
    assert_eq!(body["device_data"], data);

    // Others see it and claim its keys like any device's.
    let query = json!({ "device_keys": { &alice_id: [] } });
    let (_, keys) = bob
        .post("/_matrix/client/v3/keys/query", query.clone())
        .await;
    assert!(
        keys["device_keys"][&alice_id]["DEHYDRATED1"].is_object(),
        "{keys}"
    );
    let claim = json!({ "one_time_keys": { &alice_id: { "DEHYDRATED1": "signed_curve25519" } } });
    let (_, claimed) = bob.post("/_matrix/client/v3/keys/claim", claim).await;
    let got = &claimed["one_time_keys"][&alice_id]["DEHYDRATED1"]["signed_curve25519:AAAAAQ"];
    assert_eq!(got["key"], "ZGVoeWRyYXRlZCBvdGs", "{claimed}");

    // Messages to it wait for the rehydrating device, which reads them, then acknowledges.
    for n in 0..3 {
        let message = json!({ "messages": { &alice_id: { "DEHYDRATED1": { "n": n } } } });
        let (status, _) = bob
            .put(
                &format!("/_matrix/client/v3/sendToDevice/m.test/d{n}"),
                message,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let events = format!("{BASE}/DEHYDRATED1/events");
    let page = alice.ok(Method::POST, &events, Some(json!({}))).await;
    let got: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["content"]["n"])
        .collect();
    assert_eq!(got, vec![&json!(0), &json!(1), &json!(2)], "{page}");
    let next = page["next_batch"].as_str().unwrap().to_owned();
    let page = alice
        .ok(Method::POST, &events, Some(json!({ "next_batch": next })))
        .await;
    assert!(page["events"].as_array().unwrap().is_empty(), "{page}");
    // Only the dehydrated device's messages are read here, and only with tokens it gave out.
    let (status, body) = alice
        .post(&format!("{BASE}/{alice_device}/events"), json!({}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND")
    );
    let (status, body) = alice
        .post(&events, json!({ "next_batch": "nonsense" }))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM")
    );
    let (status, _) = bob.post(&events, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not Bob's");

    // A new one replaces it: the old device and its keys are gone.
    let (status, body) = alice.put(BASE, dehydrated("DEHYDRATED2", &data)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, keys) = bob
        .post("/_matrix/client/v3/keys/query", query.clone())
        .await;
    assert!(
        keys["device_keys"][&alice_id].get("DEHYDRATED1").is_none(),
        "{keys}"
    );
    assert!(
        keys["device_keys"][&alice_id]["DEHYDRATED2"].is_object(),
        "{keys}"
    );

    let body = alice.ok(Method::DELETE, BASE, None).await;
    assert_eq!(body["device_id"], "DEHYDRATED2");
    let (status, _) = alice.get(BASE).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, keys) = bob.post("/_matrix/client/v3/keys/query", query).await;
    assert!(
        keys["device_keys"][&alice_id].get("DEHYDRATED2").is_none(),
        "{keys}"
    );
}
on_both_backends!(dehydrated_device_lifecycle);
