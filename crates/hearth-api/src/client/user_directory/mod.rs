pub(crate) mod search_users;
