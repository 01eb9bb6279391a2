//! `hearth-load`: N users in one room send M messages each; measures send throughput, send
//! latency, and send -> other clients' /sync delivery latency. Points at any homeserver with
//! `--url`, or starts an in-process Hearth (SQLite, or PostgreSQL with `--postgres`).

use std::hash::BuildHasher;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hearth_benches::load::server::InProcess;
use hearth_benches::load::stats::Summary;
use hearth_benches::load::{Options, Report, SYNC_TIMEOUT_MS, SyncApi, run};
use tracing_subscriber::EnvFilter;

/// The allocator the `hearth` binary uses, so the in-process server is measured as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load-test a Matrix homeserver: N users in one room send M messages each; reports send
/// throughput, send latency and send -> other users' /sync delivery latency.
#[derive(Debug, Parser)]
#[command(name = "hearth-load")]
struct Args {
    /// Base URL of the homeserver to test (e.g. http://127.0.0.1:8008); it must allow
    /// registration with m.login.dummy, or use --login. Default: an in-process Hearth on
    /// 127.0.0.1:0 with a temporary SQLite database and rate limits lifted.
    #[arg(long)]
    url: Option<String>,
    /// Run the in-process Hearth on PostgreSQL instead: a fresh database hearth_load_<random>
    /// is created through this URL (e.g. postgres://postgres@127.0.0.1:5432/postgres) and dropped
    /// afterwards.
    #[arg(long, conflicts_with = "url")]
    postgres: Option<String>,
    /// Users, all in one room.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..))]
    users: u32,
    /// Messages each user sends.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    messages: u32,
    /// Send requests in flight at once, over all users [default: --users].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Option<u32>,
    /// Users that run a /sync loop (the first K) [default: --users]. Fewer receivers show
    /// what the sync fan-out costs.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    receivers: Option<u32>,
    /// User names are PREFIX-0 .. PREFIX-(N-1) [default: load<random hex>].
    #[arg(long)]
    prefix: Option<String>,
    /// Password of the users [default: random]. Registration falls back to logging in when a
    /// user already exists.
    #[arg(long)]
    password: Option<String>,
    /// Log in existing users (PREFIX-i with PASSWORD) instead of registering them.
    #[arg(long, requires_all = ["prefix", "password"])]
    login: bool,
    /// Timeline events per /sync response; news beyond it comes back `limited` and the gap is
    /// fetched with /messages.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    timeline_limit: u32,
    /// The sync API of the receivers and the idle clients.
    #[arg(long, value_enum, default_value_t = SyncApi::V2)]
    sync: SyncApi,
    /// Idle clients: users in no room of the benchmark's that long-poll on connections of
    /// their own throughout the run (what the notifier must not wake).
    #[arg(long, default_value_t = 0)]
    idle: u32,
    /// Seconds to wait for every message to reach every other user after the last send.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

fn random_hex(bits: u32) -> String {
    let seed = std::time::SystemTime::now();
    let random = std::collections::hash_map::RandomState::new().hash_one(seed);
    let digits = bits.div_ceil(4) as usize;
    format!("{:0digits$x}", random >> (64 - bits))
}

fn main() -> ExitCode {
    match main_inner() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hearth-load: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn main_inner() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,sqlx=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let run_id = random_hex(40);
    let users = args.users as usize;
    let (server, base, description) = match &args.url {
        Some(url) => (
            None,
            url.clone(),
            format!("{url}; its own rate limits apply (429s are waited out and counted)"),
        ),
        None => {
            let server = InProcess::start(args.postgres.as_deref(), &run_id)?;
            let (base, description) = (server.base.clone(), server.description.clone());
            (Some(server), base, description)
        }
    };
    let options = Options {
        base,
        users,
        messages: args.messages as usize,
        concurrency: args.concurrency.map_or(users, |c| c as usize),
        receivers: args.receivers.map_or(users, |r| (r as usize).min(users)),
        prefix: args.prefix.unwrap_or_else(|| format!("load{run_id}")),
        password: args.password.unwrap_or_else(|| random_hex(64)),
        login: args.login,
        delivery_timeout: Duration::from_secs(args.timeout),
        timeline_limit: args.timeline_limit,
        sync: args.sync,
        idle: args.idle as usize,
    };
    println!("server: {description}");
    println!(
        "load: {} users in one room, {} messages each, {} sends in flight at most, \
         {} of the users syncing ({:?}), {} idle clients, users {}-0..{}, sync timeout {} ms, \
         timeline limit {}",
        options.users,
        options.messages,
        options.concurrency,
        options.receivers,
        options.sync,
        options.idle,
        options.prefix,
        options.users - 1,
        SYNC_TIMEOUT_MS,
        options.timeline_limit
    );
    let client = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("load-client")
        .build()
        .context("building the client runtime")?;
    let report = client.block_on(run(options));
    client.shutdown_timeout(Duration::from_secs(2));
    if let Some(Err(e)) = server.map(InProcess::stop) {
        eprintln!("hearth-load: stopping the server: {e:#}");
    }
    let report = report?;
    print_report(&report);
    let peak = peak_rss_mib();
    if let Some(peak) = peak {
        let whose = if args.url.is_some() {
            "the load client"
        } else {
            "the in-process server and the load client together"
        };
        println!("memory: peak resident set {peak:.1} MiB ({whose})");
    }
    let server_kind = match (&args.url, &args.postgres) {
        (Some(_), _) => "external",
        (None, Some(_)) => "hearth-postgres",
        (None, None) => "hearth-sqlite",
    };
    let mut summary = report.json(server_kind);
    summary["peak_rss_mib"] = peak.map_or(serde_json::Value::Null, |p| p.into());
    println!("{summary}");
    Ok(if report.lost() > 0 || report.send_failed > 0 {
        eprintln!(
            "hearth-load: FAILED: {} deliveries lost, {} sends failed",
            report.lost(),
            report.send_failed
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// This process's peak resident set (`VmHWM`), on Linux.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some((kib / 1024.0 * 10.0).round() / 10.0)
}

fn print_report(r: &Report) {
    let line = |s: Option<&Summary>| s.map_or_else(|| "no samples".to_owned(), Summary::line);
    println!(
        "setup (register, room, joins, initial syncs): {:.2} s",
        r.setup.as_secs_f64()
    );
    println!(
        "sent: {} messages ({} failed) in {:.3} s -> {:.1} messages/s",
        r.sent_ok,
        r.send_failed,
        r.send_wall.as_secs_f64(),
        r.throughput()
    );
    println!("send latency:     {}", line(r.send.as_ref()));
    println!("delivery latency: {}", line(r.delivery.as_ref()));
    println!(
        "deliveries: {} of {} (lost {}), last after {}; duplicates {}",
        r.delivered,
        r.expected_deliveries,
        r.lost(),
        r.delivery_wall
            .map_or_else(|| "-".to_owned(), |d| format!("{:.3} s", d.as_secs_f64())),
        r.receivers.duplicates
    );
    let s = &r.receivers;
    println!(
        "sync: {} responses ({} with news, {:.1} messages per such response), \
         {} limited, {} messages backfilled via /messages",
        s.syncs,
        s.syncs_with_news,
        r.delivered as f64 / s.syncs_with_news.max(1) as f64,
        s.limited,
        s.backfilled
    );
    if r.options.idle > 0 {
        println!(
            "idle clients: {}; their long-polls answered early {} times, timed out {} times",
            r.options.idle, r.idle.early, r.idle.timed_out
        );
    }
    if let Some(cpu) = &r.cpu {
        println!("cpu (send start to last delivery): {}", cpu.line());
    }
    println!("rate-limited (429, waited out): {}", r.throttled);
    println!("errors: {}", r.error_count());
    for (kind, count) in &r.errors {
        println!("  {count:>6}  {kind}");
    }
}
