//! The membership index: who is in which room, and what changed for a user since a position.

use ruma::{OwnedRoomId, OwnedUserId, RoomId, UserId};
use sqlx::Row;

use crate::db::with_reader;
use crate::events::parse_event_id;
use crate::{Membership, Store, StoreError};

macro_rules! membership_row {
    ($row:expr) => {{
        let row = $row;
        let room: String = row.try_get("room_id")?;
        let user: String = row.try_get("user_id")?;
        Membership {
            room_id: OwnedRoomId::try_from(room.as_str())
                .map_err(|e| StoreError::Corrupt(format!("room id {room:?}: {e}")))?,
            user_id: OwnedUserId::try_from(user.as_str())
                .map_err(|e| StoreError::Corrupt(format!("user id {user:?}: {e}")))?,
            membership: row.try_get("membership")?,
            event_id: parse_event_id(row.try_get("event_id")?)?,
            stream_ordering: row.try_get("stream_ordering")?,
        }
    }};
}

impl Store {
    /// Every room the user has a membership in (any kind), with the current membership.
    pub async fn memberships_of(
        &self,
        user: &UserId,
    ) -> Result<std::sync::Arc<Vec<Membership>>, StoreError> {
        let ticket = match self.caches.memberships.get(user) {
            Ok(known) => return Ok(known),
            Err(ticket) => ticket,
        };
        let found = std::sync::Arc::new(self.read_memberships_of(user).await?);
        self.caches
            .memberships
            .fill(ticket, user.to_owned(), found.clone());
        Ok(found)
    }

    async fn read_memberships_of(&self, user: &UserId) -> Result<Vec<Membership>, StoreError> {
        let rooms = with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT room_id, user_id, membership, event_id, stream_ordering
                 FROM room_memberships WHERE user_id = $1 AND forgotten = 0 ORDER BY stream_ordering",
            )
            .bind(user.as_str())
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(membership_row!(row));
            }
            Ok::<_, StoreError>(out)
        })?;
        let mut out = rooms;
        crate::outside::merge(&mut out, self.outside_memberships_of(user).await?);
        Ok(out)
    }

    /// The user's membership of one room, if any.
    pub async fn membership(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<Membership>, StoreError> {
        let found = with_reader!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT room_id, user_id, membership, event_id, stream_ordering
                 FROM room_memberships WHERE room_id = $1 AND user_id = $2",
            )
            .bind(room.as_str())
            .bind(user.as_str())
            .fetch_optional(pool)
            .await?;
            Ok::<_, StoreError>(match row {
                Some(row) => Some(membership_row!(row)),
                None => None,
            })
        })?;
        // A room we are not in (an invite from a partner) may have a newer membership.
        let outside = self
            .outside_membership(room, user)
            .await?
            .map(|(outside, stream)| Membership {
                room_id: outside.room_id,
                user_id: outside.user_id,
                membership: outside.membership,
                event_id: outside.event_id,
                stream_ordering: stream,
            });
        Ok(match (found, outside) {
            (Some(known), Some(outside)) if outside.stream_ordering > known.stream_ordering => {
                Some(outside)
            }
            (None, outside) => outside,
            (known, _) => known,
        })
    }

    /// The room's members with the given membership (all memberships when `None`).
    pub async fn room_members(
        &self,
        room: &RoomId,
        membership: Option<&str>,
    ) -> Result<Vec<Membership>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT room_id, user_id, membership, event_id, stream_ordering
                 FROM room_memberships
                 WHERE room_id = $1 AND ($2 IS NULL OR membership = $2)
                 ORDER BY user_id",
            )
            .bind(room.as_str())
            .bind(membership)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(membership_row!(row));
            }
            Ok(out)
        })
    }

    /// Mark a room the user has left (or been banned from) as forgotten: it disappears from
    /// their syncs until their membership changes again. `false` if they are still in it.
    pub async fn forget_room(&self, room: &RoomId, user: &UserId) -> Result<bool, StoreError> {
        let done = crate::db::with_writer!(&self.db, |pool| {
            let done = sqlx::query(
                "UPDATE room_memberships SET forgotten = 1
                 WHERE room_id = $1 AND user_id = $2 AND membership IN ('leave', 'ban')",
            )
            .bind(room.as_str())
            .bind(user.as_str())
            .execute(pool)
            .await?;
            Ok::<_, StoreError>(done.rows_affected() > 0)
        })?;
        let forgot_outside = self.forget_outside(room, user).await?;
        self.caches.memberships.invalidate(user);
        Ok(done || forgot_outside)
    }
}
