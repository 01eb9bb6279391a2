//! Spaces: rooms of type `m.space` whose `m.space.child` state events name other rooms.

pub(crate) mod get_hierarchy;
