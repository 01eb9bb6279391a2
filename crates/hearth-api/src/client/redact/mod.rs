pub(crate) mod redact_event;
