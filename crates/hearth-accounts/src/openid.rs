//! OpenID tokens (`POST /user/{userId}/openid/request_token`): short-lived tokens a user hands
//! to a third party (a widget, an integration manager, a call service), which asks the
//! homeserver who the token belongs to (`GET /_matrix/federation/v1/openid/userinfo`). They
//! prove an identity and grant no access to the account.
//!
//! Kept in memory only, by hash: they live an hour, and a restart merely makes the third party
//! ask the client for a new one. Bounded: when full, the soonest to expire go first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ruma::{OwnedUserId, UserId};

use crate::secrets::{hash_access_token, new_access_token};

/// How long an OpenID token is valid.
pub const OPENID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Live tokens at most, whoever holds them.
const CAPACITY: usize = 10_000;

/// The live OpenID tokens: cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct OpenIdTokens {
    by_hash: Arc<Mutex<HashMap<String, (OwnedUserId, Instant)>>>,
}

impl OpenIdTokens {
    /// A new token for `user`, valid for [`OPENID_TOKEN_LIFETIME`] from `now`.
    pub fn issue(&self, user: &UserId, now: Instant) -> String {
        let token = new_access_token();
        let mut tokens = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        tokens.retain(|_, (_, expires)| *expires > now);
        if tokens.len() >= CAPACITY {
            let mut expiries: Vec<Instant> = tokens.values().map(|(_, at)| *at).collect();
            expiries.sort_unstable();
            let cutoff = expiries[expiries.len() / 2];
            tokens.retain(|_, (_, expires)| *expires > cutoff);
        }
        tokens.insert(
            hash_access_token(&token),
            (user.to_owned(), now + OPENID_TOKEN_LIFETIME),
        );
        token
    }

    /// Whose token this is, if it is live at `now`.
    pub fn user_of(&self, token: &str, now: Instant) -> Option<OwnedUserId> {
        let tokens = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(&hash_access_token(token))
            .filter(|(_, expires)| *expires > now)
            .map(|(user, _)| user.clone())
    }
}

#[cfg(test)]
mod tests {
    use ruma::user_id;

    use super::*;

    #[test]
    fn tokens_name_their_user_until_they_expire() {
        let tokens = OpenIdTokens::default();
        let now = Instant::now();
        let alice = user_id!("@alice:x");
        let token = tokens.issue(alice, now);
        assert_eq!(tokens.user_of(&token, now).as_deref(), Some(alice));
        assert_eq!(tokens.user_of("hth_other", now), None);
        let later = now + OPENID_TOKEN_LIFETIME;
        assert_eq!(tokens.user_of(&token, later), None);
    }

    #[test]
    fn the_store_is_bounded() {
        let tokens = OpenIdTokens::default();
        let now = Instant::now();
        for i in 0..(CAPACITY + 10) {
            let at = now + Duration::from_millis(u64::try_from(i).unwrap_or(0));
            tokens.issue(user_id!("@a:x"), at);
        }
        let len = tokens.by_hash.lock().map(|t| t.len()).unwrap_or(0);
        assert!(len <= CAPACITY, "{len}");
    }
}
