//! `loadgen doc …`: the shared document, measured against any server of the
//! contract (`PROTOCOL.md`, "The shared document (v2)").
//!
//! | mode | what it measures |
//! | --- | --- |
//! | `doc class` | N simulated editors per transport typing at once, each with the three-state OT client: requests and bytes per keystroke, keystroke-to-every-editor latency, convergence ([`crate::editors`]) |
//! | `doc replay` | one editor replaying a recorded trace over WebSocket as fast as the server acknowledges: acknowledged edits per second |
//! | `doc concurrent` | the two-person trace `friendsforever` through the real server, two editors, the lab's latency between them ([`crate::concurrent`]) |
//! | `doc idle` | server memory per idle document (or chat) WebSocket or held long poll |
//! | `doc report` | medians per scenario and server of the JSON lines, and their ratios: the same as `loadgen report` ([`crate::report`]), which knows the document's figures too |
//!
//! The traces are Joseph Gentle's `editing-traces` (CC BY 4.0), in
//! `tests/data/traces/`; their loader is shared with the tests
//! (`tests/common/traces.rs`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use clap::Subcommand;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use weebsockets::ot::Operation;
use weebsockets::ot::client::Stored;

use crate::Env;
use crate::editors::{self, ClassSpec, Typing};
use crate::measure::{Percentiles, now_us, round};
use crate::wire::{Counted, Headers, HttpConn, Meter, Target, request};

/// The traces' loader, the same file the tests use.
#[path = "../../tests/common/traces.rs"]
pub mod traces;

/// The document's modes.
#[derive(Debug, Subcommand)]
pub enum DocMode {
    /// N editors per transport typing into the document at once.
    Class {
        /// Transports to run, one after another.
        #[arg(long, value_enum, value_delimiter = ',', default_values_t = editors::Transport::ALL)]
        transports: Vec<editors::Transport>,
        /// Editors per transport; a list runs each.
        #[arg(long, value_delimiter = ',', default_value = "30")]
        editors: Vec<usize>,
        /// Keystrokes per second per editor.
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// What the editors type: `random` edits, or a sequential trace's
        /// transactions (`seph-blog1`, `rustcode`, `sveltecomponent`, or a
        /// path), each editor in its own paragraph.
        #[arg(long, default_value = "seph-blog1")]
        typing: String,
        /// Poll interval in ms (interval, timeout).
        #[arg(long, default_value_t = 1000)]
        interval_ms: u64,
        /// Seconds of typing before measuring starts.
        #[arg(long, default_value_t = 2.0)]
        warmup_s: f64,
        /// Seconds measured.
        #[arg(long, default_value_t = 10.0)]
        duration_s: f64,
        /// The lab's latency for every delivery, ms (needs --teacher-token).
        #[arg(long, default_value_t = 0)]
        lab_latency_ms: u64,
    },
    /// One editor replays a trace over WebSocket as fast as acknowledged.
    Replay {
        /// A sequential trace: a name in tests/data/traces/ or a path.
        #[arg(long, default_value = "seph-blog1")]
        trace: String,
        /// Replay these operations instead (JSON lines, one operation each,
        /// from the empty document), e.g. `doc concurrent --dump-ops`.
        #[arg(long)]
        ops: Option<PathBuf>,
        /// Edits sent and not yet acknowledged, at most.
        #[arg(long, default_value_t = 256)]
        window: usize,
        /// Extra WebSocket readers that only receive every operation.
        #[arg(long, default_value_t = 0)]
        watchers: usize,
        /// Replay only the first N edits.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// The two-person trace through the real server, two editors.
    Concurrent {
        /// The concurrent trace (a name or a path).
        #[arg(long, default_value = "friendsforever")]
        trace: String,
        /// The lab's latency between the editors and the server, ms.
        #[arg(long, default_value_t = 500)]
        lab_latency_ms: u64,
        /// Write the stored log's operations here (JSON lines), for
        /// `doc replay --ops` on a fresh server: the same edits, none
        /// transformed.
        #[arg(long)]
        dump_ops: Option<PathBuf>,
    },
    /// N idle connections of one kind: server memory per connection.
    Idle {
        #[arg(long, value_enum)]
        kind: IdleKind,
        /// Whose log: the document's or the chat's.
        #[arg(long, value_enum, default_value_t = Topic::Doc)]
        topic: Topic,
        #[arg(long, default_value_t = 2000)]
        clients: usize,
    },
    /// Medians per scenario and server from JSON lines, and their ratios.
    Report {
        files: Vec<PathBuf>,
        /// The label the others are divided by (default: the last seen).
        #[arg(long)]
        baseline: Option<String>,
    },
}

/// Idle connection kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdleKind {
    Ws,
    Longpoll,
}

