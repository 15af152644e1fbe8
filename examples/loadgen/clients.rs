//! The five simulated browsers, one async task each, written the way the
//! project's pages behave (`assets/js/transports/*.js`):
//!
//! - **interval** — `setInterval`: a request every `interval` ms on the
//!   clock, whether or not the previous answer came back. Requests overlap
//!   (up to six connections, like a browser's per-host limit; more wait
//!   their turn) and the cursor is the *naive* one: `since = last_id` of
//!   whichever answer arrived last, so an overtaken answer can move it
//!   back and messages arrive twice or out of order.
//! - **timeout** — `setTimeout`: the next request `interval` ms after the
//!   answer; one connection; careful cursor (the highest id received).
//! - **longpoll** — ask, the server holds the request until there is news
//!   (or `hold` seconds), ask again at once.
//! - **websocket** — one upgrade, then frames.
//! - **sse** — one streaming `GET`, then events; reconnects with
//!   `Last-Event-ID` like `EventSource`.
//!
//! Every client stops when the `stop` signal flips, and gives back its
//! [`Tally`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::measure::now_us;
use crate::tally::{Frame, Msg, Page, Tally};
use crate::wire::{Headers, HttpConn, Meter, Target, request, roundtrip_retry};

/// The five ways a page can follow the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    Interval,
    Timeout,
    Longpoll,
    Websocket,
    Sse,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Interval,
        Strategy::Timeout,
        Strategy::Longpoll,
        Strategy::Websocket,
        Strategy::Sse,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Interval => "interval",
            Strategy::Timeout => "timeout",
            Strategy::Longpoll => "longpoll",
            Strategy::Websocket => "websocket",
            Strategy::Sse => "sse",
        }
    }
}

/// A browser's connections per host (HTTP/1.1): how far setInterval's
/// requests can overlap before the browser queues them.
const BROWSER_CONNECTIONS: usize = 6;
/// Requests one interval client may have queued or in flight; beyond it a
/// tick is skipped (a real tab would queue without bound).
const MAX_QUEUED: usize = 64;
/// The pages give up on an ordinary request after this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause after a failed request or a dropped stream before trying again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// What every client of one run shares.
pub struct Ctx {
    pub target: Target,
    pub meter: Arc<Meter>,
    pub headers: Headers,
    pub run: Arc<str>,
    /// Cursor every client starts from.
    pub since: u64,
    /// Posted-at window whose messages are timed and counted.
    pub window: (u64, u64),
    /// Poll interval (interval, timeout).
    pub interval: Duration,
    /// Long-poll hold asked for, seconds.
    pub hold_s: u64,
    /// Whether polls carry `client=<id>` like the pages' requests.
    pub client_ids: bool,
    /// Limits how many clients connect at once; a client gives its permit
    /// back once it is connected (so 10,000 clients do not overflow the
    /// server's accept queue).
    pub connecting: Arc<Semaphore>,
    /// Clients that are connected (WebSocket welcomed, SSE answered, long
    /// poll sent, first poll answered).
    pub ready: AtomicUsize,
}

/// One client's identity and its links to the coordinator.
pub struct Seat {
    pub ctx: Arc<Ctx>,
    /// Number of the client, for its `client=` id.
    pub n: usize,
    pub stop: watch::Receiver<bool>,
    /// Where the client publishes its highest id.
    pub high: Arc<AtomicU64>,
}

impl Seat {
    fn tally(&self) -> Tally {
        let ctx = &self.ctx;
        Tally::new(
            Arc::clone(&ctx.run),
            ctx.since,
            ctx.window,
            Arc::clone(&self.high),
        )
    }

    async fn stopped(&mut self) {
        // An error means the coordinator is gone: stop as well.
        let _ = self.stop.wait_for(|stop| *stop).await;
    }

    async fn connect_permit(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.ctx.connecting).acquire_owned().await.ok()
    }

    /// `&client=<id>`, the per-tab id the pages send (empty with
    /// `--no-client-id`).
    fn client_param(&self) -> String {
        if self.ctx.client_ids {
            format!("&client=lg{}-{}", self.ctx.run, self.n)
        } else {
            String::new()
        }
    }
}

/// Runs one client of `strategy` until stopped.
pub async fn run(strategy: Strategy, seat: Seat) -> Tally {
    match strategy {
        Strategy::Interval => interval(seat).await,
        Strategy::Timeout => timeout(seat).await,
        Strategy::Longpoll => longpoll(seat).await,
        Strategy::Websocket => websocket(seat).await,
        Strategy::Sse => sse(seat).await,
    }
}

/// A random start offset within one interval: the class did not open its
/// tabs in the same millisecond.
fn stagger(interval: Duration) -> Duration {
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(rand::random_range(0..ms))
}

