//! `/_matrix/federation/v1/backfill`.

pub(crate) mod get_backfill;
