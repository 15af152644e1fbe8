//! # The shared document's hot paths
//!
//! `cargo bench --bench doc`. What the server does with an edit, from the
//! inside out:
//!
//! * `doc_apply/<trace>` — a whole recorded editing session applied to the
//!   server's text (a `ropey` rope, as `doc.rs` keeps it), one operation per
//!   transaction, the operations prepared beforehand: seph-blog1 is 137,154
//!   edits of a blog post. Throughput is edits per second. The anchors: the
//!   automerge-paper trace (259,778 edits) takes Yjs about 0.97 s and
//!   diamond-types 56 ms (~4.6 M edits/s); plain JavaScript `splice` 5–6 s.
//! * `doc_writer/memory/<trace>` — the same edits through the document's
//!   writer ([`Document::submit`]: check, store, encode for every
//!   transport, apply, publish) over an in-memory SQLite database, 1,024 in
//!   flight: everything of the durable path but the disk.
//! * `doc_transform/backlog/N` — an edit made N revisions ago, transformed
//!   against the N operations stored since (keystrokes at random places of a
//!   10,000-character text), as the writer does: the stored one first.
//! * `doc_append/durable/K` — K editors' keystrokes submitted at once to a
//!   document in a temp-file SQLite database with `synchronous=FULL`, until
//!   every one is committed: 1 costs a commit and an fsync; 64 share one or
//!   two (group commit), and are transformed against each other (all were
//!   made at the same revision).
//! * `doc_fanout/N` — the real server (in-process, loopback), N editors on
//!   `/api/doc/ws`; one `POST /api/doc/ops` until all N have the `op` frame.
//!
//! The traces are Joseph Gentle's `editing-traces` (CC BY 4.0), in
//! `tests/data/traces/` (see its README).
//!
//! Run time: about a minute (see `docs/benchmarks.md`, "The document").

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput};
use futures_util::StreamExt;
use futures_util::future::join_all;
use ropey::Rope;
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use weebsockets::Running;
use weebsockets::config::SyncMode;
use weebsockets::doc::{Change, Document, Submission};
use weebsockets::message::Via;
use weebsockets::ot::{Operation, transform};
use weebsockets::store::Database;

mod common;
use common::{Cursor, Tracker};

/// The traces' loader, the same file the tests use.
#[path = "../tests/common/traces.rs"]
mod traces;

/// Submissions the bench writers may have queued.
const WRITE_QUEUE: usize = 100_000;
/// Submissions in flight at once in `doc_writer` (the store's batch size).
const IN_FLIGHT: usize = 1_024;
/// No limit on the document's length in these benches.
const MAX_CHARS: usize = 10_000_000;

/// A trace's transactions as operations, each on the text the one before
/// left.
fn trace_ops(name: &str) -> Vec<Operation> {
    let trace = traces::load(name);
    let mut len = trace.start_content.chars().count();
    trace
        .txns
        .iter()
        .map(|txn| {
            let op = txn.operation(len);
            len = op.target_len();
            op
        })
        .collect()
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("doc_apply");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for name in ["seph-blog1", "sveltecomponent"] {
        let ops = trace_ops(name);
        group.throughput(Throughput::Elements(ops.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                Rope::new,
                |mut rope| {
                    for op in &ops {
                        // The writer checked the length before; so does this.
                        op.apply_to_rope(&mut rope).expect("a trace's op fits");
                    }
                    rope
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

/// A fresh document over an in-memory database.
fn memory_document() -> Document {
    let db = Database::open(Path::new(":memory:"), SyncMode::Full).expect("database opens");
    Document::open(db, MAX_CHARS, 1_000, WRITE_QUEUE).expect("document opens")
}

/// One editor's edit `seq`, made at `rev`.
fn submission(client: &str, seq: u64, rev: u64, op: Operation) -> Submission {
    Submission {
        client: client.into(),
        seq,
        change: Change::Edit { rev, op },
        author: None,
        account: false,
        via: Via::Websocket,
    }
}

/// `ops` submitted to `doc` by one editor, edit k at revision k − 1, with
/// up to [`IN_FLIGHT`] waiting at once.
async fn submit_all(doc: &Document, ops: &[Operation]) {
    for (chunk_no, chunk) in ops.chunks(IN_FLIGHT).enumerate() {
        let first = (chunk_no * IN_FLIGHT) as u64;
        let submits = chunk.iter().enumerate().map(|(i, op)| {
            let k = first + i as u64;
            doc.submit(submission("bench", k, k, op.clone()))
        });
        for done in common::within("edits to commit", join_all(submits)).await {
            done.expect("an edit of the trace is stored");
        }
    }
}

fn writer(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("doc_writer");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    let name = "sveltecomponent";
    let ops = trace_ops(name);
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.bench_function(BenchmarkId::new("memory", name), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let doc = memory_document();
                    let start = Instant::now();
                    submit_all(&doc, &ops).await;
                    timed += start.elapsed();
                    doc.flush_and_stop().await;
                }
                timed
            })
        });
    });
    group.finish();
}