/// Which log an idle connection follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Topic {
    Doc,
    Chat,
}

/// Runs one document mode; returns its JSON lines (the caller writes them).
pub async fn run(env: &Env, mode: DocMode, token: Option<&str>) -> Result<Vec<Value>, String> {
    match mode {
        DocMode::Class {
            transports,
            editors: counts,
            rate,
            typing,
            interval_ms,
            warmup_s,
            duration_s,
            lab_latency_ms,
        } => {
            let typing = Typing::parse(&typing)?;
            if lab_latency_ms > 0 {
                set_lab(env, token, lab_latency_ms).await?;
            }
            let mut results = Vec::new();
            let outcome = async {
                for &n in &counts {
                    for &transport in &transports {
                        let spec = ClassSpec {
                            transport,
                            editors: n,
                            rate,
                            typing: typing.clone(),
                            interval: Duration::from_millis(interval_ms.max(1)),
                            warmup: Duration::from_secs_f64(warmup_s),
                            duration: Duration::from_secs_f64(duration_s),
                            lab_latency_ms,
                        };
                        let budget = spec.warmup
                            + spec.duration
                            + Duration::from_secs(90 + n as u64 / 20)
                            + 4 * spec.interval;
                        eprintln!(
                            "— doc class: {} ×{n}, {rate} keystrokes/s each",
                            transport.name()
                        );
                        let result = crate::deadline(budget, editors::class(env, &spec)).await?;
                        results.push(result);
                    }
                }
                Ok::<(), String>(())
            }
            .await;
            if lab_latency_ms > 0 {
                set_lab(env, token, 0).await?;
            }
            editors::print_table(&results);
            outcome.map(|()| results)
        }
        DocMode::Replay {
            trace,
            ops,
            window,
            watchers,
            limit,
        } => {
            let source = match &ops {
                Some(path) => Source::ops_file(path)?,
                None => Source::trace(&trace)?,
            };
            let budget = Duration::from_secs(600);
            let r = crate::deadline(budget, replay(env, source, window.max(1), watchers, limit))
                .await?;
            Ok(vec![r])
        }
        DocMode::Concurrent {
            trace,
            lab_latency_ms,
            dump_ops,
        } => {
            let name = trace.rsplit('/').next().unwrap_or(&trace);
            let name = name.trim_end_matches(".json.gz").to_owned();
            let trace = load_trace(&trace)?;
            set_lab(env, token, lab_latency_ms).await?;
            // Two people and their network: the replay waits on the lab's
            // latency whenever one needs what the other typed.
            let budget = Duration::from_secs(7200);
            let outcome = crate::deadline(
                budget,
                crate::concurrent::replay(env, &name, &trace, lab_latency_ms, dump_ops.as_deref()),
            )
            .await;
            set_lab(env, token, 0).await?;
            Ok(vec![outcome?])
        }
        DocMode::Idle {
            kind,
            topic,
            clients,
        } => {
            let budget = Duration::from_secs_f64(60.0 + clients as f64 / 50.0);
            let r = crate::deadline(budget, idle(env, kind, topic, clients)).await?;
            Ok(vec![r])
        }
        DocMode::Report { files, baseline } => {
            crate::report::report(&files, baseline.as_deref())?;
            Ok(Vec::new())
        }
    }
}

// ---------------------------------------------------------------------------
// The wire, for the document
// ---------------------------------------------------------------------------

/// A WebSocket over a counted TCP stream.
pub type Ws = WebSocketStream<Counted<TcpStream>>;

/// Opens a WebSocket to `path` (with a browser's `Origin` and
/// `User-Agent` when `headers` is `Browser`). Counts as one request.
pub async fn ws_open(
    target: &Target,
    meter: &Arc<Meter>,
    path: &str,
    headers: Headers,
    config: WebSocketConfig,
) -> Result<Ws, String> {
    let stream = target.connect(meter).await.map_err(|e| e.to_string())?;
    let url = format!("ws://{}{path}", target.host);
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    if headers == Headers::Browser {
        let h = req.headers_mut();
        if let Ok(origin) = format!("http://{}", target.host).parse() {
            h.insert("Origin", origin);
        }
        h.insert(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
                .parse()
                .map_err(|_| "bad header")?,
        );
    }
    Meter::add(&meter.requests, 1);
    let (ws, _) = tokio::time::timeout(
        crate::wire::CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)),
    )
    .await
    .map_err(|_| "upgrade timed out".to_owned())?
    .map_err(|e| format!("upgrade to {path}: {e}"))?;
    Meter::add(&meter.answers, 1);
    Ok(ws)
}

