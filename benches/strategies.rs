//! # What one chat burst costs, per transport
//!
//! The lesson in one command: `cargo bench --bench strategies`.
//!
//! One group per strategy — `interval`, `timeout`, `longpoll`, `websocket`,
//! `sse` — and in each, K = 1, 10 and 100 clients of that strategy
//! connected to the real server (started in-process on a loopback port, an
//! in-memory store, every limit lifted). One *batch* is M = 10 messages
//! posted by one sender, one every 20 ms, like a lively chat. Criterion
//! times each batch **from the moment the first message is posted until
//! every client has received all ten**.
//!
//! The clients behave like the lesson's pages, 100 times faster (polls every
//! 10 ms instead of every second, a message every 20 ms instead of every
//! two seconds, so the *ratio* of polls to messages is the classroom's):
//!
//! * `interval` — setInterval: a request every 10 ms on a fixed clock,
//!   whether or not the last one has answered (at most 6 in flight, like a
//!   browser's connections per origin);
//! * `timeout` — setTimeout: ask, wait for the answer, pause 10 ms, ask
//!   again;
//! * `longpoll` — ask, the server holds the question until there is news,
//!   ask again at once;
//! * `websocket`, `sse` — one connection opened before the bench; messages
//!   are pushed.
//!
//! So the batch always lasts at least 9 × 20 ms = 180 ms (the sender's own
//! pace); what a strategy adds on top is how late its clients learn of the
//! last message. That is one half of the lesson. The other half is what the
//! batch cost the server in HTTP requests, read from `GET /api/stats`
//! before and after each batch and printed after each benchmark and in a
//! table at the end:
//!
//! ```text
//! interval ≫ timeout > longpoll ≈ M per client > websocket = sse = 0
//! ```
//!
//! Polling pays per unit of *time* (K × 180 ms / 10 ms ≈ 18 requests per
//! client, most of them empty), long polling per *message* (one answer and
//! one new request per message per client), push transports nothing at all
//! after the connection is open.
//!
//! Run time: about 80 s (see `docs/benchmarks.md`).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode};
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use weebsockets::Running;

mod common;
use common::{POLL_EVERY, Poster, STRATEGIES, Tracker};
use weebsockets::message::Via;

/// M: messages in one batch.
const MESSAGES: u64 = 10;
/// Pause between two posts of a batch.
const GAP: Duration = Duration::from_millis(20);
/// K: clients of one strategy.
const CLIENTS: [usize; 3] = [1, 10, 100];

/// What the batches of one benchmark cost, summed.
#[derive(Default, Clone, Copy)]
struct Tally {
    batches: u64,
    /// HTTP requests the strategy's clients made during the batches.
    requests: u64,
    /// Of those, answers that carried no message.
    empty: u64,
    /// From sending the last POST until every client had that message.
    tail: Duration,
}

/// One finished benchmark, for the table at the end.
struct Row {
    strategy: Via,
    clients: usize,
    tally: Tally,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

/// A server with K connected clients of one strategy, and a sender.
struct Fixture {
    strategy: Via,
    clients: usize,
    server: Running,
    http: reqwest::Client,
    tracker: std::sync::Arc<Tracker>,
    tasks: Vec<JoinHandle<()>>,
    poster: Poster,
    tally: Tally,
}

impl Fixture {
    /// Starts the server and the clients, and waits until one message has
    /// reached every client (so all are connected and polling).
    async fn new(strategy: Via, clients: usize) -> Fixture {
        let server = common::start_server();
        let http = common::http_client();
        let mut poster = Poster::new(&server, &http).await;
        let tracker = Tracker::new(clients);
        let tasks =
            common::connect_all(strategy, clients, &server, &http, &mut poster, &tracker).await;
        Fixture {
            strategy,
            clients,
            server,
            http,
            tracker,
            tasks,
            poster,
            tally: Tally::default(),
        }
    }

    /// The strategy's counters in `/api/stats`: (requests, empty answers).
    async fn counters(&self) -> (u64, u64) {
        let stats: Value = common::stats(&self.http, &self.server).await;
        let mine = &stats["transports"][self.strategy.as_str()];
        (
            mine["requests"].as_u64().expect("requests"),
            mine["empty_responses"].as_u64().expect("empty_responses"),
        )
    }

