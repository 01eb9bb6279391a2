//! Append throughput through the whole pipeline (build, hash, sign, auth, durable commit):
//! one room with several concurrent senders, and several rooms at once. SQLite always;
//! PostgreSQL too when HEARTH_TEST_POSTGRES_URL names a server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hearth_benches::{alice, message, room, rooms};
use hearth_rooms::{Append, Rooms};
use ruma::OwnedRoomId;

const SENDERS: usize = 8;

/// Append `n` messages spread over `rooms_list` from `SENDERS` tasks per room; return the time.
async fn append_n(rooms: &Rooms, rooms_list: &[OwnedRoomId], n: u64) -> Duration {
    let per_task = (n as usize).div_ceil(SENDERS * rooms_list.len()).max(1);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for room in rooms_list {
        for _ in 0..SENDERS {
            let (rooms, room) = (rooms.clone(), room.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let append = Append {
                        sender: alice(),
                        draft: message(i),
                        txn: None,
                    };
                    rooms.append(&room, append).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let elapsed = start.elapsed();
    // Scale to exactly n so the throughput figure is honest when n doesn't divide evenly.
    elapsed.mul_f64(n as f64 / (per_task * SENDERS * rooms_list.len()) as f64)
}

fn bench_backend(
    c: &mut Criterion,
    name: &str,
    open: impl Fn(&tokio::runtime::Runtime) -> hearth_store::testing::TestStore,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let test = open(&runtime);
    let rooms = rooms(test.store.clone());
    let one = runtime.block_on(room(&rooms)).unwrap();
    let mut four = Vec::new();
    for _ in 0..4 {
        four.push(runtime.block_on(room(&rooms)).unwrap());
    }

    let mut group = c.benchmark_group(format!("append/{name}"));
    group.throughput(Throughput::Elements(1));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("one room, 8 senders", |b| {
        b.iter_custom(|n| runtime.block_on(append_n(&rooms, std::slice::from_ref(&one), n)))
    });
    group.bench_function("four rooms, 8 senders each", |b| {
        b.iter_custom(|n| runtime.block_on(append_n(&rooms, &four, n)))
    });
    group.finish();
    drop(test);
}

fn append(c: &mut Criterion) {
    bench_backend(c, "sqlite", |rt| {
        rt.block_on(hearth_store::testing::sqlite())
    });
    if std::env::var(hearth_store::testing::POSTGRES_URL_VAR).is_ok() {
        bench_backend(c, "postgres", |rt| {
            rt.block_on(hearth_store::testing::postgres())
        });
    }
}

criterion_group!(benches, append);
criterion_main!(benches);
