//! `PUT /_matrix/federation/v1/send/{txnId}` — a partner's transaction: PDUs and EDUs, each
//! handled on its own (`hearth-federation/src/transaction.rs` says what is handled so far);
//! to-device messages for local users are queued here.
//! <https://spec.matrix.org/v1.16/server-server-api/#put_matrixfederationv1sendtxnid>

use axum::Router;
use axum::extract::State;
use ruma::api::federation::transactions::send_transaction_message::v1 as endpoint;

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
    let origin = request.origin()?.to_owned();
    let body = request.body;
    let received = state
        .federation
        .receive_transaction(
            &origin,
            &body.origin,
            body.transaction_id,
            &body.pdus,
            &body.edus,
        )
        .await
        .map_err(hearth_federation::FederationError::from)?;
    // Queued before the transaction counts as done: if this fails, the partner's retry
    // delivers them.
    for message in &received.to_device {
        state
            .e2ee
            .receive_to_device(&message.sender, &message.event_type, &message.messages)
            .await?;
    }
    for change in &received.typing {
        // The spec leaves the timeout to the receiver; a partner renews it while typing.
        let timeout = change.typing.then_some(std::time::Duration::from_secs(30));
        state.sync.typing().set(&change.room, &change.user, timeout);
    }
    let result = state.federation.finish_transaction(received);
    Ok(RumaResponse(endpoint::Response::new(result.pdus)))
}
