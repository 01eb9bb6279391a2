//! `POST /_matrix/client/v3/keys/signatures/upload` — signatures on the user's devices and
//! master key, and on other users' master keys. Each signature is verified; those that fail
//! are reported in `failures` and the rest are stored.
//! <https://spec.matrix.org/v1.16/client-server-api/#post_matrixclientv3keyssignaturesupload>

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use ruma::api::client::keys::upload_signatures::v3 as endpoint;

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
    let signer = request.caller()?.user_id.clone();
    let mut signed = BTreeMap::new();
    for (user, keys) in &request.body.signed_keys {
        let keys: BTreeMap<String, Box<serde_json::value::RawValue>> = keys
            .iter()
            .map(|(id, json)| (id.to_string(), json.to_owned()))
            .collect();
        signed.insert(user.clone(), keys);
    }
    let refused = state.e2ee.upload_signatures(&signer, &signed).await?;
    let mut failures = BTreeMap::new();
    for (user, keys) in refused {
        let mut by_key = BTreeMap::new();
        for (key, (errcode, error)) in keys {
            // ruma's `Failure` has no constructor: built from its wire form.
            let failure = serde_json::from_value(serde_json::json!({
                "errcode": errcode,
                "error": error,
            }))
            .map_err(ApiError::internal)?;
            by_key.insert(key, failure);
        }
        failures.insert(user, by_key);
    }
    let mut response = endpoint::Response::new();
    response.failures = failures;
    Ok(RumaResponse(response))
}
