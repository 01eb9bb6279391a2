//! Inbound request authentication (`X-Matrix`), in two steps so that nothing is read or
//! fetched for a stranger: [`Federation::authorize`] reads the header alone — the origin must
//! be a partner (403 otherwise, before anything else), the destination must be us, and the
//! key it names is found (fetched from the origin if need be) — and only then is the body
//! read and the signature checked over it by [`Authorized::verify`].
//! <https://spec.matrix.org/v1.16/server-server-api/#request-authentication>

use ruma::api::federation::authentication::XMatrix;
use ruma::serde::Base64;
use ruma::{OwnedServerName, ServerName, SigningKeyAlgorithm};
use serde_json::Value;

use crate::keys::now_ms;
use crate::{Federation, FederationError};

/// A request whose header checked out, waiting for its body.
#[derive(Debug)]
pub struct Authorized {
    x_matrix: XMatrix,
    /// The origin's public key the header names.
    key: Base64,
    own: OwnedServerName,
}

impl Authorized {
    /// The server the request claims to come from (a partner), not yet proven.
    pub fn origin(&self) -> &ServerName {
        &self.x_matrix.origin
    }

    /// Check the signature over the request as received: method, path and query, and body.
    pub fn verify(
        self,
        method: &http::Method,
        uri: &http::Uri,
        body: &[u8],
    ) -> Result<OwnedServerName, FederationError> {
        let bad = |why: String| FederationError::BadSignature(why);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let signed =
            signed_bytes(method, path, &self.x_matrix.origin, &self.own, body).map_err(bad)?;
        ruma::signatures::verify_canonical_json_bytes(
            &SigningKeyAlgorithm::Ed25519,
            self.key.as_bytes(),
            self.x_matrix.sig.as_bytes(),
            &signed,
        )
        .map_err(|e| bad(e.to_string()))?;
        Ok(self.x_matrix.origin)
    }
}

/// The bytes an `X-Matrix` signature covers: the canonical JSON of `method`, `uri`, `origin`,
/// `destination` and, with a body, `content`.
///
/// Built over plain JSON values rather than ruma's canonical JSON, which refuses floats and
/// integers beyond 2^53: a transaction may carry such a PDU among good ones, and the spec
/// wants that one PDU refused, not the whole request.
pub fn signed_bytes(
    method: &http::Method,
    path_and_query: &str,
    origin: &ServerName,
    destination: &ServerName,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let mut object = serde_json::Map::new();
    object.insert("method".into(), method.as_str().into());
    object.insert("uri".into(), path_and_query.into());
    object.insert("origin".into(), origin.as_str().into());
    object.insert("destination".into(), destination.as_str().into());
    if !body.is_empty() {
        let content: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        object.insert("content".into(), content);
    }
    let mut out = Vec::with_capacity(body.len() + 256);
    canonical(&Value::Object(object), &mut out);
    Ok(out)
}

/// Canonical JSON: keys sorted by code point, no insignificant whitespace, strings escaped
/// the way serde_json does (only what must be, lowercase hex), numbers as written.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (n, (key, value)) in entries.into_iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                canonical(&Value::String(key.clone()), out);
                out.push(b':');
                canonical(value, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        // Scalars have one compact form, which serde_json writes.
        scalar => {
            if let Ok(text) = serde_json::to_vec(scalar) {
                out.extend_from_slice(&text);
            }
        }
    }
}

impl Federation {
    /// The first step: the `Authorization` header alone.
    pub async fn authorize(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Authorized, FederationError> {
        let x_matrix = XMatrix::extract_from_http_headers(headers)
            .map_err(|e| FederationError::MissingAuthorization(format!("X-Matrix: {e}")))?;
        // Strangers first: they learn nothing more and cost nothing more.
        self.policy().check(&x_matrix.origin)?;
        let own = self.policy().own_name().to_owned();
        if let Some(destination) = &x_matrix.destination
            && *destination != own
        {
            return Err(FederationError::WrongDestination(destination.clone()));
        }
        let key = self
            .server_key(&x_matrix.origin, x_matrix.key.as_str(), now_ms())
            .await?;
        Ok(Authorized { x_matrix, key, own })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use hearth_keys::SigningKey;
    use ruma::api::federation::authentication::XMatrixSigningInput;
    use ruma::signatures::KeyPair;

    fn authorized(x_matrix: XMatrix, key: &SigningKey) -> Authorized {
        Authorized {
            x_matrix,
            key: Base64::parse(key.public_key_base64()).unwrap(),
            own: "b.test".try_into().unwrap(),
        }
    }

    #[test]
    fn requests_signed_as_ruma_signs_them_verify_and_tampered_ones_do_not() {
        let key = SigningKey::generate("a.test".try_into().unwrap()).unwrap();
        let body = br#"{"device_keys":{"@bob:b.test":[]},"n":[1,-2,"\u00e9\n"]}"#.to_vec();
        let uri = "https://b.test/_matrix/federation/v1/user/keys/query?x=%20y";
        let request = http::Request::post(uri).body(body.clone()).unwrap();
        let x_matrix = XMatrix::sign_http_request(
            &request,
            XMatrixSigningInput::new(
                "a.test".try_into().unwrap(),
                "b.test".try_into().unwrap(),
                key.pair(),
            ),
        )
        .unwrap();
        let uri: http::Uri = uri.parse().unwrap();
        let method = http::Method::POST;
        let ok = authorized(x_matrix.clone(), &key).verify(&method, &uri, &body);
        assert_eq!(ok.unwrap().as_str(), "a.test");
        let tampered = br#"{"device_keys":{"@eve:b.test":[]}}"#;
        assert!(
            authorized(x_matrix.clone(), &key)
                .verify(&method, &uri, tampered)
                .is_err()
        );
        let other_path: http::Uri = "/_matrix/federation/v1/user/keys/claim".parse().unwrap();
        assert!(
            authorized(x_matrix, &key)
                .verify(&method, &other_path, &body)
                .is_err()
        );
    }

    #[test]
    fn a_body_with_a_float_still_verifies() {
        let key = SigningKey::generate("a.test".try_into().unwrap()).unwrap();
        let body = br#"{"pdus":[{"depth":1.5}],"edus":[]}"#;
        let path = "/_matrix/federation/v1/send/1";
        let origin: &ServerName = "a.test".try_into().unwrap();
        let destination: &ServerName = "b.test".try_into().unwrap();
        let signed = signed_bytes(&http::Method::PUT, path, origin, destination, body).unwrap();
        let sig = key.pair().sign(&signed);
        let x_matrix = XMatrix::new(
            origin.to_owned(),
            destination.to_owned(),
            key.key_id().clone(),
            Base64::new(sig.as_bytes().to_vec()),
        );
        let uri: http::Uri = path.parse().unwrap();
        assert!(
            authorized(x_matrix, &key)
                .verify(&http::Method::PUT, &uri, body)
                .is_ok()
        );
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let value: Value =
            serde_json::from_str(r#"{ "b": 1, "a": { "d": [1, 2.5], "c": "é" } }"#).unwrap();
        let mut out = Vec::new();
        canonical(&value, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"c":"é","d":[1,2.5]},"b":1}"#
        );
    }
}
