//! `loadgen doc class`: a class typing into the shared document at once.
//!
//! N simulated editors of one transport, one task each, each the way an
//! editor page works: load `GET /api/doc`, follow the operations' log over
//! its transport, and run the three-state OT client
//! ([`weebsockets::ot::client::Client`]) — one operation in flight, what is
//! typed meanwhile composed into a buffer, its own operation coming back in
//! the log as its acknowledgement.
//!
//! | transport | reads the log with | submits with |
//! | --- | --- | --- |
//! | interval | `GET /api/doc/ops` every interval, overlapping (≤ 6 at once) | `POST /api/doc/ops` |
//! | timeout | `GET /api/doc/ops`, the next one an interval after the answer | `POST /api/doc/ops` |
//! | longpoll | `GET /api/doc/longpoll`, again at once after each answer | `POST /api/doc/ops` |
//! | websocket | `/api/doc/ws` frames | `op` frames on the same socket |
//! | sse | `/api/doc/events` | `POST /api/doc/ops` |
//!
//! **Each editor writes its own paragraph.** Before the editors load the
//! document, one setup edit appends a newline per editor; editor e then
//! types just before newline e (its caret is moved through everybody
//! else's operations). What it types is a recorded trace's transactions
//! (`--typing seph-blog1`: a person writing a blog post, keystroke by
//! keystroke, deletes and pastes included) or random edits, at `--rate`
//! transactions a second on a fixed schedule. Paragraphs make the end
//! checkable: every editor knows exactly what its own paragraph must say.
//!
//! **Latency.** A keystroke reaches another editor when that editor applies
//! the stored operation that carries it: the typist's submission covers
//! every keystroke typed so far (the buffer included), so a keystroke typed
//! while an operation is in flight waits for the next one — that wait is
//! part of what a person sees, and part of the figure. *Keystroke to every
//! editor* is the time until the last of the other editors has it.
//!
//! **The end.** Typing stops at the end of the window; once every editor is
//! synchronized at the same revision, each one's text must be the server's
//! (`diverged` counts those that are not), each paragraph must be exactly
//! what its typist typed and did not delete, and every keystroke must have
//! reached every other editor (`lost` counts what did not).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ropey::Rope;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use weebsockets::ot::client::{Client, Received, Stored, Submission};
use weebsockets::ot::{Bias, Component, Operation};

use crate::Env;
use crate::doc::{DocFrame, OpsPage, StoredJson, get_doc, load_trace, trace_ops, ws_open};
use crate::measure::{Percentiles, instant_of, now_us, round};
use crate::wire::{Headers, HttpConn, Meter, Target, request, roundtrip_retry};

/// How an editor follows the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Interval,
    Timeout,
    Longpoll,
    Websocket,
    Sse,
}

impl Transport {
    pub const ALL: [Transport; 5] = [
        Transport::Interval,
        Transport::Timeout,
        Transport::Longpoll,
        Transport::Websocket,
        Transport::Sse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Interval => "interval",
            Transport::Timeout => "timeout",
            Transport::Longpoll => "longpoll",
            Transport::Websocket => "websocket",
            Transport::Sse => "sse",
        }
    }
}

/// What the editors type.
#[derive(Debug, Clone)]
pub enum Typing {
    /// Random keystrokes at a moving caret: mostly one character, some
    /// backspaces, now and then the caret jumps.
    Random,
    /// A sequential trace's transactions, in order, in each paragraph.
    Trace {
        name: String,
        ops: Arc<Vec<Operation>>,
    },
}

impl Typing {
    pub fn parse(s: &str) -> Result<Typing, String> {
        if s == "random" {
            return Ok(Typing::Random);
        }
        let trace = load_trace(s)?;
        if trace.kind.is_some() || !trace.start_content.is_empty() {
            return Err(format!(
                "{s}: editors type a sequential trace that starts empty"
            ));
        }
        Ok(Typing::Trace {
            name: s
                .rsplit('/')
                .next()
                .unwrap_or(s)
                .trim_end_matches(".json.gz")
                .to_owned(),
            ops: Arc::new(trace_ops(&trace)),
        })
    }

    fn name(&self) -> &str {
        match self {
            Typing::Random => "random",
            Typing::Trace { name, .. } => name,
        }
    }
}

/// One `doc class` phase.
#[derive(Debug, Clone)]
pub struct ClassSpec {
    pub transport: Transport,
    pub editors: usize,
    /// Keystrokes (transactions) per second per editor.
    pub rate: f64,
    pub typing: Typing,
    pub interval: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub lab_latency_ms: u64,
}

/// A browser's connections per host: how far setInterval's polls overlap.
const BROWSER_CONNECTIONS: usize = 6;
/// The pages give up on an ordinary request after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause after a failed request or a dropped stream.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Editors connecting at once.
const CONNECTING_AT_ONCE: usize = 64;
/// How long the end may take to settle (after typing stops) before the run
/// is reported as not converged.
const DRAIN: Duration = Duration::from_secs(30);

/// Phases run so far by this process.
static PHASES: AtomicU64 = AtomicU64::new(0);

/// One typist's keystrokes, as everybody records them.
#[derive(Default)]
struct AuthorLog {
    /// When each keystroke was typed, µs.
    typed_at: Vec<u64>,
    /// Submission seq → keystrokes it covers (all typed before it was sent).
    covers: std::collections::HashMap<u64, usize>,
    /// Per keystroke: how many other editors have it, and the latest of
    /// their arrival latencies.
    reached: Vec<u32>,
    worst: Vec<u64>,
}

