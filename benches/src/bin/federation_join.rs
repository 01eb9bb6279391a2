//! `hearth-federation-join`: joining a big room over federation. `b.test` hosts a public room
//! with `--members` joined members (built straight through B's pipeline, not timed); a user
//! of `a.test` joins it through the client API, and the time is taken until A's client sees
//! every member (`joined_members`): A's make_join and send_join, B's state and auth chain, A's
//! checks of every signature and auth rule, and the room made at A.
//!
//! A runs in a process of its own (this binary again, with `--serve-a`), so that its peak
//! RSS (`VmHWM`) is A's alone; B, building the room, runs in this one.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use hearth_accounts::PasswordHashing;
use hearth_benches::federation::{certificates, config, free_port, peak_rss_mib_of, register};
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
    /// (Internal) run only server A, with this directory's certificates, until stdin closes.
    #[arg(long, hide = true)]
    serve_a: Option<PathBuf>,
    #[arg(long, hide = true, default_value_t = 0)]
    port_a: u16,
    #[arg(long, hide = true, default_value_t = 0)]
    port_b: u16,
}

/// Server A alone: prints its client address, serves until stdin closes.
fn serve_a(dir: &Path, port_a: u16, port_b: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let server = runtime.block_on(hearth::Server::start(
        config(dir, "a.test", port_a, "b.test", port_b),
        PasswordHashing::insecure_fast_for_tests(),
    ))?;
    println!("{}", server.address);
    std::io::stdout().flush()?;
    std::io::stdin().read_to_end(&mut Vec::new())?;
    runtime.block_on(server.stop())
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
    if let Some(dir) = &args.serve_a {
        return serve_a(dir, args.port_a, args.port_b);
    }
    let dir = hearth_store::testing::tempfile_free::TempDir::new("hearth-fed-join")?;
    certificates(dir.path(), &["a.test", "b.test"])?;
    let (port_a, port_b) = (free_port()?, free_port()?);
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--serve-a")
        .arg(dir.path())
        .args([
            "--port-a",
            &port_a.to_string(),
            "--port-b",
            &port_b.to_string(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let pid = child.id().to_string();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().context("child stdout")?).read_line(&mut line)?;
    let base_a = format!("http://{}", line.trim());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hearth-server")
        .build()?;
    let b = runtime.block_on(hearth::Server::start(
        config(dir.path(), "b.test", port_b, "a.test", port_a),
        PasswordHashing::insecure_fast_for_tests(),
    ))?;
    let base_b = format!("http://{}", b.address);
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
    let rooms = b.rooms.clone();
    runtime.block_on(async {
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
    let before = peak_rss_mib_of(&pid);

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
    if let (Some(before), Some(after)) = (before, peak_rss_mib_of(&pid)) {
        println!("peak RSS of A: {before:.0} MiB before the join, {after:.0} MiB after");
    }
    drop(child.stdin.take());
    child.wait()?;
    runtime.block_on(b.stop())
}
