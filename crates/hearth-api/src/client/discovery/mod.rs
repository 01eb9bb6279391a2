pub(crate) mod discover_homeserver;
pub(crate) mod discover_support;
pub(crate) mod get_capabilities;
pub(crate) mod get_supported_versions;
