//! Send-to-device messaging.

pub(crate) mod send_event_to_device;
