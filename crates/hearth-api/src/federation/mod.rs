//! Server-server API endpoints, one per file as the client ones are.
//!
//! Until the federation listener exists (federation capability), the only one is OpenID
//! userinfo, which third parties such as widgets and call services call on the server's own
//! address and which needs no request signing; it is served on the client listener, as the
//! server key endpoint is.

pub(crate) mod get_openid_userinfo;