/// What every editor of one phase shares.
struct Class {
    target: Target,
    meter: Arc<Meter>,
    headers: Headers,
    spec: ClassSpec,
    /// This phase's part of every editor id: the run's id and the phase's
    /// number (an id and seq already stored would be taken as a resend).
    tag: String,
    /// Per editor.
    logs: Vec<Mutex<AuthorLog>>,
    /// Per editor: its last applied revision and whether it is synchronized
    /// (published for the drain).
    revs: Vec<AtomicU64>,
    synced: Vec<AtomicBool>,
    /// Editors connected and ready to type.
    ready: AtomicUsize,
    connecting: Arc<Semaphore>,
    /// When typing starts (µs), once every editor is ready (0 before).
    start_us: AtomicU64,
    /// The measured window, µs (set with `start_us`).
    window: Mutex<(u64, u64)>,
    /// Submissions the server stored later than the revision they were made
    /// on (so transformed), and all submissions acknowledged.
    transformed: AtomicU64,
    acknowledged: AtomicU64,
}

impl Class {
    fn client_id(&self, e: usize) -> String {
        format!("ed-{}-{e}", self.tag)
    }

    /// The editor index of a client id of this phase.
    fn editor_of(&self, client: &str) -> Option<usize> {
        let rest = client.strip_prefix("ed-")?.strip_prefix(&self.tag)?;
        rest.strip_prefix('-')?.parse().ok()
    }

    fn window(&self) -> (u64, u64) {
        // unwrap: no code holding this lock panics.
        *self.window.lock().unwrap()
    }
}

/// What an editor hears from its transport.
enum Incoming {
    /// Connected: the first poll answered, the stream or socket open.
    Ready,
    Op(Stored),
    /// An error frame or a failed request.
    Error,
}

/// An editor's end.
struct EditorEnd {
    text: String,
    start: usize,
    paragraph: String,
    /// Per-delivery latencies (this editor receiving others' keystrokes
    /// typed in the window), µs.
    samples: Vec<u64>,
    /// Own submissions sent in the window: time until they came back in
    /// the log (the server's commit and one delivery), µs.
    round_trips: Vec<u64>,
    typed_in_window: usize,
    failed: Option<String>,
}