/// Parses a polling answer and records its messages. Returns it.
fn take_page(ctx: &Ctx, body: &[u8], tally: &mut Tally) -> Option<Page> {
    let now = now_us();
    let page: Page = match serde_json::from_slice(body) {
        Ok(page) => page,
        Err(_) => {
            Meter::add(&ctx.meter.errors, 1);
            return None;
        }
    };
    if page.messages.is_empty() {
        Meter::add(&ctx.meter.empty, 1);
    }
    for m in &page.messages {
        tally.record(m, now);
    }
    Some(page)
}

// ----- interval ------------------------------------------------------------

struct IntervalState {
    since: u64,
    tally: Tally,
}

async fn interval(mut seat: Seat) -> Tally {
    let ctx = Arc::clone(&seat.ctx);
    let state = Arc::new(Mutex::new(IntervalState {
        since: ctx.since,
        tally: seat.tally(),
    }));
    let idle: Arc<Mutex<Vec<HttpConn>>> = Arc::default();
    let slots = Arc::new(Semaphore::new(BROWSER_CONNECTIONS));
    let mut inflight = JoinSet::new();
    let mut permit = seat.connect_permit().await;
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + stagger(ctx.interval),
        ctx.interval,
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = seat.stopped() => break,
            _ = tick.tick() => {
                if inflight.len() >= MAX_QUEUED {
                    continue;
                }
                seq += 1;
                // unwrap: no code holding this lock panics.
                let since = state.lock().unwrap().since;
                let path = format!(
                    "/api/messages?since={since}&transport=interval&seq={seq}{}",
                    seat.client_param()
                );
                inflight.spawn(interval_poll(
                    Arc::clone(&ctx),
                    Arc::clone(&state),
                    Arc::clone(&idle),
                    Arc::clone(&slots),
                    path,
                ));
            }
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {
                if permit.take().is_some() {
                    ctx.ready.fetch_add(1, Relaxed);
                }
            }
        }
    }
    inflight.abort_all();
    // unwrap: as above.
    std::mem::take(&mut state.lock().unwrap().tally)
}

async fn interval_poll(
    ctx: Arc<Ctx>,
    state: Arc<Mutex<IntervalState>>,
    idle: Arc<Mutex<Vec<HttpConn>>>,
    slots: Arc<Semaphore>,
    path: String,
) {
    // Wait for one of the browser's connections to this host.
    let Ok(_slot) = slots.acquire_owned().await else {
        return;
    };
    // unwrap: no code holding this lock panics.
    let mut conn = idle.lock().unwrap().pop();
    let req = request("GET", &ctx.target, &path, ctx.headers, "", None);
    Meter::add(&ctx.meter.requests, 1);
    let sent = now_us();
    let result = tokio::time::timeout(
        REQUEST_TIMEOUT,
        roundtrip_retry(&mut conn, &ctx.target, &ctx.meter, &req),
    )
    .await;
    match result {
        Ok(Ok(response)) if response.status == 200 => {
            Meter::add(&ctx.meter.answers, 1);
            let now = now_us();
            // unwrap: as above.
            let mut state = state.lock().unwrap();
            if let Some(page) = take_page(&ctx, &response.body, &mut state.tally) {
                // The naive cursor: trust whichever answer arrived last.
                state.since = page.last_id;
            }
            if state.tally.in_window(now) {
                state.tally.rtt_us.push(now - sent);
            }
        }
        _ => {
            Meter::add(&ctx.meter.errors, 1);
            conn = None;
        }
    }
    if let Some(conn) = conn {
        // unwrap: as above.
        idle.lock().unwrap().push(conn);
    }
}

// ----- timeout -------------------------------------------------------------

async fn timeout(mut seat: Seat) -> Tally {
    let ctx = Arc::clone(&seat.ctx);
    let mut tally = seat.tally();
    let mut since = ctx.since;
    let mut conn: Option<HttpConn> = None;
    let mut permit = seat.connect_permit().await;
    let mut pause = stagger(ctx.interval);
    for seq in 1u64.. {
        tokio::select! {
            _ = seat.stopped() => break,
            _ = tokio::time::sleep(pause) => {}
        }
        let path = format!(
            "/api/messages?since={since}&transport=timeout&seq={seq}{}",
            seat.client_param()
        );
        let req = request("GET", &ctx.target, &path, ctx.headers, "", None);
        Meter::add(&ctx.meter.requests, 1);
        let sent = now_us();
        let result = tokio::select! {
            _ = seat.stopped() => break,
            r = tokio::time::timeout(REQUEST_TIMEOUT, roundtrip_retry(&mut conn, &ctx.target, &ctx.meter, &req)) => r,
        };
        // ▶ the difference from interval: the next request is planned only
        // now that the answer is here.
        pause = ctx.interval;
        match result {
            Ok(Ok(response)) if response.status == 200 => {
                Meter::add(&ctx.meter.answers, 1);
                let now = now_us();
                if tally.in_window(now) {
                    tally.rtt_us.push(now - sent);
                }
                if let Some(page) = take_page(&ctx, &response.body, &mut tally)
                    && let Some(last) = page.messages.last()
                {
                    since = since.max(last.id);
                }
                if permit.take().is_some() {
                    ctx.ready.fetch_add(1, Relaxed);
                }
            }
            _ => {
                Meter::add(&ctx.meter.errors, 1);
                conn = None;
                pause = pause.max(RETRY_PAUSE);
            }
        }
    }
    tally
}

