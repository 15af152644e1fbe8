//! `loadgen browsers`: N simulated browsers per strategy, while sender
//! tasks post messages at a steady rate; the measurement next to the
//! textbook model.
//!
//! Each strategy runs on its own, one after the other, so the server's CPU
//! time of a phase belongs to that strategy alone. A phase is:
//!
//! ```text
//!   start ──warm-up──▶ window start ──duration──▶ window end ──drain──▶ stop
//!   senders post from start to window end; clients run from start to stop
//! ```
//!
//! Requests, bytes and empty answers are counted inside the window
//! (snapshots of the meter at both ends); latency is timed for the
//! messages *posted* inside the window, whenever they arrive; loss is
//! checked for those messages after the drain (which ends early once every
//! client has the last one).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::clients::{self, Ctx, Seat, Strategy};
use crate::measure::{Percentiles, instant_of, now_us, round};
use crate::tally::{Msg, Tally, stamp};
use crate::wire::{Headers, HttpConn, Meter, Target, request, roundtrip_retry};
use crate::{Env, progress};

/// One phase's settings.
#[derive(Debug, Clone)]
pub struct Spec {
    pub strategy: Strategy,
    pub clients: usize,
    /// Messages per second posted by the senders.
    pub rate: f64,
    pub interval: Duration,
    pub hold_s: u64,
    pub warmup: Duration,
    pub duration: Duration,
    /// Lab latency and jitter in force (for the model), ms.
    pub lab: (u64, u64),
}

/// A message the server acknowledged: its id and when it was posted.
#[derive(Debug, Clone, Copy)]
pub struct Posted {
    pub id: u64,
    pub t_us: u64,
}

/// What the senders did.
#[derive(Debug, Default)]
pub struct Sent {
    pub posted: Vec<Posted>,
    /// Acknowledgement times of posts sent inside the window, µs.
    pub ack_us: Vec<u64>,
    pub failed: u64,
}

/// Posts `rate` messages a second from `from_us` until `until_us`, spread
/// over a few sender connections (open loop: message k is due at
/// `from + k / rate`, whether or not the previous one was acknowledged).
pub async fn send(
    target: &Target,
    run: &Arc<str>,
    rate: f64,
    from_us: u64,
    until_us: u64,
    window: (u64, u64),
) -> Sent {
    if rate <= 0.0 {
        return Sent::default();
    }
    let meter = Arc::new(Meter::default());
    // One connection per 20 messages/s: each waits for its answers (group
    // commit makes concurrent posts cheap, a queue on one socket does not).
    let senders = ((rate / 20.0).ceil() as u64).clamp(1, 16);
    let mut tasks = tokio::task::JoinSet::new();
    for first in 0..senders {
        let (target, run, meter) = (target.clone(), Arc::clone(run), Arc::clone(&meter));
        tasks.spawn(async move {
            let mut sent = Sent::default();
            let mut conn: Option<HttpConn> = None;
            let mut k = first;
            loop {
                let due = from_us + (k as f64 * 1e6 / rate) as u64;
                if due >= until_us {
                    break;
                }
                tokio::time::sleep_until(instant_of(due)).await;
                let t = now_us();
                let body = format!(
                    r#"{{"author":"loadgen","text":"{}","via":"api"}}"#,
                    stamp(&run, t, k)
                );
                let req = request(
                    "POST",
                    &target,
                    "/api/messages",
                    Headers::Minimal,
                    "",
                    Some(&body),
                );
                let answer = tokio::time::timeout(
                    Duration::from_secs(10),
                    roundtrip_retry(&mut conn, &target, &meter, &req),
                )
                .await;
                match answer {
                    Ok(Ok(r)) if r.status == 201 => match serde_json::from_slice::<Msg>(&r.body) {
                        Ok(m) => {
                            sent.posted.push(Posted { id: m.id, t_us: t });
                            if window.0 <= t && t < window.1 {
                                sent.ack_us.push(now_us() - t);
                            }
                        }
                        Err(_) => sent.failed += 1,
                    },
                    _ => {
                        sent.failed += 1;
                        conn = None;
                    }
                }
                k += senders;
            }
            sent
        });
    }
    let mut all = Sent::default();
    while let Some(done) = tasks.join_next().await {
        if let Ok(mut sent) = done {
            all.posted.append(&mut sent.posted);
            all.ack_us.append(&mut sent.ack_us);
            all.failed += sent.failed;
        }
    }
    all
}

