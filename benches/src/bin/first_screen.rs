//! `hearth-first-screen`: how long Element X's first room-list response takes for a user in
//! many rooms. One user creates `--rooms` rooms with a message each on an in-process Hearth
//! (SQLite, or PostgreSQL with `--postgres`), then opens `--samples` fresh sliding sync
//! connections with the request Element X's room list sends first (ranges `[0, 19]`,
//! `timeline_limit` 1, its required state and extensions) and reports the latency at the
//! client (loopback, so close to the server's time), next to an initial `/sync` v2.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hearth_benches::load::server::InProcess;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "hearth-first-screen")]
struct Args {
    /// Rooms the user is in.
    #[arg(long, default_value_t = 500)]
    rooms: usize,
    /// First requests to time (each on a new connection).
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Run on a fresh database of this PostgreSQL server instead of SQLite.
    #[arg(long)]
    postgres: Option<String>,
}

/// What Element X's room list asks for first (matrix-sdk-ui 0.18's `RoomListService`).
fn room_list_request(conn: &str) -> Value {
    json!({
        "conn_id": conn,
        "lists": {"all_rooms": {
            "ranges": [[0, 19]],
            "timeline_limit": 1,
            "required_state": [
                ["m.room.name", ""], ["m.room.encryption", ""], ["m.room.member", "$LAZY"],
                ["m.room.member", "$ME"], ["m.room.topic", ""], ["m.room.canonical_alias", ""],
                ["m.room.power_levels", ""], ["m.room.join_rules", ""], ["m.room.avatar", ""],
                ["m.room.create", ""], ["m.room.history_visibility", ""], ["m.room.pinned_events", ""],
                ["m.room.tombstone", ""], ["m.space.parent", "*"], ["m.call.member", "*"],
            ],
            "filters": {"not_room_types": ["m.space"]},
        }},
        "extensions": {
            "account_data": {"enabled": true},
            "receipts": {"enabled": true, "rooms": ["*"]},
            "typing": {"enabled": true},
        },
    })
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-first-screen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let server = InProcess::start(
        args.postgres.as_deref(),
        &format!("fs{}", std::process::id()),
    )?;
    let base = server.base.clone();
    println!("server: {}", server.description);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(measure(&base, &args))?;
    server.stop()
}

async fn measure(base: &str, args: &Args) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let registered: Value = http
        .post(format!("{base}/_matrix/client/v3/register"))
        .json(
            &json!({"username": "alice", "password": "a password for the bench",
                      "auth": {"type": "m.login.dummy"}}),
        )
        .send()
        .await?
        .json()
        .await?;
    let token = registered["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned();
    let started = Instant::now();
    for n in 0..args.rooms {
        let room: Value = http
            .post(format!("{base}/_matrix/client/v3/createRoom"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("Room {n}")}))
            .send()
            .await?
            .json()
            .await?;
        let room = room["room_id"].as_str().context("no room id")?;
        http.put(format!(
            "{base}/_matrix/client/v3/rooms/{room}/send/m.room.message/t{n}"
        ))
        .bearer_auth(&token)
        .json(&json!({"msgtype": "m.text", "body": format!("hello {n}")}))
        .send()
        .await?
        .error_for_status()?;
    }
    println!("set up {} rooms in {:.1?}", args.rooms, started.elapsed());

    let mut sliding = Vec::with_capacity(args.samples);
    for n in 0..args.samples {
        let started = Instant::now();
        let response: Value = http
            .post(format!(
                "{base}/_matrix/client/unstable/org.matrix.simplified_msc3575/sync?timeout=30000"
            ))
            .bearer_auth(&token)
            .json(&room_list_request(&format!("bench-{n}")))
            .send()
            .await?
            .json()
            .await?;
        sliding.push(started.elapsed());
        let count = response["lists"]["all_rooms"]["count"].as_u64();
        let shown = response["rooms"].as_object().map_or(0, |r| r.len());
        if count != Some(args.rooms as u64) || shown != 20.min(args.rooms) {
            bail!("unexpected response: count {count:?}, {shown} rooms");
        }
    }
    let mut v2 = Vec::new();
    for _ in 0..args.samples.min(10) {
        let started = Instant::now();
        http.get(format!("{base}/_matrix/client/v3/sync"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        v2.push(started.elapsed());
    }
    report("sliding sync, first room-list response", &mut sliding);
    report("sync v2, initial sync (for comparison)", &mut v2);
    Ok(())
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: {} samples, median {:.1?}, p95 {:.1?}, max {:.1?}",
        samples.len(),
        at(0.5),
        at(0.95),
        at(1.0)
    );
}
