pub(crate) mod get_context;
