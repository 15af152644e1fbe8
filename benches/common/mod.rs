//! Shared by the criterion benches (`strategies.rs`, `room.rs`,
//! `fanout.rs`): the real server started in-process, one small real client
//! per transport, a tracker that says when every client has the newest
//! message, and a table printer that reads criterion's estimates back.
//!
//! Every wait is bounded by [`PATIENCE`]: a bench that hangs fails with a
//! message instead of hanging `cargo bench`.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use weebsockets::message::Via;
use weebsockets::{Config, Running};

/// Longest any single wait in a bench may take before the bench fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often the polling clients ask (setInterval's period, setTimeout's
/// pause after each answer). The lesson's classroom numbers — polls every
/// second, a message every two seconds — run here 100 times faster.
pub const POLL_EVERY: Duration = Duration::from_millis(10);

/// Requests one setInterval client may have in flight at once; more wait
/// their turn, as in a browser (six HTTP/1.1 connections per origin).
pub const BROWSER_CONNECTIONS: usize = 6;

/// The runtime the clients (and the in-process room benches) run on: two
/// worker threads, like the machine's two cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The real server on 127.0.0.1 with an ephemeral port: in-memory store,
/// two workers, every limit lifted (`no_limits`), quick shutdown.
pub fn start_server() -> Running {
    let mut config = Config::for_tests();
    config.no_limits = true;
    config.shutdown_timeout_s = 1;
    weebsockets::start(config).expect("server starts")
}

/// Raises this process's open-file limit to its hard limit (1,000 WebSocket
/// clients plus the server's side of them need more than the usual 1,024).
pub fn raise_fd_limit() -> u64 {
    weebsockets::raise_open_files_limit()
}

/// `fut`, or a panic naming `what` after [`PATIENCE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(value) => value,
        Err(_) => panic!("bench timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// Knows when every one of `clients` clients has received message `target`.
///
/// Each client keeps a cursor (the highest id it has received; ids have no
/// gaps and every transport delivers in order from the cursor, so "cursor
/// ≥ target" means "has everything up to target"). When a cursor crosses
/// the target, the client counts itself; the last one wakes the bench.
pub struct Tracker {
    clients: usize,
    target: AtomicU64,
    reached: AtomicUsize,
    done: Notify,
}

impl Tracker {
    pub fn new(clients: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            clients,
            target: AtomicU64::new(u64::MAX),
            reached: AtomicUsize::new(0),
            done: Notify::new(),
        })
    }

    /// Sets the id every client must reach. Call before posting it.
    pub fn arm(&self, target: u64) {
        self.reached.store(0, SeqCst);
        self.target.store(target, SeqCst);
    }

    /// A client's cursor moved from `old` to `new`.
    pub fn advanced(&self, old: u64, new: u64) {
        let target = self.target.load(SeqCst);
        if old < target && new >= target && self.reached.fetch_add(1, SeqCst) + 1 == self.clients {
            self.done.notify_one();
        }
    }

    /// Waits until every client has reached the target.
    pub async fn wait(&self, what: &str) {
        let reached = &self.reached;
        let clients = self.clients;
        within(what, async {
            while reached.load(SeqCst) < clients {
                self.done.notified().await;
            }
        })
        .await;
    }
}

/// Counts `n` events (say, "this task is now waiting") and wakes one
/// waiter when all have happened.
pub struct Countdown {
    n: usize,
    seen: AtomicUsize,
    all: Notify,
}

impl Countdown {
    pub fn new(n: usize) -> Arc<Countdown> {
        Arc::new(Countdown {
            n,
            seen: AtomicUsize::new(0),
            all: Notify::new(),
        })
    }

    /// One more event.
    pub fn count(&self) {
        if self.seen.fetch_add(1, SeqCst) + 1 == self.n {
            self.all.notify_one();
        }
    }

    /// Waits until all `n` events have happened.
    pub async fn wait(&self, what: &str) {
        within(what, async {
            while self.seen.load(SeqCst) < self.n {
                self.all.notified().await;
            }
        })
        .await;
    }
}

/// A cursor shared by the requests of one client (setInterval's requests
/// overlap, so they race to move it).
#[derive(Default)]
pub struct Cursor(AtomicU64);

