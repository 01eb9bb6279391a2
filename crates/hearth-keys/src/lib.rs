//! The server's ed25519 signing key: generation, the key file, and the self-signed key response
//! served at `GET /_matrix/key/v2/server`.
//!
//! The key file holds one line, `ed25519 <version> <unpadded base64 seed>`, the format other
//! homeservers use too, so an operator can carry a key between implementations.
//!
//! Rotation (`hearth keys rotate`) writes a new key file and appends the old key's public half
//! to `<key file>.old`, one line each, `ed25519 <version> <public key> <expired_ts>`: the key
//! response lists them under `old_verify_keys`, so events signed with them still verify.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ruma::serde::Base64;
use ruma::signatures::{Ed25519KeyPair, KeyPair, Signature};
use ruma::{
    CanonicalJsonObject, CanonicalJsonValue, MilliSecondsSinceUnixEpoch, OwnedServerName,
    OwnedServerSigningKeyId, ServerName,
};

/// PKCS#8 v1 prefix of an ed25519 private key: the DER header before the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// How long remote servers may cache our key response.
pub const KEY_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read signing key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write signing key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signing key {path} exists already; refusing to overwrite it")]
    Exists { path: PathBuf },
    #[error("signing key {path} is malformed: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("signing failed: {0}")]
    Sign(#[from] ruma::signatures::JsonError),
}

/// A key this server signed with before, as `old_verify_keys` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldVerifyKey {
    pub key_id: OwnedServerSigningKeyId,
    /// Unpadded standard base64.
    pub public_key: String,
    /// When it stopped being used (milliseconds since the epoch).
    pub expired_ts: u64,
}

/// This server's signing identity.
pub struct SigningKey {
    server_name: OwnedServerName,
    key_id: OwnedServerSigningKeyId,
    pair: Ed25519KeyPair,
    seed: [u8; 32],
    /// Keys it signed with before (from `<key file>.old`).
    old: Vec<OldVerifyKey>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("server_name", &self.server_name)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key with a random version such as `a_Xb3k`.
    pub fn generate(server_name: &ServerName) -> Result<Self, KeyError> {
        let der = Ed25519KeyPair::generate();
        let seed: [u8; 32] = der
            .get(16..48)
            .and_then(|s| s.try_into().ok())
            // v1 and v2 documents differ only in length and version before the algorithm id.
            .filter(|_| der.get(5..16) == Some(&PKCS8_ED25519_PREFIX[5..]))
            .ok_or_else(|| KeyError::Malformed {
                path: PathBuf::from("<generated>"),
                why: "unexpected PKCS#8 layout from the key generator".into(),
            })?;
        // Key versions are limited to [a-zA-Z0-9_]; four alphanumerics from the seed suffice to
        // tell this key from a later one.
        const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let suffix: String = seed[..4]
            .iter()
            .map(|b| char::from(ALNUM[usize::from(*b) % ALNUM.len()]))
            .collect();
        let version = format!("a_{suffix}");
        Self::from_seed(server_name, &version, seed, Path::new("<generated>"))
    }

    /// Rebuild a key from its seed (as stored in the key file).
    pub fn from_seed(
        server_name: &ServerName,
        version: &str,
        seed: [u8; 32],
        path: &Path,
    ) -> Result<Self, KeyError> {
        let malformed = |why: String| KeyError::Malformed {
            path: path.to_path_buf(),
            why,
        };
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        let pair = Ed25519KeyPair::from_der(&der, version.to_owned())
            .map_err(|e| malformed(e.to_string()))?;
        let key_id = format!("ed25519:{version}")
            .try_into()
            .map_err(|e: ruma::IdParseError| malformed(format!("bad key version: {e}")))?;
        Ok(Self {
            server_name: server_name.to_owned(),
            key_id,
            pair,
            seed,
            old: Vec::new(),
        })
    }

