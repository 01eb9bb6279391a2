pub(crate) mod discovery;
