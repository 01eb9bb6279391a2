//! The spec's test vectors (appendices: canonical JSON, signing JSON, signing events) and the
//! redaction algorithm per room version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use hearth_keys::SigningKey;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, PublicKeySet, Verified, verify_event};
use ruma::{CanonicalJsonObject, CanonicalJsonValue, RoomVersionId, server_name};

use super::*;

const SPEC_SEED: &str = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";
const SPEC_PUBLIC_KEY: &str = "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI";

fn spec_key() -> SigningKey {
    let seed = Base64::<ruma::serde::base64::Standard>::parse(SPEC_SEED).unwrap();
    SigningKey::from_seed(
        server_name!("domain"),
        "1",
        seed.as_bytes().try_into().unwrap(),
        Path::new("-"),
    )
    .unwrap()
}

fn object(json: &str) -> CanonicalJsonObject {
    serde_json::from_str(json).unwrap()
}

fn rules(version: &str) -> RoomVersionRules {
    RoomVersionId::try_from(version).unwrap().rules().unwrap()
}

fn field<'a>(object: &'a CanonicalJsonObject, path: &[&str]) -> Option<&'a CanonicalJsonValue> {
    let (last, parents) = path.split_last()?;
    let mut current = object;
    for key in parents {
        match current.get(*key) {
            Some(CanonicalJsonValue::Object(inner)) => current = inner,
            _ => return None,
        }
    }
    current.get(*last)
}

fn spec_key_map() -> PublicKeyMap {
    let mut set = PublicKeySet::new();
    set.insert("ed25519:1".into(), Base64::parse(SPEC_PUBLIC_KEY).unwrap());
    PublicKeyMap::from([("domain".to_owned(), set)])
}

