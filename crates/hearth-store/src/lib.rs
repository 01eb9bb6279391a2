//! The only crate that speaks SQL.
//!
//! One query layer serves SQLite (the embedded default) and PostgreSQL: each query is written
//! once in portable SQL and run on whichever pool is open (see [`db`]). Event writes all go
//! through one writer task that commits queued room batches together (group commit) and assigns
//! the global stream positions in commit order ([`writer`]).

mod account_data;
mod accounts;
mod bump;
mod cache;
mod db;
mod dehydrated;
mod directory;
mod erased;
mod error;
mod events;
mod filters;
mod key_backup;
mod keys;
mod memberships;
mod migrations;
mod notifier;
mod outbound;
mod outside;
mod process_lock;
mod profiles;
mod pushers;
mod receipts;
mod recent;
mod registration_tokens;
mod relations;
mod reports;
mod rows;
mod search;
mod server_keys;
mod state;
#[cfg(feature = "testing")]
pub mod testing;
mod timeline;
mod to_device;
mod user_directory;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use hearth_config::{Config, DatabaseBackend, SqliteSynchronous};
use ruma::OwnedUserId;
use tokio::sync::watch;

pub use bump::BUMP_EVENT_TYPES;
pub use dehydrated::DehydratedConflict;
pub use error::StoreError;
pub use events::StoredOutlier;
pub use key_backup::{BackupVersion, RoomKeyRow, RoomKeyScope};
pub use keys::{ClaimedKey, KeyCounts, KeySignature, KeyUpload, UploadConflict};
pub use notifier::{News, Notifier, Topic, Waiter};
pub use process_lock::ProcessLock;
pub use pushers::NewPusher;
pub use receipts::{ReadReceipts, ReceiptRow};
pub use relations::{ChildrenQuery, RelationRow, ThreadSummary};
pub use rows::RegistrationTokenRow;
pub use rows::{AccountDataRow, Profile};
pub use rows::{ApartEvent, ApartStatus, NewRelation, OutsideMembership};
pub use rows::{
    Membership, NewEvent, NewSession, NewStateGroup, NewUser, RemoveDevices, RoomBatch, RoomHead,
    StateDelta, StateRows, StoredDevice, StoredEvent, StoredUser, TokenOwner, TxnKey,
};
pub use search::{SearchHit, SearchOrder, SearchQuery, search_words};
pub use server_keys::{ServerKeyRow, StoredServerKeys};
pub use to_device::{ToDeviceMessage, ToDeviceRow};
pub use user_directory::DirectoryUser;
pub use writer::MAX_GROUP;

use db::Db;

/// Handle to the database: cheap to clone, shared by every service.
#[derive(Clone)]
pub struct Store {
    db: Db,
    writer: writer::EventWriter,
    next_state_group: Arc<AtomicI64>,
    notifier: Notifier,
    positions: Arc<Positions>,
    caches: Arc<cache::Caches>,
}

