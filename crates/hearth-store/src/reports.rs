//! Reports of events that users find inappropriate, kept for the server's administrators.

use ruma::{EventId, RoomId, UserId};

use crate::db::with_writer;
use crate::migrations::now_ms;
use crate::{Store, StoreError};

/// The longest reason kept, in bytes (the rest is cut at a character boundary).
const MAX_REASON_BYTES: usize = 4096;

impl Store {
    /// Record that `reporter` reported `event` of `room`.
    pub async fn report_event(
        &self,
        room: &RoomId,
        event: &EventId,
        reporter: &UserId,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let reason = reason.map(|r| {
            let mut end = r.len().min(MAX_REASON_BYTES);
            while !r.is_char_boundary(end) {
                end -= 1;
            }
            &r[..end]
        });
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO event_reports (room_id, event_id, reporter, reason, reported_at_ms)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(room.as_str())
            .bind(event.as_str())
            .bind(reporter.as_str())
            .bind(reason)
            .bind(now_ms())
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