/// A keystroke at a random place of a `len`-character text (SplitMix64 on
/// `seed`): one character typed, or one deleted.
fn keystroke(seed: &mut u64, len: usize) -> Operation {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let at = (z % (len as u64 + 1)) as usize;
    if z.is_multiple_of(5) && at < len {
        Operation::from_patch(len, at, 1, "").expect("in range")
    } else {
        Operation::from_patch(len, at, 0, "k").expect("in range")
    }
}

fn transform_backlog(c: &mut Criterion) {
    const TEXT: usize = 10_000;
    let mut group = c.benchmark_group("doc_transform");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    for backlog in [1usize, 10, 100, 1_000] {
        // The stored history since the edit's revision, and the edit.
        let mut seed = backlog as u64;
        let mut len = TEXT;
        let stored: Vec<Operation> = (0..backlog)
            .map(|_| {
                let op = keystroke(&mut seed, len);
                len = op.target_len();
                op
            })
            .collect();
        let incoming = keystroke(&mut seed, TEXT);
        group.throughput(Throughput::Elements(backlog as u64));
        group.bench_function(BenchmarkId::new("backlog", backlog), |b| {
            b.iter(|| {
                let mut op = incoming.clone();
                for s in &stored {
                    op = transform(s, &op).expect("same base").1;
                }
                op
            });
        });
    }
    group.finish();
}

fn append(c: &mut Criterion, rt: &Runtime) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::open(&dir.path().join("doc.db"), SyncMode::Full).expect("database opens");
    let doc = Document::open(db, MAX_CHARS, 1_000, WRITE_QUEUE).expect("document opens");
    let mut group = c.benchmark_group("doc_append");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let mut seq = 0u64;
    let mut seed = 7u64;
    for editors in [1usize, 64] {
        group.throughput(Throughput::Elements(editors as u64));
        group.bench_function(BenchmarkId::new("durable", editors), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        // Every editor types at the same revision: the
                        // writer transforms each against those before it.
                        let (rev, text) = doc.current();
                        let len = text.chars().count();
                        seq += 1;
                        let submits: Vec<_> = (0..editors)
                            .map(|e| {
                                let op = keystroke(&mut seed, len);
                                doc.submit(submission(&format!("editor-{e}"), seq, rev, op))
                            })
                            .collect();
                        let start = Instant::now();
                        for done in common::within("edits to commit", join_all(submits)).await {
                            done.expect("a keystroke is stored");
                        }
                        timed += start.elapsed();
                    }
                    timed
                })
            });
        });
    }
    group.finish();
    rt.block_on(doc.flush_and_stop());
}

/// A server with N document WebSockets, each reporting the newest revision
/// it got.
struct Fanout {
    server: Running,
    http: reqwest::Client,
    tracker: Arc<Tracker>,
    tasks: Vec<JoinHandle<()>>,
    /// The document's revision and length.
    rev: u64,
    len: usize,
}

impl Fanout {
    async fn new(editors: usize) -> Fanout {
        let server = common::start_server();
        let http = common::http_client();
        let tracker = Tracker::new(editors);
        let mut fanout = Fanout {
            server,
            http,
            tracker,
            tasks: Vec::new(),
            rev: 0,
            len: 0,
        };
        let ws = fanout.server.ws_url("/api/doc/ws?since=0");
        for _ in 0..editors {
            let (ws, tracker) = (ws.clone(), Arc::clone(&fanout.tracker));
            fanout.tasks.push(tokio::spawn(doc_editor(ws, tracker)));
        }
        // Everybody is connected once everybody has the first edit.
        fanout.tracker.arm(1);
        fanout.post().await;
        fanout.tracker.wait("every editor to connect").await;
        fanout
    }

