pub(crate) mod get_presence;
pub(crate) mod set_presence;
