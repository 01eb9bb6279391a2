//! The one event writer: a task that takes queued room batches and commits them together.
//!
//! SQLite has one writer at a time, and every durable commit costs an fsync; committing the
//! batches that queued up while the previous commit ran, in one transaction, keeps every write
//! durable at a fraction of the cost. Each batch runs inside its own savepoint, so a batch that
//! breaks a constraint (say, a duplicate event) is rolled back alone and its neighbours still
//! commit.
//!
//! Any other failure (a full disk, an I/O error, a lost PostgreSQL connection, ...) may have
//! aborted the whole transaction behind the savepoint's back — SQLite rolls back everything on
//! `SQLITE_FULL` — so it fails the whole group: every caller gets the error, never a success,
//! the connection is closed rather than reused in an unknown state, and the writer re-reads the
//! last committed position, because a failed COMMIT may still have committed.
//!
//! Stream positions are assigned here, in commit order, so "persisted up to N" means every
//! position <= N is readable.

use sqlx::{Acquire, QueryBuilder};
use tokio::sync::{mpsc, oneshot, watch};

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cache::Caches;
use crate::db::{Db, with_writer};
use crate::{News, Notifier, OutsideMembership, RoomBatch, StoreError};

/// The most batches committed in one transaction.
pub const MAX_GROUP: usize = 64;

/// Rows per multi-row INSERT: 11 columns x 200 rows stays far below both engines' limits on
/// bound parameters (32,766 for SQLite, 65,535 for PostgreSQL).
const ROWS_PER_INSERT: usize = 200;

type Reply = oneshot::Sender<Result<Vec<i64>, StoreError>>;

/// What takes positions in the event stream: a room's batch of events, or a local user's
/// membership of a room this server is not in (an invite over federation, its rejection),
/// which takes one position so that syncs see it like any membership change.
pub(crate) enum Write {
    Room(RoomBatch),
    Outside(OutsideMembership),
}

impl Write {
    fn room_id(&self) -> &ruma::RoomId {
        match self {
            Self::Room(batch) => &batch.room_id,
            Self::Outside(outside) => &outside.room_id,
        }
    }

    fn positions(&self) -> usize {
        match self {
            Self::Room(batch) => batch.events.len(),
            Self::Outside(_) => 1,
        }
    }
}

type Job = (Write, Reply);

#[derive(Clone)]
pub(crate) struct EventWriter {
    jobs: mpsc::Sender<Job>,
    persisted: watch::Receiver<i64>,
}

impl EventWriter {
    pub(crate) fn spawn(db: Db, last_stream: i64, notifier: Notifier, caches: Arc<Caches>) -> Self {
        let (jobs, rx) = mpsc::channel(1024);
        let (tx, persisted) = watch::channel(last_stream);
        tokio::spawn(supervise(db, rx, Arc::new(tx), notifier, caches));
        Self { jobs, persisted }
    }

    pub(crate) async fn persist(&self, write: Write) -> Result<Vec<i64>, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((write, reply))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<i64> {
        self.persisted.clone()
    }
}

/// Run the writer, and run it again if it panics: the callers of the group it was writing get
/// an error (their replies are dropped), what is committed is read back, and the queue goes on.
/// A writer that stopped silently would leave every later write waiting for nothing.
async fn supervise(
    db: Db,
    jobs: mpsc::Receiver<Job>,
    persisted: Arc<watch::Sender<i64>>,
    notifier: Notifier,
    caches: Arc<Caches>,
) {
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    loop {
        let last_stream = *persisted.borrow();
        let writer = tokio::spawn(run(
            db.clone(),
            jobs.clone(),
            last_stream,
            persisted.clone(),
            notifier.clone(),
            caches.clone(),
        ));
        match writer.await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %e, "the event writer stopped; restarting it");
                caches.recent.clear();
                caches.memberships.clear();
                let last = recover_position(&db, last_stream).await;
                if last != last_stream {
                    persisted.send_replace(last);
                    notifier.wake_all();
                }
            }
        }
    }
}

