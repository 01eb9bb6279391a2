//! Versioned, forward-only schema migrations, run at start-up in one transaction each.
//!
//! A migration is one SQL text for both backends unless the dialects differ; then both variants
//! stand side by side in the same entry. Applied versions are recorded in `hearth_schema`. A
//! database newer than this binary is refused rather than guessed at.

use crate::StoreError;
use crate::db::{Db, with_writer};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Integers are BIGINT on both sides so that they decode as `i64` everywhere.
const EVENT_GRAPH: &str = r#"
CREATE TABLE rooms (
    room_id TEXT PRIMARY KEY,
    room_version TEXT NOT NULL,
    -- The state group of the room's current state (resolved over all forward extremities).
    current_state_group BIGINT NOT NULL
);

CREATE TABLE state_groups (
    id BIGINT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    -- A group is its parent plus its delta rows; a NULL parent means the rows are the full state.
    parent BIGINT REFERENCES state_groups(id),
    -- Number of ancestors, bounded so that loading a state walks a short chain.
    chain_len BIGINT NOT NULL
);

CREATE TABLE state_group_deltas (
    group_id BIGINT NOT NULL REFERENCES state_groups(id),
    event_type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    -- NULL removes the key that the parent had (possible after state resolution).
    event_id TEXT,
    PRIMARY KEY (group_id, event_type, state_key)
);

CREATE TABLE events (
    -- Global stream position, assigned by the writer in commit order.
    stream_ordering BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    sender TEXT NOT NULL,
    event_type TEXT NOT NULL,
    state_key TEXT,
    depth BIGINT NOT NULL,
    origin_server_ts BIGINT NOT NULL,
    state_group_before BIGINT NOT NULL REFERENCES state_groups(id),
    state_group_after BIGINT NOT NULL REFERENCES state_groups(id),
    -- The PDU as canonical JSON (v3+ event ids are not part of it).
    json TEXT NOT NULL
);
CREATE INDEX events_room_stream ON events (room_id, stream_ordering);

CREATE TABLE event_edges (
    event_id TEXT NOT NULL REFERENCES events(event_id),
    prev_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, prev_event_id)
);
CREATE INDEX event_edges_prev ON event_edges (prev_event_id);

CREATE TABLE event_auth (
    event_id TEXT NOT NULL REFERENCES events(event_id),
    auth_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_event_id)
);

CREATE TABLE forward_extremities (
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    event_id TEXT NOT NULL REFERENCES events(event_id),
    PRIMARY KEY (room_id, event_id)
);

CREATE TABLE current_state (
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    event_type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES events(event_id),
    PRIMARY KEY (room_id, event_type, state_key)
);

-- Client transaction ids, so that a retried send returns the first event instead of a copy.
CREATE TABLE transaction_ids (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    event_id TEXT NOT NULL REFERENCES events(event_id),
    PRIMARY KEY (user_id, device_id, txn_id, room_id)
);
"#;

/// Local accounts. Flags are 0/1 BIGINTs rather than BOOLEAN so both backends decode `i64`.
const ACCOUNTS: &str = r#"
CREATE TABLE users (
    user_id TEXT PRIMARY KEY,
    -- An argon2id PHC string; NULL when the account has no password (or was deactivated).
    password_hash TEXT,
    is_admin BIGINT NOT NULL DEFAULT 0,
    deactivated BIGINT NOT NULL DEFAULT 0,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE devices (
    user_id TEXT NOT NULL REFERENCES users(user_id),
    device_id TEXT NOT NULL,
    display_name TEXT,
    last_seen_ms BIGINT,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_id)
);

