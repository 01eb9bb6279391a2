pub(crate) mod get_message_events;
pub(crate) mod send_message_event;

use hearth_rooms::{Append, EventDraft};
use hearth_store::TxnKey;
use ruma::{OwnedEventId, RoomId, TransactionId};

use crate::client::room_access::require_joined;
use crate::rate_limit::RateKey;
use crate::{ApiError, ApiState, Caller};

/// Send `draft` as the caller in `room`: rate-limited, members only, and idempotent per the
/// caller's device, the endpoint (the path after the room: `send/{eventType}`,
/// `redact/{eventId}`) and transaction id (a retry gets the first event back).
pub(crate) async fn send_as(
    state: &ApiState,
    caller: &Caller,
    room: &RoomId,
    (endpoint, txn_id): (String, &TransactionId),
    draft: EventDraft,
) -> Result<OwnedEventId, ApiError> {
    let txn = TxnKey {
        room_id: room.to_owned(),
        user_id: caller.user_id.clone(),
        device_id: caller.device_id.clone(),
        endpoint,
        txn_id: txn_id.to_owned(),
    };
    let allowed = match state.rate_limits.send.check(RateKey::user(&caller.user_id)) {
        Ok(()) => require_joined(&state.rooms, room, &caller.user_id).await,
        Err(limited) => Err(limited),
    };
    if let Err(refused) = allowed {
        // A retransmission gets the first answer even if the request would be refused now
        // (the sender has left since, or is sending fast): spec, "Transaction identifiers".
        return match state.rooms.store().txn_event(&txn).await? {
            Some(first) => Ok(first),
            None => Err(refused),
        };
    }
    let append = Append {
        sender: caller.user_id.clone(),
        draft,
        txn: Some(txn),
    };
    let appended = state.rooms.append(room, append).await?;
    state.sync.presence().active(&caller.user_id);
    Ok(appended.event_id)
}
