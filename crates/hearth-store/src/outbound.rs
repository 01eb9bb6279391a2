//! What federation's sender keeps: how far each partner has been sent our events, and the
//! reads it makes (our events in stream order, the servers in a room).

use ruma::{OwnedServerName, RoomId, ServerName};
use sqlx::{QueryBuilder, Row};

use crate::db::{with_reader, with_writer};
use crate::{Store, StoreError, StoredEvent};

impl Store {
    /// The stream position `destination` has been sent up to, if it was ever sent anything.
    pub async fn outbound_position(
        &self,
        destination: &ServerName,
    ) -> Result<Option<i64>, StoreError> {
        with_reader!(&self.db, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT last_sent_stream FROM federation_outbound WHERE destination = $1",
            )
            .bind(destination.as_str())
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Every destination with its position.
    pub async fn outbound_positions(&self) -> Result<Vec<(OwnedServerName, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = with_reader!(&self.db, |pool| {
            sqlx::query_as("SELECT destination, last_sent_stream FROM federation_outbound")
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(d, p)| Some((OwnedServerName::try_from(d).ok()?, p)))
            .collect())
    }

    /// Record that `destination` has been sent everything up to `position`.
    pub async fn set_outbound_position(
        &self,
        destination: &ServerName,
        position: i64,
    ) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO federation_outbound (destination, last_sent_stream, updated_ms)
                 VALUES ($1, $2, $3)
                 ON CONFLICT (destination) DO UPDATE SET
                   last_sent_stream = excluded.last_sent_stream, updated_ms = excluded.updated_ms",
            )
            .bind(destination.as_str())
            .bind(position)
            .bind(crate::migrations::now_ms())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Events of any room after `after` up to `upto`, oldest first, at most `limit`.
    pub async fn events_between(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        with_reader!(&self.db, |pool| {
            let mut query = QueryBuilder::new(concat!(
                "SELECT ",
                crate::events::event_columns!(),
                " FROM events e JOIN rooms r ON r.room_id = e.room_id WHERE e.stream_ordering > "
            ));
            query.push_bind(after);
            query.push(" AND e.stream_ordering <= ");
            query.push_bind(upto);
            query.push(" ORDER BY e.stream_ordering LIMIT ");
            query.push_bind(limit);
            for row in query.build().fetch_all(pool).await? {
                out.push(crate::events::stored_event!(row));
            }
        });
        Ok(out)
    }

    /// The servers with joined members in the room.
    pub async fn servers_in_room(&self, room: &RoomId) -> Result<Vec<OwnedServerName>, StoreError> {
        let mut servers: Vec<OwnedServerName> = self
            .room_members(room, Some("join"))
            .await?
            .into_iter()
            .map(|m| m.user_id.server_name().to_owned())
            .collect();
        servers.sort();
        servers.dedup();
        Ok(servers)
    }
}
