//! Whose device lists a user must hear about: `device_lists` in `/sync`, the `e2ee` extension
//! of sliding sync, and `keys/changes`.
//!
//! A user tracks the devices of everyone they share a joined room with (and their own). Between
//! two positions they hear of (`changed`) those whose keys changed and those they newly share a
//! room with, and (`left`) those they no longer share any room with.

use std::collections::{BTreeSet, HashSet};

use ruma::{OwnedRoomId, OwnedUserId, UserId};

use crate::{E2ee, E2eeError};

/// What changed between two positions.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeviceListChanges {
    pub changed: Vec<OwnedUserId>,
    pub left: Vec<OwnedUserId>,
}

impl DeviceListChanges {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.left.is_empty()
    }
}

impl E2ee {
    /// The changes `user` hears of after `(events, device_lists)` positions `from`, up to `to`.
    pub async fn device_list_changes(
        &self,
        user: &UserId,
        from: (i64, i64),
        to: (i64, i64),
    ) -> Result<DeviceListChanges, E2eeError> {
        let key_changes = self.store.device_list_changes(from.1, to.1).await?;
        let memberships = self.store.membership_changes(from.0, to.0).await?;
        if key_changes.is_empty() && memberships.is_empty() {
            return Ok(DeviceListChanges::default());
        }
        let joined: HashSet<OwnedRoomId> = self
            .store
            .memberships_of(user)
            .await?
            .iter()
            .filter(|m| m.membership == "join")
            .map(|m| m.room_id.clone())
            .collect();
        let mut changed = BTreeSet::new();
        let mut maybe_left = BTreeSet::new();
        for (room, member, membership) in &memberships {
            let joined_now = membership == "join";
            if member == user {
                // The user's own join or leave: everyone in that room.
                let others = self.store.room_members(room, Some("join")).await?;
                for other in others.into_iter().map(|m| m.user_id) {
                    if other != *user {
                        if joined_now {
                            changed.insert(other);
                        } else {
                            maybe_left.insert(other);
                        }
                    }
                }
            } else if joined.contains(room) || !joined_now {
                if joined_now {
                    changed.insert(member.clone());
                } else if membership == "leave" || membership == "ban" {
                    maybe_left.insert(member.clone());
                }
            }
        }
        for other in key_changes {
            if other == *user || self.shares_room(&other, &joined).await? {
                changed.insert(other);
            }
        }
        let mut left = Vec::new();
        for other in maybe_left {
            if !self.shares_room(&other, &joined).await? {
                changed.remove(&other);
                left.push(other);
            }
        }
        Ok(DeviceListChanges {
            changed: changed.into_iter().collect(),
            left,
        })
    }

    async fn shares_room(
        &self,
        other: &UserId,
        joined: &HashSet<OwnedRoomId>,
    ) -> Result<bool, E2eeError> {
        Ok(self
            .store
            .memberships_of(other)
            .await?
            .iter()
            .any(|m| m.membership == "join" && joined.contains(&m.room_id)))
    }
}