CREATE TABLE access_tokens (
    -- SHA-256 of the token: a copy of the database does not hand out sessions.
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX access_tokens_device ON access_tokens (user_id, device_id);
"#;

/// Each user's current membership of each room, kept with the current state so that "my rooms"
/// and "what changed for me since N" are index lookups.
const MEMBERSHIPS: &str = r#"
CREATE TABLE room_memberships (
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_id TEXT NOT NULL REFERENCES events(event_id),
    stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_memberships_user ON room_memberships (user_id, stream_ordering);
"#;

/// Per-user data a client reads and writes directly: profiles, account data (global rows have
/// `room_id = ''` so that the primary key needs no NULL handling), and sync filters.
/// `account_data.stream_ordering` is the account-data stream position: every write takes
/// `MAX + 1`, so the row's position says when it last changed.
const PROFILES_ACCOUNT_DATA_FILTERS: &str = r#"
CREATE TABLE profiles (
    user_id TEXT PRIMARY KEY,
    displayname TEXT,
    avatar_url TEXT
);

CREATE TABLE account_data (
    user_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    data_type TEXT NOT NULL,
    content TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (user_id, room_id, data_type)
);
CREATE INDEX account_data_user_stream ON account_data (user_id, stream_ordering);

CREATE TABLE filters (
    user_id TEXT NOT NULL,
    filter_id TEXT NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (user_id, filter_id)
);
"#;

/// Tokens that let someone register while registration requires one (`m.login.registration_token`).
/// `uses_allowed` NULL: unlimited; `expiry_ms` NULL: never expires.
const REGISTRATION_TOKENS: &str = r#"
CREATE TABLE registration_tokens (
    token TEXT PRIMARY KEY,
    uses_allowed BIGINT,
    -- Registrations that passed the token stage and have not finished yet.
    pending BIGINT NOT NULL DEFAULT 0,
    -- Registrations the token let through.
    completed BIGINT NOT NULL DEFAULT 0,
    expiry_ms BIGINT
);
"#;

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "event graph",
        sqlite: EVENT_GRAPH,
        postgres: EVENT_GRAPH,
    },
    Migration {
        version: 2,
        name: "accounts",
        sqlite: ACCOUNTS,
        postgres: ACCOUNTS,
    },
    Migration {
        version: 3,
        name: "room memberships",
        sqlite: MEMBERSHIPS,
        postgres: MEMBERSHIPS,
    },
    Migration {
        version: 4,
        name: "profiles, account data, filters",
        sqlite: PROFILES_ACCOUNT_DATA_FILTERS,
        postgres: PROFILES_ACCOUNT_DATA_FILTERS,
    },
    Migration {
        version: 5,
        name: "registration tokens",
        sqlite: REGISTRATION_TOKENS,
        postgres: REGISTRATION_TOKENS,
    },
    Migration {
        version: 6,
        name: "redactions",
        sqlite: REDACTIONS,
        postgres: REDACTIONS,
    },
    Migration {
        version: 7,
        name: "room directory",
        sqlite: DIRECTORY,
        postgres: DIRECTORY,
    },
    Migration {
        version: 8,
        name: "receipts",
        sqlite: RECEIPTS,
        postgres: RECEIPTS,
    },
    Migration {
        version: 9,
        name: "event relations",
        sqlite: EVENT_RELATIONS,
        postgres: EVENT_RELATIONS,
    },
    Migration {
        version: 10,
        name: "forgotten rooms",
        sqlite: FORGOTTEN,
        postgres: FORGOTTEN,
    },
    Migration {
        version: 11,
        name: "refresh tokens",
        sqlite: REFRESH_TOKENS,
        postgres: REFRESH_TOKENS,
    },
    Migration {
        version: 12,
        name: "transaction ids per endpoint",
        sqlite: TRANSACTION_ENDPOINTS,
        postgres: TRANSACTION_ENDPOINTS,
    },
    Migration {
        version: 13,
        name: "events by time",
        sqlite: EVENTS_BY_TIME,
        postgres: EVENTS_BY_TIME,
    },
    Migration {
        version: 14,
        name: "message search",
        sqlite: SEARCH_SQLITE,
        postgres: SEARCH_POSTGRES,
    },
    Migration {
        version: 15,
        name: "refresh tokens live until their successor is used",
        sqlite: REFRESH_PARENTS,
        postgres: REFRESH_PARENTS,
    },
    Migration {
        version: 16,
        name: "pushers",
        sqlite: PUSHERS,
        postgres: PUSHERS,
    },
    Migration {
        version: 17,
        name: "erased users",
        sqlite: ERASED,
        postgres: ERASED,
    },
    Migration {
        version: 18,
        name: "current state by event type",
        sqlite: CURRENT_STATE_BY_TYPE,
        postgres: CURRENT_STATE_BY_TYPE,
    },
    Migration {
        version: 19,
        name: "guest accounts",
        sqlite: GUESTS,
        postgres: GUESTS,
    },
    Migration {
        version: 20,
        name: "event reports",
        sqlite: REPORTS,
        postgres: REPORTS,
    },
    Migration {
        version: 21,
        name: "end-to-end encryption",
        sqlite: E2EE,
        postgres: E2EE,
    },
    Migration {
        version: 22,
        name: "events by room and type",
        sqlite: EVENTS_BY_TYPE,
        postgres: EVENTS_BY_TYPE,
    },
    Migration {
        version: 23,
        name: "dehydrated devices",
        sqlite: DEHYDRATED_DEVICES,
        postgres: DEHYDRATED_DEVICES,
    },
    Migration {
        version: 24,
        name: "remote server keys",
        sqlite: SERVER_KEYS,
        postgres: SERVER_KEYS,
    },
    Migration {
        version: 25,
        name: "events apart from the room's DAG",
        sqlite: EVENTS_APART,
        postgres: EVENTS_APART,
    },
    Migration {
        version: 26,
        name: "room state may name outliers",
        sqlite: STATE_NAMES_OUTLIERS_SQLITE,
        postgres: STATE_NAMES_OUTLIERS_POSTGRES,
    },
    Migration {
        version: 27,
        name: "federation outbound positions",
        sqlite: FEDERATION_OUTBOUND,
        postgres: FEDERATION_OUTBOUND,
    },
    Migration {
        version: 28,
        name: "auth edges of outliers",
        sqlite: OUTLIER_AUTH_SQLITE,
        postgres: OUTLIER_AUTH_POSTGRES,
    },
    Migration {
        version: 29,
        name: "memberships of rooms we are not in",
        sqlite: OUTSIDE_MEMBERSHIPS,
        postgres: OUTSIDE_MEMBERSHIPS,
    },
];

