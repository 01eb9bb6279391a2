pub(crate) mod set_read_marker;
