//! One Hearth process per database: a second server on the same data refuses to start with a
//! clear message (and the first keeps serving); once the first stops, the data is free again.
//! On SQLite (a lock file beside the database) and PostgreSQL (a session advisory lock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sqlx::Connection;

use hearth_accounts::PasswordHashing;
use hearth_tests::{Backend, TestServer, on_both_backends};

async fn a_second_server_refuses_the_same_database(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let alice = server.register("alice").await.unwrap();

    let second = hearth::Server::start(
        server.config.clone(),
        PasswordHashing::insecure_fast_for_tests(),
    )
    .await;
    let Err(error) = second else {
        panic!("a second server must not start");
    };
    let error = format!("{error:#}");
    assert!(error.contains("another Hearth process"), "{error}");

    // The first is untouched by the attempt.
    let whoami = reqwest::Client::new()
        .get(server.url("/_matrix/client/v3/account/whoami"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(whoami.status(), 200);

    // Stopped, it frees the data for the next one.
    let config = server.config.clone();
    server.server.take().unwrap().stop().await.unwrap();
    let mut attempts = 0;
    let next = loop {
        match hearth::Server::start(config.clone(), PasswordHashing::insecure_fast_for_tests())
            .await
        {
            Ok(next) => break next,
            // PostgreSQL lets a session lock go once it has processed the closed connection.
            Err(e) if attempts < 50 && format!("{e:#}").contains("another Hearth process") => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("restart failed: {e:#}"),
        }
    };
    next.stop().await.unwrap();
}
on_both_backends!(a_second_server_refuses_the_same_database);

fn postgres_config(url: &str) -> hearth_config::Config {
    let mut config = hearth_config::Config::default();
    config.database.backend = hearth_config::DatabaseBackend::Postgres;
    config.database.url = Some(url.to_owned());
    config
}

/// PostgreSQL's lock lives on a connection, which can die under it (a terminated backend, a
/// restart). The keeper takes the lock back on a new connection; if another process was
/// quicker, the lock reports itself lost (and `hearth serve` stops).
#[tokio::test]
async fn a_lost_postgres_lock_is_retaken_or_reported() {
    use hearth_store::{ProcessLock, testing};
    let url = testing::postgres_url().await;
    let config = postgres_config(&url);

    // Retaken: nobody else wanted it. (Watched through pg_locks, without competing for it.)
    let first = ProcessLock::acquire(&config).await.unwrap();
    assert!(testing::terminate_other_sessions(&url).await.unwrap() > 0);
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    let held = || {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        held().fetch_one(&mut watcher).await.unwrap(),
        0,
        "the lock went with its session"
    );
    let mut waited = 0;
    while held().fetch_one(&mut watcher).await.unwrap() == 0 {
        assert!(waited < 300, "the keeper never took the lock back");
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watcher.close().await.unwrap();
    let error = ProcessLock::acquire(&config).await.unwrap_err();
    assert!(
        error.to_string().contains("another Hearth process"),
        "{error}"
    );

    // Lost: another process took it before the keeper looked.
    assert!(testing::terminate_other_sessions(&url).await.unwrap() > 0);
    let usurper = ProcessLock::acquire(&config).await.unwrap();
    tokio::time::timeout(Duration::from_secs(15), first.lost())
        .await
        .expect("the keeper reports the lock lost");
    usurper.release().await;
    first.release().await;
}