/// Runs one phase.
pub async fn class(env: &Env, spec: &ClassSpec) -> Result<Value, String> {
    let n = spec.editors;
    if n == 0 || spec.rate <= 0.0 {
        return Err("doc class needs --editors > 0 and --rate > 0".into());
    }
    // The paragraphs: a newline per editor at the end of the text.
    let before = get_doc(&env.target).await?;
    let base = before.text.chars().count();
    setup_paragraphs(env, before.rev, base, n).await?;

    let class = Arc::new(Class {
        target: env.target.clone(),
        meter: Arc::new(Meter::default()),
        headers: env.headers,
        spec: spec.clone(),
        tag: format!("{}.{}", env.run, PHASES.fetch_add(1, Relaxed)),
        logs: (0..n).map(|_| Mutex::default()).collect(),
        revs: (0..n).map(|_| AtomicU64::new(0)).collect(),
        synced: (0..n).map(|_| AtomicBool::new(false)).collect(),
        ready: AtomicUsize::new(0),
        connecting: Arc::new(Semaphore::new(CONNECTING_AT_ONCE)),
        start_us: AtomicU64::new(0),
        window: Mutex::new((0, 0)),
        transformed: AtomicU64::new(0),
        acknowledged: AtomicU64::new(0),
    });
    let (stop, stop_rx) = watch::channel(false);
    let (go, go_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for e in 0..n {
        let class = Arc::clone(&class);
        let (stop_rx, go_rx) = (stop_rx.clone(), go_rx.clone());
        tasks.spawn(async move { (e, editor(class, e, base + e, stop_rx, go_rx).await) });
    }
    let t = tokio::time::Instant::now();
    let patience = Duration::from_secs(30 + n as u64 / 20);
    while class.ready.load(Relaxed) < n && t.elapsed() < patience {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if class.ready.load(Relaxed) < n {
        let _ = stop.send(true);
        return Err(format!(
            "only {} of {n} editors connected in {patience:?}",
            class.ready.load(Relaxed)
        ));
    }
    let connect_s = t.elapsed().as_secs_f64();
    // Everybody starts typing together.
    let start = now_us() + 200_000;
    let from = start + spec.warmup.as_micros() as u64;
    let until = from + spec.duration.as_micros() as u64;
    // unwrap: no code holding this lock panics.
    *class.window.lock().unwrap() = (from, until);
    class.start_us.store(start, Relaxed);
    let _ = go.send(true);
    eprintln!(
        "  {n} editors connected in {connect_s:.1} s; typing {} at {} keystrokes/s each",
        spec.typing.name(),
        spec.rate
    );
    let ticker = crate::progress::spawn(
        format!("doc {} ×{n}", spec.transport.name()),
        Arc::clone(&class.meter),
        None,
    );

    tokio::time::sleep_until(instant_of(from)).await;
    let traffic0 = class.meter.snapshot();
    let cpu0 = env.monitor.mark();
    let writer0 = crate::doc::writer_cpu(env);
    env.monitor.reset_peak();
    tokio::time::sleep_until(instant_of(until)).await;
    let traffic1 = class.meter.snapshot();
    let cpu1 = env.monitor.mark();
    let writer1 = crate::doc::writer_cpu(env);
    let usage = env.monitor.usage(cpu0, cpu1);

    // The drain: typing has stopped; wait until everybody is synchronized
    // at one revision.
    let drain_from = tokio::time::Instant::now();
    let settled = loop {
        let synced = class.synced.iter().all(|s| s.load(Relaxed));
        let first = class.revs[0].load(Relaxed);
        if synced && class.revs.iter().all(|r| r.load(Relaxed) == first) {
            break true;
        }
        if drain_from.elapsed() > DRAIN + 2 * spec.interval {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let drain_s = drain_from.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let mut ends: Vec<Option<EditorEnd>> = (0..n).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        if let Ok((e, end)) = done {
            ends[e] = Some(end);
        }
    }
    ticker.abort();
    let server = get_doc(&env.target).await?;
    let server_chars: Vec<char> = server.text.chars().collect();

    // Convergence and loss.
    let mut diverged = 0;
    let mut wrong_paragraphs = 0;
    let mut failures = Vec::new();
    let mut samples = Vec::new();
    let mut round_trips = Vec::new();
    let mut typed = 0;
    for (e, end) in ends.iter().enumerate() {
        let Some(end) = end else {
            diverged += 1;
            wrong_paragraphs += 1;
            failures.push(format!("editor {e} did not finish"));
            continue;
        };
        if let Some(f) = &end.failed {
            failures.push(format!("editor {e}: {f}"));
        }
        if end.text != server.text {
            diverged += 1;
        }
        let len = end.paragraph.chars().count();
        let have: String = server_chars
            .get(end.start..end.start + len)
            .map(|s| s.iter().collect())
            .unwrap_or_default();
        if have != end.paragraph || server_chars.get(end.start + len) != Some(&'\n') {
            wrong_paragraphs += 1;
        }
        samples.extend_from_slice(&end.samples);
        round_trips.extend_from_slice(&end.round_trips);
        typed += end.typed_in_window;
    }
    // Keystroke to every editor, for keystrokes typed in the window.
    let (from, until) = class.window();
    let mut every = Vec::new();
    let mut missing = 0u64;
    for log in &class.logs {
        // unwrap: no code holding this lock panics.
        let log = log.lock().unwrap();
        for (k, &at) in log.typed_at.iter().enumerate() {
            let reached = log.reached[k] as usize;
            if reached < n - 1 {
                missing += (n - 1 - reached) as u64;
            } else if (from..until).contains(&at) && n > 1 {
                every.push(log.worst[k]);
            }
        }
    }
    let every_editor = Percentiles::of(&mut every);
    let each = Percentiles::of(&mut samples);
    let round_trip = Percentiles::of(&mut round_trips);
    let traffic = traffic1 - traffic0;
    let per_keystroke = |x: u64| round(x as f64 / typed.max(1) as f64);
    let lost = missing + wrong_paragraphs as u64;
    let transformed = class.transformed.load(Relaxed);
    let acked = class.acknowledged.load(Relaxed);
    let writer_s = writer0.zip(writer1).map(|(a, b)| b - a);
    println!(
        "\ndoc class {} ×{n}, {} at {}/s: {typed} keystrokes in {:.0} s; {:.3} requests and {:.0} bytes per keystroke",
        spec.transport.name(),
        spec.typing.name(),
        spec.rate,
        spec.duration.as_secs_f64(),
        per_keystroke(traffic.requests),
        per_keystroke(traffic.read + traffic.written)
    );
    println!(
        "  keystroke to every editor p50 {:.1} ms, p95 {:.1}, p99 {:.1}, max {:.1}; to each editor p50 {:.1}, p99 {:.1}; own op back in the log p50 {:.1}, p99 {:.1}",
        every_editor.p50,
        every_editor.p95,
        every_editor.p99,
        every_editor.max,
        each.p50,
        each.p99,
        round_trip.p50,
        round_trip.p99
    );
    println!(
        "  end: {} after {drain_s:.1} s; {diverged} editors differ from the server, {wrong_paragraphs} paragraphs wrong, {missing} keystroke deliveries missing; {transformed} of {acked} submissions transformed",
        if settled { "settled" } else { "NOT settled" },
    );
    for f in failures.iter().take(5) {
        println!("  {f}");
    }
    println!("  {}", usage.line());
    Ok(json!({
        "mode": "doc-class", "transport": spec.transport.name(), "editors": n,
        "rate": spec.rate, "typing": spec.typing.name(),
        "interval_ms": spec.interval.as_millis() as u64, "lab_latency_ms": spec.lab_latency_ms,
        "duration_s": spec.duration.as_secs_f64(), "connect_s": round(connect_s),
        "keystrokes": typed, "requests": traffic.requests,
        "requests_per_keystroke": per_keystroke(traffic.requests),
        "bytes_per_keystroke": per_keystroke(traffic.read + traffic.written),
        "bytes_per_keystroke_per_editor": round(per_keystroke(traffic.read + traffic.written) / n as f64),
        "every_editor": every_editor.json(), "each_editor": each.json(),
        "own_op_back": round_trip.json(),
        "settled": settled, "drain_s": round(drain_s), "diverged": diverged,
        "wrong_paragraphs": wrong_paragraphs, "missing_deliveries": missing, "lost": lost,
        "submissions": acked, "transformed": transformed,
        "transformed_pct": round(100.0 * transformed as f64 / acked.max(1) as f64),
        "errors": traffic.errors, "failures": failures.len(),
        "end_chars": server_chars.len(), "end_rev": server.rev,
        "server_peak_rss_mib": usage.server_peak_rss_kib.map(|k| round(k as f64 / 1024.0)),
        "writer_cpu_s": writer_s.map(round),
        "usage": usage.json(),
    }))
}

/// One edit that appends `n` newlines: the paragraphs' ends.
async fn setup_paragraphs(env: &Env, rev: u64, len: usize, n: usize) -> Result<(), String> {
    let mut op = Operation::new();
    op.retain(len).insert(&"\n".repeat(n));
    let body = json!({
        "client": format!("ed-setup-{}-{}", env.run, now_us()), "seq": 0, "rev": rev, "op": op.to_json(),
    })
    .to_string();
    let meter = Arc::new(Meter::default());
    let mut conn = HttpConn::open(&env.target, &meter)
        .await
        .map_err(|e| e.to_string())?;
    let req = request(
        "POST",
        &env.target,
        "/api/doc/ops",
        Headers::Minimal,
        "",
        Some(&body),
    );
    let r = conn.roundtrip(&req).await.map_err(|e| e.to_string())?;
    if r.status != 201 {
        return Err(format!(
            "setting up the paragraphs: status {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// One editor
// ---------------------------------------------------------------------------

/// The typist: what it types next, in its paragraph's coordinates.
struct Typist {
    typing: Typing,
    /// The next transaction of the trace.
    next: usize,
    /// The caret, in the paragraph (random typing).
    caret: usize,
    rng: u64,
}

impl Typist {
    /// The next keystroke on a paragraph of `len` characters, as an
    /// operation on the paragraph.
    fn next(&mut self, len: usize) -> Operation {
        match &self.typing {
            Typing::Trace { ops, .. } => {
                let op = ops[self.next % ops.len()].clone();
                self.next += 1;
                if op.base_len() == len {
                    op
                } else {
                    // The trace wrapped around: start the paragraph again.
                    self.next = 1;
                    let mut restart = Operation::new();
                    restart.delete(len);
                    restart.compose(&ops[0]).unwrap_or_else(|_| ops[0].clone())
                }
            }
            Typing::Random => {
                let r = self.random();
                self.caret = self.caret.min(len);
                if r.is_multiple_of(20) {
                    self.caret = (self.random() as usize) % (len + 1);
                }
                let mut op = Operation::new();
                if r % 10 == 1 && self.caret > 0 {
                    op.retain(self.caret - 1).delete(1).retain(len - self.caret);
                    self.caret -= 1;
                } else {
                    const KEYS: &[u8] = b"etaoin shrdlu cmfwyp vbgkjq xz,.\n";
                    let key = KEYS[(self.random() as usize) % KEYS.len()] as char;
                    op.retain(self.caret)
                        .insert(&key.to_string())
                        .retain(len - self.caret);
                    self.caret += 1;
                }
                op
            }
        }
    }

    /// SplitMix64.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `op` on the paragraph at `start` (of `len` characters), as an operation
/// on the whole document of `doc_len` characters.
fn lift(op: &Operation, start: usize, len: usize, doc_len: usize) -> Operation {
    let mut whole = Operation::new();
    whole.retain(start);
    for component in op.components() {
        match component {
            Component::Retain(n) => whole.retain(*n),
            Component::Insert(s) => whole.insert(s),
            Component::Delete(n) => whole.delete(*n),
        };
    }
    whole.retain(doc_len - start - len);
    whole
}

/// How an editor sends its submissions.
enum Outbox {
    Ws(futures_util::stream::SplitSink<crate::doc::Ws, WsMessage>),
    Post(mpsc::UnboundedSender<Submission>),
}

impl Outbox {
    async fn send(&mut self, sub: &Submission) -> Result<(), String> {
        match self {
            Outbox::Ws(sink) => {
                let frame = format!(
                    r#"{{"type":"op","ref":{},"client":"{}","seq":{},"rev":{},"op":{}}}"#,
                    sub.seq,
                    sub.client,
                    sub.seq,
                    sub.rev,
                    sub.op.to_json()
                );
                sink.send(WsMessage::text(frame))
                    .await
                    .map_err(|e| e.to_string())
            }
            Outbox::Post(tx) => tx.send(sub.clone()).map_err(|e| e.to_string()),
        }
    }
}

/// One editor, from loading the document to the end of the drain.
async fn editor(
    class: Arc<Class>,
    e: usize,
    start: usize,
    mut stop: watch::Receiver<bool>,
    mut go: watch::Receiver<bool>,
) -> EditorEnd {
    let mut end = EditorEnd {
        text: String::new(),
        start,
        paragraph: String::new(),
        samples: Vec::new(),
        round_trips: Vec::new(),
        typed_in_window: 0,
        failed: None,
    };
    let permit = class.connecting.acquire().await.ok();
    let loaded = match get_doc(&class.target).await {
        Ok(doc) => doc,
        Err(err) => {
            end.failed = Some(err);
            return end;
        }
    };
    let id = class.client_id(e);
    let mut client = Client::new(id.clone(), loaded.rev, &loaded.text, 0);
    class.revs[e].store(loaded.rev, Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut helpers = JoinSet::new();
    let mut outbox = match class.spec.transport {
        Transport::Websocket => {
            let config = WebSocketConfig::default()
                .read_buffer_size(8192)
                .write_buffer_size(0);
            let path = format!("/api/doc/ws?since={}", loaded.rev);
            let ws = match ws_open(&class.target, &class.meter, &path, class.headers, config).await
            {
                Ok(ws) => ws,
                Err(err) => {
                    end.failed = Some(err);
                    return end;
                }
            };
            let (sink, stream) = ws.split();
            helpers.spawn(ws_reader(stream, tx));
            Outbox::Ws(sink)
        }
        transport => {
            let (post_tx, post_rx) = mpsc::unbounded_channel();
            helpers.spawn(poster(Arc::clone(&class), post_rx, tx.clone()));
            helpers.spawn(reader(Arc::clone(&class), transport, loaded.rev, tx));
            Outbox::Post(post_tx)
        }
    };
    // Connected once the transport says so.
    let mut readied = false;
    let mut typist = Typist {
        typing: class.spec.typing.clone(),
        next: 0,
        caret: 0,
        rng: 0x5EED ^ ((e as u64) << 20),
    };
    let mut paragraph = Rope::new();
    let mut start = start;
    let mut heard: Vec<usize> = vec![0; class.spec.editors];
    let mut typed = 0usize;
    let gap_us = (1e6 / class.spec.rate) as u64;
    // When the next keystroke is due (µs); None before the start and
    // after the end of typing.
    let mut next_key: Option<u64> = None;
    // When the operation in flight was sent, µs.
    let mut sent_at = 0u64;
    let mut in_window: Option<(u64, u64)> = None;
    let mut permit = permit;

    // Bounded: ends with the stop signal (after the drain).
    loop {
        let due = next_key.map(instant_of);
        tokio::select! {
            biased;
            _ = flipped(&mut stop) => break,
            _ = flipped(&mut go), if readied && in_window.is_none() => {
                in_window = Some(class.window());
                // A random phase within one keystroke gap.
                let t0 = class.start_us.load(Relaxed);
                next_key = Some(t0 + (typist.random() % gap_us.max(1)));
            }
            _ = sleep_until_some(due) => {
                let now = now_us();
                let (Some((from, until)), Some(key)) = (in_window, next_key) else { continue };
                if now >= until {
                    next_key = None; // typing is over
                    continue;
                }
                next_key = Some(key + gap_us);
                let len = paragraph.len_chars();
                let op = typist.next(len);
                let _ = op.apply_to_rope(&mut paragraph);
                let doc_len = client.doc().len_chars();
                let whole = lift(&op, start, len, doc_len);
                {
                    // unwrap: no code holding this lock panics.
                    let mut log = class.logs[e].lock().unwrap();
                    log.typed_at.push(now);
                    log.reached.push(0);
                    log.worst.push(0);
                }
                typed += 1;
                if (from..until).contains(&now) {
                    end.typed_in_window += 1;
                }
                match client.edit(whole) {
                    Ok(Some(sub)) => {
                        sent_at = now;
                        if let Err(err) = submit(&class, e, typed, &sub, &mut outbox).await {
                            end.failed = Some(err);
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(err) => {
                        end.failed = Some(format!("edit: {err}"));
                        break;
                    }
                }
                class.synced[e].store(false, Relaxed);
            }
            incoming = rx.recv() => {
                let Some(incoming) = incoming else { break };
                let stored = match incoming {
                    Incoming::Ready => {
                        if !readied {
                            readied = true;
                            drop(permit.take());
                            class.ready.fetch_add(1, Relaxed);
                        }
                        continue;
                    }
                    Incoming::Error => {
                        Meter::add(&class.meter.errors, 1);
                        continue;
                    }
                    Incoming::Op(stored) => stored,
                };
                let in_flight_rev = client.resend().map(|s| s.rev);
                let sent = sent_at;
                match client.receive(&stored) {
                    Ok(Received::Duplicate) => {}
                    Ok(Received::Acknowledged { send }) => {
                        class.acknowledged.fetch_add(1, Relaxed);
                        let now = now_us();
                        if let Some((from, until)) = in_window
                            && (from..until).contains(&sent)
                        {
                            end.round_trips.push(now - sent);
                        }
                        sent_at = now;
                        if in_flight_rev.is_some_and(|r| stored.rev > r + 1) {
                            class.transformed.fetch_add(1, Relaxed);
                        }
                        if let Some(sub) = send
                            && let Err(err) = submit(&class, e, typed, &sub, &mut outbox).await
                        {
                            end.failed = Some(err);
                            break;
                        }
                    }
                    Ok(Received::Applied(op)) => {
                        start = op.transform_index(start, Bias::Before);
                        if let Some(author) = class.editor_of(&stored.client) {
                            let now = now_us();
                            // unwrap: no code holding this lock panics.
                            let mut log = class.logs[author].lock().unwrap();
                            let covered = log.covers.get(&stored.seq).copied().unwrap_or(0);
                            let (from, until) = in_window.unwrap_or((0, 0));
                            for k in heard[author]..covered.min(log.typed_at.len()) {
                                let latency = now.saturating_sub(log.typed_at[k]);
                                log.reached[k] += 1;
                                log.worst[k] = log.worst[k].max(latency);
                                if (from..until).contains(&log.typed_at[k]) {
                                    end.samples.push(latency);
                                }
                            }
                            heard[author] = heard[author].max(covered);
                        }
                    }
                    Err(err) => {
                        end.failed = Some(format!("receive rev {}: {err}", stored.rev));
                        break;
                    }
                }
                class.revs[e].store(client.rev(), Relaxed);
                class.synced[e].store(client.state_name() == "synchronized", Relaxed);
            }
        }
    }
    helpers.abort_all();
    if let Outbox::Ws(mut sink) = outbox {
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    }
    end.text = client.text();
    end.start = start;
    end.paragraph = paragraph.to_string();
    end
}

/// Records what a submission covers, then sends it.
async fn submit(
    class: &Class,
    e: usize,
    typed: usize,
    sub: &Submission,
    outbox: &mut Outbox,
) -> Result<(), String> {
    {
        // unwrap: no code holding this lock panics.
        let mut log = class.logs[e].lock().unwrap();
        log.covers.insert(sub.seq, typed);
    }
    outbox.send(sub).await
}

/// Until the flag is true (the guard `wait_for` returns is not `Send`, so
/// it must not live in a `select!` whose branches await).
async fn flipped(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|f| *f).await;
}

async fn sleep_until_some(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

// ---------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------

/// Frames of a document WebSocket, as `Incoming`.
async fn ws_reader(
    mut stream: futures_util::stream::SplitStream<crate::doc::Ws>,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    // Bounded: ends when the socket does (or the editor aborts it).
    while let Some(Ok(msg)) = stream.next().await {
        let WsMessage::Text(text) = msg else { continue };
        let Ok(frame) = serde_json::from_str::<DocFrame>(&text) else {
            let _ = tx.send(Incoming::Error);
            continue;
        };
        let incoming = match frame.kind.as_str() {
            "welcome" => Incoming::Ready,
            "op" => match frame.stored() {
                Ok(stored) => Incoming::Op(stored),
                Err(_) => Incoming::Error,
            },
            "error" => Incoming::Error,
            _ => continue, // acks: the op itself is the acknowledgement
        };
        if tx.send(incoming).is_err() {
            return;
        }
    }
    let _ = tx.send(Incoming::Error);
}

/// Submits with `POST /api/doc/ops`, one at a time (the client never has
/// more than one in flight).
async fn poster(
    class: Arc<Class>,
    mut rx: mpsc::UnboundedReceiver<Submission>,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    let mut conn: Option<HttpConn> = None;
    let origin = if class.headers == Headers::Browser {
        format!("Origin: http://{}\r\n", class.target.host)
    } else {
        String::new()
    };
    // Bounded: ends when the editor drops its sender.
    while let Some(sub) = rx.recv().await {
        let body =
            json!({"client": sub.client, "seq": sub.seq, "rev": sub.rev, "op": sub.op.to_json()})
                .to_string();
        let req = request(
            "POST",
            &class.target,
            "/api/doc/ops",
            class.headers,
            &origin,
            Some(&body),
        );
        // A lost answer is resent with the same seq and rev: safe.
        for attempt in 0..3 {
            Meter::add(&class.meter.requests, 1);
            let r = tokio::time::timeout(
                REQUEST_TIMEOUT,
                roundtrip_retry(&mut conn, &class.target, &class.meter, &req),
            )
            .await;
            match r {
                Ok(Ok(resp)) if resp.status == 201 || resp.status == 200 => {
                    Meter::add(&class.meter.answers, 1);
                    break;
                }
                _ => {
                    conn = None;
                    let _ = tx.send(Incoming::Error);
                    if attempt < 2 {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                }
            }
        }
    }
}

/// Hands a page's operations after `high` to the editor, in order.
fn forward(body: &[u8], high: &mut u64, tx: &mpsc::UnboundedSender<Incoming>) -> bool {
    let Ok(page) = serde_json::from_slice::<OpsPage>(body) else {
        let _ = tx.send(Incoming::Error);
        return false;
    };
    for stored in page.ops {
        if stored.rev <= *high {
            continue; // an overtaken answer: already handed on
        }
        if stored.rev != *high + 1 {
            break; // cannot happen with a cursor from `high`
        }
        *high = stored.rev;
        match stored.parse() {
            Ok(stored) => {
                let _ = tx.send(Incoming::Op(stored));
            }
            Err(_) => {
                let _ = tx.send(Incoming::Error);
                return false;
            }
        }
    }
    true
}

/// The polling and streaming readers: interval, timeout, long poll, SSE.
async fn reader(
    class: Arc<Class>,
    transport: Transport,
    since: u64,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    match transport {
        Transport::Interval => interval_reader(class, since, tx).await,
        Transport::Timeout | Transport::Longpoll => {
            sequential_reader(class, transport, since, tx).await
        }
        Transport::Sse => sse_reader(class, since, tx).await,
        Transport::Websocket => unreachable!("the WebSocket has its own reader"),
    }
}

/// setInterval: a poll every interval, whether or not the last came back
/// (at most six at once, like a browser's connections to one host).
async fn interval_reader(class: Arc<Class>, since: u64, tx: mpsc::UnboundedSender<Incoming>) {
    let high = Arc::new(Mutex::new(since));
    let idle: Arc<Mutex<Vec<HttpConn>>> = Arc::default();
    let slots = Arc::new(Semaphore::new(BROWSER_CONNECTIONS));
    let mut tick = tokio::time::interval(class.spec.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut inflight = JoinSet::new();
    let ready = Arc::new(AtomicBool::new(false));
    // Bounded: the editor aborts this task at its end.
    for seq in 1u64.. {
        tick.tick().await;
        while inflight.try_join_next().is_some() {}
        if inflight.len() >= 64 {
            continue;
        }
        // unwrap: no code holding this lock panics.
        let cursor = *high.lock().unwrap();
        let path = format!("/api/doc/ops?since={cursor}&limit=500&transport=interval&seq={seq}");
        let (class, high, idle, slots, tx, ready) = (
            Arc::clone(&class),
            Arc::clone(&high),
            Arc::clone(&idle),
            Arc::clone(&slots),
            tx.clone(),
            Arc::clone(&ready),
        );
        inflight.spawn(async move {
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            // unwrap: as above.
            let mut conn = idle.lock().unwrap().pop();
            let req = request("GET", &class.target, &path, class.headers, "", None);
            Meter::add(&class.meter.requests, 1);
            let r = tokio::time::timeout(
                REQUEST_TIMEOUT,
                roundtrip_retry(&mut conn, &class.target, &class.meter, &req),
            )
            .await;
            match r {
                Ok(Ok(resp)) if resp.status == 200 => {
                    Meter::add(&class.meter.answers, 1);
                    {
                        // unwrap: as above.
                        let mut high = high.lock().unwrap();
                        forward(&resp.body, &mut high, &tx);
                    }
                    if !ready.swap(true, Relaxed) {
                        let _ = tx.send(Incoming::Ready);
                    }
                }
                _ => {
                    conn = None;
                    let _ = tx.send(Incoming::Error);
                }
            }
            if let Some(conn) = conn {
                // unwrap: as above.
                idle.lock().unwrap().push(conn);
            }
        });
    }
}

/// setTimeout polling (the next poll an interval after the answer) and long
/// polling (the next one at once; the server holds it until there is news).
async fn sequential_reader(
    class: Arc<Class>,
    transport: Transport,
    since: u64,
    tx: mpsc::UnboundedSender<Incoming>,
) {
    let mut high = since;
    let mut conn: Option<HttpConn> = None;
    let mut ready = false;
    // Bounded: the editor aborts this task at its end.
    for seq in 1u64.. {
        let path = match transport {
            Transport::Timeout => {
                format!("/api/doc/ops?since={high}&limit=500&transport=timeout&seq={seq}")
            }
            _ => format!("/api/doc/longpoll?since={high}&timeout=25&limit=500"),
        };
        let req = request("GET", &class.target, &path, class.headers, "", None);
        Meter::add(&class.meter.requests, 1);
        let answer = if transport == Transport::Longpoll && !ready {
            // The first long poll is held: the editor is ready once it is sent.
            first_long_poll(&class, &mut conn, &req, &tx).await
        } else {
            tokio::time::timeout(
                REQUEST_TIMEOUT + Duration::from_secs(25),
                roundtrip_retry(&mut conn, &class.target, &class.meter, &req),
            )
            .await
            .map_err(|_| std::io::Error::other("timed out"))
            .and_then(|r| r)
        };
        match answer {
            Ok(resp) if resp.status == 200 => {
                Meter::add(&class.meter.answers, 1);
                forward(&resp.body, &mut high, &tx);
            }
            Ok(resp) if resp.status == 204 => {
                Meter::add(&class.meter.answers, 1);
                Meter::add(&class.meter.empty, 1);
            }
            _ => {
                conn = None;
                let _ = tx.send(Incoming::Error);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
        }
        if !ready {
            ready = true;
            let _ = tx.send(Incoming::Ready);
        }
        if transport == Transport::Timeout {
            // ▶ the next poll is planned only now that the answer is here.
            tokio::time::sleep(class.spec.interval).await;
        }
    }
}

/// The first long poll: sent, the editor told it is ready, then awaited.
async fn first_long_poll(
    class: &Class,
    conn: &mut Option<HttpConn>,
    req: &[u8],
    tx: &mpsc::UnboundedSender<Incoming>,
) -> std::io::Result<crate::wire::Response> {
    let mut fresh = HttpConn::open(&class.target, &class.meter).await?;
    fresh.send(req).await?;
    let _ = tx.send(Incoming::Ready);
    let answer = tokio::time::timeout(REQUEST_TIMEOUT + Duration::from_secs(25), async {
        let head = fresh.read_head().await?;
        let body = fresh.read_body(&head).await?;
        Ok::<_, std::io::Error>((head, body))
    })
    .await
    .map_err(|_| std::io::Error::other("timed out"))??;
    fresh.used += 1;
    if !answer.0.close {
        *conn = Some(fresh);
    }
    Ok(crate::wire::Response {
        status: answer.0.status,
        body: answer.1,
    })
}

/// Server-Sent Events: one stream; resumes with `Last-Event-ID`.
async fn sse_reader(class: Arc<Class>, since: u64, tx: mpsc::UnboundedSender<Incoming>) {
    let mut high = since;
    let mut reconnect = false;
    // Bounded: the editor aborts this task at its end.
    loop {
        let _ = sse_stream(&class, &mut high, reconnect, &tx).await;
        let _ = tx.send(Incoming::Error);
        reconnect = true;
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn sse_stream(
    class: &Class,
    high: &mut u64,
    reconnect: bool,
    tx: &mpsc::UnboundedSender<Incoming>,
) -> std::io::Result<()> {
    let mut conn = HttpConn::open(&class.target, &class.meter).await?;
    let path = format!("/api/doc/events?since={high}");
    let resume = if reconnect {
        format!("Last-Event-ID: {high}\r\n")
    } else {
        String::new()
    };
    let extra = format!("Accept: text/event-stream\r\nCache-Control: no-cache\r\n{resume}");
    let req = request("GET", &class.target, &path, class.headers, &extra, None);
    Meter::add(&class.meter.requests, 1);
    conn.send(&req).await?;
    let head = conn.read_head().await?;
    if head.status != 200 {
        return Err(std::io::Error::other(format!("status {}", head.status)));
    }
    Meter::add(&class.meter.answers, 1);
    let _ = tx.send(Incoming::Ready);
    let mut text = String::new();
    loop {
        let piece = if head.chunked {
            match conn.read_chunk().await? {
                Some(chunk) => chunk,
                None => return Ok(()),
            }
        } else {
            conn.read_some().await?
        };
        text.push_str(&String::from_utf8_lossy(&piece));
        while let Some(at) = text.find("\n\n") {
            if let Some(data) = op_data(&text[..at]) {
                match serde_json::from_str::<StoredJson>(data).map(StoredJson::parse) {
                    Ok(Ok(stored)) if stored.rev == *high + 1 => {
                        *high = stored.rev;
                        let _ = tx.send(Incoming::Op(stored));
                    }
                    Ok(Ok(_)) => {} // a repeat after a reconnect
                    _ => {
                        let _ = tx.send(Incoming::Error);
                    }
                }
            }
            text.drain(..at + 2);
        }
    }
}

/// The `data:` of an SSE event block whose `event:` is `op`.
fn op_data(block: &str) -> Option<&str> {
    crate::clients::event_data(block, "op")
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/// One Markdown row per phase.
pub fn print_table(results: &[Value]) {
    if results.is_empty() {
        return;
    }
    println!(
        "\n| transport | editors | keystrokes/s each | keystrokes | requests/keystroke | bytes/keystroke | every editor p50 / p95 / p99 / max ms | transformed | lost | diverged | server CPU s | peak RSS MiB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in results {
        let e = &r["every_editor"];
        println!(
            "| {} | {} | {} | {} | {} | {} | {} / {} / {} / {} | {}% | {} | {} | {} | {} |",
            r["transport"].as_str().unwrap_or("?"),
            r["editors"],
            r["rate"],
            r["keystrokes"],
            r["requests_per_keystroke"],
            r["bytes_per_keystroke"],
            e["p50_ms"],
            e["p95_ms"],
            e["p99_ms"],
            e["max_ms"],
            r["transformed_pct"],
            r["lost"],
            r["diverged"],
            r["usage"]["server_cpu_s"],
            r["server_peak_rss_mib"],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_paragraph_edit_lifted_to_the_document_edits_that_paragraph_only() {
        let doc = "intro\nfirst\nsecond\n";
        // "second" starts at 12 and is 6 characters long.
        let mut op = Operation::new();
        op.retain(3).delete(1).insert("XY").retain(2);
        let whole = lift(&op, 12, 6, doc.chars().count());
        assert_eq!(whole.apply(doc).unwrap(), "intro\nfirst\nsecXYnd\n");
    }

    #[test]
    fn random_typing_always_fits_the_paragraph() {
        let mut typist = Typist {
            typing: Typing::Random,
            next: 0,
            caret: 0,
            rng: 42,
        };
        let mut text = String::new();
        for _ in 0..5_000 {
            let op = typist.next(text.chars().count());
            text = op.apply(&text).expect("a keystroke fits");
        }
        assert!(!text.is_empty());
    }

    #[test]
    fn overtaken_poll_answers_hand_on_each_operation_once_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let page = |from: u64, to: u64| {
            let ops: Vec<Value> = (from..=to)
                .map(|rev| json!({"rev": rev, "op": ["x"], "client": "c", "seq": rev}))
                .collect();
            json!({"ops": ops, "last_rev": to}).to_string()
        };
        let mut high = 0;
        assert!(forward(page(1, 3).as_bytes(), &mut high, &tx));
        // An older, slower answer arrives after a newer one.
        assert!(forward(page(1, 2).as_bytes(), &mut high, &tx));
        assert!(forward(page(2, 5).as_bytes(), &mut high, &tx));
        drop(tx);
        let mut revs = Vec::new();
        while let Ok(Incoming::Op(stored)) = rx.try_recv() {
            revs.push(stored.rev);
        }
        assert_eq!(revs, [1, 2, 3, 4, 5]);
        assert_eq!(high, 5);
    }

    #[test]
    fn only_op_events_carry_data() {
        assert_eq!(
            op_data("id: 3\nevent: op\ndata: {\"rev\":3}"),
            Some("{\"rev\":3}")
        );
        assert_eq!(op_data(": keep-alive"), None);
        assert_eq!(op_data("retry: 2000"), None);
    }
}
