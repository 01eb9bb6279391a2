//! Sync filters: uploaded once, then named by id in `/sync?filter=`.

pub(crate) mod create_filter;
pub(crate) mod get_filter;