/// The last committed positions of the smaller streams, kept in memory so that every /sync
/// pass doesn't ask the database (one process writes them, like the event stream).
#[derive(Debug, Default)]
struct Positions {
    account_data: AtomicI64,
    receipts: AtomicI64,
    device_lists: AtomicI64,
    to_device: AtomicI64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.db.backend_name())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open the database the config names and bring its schema up to date.
    pub async fn open(config: &Config) -> Result<Self, StoreError> {
        match config.database.backend {
            DatabaseBackend::Sqlite => {
                Self::open_sqlite(
                    &config.sqlite_path(),
                    config.database.sqlite_synchronous,
                    config.database.max_connections,
                )
                .await
            }
            DatabaseBackend::Postgres => {
                let url = config.database.url.as_deref().ok_or(StoreError::Config(
                    "database.url is required for postgres".into(),
                ))?;
                Self::open_postgres(url, config.database.max_connections).await
            }
        }
    }

    /// Open (creating if needed) an SQLite database file.
    pub async fn open_sqlite(
        path: &Path,
        synchronous: SqliteSynchronous,
        readers: u32,
    ) -> Result<Self, StoreError> {
        Self::start(Db::open_sqlite(path, synchronous, readers).await?).await
    }

    /// Connect to a PostgreSQL database.
    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::start(Db::open_postgres(url, max_connections).await?).await
    }

    async fn start(db: Db) -> Result<Self, StoreError> {
        migrations::run(&db).await?;
        let last_stream = events::max_stream(&db).await?;
        let last_group = state::max_state_group(&db).await?;
        let notifier = Notifier::default();
        let caches = Arc::new(cache::Caches::default());
        let writer =
            writer::EventWriter::spawn(db.clone(), last_stream, notifier.clone(), caches.clone());
        let positions = Arc::new(Positions {
            account_data: AtomicI64::new(account_data::max_stream(&db).await?),
            receipts: AtomicI64::new(receipts::max_stream(&db).await?),
            device_lists: AtomicI64::new(keys::stream_position(&db, "device_lists").await?),
            to_device: AtomicI64::new(keys::stream_position(&db, "to_device").await?),
        });
        caches
            .memberships_moved
            .store(last_stream, Ordering::Release);
        Ok(Self {
            db,
            writer,
            notifier,
            positions,
            caches,
            next_state_group: Arc::new(AtomicI64::new(last_group + 1)),
        })
    }

    /// The notifier syncs wait on; writers publish to it after they commit (see [`Notifier`]).
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    /// Wake the syncs of everyone who shares a joined room with these users, and the users'
    /// own: news about a person (presence, device keys) concerns the rooms they are in. Their
    /// rooms are read (usually from the membership cache) in a task of its own, so callers
    /// outside `async` code can announce too; a failed read wakes everyone rather than no one.
    pub fn publish_to_roommates(&self, users: Vec<OwnedUserId>) {
        let store = self.clone();
        tokio::spawn(async move {
            let mut news = News::default();
            for user in users {
                match store.memberships_of(&user).await {
                    Ok(memberships) => news.rooms.extend(
                        memberships
                            .iter()
                            .filter(|m| m.membership == "join")
                            .map(|m| m.room_id.clone()),
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "reading memberships to wake roommates");
                        store.notifier.wake_all();
                        return;
                    }
                }
                news.users.push(user);
            }
            store.notifier.publish(news);
        });
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        self.db.backend_name()
    }

    /// Persist one room's batch atomically; returns the stream position of each event.
    /// Durable when this returns `Ok`.
    pub async fn persist(&self, batch: RoomBatch) -> Result<Vec<i64>, StoreError> {
        self.writer.persist(writer::Write::Room(batch)).await
    }

    /// The highest stream position persisted; changes are announced on the receiver.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.writer.subscribe()
    }

    /// A fresh state group id. Ids are never reused; an id whose batch failed is simply skipped.
    pub fn allocate_state_group(&self) -> i64 {
        self.next_state_group.fetch_add(1, Ordering::Relaxed)
    }

    /// Everything needed to resume appending to a room, or `None` for an unknown room.
    pub async fn room_head(&self, room_id: &ruma::RoomId) -> Result<Option<RoomHead>, StoreError> {
        events::room_head(&self.db, room_id).await
    }

    /// The full state of a state group (walking its delta chain).
    pub async fn state_group(&self, group: i64) -> Result<StateRows, StoreError> {
        state::load(&self.db, group).await
    }

    /// The state after the given event, or `None` if we don't have it.
    pub async fn state_after_event(
        &self,
        event_id: &ruma::EventId,
    ) -> Result<Option<StateRows>, StoreError> {
        match events::state_groups_of(&self.db, event_id).await? {
            Some((_, after)) => Ok(Some(state::load(&self.db, after).await?)),
            None => Ok(None),
        }
    }

    /// The state before the given event, or `None` if we don't have it.
    pub async fn state_before_event(
        &self,
        event_id: &ruma::EventId,
    ) -> Result<Option<StateRows>, StoreError> {
        match events::state_groups_of(&self.db, event_id).await? {
            Some((before, _)) => Ok(Some(state::load(&self.db, before).await?)),
            None => Ok(None),
        }
    }

    /// The room's current state.
    pub async fn current_state(&self, room_id: &ruma::RoomId) -> Result<StateRows, StoreError> {
        state::current(&self.db, room_id).await
    }

    /// For many rooms at once: the current state events of these types with an empty state
    /// key, as `(room, type, event)`.
    pub async fn current_state_of_types(
        &self,
        rooms: &[ruma::OwnedRoomId],
        types: &[&str],
    ) -> Result<Vec<(ruma::OwnedRoomId, String, ruma::OwnedEventId)>, StoreError> {
        state::current_of_types(&self.db, rooms, types).await
    }

    /// Events by id (those we have; order not guaranteed).
    pub async fn events(&self, ids: &[ruma::OwnedEventId]) -> Result<Vec<StoredEvent>, StoreError> {
        let (mut found, missing) = self.caches.recent.events(ids);
        found.extend(events::by_ids(&self.db, &missing).await?);
        Ok(found)
    }

    /// One event by id.
    pub async fn event(&self, id: &ruma::EventId) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self.events(&[id.to_owned()]).await?.pop())
    }

    /// The full auth chain of the given events (not including the events themselves).
    pub async fn auth_chain(
        &self,
        ids: &[ruma::OwnedEventId],
    ) -> Result<Vec<ruma::OwnedEventId>, StoreError> {
        events::auth_chain(&self.db, ids).await
    }

    /// The prev events of an event.
    pub async fn prev_events(
        &self,
        id: &ruma::EventId,
    ) -> Result<Vec<ruma::OwnedEventId>, StoreError> {
        events::prev_events(&self.db, id).await
    }

    /// All events of a room in stream order, as `(stream, event_id, depth)`.
    pub async fn room_timeline(
        &self,
        room_id: &ruma::RoomId,
    ) -> Result<Vec<(i64, ruma::OwnedEventId, i64)>, StoreError> {
        events::room_timeline(&self.db, room_id).await
    }

    /// The event a transaction id already produced, if any.
    pub async fn txn_event(&self, key: &TxnKey) -> Result<Option<ruma::OwnedEventId>, StoreError> {
        events::txn_event(&self.db, key).await
    }

    /// Ask the database engine to check itself (`PRAGMA integrity_check` on SQLite; PostgreSQL
    /// checks pages itself, so only a round trip there). Returns the engine's findings.
    pub async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        self.db.integrity_check().await
    }
}
