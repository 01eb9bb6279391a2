//! Erased users: those who deactivated with `erase: true`. Users who come to a room after the
//! erasure are served redacted copies of what an erased user sent (client-server API,
//! "Deactivate account": `erase`).
//!
//! Every timeline read asks whether a sender is erased, so the set is kept in memory, read
//! once from the database and changed only here. It holds one id per erased account: it is
//! bounded by the accounts of the server, as the accounts table is.

use std::collections::HashSet;
use std::sync::Arc;

use ruma::{OwnedUserId, UserId};

use crate::db::{with_reader, with_writer};
use crate::{Store, StoreError};

/// The erased users, once loaded.
pub(crate) type ErasedSet = tokio::sync::RwLock<Option<Arc<HashSet<OwnedUserId>>>>;

impl Store {
    /// Mark the user erased (for good: an erased account stays deactivated).
    pub async fn set_erased(&self, user: &UserId) -> Result<(), StoreError> {
        // Held across the write, so that a concurrent first load cannot miss it.
        let mut erased = self.caches.erased.write().await;
        let written: Result<(), StoreError> = with_writer!(&self.db, |pool| {
            sqlx::query("UPDATE users SET erased = 1 WHERE user_id = $1")
                .bind(user.as_str())
                .execute(pool)
                .await?;
            Ok(())
        });
        written?;
        if let Some(set) = erased.as_mut() {
            Arc::make_mut(set).insert(user.to_owned());
        }
        Ok(())
    }

    /// Every erased user.
    pub async fn erased_users(&self) -> Result<Arc<HashSet<OwnedUserId>>, StoreError> {
        if let Some(set) = self.caches.erased.read().await.as_ref() {
            return Ok(set.clone());
        }
        let mut erased = self.caches.erased.write().await;
        if let Some(set) = erased.as_ref() {
            return Ok(set.clone());
        }
        let ids: Result<Vec<String>, StoreError> = with_reader!(&self.db, |pool| {
            Ok(
                sqlx::query_scalar("SELECT user_id FROM users WHERE erased = 1")
                    .fetch_all(pool)
                    .await?,
            )
        });
        let ids = ids?;
        let set: HashSet<OwnedUserId> = ids
            .into_iter()
            .filter_map(|id| OwnedUserId::try_from(id).ok())
            .collect();
        let set = Arc::new(set);
        *erased = Some(set.clone());
        Ok(set)
    }
}
