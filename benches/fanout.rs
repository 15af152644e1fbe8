//! # One message, N WebSockets
//!
//! `cargo bench --bench fanout`. The real server (in-process, loopback,
//! in-memory store, no limits) with N = 100 and 1,000 real WebSocket
//! clients (tokio-tungstenite) connected before the bench starts. Criterion
//! times **one `POST /api/messages` until all N clients have received the
//! message frame**.
//!
//! This is the path a chat message takes to a class on the WebSocket page:
//! the POST is stored, the room wakes every connection's task, each task
//! reads from its cursor and writes one frame (the message's JSON, encoded
//! once at commit and copied N times). On this machine the server and the N
//! clients share two cores, so the figure is "what this laptop can do with
//! both", the same caveat as the load generator's fan-out numbers in
//! `docs/benchmarks.md`.
//!
//! Run time: about 12 s (see `docs/benchmarks.md`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use weebsockets::Running;

mod common;
use common::{Poster, Tracker};
use weebsockets::message::Via;

/// A server with N WebSocket clients connected, and a sender.
struct Fixture {
    server: Running,
    tracker: Arc<Tracker>,
    tasks: Vec<JoinHandle<()>>,
    poster: Poster,
}

impl Fixture {
    async fn new(clients: usize) -> Fixture {
        let server = common::start_server();
        let http = common::http_client();
        let mut poster = Poster::new(&server, &http).await;
        let tracker = Tracker::new(clients);
        let tasks = common::connect_all(
            Via::Websocket,
            clients,
            &server,
            &http,
            &mut poster,
            &tracker,
        )
        .await;
        Fixture {
            server,
            tracker,
            tasks,
            poster,
        }
    }

    /// `iters` times: one POST, until every client has the frame.
    async fn fan_out(&mut self, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            self.tracker.arm(self.poster.next_id);
            let start = Instant::now();
            self.poster.post("one message for everybody").await;
            self.tracker
                .wait("every WebSocket to get the message")
                .await;
            timed += start.elapsed();
        }
        timed
    }

    fn finish(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.server.stop().expect("server stops");
    }
}

fn fanout(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("ws_fanout");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for clients in [100usize, 1_000] {
        // Throughput: frames delivered per second of fan-out time.
        group.throughput(Throughput::Elements(clients as u64));
        let mut fixture: Option<Fixture> = None;
        group.bench_function(BenchmarkId::from_parameter(clients), |b| {
            let fx = fixture.get_or_insert_with(|| rt.block_on(Fixture::new(clients)));
            b.iter_custom(|iters| rt.block_on(fx.fan_out(iters)));
        });
        if let Some(fx) = fixture.take() {
            fx.finish();
        }
    }
    group.finish();
}

fn main() {
    common::mark_start();
    common::raise_fd_limit();
    let rt = common::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    fanout(&mut criterion, &rt);
    criterion.final_summary();
    common::print_medians(
        "WebSocket fan-out",
        "POST → all N have it, median [95% CI]",
        &["ws_fanout/100", "ws_fanout/1000"],
    );
}