#[test]
fn canonical_json_vectors() {
    let cases = [
        ("{}", "{}"),
        (r#"{"one": 1, "two": "Two"}"#, r#"{"one":1,"two":"Two"}"#),
        (r#"{"b": "2", "a": "1"}"#, r#"{"a":"1","b":"2"}"#),
        (r#"{"b":"2","a":"1"}"#, r#"{"a":"1","b":"2"}"#),
        (
            r#"{"auth": {"success": true, "mxid": "@john.doe:example.com", "profile": {"display_name": "John Doe", "three_pids": [{"medium": "email", "address": "john.doe@example.org"}, {"medium": "msisdn", "address": "123456789"}]}}}"#,
            r#"{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}"#,
        ),
        (r#"{"a": "日本語"}"#, r#"{"a":"日本語"}"#),
        (r#"{"本": 2, "日": 1}"#, r#"{"日":1,"本":2}"#),
        (r#"{"a": "\u65E5"}"#, r#"{"a":"日"}"#),
        (r#"{"a": null}"#, r#"{"a":null}"#),
    ];
    for (input, expected) in cases {
        assert_eq!(canonical_string(&object(input)), expected, "{input}");
    }
    // The appendix's last vector turns `-0` and `1e10` into integers. Both are floats to a JSON
    // parser, and Hearth refuses floats in events, as the same appendix's note requires ("Float
    // values are not permitted by this encoding").
    assert!(serde_json::from_str::<CanonicalJsonObject>(r#"{"a": -0}"#).is_err());
    assert!(serde_json::from_str::<CanonicalJsonObject>(r#"{"b": 1e10}"#).is_err());
    // Integers beyond 2^53 - 1 are not canonical either.
    assert!(serde_json::from_str::<CanonicalJsonObject>(r#"{"b": 9007199254740992}"#).is_err());
}

#[test]
fn signing_event_vector_minimal() {
    let mut event = object(
        r#"{
            "room_id": "!x:domain", "sender": "@a:domain", "origin": "domain",
            "origin_server_ts": 1000000, "signatures": {}, "hashes": {}, "type": "X",
            "content": {}, "prev_events": [], "auth_events": [], "depth": 3,
            "unsigned": {"age_ts": 1000000}
        }"#,
    );
    let rules = rules("5");
    ruma::signatures::hash_and_sign_event(
        "domain",
        spec_key().pair(),
        &mut event,
        &rules.redaction,
    )
    .unwrap();
    assert_eq!(
        field(&event, &["hashes", "sha256"]),
        Some(&CanonicalJsonValue::String(
            "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos".into()
        ))
    );
    assert_eq!(
        field(&event, &["signatures", "domain", "ed25519:1"]),
        Some(&CanonicalJsonValue::String(
            "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg".into()
        ))
    );
    assert_eq!(
        verify_event(&spec_key_map(), &event, &rules).unwrap(),
        Verified::All
    );
}

#[test]
fn signing_event_vector_redactable() {
    let mut event = object(
        r#"{
            "content": {"body": "Here is the message content"},
            "event_id": "$0:domain", "origin": "domain", "origin_server_ts": 1000000,
            "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain",
            "signatures": {}, "unsigned": {"age_ts": 1000000}
        }"#,
    );
    let rules = rules("1");
    ruma::signatures::hash_and_sign_event(
        "domain",
        spec_key().pair(),
        &mut event,
        &rules.redaction,
    )
    .unwrap();
    assert_eq!(
        field(&event, &["hashes", "sha256"]),
        Some(&CanonicalJsonValue::String(
            "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g".into()
        ))
    );
    assert_eq!(
        field(&event, &["signatures", "domain", "ed25519:1"]),
        Some(&CanonicalJsonValue::String(
            "Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA".into()
        ))
    );
    // The signature covers the redacted form, so redacting keeps it valid; the content hash
    // no longer matches, which is what tells a receiver the event was redacted.
    let redacted = redact(event.clone(), &rules).unwrap();
    assert_eq!(
        field(&redacted, &["content"]),
        Some(&CanonicalJsonValue::Object(Default::default()))
    );
    assert_eq!(
        verify_event(&spec_key_map(), &redacted, &rules).unwrap(),
        Verified::Signatures
    );
    // Tampering with a signed field breaks the signature.
    let mut forged = event;
    forged.insert(
        "sender".into(),
        CanonicalJsonValue::String("@mallory:domain".into()),
    );
    assert!(verify_event(&spec_key_map(), &forged, &rules).is_err());
}

/// An event as each room version redacts it: what survives where.
#[test]
fn redaction_per_room_version() {
    let with = |kind: &str, content: &str| {
        object(&format!(
            r#"{{"type": "{kind}", "state_key": "", "content": {content}, "room_id": "!r:domain",
                "sender": "@u:domain", "origin": "domain", "origin_server_ts": 1, "depth": 1,
                "prev_events": [], "auth_events": [], "hashes": {{"sha256": "x"}},
                "signatures": {{}}, "unsigned": {{"age_ts": 1}}, "prev_state": []}}"#
        ))
    };
    let kept = |version: &str, event: &CanonicalJsonObject, path: &[&str]| {
        field(&redact(event.clone(), &rules(version)).unwrap(), path).is_some()
    };

    let create = with(
        "m.room.create",
        r#"{"creator": "@u:domain", "m.federate": false}"#,
    );
    assert!(kept("10", &create, &["content", "creator"]));
    assert!(
        !kept("10", &create, &["content", "m.federate"]),
        "v1-v10 keep only creator"
    );
    assert!(
        kept("11", &create, &["content", "m.federate"]),
        "v11+ keep the whole create content"
    );

    let power = with(
        "m.room.power_levels",
        r#"{"ban": 50, "invite": 0, "notifications": {}}"#,
    );
    assert!(kept("1", &power, &["content", "ban"]));
    assert!(!kept("10", &power, &["content", "invite"]));
    assert!(
        kept("11", &power, &["content", "invite"]),
        "v11 keeps invite"
    );
    assert!(!kept("11", &power, &["content", "notifications"]));

    let join_rules = with(
        "m.room.join_rules",
        r#"{"join_rule": "restricted", "allow": []}"#,
    );
    assert!(!kept("7", &join_rules, &["content", "allow"]));
    assert!(
        kept("8", &join_rules, &["content", "allow"]),
        "v8 keeps allow"
    );
    assert!(kept("1", &join_rules, &["content", "join_rule"]));

    let member = with(
        "m.room.member",
        r#"{"membership": "join", "join_authorised_via_users_server": "@a:b", "displayname": "U"}"#,
    );
    assert!(kept("1", &member, &["content", "membership"]));
    assert!(!kept("1", &member, &["content", "displayname"]));
    assert!(!kept(
        "8",
        &member,
        &["content", "join_authorised_via_users_server"]
    ));
    assert!(
        kept(
            "9",
            &member,
            &["content", "join_authorised_via_users_server"]
        ),
        "v9 keeps it"
    );

    let aliases = with("m.room.aliases", r##"{"aliases": ["#a:domain"]}"##);
    assert!(
        kept("5", &aliases, &["content", "aliases"]),
        "v1-v5 keep aliases"
    );
    assert!(!kept("6", &aliases, &["content", "aliases"]));

    let redaction = with("m.room.redaction", r#"{"redacts": "$x", "reason": "spam"}"#);
    assert!(!kept("10", &redaction, &["content", "redacts"]));
    assert!(
        kept("11", &redaction, &["content", "redacts"]),
        "v11 keeps content.redacts"
    );
    assert!(!kept("11", &redaction, &["content", "reason"]));

    // Top-level keys: origin, membership and prev_state stop being protected in v11.
    assert!(kept("10", &create, &["origin"]) && kept("10", &create, &["prev_state"]));
    assert!(!kept("11", &create, &["origin"]) && !kept("11", &create, &["prev_state"]));
    // unsigned never survives; signatures and hashes always do.
    for v in ["1", "6", "11", "12"] {
        assert!(!kept(v, &create, &["unsigned"]));
        assert!(kept(v, &create, &["signatures"]) && kept(v, &create, &["hashes"]));
    }
}

/// Event ids: v1/v2 carry a server-generated id; v3 uses standard base64 of the reference
/// hash, v4+ URL-safe base64; a PDU parses back to the same id it was built with.
#[test]
fn event_ids_per_format() {
    let key = SigningKey::generate(server_name!("hearth.test")).unwrap();
    let room = ruma::owned_room_id!("!r:hearth.test");
    let sender = ruma::owned_user_id!("@u:hearth.test");
    for version in ["1", "2", "3", "4", "11"] {
        let rules = rules(version);
        let frame = crate::build::Frame {
            rules: &rules,
            room_id: Some(&room),
            key: &key,
        };
        let draft = crate::EventDraft::message("m.room.message", serde_json::json!({"body": "x"}));
        let pdu = crate::build::build(
            &frame,
            &draft,
            &sender,
            &[],
            &[],
            1,
            MilliSecondsSinceUnixEpoch(1u32.into()),
        )
        .unwrap();
        let id = pdu.event_id().as_str();
        match version {
            "1" | "2" => assert!(id.ends_with(":hearth.test"), "{id}"),
            _ => {
                let hash = ruma::signatures::reference_hash(pdu.json(), &rules).unwrap();
                assert_eq!(id, format!("${hash}"));
                assert_eq!(id.len(), 44, "$ + 43 characters of unpadded base64");
                if version == "3" {
                    assert!(!id.contains('-') && !id.contains('_'));
                } else {
                    assert!(!id.contains('+') && !id.contains('/'));
                }
            }
        }
        let reparsed = Pdu::from_json_str(&pdu.canonical_json(), &rules).unwrap();
        assert_eq!(reparsed.event_id(), pdu.event_id());
    }
}

#[test]
fn malformed_pdus_are_refused() {
    let rules = rules("11");
    for json in [
        r#"{"type": 1}"#,
        r#"{"type": "m.room.message", "room_id": "not-a-room", "sender": "@u:d", "origin_server_ts": 1, "depth": 1, "content": {}, "prev_events": [], "auth_events": []}"#,
        r#"{"type": "m.room.message", "room_id": "!r:d", "sender": "nobody", "origin_server_ts": 1, "depth": 1, "content": {}, "prev_events": [], "auth_events": []}"#,
        r#"{"type": "m.room.message", "room_id": "!r:d", "sender": "@u:d", "origin_server_ts": -1, "depth": 1, "content": {}, "prev_events": [], "auth_events": []}"#,
        r#"{"type": "m.room.message", "room_id": "!r:d", "sender": "@u:d", "origin_server_ts": 1, "depth": 1, "content": [], "prev_events": [], "auth_events": []}"#,
        r#"{"type": "m.room.message", "room_id": "!r:d", "sender": "@u:d", "origin_server_ts": 1, "depth": 1, "content": {}, "prev_events": [["$a", {}]], "auth_events": []}"#,
        r#"{"type": "m.room.message", "sender": "@u:d", "origin_server_ts": 1, "depth": 1, "content": {}, "prev_events": [], "auth_events": []}"#,
    ] {
        assert!(Pdu::from_json_str(json, &rules).is_err(), "{json}");
    }
}

/// Before v11 a redaction names its target at the top level; from v11 in `content`, and a
/// top-level copy is ignored there.
#[test]
fn redaction_target_per_version() {
    use ruma::state_res::Event;
    let json = r#"{"type": "m.room.redaction", "room_id": "!r:d", "sender": "@u:d",
        "origin_server_ts": 1, "depth": 1, "prev_events": [], "auth_events": [],
        "redacts": "$toplevel", "content": {"redacts": "$content"}, "event_id": "$e:d"}"#;
    let target = |version: &str| {
        let pdu = Pdu::from_json_str(json, &rules(version)).unwrap();
        pdu.redacts().map(|id| id.to_string())
    };
    assert_eq!(target("1").as_deref(), Some("$toplevel"));
    assert_eq!(target("10").as_deref(), Some("$toplevel"));
    assert_eq!(target("11").as_deref(), Some("$content"));
    assert_eq!(target("12").as_deref(), Some("$content"));
}
