//! Server-server API endpoints, one per file as the client ones are. Every endpoint whose ruma
//! scheme is `X-Matrix` is authenticated by the `Ruma<T>` extractor: a stranger is refused
//! with 403 before anything else happens, and the signature is checked before the handler
//! runs. Handlers answer only about what this server owns (its users, its aliases).
//!
//! OpenID userinfo is also served on the client listener: widgets and call services call it
//! on the server's own address, without a signature.

pub(crate) mod authorization;
pub(crate) mod backfill;
pub(crate) mod device;
pub(crate) mod event;
pub(crate) mod get_openid_userinfo;
pub(crate) mod get_server_version;
pub(crate) mod keys;
pub(crate) mod membership;
pub(crate) mod query;
pub(crate) mod transactions;
