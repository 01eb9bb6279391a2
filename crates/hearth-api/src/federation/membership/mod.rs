//! Partners' users joining rooms of ours (`make_join`, `send_join`).

pub(crate) mod create_join_event;
pub(crate) mod prepare_join_event;

use serde_json::value::RawValue;

use crate::ApiError;

/// A PDU as it goes over federation: its canonical JSON.
pub(crate) fn raw_pdu(pdu: &hearth_rooms::Pdu) -> Result<Box<RawValue>, ApiError> {
    RawValue::from_string(pdu.canonical_json()).map_err(ApiError::internal)
}
