//! The client-server API's admin module (`/admin/whois`).

pub(crate) mod get_user_info;
