//! The database connection dies under the writer (PostgreSQL's `pg_terminate_backend`, as a
//! crashed backend or a failover would do it) while users send: every send answered 200 is
//! stored, every refusal is a clear, retryable error, and writes resume on fresh connections
//! without a restart. (The full-disk case, on SQLite, is `crates/hearth/tests/full_disk.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use hearth_config::DatabaseBackend;
use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, join_all};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn on(url: &str) -> TestServer {
    let url = url.to_owned();
    TestServer::start_with(Backend::Sqlite, move |config| {
        config.database.backend = DatabaseBackend::Postgres;
        config.database.url = Some(url);
    })
    .await
}

/// Each user sends `count` messages, one at a time; returns body -> event id for each 200 and
/// (status, errcode) for each refusal.
async fn sends(
    users: &[Api<'_>],
    room: &str,
    round: &str,
    count: usize,
) -> (BTreeMap<String, String>, Vec<(StatusCode, String)>) {
    let run = |u: usize| async move {
        let user = &users[u];
        let mut acked = BTreeMap::new();
        let mut refused = Vec::new();
        for i in 0..count {
            let body = format!("{round}-{u}-{i}");
            let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{body}");
            let (status, answer) = user
                .put(&path, json!({"msgtype": "m.text", "body": body}))
                .await;
            if status == 200 {
                acked.insert(body, answer["event_id"].as_str().unwrap().to_owned());
            } else {
                refused.push((status, errcode(&answer).to_owned()));
            }
        }
        (acked, refused)
    };
    let mut acked = BTreeMap::new();
    let mut refused = Vec::new();
    for (a, r) in join_all((0..users.len()).map(run)).await {
        acked.extend(a);
        refused.extend(r);
    }
    (acked, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_killed_mid_write_lose_nothing() {
    let url = hearth_store::testing::postgres_url().await;
    let mut server = on(&url).await;
    let users = [
        Api::user(&server, "ann").await,
        Api::user(&server, "bob").await,
        Api::user(&server, "cat").await,
        Api::user(&server, "dan").await,
    ];
    let room = users[0].create_room("public_chat").await;
    for user in &users[1..] {
        let (status, body) = user
            .post(&format!("/_matrix/client/v3/join/{room}"), json!({}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    let killer_url = url.clone();
    let killer = tokio::spawn(async move {
        let mut killed = 0;
        for _ in 0..30 {
            killed += hearth_store::testing::terminate_other_sessions(&killer_url)
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        killed
    });
    let (mut acked, refused) = sends(&users, &room, "killed", 60).await;
    let killed = killer.await.unwrap();
    eprintln!(
        "{killed} sessions terminated: {} sends acknowledged, {} refused",
        acked.len(),
        refused.len()
    );
    assert!(killed > 0, "no session was terminated");
    for (status, code) in &refused {
        assert_eq!(
            (*status, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "M_UNKNOWN"),
            "a lost database connection is a clear, retryable error"
        );
    }

    // Fresh connections, no restart: every write goes through again.
    let (after, refused_after) = sends(&users, &room, "after", 5).await;
    assert!(refused_after.is_empty(), "{refused_after:?}");
    acked.extend(after);
    let (status, _) = users[1]
        .call(Method::GET, "/_matrix/client/v3/sync", None)
        .await;
    assert_eq!(status, 200);

    let token = users[1].token.clone();
    drop(users);
    server.server.take().unwrap().stop().await.unwrap();
    let server = on(&url).await;
    let reader = Api::new(&server, token.as_deref());
    let mut stored = BTreeMap::new();
    let mut from = String::new();
    loop {
        let (status, page) = reader
            .get(&format!(
                "/_matrix/client/v3/rooms/{room}/messages?dir=b&limit=100{from}"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        let chunk = page["chunk"].as_array().unwrap();
        for event in chunk {
            if event["type"] == "m.room.message" {
                stored.insert(
                    event["content"]["body"].as_str().unwrap().to_owned(),
                    event["event_id"].as_str().unwrap().to_owned(),
                );
            }
        }
        match page["end"].as_str() {
            Some(end) if !chunk.is_empty() => from = format!("&from={end}"),
            _ => break,
        }
    }
    for (body, id) in &acked {
        assert_eq!(stored.get(body), Some(id), "acknowledged {body} was lost");
    }
    // A COMMIT whose answer the dying connection never delivered may have committed: the
    // sender was told it failed (and a retry with its transaction id finds it). Anything
    // else stored without an acknowledgement would be a swallowed write.
    let unacknowledged = stored.keys().filter(|b| !acked.contains_key(*b)).count();
    assert!(
        unacknowledged <= refused.len(),
        "{unacknowledged} stored messages were never acknowledged"
    );
}