/// A frame from `/api/doc/ws`: `welcome`, `op` (a stored operation), `ack`
/// or `error`. Fields a kind does not have are absent.
#[derive(Debug, Deserialize)]
pub struct DocFrame {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub rev: u64,
    #[serde(default)]
    pub op: Option<Value>,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// A stored operation as polling answers and events carry it.
#[derive(Debug, Deserialize)]
pub struct StoredJson {
    pub rev: u64,
    pub op: Value,
    pub client: String,
    pub seq: u64,
}

impl StoredJson {
    /// As the OT client takes it.
    pub fn parse(self) -> Result<Stored, String> {
        Ok(Stored {
            rev: self.rev,
            op: Operation::from_json(&self.op).map_err(|e| format!("rev {}: {e}", self.rev))?,
            client: self.client,
            seq: self.seq,
        })
    }
}

impl DocFrame {
    /// The stored operation of an `op` frame.
    pub fn stored(self) -> Result<Stored, String> {
        let op = self.op.ok_or("an op frame without op")?;
        StoredJson {
            rev: self.rev,
            op,
            client: self.client.unwrap_or_default(),
            seq: self.seq.unwrap_or_default(),
        }
        .parse()
    }
}

/// A page of `GET /api/doc/ops` or `/api/doc/longpoll`.
#[derive(Debug, Deserialize)]
pub struct OpsPage {
    pub ops: Vec<StoredJson>,
    pub last_rev: u64,
}

/// `GET /api/doc`.
#[derive(Debug, Deserialize)]
pub struct DocNow {
    pub rev: u64,
    pub text: String,
}

/// `GET /api/doc` on a fresh connection.
pub async fn get_doc(target: &Target) -> Result<DocNow, String> {
    let meter = Arc::new(Meter::default());
    let mut conn = HttpConn::open(target, &meter)
        .await
        .map_err(|e| format!("cannot reach {}: {e}", target.host))?;
    let req = request("GET", target, "/api/doc", Headers::Minimal, "", None);
    let response = tokio::time::timeout(Duration::from_secs(30), conn.roundtrip(&req))
        .await
        .map_err(|_| "GET /api/doc timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&response.body)
        .map_err(|e| format!("GET /api/doc: status {}, {e}", response.status))
}

/// Every stored operation after `since`, paged through `GET /api/doc/ops`.
pub async fn all_ops(target: &Target, since: u64) -> Result<Vec<StoredJson>, String> {
    let meter = Arc::new(Meter::default());
    let mut conn = HttpConn::open(target, &meter)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut since = since;
    // Bounded: each page moves the cursor, and the loop ends at the head.
    loop {
        let path = format!("/api/doc/ops?since={since}&limit=500");
        let req = request("GET", target, &path, Headers::Minimal, "", None);
        let r = conn.roundtrip(&req).await.map_err(|e| e.to_string())?;
        let page: OpsPage =
            serde_json::from_slice(&r.body).map_err(|e| format!("GET {path}: {e}"))?;
        let Some(last) = page.ops.last().map(|s| s.rev) else {
            return Ok(out);
        };
        since = last;
        out.extend(page.ops);
        if since >= page.last_rev {
            return Ok(out);
        }
    }
}

/// `PUT /api/lab` with the teacher token: latency only.
pub async fn set_lab(env: &Env, token: Option<&str>, latency_ms: u64) -> Result<(), String> {
    crate::set_lab(env, token, (latency_ms, 0)).await
}

/// CPU seconds of one named thread of a process (`/proc/<pid>/task/*/comm`),
/// e.g. Weebsockets' `doc-writer`. `None` if there is no such thread (the
/// peer is one Node thread).
pub fn thread_cpu_seconds(pid: &str, name: &str) -> Option<f64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.flatten() {
        let tid = task.file_name();
        let tid = tid.to_string_lossy();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok()?;
        if comm.trim() == name {
            return crate::measure::cpu_seconds(&format!("{pid}/task/{tid}"));
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Traces
// ---------------------------------------------------------------------------

/// A trace by name (`tests/data/traces/<name>.json.gz`) or path.
pub fn load_trace(name_or_path: &str) -> Result<traces::Trace, String> {
    let path = if name_or_path.contains('/') || name_or_path.ends_with(".gz") {
        PathBuf::from(name_or_path)
    } else {
        traces::traces_dir().join(format!("{name_or_path}.json.gz"))
    };
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut json = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut json)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&json).map_err(|e| format!("{} is not a trace: {e}", path.display()))
}

/// A sequential trace's transactions as operations, each on the text the
/// one before left (one operation per transaction, its patches composed).
pub fn trace_ops(trace: &traces::Trace) -> Vec<Operation> {
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

/// What `doc replay` sends.
pub struct Source {
    name: String,
    ops: Vec<Operation>,
    /// The text the replay must end with (`endContent`, or the ops applied).
    end: String,
}

impl Source {
    fn trace(name: &str) -> Result<Source, String> {
        let trace = load_trace(name)?;
        if trace.kind.is_some() {
            return Err(format!(
                "{name} is a concurrent trace: use `doc concurrent`"
            ));
        }
        if !trace.start_content.is_empty() {
            return Err(format!("{name} does not start empty"));
        }
        Ok(Source {
            name: Path::new(name)
                .file_name()
                .map_or(name.to_owned(), |f| f.to_string_lossy().into_owned())
                .trim_end_matches(".json.gz")
                .to_owned(),
            ops: trace_ops(&trace),
            end: trace.end_content,
        })
    }

    fn ops_file(path: &Path) -> Result<Source, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut ops = Vec::new();
        let mut doc = ropey::Rope::new();
        for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
            let op = Operation::from_json_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            op.apply_to_rope(&mut doc)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
            ops.push(op);
        }
        Ok(Source {
            name: path
                .file_name()
                .map_or("ops".into(), |f| f.to_string_lossy().into_owned()),
            ops,
            end: doc.to_string(),
        })
    }
}

// ---------------------------------------------------------------------------
// doc replay
// ---------------------------------------------------------------------------

/// One editor, the only writer, replays `source` over one WebSocket: edit k
/// is sent against revision `start + k - 1` without waiting for k − 1's
/// acknowledgement (at most `window` unacknowledged). `watchers` more
/// WebSockets only receive. Ends by checking the server's text.
async fn replay(
    env: &Env,
    source: Source,
    window: usize,
    watchers: usize,
    limit: Option<usize>,
) -> Result<Value, String> {
    let ops = match limit {
        Some(n) => &source.ops[..n.min(source.ops.len())],
        None => &source.ops[..],
    };
    let n = ops.len();
    let start = get_doc(&env.target).await?;
    if !start.text.is_empty() {
        return Err(format!(
            "the document is not empty (rev {}, {} characters): replay needs a fresh server",
            start.rev,
            start.text.chars().count()
        ));
    }
    // Every frame prepared beforehand: the timing is the server's.
    let client = format!("replay-{}", env.run);
    let frames: Vec<String> = ops
        .iter()
        .enumerate()
        .map(|(k, op)| {
            format!(
                r#"{{"type":"op","ref":{k},"client":"{client}","seq":{k},"rev":{},"op":{}}}"#,
                start.rev + k as u64,
                op.to_json()
            )
        })
        .collect();
    let last_rev = start.rev + n as u64;

    // The watchers: each counts operations until it has the last one.
    let watch_meter = Arc::new(Meter::default());
    let mut watching = JoinSet::new();
    let reached = Arc::new(AtomicU64::new(0));
    for _ in 0..watchers {
        let mut ws = ws_open(
            &env.target,
            &watch_meter,
            &format!("/api/doc/ws?since={}", start.rev),
            Headers::Minimal,
            WebSocketConfig::default(),
        )
        .await?;
        let reached = Arc::clone(&reached);
        watching.spawn(async move {
            // Bounded: ends at the last revision, or when the socket ends.
            while let Some(Ok(msg)) = ws.next().await {
                if let WsMessage::Text(text) = msg
                    && let Ok(frame) = serde_json::from_str::<DocFrame>(&text)
                    && frame.kind == "op"
                    && frame.rev >= last_rev
                {
                    reached.fetch_add(1, Relaxed);
                    return;
                }
            }
        });
    }

    let meter = Arc::new(Meter::default());
    let mut ws = ws_open(
        &env.target,
        &meter,
        &format!("/api/doc/ws?since={}", start.rev),
        Headers::Minimal,
        WebSocketConfig::default(),
    )
    .await?;
    let before = meter.snapshot();
    let cpu0 = env.monitor.mark();
    let writer0 = writer_cpu(env);
    env.monitor.reset_peak();
    let t0 = now_us();
    let mut sent_at = vec![0u64; n];
    let (mut sent, mut acked, mut echoed) = (0usize, 0usize, 0usize);
    let mut ack_us = Vec::with_capacity(n);
    // Bounded: every frame read moves towards n acks, or the run fails.
    while acked < n {
        let mut fed = false;
        while sent < n && sent - acked < window {
            sent_at[sent] = now_us();
            ws.feed(WsMessage::text(frames[sent].as_str()))
                .await
                .map_err(|e| format!("send edit {sent}: {e}"))?;
            sent += 1;
            fed = true;
        }
        if fed {
            ws.flush().await.map_err(|e| e.to_string())?;
        }
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .map_err(|_| format!("no frame for 30 s after {acked} acknowledgements"))?;
        let text = match msg {
            Some(Ok(WsMessage::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("after {acked} acks: {e}")),
            None => return Err(format!("the server closed after {acked} acks")),
        };
        let frame: DocFrame = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        match frame.kind.as_str() {
            "ack" => {
                ack_us.push(now_us() - sent_at[acked]);
                acked += 1;
            }
            "op" => echoed += 1,
            "error" => {
                return Err(format!(
                    "edit refused after {acked} acks: {}: {}",
                    frame.code.unwrap_or_default(),
                    frame.error.unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
    let seconds = (now_us() - t0) as f64 / 1e6;
    let cpu1 = env.monitor.mark();
    let writer1 = writer_cpu(env);
    let traffic = meter.snapshot() - before;
    // The watchers get the last op shortly after its ack.
    let patience = tokio::time::Instant::now() + Duration::from_secs(30);
    while reached.load(Relaxed) < watchers as u64 && tokio::time::Instant::now() < patience {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let watchers_done = reached.load(Relaxed);
    watching.abort_all();
    let _ = ws.close(None).await;

    let end = get_doc(&env.target).await?;
    let expected: &str = if limit.is_some_and(|l| l < source.ops.len()) {
        ""
    } else {
        &source.end
    };
    let matches = limit
        .is_none_or(|l| l >= source.ops.len())
        .then(|| end.text == expected);
    let usage = env.monitor.usage(cpu0, cpu1);
    let ack = Percentiles::of(&mut ack_us);
    let rate = n as f64 / seconds;
    let per_edit_us = usage.server_cpu_s.map(|c| round(c * 1e6 / n as f64));
    let writer_s = writer0.zip(writer1).map(|(a, b)| b - a);
    println!(
        "\ndoc replay {} ({n} edits, window {window}, {watchers} watchers): {seconds:.2} s, {rate:.0} acknowledged edits/s; ack p50 {:.2} ms, p99 {:.2} ms; end text {}",
        source.name,
        ack.p50,
        ack.p99,
        match matches {
            Some(true) => "matches",
            Some(false) => "DIFFERS",
            None => "not checked (--limit)",
        }
    );
    println!(
        "  server CPU per edit: {} µs{}; {}",
        per_edit_us.map_or("?".into(), |x| format!("{x:.1}")),
        writer_s.map_or(String::new(), |w| format!(
            " (writer thread {:.1} µs)",
            w * 1e6 / n as f64
        )),
        usage.line()
    );
    Ok(json!({
        "mode": "doc-replay", "trace": source.name, "edits": n, "window": window,
        "watchers": watchers, "watchers_done": watchers_done,
        "seconds": round(seconds), "edits_per_s": round(rate),
        "echoed": echoed, "ack": ack.json(),
        "end_rev": end.rev, "end_matches": matches,
        "bytes_per_edit": round((traffic.read + traffic.written) as f64 / n as f64),
        "server_cpu_us_per_edit": per_edit_us,
        "writer_cpu_us_per_edit": writer_s.map(|w| round(w * 1e6 / n as f64)),
        "usage": usage.json(),
    }))
}

/// The document writer thread's CPU seconds so far, if the server has one.
pub fn writer_cpu(env: &Env) -> Option<f64> {
    env.monitor
        .server_pid
        .as_deref()
        .and_then(|pid| thread_cpu_seconds(pid, "doc-writer"))
}

// ---------------------------------------------------------------------------
// doc idle
// ---------------------------------------------------------------------------

/// `n` idle connections of one kind to one log; the server's memory per
/// connection. Use a freshly started server for each measurement: memory a
/// process freed is not always given back to the system.
async fn idle(env: &Env, kind: IdleKind, topic: Topic, n: usize) -> Result<Value, String> {
    let Some(pid) = env.monitor.server_pid.clone() else {
        return Err("doc idle needs --server-pid".into());
    };
    let since = match topic {
        Topic::Doc => get_doc(&env.target).await?.rev,
        Topic::Chat => crate::browsers::latest_id(&env.target).await?,
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0 = env.monitor.rss_now().unwrap_or(0);
    let anon0 = anonymous_kib(&pid).unwrap_or(0);
    let meter = Arc::new(Meter::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let ready = Arc::new(AtomicU64::new(0));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = JoinSet::new();
    let t = tokio::time::Instant::now();
    for _ in 0..n {
        let (target, meter, gate, ready, mut stop_rx) = (
            env.target.clone(),
            Arc::clone(&meter),
            Arc::clone(&gate),
            Arc::clone(&ready),
            stop_rx.clone(),
        );
        let headers = env.headers;
        tasks.spawn(async move {
            let permit = gate.acquire_owned().await.ok()?;
            match kind {
                IdleKind::Ws => {
                    let path = match topic {
                        Topic::Doc => format!("/api/doc/ws?since={since}"),
                        Topic::Chat => format!("/api/ws?since={since}"),
                    };
                    let config = WebSocketConfig::default()
                        .read_buffer_size(4096)
                        .write_buffer_size(0);
                    let mut ws = ws_open(&target, &meter, &path, headers, config)
                        .await
                        .ok()?;
                    // The welcome says the server has set the socket up.
                    let _ = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
                    drop(permit);
                    ready.fetch_add(1, Relaxed);
                    tokio::select! {
                        _ = stop_rx.wait_for(|s| *s) => {}
                        _ = async { while let Some(Ok(_)) = ws.next().await {} } => {}
                    }
                }
                IdleKind::Longpoll => {
                    let path = match topic {
                        Topic::Doc => format!("/api/doc/longpoll?since={since}&timeout=55"),
                        Topic::Chat => format!("/api/longpoll?since={since}&timeout=55"),
                    };
                    let mut conn = HttpConn::open(&target, &meter).await.ok()?;
                    let req = request("GET", &target, &path, headers, "", None);
                    conn.send(&req).await.ok()?;
                    drop(permit);
                    ready.fetch_add(1, Relaxed);
                    tokio::select! {
                        _ = stop_rx.wait_for(|s| *s) => {}
                        _ = conn.read_head() => {}
                    }
                }
            }
            Some(())
        });
    }
    let patience = Duration::from_secs(30 + n as u64 / 100);
    while (ready.load(Relaxed) as usize) < n && t.elapsed() < patience {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_s = t.elapsed().as_secs_f64();
    // Let the server finish setting every connection up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = env.monitor.rss_now().unwrap_or(0);
    let anon1 = anonymous_kib(&pid).unwrap_or(0);
    let open = ready.load(Relaxed);
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    let per = |a: u64, b: u64| round((b as f64 - a as f64) / open.max(1) as f64);
    let (kind_name, topic_name) = (
        match kind {
            IdleKind::Ws => "ws",
            IdleKind::Longpoll => "longpoll",
        },
        match topic {
            Topic::Doc => "doc",
            Topic::Chat => "chat",
        },
    );
    println!(
        "\ndoc idle {topic_name} {kind_name} ×{n}: {open} open in {connect_s:.1} s; RSS {:.1} → {:.1} MiB: {:.2} KiB per connection (anonymous memory {:.2} KiB)",
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        per(rss0, rss1),
        per(anon0, anon1)
    );
    Ok(json!({
        "mode": "doc-idle", "kind": kind_name, "topic": topic_name, "clients": n,
        "connected": open, "rss_before_kib": rss0, "rss_after_kib": rss1,
        "kib_per_connection": per(rss0, rss1), "anon_kib_per_connection": per(anon0, anon1),
        "connect_s": round(connect_s),
    }))
}

/// Anonymous memory of a process in KiB (`/proc/<pid>/smaps_rollup`):
/// heap and stacks, without the mapped binary.
fn anonymous_kib(pid: &str) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Anonymous:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