impl Cursor {
    pub fn new(start: u64) -> Arc<Cursor> {
        Arc::new(Cursor(AtomicU64::new(start)))
    }
    pub fn get(&self) -> u64 {
        self.0.load(SeqCst)
    }
    /// Moves the cursor forward to `id` (never back) and tells the tracker.
    pub fn advance(&self, id: u64, tracker: &Tracker) {
        let old = self.0.fetch_max(id, SeqCst);
        if id > old {
            tracker.advanced(old, id);
        }
    }
}

/// Just the ids of a `{"messages":[…],"last_id":N}` answer.
#[derive(Deserialize)]
struct Page {
    messages: Vec<IdOnly>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

/// Just the type and message id of a WebSocket frame.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    message: Option<IdOnly>,
}

/// The five ways to read the room: the server's own [`Via`], less `Api`
/// (which is how a message was *sent*, not a way to follow the room).
pub const STRATEGIES: [Via; 5] = [
    Via::Interval,
    Via::Timeout,
    Via::Longpoll,
    Via::Websocket,
    Via::Sse,
];

/// An HTTP client for benches: keep-alive, HTTP/1.1, no proxy, a timeout
/// longer than any long-poll hold.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// Starts one client of `strategy` (number `n`), reading from `since` on,
/// reporting its progress to `tracker`. Abort the handle to stop it.
pub fn spawn_client(
    strategy: Via,
    server: &Running,
    http: &reqwest::Client,
    tracker: &Arc<Tracker>,
    n: usize,
    since: u64,
) -> JoinHandle<()> {
    let base = server.url("");
    let ws_url = server.ws_url("");
    let http = http.clone();
    let tracker = Arc::clone(tracker);
    let cursor = Cursor::new(since);
    match strategy {
        Via::Interval => tokio::spawn(interval_client(base, http, tracker, cursor, n)),
        Via::Timeout => tokio::spawn(timeout_client(base, http, tracker, cursor, n)),
        Via::Longpoll => tokio::spawn(longpoll_client(base, http, tracker, cursor, n)),
        Via::Websocket => tokio::spawn(websocket_client(ws_url, tracker, cursor)),
        Via::Sse => tokio::spawn(sse_client(base, http, tracker, cursor)),
        Via::Api => panic!("`api` is not a way to read the room"),
    }
}

/// Starts `clients` clients of `strategy` reading from the poster's next
/// message on, then posts a warm-up message and waits until every one of
/// them has it: once this returns, all are connected (or polling).
pub async fn connect_all(
    strategy: Via,
    clients: usize,
    server: &Running,
    http: &reqwest::Client,
    poster: &mut Poster,
    tracker: &Arc<Tracker>,
) -> Vec<JoinHandle<()>> {
    let since = poster.next_id - 1;
    let tasks = (0..clients)
        .map(|n| spawn_client(strategy, server, http, tracker, n, since))
        .collect();
    tracker.arm(poster.next_id);
    poster.post("warm-up: is everybody here?").await;
    tracker.wait("every client to connect").await;
    tasks
}

/// One `GET /api/messages` (or `/api/longpoll`); moves the cursor.
async fn poll_once(http: &reqwest::Client, url: String, tracker: &Tracker, cursor: &Cursor) {
    let response = http.get(&url).send().await.expect("poll answered");
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("poll body");
    match status {
        200 => {
            let page: Page = serde_json::from_slice(&body).expect("a page of messages");
            if let Some(last) = page.messages.last() {
                cursor.advance(last.id, tracker);
            }
        }
        // A long poll that held its full time with no news.
        204 => {}
        other => panic!("{url} answered {other}: {}", String::from_utf8_lossy(&body)),
    }
}