async fn run(
    db: Db,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    mut last_stream: i64,
    persisted: Arc<watch::Sender<i64>>,
    notifier: Notifier,
    caches: Arc<Caches>,
) {
    let mut jobs = jobs.lock().await;
    let mut group = Vec::with_capacity(MAX_GROUP);
    while jobs.recv_many(&mut group, MAX_GROUP).await > 0 {
        match commit_group(&db, &group, last_stream).await {
            Ok((outcomes, new_last)) => {
                // The caches learn of the commit before anyone can read up to its positions.
                let mut news = News::default();
                for ((write, _), outcome) in group.iter().zip(&outcomes) {
                    let batch = match write {
                        Write::Room(batch) => batch,
                        Write::Outside(outside) => {
                            if outcome.is_ok() {
                                news.users.push(outside.user_id.clone());
                                caches.memberships.invalidate(&outside.user_id);
                            }
                            continue;
                        }
                    };
                    if let Ok(positions) = outcome {
                        news.rooms.push(batch.room_id.clone());
                        // A membership concerns its user wherever they sync from, even before
                        // they are in the room (an invite).
                        news.users
                            .extend(batch.memberships.iter().map(|(user, _, _)| user.clone()));
                        caches.recent.record(batch, positions);
                        for (user, _, _) in &batch.memberships {
                            caches.memberships.invalidate(user);
                        }
                        for (event, position) in batch.events.iter().zip(positions) {
                            if crate::BUMP_EVENT_TYPES.contains(&event.event_type.as_str()) {
                                caches.bump.raise_known(&batch.room_id, *position);
                            }
                        }
                        if !batch.memberships.is_empty()
                            && let Some(last) = positions.last()
                        {
                            caches.memberships_moved.fetch_max(*last, Ordering::AcqRel);
                        }
                    }
                }
                last_stream = new_last;
                persisted.send_replace(last_stream);
                notifier.publish(news);
                for ((_, reply), outcome) in group.drain(..).zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batches = group.len(), "group commit failed");
                // What the group touched may or may not be stored: forget it, so that reads
                // go to the database, which knows.
                caches.bump.clear();
                for (write, _) in &group {
                    match write {
                        Write::Room(batch) => {
                            caches.recent.forget_room(&batch.room_id);
                            for (user, _, _) in &batch.memberships {
                                caches.memberships.invalidate(user);
                            }
                        }
                        Write::Outside(outside) => caches.memberships.invalidate(&outside.user_id),
                    }
                }
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
                last_stream = recover_position(&db, last_stream).await;
                caches
                    .memberships_moved
                    .fetch_max(last_stream, Ordering::AcqRel);
                if *persisted.borrow() != last_stream {
                    persisted.send_replace(last_stream);
                    notifier.wake_all();
                }
            }
        }
    }
}

