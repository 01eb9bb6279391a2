//! `hearth-federation-query`: what one federation round trip costs between two Hearths on
//! loopback. Servers `a.test` and `b.test` run in this process on a runtime of their own
//! (SQLite, TLS federation listeners with certificates from a throwaway CA, found through
//! `[federation] overrides`). A client of A asks for the profile of a user of B `--samples`
//! times, one after another: each is a client request to A, a signed request from A to B over
//! TLS, B's signature check, and the answers back. The first one also pays for the TLS
//! handshake and B fetching A's key; it is reported apart.
//!
//! Then message latency across servers: the user of A joins a room of B's user over
//! federation and long-polls `/sync`; B's user sends `--messages` messages one at a time, each
//! timed from the send until A's sync returns it (B's pipeline, B's sender, the transaction
//! over TLS, A's checks and pipeline, A's notifier).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use hearth_benches::federation::{Pair, register};
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "hearth-federation-query")]
struct Args {
    /// Round trips to time.
    #[arg(long, default_value_t = 2_000)]
    samples: usize,
    /// Messages to time across servers.
    #[arg(long, default_value_t = 200)]
    messages: usize,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-federation-query: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn message_latency(
    http: &reqwest::Client,
    base_a: &str,
    alice: &str,
    base_b: &str,
    bob: &str,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let room: Value = http
        .post(format!("{base_b}/_matrix/client/v3/createRoom"))
        .bearer_auth(bob)
        .json(&json!({ "preset": "public_chat" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let room = room["room_id"].as_str().context("room id")?.to_owned();
    let joined = http
        .post(format!(
            "{base_a}/_matrix/client/v3/join/{room}?server_name=b.test"
        ))
        .bearer_auth(alice)
        .json(&json!({}))
        .send()
        .await?;
    anyhow::ensure!(
        joined.status().is_success(),
        "joining over federation: {}",
        joined.text().await?
    );
    let sync = |since: Option<String>| {
        let url = match &since {
            Some(since) => format!("{base_a}/_matrix/client/v3/sync?timeout=10000&since={since}"),
            None => format!("{base_a}/_matrix/client/v3/sync?timeout=0"),
        };
        let request = http.get(url).bearer_auth(alice);
        async move {
            let answer: Value = request.send().await?.error_for_status()?.json().await?;
            Ok::<_, anyhow::Error>(answer)
        }
    };
    let mut since = sync(None).await?["next_batch"]
        .as_str()
        .context("next_batch")?
        .to_owned();
    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let body = format!("message {i}");
        let waiting = tokio::spawn(sync(Some(since.clone())));
        // Let the long-poll reach the server before the message is sent.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let started = Instant::now();
        http.put(format!(
            "{base_b}/_matrix/client/v3/rooms/{room}/send/m.room.message/bench{i}"
        ))
        .bearer_auth(bob)
        .json(&json!({ "msgtype": "m.text", "body": body }))
        .send()
        .await?
        .error_for_status()?;
        let mut answer = waiting.await??;
        loop {
            let seen = answer["rooms"]["join"][&room]["timeline"]["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e["content"]["body"] == body));
            since = answer["next_batch"]
                .as_str()
                .context("next_batch")?
                .to_owned();
            if seen {
                break;
            }
            answer = sync(Some(since.clone())).await?;
        }
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

fn run(args: Args) -> anyhow::Result<()> {
    let pair = Pair::start()?;
    let (base_a, base_b) = (pair.base_a(), pair.base_b());

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (first, mut samples, mut latencies) = client.block_on(async {
        let http = reqwest::Client::new();
        let alice = register(&http, &base_a, "alice").await?;
        let bob = register(&http, &base_b, "bob").await?;
        http.put(format!(
            "{base_b}/_matrix/client/v3/profile/@bob:b.test/displayname"
        ))
        .bearer_auth(&bob)
        .json(&json!({ "displayname": "Bob" }))
        .send()
        .await?
        .error_for_status()?;
        let url = format!("{base_a}/_matrix/client/v3/profile/@bob:b.test");
        let ask = || async {
            let started = Instant::now();
            let answer: Value = http
                .get(&url)
                .bearer_auth(&alice)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::ensure!(answer["displayname"] == "Bob", "unexpected answer {answer}");
            Ok::<_, anyhow::Error>(started.elapsed())
        };
        let first = ask().await?;
        let mut samples = Vec::with_capacity(args.samples);
        for _ in 0..args.samples {
            samples.push(ask().await?);
        }
        let latencies =
            message_latency(&http, &base_a, &alice, &base_b, &bob, args.messages).await?;
        Ok::<_, anyhow::Error>((first, samples, latencies))
    })?;
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    let total: Duration = samples.iter().sum();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "first query (TLS handshake, key fetch): {:.2} ms",
        ms(first)
    );
    println!(
        "{} remote profile queries: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, {:.0} per second one at a time",
        samples.len(),
        ms(at(0.50)),
        ms(at(0.95)),
        ms(at(0.99)),
        samples.len() as f64 / total.as_secs_f64()
    );
    latencies.sort();
    let lat = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "{} messages from B to a long-polling client of A: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        latencies.len(),
        ms(lat(0.50)),
        ms(lat(0.95)),
        ms(lat(0.99)),
    );
    pair.stop()
}