/// setInterval: a request every [`POLL_EVERY`] on a fixed schedule, whether
/// or not the previous ones have answered (at most
/// [`BROWSER_CONNECTIONS`] in flight; the rest queue, like in a browser).
/// Unlike the lesson's naive page it keeps the highest id it has seen, so it
/// never goes back; it is the *cost* we measure here, not the bugs.
async fn interval_client(
    base: String,
    http: reqwest::Client,
    tracker: Arc<Tracker>,
    cursor: Arc<Cursor>,
    n: usize,
) {
    // Spread the clients' phases over one period, as real tabs would be.
    tokio::time::sleep(POLL_EVERY.mul_f64((n % 97) as f64 / 97.0)).await;
    let slots = Arc::new(Semaphore::new(BROWSER_CONNECTIONS));
    let mut ticks = tokio::time::interval(POLL_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Dropping the set (when this task is aborted) aborts every request.
    let mut requests = JoinSet::new();
    for seq in 0u64.. {
        ticks.tick().await;
        while requests.try_join_next().is_some() {}
        let url = format!(
            "{base}/api/messages?since={}&transport=interval&client=b{n}&seq={seq}",
            cursor.get()
        );
        let (http, tracker, cursor, slots) = (
            http.clone(),
            Arc::clone(&tracker),
            Arc::clone(&cursor),
            Arc::clone(&slots),
        );
        requests.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore open");
            poll_once(&http, url, &tracker, &cursor).await;
        });
    }
}

/// setTimeout: ask, wait for the answer, pause [`POLL_EVERY`], ask again.
async fn timeout_client(
    base: String,
    http: reqwest::Client,
    tracker: Arc<Tracker>,
    cursor: Arc<Cursor>,
    n: usize,
) {
    tokio::time::sleep(POLL_EVERY.mul_f64((n % 97) as f64 / 97.0)).await;
    for seq in 0u64.. {
        let url = format!(
            "{base}/api/messages?since={}&transport=timeout&client=b{n}&seq={seq}",
            cursor.get()
        );
        poll_once(&http, url, &tracker, &cursor).await;
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Long polling: ask again at once after every answer; the server holds
/// each request until there is news (or 25 s pass: a `204`).
async fn longpoll_client(
    base: String,
    http: reqwest::Client,
    tracker: Arc<Tracker>,
    cursor: Arc<Cursor>,
    n: usize,
) {
    loop {
        let url = format!(
            "{base}/api/longpoll?since={}&timeout=25&client=b{n}",
            cursor.get()
        );
        poll_once(&http, url, &tracker, &cursor).await;
    }
}

/// WebSocket: one upgrade, then message frames as they are appended.
async fn websocket_client(ws_base: String, tracker: Arc<Tracker>, cursor: Arc<Cursor>) {
    let url = format!("{ws_base}/api/ws?since={}", cursor.get());
    let (mut stream, _) = within("a WebSocket upgrade", tokio_tungstenite::connect_async(url))
        .await
        .expect("WebSocket upgrade");
    while let Some(frame) = stream.next().await {
        // tungstenite answers pings by itself as long as we keep reading.
        match frame.expect("a valid frame") {
            WsMessage::Text(text) => {
                let frame: Frame = serde_json::from_str(&text).expect("a JSON frame");
                if let ("message", Some(message)) = (frame.kind.as_str(), frame.message) {
                    cursor.advance(message.id, &tracker);
                }
            }
            WsMessage::Close(_) => return,
            _ => {}
        }
    }
}

/// Server-Sent Events: one endless response; each event's `id:` line is
/// the message id.
async fn sse_client(
    base: String,
    http: reqwest::Client,
    tracker: Arc<Tracker>,
    cursor: Arc<Cursor>,
) {
    let url = format!("{base}/api/events?since={}", cursor.get());
    let mut response = within(
        "an event stream",
        http.get(url).timeout(Duration::from_secs(3600)).send(),
    )
    .await
    .expect("event stream opens");
    assert_eq!(response.status(), 200);
    let mut buffer = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("event stream readable") {
        buffer.extend_from_slice(&chunk);
        // Handle every complete line; keep a partial one for the next chunk.
        let mut start = 0;
        while let Some(end) = buffer[start..].iter().position(|&b| b == b'\n') {
            let line = &buffer[start..start + end];
            if let Some(id) = line.strip_prefix(b"id: ") {
                let id = std::str::from_utf8(id).expect("ASCII id");
                cursor.advance(id.trim().parse().expect("numeric id"), &tracker);
            }
            start += end + 1;
        }
        buffer.drain(..start);
    }
}

/// Posts messages as one sender would (`POST /api/messages`, keep-alive)
/// and checks that the ids come back in order, with no gaps.
pub struct Poster {
    http: reqwest::Client,
    url: String,
    /// The id the next post must get.
    pub next_id: u64,
}

impl Poster {
    pub async fn new(server: &Running, http: &reqwest::Client) -> Poster {
        let last = stats(http, server).await["room"]["last_id"]
            .as_u64()
            .expect("room.last_id");
        Poster {
            http: http.clone(),
            url: server.url("/api/messages"),
            next_id: last + 1,
        }
    }

    /// Posts one message; returns its id.
    pub async fn post(&mut self, text: &str) -> u64 {
        let response = within(
            "a POST to be stored",
            self.http
                .post(&self.url)
                .json(&json!({"author": "bench", "text": text}))
                .send(),
        )
        .await
        .expect("POST answered");
        assert_eq!(response.status(), 201, "POST /api/messages");
        let body: Value = response.json().await.expect("stored message");
        let id = body["id"].as_u64().expect("an id");
        assert_eq!(id, self.next_id, "only the bench posts, so ids are ours");
        self.next_id += 1;
        id
    }
}

/// `GET /api/stats` as JSON.
pub async fn stats(http: &reqwest::Client, server: &Running) -> Value {
    within("GET /api/stats", http.get(server.url("/api/stats")).send())
        .await
        .expect("stats answered")
        .json()
        .await
        .expect("stats JSON")
}

/// One statistic read back from criterion's `estimates.json`: the point
/// estimate and its confidence interval, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    pub point: f64,
    pub low: f64,
    pub high: f64,
}

static STARTED: OnceLock<SystemTime> = OnceLock::new();

/// Remembers when this bench process started, so that the tables at the
/// end show only what this run measured. Call first thing in `main`.
pub fn mark_start() {
    STARTED.get_or_init(SystemTime::now);
}

/// Criterion's median estimate for `id` (e.g. `"longpoll/clients/10"`),
/// written by this run; `None` when criterion wrote nothing (a filtered-out
/// bench, or `cargo bench -- --test`).
pub fn criterion_median(id: &str) -> Option<Estimate> {
    let home = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("criterion"))
        })
        .or_else(|| {
            // target/release/deps/<bench> → target/criterion
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.join("criterion"))
        })?;
    let file = home.join(id).join("new/estimates.json");
    let written = std::fs::metadata(&file).ok()?.modified().ok()?;
    if written < *STARTED.get_or_init(SystemTime::now) {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    let json: Value = serde_json::from_str(&text).ok()?;
    let median = &json["median"];
    Some(Estimate {
        point: median["point_estimate"].as_f64()?,
        low: median["confidence_interval"]["lower_bound"].as_f64()?,
        high: median["confidence_interval"]["upper_bound"].as_f64()?,
    })
}