    /// Read the key file at `path`.
    pub fn load(server_name: &ServerName, path: &Path) -> Result<Self, KeyError> {
        let text = fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let malformed = |why: &str| KeyError::Malformed {
            path: path.to_path_buf(),
            why: why.into(),
        };
        let mut parts = text.split_whitespace();
        let (Some("ed25519"), Some(version), Some(seed), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed(
                "expected one line: ed25519 <version> <base64 seed>",
            ));
        };
        let seed = Base64::<ruma::serde::base64::Standard>::parse(seed)
            .map_err(|_| malformed("seed is not base64"))?;
        let seed: [u8; 32] = seed
            .as_bytes()
            .try_into()
            .map_err(|_| malformed("seed must be 32 bytes"))?;
        let mut key = Self::from_seed(server_name, version, seed, path)?;
        key.old = load_old_keys(&old_keys_path(path))?;
        Ok(key)
    }

    /// Replace the key at `path` with a new one, keeping the old key's public half (expired
    /// `now`) in `<path>.old`. The new key file replaces the old one atomically.
    pub fn rotate(
        server_name: &ServerName,
        path: &Path,
        now: SystemTime,
    ) -> Result<(Self, OwnedServerSigningKeyId), KeyError> {
        let current = Self::load(server_name, path)?;
        let mut new = Self::generate(server_name)?;
        while new.version() == current.version()
            || current.old.iter().any(|o| o.key_id == new.key_id)
        {
            new = Self::generate(server_name)?;
        }
        let expired_ts = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        // The old key is recorded first: if the rename below never happens, the current key
        // is still in force and merely listed as old too, which verifies the same.
        let old_path = old_keys_path(path);
        let line = format!(
            "ed25519 {} {} {expired_ts}\n",
            current.version(),
            current.public_key_base64()
        );
        append_synced(&old_path, &line)?;
        let temp = {
            let mut name = path.as_os_str().to_owned();
            name.push(".new");
            PathBuf::from(name)
        };
        let _ = fs::remove_file(&temp);
        new.save_new(&temp)?;
        fs::rename(&temp, path).map_err(|source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // The rename is durable once the directory is.
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        new.old = load_old_keys(&old_path)?;
        Ok((new, current.key_id))
    }

    /// The keys this server signed with before.
    pub fn old_keys(&self) -> &[OldVerifyKey] {
        &self.old
    }

    /// Write a new key file (mode 0600), refusing to replace an existing one.
    pub fn save_new(&self, path: &Path) -> Result<(), KeyError> {
        let write_err = |source| KeyError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(write_err)?;
        }
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                write_err(source)
            }
        })?;
        let line = format!(
            "ed25519 {} {}\n",
            self.version(),
            Base64::<ruma::serde::base64::Standard, _>::new(self.seed).encode()
        );
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(write_err)
    }

    /// Load the key at `path`, or create it there if there is none yet.
    pub fn load_or_generate(
        server_name: &ServerName,
        path: &Path,
    ) -> Result<(Self, bool), KeyError> {
        if path.exists() {
            return Ok((Self::load(server_name, path)?, false));
        }
        let key = Self::generate(server_name)?;
        key.save_new(path)?;
        Ok((key, true))
    }

    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    pub fn key_id(&self) -> &OwnedServerSigningKeyId {
        &self.key_id
    }

    pub fn version(&self) -> &str {
        self.pair.version()
    }

    /// The public key, unpadded standard base64 as it appears on the wire.
    pub fn public_key_base64(&self) -> String {
        Base64::<ruma::serde::base64::Standard, _>::new(self.pair.public_key()).encode()
    }

    /// The ruma key pair, for hashing-and-signing events.
    pub fn pair(&self) -> &Ed25519KeyPair {
        &self.pair
    }

    /// Sign arbitrary bytes (used by request signing later).
    pub fn sign_bytes(&self, message: &[u8]) -> Signature {
        self.pair.sign(message)
    }

    /// Add this server's signature to a JSON object (`signatures.<server>.<key id>`).
    pub fn sign_json(&self, object: &mut CanonicalJsonObject) -> Result<(), KeyError> {
        ruma::signatures::sign_json(self.server_name.as_str(), &self.pair, object)?;
        Ok(())
    }

    /// The body of `GET /_matrix/key/v2/server`: our current key, valid for [`KEY_VALIDITY`],
    /// signed by itself.
    pub fn server_keys_response(&self, now: SystemTime) -> Result<CanonicalJsonObject, KeyError> {
        let valid_until = MilliSecondsSinceUnixEpoch::from_system_time(now + KEY_VALIDITY)
            .unwrap_or_else(MilliSecondsSinceUnixEpoch::now);
        let verify_key = CanonicalJsonObject::from([(
            "key".to_owned(),
            CanonicalJsonValue::String(self.public_key_base64()),
        )]);
        let mut object = CanonicalJsonObject::from([
            (
                "server_name".to_owned(),
                CanonicalJsonValue::String(self.server_name.to_string()),
            ),
            (
                "verify_keys".to_owned(),
                CanonicalJsonValue::Object(CanonicalJsonObject::from([(
                    self.key_id.to_string(),
                    CanonicalJsonValue::Object(verify_key),
                )])),
            ),
            (
                "old_verify_keys".to_owned(),
                CanonicalJsonValue::Object(
                    self.old
                        .iter()
                        .filter(|old| old.key_id != self.key_id)
                        .map(|old| {
                            let entry = CanonicalJsonObject::from([
                                (
                                    "key".to_owned(),
                                    CanonicalJsonValue::String(old.public_key.clone()),
                                ),
                                (
                                    "expired_ts".to_owned(),
                                    CanonicalJsonValue::Integer(ruma::Int::new_saturating(
                                        i64::try_from(old.expired_ts).unwrap_or(i64::MAX),
                                    )),
                                ),
                            ]);
                            (old.key_id.to_string(), CanonicalJsonValue::Object(entry))
                        })
                        .collect(),
                ),
            ),
            (
                "valid_until_ts".to_owned(),
                CanonicalJsonValue::Integer(valid_until.get().into()),
            ),
        ]);
        self.sign_json(&mut object)?;
        Ok(object)
    }
}

/// Where the keys a key file replaced are kept.
pub fn old_keys_path(key_path: &Path) -> PathBuf {
    let mut name = key_path.as_os_str().to_owned();
    name.push(".old");
    PathBuf::from(name)
}

/// The old keys listed at `path` (none when there is no such file).
fn load_old_keys(path: &Path) -> Result<Vec<OldVerifyKey>, KeyError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(KeyError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let malformed = |n: usize, why: &str| KeyError::Malformed {
        path: path.to_path_buf(),
        why: format!("line {n}: {why}"),
    };
    let mut keys = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let (Some("ed25519"), Some(version), Some(public), Some(expired), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed(
                n + 1,
                "expected: ed25519 <version> <public key> <expired_ts>",
            ));
        };
        let key_id = format!("ed25519:{version}")
            .try_into()
            .map_err(|_| malformed(n + 1, "bad key version"))?;
        Base64::<ruma::serde::base64::Standard>::parse(public)
            .map_err(|_| malformed(n + 1, "public key is not base64"))?;
        let expired_ts = expired
            .parse()
            .map_err(|_| malformed(n + 1, "expired_ts is not a number"))?;
        keys.push(OldVerifyKey {
            key_id,
            public_key: public.to_owned(),
            expired_ts,
        });
    }
    Ok(keys)
}

/// Append a line to a file and make it durable.
fn append_synced(path: &Path, line: &str) -> Result<(), KeyError> {
    let write_err = |source| KeyError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_err)
}

#[cfg(test)]
mod tests;
