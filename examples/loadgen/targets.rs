//! The raw targets: how fast the server does one thing, with nothing else
//! going on.
//!
//! - `posts`: N connections post as fast as they are answered (closed
//!   loop): acknowledged messages per second and acknowledgement latency.
//! - `empty-polls`: N keep-alive connections ask `since=<newest>` as fast
//!   as they are answered: the cost of polling's empty answers.
//! - `fanout`: N push clients (WebSocket, SSE or held long polls) connect
//!   and idle, then M messages are posted at R/s: how long until every
//!   client has each message, and whether any is lost.
//! - `idle-memory`: N idle connections of one kind: the server's resident
//!   memory per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::browsers::{collect, latest_id, send};
use crate::clients::{self, Ctx, Seat, Strategy};
use crate::measure::{Percentiles, now_us, round};
use crate::tally::{Msg, Tally, stamp};
use crate::wire::{Headers, HttpConn, Meter, request, roundtrip_retry};
use crate::{Env, progress};

/// Clients connecting at once: enough to connect 10,000 in seconds, few
/// enough not to overflow a listen backlog (Node's default is 511).
const CONNECTING_AT_ONCE: usize = 256;

/// A closed-loop hammer: `connections` tasks each repeat `one` until the
/// end of the window. Returns, per task, (answers ending inside the window,
/// their latencies in µs, failures).
async fn hammer<F, Fut>(
    connections: usize,
    warmup: Duration,
    duration: Duration,
    one: F,
) -> (u64, Vec<u64>, u64, (u64, u64))
where
    F: Fn(usize, Option<HttpConn>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (bool, Option<HttpConn>)> + Send,
{
    let start = now_us();
    let window = (
        start + warmup.as_micros() as u64,
        start + (warmup + duration).as_micros() as u64,
    );
    let mut tasks = JoinSet::new();
    for i in 0..connections {
        let one = one.clone();
        tasks.spawn(async move {
            let (mut ok, mut lat, mut failed) = (0u64, Vec::new(), 0u64);
            let mut conn = None;
            // Bounded by time: each round trip has its own timeout.
            loop {
                let t = now_us();
                if t >= window.1 {
                    break;
                }
                let (good, back) = one(i, conn).await;
                conn = back;
                let done = now_us();
                if window.0 <= done && done < window.1 {
                    if good {
                        ok += 1;
                        lat.push(done - t);
                    } else {
                        failed += 1;
                    }
                }
                if !good {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (ok, lat, failed)
        });
    }
    let (mut ok, mut lat, mut failed) = (0, Vec::new(), 0);
    while let Some(done) = tasks.join_next().await {
        if let Ok((o, mut l, f)) = done {
            ok += o;
            lat.append(&mut l);
            failed += f;
        }
    }
    (ok, lat, failed, window)
}

/// `posts`: durable appends as fast as the server acknowledges them.
pub async fn posts(
    env: &Env,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Value, String> {
    latest_id(&env.target).await?;
    let meter = Arc::new(Meter::default());
    let ticker = progress::spawn("posts".into(), Arc::clone(&meter), None);
    let (target, run) = (env.target.clone(), Arc::clone(&env.run));
    let seq = Arc::new(AtomicU64::new(0));
    let one = {
        let meter = Arc::clone(&meter);
        move |_i: usize, mut conn: Option<HttpConn>| {
            let (target, run, meter, seq) = (
                target.clone(),
                Arc::clone(&run),
                Arc::clone(&meter),
                Arc::clone(&seq),
            );
            async move {
                let k = seq.fetch_add(1, Relaxed);
                let body = format!(
                    r#"{{"author":"loadgen","text":"{}","via":"api"}}"#,
                    stamp(&run, now_us(), k)
                );
                let req = request(
                    "POST",
                    &target,
                    "/api/messages",
                    Headers::Minimal,
                    "",
                    Some(&body),
                );
                Meter::add(&meter.requests, 1);
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    roundtrip_retry(&mut conn, &target, &meter, &req),
                )
                .await;
                let good = matches!(&r, Ok(Ok(resp)) if resp.status == 201
                    && serde_json::from_slice::<Msg>(&resp.body).is_ok());
                if good {
                    Meter::add(&meter.answers, 1);
                } else {
                    Meter::add(&meter.errors, 1);
                    conn = None;
                }
                (good, conn)
            }
        }
    };
    let cpu0 = env.monitor.mark();
    env.monitor.reset_peak();
    let (ok, mut lat, failed, _) = hammer(connections, warmup, duration, one).await;
    let cpu1 = env.monitor.mark();
    ticker.abort();
    let usage = env.monitor.usage(cpu0, cpu1);
    let ack = Percentiles::of(&mut lat);
    let rate = ok as f64 / duration.as_secs_f64();
    println!(
        "\nposts: {connections} connections, {:.0} s: {rate:.0} acknowledged messages/s, ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {failed} failed",
        duration.as_secs_f64(),
        ack.p50,
        ack.p99,
        ack.max
    );
    println!("  {}", usage.line());
    Ok(json!({
        "mode": "posts", "connections": connections, "duration_s": duration.as_secs_f64(),
        "acked": ok, "acked_per_s": round(rate), "failed": failed, "ack": ack.json(),
        "usage": usage.json(),
    }))
}

/// `empty-polls`: `GET /api/messages?since=<newest>` as fast as answered.
pub async fn empty_polls(
    env: &Env,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<Value, String> {
    let latest = latest_id(&env.target).await?;
    let meter = Arc::new(Meter::default());
    let ticker = progress::spawn("empty-polls".into(), Arc::clone(&meter), None);
    let req = Arc::new(request(
        "GET",
        &env.target,
        &format!("/api/messages?since={latest}"),
        Headers::Minimal,
        "",
        None,
    ));
    let target = env.target.clone();
    let one = {
        let meter = Arc::clone(&meter);
        move |_i: usize, mut conn: Option<HttpConn>| {
            let (target, meter, req) = (target.clone(), Arc::clone(&meter), Arc::clone(&req));
            async move {
                Meter::add(&meter.requests, 1);
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    roundtrip_retry(&mut conn, &target, &meter, &req),
                )
                .await;
                // An empty answer, without paying for a JSON parse.
                let good = matches!(&r, Ok(Ok(resp)) if resp.status == 200
                    && contains(&resp.body, br#""messages":[]"#));
                if good {
                    Meter::add(&meter.answers, 1);
                } else {
                    Meter::add(&meter.errors, 1);
                    conn = None;
                }
                (good, conn)
            }
        }
    };
    let before = meter.snapshot();
    let cpu0 = env.monitor.mark();
    env.monitor.reset_peak();
    let (ok, mut lat, failed, _) = hammer(connections, warmup, duration, one).await;
    let cpu1 = env.monitor.mark();
    ticker.abort();
    let traffic = meter.snapshot() - before;
    let usage = env.monitor.usage(cpu0, cpu1);
    let p = Percentiles::of(&mut lat);
    let rate = ok as f64 / duration.as_secs_f64();
    let bytes_per_request =
        (traffic.read + traffic.written) as f64 / traffic.requests.max(1) as f64;
    println!(
        "\nempty-polls: {connections} connections, {:.0} s: {rate:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms, {bytes_per_request:.0} bytes/request, {failed} failed",
        duration.as_secs_f64(),
        p.p50,
        p.p99
    );
    println!("  {}", usage.line());
    Ok(json!({
        "mode": "empty-polls", "connections": connections, "duration_s": duration.as_secs_f64(),
        "answered": ok, "requests_per_s": round(rate), "failed": failed, "latency": p.json(),
        "bytes_per_request": round(bytes_per_request), "usage": usage.json(),
    }))
}

/// A crowd of push clients of one kind, all following the room.
struct Crowd {
    ctx: Arc<Ctx>,
    tasks: JoinSet<Tally>,
    highs: Vec<Arc<AtomicU64>>,
    stop: watch::Sender<bool>,
    ticker: tokio::task::JoinHandle<()>,
}

impl Crowd {
    /// Starts `n` clients from the room's newest id; every message posted
    /// from now on is timed.
    async fn start(env: &Env, strategy: Strategy, n: usize, hold_s: u64) -> Result<Crowd, String> {
        let since = latest_id(&env.target).await?;
        let ctx = Arc::new(Ctx {
            target: env.target.clone(),
            meter: Arc::new(Meter::default()),
            headers: env.headers,
            run: Arc::clone(&env.run),
            since,
            window: (now_us(), u64::MAX),
            interval: Duration::from_secs(1),
            hold_s,
            client_ids: env.client_ids,
            connecting: Arc::new(Semaphore::new(CONNECTING_AT_ONCE)),
            ready: Default::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut highs = Vec::with_capacity(n);
        for i in 0..n {
            let high = Arc::new(AtomicU64::new(since));
            highs.push(Arc::clone(&high));
            let seat = Seat {
                ctx: Arc::clone(&ctx),
                n: i,
                stop: stop_rx.clone(),
                high,
            };
            tasks.spawn(clients::run(strategy, seat));
        }
        let ticker = progress::spawn(
            format!("{} ×{n}", strategy.name()),
            Arc::clone(&ctx.meter),
            Some(Arc::clone(&ctx)),
        );
        Ok(Crowd {
            ctx,
            tasks,
            highs,
            stop,
            ticker,
        })
    }

    /// Waits until every client is connected, or `patience` passes.
    /// Returns how long it took.
    async fn connected(&self, patience: Duration) -> Duration {
        let t = tokio::time::Instant::now();
        while self.ctx.ready.load(Relaxed) < self.highs.len() && t.elapsed() < patience {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        t.elapsed()
    }

    fn ready(&self) -> usize {
        self.ctx.ready.load(Relaxed)
    }

    async fn finish(self) -> Vec<Tally> {
        let _ = self.stop.send(true);
        let tallies = collect(self.tasks).await;
        self.ticker.abort();
        tallies
    }
}

fn strategy_of(kind: Kind) -> Strategy {
    match kind {
        Kind::Ws => Strategy::Websocket,
        Kind::Sse => Strategy::Sse,
        Kind::Longpoll => Strategy::Longpoll,
        // Not a push kind; only idle-memory uses it, separately.
        Kind::Http => Strategy::Timeout,
    }
}

/// Kinds of connection for `fanout` and `idle-memory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Ws,
    Sse,
    Longpoll,
    /// A keep-alive connection that made one request (idle-memory only).
    Http,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ws => "ws",
            Kind::Sse => "sse",
            Kind::Longpoll => "longpoll",
            Kind::Http => "http",
        }
    }
}

/// The number of open connections of a kind that the server reports in
/// `/api/stats`, if it does (Weebsockets: `open`; the peer: `open` or
/// `waiting`) — a check that the long polls are really held.
async fn server_open(env: &Env, kind: Kind) -> Option<u64> {
    let meter = Arc::new(Meter::default());
    let mut conn = HttpConn::open(&env.target, &meter).await.ok()?;
    let req = request("GET", &env.target, "/api/stats", Headers::Minimal, "", None);
    let r = conn.roundtrip(&req).await.ok()?;
    let stats: Value = serde_json::from_slice(&r.body).ok()?;
    let name = match kind {
        Kind::Ws => "websocket",
        Kind::Sse => "sse",
        Kind::Longpoll => "longpoll",
        Kind::Http => return None,
    };
    let t = &stats["transports"][name];
    t["open"].as_u64().or(t["waiting"].as_u64())
}

/// How long `fanout` watches the server idle before posting.
const IDLE_SAMPLE: Duration = Duration::from_secs(2);

/// `fanout`: N idle push clients, then M messages at R/s.
pub async fn fanout(
    env: &Env,
    kind: Kind,
    n: usize,
    messages: u64,
    rate: f64,
) -> Result<Value, String> {
    if kind == Kind::Http {
        return Err("fanout needs a push kind: ws, sse or longpoll".into());
    }
    let crowd = Crowd::start(env, strategy_of(kind), n, 55).await?;
    let connect_time = crowd
        .connected(Duration::from_secs(30 + n as u64 / 100))
        .await;
    // Held long polls are "ready" when sent; give the server a moment to
    // read them all before the first message.
    let settle = match kind {
        Kind::Longpoll => Duration::from_millis(1000 + n as u64 / 5),
        _ => Duration::from_millis(500),
    };
    tokio::time::sleep(settle).await;
    let open = server_open(env, kind).await;
    eprintln!(
        "\n  {} of {n} connected in {:.1} s (server reports {} open); posting {messages} at {rate}/s",
        crowd.ready(),
        connect_time.as_secs_f64(),
        open.map_or("?".into(), |o| o.to_string())
    );
    // The server's CPU while nobody posts (heartbeats, timers): subtracted
    // from the window's to get the marginal cost of the deliveries.
    let idle0 = env.monitor.mark();
    tokio::time::sleep(IDLE_SAMPLE).await;
    let idle = env.monitor.usage(idle0, env.monitor.mark());
    let cpu0 = env.monitor.mark();
    env.monitor.reset_peak();
    let from = now_us() + 100_000;
    let until = from + ((messages as f64 - 0.5) / rate * 1e6) as u64;
    let sent = send(&env.target, &env.run, rate, from, until, (from, until + 1)).await;
    let last = sent.posted.iter().map(|p| p.id).max().unwrap_or(0);
    let drain_until = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::time::Instant::now() < drain_until
        && crowd.highs.iter().any(|h| h.load(Relaxed) < last)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu1 = env.monitor.mark();
    let ready = crowd.ready();
    let requests = crowd.ctx.meter.snapshot();
    let tallies = crowd.finish().await;
    let usage = env.monitor.usage(cpu0, cpu1);

    let expected: Vec<u64> = sent.posted.iter().map(|p| p.id).collect();
    let mut all: Vec<u64> = Vec::new();
    let mut last_client: std::collections::HashMap<u64, u64> = Default::default();
    for t in &tallies {
        for &(id, lat) in &t.samples {
            all.push(lat);
            let worst = last_client.entry(id).or_default();
            *worst = (*worst).max(lat);
        }
    }
    let latency = Percentiles::of(&mut all);
    let mut stored: Vec<u64> = tallies
        .iter()
        .flat_map(|t| t.after_store_us.iter().copied())
        .collect();
    let after_store = Percentiles::of(&mut stored);
    let mut acks = sent.ack_us.clone();
    let ack = Percentiles::of(&mut acks);
    let mut worst: Vec<u64> = last_client.into_values().collect();
    let every_client = Percentiles::of(&mut worst);
    // CPU per delivery: all of the window's, and the marginal part (minus
    // what the server spends idle in as long).
    let per_delivery = |cpu: f64| round(cpu * 1e6 / latency.count.max(1) as f64);
    let (server_us, marginal_us) = match (usage.server_cpu_s, idle.server_cpu_s) {
        (Some(cpu), Some(idle_cpu)) => {
            let idle_rate = idle_cpu / idle.seconds.max(1e-9);
            let marginal = (cpu - idle_rate * usage.seconds).max(0.0);
            (Some(per_delivery(cpu)), Some(per_delivery(marginal)))
        }
        _ => (None, None),
    };
    let lost: Vec<u64> = tallies.iter().map(|t| t.lost(&expected)).collect();
    let lost_total: u64 =
        lost.iter().sum::<u64>() + (n - tallies.len()) as u64 * expected.len() as u64;
    let duplicates: u64 = tallies.iter().map(|t| t.duplicates).sum();
    let out_of_order: u64 = tallies.iter().map(|t| t.out_of_order).sum();
    println!(
        "\nfanout {} ×{n}: {} of {n} connected in {:.1} s; {} messages at {rate}/s",
        kind.name(),
        ready,
        connect_time.as_secs_f64(),
        expected.len()
    );
    println!(
        "  delivery latency p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} deliveries)",
        latency.p50, latency.p95, latency.p99, latency.max, latency.count
    );
    println!(
        "  of which storing: post acknowledged after p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; from stored to received (ms clock): p50 {:.0} ms, p99 {:.0} ms",
        ack.p50, ack.p99, ack.max, after_store.p50, after_store.p99
    );
    println!(
        "  until every client had it: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        every_client.p50, every_client.p99, every_client.max
    );
    println!(
        "  lost {lost_total} (clients with loss: {}), duplicates {duplicates}, out of order {out_of_order}, errors {}",
        lost.iter().filter(|&&l| l > 0).count(),
        requests.errors
    );
    println!("  {}", usage.line());
    if let (Some(all), Some(marginal)) = (server_us, marginal_us) {
        println!(
            "  server CPU per delivery: {all:.2} µs, marginal {marginal:.2} µs (idle: {:.3} s CPU in {:.1} s)",
            idle.server_cpu_s.unwrap_or(0.0),
            idle.seconds
        );
    }
    Ok(json!({
        "mode": "fanout",
        "server_us_per_delivery": server_us, "server_marginal_us_per_delivery": marginal_us,
        "idle_server_cpu_s": idle.server_cpu_s.map(round), "idle_s": round(idle.seconds), "kind": kind.name(), "clients": n, "messages": expected.len(),
        "rate": rate, "connected": ready, "connect_s": round(connect_time.as_secs_f64()),
        "server_open": open, "post_failures": sent.failed,
        "latency": latency.json(), "every_client": every_client.json(),
        "post_ack": ack.json(), "after_store": after_store.json(),
        "lost": lost_total, "clients_with_loss": lost.iter().filter(|&&l| l > 0).count(),
        "duplicates": duplicates, "out_of_order": out_of_order, "errors": requests.errors,
        "requests": requests.requests, "usage": usage.json(),
    }))
}

/// Anonymous memory of a process in KiB, from `/proc/<pid>/smaps_rollup`
/// (heap and stacks; unlike RSS it leaves out the mapped binary).
fn anonymous_kib(pid: &str) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Anonymous:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `idle-memory`: the server's memory per idle connection of one kind.
pub async fn idle_memory(env: &Env, kind: Kind, n: usize) -> Result<Value, String> {
    let Some(pid) = env.monitor.server_pid.clone() else {
        return Err("idle-memory needs --server-pid".into());
    };
    latest_id(&env.target).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss0 = env.monitor.rss_now().unwrap_or(0);
    let anon0 = anonymous_kib(&pid).unwrap_or(0);
    let t = tokio::time::Instant::now();
    let (crowd, plain) = if kind == Kind::Http {
        (None, Some(open_keepalive(env, n).await))
    } else {
        let crowd = Crowd::start(env, strategy_of(kind), n, 55).await?;
        crowd
            .connected(Duration::from_secs(30 + n as u64 / 100))
            .await;
        (Some(crowd), None)
    };
    let connect_time = t.elapsed();
    // Let the server finish setting every connection up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = env.monitor.rss_now().unwrap_or(0);
    let anon1 = anonymous_kib(&pid).unwrap_or(0);
    let open = server_open(env, kind).await;
    let ready = match (&crowd, &plain) {
        (Some(c), _) => c.ready(),
        (_, Some(conns)) => conns.len(),
        _ => 0,
    };
    if let Some(crowd) = crowd {
        crowd.finish().await;
    }
    drop(plain);
    let per = |a: u64, b: u64| round((b as f64 - a as f64) / ready.max(1) as f64);
    println!(
        "\nidle-memory {} ×{n}: {ready} open in {:.1} s (server reports {}); RSS {:.1} → {:.1} MiB: {:.2} KiB per connection (anonymous memory: {:.2} KiB)",
        kind.name(),
        connect_time.as_secs_f64(),
        open.map_or("?".into(), |o| o.to_string()),
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        per(rss0, rss1),
        per(anon0, anon1)
    );
    Ok(json!({
        "mode": "idle-memory", "kind": kind.name(), "clients": n, "connected": ready,
        "server_open": open, "rss_before_kib": rss0, "rss_after_kib": rss1,
        "kib_per_connection": per(rss0, rss1),
        "anon_kib_per_connection": per(anon0, anon1),
        "connect_s": round(connect_time.as_secs_f64()),
    }))
}

/// `n` keep-alive connections that each asked `/healthz` once.
async fn open_keepalive(env: &Env, n: usize) -> Vec<HttpConn> {
    let meter = Arc::new(Meter::default());
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let req = Arc::new(request(
        "GET",
        &env.target,
        "/healthz",
        Headers::Minimal,
        "",
        None,
    ));
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let (target, meter, gate, req) = (
            env.target.clone(),
            Arc::clone(&meter),
            Arc::clone(&gate),
            Arc::clone(&req),
        );
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let mut conn = HttpConn::open(&target, &meter).await.ok()?;
            tokio::time::timeout(Duration::from_secs(10), conn.roundtrip(&req))
                .await
                .ok()?
                .ok()?;
            Some(conn)
        });
    }
    let mut conns = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some(conn)) = done {
            conns.push(conn);
        }
    }
    conns
}

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// TcpExtListenOverflows from `/proc/net/netstat`: connections the kernel
/// dropped because a listening socket's accept queue was full. Counted for
/// the whole network namespace (any server on this machine).
fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// `connect-burst`: N WebSocket clients connecting at once, at most
/// `at_once` handshakes in flight — a class opening the page when the
/// teacher says so. How long until every one is connected, and how many
/// times the kernel's accept queue overflowed meanwhile (a dropped
/// handshake costs its client a SYN retransmit, one second).
pub async fn connect_burst(env: &Env, n: usize, at_once: usize) -> Result<Value, String> {
    latest_id(&env.target).await?;
    let overflows0 = listen_overflows();
    let gate = Arc::new(Semaphore::new(at_once.max(1)));
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    let url = format!("ws://{}/api/ws", env.target.host);
    for _ in 0..n {
        let (target, gate, url) = (env.target.clone(), Arc::clone(&gate), url.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await.ok()?;
            let t = tokio::time::Instant::now();
            let meter = Arc::new(Meter::default());
            let stream = target.connect(&meter).await.ok()?;
            let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .read_buffer_size(4096)
                .write_buffer_size(0);
            let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .ok()?;
            Some((t.elapsed().as_micros() as u64, ws))
        });
    }
    let mut times = Vec::with_capacity(n);
    let mut open = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some((us, ws))) = done {
            times.push(us);
            open.push(ws);
        }
    }
    let all_in = started.elapsed();
    let overflows = match (overflows0, listen_overflows()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let connected = open.len();
    drop(open);
    let each = Percentiles::of(&mut times);
    println!(
        "\nconnect-burst ×{n} ({at_once} at once): {connected} connected in {:.0} ms; each: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; listen overflows {}",
        all_in.as_secs_f64() * 1e3,
        each.p50,
        each.p99,
        each.max,
        overflows.map_or("?".into(), |o| o.to_string())
    );
    Ok(json!({
        "mode": "connect-burst", "clients": n, "at_once": at_once, "connected": connected,
        "all_connected_ms": round(all_in.as_secs_f64() * 1e3), "each": each.json(),
        "listen_overflows": overflows,
    }))
}
