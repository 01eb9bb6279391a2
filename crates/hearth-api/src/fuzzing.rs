//! Entry points for the fuzz targets (`tests/fuzz`): the request handling that reads untrusted
//! bytes, callable without a running server. Each must return, whatever the input — a panic
//! is a bug the fuzzer found.

use ruma::api::IncomingRequest;
use ruma::api::client::filter::FilterDefinition;

/// A client request body, as the extractor takes it: the edge checks, then ruma's parsers for a
/// handful of endpoints with rich bodies.
pub fn client_body(data: &[u8]) {
    if crate::json_limits::check(data).is_err() {
        return;
    }
    use ruma::api::client as c;
    parse::<c::room::create_room::v3::Request>("POST", "/_matrix/client/v3/createRoom", data, &[]);
    parse::<c::message::send_message_event::v3::Request>(
        "PUT",
        "/_matrix/client/v3/rooms/!r:h/send/m.room.message/t",
        data,
        &["!r:h", "m.room.message", "t"],
    );
    parse::<c::account::register::v3::Request>("POST", "/_matrix/client/v3/register", data, &[]);
    parse::<c::session::login::v3::Request>("POST", "/_matrix/client/v3/login", data, &[]);
    parse::<c::filter::create_filter::v3::Request>(
        "POST",
        "/_matrix/client/v3/user/@u:h/filter",
        data,
        &["@u:h"],
    );
    parse::<c::push::set_pushrule::v3::Request>(
        "PUT",
        "/_matrix/client/v3/pushrules/global/override/r",
        data,
        &["override", "r"],
    );
    parse::<c::state::send_state_event::v3::Request>(
        "PUT",
        "/_matrix/client/v3/rooms/!r:h/state/m.room.power_levels/",
        data,
        &["!r:h", "m.room.power_levels", ""],
    );
    // Content that passed the edge is an object or refused by the handlers; either way the
    // pipeline's canonical-JSON conversion must cope with it.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = ruma::CanonicalJsonValue::try_from(value);
    }
}

fn parse<T: IncomingRequest>(method: &str, path: &str, body: &[u8], args: &[&str]) {
    let Ok(request) = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body)
    else {
        return;
    };
    let _ = crate::extract::parse_request::<T>(request, args);
}

/// A filter as `/sync` and `POST /filter` take it: parsed, translated for sync, and its type
/// patterns matched (the globs must stay linear).
pub fn filter(data: &[u8]) {
    let Ok(definition) = serde_json::from_slice::<FilterDefinition>(data) else {
        return;
    };
    let _ = hearth_sync::SyncFilter::from_definition(&definition);
    let room = &definition.room;
    let patterns = [
        &room.timeline,
        &room.state,
        &room.ephemeral,
        &room.account_data,
    ]
    .into_iter()
    .flat_map(|f| f.types.iter().flatten().chain(f.not_types.iter()));
    for pattern in patterns {
        for kind in ["m.room.message", "m.room.member", "", "m.*"] {
            let _ = hearth_sync::type_matches(pattern, kind);
        }
    }
}
