//! Dehydrated devices (MSC3814, the unstable endpoints matrix-sdk calls): one per user, kept
//! so that others can encrypt to them while no real device is signed in
//! (`hearth-e2ee/src/dehydrated.rs` holds the rules).

pub(crate) mod delete_dehydrated_device;
pub(crate) mod get_dehydrated_device;
pub(crate) mod get_events;
pub(crate) mod put_dehydrated_device;
