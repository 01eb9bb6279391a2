use hearth_store::StoreError;

/// Why an account operation failed. `hearth-api` maps each variant to a Matrix error; the
/// intended mapping is noted on each.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AccountError {
    /// `M_USER_IN_USE` (400): the user id is taken, also by a deactivated account.
    #[error("the user id is already taken")]
    UserInUse,
    /// `M_INVALID_USERNAME` (400): the localpart does not fit the user id grammar.
    #[error("invalid username: {0}")]
    InvalidUsername(String),
    /// `M_FORBIDDEN` (403): wrong password, unknown user or deactivated user, deliberately
    /// indistinguishable so that logins do not reveal which accounts exist.
    #[error("invalid username or password")]
    Forbidden,
    /// `M_UNKNOWN_TOKEN` (401): the access token is not (or no longer) valid.
    #[error("unknown access token")]
    UnknownToken,
    /// `M_UNKNOWN_TOKEN` (401) with `soft_logout: true`: the access token expired; the client
    /// should use its refresh token.
    #[error("the access token has expired")]
    TokenExpired,
    /// `M_NOT_FOUND` (404): no such user or device.
    #[error("not found")]
    NotFound,
    /// `M_UNKNOWN` (500): the cause is logged, not shown to the client.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `M_UNKNOWN` (500): the cause is logged, not shown to the client.
    #[error("internal error: {0}")]
    Internal(String),
}
