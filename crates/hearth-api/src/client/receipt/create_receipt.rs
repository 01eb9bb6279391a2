//! `POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}` — send a receipt.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidreceiptreceipttypeeventid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use hearth_sync::threads::thread_of_event;
use ruma::api::client::receipt::create_receipt::v3::{self as endpoint, ReceiptType};
use ruma::api::error::ErrorKind;
use ruma::events::receipt::ReceiptThread;

use super::{check_target, store_fully_read, store_receipt};
use crate::extract::Ruma;
use crate::rate_limit::RateKey;
use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<RumaResponse<endpoint::Response>, ApiError> {
    let user = &request.caller()?.user_id;
    state.rate_limits.ephemeral.check(RateKey::user(user))?;
    let body = &request.body;
    let target = check_target(&state, &body.room_id, user, &body.event_id).await?;
    let invalid =
        |message: &str| ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message);
    // Spec: a threaded receipt's event must be in that thread (or be its root).
    let in_thread = || thread_of_event(state.rooms.store(), &body.room_id, &target);
    let thread = match &body.thread {
        ReceiptThread::Unthreaded => None,
        ReceiptThread::Main => {
            if in_thread().await?.is_some() {
                return Err(invalid("the event is in a thread, not the main timeline"));
            }
            Some("main".to_owned())
        }
        ReceiptThread::Thread(root) => {
            if *root != body.event_id && in_thread().await?.as_ref() != Some(root) {
                return Err(invalid("the event is not in that thread"));
            }
            Some(root.to_string())
        }
        _ => return Err(invalid("unknown thread_id")),
    };
    match body.receipt_type {
        ReceiptType::Read => {
            store_receipt(
                &state,
                &body.room_id,
                user,
                "m.read",
                thread.as_deref(),
                &body.event_id,
            )
            .await?
        }
        ReceiptType::ReadPrivate => {
            store_receipt(
                &state,
                &body.room_id,
                user,
                "m.read.private",
                thread.as_deref(),
                &body.event_id,
            )
            .await?
        }
        ReceiptType::FullyRead if thread.is_some() => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                "m.fully_read can't be threaded",
            ));
        }
        ReceiptType::FullyRead => {
            store_fully_read(&state, &body.room_id, user, &body.event_id).await?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidParam,
                "unknown receipt type",
            ));
        }
    }
    Ok(RumaResponse(endpoint::Response::new()))
}