/// Nanoseconds as a short human figure (`1.23 ms`, `456 µs`, `78.9 ns`).
pub fn human(ns: f64) -> String {
    let (value, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let digits = if value >= 100.0 {
        1
    } else if value >= 10.0 {
        2
    } else {
        3
    };
    format!("{value:.digits$} {unit}")
}

/// `median [low – high]` for a table cell, or `—`.
pub fn median_cell(estimate: Option<Estimate>) -> String {
    match estimate {
        Some(e) => format!("{} [{} – {}]", human(e.point), human(e.low), human(e.high)),
        None => "— (no estimate: test mode?)".into(),
    }
}

/// Renders a Markdown table.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| " --- |").collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// Prints this run's criterion medians of `ids` as a Markdown table under
/// `title` (nothing when criterion ran in test mode and left no estimates).
pub fn print_medians(title: &str, column: &str, ids: &[&str]) {
    let rows: Vec<Vec<String>> = ids
        .iter()
        .filter_map(|id| {
            let estimate = criterion_median(id)?;
            Some(vec![format!("`{id}`"), median_cell(Some(estimate))])
        })
        .collect();
    if !rows.is_empty() {
        println!("\n{title} (criterion medians of this run):\n");
        print!("{}", markdown(&["benchmark", column], &rows));
    }
}
