//! Knocking: asking to be let into a room whose join rule is `knock` (or `knock_restricted`).

pub(crate) mod knock_room;
