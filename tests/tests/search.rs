//! Server-side search over HTTP: words as prefixes, only rooms the searcher is in, newest or
//! best first, pages, context, redacted messages gone, hostile terms harmless. On SQLite and
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::Api;
use hearth_tests::{Backend, TestServer, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn search(api: &Api<'_>, criteria: Value, next_batch: Option<&str>) -> Value {
    let path = match next_batch {
        Some(token) => format!("/_matrix/client/v3/search?next_batch={token}"),
        None => "/_matrix/client/v3/search".to_owned(),
    };
    let body = api
        .ok(
            Method::POST,
            &path,
            Some(json!({"search_categories": {"room_events": criteria}})),
        )
        .await;
    body["search_categories"]["room_events"].clone()
}

fn bodies(found: &Value) -> Vec<String> {
    found["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {found}"))
        .iter()
        .map(|r| {
            let content = &r["result"]["content"];
            content["body"]
                .as_str()
                .or_else(|| content["name"].as_str())
                .unwrap_or("<redacted>")
                .to_owned()
        })
        .collect()
}

async fn search_messages(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let shared = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{shared}/join"),
        Some(json!({})),
    )
    .await;
    let private = alice.create_room("private_chat").await;
    alice
        .ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{shared}/state/m.room.name/"),
            Some(json!({"name": "Quarterly planning"})),
        )
        .await;
    alice.send_text(&shared, "good morning").await;
    let report = alice
        .send_text(&shared, "The quarterly report is ready")
        .await;
    alice.send_text(&shared, "lunch at noon?").await;
    alice
        .send_text(&private, "Quarterly numbers, for my eyes only")
        .await;

    // Prefixes of words, case-insensitive; only rooms the searcher is in.
    let found = search(
        &bob,
        json!({"search_term": "QUARTER", "keys": ["content.body"]}),
        None,
    )
    .await;
    assert_eq!(bodies(&found), ["The quarterly report is ready"], "{found}");
    let first = &found["results"][0];
    assert!(first["rank"].as_f64().is_some());
    assert_eq!(first["result"]["event_id"], report.as_str());
    let context = &first["context"];
    assert_eq!(
        context["events_before"][0]["content"]["body"],
        "good morning"
    );
    assert_eq!(
        context["events_after"][0]["content"]["body"],
        "lunch at noon?"
    );
    assert!(context["start"].is_string() && context["end"].is_string());
    assert!(
        found["highlights"]
            .as_array()
            .unwrap()
            .contains(&json!("QUARTER"))
    );

    // Alice finds both messages, newest first, and the room name too.
    let recent = search(
        &alice,
        json!({"search_term": "quarterly", "order_by": "recent", "keys": ["content.body"]}),
        None,
    )
    .await;
    assert_eq!(
        bodies(&recent),
        [
            "Quarterly numbers, for my eyes only",
            "The quarterly report is ready"
        ]
    );
    let named = search(&alice, json!({"search_term": "planning"}), None).await;
    assert_eq!(bodies(&named), ["Quarterly planning"]);
    // The filter's types apply; short words match whole words only.
    let messages_only = search(
        &alice,
        json!({"search_term": "quarterly", "filter": {"types": ["m.room.message"]}}),
        None,
    )
    .await;
    assert_eq!(bodies(&messages_only).len(), 2, "{messages_only}");
    let short = search(&alice, json!({"search_term": "qu"}), None).await;
    assert_eq!(bodies(&short), Vec::<String>::new());
    let whole = search(&alice, json!({"search_term": "is ready"}), None).await;
    assert_eq!(bodies(&whole), ["The quarterly report is ready"]);
    let only_shared = search(
        &alice,
        json!({"search_term": "quarterly", "keys": ["content.body"],
               "filter": {"rooms": [shared]}}),
        None,
    )
    .await;
    assert_eq!(bodies(&only_shared), ["The quarterly report is ready"]);

    // Pages of one.
    let criteria = json!({"search_term": "quarterly", "order_by": "recent",
                          "keys": ["content.body"], "filter": {"limit": 1}});
    let page1 = search(&alice, criteria.clone(), None).await;
    assert_eq!(bodies(&page1), ["Quarterly numbers, for my eyes only"]);
    let token = page1["next_batch"].as_str().unwrap().to_owned();
    let page2 = search(&alice, criteria.clone(), Some(&token)).await;
    assert_eq!(bodies(&page2), ["The quarterly report is ready"]);
    if let Some(token) = page2["next_batch"].as_str() {
        let page3 = search(&alice, criteria, Some(token)).await;
        assert_eq!(bodies(&page3), Vec::<String>::new());
        assert!(page3.get("next_batch").is_none());
    }

    // A redacted message is no longer found.
    alice
        .ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{shared}/redact/{report}/r1"),
            Some(json!({})),
        )
        .await;
    let after = search(&bob, json!({"search_term": "quarterly report"}), None).await;
    assert_eq!(bodies(&after), Vec::<String>::new(), "{after}");

    // Hostile or empty terms are just words (or none).
    for term in [
        "\" OR 1=1; DROP TABLE events; --",
        "*",
        "",
        "NEAR(a b) AND NOT c:*",
    ] {
        let (status, body) = bob
            .post(
                "/_matrix/client/v3/search",
                json!({"search_categories": {"room_events": {"search_term": term}}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{term}: {body}");
    }
    let (status, _) = bob
        .post(
            "/_matrix/client/v3/search?next_batch=garbage",
            json!({"search_categories": {"room_events": {"search_term": "x"}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The database is intact: the earlier search still answers.
    let again = search(&alice, json!({"search_term": "lunch"}), None).await;
    assert_eq!(bodies(&again), ["lunch at noon?"]);
}
on_both_backends!(search_messages);
