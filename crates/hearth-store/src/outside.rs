//! Local users' memberships of rooms this server is not in: an invite from a partner (the
//! room lives on its servers; we hold only the invite and the stripped state it came with),
//! and the user's rejection of it. Each takes a position in the event stream through the one
//! writer, so syncs see it as they see any membership change; the user's membership of a room
//! is the newer of the row here and their `room_memberships` row.

use ruma::{OwnedRoomId, OwnedUserId, RoomId, RoomVersionId, UserId};
use sqlx::Row;

use crate::db::{with_reader, with_writer};
use crate::events::parse_event_id;
use crate::{Membership, OutsideMembership, Store, StoreError};

impl Store {
    /// Record a local user's invite to (or rejection of) a room we are not in. Returns its
    /// stream position; durable when this returns.
    pub async fn persist_outside(&self, outside: OutsideMembership) -> Result<i64, StoreError> {
        let positions = self
            .writer
            .persist(crate::writer::Write::Outside(outside))
            .await?;
        positions
            .first()
            .copied()
            .ok_or_else(|| StoreError::Corrupt("an outside membership took no position".into()))
    }

    /// The user's membership of a room we are not in, with its stream position, if any.
    pub async fn outside_membership(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<(OutsideMembership, i64)>, StoreError> {
        with_reader!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT room_id, user_id, membership, event_id, room_version, event_json,
                        stripped_state, stream_ordering
                 FROM outside_memberships WHERE room_id = $1 AND user_id = $2",
            )
            .bind(room.as_str())
            .bind(user.as_str())
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let version: String = row.try_get("room_version")?;
            let outside = OutsideMembership {
                room_id: room.to_owned(),
                user_id: user.to_owned(),
                membership: row.try_get("membership")?,
                event_id: parse_event_id(row.try_get("event_id")?)?,
                room_version: RoomVersionId::try_from(version.as_str())
                    .map_err(|e| StoreError::Corrupt(format!("room version {version:?}: {e}")))?,
                event_json: row.try_get("event_json")?,
                stripped_state: row.try_get("stripped_state")?,
            };
            Ok(Some((outside, row.try_get("stream_ordering")?)))
        })
    }

    /// The user's memberships of rooms we are not in (not forgotten), as membership rows.
    pub(crate) async fn outside_memberships_of(
        &self,
        user: &UserId,
    ) -> Result<Vec<Membership>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT room_id, membership, event_id, stream_ordering FROM outside_memberships
                 WHERE user_id = $1 AND forgotten = 0",
            )
            .bind(user.as_str())
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let room: String = row.try_get("room_id")?;
                out.push(Membership {
                    room_id: OwnedRoomId::try_from(room.as_str())
                        .map_err(|e| StoreError::Corrupt(format!("room id {room:?}: {e}")))?,
                    user_id: OwnedUserId::from(user),
                    membership: row.try_get("membership")?,
                    event_id: parse_event_id(row.try_get("event_id")?)?,
                    stream_ordering: row.try_get("stream_ordering")?,
                });
            }
            Ok(out)
        })
    }

    /// Forget a rejected invite (`forget` on a room we are not in).
    pub(crate) async fn forget_outside(
        &self,
        room: &RoomId,
        user: &UserId,
    ) -> Result<bool, StoreError> {
        with_writer!(&self.db, |pool| {
            let done = sqlx::query(
                "UPDATE outside_memberships SET forgotten = 1
                 WHERE room_id = $1 AND user_id = $2 AND membership = 'leave'",
            )
            .bind(room.as_str())
            .bind(user.as_str())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }
}

/// Merge the user's outside memberships into their room memberships: per room, the newer
/// wins. The result stays ordered by stream position.
pub(crate) fn merge(rooms: &mut Vec<Membership>, outside: Vec<Membership>) {
    for membership in outside {
        match rooms.iter_mut().find(|m| m.room_id == membership.room_id) {
            Some(known) if known.stream_ordering >= membership.stream_ordering => {}
            Some(known) => *known = membership,
            None => rooms.push(membership),
        }
    }
    rooms.sort_by_key(|m| m.stream_ordering);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(room: &str, membership: &str, stream: i64) -> Membership {
        Membership {
            room_id: OwnedRoomId::try_from(room).unwrap(),
            user_id: OwnedUserId::try_from("@u:a.test").unwrap(),
            membership: membership.into(),
            event_id: ruma::OwnedEventId::try_from(format!("$e{stream}")).unwrap(),
            stream_ordering: stream,
        }
    }

    #[test]
    fn the_newer_membership_wins_and_order_is_kept() {
        let mut rooms = vec![row("!a:b.test", "join", 5), row("!c:b.test", "leave", 9)];
        let outside = vec![
            row("!a:b.test", "invite", 3),
            row("!c:b.test", "invite", 12),
            row("!d:b.test", "invite", 7),
        ];
        merge(&mut rooms, outside);
        let got: Vec<(&str, &str, i64)> = rooms
            .iter()
            .map(|m| (m.room_id.as_str(), m.membership.as_str(), m.stream_ordering))
            .collect();
        assert_eq!(
            got,
            vec![
                ("!a:b.test", "join", 5),
                ("!d:b.test", "invite", 7),
                ("!c:b.test", "invite", 12)
            ]
        );
    }
}
