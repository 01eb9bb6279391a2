pub(crate) mod get_username_availability;
pub(crate) mod register;
pub(crate) mod whoami;
