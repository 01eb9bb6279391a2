//! The user id grammar for new accounts.

use ruma::{OwnedUserId, ServerName};

use crate::AccountError;

/// The spec's limit on a whole user id, sigil and server name included.
const MAX_USER_ID_BYTES: usize = 255;

/// `@localpart:server` for a new account, if the localpart fits the (non-historical) grammar:
/// `a-z`, `0-9` and `._=-/+`, the whole id at most 255 bytes.
pub(crate) fn new_user_id(
    localpart: &str,
    server: &ServerName,
) -> Result<OwnedUserId, AccountError> {
    if localpart.is_empty() {
        return Err(AccountError::InvalidUsername(
            "the username is empty".into(),
        ));
    }
    if let Some(bad) = localpart.chars().find(|c| !allowed(*c)) {
        return Err(AccountError::InvalidUsername(format!(
            "{bad:?} is not allowed: use a-z, 0-9 and ._=-/+"
        )));
    }
    let full = format!("@{localpart}:{server}");
    if full.len() > MAX_USER_ID_BYTES {
        return Err(AccountError::InvalidUsername(format!(
            "the user id would be {} bytes long, the limit is {MAX_USER_ID_BYTES}",
            full.len()
        )));
    }
    OwnedUserId::try_from(full).map_err(|e| AccountError::InvalidUsername(e.to_string()))
}

fn allowed(c: char) -> bool {
    matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '=' | '-' | '/' | '+')
}

#[cfg(test)]
mod tests {
    use ruma::server_name;

    use super::*;

    #[test]
    fn grammar() {
        let server = server_name!("example.org");
        for ok in ["alice", "a.b_c=d-e/f+g", "0", "x".repeat(255 - 13).as_str()] {
            let id = new_user_id(ok, server);
            assert!(id.is_ok(), "{ok}: {id:?}");
        }
        for bad in [
            "",
            "Alice",
            "al ice",
            "al:ice",
            "@alice",
            "élise",
            "a\0",
            &"x".repeat(255 - 12),
        ] {
            let err = new_user_id(bad, server);
            assert!(
                matches!(err, Err(AccountError::InvalidUsername(_))),
                "{bad}: {err:?}"
            );
        }
    }
}
