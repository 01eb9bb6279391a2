//! `POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}` — send a receipt.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3roomsroomidreceiptreceipttypeeventid>

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use ruma::api::client::receipt::create_receipt::v3::{self as endpoint, ReceiptType};
use ruma::events::receipt::ReceiptThread;

use super::{check_target, store_fully_read, store_receipt};
use crate::extract::Ruma;
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
    let body = &request.body;
    check_target(&state, &body.room_id, user, &body.event_id).await?;
    let thread = match &body.thread {
        ReceiptThread::Unthreaded => None,
        ReceiptThread::Main => Some("main".to_owned()),
        ReceiptThread::Thread(root) => Some(root.to_string()),
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "M_INVALID_PARAM",
                "unknown thread_id",
            ));
        }
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
                "M_INVALID_PARAM",
                "m.fully_read can't be threaded",
            ));
        }
        ReceiptType::FullyRead => {
            store_fully_read(&state, &body.room_id, user, &body.event_id).await?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "M_INVALID_PARAM",
                "unknown receipt type",
            ));
        }
    }
    Ok(RumaResponse(endpoint::Response::new()))
}
