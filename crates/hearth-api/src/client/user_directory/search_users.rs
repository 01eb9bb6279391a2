//! `POST /_matrix/client/v3/user_directory/search` — find users by id or display name among
//! those who share a room with the searcher or are in a public room.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3user_directorysearch>

use axum::Router;
use axum::extract::State;
use ruma::api::client::user_directory::search_users::v3::{self as endpoint, User};

use crate::extract::Ruma;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

/// The most results one search returns, whatever the client asks.
const MAX_LIMIT: i64 = 50;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let user = &request.caller()?.user_id;
    let body = &request.body;
    let limit = i64::try_from(u64::from(body.limit))
        .unwrap_or(MAX_LIMIT)
        .clamp(1, MAX_LIMIT);
    // One more than asked tells whether the list was cut.
    let mut found = state
        .rooms
        .store()
        .search_users(user, body.search_term.trim(), limit + 1)
        .await?;
    let limited = found.len() as i64 > limit;
    found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let results = found
        .into_iter()
        .map(|(user_id, display_name, avatar_url)| {
            let mut user = User::new(user_id);
            user.display_name = display_name;
            user.avatar_url = avatar_url.map(Into::into);
            user
        })
        .collect();
    Ok(RumaResponse(endpoint::Response::new(results, limited)))
}
