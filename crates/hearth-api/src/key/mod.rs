pub(crate) mod get_server_keys;