    /// `iters` batches; returns the time they took (stats reads excluded).
    async fn batches(&mut self, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            // Untimed: a random pause of up to one poll period, so that
            // batches do not start in step with the pollers' clocks (the
            // previous batch ended just after a poll answered).
            let phase = rand::random_range(0..POLL_EVERY.as_micros() as u64);
            tokio::time::sleep(Duration::from_micros(phase)).await;
            let (requests_before, empty_before) = self.counters().await;
            let last = self.poster.next_id + MESSAGES - 1;
            self.tracker.arm(last);

            let start = Instant::now();
            let mut last_sent = start;
            for i in 0..MESSAGES {
                tokio::time::sleep_until((start + GAP * i as u32).into()).await;
                last_sent = Instant::now();
                self.poster.post("a message of the batch").await;
            }
            self.tracker.wait("every client to receive the batch").await;
            let elapsed = start.elapsed();
            let tail = last_sent.elapsed();

            let (requests_after, empty_after) = self.counters().await;
            self.tally.batches += 1;
            self.tally.requests += requests_after - requests_before;
            self.tally.empty += empty_after - empty_before;
            self.tally.tail += tail;
            timed += elapsed;
        }
        timed
    }

    /// Stops the clients and the server; prints and keeps the tally.
    fn finish(self) {
        for task in &self.tasks {
            task.abort();
        }
        let Fixture {
            strategy,
            clients,
            server,
            tally,
            ..
        } = self;
        // Graceful stop: held long polls are answered, sockets closed.
        server.stop().expect("server stops");
        let per_batch = tally.requests as f64 / tally.batches.max(1) as f64;
        println!(
            "{}/clients/{clients}: {per_batch:.1} HTTP requests per batch of {MESSAGES} \
             ({:.2} per client per message, {:.0}% empty); last message reached everyone \
             {:.2} ms after its POST was sent (mean of {} batches)",
            strategy.as_str(),
            per_batch / (clients as f64 * MESSAGES as f64),
            100.0 * tally.empty as f64 / tally.requests.max(1) as f64,
            tally.tail.as_secs_f64() * 1e3 / tally.batches.max(1) as f64,
            tally.batches,
        );
        ROWS.lock().unwrap().push(Row {
            strategy,
            clients,
            tally,
        });
    }
}

fn strategies(c: &mut Criterion, rt: &Runtime) {
    for strategy in STRATEGIES {
        let mut group = c.benchmark_group(strategy.as_str());
        // Each batch takes ~200 ms: a few samples of one or two batches each
        // are enough to see the differences, and keep the run short.
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for clients in CLIENTS {
            // Criterion calls the closure once per sample: build the
            // fixture on the first call only, outside the timed part.
            let mut fixture: Option<Fixture> = None;
            group.bench_function(BenchmarkId::new("clients", clients), |b| {
                let fx =
                    fixture.get_or_insert_with(|| rt.block_on(Fixture::new(strategy, clients)));
                b.iter_custom(|iters| rt.block_on(fx.batches(iters)));
            });
            if let Some(fx) = fixture.take() {
                fx.finish();
            }
        }
        group.finish();
    }
}

/// The lesson's table: criterion's median batch time next to the requests.
fn print_table() {
    let rows = ROWS.lock().unwrap();
    if rows.is_empty() {
        return;
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let t = row.tally;
            let batches = t.batches.max(1) as f64;
            let per_batch = t.requests as f64 / batches;
            let id = format!("{}/clients/{}", row.strategy.as_str(), row.clients);
            vec![
                row.strategy.as_str().to_owned(),
                row.clients.to_string(),
                common::median_cell(common::criterion_median(&id)),
                format!("{:.2} ms", t.tail.as_secs_f64() * 1e3 / batches),
                format!("{per_batch:.1}"),
                format!("{:.2}", per_batch / (row.clients as f64 * MESSAGES as f64)),
                if t.requests == 0 {
                    "—".into()
                } else {
                    format!("{:.0}%", 100.0 * t.empty as f64 / t.requests as f64)
                },
            ]
        })
        .collect();
    println!(
        "\nThe lesson in one table: a batch of {MESSAGES} messages, one every {} ms, \
         polls every {} ms.\n",
        GAP.as_millis(),
        POLL_EVERY.as_millis()
    );
    print!(
        "{}",
        common::markdown(
            &[
                "strategy",
                "clients",
                "batch time, median [95% CI]",
                "last POST → everyone (mean)",
                "HTTP requests per batch",
                "per client per message",
                "empty answers",
            ],
            &table,
        )
    );
}

fn main() {
    common::mark_start();
    let rt = common::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    strategies(&mut criterion, &rt);
    criterion.final_summary();
    print_table();
}
