//! User-interactive authentication (UIA): the 401 challenge listing the flows a client can
//! follow, and the stages that complete them.
//!
//! A request names its operation, the user it acts for and the flows that authorise it
//! ([`UiaRequest`]). [`UiaSessions::authorize`] answers 401 with the flows (plus `completed`, and
//! `errcode`/`error` when a stage failed) until a flow is complete, and then hands the handler an
//! [`Authorized`]: calling [`Authorized::finish`] after the operation succeeded spends the
//! session; dropping it instead (the operation failed) keeps it, so the client may retry with the
//! same session, as the spec allows.
//!
//! Stages: `m.login.password` (`m.id.user` identifier, must be the request's user),
//! `m.login.dummy`, and `m.login.registration_token` (reserves one use of the token until the
//! registration completes or the session expires).

mod sessions;

use axum::http::StatusCode;
use rand::RngExt;
use ruma::api::client::uiaa::{AuthData, UserIdentifier};
use ruma::api::error::ErrorKind;
use ruma::{OwnedUserId, UserId};
use serde_json::json;

use crate::rate_limit::RateKey;
use crate::{ApiError, ApiState};

pub use sessions::UiaSessions;
use sessions::{Session, Taken};

/// A stage Hearth can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Password,
    Dummy,
    RegistrationToken,
}

impl Stage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Password => "m.login.password",
            Self::Dummy => "m.login.dummy",
            Self::RegistrationToken => "m.login.registration_token",
        }
    }
}

/// What a request needs UIA for.
#[derive(Debug, Clone)]
pub(crate) struct UiaRequest {
    /// The operation, e.g. `DELETE /devices/ABC`: a session started for one operation cannot
    /// authorise another.
    operation: String,
    /// Whom the operation acts for; `None` for registration.
    user: Option<OwnedUserId>,
    /// Each flow is a sequence of stages; completing any one flow authorises the request.
    flows: Vec<Vec<Stage>>,
    /// What a session this request starts remembers of it (see [`Authorized::first_request`]).
    remember: Option<serde_json::Value>,
}

impl UiaRequest {
    /// The user must confirm their password (sensitive account operations).
    pub(crate) fn password(operation: impl Into<String>, user: &UserId) -> Self {
        Self {
            operation: operation.into(),
            user: Some(user.to_owned()),
            flows: vec![vec![Stage::Password]],
            remember: None,
        }
    }

    /// Registration: a registration token when the server requires one, else nothing to prove
    /// (`m.login.dummy`).
    pub(crate) fn registration(token_required: bool) -> Self {
        let stage = if token_required {
            Stage::RegistrationToken
        } else {
            Stage::Dummy
        };
        Self {
            operation: "POST /register".to_owned(),
            user: None,
            flows: vec![vec![stage]],
            remember: None,
        }
    }

    /// Keep these parameters with a session this request starts.
    pub(crate) fn remembering(mut self, parameters: serde_json::Value) -> Self {
        self.remember = Some(parameters);
        self
    }

    /// Whether `stage` may come next after `completed` in some flow.
    fn offers_next(&self, completed: &[Stage], stage: Stage) -> bool {
        self.flows
            .iter()
            .any(|flow| flow.starts_with(completed) && flow.get(completed.len()) == Some(&stage))
    }

    fn satisfied_by(&self, completed: &[Stage]) -> bool {
        self.flows.iter().any(|flow| flow.as_slice() == completed)
    }

    /// The 401 answer: flows, params, the session id, and (once a session has been used) the
    /// stages completed and, if a stage failed, why.
    fn challenge(
        &self,
        session: &str,
        completed: Option<&[Stage]>,
        failure: Option<(ErrorKind, &str)>,
    ) -> ApiError {
        let flows: Vec<_> = self
            .flows
            .iter()
            .map(|flow| json!({ "stages": flow.iter().map(|s| s.as_str()).collect::<Vec<_>>() }))
            .collect();
        let mut body = json!({ "flows": flows, "params": {}, "session": session });
        if let Some(completed) = completed {
            body["completed"] = completed.iter().map(|s| s.as_str()).collect();
        }
        if let Some((kind, error)) = failure {
            body["errcode"] = kind.errcode().to_string().into();
            body["error"] = error.into();
        }
        ApiError::uia(body)
    }
}

