//! `/_matrix/federation/v1/send`: transactions of PDUs and EDUs.

pub(crate) mod send_transaction_message;