/// The last committed stream position after a failed group: a COMMIT that reported failure may
/// have committed all the same. Retries until the database answers, since no position can be
/// handed out before it is known.
async fn recover_position(db: &Db, believed: i64) -> i64 {
    let mut wait = std::time::Duration::from_millis(50);
    loop {
        match crate::events::max_stream(db).await {
            Ok(last) => {
                if last != believed {
                    tracing::warn!(
                        believed,
                        last,
                        "a group reported as failed was committed; its callers were told it failed"
                    );
                }
                return last.max(believed);
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the last stream position; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

/// Whether a failed statement spoiled only itself: a broken constraint, which the batch's
/// savepoint rolls back while its neighbours go on. Anything else (full disk, I/O, lost
/// connection, out of memory, busy) may have ended the whole transaction.
fn is_batch_local(e: &sqlx::Error) -> bool {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => matches!(
            db.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        ),
        // Raised by this module for an inconsistent batch, before the statement runs.
        sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// Write every batch of the group in one transaction. Returns each batch's outcome and the new
/// last stream position once the transaction committed; an error means nothing of the group
/// may be reported as written.
async fn commit_group(
    db: &Db,
    group: &[Job],
    mut last_stream: i64,
) -> Result<(Vec<Result<Vec<i64>, StoreError>>, i64), StoreError> {
    let mut outcomes = Vec::with_capacity(group.len());
    let is_sqlite = matches!(db, Db::Sqlite { .. });
    let committed: Result<(), StoreError> = with_writer!(db, |pool| {
        let mut conn = pool.acquire().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            for (write, _) in group {
                let mut savepoint = tx.begin().await?;
                let first = last_stream + 1;
                let positions: Vec<i64> = (first..).take(write.positions()).collect();
                let written: Result<(), sqlx::Error> = async {
                    let conn = savepoint.acquire().await?;
                    let batch = match write {
                        Write::Room(batch) => batch,
                        Write::Outside(outside) => {
                            sqlx::query(
                                "INSERT INTO outside_memberships (room_id, user_id, membership,
                                    event_id, room_version, event_json, stripped_state,
                                    stream_ordering)
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                                 ON CONFLICT (room_id, user_id) DO UPDATE SET
                                    membership = excluded.membership,
                                    event_id = excluded.event_id,
                                    room_version = excluded.room_version,
                                    event_json = excluded.event_json,
                                    stripped_state = excluded.stripped_state,
                                    stream_ordering = excluded.stream_ordering, forgotten = 0",
                            )
                            .bind(outside.room_id.as_str())
                            .bind(outside.user_id.as_str())
                            .bind(&outside.membership)
                            .bind(outside.event_id.as_str())
                            .bind(outside.room_version.as_str())
                            .bind(&outside.event_json)
                            .bind(&outside.stripped_state)
                            .bind(first)
                            .execute(&mut *conn)
                            .await?;
                            return Ok(());
                        }
                    };
                    if batch.creates_room {
                        sqlx::query(
                            "INSERT INTO rooms (room_id, room_version, current_state_group)
                             VALUES ($1, $2, $3)",
                        )
                        .bind(batch.room_id.as_str())
                        .bind(batch.room_version.as_str())
                        .bind(batch.current_state_group)
                        .execute(&mut *conn)
                        .await?;
                    }
                    for chunk in batch.state_groups.chunks(ROWS_PER_INSERT) {
                        let mut insert =
                            QueryBuilder::new("INSERT INTO state_groups (id, room_id, parent, chain_len) ");
                        insert.push_values(chunk, |mut row, group| {
                            row.push_bind(group.id)
                                .push_bind(batch.room_id.as_str())
                                .push_bind(group.parent)
                                .push_bind(group.chain_len);
                        });
                        insert.build().execute(&mut *conn).await?;
                    }
                    let deltas: Vec<_> = batch
                        .state_groups
                        .iter()
                        .flat_map(|g| g.delta.iter().map(move |d| (g.id, d)))
                        .collect();
                    for chunk in deltas.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::new(
                            "INSERT INTO state_group_deltas (group_id, event_type, state_key, event_id) ",
                        );
                        insert.push_values(chunk, |mut row, (group, ((kind, key), id))| {
                            row.push_bind(*group)
                                .push_bind(kind)
                                .push_bind(key)
                                .push_bind(id.as_ref().map(|id| id.as_str()));
                        });
                        insert.build().execute(&mut *conn).await?;
                    }
                    // Multi-row inserts: per-statement overhead, not fsync, is what a batch
                    // of small events costs on SQLite.
                    let rows: Vec<_> = batch.events.iter().zip(&positions).collect();
                    for chunk in rows.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::new(
                            "INSERT INTO events (stream_ordering, event_id, room_id, sender,
                                event_type, state_key, depth, origin_server_ts,
                                state_group_before, state_group_after, json) ",
                        );
                        insert.push_values(chunk, |mut row, (event, stream)| {
                            row.push_bind(**stream)
                                .push_bind(event.event_id.as_str())
                                .push_bind(batch.room_id.as_str())
                                .push_bind(event.sender.as_str())
                                .push_bind(&event.event_type)
                                .push_bind(&event.state_key)
                                .push_bind(event.depth)
                                .push_bind(event.origin_server_ts)
                                .push_bind(event.state_group_before)
                                .push_bind(event.state_group_after)
                                .push_bind(&event.json);
                        });
                        insert.build().execute(&mut *conn).await?;
                    }
                    // The search index (SQLite's rowid is the stream position: one per event).
                    let searchable: Vec<_> = rows
                        .iter()
                        .filter_map(|(event, stream)| {
                            crate::search::entry(&event.event_type, &event.json)
                                .map(|(key, text)| (&event.event_id, **stream, key, text))
                        })
                        .collect();
                    for chunk in searchable.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::new(if is_sqlite {
                            "INSERT INTO event_search (rowid, event_id, room_id, key, value, stream) "
                        } else {
                            "INSERT INTO event_search (event_id, room_id, key, value, stream) "
                        });
                        insert.push_values(chunk, |mut row, (id, stream, key, text)| {
                            if is_sqlite {
                                row.push_bind(*stream);
                            }
                            row.push_bind(id.as_str())
                                .push_bind(batch.room_id.as_str())
                                .push_bind(*key)
                                .push_bind(text)
                                .push_bind(*stream);
                        });
                        insert.build().execute(&mut *conn).await?;
                    }
                    let edges: Vec<_> = batch
                        .events
                        .iter()
                        .flat_map(|e| e.prev_events.iter().map(move |p| (&e.event_id, p)))
                        .collect();
                    for chunk in edges.chunks(ROWS_PER_INSERT) {
                        let mut insert =
                            QueryBuilder::new("INSERT INTO event_edges (event_id, prev_event_id) ");
                        insert.push_values(chunk, |mut row, (id, prev)| {
                            row.push_bind(id.as_str()).push_bind(prev.as_str());
                        });
                        // A PDU may name one event twice.
                        insert.push(" ON CONFLICT DO NOTHING");
                        insert.build().execute(&mut *conn).await?;
                    }
                    let auth: Vec<_> = batch
                        .events
                        .iter()
                        .flat_map(|e| e.auth_events.iter().map(move |a| (&e.event_id, a)))
                        .chain(
                            batch
                                .apart
                                .iter()
                                .flat_map(|e| e.auth_events.iter().map(move |a| (&e.event_id, a))),
                        )
                        .collect();
                    for chunk in auth.chunks(ROWS_PER_INSERT) {
                        let mut insert =
                            QueryBuilder::new("INSERT INTO event_auth (event_id, auth_event_id) ");
                        insert.push_values(chunk, |mut row, (id, auth)| {
                            row.push_bind(id.as_str()).push_bind(auth.as_str());
                        });
                        insert.push(" ON CONFLICT DO NOTHING");
                        insert.build().execute(&mut *conn).await?;
                    }
                    if !batch.relations.is_empty() {
                        let streams: std::collections::HashMap<&ruma::EventId, i64> = batch
                            .events
                            .iter()
                            .zip(&positions)
                            .map(|(e, s)| (e.event_id.as_ref(), *s))
                            .collect();
                        let rows = batch
                            .relations
                            .iter()
                            .map(|r| match streams.get(&*r.event_id) {
                                Some(stream) => Ok((r, *stream)),
                                None => Err(sqlx::Error::Protocol(format!(
                                    "relation of {} is not in the batch",
                                    r.event_id
                                ))),
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        for chunk in rows.chunks(ROWS_PER_INSERT) {
                            let mut insert = QueryBuilder::new(
                                "INSERT INTO event_relations
                                 (event_id, relates_to, rel_type, room_id, stream_ordering) ",
                            );
                            insert.push_values(chunk, |mut row, (relation, stream)| {
                                row.push_bind(relation.event_id.as_str())
                                    .push_bind(relation.relates_to.as_str())
                                    .push_bind(&relation.rel_type)
                                    .push_bind(batch.room_id.as_str())
                                    .push_bind(*stream);
                            });
                            insert.build().execute(&mut *conn).await?;
                        }
                    }
                    let received_ts = crate::migrations::now_ms();
                    for chunk in batch.apart.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::new(
                            "INSERT INTO events_apart
                             (event_id, room_id, status, reason, json, received_ts) ",
                        );
                        insert.push_values(chunk, |mut row, apart| {
                            row.push_bind(apart.event_id.as_str())
                                .push_bind(batch.room_id.as_str())
                                .push_bind(apart.status.as_str())
                                .push_bind(&apart.reason)
                                .push_bind(&apart.json)
                                .push_bind(received_ts);
                        });
                        insert.push(" ON CONFLICT (event_id) DO NOTHING");
                        insert.build().execute(&mut *conn).await?;
                    }
                    let txns: Vec<_> = batch
                        .events
                        .iter()
                        .filter_map(|e| e.txn.as_ref().map(|txn| (txn, &e.event_id)))
                        .collect();
                    for chunk in txns.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::new(
                            "INSERT INTO transaction_ids
                             (user_id, device_id, endpoint, txn_id, room_id, event_id) ",
                        );
                        insert.push_values(chunk, |mut row, (txn, id)| {
                            row.push_bind(txn.user_id.as_str())
                                .push_bind(txn.device_id.as_str())
                                .push_bind(&txn.endpoint)
                                .push_bind(txn.txn_id.as_str())
                                .push_bind(batch.room_id.as_str())
                                .push_bind(id.as_str());
                        });
                        insert.build().execute(&mut *conn).await?;
                    }
                    sqlx::query("DELETE FROM forward_extremities WHERE room_id = $1")
                        .bind(batch.room_id.as_str())
                        .execute(&mut *conn)
                        .await?;
                    for id in &batch.forward_extremities {
                        sqlx::query(
                            "INSERT INTO forward_extremities (room_id, event_id) VALUES ($1, $2)",
                        )
                        .bind(batch.room_id.as_str())
                        .bind(id.as_str())
                        .execute(&mut *conn)
                        .await?;
                    }
                    for (redacts, redaction) in &batch.redactions {
                        sqlx::query("INSERT INTO redactions (redacts, redaction_id) VALUES ($1, $2)")
                            .bind(redacts.as_str())
                            .bind(redaction.as_str())
                            .execute(&mut *conn)
                            .await?;
                        // Redaction strips `m.relates_to`: the relationship is broken.
                        sqlx::query("DELETE FROM event_relations WHERE event_id = $1")
                            .bind(redacts.as_str())
                            .execute(&mut *conn)
                            .await?;
                        // ... and the text: it is no longer found.
                        sqlx::query(if is_sqlite {
                            "DELETE FROM event_search
                             WHERE rowid = (SELECT stream_ordering FROM events WHERE event_id = $1)"
                        } else {
                            "DELETE FROM event_search WHERE event_id = $1"
                        })
                        .bind(redacts.as_str())
                        .execute(&mut *conn)
                        .await?;
                    }
                    let apart_ids: std::collections::HashSet<&ruma::EventId> =
                        batch.apart.iter().map(|a| &*a.event_id).collect();
                    let batch_streams: std::collections::HashMap<&ruma::EventId, i64> = batch
                        .events
                        .iter()
                        .zip(&positions)
                        .map(|(e, s)| (&*e.event_id, *s))
                        .collect();
                    let mut member_rows = Vec::with_capacity(batch.memberships.len());
                    for (user, membership, event_id) in &batch.memberships {
                        let in_batch = batch_streams.get(&**event_id).copied().or_else(|| {
                            apart_ids
                                .contains(&**event_id)
                                .then(|| positions.first().copied())
                                .flatten()
                        });
                        // State resolution may bring back a member event stored before; a room
                        // joined over federation has members known from outliers, which count
                        // from the batch that brought them.
                        let stream = match in_batch {
                            Some(stream) => stream,
                            None => match sqlx::query_scalar::<_, i64>(
                                "SELECT stream_ordering FROM events WHERE event_id = $1",
                            )
                            .bind(event_id.as_str())
                            .fetch_optional(&mut *conn)
                            .await?
                            {
                                Some(stream) => stream,
                                None => {
                                    return Err(sqlx::Error::Protocol(format!(
                                        "membership event {event_id} is not stored"
                                    )));
                                }
                            },
                        };
                        member_rows.push((user, membership, event_id, stream));
                    }
                    // Keys are unique within a batch (one membership per user, one event per
                    // state key), so multi-row upserts are safe on both engines.
                    for chunk in member_rows.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::new(
                            "INSERT INTO room_memberships
                             (room_id, user_id, membership, event_id, stream_ordering) ",
                        );
                        insert.push_values(chunk, |mut row, (user, membership, event_id, stream)| {
                            row.push_bind(batch.room_id.as_str())
                                .push_bind(user.as_str())
                                .push_bind(membership.as_str())
                                .push_bind(event_id.as_str())
                                .push_bind(*stream);
                        });
                        insert.push(
                            " ON CONFLICT (room_id, user_id) DO UPDATE SET
                             membership = excluded.membership, event_id = excluded.event_id,
                             stream_ordering = excluded.stream_ordering, forgotten = 0",
                        );
                        insert.build().execute(&mut *conn).await?;
                    }
                    sqlx::query("UPDATE rooms SET current_state_group = $1 WHERE room_id = $2")
                        .bind(batch.current_state_group)
                        .bind(batch.room_id.as_str())
                        .execute(&mut *conn)
                        .await?;
                    for chunk in batch.current_state.chunks(ROWS_PER_INSERT) {
                        let mut insert = QueryBuilder::new(
                            "INSERT INTO current_state (room_id, event_type, state_key, event_id) ",
                        );
                        insert.push_values(chunk, |mut row, ((event_type, state_key), event_id)| {
                            row.push_bind(batch.room_id.as_str())
                                .push_bind(event_type)
                                .push_bind(state_key)
                                .push_bind(event_id.as_str());
                        });
                        insert.push(
                            " ON CONFLICT (room_id, event_type, state_key)
                             DO UPDATE SET event_id = excluded.event_id",
                        );
                        insert.build().execute(&mut *conn).await?;
                    }
                    Ok(())
                }
                .await;
                match written {
                    Ok(()) => {
                        savepoint.commit().await?;
                        last_stream += positions.len() as i64;
                        outcomes.push(Ok(positions));
                    }
                    Err(e) if is_batch_local(&e) => {
                        tracing::warn!(room = %write.room_id(), error = %e, "batch rolled back");
                        savepoint.rollback().await?;
                        outcomes.push(Err(StoreError::from(e)));
                    }
                    Err(e) => return Err(StoreError::from(e)),
                }
            }
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        if written.is_err() {
            // The connection's transaction state is unknown (SQLite may have rolled back
            // what sqlx still counts as open): never hand it to the next writer.
            conn.close_on_drop();
        }
        written
    });
    committed.map(|()| (outcomes, last_stream))
}
