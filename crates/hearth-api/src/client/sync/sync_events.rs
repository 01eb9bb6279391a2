//! `GET /_matrix/client/v3/sync` — everything new for this user since their token, waiting
//! up to `timeout` for news.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv3sync>

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use hearth_sync::{SyncFilter, SyncRequest, SyncToken};
use ruma::api::error::ErrorKind;

use ruma::api::client::filter::FilterDefinition;
use ruma::api::client::sync::sync_events::v3::{self as endpoint, Filter};

use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

/// The longest a client may make us hold a sync open.
const MAX_TIMEOUT: Duration = Duration::from_secs(120);

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<hearth_sync::v2::SyncResponse>, ApiError> {
    let caller = request.caller()?.clone();
    let body = request.body;
    let since = match &body.since {
        Some(token) => Some(
            token
                .parse::<SyncToken>()
                .map_err(|()| bad("unknown since token"))?,
        ),
        None => None,
    };
    let filter = match &body.filter {
        None => SyncFilter::default(),
        Some(Filter::FilterDefinition(definition)) => SyncFilter::from_definition(definition),
        // ruma reads a `filter` that does not parse as JSON as a filter id; ids never start
        // with `{`, so this was meant as JSON.
        Some(Filter::FilterId(id)) if id.trim_start().starts_with('{') => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::BadJson,
                "filter is neither valid filter JSON nor a filter id",
            ));
        }
        Some(Filter::FilterId(id)) => {
            let definition = state.filter_definition(&caller.user_id, id).await?;
            SyncFilter::from_definition(&definition)
        }
        Some(_) => return Err(bad("unsupported filter")),
    };
    if !hearth_sync::presence::is_known(&body.set_presence) {
        return Err(bad("set_presence must be online, unavailable or offline"));
    }
    let request = SyncRequest {
        user: caller.user_id,
        device: caller.device_id,
        since,
        timeout: body.timeout.unwrap_or_default().min(MAX_TIMEOUT),
        full_state: body.full_state,
        filter,
        set_presence: body.set_presence.clone(),
    };
    let response = state.sync.sync(&request).await?;
    Ok(Json(response))
}

impl ApiState {
    /// A stored filter of this user, by id.
    pub(crate) async fn filter_definition(
        &self,
        user: &ruma::UserId,
        id: &str,
    ) -> Result<FilterDefinition, ApiError> {
        let json = self.rooms.store().filter(user, id).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorKind::NotFound,
                "unknown filter id",
            )
        })?;
        serde_json::from_str(&json).map_err(ApiError::internal)
    }
}
