//! # The room's hot paths, without HTTP
//!
//! `cargo bench --bench room`. Everything a transport does ends in three
//! calls on [`Room`]: `append` (store a message), `read_since` (what is new
//! after my cursor?) and `subscribe` (wake me when something is). These
//! benches call them directly, in-process, to show what each costs before
//! any HTTP is involved:
//!
//! * `append/durable` — a message made durable in a temp-file SQLite
//!   database with `synchronous=FULL` (an fsync per commit, as shipped).
//!   `1` appender waits for each message before sending the next: one
//!   commit, one fsync per message. `64` appenders send at once: the
//!   store's writer takes everything queued into one transaction (*group
//!   commit*), so 64 messages share a commit or two. Criterion prints the
//!   time per batch and, as throughput, messages per second — compare the
//!   two.
//! * `read_since/memory/R` — a reader near the head asks for its R = 1,
//!   100, 500 newest messages: a short lock and R pointer copies out of the
//!   room's in-memory window. `read_since/disk/R` — a reader further behind
//!   than the window (1,000 messages here) is served by SQLite instead, on
//!   tokio's blocking pool.
//! * `wake_longpolls/N` — N tasks wait like held long polls do
//!   (`subscribe`, read an empty page, wait for a change); one message is
//!   appended (in-memory store, so no fsync is timed); the time runs until
//!   every task has woken and read it. This is the cost of a message for N
//!   long-poll clients *inside* the server, before any response is written.
//!
//! The WebSocket fan-out over real sockets is in `benches/fanout.rs`.
//!
//! Run time: about 40 s (see `docs/benchmarks.md`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use futures_util::future::join_all;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use weebsockets::config::SyncMode;
use weebsockets::message::{NewMessage, Via};
use weebsockets::room::Room;
use weebsockets::store::Database;

mod common;
use common::{Countdown, Tracker};

/// Messages the writer may have queued (the server's default is 10,000;
/// the read benches' setup queues more at once).
const WRITE_QUEUE: usize = 100_000;
/// The in-memory window of the read benches' room.
const WINDOW: usize = 1_000;
/// Messages in the read benches' room: two windows are on disk only.
const FILLED: u64 = 3_000;

fn message(text: &str) -> NewMessage {
    NewMessage {
        author: "bench".into(),
        text: text.into(),
        via: Via::Api,
        key: None,
        account: false,
    }
}

/// A room over a temp-file SQLite database with `synchronous=FULL`.
fn durable_room(dir: &Path, window: usize) -> Room {
    let store = Database::open(&dir.join("room.db"), SyncMode::Full).expect("database opens");
    Room::open(store, window, WRITE_QUEUE).expect("room opens")
}

/// A room over an in-memory database (appends cost no fsync).
fn memory_room() -> Room {
    let store = Database::open(Path::new(":memory:"), SyncMode::Full).expect("database opens");
    Room::open(store, 10_000, WRITE_QUEUE).expect("room opens")
}

/// `count` messages appended at once (one or a few group commits).
async fn append_many(room: &Room, count: usize) {
    let appends = (0..count).map(|_| room.append(message("a message for the bench")));
    for stored in common::within("appends to commit", join_all(appends)).await {
        stored.expect("append");
    }
}

fn append(c: &mut Criterion, rt: &Runtime) {
    let dir = tempfile::tempdir().expect("temp dir");
    let room = durable_room(dir.path(), WINDOW);
    let mut group = c.benchmark_group("append");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for appenders in [1usize, 64] {
        group.throughput(Throughput::Elements(appenders as u64));
        group.bench_function(BenchmarkId::new("durable", appenders), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        append_many(&room, appenders).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
    rt.block_on(room.flush_and_stop());
}

fn read_since(c: &mut Criterion, rt: &Runtime) {
    let dir = tempfile::tempdir().expect("temp dir");
    let room = durable_room(dir.path(), WINDOW);
    rt.block_on(async {
        for _ in 0..FILLED / 500 {
            append_many(&room, 500).await;
        }
    });
    let last = room.last_id();
    assert_eq!(last, FILLED);
    let mut group = c.benchmark_group("read_since");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (place, results) in [
        ("memory", 1usize),
        ("memory", 100),
        ("memory", 500),
        ("disk", 1),
        ("disk", 100),
        ("disk", 500),
    ] {
        // Near the head: the newest `results` messages. Behind the window:
        // from the start of the log (ids 1.. are on disk only).
        let since = match place {
            "memory" => last - results as u64,
            _ => 0,
        };
        let page = rt
            .block_on(room.log().read_since(since, results))
            .expect("read");
        assert_eq!(page.entries.len(), results, "{place}/{results}");
        group.throughput(Throughput::Elements(results as u64));
        group.bench_function(BenchmarkId::new(place, results), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let page = room.log().read_since(since, results).await.expect("read");
                        std::hint::black_box(page);
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
    rt.block_on(room.flush_and_stop());
}

/// N tasks hold like long polls; one append; time until all have read it.
async fn wake_once(room: &Room, waiters: usize) -> Duration {
    let since = room.last_id();
    let waiting = Countdown::new(waiters);
    let woken = Tracker::new(waiters);
    woken.arm(since + 1);
    let mut tasks = JoinSet::new();
    for _ in 0..waiters {
        let (room, waiting, woken) = (room.clone(), Arc::clone(&waiting), Arc::clone(&woken));
        tasks.spawn(async move {
            // What the long-poll handler does: subscribe first, then read,
            // then wait for a change (bounded, like a held poll's timer).
            let mut latest = room.log().subscribe();
            let mut counted = false;
            loop {
                let page = room.log().read_since(since, 100).await.expect("read");
                if let Some(newest) = page.entries.last() {
                    woken.advanced(since, newest.id());
                    return;
                }
                if !counted {
                    waiting.count();
                    counted = true;
                }
                common::within("a change", latest.changed())
                    .await
                    .expect("room open");
            }
        });
    }
    waiting.wait("every task to be waiting").await;

    let start = Instant::now();
    room.append(message("wake up")).await.expect("append");
    woken.wait("every waiting task to wake and read").await;
    let elapsed = start.elapsed();

    while let Some(done) = tasks.join_next().await {
        done.expect("waiting task");
    }
    elapsed
}

fn wake_longpolls(c: &mut Criterion, rt: &Runtime) {
    let room = memory_room();
    let mut group = c.benchmark_group("wake_longpolls");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for waiters in [100usize, 1_000, 10_000] {
        group.bench_function(BenchmarkId::from_parameter(waiters), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        timed += wake_once(&room, waiters).await;
                    }
                    timed
                })
            });
        });
    }
    group.finish();
    rt.block_on(room.flush_and_stop());
}

fn print_table() {
    let ids = [
        "append/durable/1",
        "append/durable/64",
        "read_since/memory/1",
        "read_since/memory/100",
        "read_since/memory/500",
        "read_since/disk/1",
        "read_since/disk/100",
        "read_since/disk/500",
        "wake_longpolls/100",
        "wake_longpolls/1000",
        "wake_longpolls/10000",
    ];
    common::print_medians("The room's hot paths", "median [95% CI]", &ids);
}

fn main() {
    common::mark_start();
    let rt = common::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    append(&mut criterion, &rt);
    read_since(&mut criterion, &rt);
    wake_longpolls(&mut criterion, &rt);
    criterion.final_summary();
    print_table();
}
