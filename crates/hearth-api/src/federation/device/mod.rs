//! `/_matrix/federation/v1/user/devices/*`.

pub(crate) mod get_devices;