/// A request UIA let through. [`Authorized::finish`] once the operation succeeded; dropping it
/// keeps the session for a retry.
pub(crate) struct Authorized {
    taken: Taken,
}

impl Authorized {
    /// The registration token whose use the session reserved, if any.
    pub(crate) fn registration_token(&self) -> Option<&str> {
        self.taken.session().reserved_token.as_deref()
    }

    /// The parameters of the request that started the session, if it asked to remember them.
    pub(crate) fn first_request(&self) -> Option<&serde_json::Value> {
        self.taken.session().first_request.as_ref()
    }

    /// The operation succeeded: the session is spent (a reserved token use must have been
    /// spent by the caller).
    pub(crate) fn finish(self) {
        drop(self.taken.consume());
    }
}

fn unknown_session() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorKind::Unknown,
        "unknown or expired user-interactive authentication session; start again without one",
    )
}

impl UiaSessions {
    /// Run the request's user-interactive authentication with the `auth` the client sent.
    pub(crate) async fn authorize(
        &self,
        state: &ApiState,
        request: &UiaRequest,
        auth: Option<&AuthData>,
    ) -> Result<Authorized, ApiError> {
        self.release(state, self.sweep()).await;
        let new_session = || {
            let mut session = Session::new(request.operation.clone(), request.user.clone());
            session.first_request.clone_from(&request.remember);
            session
        };
        let Some(auth) = auth else {
            let id = random_string(24);
            let evicted = self.insert(id.clone(), new_session());
            self.release(state, evicted).await;
            return Err(request.challenge(&id, None, None));
        };
        let mut taken = match auth.session() {
            Some(id) => self.take(id).ok_or_else(unknown_session)?,
            // A client may try a stage straight away, without asking for the flows first.
            None => self.start_taken(random_string(24), new_session()),
        };
        {
            let session = taken.session();
            if session.operation != request.operation || session.user != request.user {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorKind::Forbidden,
                    "this authentication session was started for a different request",
                ));
            }
        }

        let stage = match auth {
            // "I completed the fallback stage": nothing to check here, just report progress.
            AuthData::FallbackAcknowledgement(_) => None,
            AuthData::Password(_) => Some(Stage::Password),
            AuthData::Dummy(_) => Some(Stage::Dummy),
            AuthData::RegistrationToken(_) => Some(Stage::RegistrationToken),
            other => {
                let kind = other.auth_type().map(|t| t.to_string()).unwrap_or_default();
                let error = format!("`{kind}` is not a stage this server offers");
                let completed = taken.session().completed.clone();
                return Err(request.challenge(
                    &taken.id,
                    Some(&completed),
                    Some((ErrorKind::Unrecognized, &error)),
                ));
            }
        };
        if let Some(stage) = stage {
            let completed = taken.session().completed.clone();
            // A stage already passed is not checked again (the spec forbids retrying one).
            if !completed.contains(&stage) {
                if !request.offers_next(&completed, stage) {
                    let error = format!("`{}` is not expected here", stage.as_str());
                    return Err(request.challenge(
                        &taken.id,
                        Some(&completed),
                        Some((ErrorKind::Unrecognized, &error)),
                    ));
                }
                if let Err(why) = check_stage(state, request, auth, &mut taken).await? {
                    return Err(request.challenge(
                        &taken.id,
                        Some(&completed),
                        Some((ErrorKind::Forbidden, why)),
                    ));
                }
                taken.session_mut().completed.push(stage);
            }
        }

        let completed = taken.session().completed.clone();
        if request.satisfied_by(&completed) {
            Ok(Authorized { taken })
        } else {
            Err(request.challenge(&taken.id, Some(&completed), None))
        }
    }

    /// Give back the token uses reserved by sessions that are gone.
    async fn release(&self, state: &ApiState, gone: Vec<Session>) {
        for token in gone.into_iter().filter_map(|s| s.reserved_token) {
            if let Err(e) = state.accounts.release_registration_token(&token).await {
                tracing::warn!(error = %e, "could not release a registration token use");
            }
        }
    }

    /// Forget expired sessions now (and give back their reserved token uses), for answers that
    /// depend on how many uses are reserved.
    pub(crate) async fn expire(&self, state: &ApiState) {
        self.release(state, self.sweep()).await;
    }
}