// ----- long polling --------------------------------------------------------

async fn longpoll(mut seat: Seat) -> Tally {
    let ctx = Arc::clone(&seat.ctx);
    let mut tally = seat.tally();
    let mut since = ctx.since;
    let mut conn: Option<HttpConn> = None;
    let mut permit = seat.connect_permit().await;
    loop {
        let path = format!(
            "/api/longpoll?since={since}&timeout={}{}",
            ctx.hold_s,
            seat.client_param()
        );
        let req = request("GET", &ctx.target, &path, ctx.headers, "", None);
        let patience = Duration::from_secs(ctx.hold_s) + REQUEST_TIMEOUT;
        let result = tokio::select! {
            _ = seat.stopped() => break,
            r = tokio::time::timeout(patience, held_poll(&ctx, &mut conn, &req, &mut permit)) => r,
        };
        match result {
            Ok(Ok(response)) if response.status == 200 => {
                Meter::add(&ctx.meter.answers, 1);
                if let Some(page) = take_page(&ctx, &response.body, &mut tally)
                    && let Some(last) = page.messages.last()
                {
                    since = since.max(last.id);
                }
            }
            Ok(Ok(response)) if response.status == 204 => {
                // Nothing within the hold: ask again with the same cursor.
                Meter::add(&ctx.meter.answers, 1);
                Meter::add(&ctx.meter.empty, 1);
            }
            _ => {
                Meter::add(&ctx.meter.errors, 1);
                conn = None;
                tokio::select! {
                    _ = seat.stopped() => break,
                    _ = tokio::time::sleep(RETRY_PAUSE) => {}
                }
            }
        }
    }
    tally
}

/// One long poll on a keep-alive connection. Counts as "ready" once the
/// request is written (the server then holds it).
async fn held_poll(
    ctx: &Ctx,
    conn: &mut Option<HttpConn>,
    req: &[u8],
    permit: &mut Option<OwnedSemaphorePermit>,
) -> std::io::Result<crate::wire::Response> {
    Meter::add(&ctx.meter.requests, 1);
    if permit.is_none() {
        return roundtrip_retry(conn, &ctx.target, &ctx.meter, req).await;
    }
    // First poll: open the connection, send, then let the next client
    // connect while this one waits.
    let mut fresh = HttpConn::open(&ctx.target, &ctx.meter).await?;
    fresh.send(req).await?;
    permit.take();
    ctx.ready.fetch_add(1, Relaxed);
    let head = fresh.read_head().await?;
    let body = fresh.read_body(&head).await?;
    fresh.used += 1;
    if !head.close {
        *conn = Some(fresh);
    }
    Ok(crate::wire::Response {
        status: head.status,
        body,
    })
}

// ----- WebSocket -----------------------------------------------------------

async fn websocket(mut seat: Seat) -> Tally {
    let ctx = Arc::clone(&seat.ctx);
    let mut tally = seat.tally();
    let mut permit = seat.connect_permit().await;
    // Small buffers: the frames here are a few hundred bytes, and 10,000
    // clients with tungstenite's default 128 KiB read buffer would spend
    // over a gigabyte on nothing.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    loop {
        let url = format!("ws://{}/api/ws?since={}", ctx.target.host, tally.high());
        let connected = tokio::select! {
            _ = seat.stopped() => break,
            c = ws_connect(&ctx, &url, config) => c,
        };
        let mut ws = match connected {
            Ok(ws) => ws,
            Err(_) => {
                Meter::add(&ctx.meter.errors, 1);
                tokio::select! {
                    _ = seat.stopped() => break,
                    _ = tokio::time::sleep(RETRY_PAUSE) => continue,
                }
            }
        };
        loop {
            let frame = tokio::select! {
                _ = seat.stopped() => return tally,
                frame = ws.next() => frame,
            };
            match frame {
                Some(Ok(WsMessage::Text(text))) => {
                    let now = now_us();
                    match serde_json::from_str::<Frame>(&text) {
                        Ok(Frame {
                            message: Some(m), ..
                        }) => {
                            tally.record(&m, now);
                        }
                        Ok(frame) if frame.kind == "welcome" => {
                            if permit.take().is_some() {
                                ctx.ready.fetch_add(1, Relaxed);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => Meter::add(&ctx.meter.errors, 1),
                    }
                }
                // Pings are answered by tungstenite inside next().
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    Meter::add(&ctx.meter.errors, 1);
                    break;
                }
            }
        }
    }
    tally
}

