pub(crate) mod get_supported_versions;
