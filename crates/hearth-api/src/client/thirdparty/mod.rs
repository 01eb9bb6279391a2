//! Third-party networks: what bridges (application services) offer. Hearth has no application
//! services yet, so it knows of no protocols.

pub(crate) mod get_protocols;
