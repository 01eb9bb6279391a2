//! User directory search: users who share a room with the searcher or sit in a public room
//! (join rule `public`, or history `world_readable`).

use ruma::{OwnedUserId, UserId};
use sqlx::Row;

use crate::db::with_reader;
use crate::{Store, StoreError};

/// A search hit: user id, display name, avatar URL.
pub type DirectoryUser = (OwnedUserId, Option<String>, Option<String>);

/// `term` as a LIKE pattern matching anywhere, with LIKE's own wildcards escaped.
fn like_pattern(term: &str) -> String {
    let mut pattern = String::from("%");
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Up to `limit` users matching `term` in their id or display name, among those visible to
    /// `searcher`. Ordered by user id for stable results.
    pub async fn search_users(
        &self,
        searcher: &UserId,
        term: &str,
        limit: i64,
    ) -> Result<Vec<DirectoryUser>, StoreError> {
        let pattern = like_pattern(term);
        // A room is public here while its current join rule is `public` or its history is
        // `world_readable`: users come and go from the results as those change.
        let content = |key: &str| {
            if matches!(self.db, crate::db::Db::Sqlite { .. }) {
                format!("json_extract(e.json, '$.content.{key}')")
            } else {
                format!("(e.json::jsonb -> 'content' ->> '{key}')")
            }
        };
        let sql = format!(
            "SELECT DISTINCT m.user_id, p.displayname, p.avatar_url
             FROM room_memberships m LEFT JOIN profiles p ON p.user_id = m.user_id
             WHERE m.membership = 'join'
               AND (m.room_id IN (SELECT room_id FROM room_memberships
                                  WHERE user_id = $1 AND membership = 'join')
                    OR m.room_id IN (
                        SELECT cs.room_id FROM current_state cs
                        JOIN events e ON e.event_id = cs.event_id
                        WHERE (cs.event_type = 'm.room.join_rules' AND cs.state_key = ''
                               AND {join_rule} = 'public')
                           OR (cs.event_type = 'm.room.history_visibility'
                               AND cs.state_key = ''
                               AND {visibility} = 'world_readable')))
               AND (LOWER(m.user_id) LIKE $2 ESCAPE '\\'
                    OR LOWER(COALESCE(p.displayname, '')) LIKE $2 ESCAPE '\\')
             ORDER BY m.user_id
             LIMIT $3",
            join_rule = content("join_rule"),
            visibility = content("history_visibility"),
        );
        with_reader!(&self.db, |pool| {
            // Built from constants only: the term and the user are bound.
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(searcher.as_str())
                .bind(&pattern)
                .bind(limit)
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let user: String = row.try_get("user_id")?;
                out.push((
                    OwnedUserId::try_from(user.as_str())
                        .map_err(|e| StoreError::Corrupt(format!("user id {user:?}: {e}")))?,
                    row.try_get("displayname")?,
                    row.try_get("avatar_url")?,
                ));
            }
            Ok(out)
        })
    }
}
