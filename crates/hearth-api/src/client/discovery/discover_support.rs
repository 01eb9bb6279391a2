//! `GET /.well-known/matrix/support` — whom users and other admins can reach about this
//! server (`[well_known] support_page`, `admin_contacts`, `security_contacts`); 404 when none
//! is configured, as the spec says.
//! <https://spec.matrix.org/v1.12/client-server-api/#getwell-knownmatrixsupport>

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use ruma::OwnedUserId;
use ruma::api::client::discovery::discover_support::{self as endpoint, Contact, ContactRole};
use ruma::api::error::ErrorKind;

use crate::ruma_glue::{RumaResponse, route as route_endpoint};
use crate::{ApiError, ApiState};

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

/// A configured contact: a Matrix user id if it starts with `@`, else an email address (the
/// configuration checks which at start).
fn contact(role: ContactRole, value: &str) -> Contact {
    match OwnedUserId::try_from(value) {
        Ok(user) if value.starts_with('@') => Contact::with_matrix_id(role, user),
        _ => Contact::with_email_address(role, value.to_owned()),
    }
}

async fn handler(State(state): State<ApiState>) -> Result<impl IntoResponse, ApiError> {
    let support = &state.well_known_support;
    let contacts: Vec<Contact> = support
        .admins
        .iter()
        .map(|c| contact(ContactRole::Admin, c))
        .chain(
            support
                .security
                .iter()
                .map(|c| contact(ContactRole::Security, c)),
        )
        .collect();
    if contacts.is_empty() && support.page.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorKind::NotFound,
            "no support information is configured",
        ));
    }
    let mut response = endpoint::Response::with_contacts(contacts);
    response.support_page = support.page.clone();
    // Web clients read this from another origin.
    Ok((
        [(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")],
        RumaResponse(response),
    ))
}
