pub(crate) mod get_threads;