type Ws = tokio_tungstenite::WebSocketStream<crate::wire::Counted<tokio::net::TcpStream>>;

async fn ws_connect(ctx: &Ctx, url: &str, config: WebSocketConfig) -> Result<Ws, String> {
    let stream = ctx
        .target
        .connect(&ctx.meter)
        .await
        .map_err(|e| e.to_string())?;
    let mut req = url.into_client_request().map_err(|e| e.to_string())?;
    if ctx.headers == Headers::Browser {
        // A browser's upgrade carries its page's Origin and User-Agent.
        let headers = req.headers_mut();
        let origin = format!("http://{}", ctx.target.host);
        if let Ok(origin) = origin.parse() {
            headers.insert("Origin", origin);
        }
        headers.insert(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
                .parse()
                .map_err(|_| "bad header")?,
        );
    }
    Meter::add(&ctx.meter.requests, 1);
    let (ws, _response) = tokio::time::timeout(
        crate::wire::CONNECT_TIMEOUT,
        tokio_tungstenite::client_async_with_config(req, stream, Some(config)),
    )
    .await
    .map_err(|_| "upgrade timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    Meter::add(&ctx.meter.answers, 1);
    Ok(ws)
}

// ----- Server-Sent Events --------------------------------------------------

async fn sse(mut seat: Seat) -> Tally {
    let ctx = Arc::clone(&seat.ctx);
    let mut tally = seat.tally();
    let mut permit = seat.connect_permit().await;
    let mut reconnect = false;
    loop {
        let ended = tokio::select! {
            _ = seat.stopped() => break,
            r = sse_stream(&ctx, &mut tally, &mut permit, reconnect) => r,
        };
        let _ = ended;
        Meter::add(&ctx.meter.errors, 1);
        reconnect = true;
        tokio::select! {
            _ = seat.stopped() => break,
            _ = tokio::time::sleep(RETRY_PAUSE) => {}
        }
    }
    tally
}

/// One event stream, until it ends or fails.
async fn sse_stream(
    ctx: &Ctx,
    tally: &mut Tally,
    permit: &mut Option<OwnedSemaphorePermit>,
    reconnect: bool,
) -> std::io::Result<()> {
    let mut conn = HttpConn::open(&ctx.target, &ctx.meter).await?;
    let path = format!("/api/events?since={}", ctx.since);
    // EventSource resumes with the last id it saw.
    let resume = if reconnect {
        format!("Last-Event-ID: {}\r\n", tally.high())
    } else {
        String::new()
    };
    let extra = format!("Accept: text/event-stream\r\nCache-Control: no-cache\r\n{resume}");
    let req = request("GET", &ctx.target, &path, ctx.headers, &extra, None);
    Meter::add(&ctx.meter.requests, 1);
    conn.send(&req).await?;
    let head = conn.read_head().await?;
    if head.status != 200 {
        return Err(std::io::Error::other(format!("status {}", head.status)));
    }
    Meter::add(&ctx.meter.answers, 1);
    if permit.take().is_some() {
        ctx.ready.fetch_add(1, Relaxed);
    }
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
        while let Some(end) = text.find("\n\n") {
            let now = now_us();
            if let Some(data) = message_data(&text[..end])
                && let Ok(m) = serde_json::from_str::<Msg>(data)
            {
                tally.record(&m, now);
            }
            text.drain(..end + 2);
        }
    }
}

/// The `data:` of an SSE event block whose `event:` is `message`.
fn message_data(block: &str) -> Option<&str> {
    event_data(block, "message")
}

/// The `data:` of an SSE event block whose `event:` is `event` (the chat's
/// `message`, the document's `op`); `None` for other blocks (a keep-alive
/// comment, a `retry:`).
pub fn event_data<'a>(block: &'a str, event: &str) -> Option<&'a str> {
    let mut is_it = false;
    let mut data = None;
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            is_it = value.trim() == event;
        } else if let Some(value) = line.strip_prefix("data:") {
            data = Some(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    data.filter(|_| is_it)
}
