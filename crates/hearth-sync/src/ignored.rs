//! Ignored users (`m.ignored_user_list` account data): their messages and invites never reach
//! the user who ignores them — not in `/sync`, `/messages`, `/context` or `/event`. Their state
//! events still count (a room's state is the room's, whoever set it), as the spec allows.

use std::collections::BTreeSet;

use hearth_rooms::Pdu;
use hearth_store::{Store, StoreError};
use ruma::{OwnedUserId, UserId};

/// The account-data type holding the list.
pub const IGNORED_USER_LIST: &str = "m.ignored_user_list";

/// The users `user` ignores (usually none: one cached account-data lookup).
pub async fn ignored_users(
    store: &Store,
    user: &UserId,
) -> Result<BTreeSet<OwnedUserId>, StoreError> {
    let Some(content) = store.account_data(user, None, IGNORED_USER_LIST).await? else {
        return Ok(BTreeSet::new());
    };
    let content: serde_json::Value = serde_json::from_str(&content).unwrap_or_default();
    Ok(content
        .get("ignored_users")
        .and_then(|u| u.as_object())
        .into_iter()
        .flatten()
        .filter_map(|(id, _)| OwnedUserId::try_from(id.as_str()).ok())
        .collect())
}

/// Whether the event is hidden from someone ignoring these users.
pub fn hides(ignored: &BTreeSet<OwnedUserId>, pdu: &Pdu) -> bool {
    !ignored.is_empty() && pdu.state_key().is_none() && ignored.contains(pdu.sender())
}
