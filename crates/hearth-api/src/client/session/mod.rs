pub(crate) mod get_login_types;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod logout_all;
pub(crate) mod refresh_token;
