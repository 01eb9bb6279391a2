//! Inbound request authentication (`X-Matrix`), in two steps so that nothing is read or
//! fetched for a stranger: [`Federation::authorize`] reads the header alone — the origin must
//! be a partner (403 otherwise, before anything else), the destination must be us, and the
//! key it names is found (fetched from the origin if need be) — and only then is the body
//! read and the signature checked over it by [`Authorized::verify`].
//! <https://spec.matrix.org/v1.16/server-server-api/#request-authentication>

use ruma::api::federation::authentication::XMatrix;
use ruma::signatures::{PublicKeyMap, PublicKeySet};
use ruma::{OwnedServerName, ServerName};

use crate::keys::now_ms;
use crate::{Federation, FederationError};

/// A request whose header checked out, waiting for its body.
#[derive(Debug)]
pub struct Authorized {
    x_matrix: XMatrix,
    keys: PublicKeyMap,
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
        let mut request = http::Request::new(body);
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        self.x_matrix
            .verify_http_request(&request, &self.own, &self.keys)
            .map_err(|e| FederationError::BadSignature(e.to_string()))?;
        Ok(self.x_matrix.origin)
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
        let keys = PublicKeyMap::from([(
            x_matrix.origin.to_string(),
            PublicKeySet::from([(x_matrix.key.to_string(), key)]),
        )]);
        Ok(Authorized {
            x_matrix,
            keys,
            own,
        })
    }
}
