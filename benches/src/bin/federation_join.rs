//! `hearth-federation-join`: joining a big room over federation. `b.test` hosts a public room
//! with `--members` joined members (built straight through B's pipeline, not timed); a user
//! of `a.test` joins it through the client API, and the time is taken until A's client sees
//! every member (`joined_members`): A's make_join and send_join, B's state and auth chain, A's
//! checks of every signature and auth rule, and the room made at A.
//!
//! Both servers live in this process, so the peak RSS reported (`VmHWM`) is an upper bound
//! for A's (it includes B and building the room).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use hearth_benches::federation::{Pair, peak_rss_mib, register};
use hearth_rooms::{Append, EventDraft};
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "hearth-federation-join")]
struct Args {
    /// Members of the room to join.
    #[arg(long, default_value_t = 5_000)]
    members: usize,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-federation-join: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let pair = Pair::start()?;
    let (base_a, base_b) = (pair.base_a(), pair.base_b());
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::new();
    let (bob, alice) = client.block_on(async {
        Ok::<_, anyhow::Error>((
            register(&http, &base_b, "bob").await?,
            register(&http, &base_a, "alice").await?,
        ))
    })?;
    let room: Value = client.block_on(async {
        Ok::<_, anyhow::Error>(
            http.post(format!("{base_b}/_matrix/client/v3/createRoom"))
                .bearer_auth(&bob)
                .json(&json!({ "preset": "public_chat" }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?,
        )
    })?;
    let room = room["room_id"].as_str().context("room id")?.to_owned();
    let room_id: ruma::OwnedRoomId = room.as_str().try_into()?;

    // The members, through B's pipeline, many at a time (the actor batches them).
    let built = Instant::now();
    let rooms = pair.b.rooms.clone();
    pair.runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..args.members {
            let (rooms, room_id) = (rooms.clone(), room_id.clone());
            tasks.spawn(async move {
                let user: ruma::OwnedUserId = format!("@member{i}:b.test").try_into()?;
                let join = EventDraft::state(
                    "m.room.member",
                    user.as_str(),
                    json!({ "membership": "join", "displayname": format!("Member {i}") }),
                );
                rooms
                    .append(
                        &room_id,
                        Append {
                            sender: user,
                            draft: join,
                            txn: None,
                        },
                    )
                    .await?;
                Ok::<_, anyhow::Error>(())
            });
            while tasks.len() >= 512 {
                if let Some(done) = tasks.join_next().await {
                    done??;
                }
            }
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    println!(
        "room with {} members built at B in {:.1} s",
        args.members,
        built.elapsed().as_secs_f64()
    );
    let before = peak_rss_mib();

    let started = Instant::now();
    let seen = client.block_on(async {
        let joined = http
            .post(format!(
                "{base_a}/_matrix/client/v3/join/{room}?server_name=b.test"
            ))
            .bearer_auth(&alice)
            .json(&json!({}))
            .send()
            .await?;
        anyhow::ensure!(
            joined.status().is_success(),
            "join: {}",
            joined.text().await?
        );
        let members: Value = http
            .get(format!(
                "{base_a}/_matrix/client/v3/rooms/{room}/joined_members"
            ))
            .bearer_auth(&alice)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(members["joined"].as_object().map_or(0, |m| m.len()))
    })?;
    let elapsed = started.elapsed();
    anyhow::ensure!(
        seen == args.members + 2,
        "A's client sees {seen} members, not {}",
        args.members + 2
    );
    println!(
        "joined over federation, all {seen} members visible at A: {:.2} s",
        elapsed.as_secs_f64()
    );
    if let (Some(before), Some(after)) = (before, peak_rss_mib()) {
        println!(
            "peak RSS of the process (both servers): {before:.0} MiB before the join, {after:.0} MiB after"
        );
    }
    pair.stop()
}