/// Check one stage. `Ok(Err(why))` is a failed stage (401 with `M_FORBIDDEN`); `Err` is an error
/// that ends the request (e.g. rate limited, database down).
async fn check_stage(
    state: &ApiState,
    request: &UiaRequest,
    auth: &AuthData,
    taken: &mut Taken,
) -> Result<Result<(), &'static str>, ApiError> {
    match auth {
        AuthData::Password(password) => {
            let Some(user) = &request.user else {
                return Ok(Err("there is no account to confirm a password for"));
            };
            // Each wrong guess counts against the account's failed-login limit, so that a
            // stolen access token cannot be used to guess the password.
            let account = RateKey::user(user);
            state.rate_limits.login_account.check_available(&account)?;
            let UserIdentifier::Matrix(identifier) = &password.identifier else {
                return Ok(Err("only the m.id.user identifier is supported"));
            };
            if identified_user(state, &identifier.user).as_ref() != Some(user) {
                return Ok(Err(
                    "the password must be that of the user making the request",
                ));
            }
            if state
                .accounts
                .check_password(user, &password.password)
                .await?
            {
                Ok(Ok(()))
            } else {
                state.rate_limits.login_account.charge(account);
                Ok(Err("invalid password"))
            }
        }
        AuthData::Dummy(_) => Ok(Ok(())),
        AuthData::RegistrationToken(token) => {
            if taken.session().reserved_token.is_some() {
                return Ok(Ok(()));
            }
            if state
                .accounts
                .reserve_registration_token(&token.token)
                .await?
            {
                taken.session_mut().reserved_token = Some(token.token.clone());
                Ok(Ok(()))
            } else {
                Ok(Err("invalid, expired or used-up registration token"))
            }
        }
        _ => Ok(Err("unsupported stage")),
    }
}

/// `@alice:server` or `alice` (case-insensitively, as login takes it).
fn identified_user(state: &ApiState, user: &str) -> Option<OwnedUserId> {
    if user.starts_with('@') {
        UserId::parse(user).ok()
    } else {
        UserId::parse_with_server_name(user.to_lowercase(), &state.server_name).ok()
    }
}

fn random_string(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A localpart for registrations that don't ask for one.
pub(crate) fn random_localpart() -> String {
    format!("u{}", random_string(12).to_lowercase())
}

impl ApiError {
    /// A UIA challenge: status 401 with the flows body instead of an errcode body.
    pub(crate) fn uia(body: serde_json::Value) -> Self {
        // The kind is never sent: the body below replaces the errcode body.
        let mut error = Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden,
            String::new(),
        );
        error.body = Some(body);
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_followed_in_order() {
        let request = UiaRequest {
            operation: "x".into(),
            user: None,
            flows: vec![
                vec![Stage::RegistrationToken, Stage::Dummy],
                vec![Stage::Password],
            ],
            remember: None,
        };
        assert!(request.offers_next(&[], Stage::RegistrationToken));
        assert!(request.offers_next(&[], Stage::Password));
        assert!(!request.offers_next(&[], Stage::Dummy));
        assert!(request.offers_next(&[Stage::RegistrationToken], Stage::Dummy));
        assert!(!request.satisfied_by(&[Stage::RegistrationToken]));
        assert!(request.satisfied_by(&[Stage::RegistrationToken, Stage::Dummy]));
        assert!(request.satisfied_by(&[Stage::Password]));
        assert!(!request.satisfied_by(&[]));
    }

    #[test]
    fn challenge_body() {
        let request = UiaRequest::password("DELETE /devices/A", ruma::user_id!("@a:x.test"));
        let error = request.challenge("sid", None, None);
        assert_eq!(error.status, StatusCode::UNAUTHORIZED);
        let body = error.body.unwrap_or_default();
        assert_eq!(
            body,
            json!({"flows": [{"stages": ["m.login.password"]}], "params": {}, "session": "sid"})
        );
        let error = request.challenge(
            "sid",
            Some(&[]),
            Some((ErrorKind::Forbidden, "invalid password")),
        );
        let body = error.body.unwrap_or_default();
        assert_eq!(body["completed"], json!([]));
        assert_eq!(body["errcode"], "M_FORBIDDEN");
        assert_eq!(body["error"], "invalid password");
        assert_eq!(body["session"], "sid");
    }
}
