//! The CPU cost of an event: content hash + signature, reference hash (event id), verification,
//! and a full parse of a stored PDU.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use hearth_keys::SigningKey;
use hearth_rooms::Pdu;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use ruma::{CanonicalJsonObject, RoomVersionId, server_name};

fn event() -> CanonicalJsonObject {
    serde_json::from_str(
        r#"{
            "auth_events": ["$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "$bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"],
            "prev_events": ["$ccccccccccccccccccccccccccccccccccccccccccc"],
            "content": {"msgtype": "m.text", "body": "A typical short chat message, about eighty bytes long."},
            "depth": 12345, "origin_server_ts": 1764000000000,
            "room_id": "!abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "sender": "@alice:bench.test",
            "type": "m.room.message"
        }"#,
    )
    .unwrap()
}

fn signing(c: &mut Criterion) {
    let key = SigningKey::generate(server_name!("bench.test")).unwrap();
    let rules = RoomVersionId::V12.rules().unwrap();
    let mut signed = event();
    ruma::signatures::hash_and_sign_event("bench.test", key.pair(), &mut signed, &rules.redaction)
        .unwrap();
    let mut set = PublicKeySet::new();
    set.insert(
        key.key_id().to_string(),
        Base64::parse(key.public_key_base64()).unwrap(),
    );
    let keys = PublicKeyMap::from([("bench.test".to_owned(), set)]);
    let text = hearth_rooms::canonical_string(&signed);

    let mut group = c.benchmark_group("event");
    group.bench_function("hash and sign", |b| {
        b.iter(|| {
            let mut object = event();
            ruma::signatures::hash_and_sign_event(
                "bench.test",
                key.pair(),
                &mut object,
                &rules.redaction,
            )
            .unwrap();
            object
        })
    });
    group.bench_function("reference hash (event id)", |b| {
        b.iter(|| ruma::signatures::reference_hash(&signed, &rules).unwrap())
    });
    group.bench_function("verify", |b| {
        b.iter(|| ruma::signatures::verify_event(&keys, &signed, &rules).unwrap())
    });
    group.bench_function("parse stored PDU", |b| {
        b.iter(|| Pdu::from_json_str(&text, &rules).unwrap())
    });
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
