//! Server discovery that the client listener answers because it serves the server name's
//! domain: `/.well-known/matrix/server`.

pub(crate) mod discover_homeserver;