/// The room's newest id (`GET /api/messages?since=0&limit=1`).
pub async fn latest_id(target: &Target) -> Result<u64, String> {
    let meter = Arc::new(Meter::default());
    let mut conn = HttpConn::open(target, &meter)
        .await
        .map_err(|e| format!("cannot reach {}: {e}", target.host))?;
    let req = request(
        "GET",
        target,
        "/api/messages?since=0&limit=1",
        Headers::Minimal,
        "",
        None,
    );
    let response = conn.roundtrip(&req).await.map_err(|e| e.to_string())?;
    let page: crate::tally::Page = serde_json::from_slice(&response.body)
        .map_err(|e| format!("GET /api/messages: status {}, {e}", response.status))?;
    Ok(page.last_id)
}

/// Mean response time of an immediate poll (lab delay included), ms: the
/// round trip the polling models need.
pub async fn probe_rtt(target: &Target, latest: u64) -> f64 {
    let meter = Arc::new(Meter::default());
    let mut conn = None;
    let path = format!("/api/messages?since={latest}");
    let req = request("GET", target, &path, Headers::Browser, "", None);
    let mut total = 0.0;
    let mut n = 0;
    for _ in 0..20 {
        let t = now_us();
        if let Ok(Ok(_)) = tokio::time::timeout(
            Duration::from_secs(40),
            roundtrip_retry(&mut conn, target, &meter, &req),
        )
        .await
        {
            total += (now_us() - t) as f64 / 1000.0;
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { total / n as f64 }
}

/// The textbook model of one strategy: requests/s and mean latency (ms).
///
/// - interval: `clients × 1000 / interval`, whatever the traffic; a message
///   waits half an interval on average for the next poll, plus the answer.
/// - timeout: the cycle is `interval + round trip`, so
///   `clients × 1000 / (interval + rtt)`; the wait is half a cycle.
/// - long poll: one request per message per client, plus one per hold that
///   passes in silence: `clients × (rate + 1/hold)`; latency one answer.
/// - WebSocket, SSE: one upgrade per client before the window, then no
///   requests at all; latency one delivery (the lab's delay).
///
/// Every latency adds `commit`: a message exists for readers only once the
/// server has stored it, which takes about its POST's acknowledgement time.
pub fn model(spec: &Spec, rtt_ms: f64, commit_ms: f64) -> (f64, f64) {
    let n = spec.clients as f64;
    let every = spec.interval.as_secs_f64() * 1000.0;
    let lab = spec.lab.0 as f64 + spec.lab.1 as f64 / 2.0;
    match spec.strategy {
        Strategy::Interval => (n * 1000.0 / every, commit_ms + every / 2.0 + rtt_ms),
        Strategy::Timeout => (
            n * 1000.0 / (every + rtt_ms),
            commit_ms + (every + rtt_ms) / 2.0 + rtt_ms,
        ),
        Strategy::Longpoll => (
            n * (spec.rate + 1.0 / spec.hold_s as f64),
            commit_ms + rtt_ms,
        ),
        Strategy::Websocket | Strategy::Sse => (0.0, commit_ms + lab),
    }
}

/// measured / model, or None when the model says zero.
pub fn ratio(measured: f64, model: f64) -> Option<f64> {
    (model > 0.0).then(|| measured / model)
}

/// Runs one phase and returns its JSON result.
pub async fn phase(env: &Env, spec: &Spec, rtt_ms: f64) -> Result<Value, String> {
    let name = spec.strategy.name();
    let since = latest_id(&env.target).await?;
    let start = now_us() + 200_000;
    let window = (
        start + spec.warmup.as_micros() as u64,
        start + (spec.warmup + spec.duration).as_micros() as u64,
    );
    let ctx = Arc::new(Ctx {
        target: env.target.clone(),
        meter: Arc::new(Meter::default()),
        headers: env.headers,
        run: Arc::clone(&env.run),
        since,
        window,
        interval: spec.interval,
        hold_s: spec.hold_s,
        client_ids: env.client_ids,
        connecting: Arc::new(Semaphore::new(256)),
        ready: Default::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut highs = Vec::with_capacity(spec.clients);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..spec.clients {
        let high = Arc::new(AtomicU64::new(since));
        highs.push(Arc::clone(&high));
        let seat = Seat {
            ctx: Arc::clone(&ctx),
            n,
            stop: stop_rx.clone(),
            high,
        };
        tasks.spawn(clients::run(spec.strategy, seat));
    }
    let label = format!("{name} ×{}", spec.clients);
    let ticker = progress::spawn(label, Arc::clone(&ctx.meter), Some(Arc::clone(&ctx)));

    // The senders run in their own task; the window's edges are measured
    // here.
    let senders = {
        let (target, run, rate) = (env.target.clone(), Arc::clone(&env.run), spec.rate);
        tokio::spawn(async move { send(&target, &run, rate, start, window.1, window).await })
    };
    tokio::time::sleep_until(instant_of(window.0)).await;
    env.monitor.reset_peak();
    let (m0, c0) = (ctx.meter.snapshot(), env.monitor.mark());
    tokio::time::sleep_until(instant_of(window.1)).await;
    let (m1, c1) = (ctx.meter.snapshot(), env.monitor.mark());
    let usage = env.monitor.usage(c0, c1);
    let sent = senders.await.map_err(|e| e.to_string())?;

    // Drain: wait until every client has the newest acknowledged message,
    // at most two intervals plus the lab's worst delay plus 2 s.
    let last = sent.posted.iter().map(|p| p.id).max().unwrap_or(since);
    let drain =
        2 * spec.interval + Duration::from_millis(spec.lab.0 + spec.lab.1) + Duration::from_secs(2);
    let drain_until = tokio::time::Instant::now() + drain;
    while tokio::time::Instant::now() < drain_until
        && highs
            .iter()
            .any(|h| h.load(std::sync::atomic::Ordering::Relaxed) < last)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let tallies = collect(tasks).await;
    ticker.abort();

    let expected: Vec<u64> = sent
        .posted
        .iter()
        .filter(|p| window.0 <= p.t_us && p.t_us < window.1)
        .map(|p| p.id)
        .collect();
    let win = m1 - m0;
    let seconds = spec.duration.as_secs_f64();
    let receipts: u64 = tallies.iter().map(|t| t.receipts_in_window).sum();
    let mut latencies: Vec<u64> = tallies
        .iter()
        .flat_map(|t| t.samples.iter().map(|s| s.1))
        .collect();
    let latency = Percentiles::of(&mut latencies);
    let mut stored: Vec<u64> = tallies
        .iter()
        .flat_map(|t| t.after_store_us.iter().copied())
        .collect();
    let after_store = Percentiles::of(&mut stored);
    let lost: Vec<u64> = tallies.iter().map(|t| t.lost(&expected)).collect();
    let duplicates: u64 = tallies.iter().map(|t| t.duplicates).sum();
    let out_of_order: u64 = tallies.iter().map(|t| t.out_of_order).sum();
    let mut rtts: Vec<u64> = tallies.iter().flat_map(|t| t.rtt_us.clone()).collect();
    let poll_rtt = Percentiles::of(&mut rtts);
    let mut acks = sent.ack_us.clone();
    let ack = Percentiles::of(&mut acks);
    // Polls measure their own round trip; the others use the probe's.
    let rtt = if poll_rtt.count > 0 {
        poll_rtt.mean
    } else {
        rtt_ms
    };
    let (model_rps, model_latency) = model(spec, rtt, ack.mean);
    let rps = win.requests as f64 / seconds;
    let per_msg = |x: u64| (receipts > 0).then(|| round(x as f64 / receipts as f64));
    Ok(json!({
        "mode": "browsers",
        "strategy": name,
        "clients": spec.clients,
        "rate": spec.rate,
        "interval_ms": spec.interval.as_millis() as u64,
        "hold_s": spec.hold_s,
        "lab_latency_ms": spec.lab.0,
        "lab_jitter_ms": spec.lab.1,
        "warmup_s": spec.warmup.as_secs_f64(),
        "duration_s": seconds,
        "clients_ready": ctx.ready.load(std::sync::atomic::Ordering::Relaxed),
        "posted": expected.len(),
        "post_failures": sent.failed,
        "post_ack": ack.json(),
        "requests": win.requests,
        "requests_per_s": round(rps),
        "model_requests_per_s": round(model_rps),
        "requests_ratio": ratio(rps, model_rps).map(round),
        "deliveries": receipts,
        "requests_per_message": per_msg(win.requests),
        "empty_share": (win.answers > 0).then(|| round(win.empty as f64 / win.answers as f64)),
        "bytes_in": win.read,
        "bytes_out": win.written,
        "bytes_per_message": per_msg(win.read + win.written),
        "connections_opened": win.connections,
        "errors": win.errors,
        "rtt_ms": round(rtt),
        "latency": latency.json(),
        "after_store": after_store.json(),
        "model_latency_ms": round(model_latency),
        "latency_ratio": ratio(latency.mean, model_latency).map(round),
        "lost": lost.iter().sum::<u64>(),
        "clients_with_loss": lost.iter().filter(|&&l| l > 0).count(),
        "duplicates": duplicates,
        "out_of_order": out_of_order,
        "naive": spec.strategy == Strategy::Interval,
        "usage": usage.json(),
        "usage_line": usage.line(),
    }))
}

/// Joins every client (bounded: a client that does not stop within 5 s is
/// aborted and its tally lost, which shows up as loss).
pub async fn collect(mut tasks: tokio::task::JoinSet<Tally>) -> Vec<Tally> {
    let mut tallies = Vec::with_capacity(tasks.len());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(Ok(tally))) => tallies.push(tally),
            Ok(Some(Err(_))) => {}
            Ok(None) => break,
            Err(_) => {
                eprintln!("  {} clients did not stop in time; aborted", tasks.len());
                tasks.abort_all();
                break;
            }
        }
    }
    tallies
}

/// The two tables: traffic next to the model, then latency and
/// correctness.
pub fn print_tables(results: &[Value]) {
    println!();
    println!(
        "{:<10} {:>7} {:>9} {:>10} {:>10} {:>6} {:>8} {:>7} {:>10} {:>9}",
        "strategy",
        "clients",
        "interval",
        "req/s",
        "model",
        "ratio",
        "req/msg",
        "empty%",
        "bytes/msg",
        "srv CPU%"
    );
    for r in results {
        println!(
            "{:<10} {:>7} {:>7}ms {:>10.1} {:>10.1} {:>6} {:>8} {:>7} {:>10} {:>9}",
            r["strategy"].as_str().unwrap_or("?"),
            r["clients"],
            r["interval_ms"],
            r["requests_per_s"].as_f64().unwrap_or(0.0),
            r["model_requests_per_s"].as_f64().unwrap_or(0.0),
            fmt_opt(&r["requests_ratio"], 2),
            fmt_opt(&r["requests_per_message"], 2),
            fmt_pct(&r["empty_share"]),
            fmt_opt(&r["bytes_per_message"], 0),
            fmt_opt(&r["usage"]["server_cpu_pct"], 1),
        );
    }
    println!();
    println!(
        "{:<10} {:>9} {:>9} {:>6} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6}",
        "strategy",
        "lat mean",
        "model",
        "ratio",
        "p50",
        "p95",
        "p99",
        "max",
        "lost",
        "dup",
        "order"
    );
    for r in results {
        let l = &r["latency"];
        let naive = if r["naive"].as_bool() == Some(true) {
            "  (naive client: dup/order expected)"
        } else if r["lost"].as_u64() != Some(0)
            || r["duplicates"].as_u64() != Some(0)
            || r["out_of_order"].as_u64() != Some(0)
        {
            "  FAIL: must be zero"
        } else {
            ""
        };
        println!(
            "{:<10} {:>7.1}ms {:>7.1}ms {:>6} {:>6.1}ms {:>6.1}ms {:>6.1}ms {:>6.1}ms {:>6} {:>6} {:>6}{naive}",
            r["strategy"].as_str().unwrap_or("?"),
            l["mean_ms"].as_f64().unwrap_or(0.0),
            r["model_latency_ms"].as_f64().unwrap_or(0.0),
            fmt_opt(&r["latency_ratio"], 2),
            l["p50_ms"].as_f64().unwrap_or(0.0),
            l["p95_ms"].as_f64().unwrap_or(0.0),
            l["p99_ms"].as_f64().unwrap_or(0.0),
            l["max_ms"].as_f64().unwrap_or(0.0),
            r["lost"],
            r["duplicates"],
            r["out_of_order"],
        );
    }
    println!();
    for r in results {
        println!(
            "{:<10} {}",
            r["strategy"].as_str().unwrap_or("?"),
            r["usage_line"].as_str().unwrap_or("")
        );
    }
}

pub fn fmt_opt(v: &Value, decimals: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.decimals$}"),
        None => "—".into(),
    }
}

fn fmt_pct(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{:.1}", 100.0 * x),
        None => "—".into(),
    }
}