    /// One keystroke at the end of the text, `POST /api/doc/ops`.
    async fn post(&mut self) {
        let mut op = Operation::new();
        op.retain(self.len).insert("x");
        let body = json!({"client": "bench", "seq": self.rev, "rev": self.rev, "op": op.to_json()});
        let response = common::within(
            "a POST to be stored",
            self.http
                .post(self.server.url("/api/doc/ops"))
                .json(&body)
                .send(),
        )
        .await
        .expect("POST answered");
        assert_eq!(response.status(), 201, "POST /api/doc/ops");
        let stored: Value = response.json().await.expect("stored op");
        assert_eq!(
            stored["rev"].as_u64(),
            Some(self.rev + 1),
            "only the bench edits"
        );
        self.rev += 1;
        self.len += 1;
    }

    /// `iters` times: one edit, until every editor has it.
    async fn fan_out(&mut self, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        for _ in 0..iters {
            self.tracker.arm(self.rev + 1);
            let start = Instant::now();
            self.post().await;
            self.tracker.wait("every editor to get the edit").await;
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

/// A document WebSocket that reports each `op` frame's revision.
async fn doc_editor(url: String, tracker: Arc<Tracker>) {
    let (mut stream, _) =
        common::within("a WebSocket upgrade", tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket upgrade");
    let cursor = Cursor::new(0);
    while let Some(frame) = stream.next().await {
        match frame.expect("a valid frame") {
            WsMessage::Text(text) => {
                let frame: Value = serde_json::from_str(&text).expect("a JSON frame");
                if frame["type"] == "op"
                    && let Some(rev) = frame["rev"].as_u64()
                {
                    cursor.advance(rev, &tracker);
                }
            }
            WsMessage::Close(_) => return,
            _ => {}
        }
    }
}

fn fanout(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("doc_fanout");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for editors in [100usize, 1_000] {
        group.throughput(Throughput::Elements(editors as u64));
        let mut fixture: Option<Fanout> = None;
        group.bench_function(BenchmarkId::from_parameter(editors), |b| {
            let fx = fixture.get_or_insert_with(|| rt.block_on(Fanout::new(editors)));
            b.iter_custom(|iters| rt.block_on(fx.fan_out(iters)));
        });
        if let Some(fx) = fixture.take() {
            fx.finish();
        }
    }
    group.finish();
}

/// This run's medians, with the rate each stands for.
fn print_table() {
    let rows: &[(&str, f64, &str)] = &[
        ("doc_apply/seph-blog1", 137_154.0, "edits"),
        ("doc_apply/sveltecomponent", 18_335.0, "edits"),
        ("doc_writer/memory/sveltecomponent", 18_335.0, "edits"),
        ("doc_transform/backlog/1", 1.0, "transforms"),
        ("doc_transform/backlog/10", 10.0, "transforms"),
        ("doc_transform/backlog/100", 100.0, "transforms"),
        ("doc_transform/backlog/1000", 1_000.0, "transforms"),
        ("doc_append/durable/1", 1.0, "edits"),
        ("doc_append/durable/64", 64.0, "edits"),
        ("doc_fanout/100", 100.0, "frames"),
        ("doc_fanout/1000", 1_000.0, "frames"),
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|(id, elements, what)| {
            let estimate = common::criterion_median(id)?;
            let rate = elements / (estimate.point / 1e9);
            Some(vec![
                format!("`{id}`"),
                common::median_cell(Some(estimate)),
                format!(
                    "{} per {}",
                    common::human(estimate.point / elements),
                    &what[..what.len() - 1]
                ),
                format!("{:.3} M {what}/s", rate / 1e6),
            ])
        })
        .collect();
    if !table.is_empty() {
        println!("\nThe document (criterion medians of this run):\n");
        print!(
            "{}",
            common::markdown(&["benchmark", "median [95% CI]", "each", "rate"], &table)
        );
    }
}

fn main() {
    common::mark_start();
    common::raise_fd_limit();
    let rt = common::runtime();
    let mut criterion = Criterion::default().configure_from_args();
    apply(&mut criterion);
    writer(&mut criterion, &rt);
    transform_backlog(&mut criterion);
    append(&mut criterion, &rt);
    fanout(&mut criterion, &rt);
    criterion.final_summary();
    print_table();
}
