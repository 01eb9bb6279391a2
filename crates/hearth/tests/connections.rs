//! The listener under abuse, against the real binary: a crowd of idle and slow connections
//! with the usual 1,024 open-file limit must not lock a real client out, and oversized or broken
//! bodies are answered before they are read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{hearth, serve};

fn start(dir: &std::path::Path) -> common::Server {
    let mut command = hearth();
    // `ulimit -n` in a shell, then exec: the server starts with 1,024 descriptors.
    command
        .env("HEARTH_SERVER__LISTEN", "127.0.0.1:0")
        .env("HEARTH_SERVER__DATA_DIR", dir.join("data"))
        .env("HEARTH_LOGGING__LEVEL", "info");
    let program = command.get_program().to_owned();
    let mut shell = std::process::Command::new("sh");
    shell
        .arg("-c")
        .arg("ulimit -n 1024 && exec \"$0\" serve")
        .arg(program);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => shell.env(key, value),
            None => shell.env_remove(key),
        };
    }
    serve(shell)
}

fn address(server: &common::Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Send raw bytes and read what comes back until the server closes or goes quiet.
fn exchange(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buffer) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_crowds_do_not_lock_clients_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let address = address(&server);
    let crowd = tokio::task::spawn_blocking({
        let address = address.clone();
        move || {
            let mut crowd = Vec::new();
            for i in 0..1_100 {
                let mut stream = TcpStream::connect(&address).unwrap();
                if i % 10 == 0 {
                    // Slow headers: a request that never finishes.
                    let _ =
                        stream.write_all(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\n");
                }
                crowd.push(stream);
            }
            crowd
        }
    })
    .await
    .unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for _ in 0..5 {
        let response = client
            .get(format!("{}/_matrix/client/versions", server.base))
            .send()
            .await
            .expect("a real client is served while 1,100 connections idle");
        assert_eq!(response.status(), 200);
    }
    drop(crowd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_judged_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let address = address(&server);
    tokio::task::spawn_blocking(move || {
        // Over the limit with Expect: 100-continue: 413 at once, never "100 Continue".
        let answer = exchange(
            &address,
            b"POST /_matrix/client/v3/register HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 5000000\r\n\
              Expect: 100-continue\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("M_TOO_LARGE"), "{answer}");

        // A broken chunked body is the client's mistake: 400, not 413.
        let answer = exchange(
            &address,
            b"POST /_matrix/client/v3/register HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
              zz\r\n{}\r\n0\r\n\r\n",
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

        // And an oversized chunked one (no length declared) is 413 once it passes the limit.
        let mut request = b"POST /_matrix/client/v3/register HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
        let chunk = vec![b' '; 65_536];
        for _ in 0..20 {
            request.extend_from_slice(b"10000\r\n");
            request.extend_from_slice(&chunk);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        let answer = exchange(&address, &request);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    })
    .await
    .unwrap();
}
