use ruma::signatures::{PublicKeyMap, PublicKeySet, verify_json};
use ruma::{CanonicalJsonObject, server_name};

use super::*;

/// The signing key from the spec's cryptographic test vectors (appendices).
pub(crate) const SPEC_SEED: &str = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1";

fn spec_key() -> SigningKey {
    let seed = Base64::<ruma::serde::base64::Standard>::parse(SPEC_SEED).expect("base64");
    let seed: [u8; 32] = seed.as_bytes().try_into().expect("32 bytes");
    SigningKey::from_seed(server_name!("domain"), "1", seed, Path::new("<spec>")).expect("valid")
}

fn signature_of(object: &CanonicalJsonObject) -> String {
    let Some(CanonicalJsonValue::Object(sigs)) = object.get("signatures") else {
        panic!("no signatures")
    };
    let Some(CanonicalJsonValue::Object(domain)) = sigs.get("domain") else {
        panic!("no domain")
    };
    let Some(CanonicalJsonValue::String(sig)) = domain.get("ed25519:1") else {
        panic!("no sig")
    };
    sig.clone()
}

#[test]
fn spec_vector_public_key() {
    assert_eq!(
        spec_key().public_key_base64(),
        "XGX0JRS2Af3be3knz2fBiRbApjm2Dh61gXDJA8kcJNI"
    );
}

#[test]
fn spec_vector_sign_empty_object() {
    let mut object = CanonicalJsonObject::new();
    spec_key().sign_json(&mut object).expect("signs");
    assert_eq!(
        signature_of(&object),
        "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
    );
}

#[test]
fn spec_vector_sign_simple_object() {
    let mut object: CanonicalJsonObject =
        serde_json::from_str(r#"{"one": 1, "two": "Two"}"#).expect("json");
    spec_key().sign_json(&mut object).expect("signs");
    assert_eq!(
        signature_of(&object),
        "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
    );
}

#[test]
fn key_file_round_trip_and_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keys/signing.key");
    let (key, created) =
        SigningKey::load_or_generate(server_name!("example.org"), &path).expect("new");
    assert!(created);
    assert!(key.version().starts_with("a_"));
    let (again, created) =
        SigningKey::load_or_generate(server_name!("example.org"), &path).expect("load");
    assert!(!created);
    assert_eq!(again.public_key_base64(), key.public_key_base64());
    assert_eq!(again.key_id(), key.key_id());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(matches!(key.save_new(&path), Err(KeyError::Exists { .. })));
}

#[test]
fn malformed_key_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    for text in [
        "",
        "ed25519 a_1",
        "rsa a_1 AAAA",
        "ed25519 a_1 !!!",
        "ed25519 a_1 AAAA",
    ] {
        let path = dir.path().join("bad.key");
        fs::write(&path, text).expect("write");
        let err = SigningKey::load(server_name!("x.org"), &path).expect_err(text);
        assert!(matches!(err, KeyError::Malformed { .. }), "{text}: {err}");
    }
}

#[test]
fn server_keys_response_is_self_signed() {
    let key = SigningKey::generate(server_name!("example.org")).expect("key");
    let response = key
        .server_keys_response(SystemTime::now())
        .expect("response");
    assert_eq!(
        response.get("server_name"),
        Some(&CanonicalJsonValue::String("example.org".into()))
    );
    let mut set = PublicKeySet::new();
    set.insert(
        key.key_id().to_string(),
        Base64::parse(key.public_key_base64()).expect("b64"),
    );
    let map = PublicKeyMap::from([("example.org".to_owned(), set)]);
    verify_json(&map, &response).expect("signature verifies with the published key");

    // Tampering is detected.
    let mut tampered = response.clone();
    tampered.insert(
        "server_name".into(),
        CanonicalJsonValue::String("evil.org".into()),
    );
    assert!(verify_json(&map, &tampered).is_err());
}

#[test]
fn rotation_keeps_the_old_key_as_an_old_verify_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signing.key");
    let name = server_name!("example.org");
    let (first, created) = SigningKey::load_or_generate(name, &path).expect("key");
    assert!(created);
    let when = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let (second, old_id) = SigningKey::rotate(name, &path, when).expect("rotated");
    assert_eq!(&old_id, first.key_id());
    assert_ne!(second.key_id(), first.key_id());
    // The file now holds the new key, and loading it brings the old one along.
    let loaded = SigningKey::load(name, &path).expect("loads");
    assert_eq!(loaded.key_id(), second.key_id());
    assert_eq!(loaded.old_keys().len(), 1);
    assert_eq!(loaded.old_keys()[0].public_key, first.public_key_base64());
    assert_eq!(loaded.old_keys()[0].expired_ts, 1_700_000_000_000);

    // The key response names both, and is signed by the new key.
    let response = loaded
        .server_keys_response(SystemTime::now())
        .expect("signs");
    let Some(CanonicalJsonValue::Object(old)) = response.get("old_verify_keys") else {
        panic!("no old_verify_keys")
    };
    let Some(CanonicalJsonValue::Object(entry)) = old.get(first.key_id().as_str()) else {
        panic!("old key missing: {old:?}")
    };
    assert_eq!(
        entry.get("key"),
        Some(&CanonicalJsonValue::String(first.public_key_base64()))
    );
    assert!(entry.contains_key("expired_ts"));
    let mut keys = PublicKeySet::new();
    keys.insert(
        loaded.key_id().to_string(),
        Base64::parse(loaded.public_key_base64()).expect("base64"),
    );
    let mut map = PublicKeyMap::new();
    map.insert("example.org".into(), keys);
    verify_json(&map, &response).expect("signed by the new key");

    // A second rotation keeps both earlier keys.
    SigningKey::rotate(name, &path, SystemTime::now()).expect("rotated again");
    assert_eq!(
        SigningKey::load(name, &path)
            .expect("loads")
            .old_keys()
            .len(),
        2
    );
}

#[test]
fn a_malformed_old_keys_file_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signing.key");
    let name = server_name!("example.org");
    SigningKey::load_or_generate(name, &path).expect("key");
    fs::write(old_keys_path(&path), "ed25519 old not-base64!! 5\n").expect("write");
    let error = SigningKey::load(name, &path).expect_err("malformed");
    assert!(error.to_string().contains("line 1"), "{error}");
}