/// Events kept apart (outliers above all: a joined room's state) have auth events too, and
/// auth chains must walk through them: `event_auth` may name events that are not in `events`.
const OUTLIER_AUTH_SQLITE: &str = "
CREATE TABLE event_auth_new (
    event_id TEXT NOT NULL,
    auth_event_id TEXT NOT NULL,
    PRIMARY KEY (event_id, auth_event_id)
);
INSERT INTO event_auth_new SELECT event_id, auth_event_id FROM event_auth;
DROP TABLE event_auth;
ALTER TABLE event_auth_new RENAME TO event_auth;
";

const OUTLIER_AUTH_POSTGRES: &str =
    "ALTER TABLE event_auth DROP CONSTRAINT IF EXISTS event_auth_event_id_fkey;";

/// Local users' invites to rooms this server is not in (from partners, over
/// `/_matrix/federation/v2/invite`), and their rejections: the member event, the stripped
/// state the user may see, and a position in the event stream so that syncs pick it up.
/// The newer of a row here and the user's `room_memberships` row for the room wins.
const OUTSIDE_MEMBERSHIPS: &str = "
CREATE TABLE outside_memberships (
    room_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_id TEXT NOT NULL,
    room_version TEXT NOT NULL,
    event_json TEXT NOT NULL,
    stripped_state TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    forgotten BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX outside_memberships_user ON outside_memberships (user_id, stream_ordering);
CREATE INDEX outside_memberships_stream ON outside_memberships (stream_ordering);
";

/// How far each partner has been sent this server's events (a stream position): after a
/// restart or an outage, sending carries on from there.
const FEDERATION_OUTBOUND: &str = "
CREATE TABLE federation_outbound (
    destination TEXT PRIMARY KEY,
    last_sent_stream BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
";

/// A room joined over federation has a current state (and members) made of events known
/// without their own state: outliers, kept in `events_apart`. So `current_state` and
/// `room_memberships` may name events that are not in `events`. SQLite cannot drop a
/// constraint: the two tables are rebuilt without it.
const STATE_NAMES_OUTLIERS_SQLITE: &str = "
CREATE TABLE current_state_new (
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    event_type TEXT NOT NULL,
    state_key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (room_id, event_type, state_key)
);
INSERT INTO current_state_new SELECT room_id, event_type, state_key, event_id FROM current_state;
DROP TABLE current_state;
ALTER TABLE current_state_new RENAME TO current_state;
CREATE INDEX current_state_by_type ON current_state (event_type, state_key, room_id);
CREATE TABLE room_memberships_new (
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    user_id TEXT NOT NULL,
    membership TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    forgotten BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
INSERT INTO room_memberships_new
    SELECT room_id, user_id, membership, event_id, stream_ordering, forgotten FROM room_memberships;
DROP TABLE room_memberships;
ALTER TABLE room_memberships_new RENAME TO room_memberships;
CREATE INDEX room_memberships_user ON room_memberships (user_id, stream_ordering);
CREATE INDEX room_memberships_stream ON room_memberships (stream_ordering);
";

const STATE_NAMES_OUTLIERS_POSTGRES: &str = "
ALTER TABLE current_state DROP CONSTRAINT IF EXISTS current_state_event_id_fkey;
ALTER TABLE room_memberships DROP CONSTRAINT IF EXISTS room_memberships_event_id_fkey;
";

/// Events of other servers that are known but not part of a room's DAG, kept apart from
/// `events` so that no timeline, state or sync query can see them: `rejected` (failed the
/// auth checks: never in state or timelines), `soft_failed` (authorised by the state before
/// them but not by the room's current state: not served to clients nor sent on, and never a
/// forward extremity) and `outlier` (known without the state before it, such as a join's
/// auth chain).
const EVENTS_APART: &str = "
CREATE TABLE events_apart (
    event_id TEXT PRIMARY KEY,
    room_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    json TEXT NOT NULL,
    received_ts BIGINT NOT NULL
);
CREATE INDEX events_apart_room ON events_apart (room_id);
";

/// Other servers' signing keys, as fetched from them (`/_matrix/key/v2/server`) and checked
/// against their own signature. `valid_until_ts` is the key response's; `expired_ts` is set
/// for a key listed under `old_verify_keys` (valid for what it signed before then). The
/// verified key response is kept whole in `response`, so the notary can serve it on.
const SERVER_KEYS: &str = "
CREATE TABLE server_keys (
    server_name TEXT NOT NULL,
    key_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    valid_until_ts BIGINT NOT NULL,
    expired_ts BIGINT,
    fetched_ts BIGINT NOT NULL,
    response TEXT NOT NULL,
    PRIMARY KEY (server_name, key_id)
);
";

/// Each user's dehydrated device (MSC3814): a device of theirs (keys and to-device queue as
/// any device's) and the client's encrypted pickle of it. Goes with the device.
const DEHYDRATED_DEVICES: &str = "
CREATE TABLE dehydrated_devices (
    user_id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    device_data TEXT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
";

/// Sliding sync reads each room's latest event of the bump types once (`bump.rs`).
const EVENTS_BY_TYPE: &str =
    "CREATE INDEX events_room_type ON events (room_id, event_type, stream_ordering);";

/// End-to-end encryption: the keys devices publish, the messages they send each other, which
/// users' device lists changed, and server-side key backups.
///
/// - `device_keys`, `one_time_keys`, `fallback_keys`, `to_device` and `to_device_txns` belong to
///   a device and go with it.
/// - `cross_signing_keys` (`master`, `self_signing`, `user_signing`) and `key_signatures`
///   (signatures uploaded separately, merged in when keys are queried) belong to the user.
/// - `device_list_changes` and `to_device` are streams: their positions come from a counter
///   in `stream_positions`, taken in the writing transaction (to-device rows are deleted once
///   delivered, so the newest row cannot tell the last position).
/// - `room_key_backups` keeps deleted versions (`deleted = 1`) so that a version number is never
///   handed out twice; `room_keys` are the sessions of a version (`key_data` the whole
///   `KeyBackupData` object, the three columns before it copied out to compare sessions).
const E2EE: &str = r#"
CREATE TABLE stream_positions (
    stream TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO stream_positions (stream, position) VALUES ('device_lists', 0), ('to_device', 0);
CREATE TABLE device_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    keys TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE TABLE one_time_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_json TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, key_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX one_time_keys_by_algorithm ON one_time_keys (user_id, device_id, algorithm);
CREATE TABLE fallback_keys (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    key_id TEXT NOT NULL,
    key_json TEXT NOT NULL,
    used BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, device_id, algorithm),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE TABLE cross_signing_keys (
    user_id TEXT NOT NULL,
    key_type TEXT NOT NULL,
    keys TEXT NOT NULL,
    PRIMARY KEY (user_id, key_type)
);
CREATE TABLE key_signatures (
    target_user TEXT NOT NULL,
    target_key TEXT NOT NULL,
    signer_user TEXT NOT NULL,
    signer_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (target_user, target_key, signer_user, signer_key)
);
CREATE TABLE device_list_changes (
    stream_ordering BIGINT PRIMARY KEY,
    user_id TEXT NOT NULL
);
CREATE TABLE to_device (
    stream_ordering BIGINT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    event_type TEXT NOT NULL,
    content TEXT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX to_device_by_device ON to_device (user_id, device_id, stream_ordering);
CREATE TABLE to_device_txns (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, txn_id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE TABLE room_key_backups (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    algorithm TEXT NOT NULL,
    auth_data TEXT NOT NULL,
    etag BIGINT NOT NULL DEFAULT 0,
    deleted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
);
CREATE TABLE room_keys (
    user_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    room_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    first_message_index BIGINT NOT NULL,
    forwarded_count BIGINT NOT NULL,
    is_verified BIGINT NOT NULL,
    key_data TEXT NOT NULL,
    PRIMARY KEY (user_id, version, room_id, session_id)
);
CREATE INDEX room_memberships_stream ON room_memberships (stream_ordering);
"#;

/// Events users reported to the server's administrators (`POST /rooms/{roomId}/report/...`).
const REPORTS: &str = r#"
CREATE TABLE event_reports (
    room_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    reporter TEXT NOT NULL,
    reason TEXT,
    reported_at_ms BIGINT NOT NULL
);
CREATE INDEX event_reports_by_time ON event_reports (reported_at_ms);
"#;

/// Guest accounts (`kind=guest`), who may call only the spec's guest endpoints.
const GUESTS: &str = "ALTER TABLE users ADD COLUMN is_guest BIGINT NOT NULL DEFAULT 0;";

/// The user directory finds public rooms by their current join rules and history visibility.
const CURRENT_STATE_BY_TYPE: &str =
    "CREATE INDEX current_state_by_type ON current_state (event_type, state_key, room_id);";

/// Users who deactivated with `erase: true`: those who join a room later see their events
/// redacted.
const ERASED: &str = "ALTER TABLE users ADD COLUMN erased BIGINT NOT NULL DEFAULT 0;";

/// Full-text search over message bodies, room names and topics (`POST /search`), filled by the
/// event writer; a redaction removes the event's entries. SQLite: an FTS5 table. PostgreSQL: a
/// generated `tsvector` with the language-neutral `simple` configuration (no stemming, so no
/// language is favoured) under a GIN index. Existing events are indexed here. The SQLite
/// rowid is the event's stream position (one entry per event), so that a redaction deletes by
/// rowid; PostgreSQL cannot store NUL characters, so events with them are left out.
const SEARCH_SQLITE: &str = r#"
CREATE VIRTUAL TABLE event_search USING fts5(
    value, event_id UNINDEXED, room_id UNINDEXED, key UNINDEXED, stream UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
);
INSERT INTO event_search (rowid, value, event_id, room_id, key, stream)
    SELECT v.stream, v.value, v.event_id, v.room_id, v.key, v.stream FROM (
        SELECT json_extract(json, '$.content.body') AS value, event_id, room_id,
               'content.body' AS key, stream_ordering AS stream
        FROM events WHERE event_type = 'm.room.message'
          AND json_type(json, '$.content.body') = 'text'
        UNION ALL
        SELECT json_extract(json, '$.content.name'), event_id, room_id, 'content.name',
               stream_ordering
        FROM events WHERE event_type = 'm.room.name' AND json_type(json, '$.content.name') = 'text'
        UNION ALL
        SELECT json_extract(json, '$.content.topic'), event_id, room_id, 'content.topic',
               stream_ordering
        FROM events WHERE event_type = 'm.room.topic' AND json_type(json, '$.content.topic') = 'text'
    ) v
    WHERE v.value IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM redactions r WHERE r.redacts = v.event_id);
"#;
const SEARCH_POSTGRES: &str = r#"
CREATE TABLE event_search (
    event_id TEXT NOT NULL,
    room_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    stream BIGINT NOT NULL,
    vector TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', value)) STORED
);
CREATE INDEX event_search_vector ON event_search USING GIN (vector);
CREATE INDEX event_search_event ON event_search (event_id);
INSERT INTO event_search (value, event_id, room_id, key, stream)
    SELECT v.value, v.event_id, v.room_id, v.key, v.stream FROM (
        SELECT e.json::jsonb -> 'content' ->> 'body' AS value, e.event_id, e.room_id,
               'content.body' AS key, e.stream_ordering AS stream
        FROM events e WHERE e.event_type = 'm.room.message' AND e.json NOT LIKE '%\\u0000%'
          AND jsonb_typeof(e.json::jsonb -> 'content' -> 'body') = 'string'
        UNION ALL
        SELECT e.json::jsonb -> 'content' ->> 'name', e.event_id, e.room_id, 'content.name',
               e.stream_ordering
        FROM events e WHERE e.event_type = 'm.room.name' AND e.json NOT LIKE '%\\u0000%'
          AND jsonb_typeof(e.json::jsonb -> 'content' -> 'name') = 'string'
        UNION ALL
        SELECT e.json::jsonb -> 'content' ->> 'topic', e.event_id, e.room_id, 'content.topic',
               e.stream_ordering
        FROM events e WHERE e.event_type = 'm.room.topic' AND e.json NOT LIKE '%\\u0000%'
          AND jsonb_typeof(e.json::jsonb -> 'content' -> 'topic') = 'string'
    ) v
    WHERE NOT EXISTS (SELECT 1 FROM redactions r WHERE r.redacts = v.event_id);
CREATE INDEX event_search_room ON event_search (room_id, stream);
"#;

/// "Jump to date" (`timestamp_to_event`) looks events up by origin_server_ts within a room.
const EVENTS_BY_TIME: &str = r#"
CREATE INDEX events_room_time ON events (room_id, origin_server_ts);
"#;

/// Transaction ids are scoped to the device and the whole request path: the same id may be
/// used for a message, a reaction and a redaction. Earlier ids get the endpoint their event
/// came through.
const TRANSACTION_ENDPOINTS: &str = r#"
CREATE TABLE transaction_ids_by_endpoint (
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    event_id TEXT NOT NULL REFERENCES events(event_id),
    PRIMARY KEY (user_id, device_id, room_id, endpoint, txn_id)
);
INSERT INTO transaction_ids_by_endpoint
    SELECT t.user_id, t.device_id, COALESCE('redact/' || r.redacts, 'send/' || e.event_type),
           t.txn_id, t.room_id, t.event_id
    FROM transaction_ids t JOIN events e ON e.event_id = t.event_id
    LEFT JOIN redactions r ON r.redaction_id = t.event_id;
DROP TABLE transaction_ids;
ALTER TABLE transaction_ids_by_endpoint RENAME TO transaction_ids;
CREATE INDEX transaction_ids_event ON transaction_ids (event_id);
"#;

/// `m.relates_to` of each event that has a `rel_type` (replies without one are not indexed), so
/// that children of an event and bundled aggregations are index lookups. A redacted child loses
/// its row: redaction breaks the relationship.
const EVENT_RELATIONS: &str = r#"
CREATE TABLE event_relations (
    event_id TEXT PRIMARY KEY REFERENCES events(event_id),
    relates_to TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    room_id TEXT NOT NULL,
    stream_ordering BIGINT NOT NULL
);
CREATE INDEX event_relations_parent ON event_relations (relates_to, rel_type);
CREATE INDEX event_relations_room_type ON event_relations (room_id, rel_type, stream_ordering);
"#;

/// Read receipts: each user's latest receipt per room, type and thread, in a stream of its own.
const RECEIPTS: &str = r#"
CREATE TABLE receipts (
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    user_id TEXT NOT NULL,
    receipt_type TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    ts BIGINT NOT NULL,
    stream_ordering BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id, receipt_type, thread_id)
);
CREATE INDEX receipts_stream ON receipts (stream_ordering);
"#;

/// Rooms a user has left and asked to forget; a new membership clears the mark.
const FORGOTTEN: &str =
    "ALTER TABLE room_memberships ADD COLUMN forgotten BIGINT NOT NULL DEFAULT 0";

/// Access tokens that expire, and the refresh tokens that replace them (one live refresh token
/// per refreshable session; using it rotates both).
const REFRESH_TOKENS: &str = r#"
ALTER TABLE access_tokens ADD COLUMN expires_at_ms BIGINT;
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX refresh_tokens_device ON refresh_tokens (user_id, device_id);
"#;

/// A refresh stays repeatable until its result is used (the spec keeps the old refresh token
/// valid until then): the tokens it handed out remember the refresh token they replace.
const REFRESH_PARENTS: &str = r#"
ALTER TABLE refresh_tokens ADD COLUMN parent_hash TEXT;
ALTER TABLE access_tokens ADD COLUMN parent_refresh_hash TEXT;
CREATE INDEX refresh_tokens_parent ON refresh_tokens (parent_hash);
"#;

/// Where to push a user's notifications: one row per (user, app, pushkey), belonging to the
/// device that set it (and gone with it).
const PUSHERS: &str = r#"
CREATE TABLE pushers (
    user_id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    pushkey TEXT NOT NULL,
    device_id TEXT NOT NULL,
    json TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id, pushkey),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, device_id) ON DELETE CASCADE
);
CREATE INDEX pushers_key ON pushers (app_id, pushkey);
CREATE INDEX pushers_device ON pushers (user_id, device_id);
"#;

/// Local room aliases and the public room directory.
const DIRECTORY: &str = r#"
CREATE TABLE room_aliases (
    alias TEXT PRIMARY KEY,
    room_id TEXT NOT NULL REFERENCES rooms(room_id),
    creator TEXT NOT NULL
);
CREATE INDEX room_aliases_room ON room_aliases (room_id);

CREATE TABLE room_directory (
    room_id TEXT PRIMARY KEY REFERENCES rooms(room_id)
);
"#;

/// Which events a (permitted) redaction applies to; events are served redacted when listed.
const REDACTIONS: &str = r#"
CREATE TABLE redactions (
    redacts TEXT NOT NULL,
    redaction_id TEXT NOT NULL REFERENCES events(event_id),
    PRIMARY KEY (redacts, redaction_id)
);
"#;

const SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS hearth_schema (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";

/// The newest schema version this binary knows.
pub(crate) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(crate) async fn run(db: &Db) -> Result<(), StoreError> {
    let is_postgres = matches!(db, Db::Postgres(_));
    with_writer!(db, |pool| {
        sqlx::raw_sql(SCHEMA_TABLE).execute(pool).await?;
        for m in MIGRATIONS {
            let fail = |e: sqlx::Error| StoreError::Migration {
                version: m.version,
                name: m.name,
                source: std::sync::Arc::new(e),
            };
            let mut tx = pool.begin().await?;
            if is_postgres {
                // Several Hearth processes may start against one database at once.
                sqlx::query("SELECT pg_advisory_xact_lock(7274837)")
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
            }
            let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM hearth_schema")
                .fetch_one(&mut *tx)
                .await?;
            let found = found.unwrap_or(0);
            if found > latest() {
                return Err(StoreError::SchemaTooNew {
                    found,
                    known: latest(),
                });
            }
            if found >= m.version {
                continue;
            }
            let sql = if is_postgres { m.postgres } else { m.sqlite };
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
            sqlx::query(
                "INSERT INTO hearth_schema (version, name, applied_at_ms) VALUES ($1, $2, $3)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            tracing::info!(
                version = m.version,
                name = m.name,
                "applied schema migration"
            );
        }
        Ok(())
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
