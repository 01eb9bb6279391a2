//! Random access tokens and device ids, and the hash under which a token is stored.

use rand::{Rng, RngExt};
use ruma::OwnedDeviceId;
use ruma::serde::{Base64, base64::UrlSafe};
use sha2::{Digest, Sha256};

/// Marks Hearth's tokens, so that one pasted somewhere it should not be is easy to spot.
const TOKEN_PREFIX: &str = "hth_";

/// A new access token: 32 random bytes, URL-safe base64 without padding, prefixed `hth_`.
pub(crate) fn new_access_token() -> String {
    let mut bytes = [0u8; 32];
    // ThreadRng is a CSPRNG seeded from the operating system.
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        Base64::<UrlSafe, _>::new(bytes).encode()
    )
}

/// The form a token is stored and looked up in: SHA-256, lowercase hex. A fast hash is enough
/// because the token itself has 256 bits of entropy; nothing needs to be slowed down to guess.
pub fn hash_access_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A new device id: 10 uppercase letters.
pub(crate) fn new_device_id() -> OwnedDeviceId {
    let mut rng = rand::rng();
    let id: String = (0..10)
        .map(|_| char::from(rng.random_range(b'A'..=b'Z')))
        .collect();
    id.into()
}

/// The random part of a guest's user id: 12 lowercase letters and digits.
pub(crate) fn new_guest_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let a = new_access_token();
        let b = new_access_token();
        assert_ne!(a, b);
        let body = a.strip_prefix("hth_").unwrap_or_default();
        assert_eq!(body.len(), 43, "{a}"); // 32 bytes, unpadded base64
        assert!(
            body.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{a}"
        );
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_access_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn device_id_shape() {
        let id = new_device_id();
        assert_eq!(id.as_str().len(), 10);
        assert!(id.as_str().bytes().all(|c| c.is_ascii_uppercase()), "{id}");
        assert_ne!(id, new_device_id());
    }
}
