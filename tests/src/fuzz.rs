//! The bodies of the fuzz targets in `tests/fuzz` (run there with `cargo +nightly fuzz`), kept
//! here so that the test suite's smoke run (`tests/tests/fuzz_smoke.rs`) drives the very same
//! code on the stable toolchain. Every function must return, whatever the bytes: a panic is a
//! bug found.

use std::sync::OnceLock;

use hearth_rooms::Pdu;
use hearth_sync::{PaginationToken, SyncToken};
use ruma::CanonicalJsonObject;
use ruma::room_version_rules::RoomVersionRules;

/// Client request bodies through the extractor's checks and ruma's parsers.
pub fn client_body(data: &[u8]) {
    hearth_api::fuzzing::client_body(data);
}

/// Filters: parsing, the sync translation and the type globs.
pub fn filter(data: &[u8]) {
    hearth_api::fuzzing::filter(data);
}

/// The room version a byte picks (1 to 12).
fn rules(selector: u8) -> RoomVersionRules {
    let version = ruma::RoomVersionId::try_from(format!("{}", selector % 12 + 1).as_str())
        .unwrap_or(ruma::RoomVersionId::V12);
    version.rules().unwrap_or(RoomVersionRules::V12)
}

/// PDUs as federation will hand them over: canonical JSON, parsing for a room version, event
/// ids (reference hashes), redaction and signature checks.
pub fn pdu(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let rules = rules(selector);
    if let Ok(pdu) = Pdu::from_json_str(text, &rules) {
        let _ = pdu.redacted();
        let _ = pdu.to_client_event();
        let _ = pdu.canonical_json();
    }
    let Ok(object) = serde_json::from_str::<CanonicalJsonObject>(text) else {
        return;
    };
    let _ = ruma::signatures::reference_hash(&object, &rules);
    let _ = ruma::signatures::verify_event(&Default::default(), &object, &rules);
    if let Ok(redacted) = hearth_rooms::redact(object, &rules) {
        let _ = hearth_rooms::canonical_string(&redacted);
    }
}

/// Sync and pagination tokens: parsing never panics, and what parses writes back to itself.
pub fn tokens(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(token) = text.parse::<SyncToken>() {
        let again: SyncToken = token
            .to_string()
            .parse()
            .unwrap_or_else(|()| panic!("{token:?} does not read back"));
        assert_eq!(again, token);
    }
    if let Ok(token) = text.parse::<PaginationToken>() {
        let again: PaginationToken = token
            .to_string()
            .parse()
            .unwrap_or_else(|()| panic!("{token:?} does not read back"));
        assert_eq!(again, token);
    }
}

/// Push rules: a stored ruleset (before the NUL byte) evaluated against an event (after it),
/// as every sync that counts unread messages does.
pub fn push_rules(data: &[u8]) {
    let (rules, event) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{}"[..]),
    };
    let (Ok(rules), Ok(event)) = (std::str::from_utf8(rules), std::str::from_utf8(event)) else {
        return;
    };
    let user = ruma::owned_user_id!("@alice:hearth.test");
    let ruleset = hearth_sync::push_rules::ruleset_from(Some(rules), &user);
    // Events reach the rules as Hearth stores them: canonical JSON it wrote itself from parsed
    // values (so never, say, a lone surrogate escape, which ruma's flattening unwraps on).
    let Ok(event) = serde_json::from_str::<CanonicalJsonObject>(event) else {
        return;
    };
    let Ok(raw) = serde_json::value::to_raw_value(&event) else {
        return;
    };
    let context = ruma::push::PushConditionRoomCtx::new(
        ruma::owned_room_id!("!room:hearth.test"),
        ruma::uint!(5),
        user,
        "Alice".to_owned(),
    );
    let event = ruma::serde::Raw::<serde_json::Value>::from_json(raw);
    runtime().block_on(async {
        let _ = ruleset.get_actions(&event, &context).await;
    });
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        #[allow(clippy::expect_used)]
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

/// A fuzz target: bytes in, nothing out (but no panic).
pub type Target = fn(&[u8]);

/// Every target, by name (for the smoke run and the corpus tools).
pub const TARGETS: &[(&str, Target)] = &[
    ("client_body", client_body),
    ("filter", filter),
    ("pdu", pdu),
    ("tokens", tokens),
    ("push_rules", push_rules),
];
