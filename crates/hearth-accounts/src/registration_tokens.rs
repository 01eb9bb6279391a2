//! Registration tokens (`m.login.registration_token`): the operator hands out tokens, and while
//! registration requires one, only someone holding a usable token can register.
//!
//! A registration reserves a use when it passes the token stage and spends it when the account
//! is created; an abandoned registration gives it back. That way a token with one use left
//! cannot let two concurrent registrations through.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hearth_store::{RegistrationTokenRow, StoreError};
use rand::RngExt;

use crate::{AccountError, Accounts};

/// The longest token the spec allows.
const MAX_TOKEN_LEN: usize = 64;
/// Length of generated tokens: 16 characters of 62 are about 95 bits.
const GENERATED_LEN: usize = 16;

/// A registration token and how much of it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationToken {
    pub token: String,
    /// How many registrations it may complete; `None`: unlimited.
    pub uses_allowed: Option<i64>,
    /// Registrations that passed the token stage and have not finished yet.
    pub pending: i64,
    /// Registrations it let through.
    pub completed: i64,
    /// Milliseconds since the Unix epoch after which it is invalid; `None`: never.
    pub expiry_ms: Option<i64>,
}

impl From<RegistrationTokenRow> for RegistrationToken {
    fn from(row: RegistrationTokenRow) -> Self {
        Self {
            token: row.token,
            uses_allowed: row.uses_allowed,
            pending: row.pending,
            completed: row.completed,
            expiry_ms: row.expiry_ms,
        }
    }
}

impl RegistrationToken {
    /// Whether it could start a registration at `now_ms`: not expired, uses left.
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        self.expiry_ms.is_none_or(|expiry| expiry > now_ms)
            && self
                .uses_allowed
                .is_none_or(|allowed| self.pending + self.completed < allowed)
    }
}

/// Whether `token` has the shape the spec gives tokens: 1 to 64 characters of
/// `[A-Za-z0-9._~-]`.
pub fn is_registration_token_syntax(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn new_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // ThreadRng is a CSPRNG seeded from the operating system.
    let mut rng = rand::rng();
    (0..GENERATED_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl Accounts {
    /// Create a random token that allows `uses` registrations (unlimited if `None`) and expires
    /// after `expires_in` (never if `None`).
    pub async fn create_registration_token(
        &self,
        uses: Option<u32>,
        expires_in: Option<Duration>,
    ) -> Result<RegistrationToken, AccountError> {
        let uses_allowed = uses.map(i64::from);
        let expiry_ms = expires_in
            .map(|d| now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        // A collision of 95 random bits will not happen; retrying once costs nothing to write.
        let mut attempts = 0;
        loop {
            let token = new_token();
            match self
                .store
                .create_registration_token(&token, uses_allowed, expiry_ms)
                .await
            {
                Ok(()) => {
                    tracing::info!(?uses_allowed, ?expiry_ms, "created registration token");
                    return Ok(RegistrationToken {
                        token,
                        uses_allowed,
                        pending: 0,
                        completed: 0,
                        expiry_ms,
                    });
                }
                Err(StoreError::Conflict(_)) if attempts < 2 => attempts += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Every registration token, ordered by token.
    pub async fn registration_tokens(&self) -> Result<Vec<RegistrationToken>, AccountError> {
        Ok(self
            .store
            .registration_tokens()
            .await?
            .into_iter()
            .map(RegistrationToken::from)
            .collect())
    }

    /// Whether the token could start a registration now (a point-in-time answer).
    pub async fn registration_token_valid(&self, token: &str) -> Result<bool, AccountError> {
        if !is_registration_token_syntax(token) {
            return Ok(false);
        }
        Ok(self
            .store
            .registration_token(token)
            .await?
            .map(RegistrationToken::from)
            .is_some_and(|t| t.is_valid_at(now_ms())))
    }

    /// Reserve one use of the token for a registration in progress. Returns `false` (and
    /// reserves nothing) if the token is unknown, expired or used up.
    pub async fn reserve_registration_token(&self, token: &str) -> Result<bool, AccountError> {
        if !is_registration_token_syntax(token) {
            return Ok(false);
        }
        Ok(self.store.reserve_registration_token(token).await?)
    }

    /// Give back a use reserved by a registration that was abandoned.
    pub async fn release_registration_token(&self, token: &str) -> Result<(), AccountError> {
        Ok(self.store.release_registration_token(token).await?)
    }

    /// Spend a use reserved by a registration that completed.
    pub async fn complete_registration_token(&self, token: &str) -> Result<(), AccountError> {
        Ok(self.store.complete_registration_token(token).await?)
    }

    /// Forget every reserved use: called at start-up, when no registration can be in progress.
    pub async fn reset_pending_registration_tokens(&self) -> Result<(), AccountError> {
        Ok(self.store.reset_pending_registration_tokens().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_syntax() {
        assert!(is_registration_token_syntax("abc-DEF_0.9~"));
        assert!(is_registration_token_syntax(&"a".repeat(64)));
        assert!(!is_registration_token_syntax(""));
        assert!(!is_registration_token_syntax(&"a".repeat(65)));
        assert!(!is_registration_token_syntax("has space"));
        assert!(!is_registration_token_syntax("slash/"));
        let generated = new_token();
        assert_eq!(generated.len(), GENERATED_LEN);
        assert!(is_registration_token_syntax(&generated));
        assert_ne!(generated, new_token());
    }

    #[test]
    fn validity() {
        let token = RegistrationToken {
            token: "t".into(),
            uses_allowed: Some(2),
            pending: 1,
            completed: 0,
            expiry_ms: Some(1_000),
        };
        assert!(token.is_valid_at(999));
        assert!(!token.is_valid_at(1_000), "expired at expiry_ms");
        let used_up = RegistrationToken {
            completed: 1,
            ..token.clone()
        };
        assert!(!used_up.is_valid_at(0), "pending uses count");
        let unlimited = RegistrationToken {
            uses_allowed: None,
            expiry_ms: None,
            pending: 100,
            ..token
        };
        assert!(unlimited.is_valid_at(i64::MAX));
    }
}
