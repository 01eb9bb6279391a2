//! User profiles: display name and avatar URL. A user without a row has an empty profile.

use ruma::UserId;
use sqlx::Row;

use crate::db::{with_reader, with_writer};
use crate::{Profile, Store, StoreError};

impl Store {
    /// The user's profile, or `None` when no such local user exists (deactivated users exist).
    pub async fn profile(&self, user: &UserId) -> Result<Option<Profile>, StoreError> {
        with_reader!(&self.db, |pool| {
            let row = sqlx::query(
                "SELECT p.displayname, p.avatar_url
                 FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id
                 WHERE u.user_id = $1",
            )
            .bind(user.as_str())
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                Some(row) => Some(Profile {
                    displayname: row.try_get("displayname")?,
                    avatar_url: row.try_get("avatar_url")?,
                }),
                None => None,
            })
        })
    }

    /// Set (or with `None` clear) the user's display name.
    pub async fn set_displayname(
        &self,
        user: &UserId,
        displayname: Option<&str>,
    ) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO profiles (user_id, displayname) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname",
            )
            .bind(user.as_str())
            .bind(displayname)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Set (or with `None` clear) the user's avatar URL.
    pub async fn set_avatar_url(
        &self,
        user: &UserId,
        avatar_url: Option<&str>,
    ) -> Result<(), StoreError> {
        with_writer!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO profiles (user_id, avatar_url) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET avatar_url = excluded.avatar_url",
            )
            .bind(user.as_str())
            .bind(avatar_url)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
