//! An idle Server-Sent Events stream while the teacher's lab adds 2.5 s of
//! latency: the stream still gets its keep-alive comments, but no more than
//! two per keep-alive interval, and the server's memory does not grow while
//! it waits to deliver them. (Review, issue 10: each delayed keep-alive used
//! to leave the "next keep-alive" deadline in the past, so every turn of the
//! stream's loop queued another — a million comments and 100+ MB in seconds.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// How often the idle stream asks for a keep-alive, in milliseconds.
const KEEPALIVE_MS: u64 = 250;
/// The lab's latency: every frame, keep-alives included, waits this long.
const LATENCY_MS: u64 = 2_500;
/// How long the test watches the stream: the latency plus a few intervals.
const WATCH: Duration = Duration::from_millis(4_000);

/// Kills the spawned server however the test ends, so a failing assertion
/// leaves no server behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn delayed_keepalives_stay_one_per_interval_and_memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let keepalive = KEEPALIVE_MS.to_string();
    let (child, base) = spawn_binary(
        &dir.path().join("room.db"),
        &[
            "--teacher-token",
            "teacher",
            "--sse-keepalive-ms",
            &keepalive,
            "--sync",
            "normal",
        ],
    );
    let server = KillOnDrop(child);
    let pid = server.0.id();
    let api = Api {
        base: base.clone(),
        http: reqwest::Client::new(),
    };
    api.lab("teacher", json!({"latency_ms": LATENCY_MS})).await;

    let mut stream = reqwest::get(format!("{base}/api/events?since=0"))
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    api.wait_for_stats("the stream to be open", |s| {
        s["transports"]["sse"]["open"] == 1
    })
    .await;
    let rss_before = rss_kib(pid);

    // Read everything the stream sends for WATCH and count comment lines.
    // (A fixed window on purpose: the claim is a rate, "at most so many in
    // this much time"; there is no event that says "the storm is over".)
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + WATCH;
    let (mut comments, mut bytes, mut partial) = (0usize, 0usize, String::new());
    while let Ok(chunk) = tokio::time::timeout_at(deadline, stream.chunk()).await {
        let Some(chunk) = chunk.expect("the stream stays readable") else {
            panic!("the event stream ended after {:?}", started.elapsed());
        };
        bytes += chunk.len();
        partial.push_str(std::str::from_utf8(&chunk).unwrap());
        // Count only complete lines; keep the unfinished tail for later.
        let complete = partial.rfind('\n').map_or(0, |i| i + 1);
        comments += partial[..complete]
            .lines()
            .filter(|line| line.starts_with(':'))
            .count();
        partial.drain(..complete);
    }
    let watched = started.elapsed();
    let rss_after = rss_kib(pid);
    drop(server);

    let intervals = watched.as_millis() as usize / KEEPALIVE_MS as usize;
    let grown_kib = rss_after.saturating_sub(rss_before);
    eprintln!(
        "{comments} keep-alive comments ({bytes} bytes) in {watched:?} \
         ({intervals} intervals); server RSS {rss_before} KiB -> {rss_after} KiB"
    );
    assert!(
        comments >= 1,
        "an idle stream must still get its keep-alives (late, with the lab's latency): \
         none in {watched:?}"
    );
    assert!(
        comments <= 2 * intervals,
        "at most 2 keep-alives per {KEEPALIVE_MS} ms interval: got {comments} \
         ({bytes} bytes) in {watched:?}, {intervals} intervals"
    );
    assert!(
        grown_kib < 4 * 1024,
        "the server's memory must stay flat for an idle stream: RSS grew by \
         {grown_kib} KiB ({rss_before} -> {rss_after}) in {watched:?}"
    );
}
