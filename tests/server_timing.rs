//! DevTools' Timing tab believes the server's `Server-Timing` header: with
//! the lab's latency at 800 ms, a poll answered at once and a long poll
//! (answered at once, or held until news) must report `hold` and `lab`
//! durations that together are no more than the time the answer really
//! took, as the client measured it. (Review, issue 10: an immediate poll
//! said `hold;dur=801, lab;dur=800` — the lab's delay counted twice.)

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const LATENCY_MS: u64 = 800;
/// Rounding (the header has 0.1 ms for hold and whole ms for lab) and the
/// client's own clock reads; far less than the double count it catches.
const MARGIN_MS: f64 = 25.0;

/// The `dur=` of each named entry of a `Server-Timing` header.
fn entries(header: &str) -> Vec<(String, f64)> {
    header
        .split(',')
        .map(|entry| {
            let mut params = entry.split(';').map(str::trim);
            let name = params.next().unwrap_or_default().to_owned();
            let dur = params
                .find_map(|p| p.strip_prefix("dur="))
                .and_then(|d| d.parse().ok())
                .unwrap_or_else(|| panic!("entry without a dur: {entry:?} in {header:?}"));
            (name, dur)
        })
        .collect()
}

/// GETs `path`, measures the whole answer (headers and body), and checks
/// its Server-Timing against that measurement.
async fn check_timing(api: &Api, path: &str, expect_status: u16) {
    let started = Instant::now();
    let response = api.http.get(api.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let header = response
        .headers()
        .get("server-timing")
        .unwrap_or_else(|| panic!("{path}: no Server-Timing header"))
        .to_str()
        .unwrap()
        .to_owned();
    response.bytes().await.unwrap();
    let real_ms = started.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(status, expect_status, "{path}");

    let entries = entries(&header);
    let lab = entries
        .iter()
        .find(|(name, _)| name == "lab")
        .unwrap_or_else(|| panic!("{path}: no lab entry in {header:?}"))
        .1;
    assert!(
        entries.iter().any(|(name, _)| name == "hold"),
        "{path}: no hold entry in {header:?}"
    );
    // The lab's delay really happened, and the header says so.
    assert!(
        lab >= LATENCY_MS as f64 && real_ms >= LATENCY_MS as f64,
        "{path}: lab {lab} ms, real {real_ms:.1} ms, expected at least {LATENCY_MS}: {header:?}"
    );
    let total: f64 = entries.iter().map(|(_, dur)| dur).sum();
    assert!(
        total <= real_ms + MARGIN_MS,
        "{path}: Server-Timing adds up to {total:.1} ms but the answer took {real_ms:.1} ms: {header:?}"
    );
}

/// setInterval / setTimeout polling: answered at once, then delayed by the lab.
#[tokio::test]
async fn an_immediate_poll_counts_the_lab_delay_once() {
    let server = start_server();
    let api = Api::new(&server);
    api.post_ok("ada", "hello").await;
    api.lab("teacher", json!({"latency_ms": LATENCY_MS})).await;
    check_timing(&api, "/api/messages?since=0&transport=interval", 200).await;
    check_timing(&api, "/api/messages?since=1&transport=timeout", 200).await;
}

/// Long polling, answered at once (news already there) and after a hold
/// (news comes while it is held): right today, and kept right.
#[tokio::test]
async fn a_long_poll_counts_the_lab_delay_once() {
    let server = start_server();
    let api = Api::new(&server);
    api.post_ok("ada", "hello").await;
    api.lab("teacher", json!({"latency_ms": LATENCY_MS})).await;
    check_timing(&api, "/api/longpoll?since=0&timeout=5", 200).await;

    let held = {
        let api = api.clone();
        tokio::spawn(
            async move { check_timing(&api, "/api/longpoll?since=1&timeout=10", 200).await },
        )
    };
    api.wait_for_stats("the long poll to be held", |s| {
        s["transports"]["longpoll"]["open"] == 1
    })
    .await;
    // Let the hold be long enough to matter next to the lab's delay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    api.post_ok("grace", "news").await;
    held.await.unwrap();

    // And a hold that ends in 204: nothing came within the timeout.
    check_timing(&api, "/api/longpoll?since=2&timeout=1", 204).await;
}
