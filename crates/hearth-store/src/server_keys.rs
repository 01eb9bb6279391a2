//! Other servers' signing keys, fetched from them and checked by `hearth-federation`, kept so
//! that a restart does not refetch every partner's keys and so that the notary can serve them.

use ruma::ServerName;
use sqlx::Row;

use crate::db::{with_reader, with_writer};
use crate::{Store, StoreError};

/// One remote signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeyRow {
    /// `ed25519:abc`.
    pub key_id: String,
    /// Unpadded standard base64.
    pub public_key: String,
    /// Until when the key response said it may be used (milliseconds since the epoch).
    pub valid_until_ts: i64,
    /// For an old verify key: when it stopped being used.
    pub expired_ts: Option<i64>,
}

/// A server's keys as last fetched, with the verified response they came in.
#[derive(Debug, Clone)]
pub struct StoredServerKeys {
    pub keys: Vec<ServerKeyRow>,
    pub fetched_ts: i64,
    /// The key response as the server signed it (JSON).
    pub response: String,
}

impl Store {
    /// Record the keys of a verified key response from `server`. Keys it no longer lists are
    /// kept: events they signed still verify while their `valid_until_ts` covers them.
    pub async fn put_server_keys(
        &self,
        server: &ServerName,
        keys: &[ServerKeyRow],
        fetched_ts: i64,
        response: &str,
    ) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            for key in keys {
                sqlx::query(
                    "INSERT INTO server_keys
                       (server_name, key_id, public_key, valid_until_ts, expired_ts, fetched_ts,
                        response)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (server_name, key_id) DO UPDATE SET
                       public_key = excluded.public_key,
                       valid_until_ts = excluded.valid_until_ts,
                       expired_ts = excluded.expired_ts,
                       fetched_ts = excluded.fetched_ts,
                       response = excluded.response",
                )
                .bind(server.as_str())
                .bind(&key.key_id)
                .bind(&key.public_key)
                .bind(key.valid_until_ts)
                .bind(key.expired_ts)
                .bind(fetched_ts)
                .bind(response)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// What is known of `server`'s keys (`None`: nothing yet). The response is the newest one.
    pub async fn server_keys(
        &self,
        server: &ServerName,
    ) -> Result<Option<StoredServerKeys>, StoreError> {
        with_reader!(&self.db, |pool| {
            let rows = sqlx::query(
                "SELECT key_id, public_key, valid_until_ts, expired_ts, fetched_ts, response
                 FROM server_keys WHERE server_name = $1 ORDER BY fetched_ts DESC, key_id",
            )
            .bind(server.as_str())
            .fetch_all(pool)
            .await?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            let fetched_ts: i64 = first.try_get("fetched_ts")?;
            let response: String = first.try_get("response")?;
            let keys = rows
                .iter()
                .map(|row| {
                    Ok(ServerKeyRow {
                        key_id: row.try_get("key_id")?,
                        public_key: row.try_get("public_key")?,
                        valid_until_ts: row.try_get("valid_until_ts")?,
                        expired_ts: row.try_get("expired_ts")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok(Some(StoredServerKeys {
                keys,
                fetched_ts,
                response,
            }))
        })
    }
}
