pub(crate) mod change_password;
pub(crate) mod check_registration_token_validity;
pub(crate) mod deactivate;
pub(crate) mod get_3pids;
pub(crate) mod get_username_availability;
pub(crate) mod register;
pub(crate) mod request_openid_token;
pub(crate) mod whoami;
