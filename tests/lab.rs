//! The teacher's network lab: latency delays every delivery; jitter makes
//! overlapping setInterval polls answer out of order while each WebSocket
//! and SSE stream stays in order; an outage closes streams and refuses
//! requests, and every client recovers afterwards with nothing lost.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// Latency delays a poll's answer by at least that much, and says so in
/// Server-Timing; GET /api/lab shows the settings to anyone.
#[tokio::test]
async fn latency_delays_answers_and_shows_in_server_timing() {
    let server = start_server();
    let api = Api::new(&server);
    let settings = api.lab("teacher", json!({"latency_ms": 200})).await;
    assert_eq!(
        settings,
        json!({"latency_ms":200,"jitter_ms":0,"outage":false})
    );
    assert_eq!(api.get("/api/lab").await.2, settings);

    let started = Instant::now();
    let (status, headers, _) = api.get("/api/messages?since=0").await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let timing = headers["server-timing"].to_str().unwrap();
    assert!(timing.contains("lab;dur=200"), "{timing}");

    // Merge: a change that leaves latency out keeps it.
    let settings = api.lab("teacher", json!({"jitter_ms": 5})).await;
    assert_eq!(settings["latency_ms"], 200);
}

/// With jitter on, requests fired on a clock (setInterval) overlap and
/// their answers overtake each other; a WebSocket and an SSE stream get
/// every message in id order regardless.
#[tokio::test]
async fn jitter_reorders_interval_polls_but_never_a_stream() {
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    api.lab("teacher", json!({"latency_ms": 10, "jitter_ms": 400}))
        .await;
    let mut ws = Ws::connect(&server, 0).await;
    let mut sse = Sse::connect(&server, "?since=0", None).await;

    // setInterval: fire every 20 ms whether or not the last one came back.
    let (arrivals_tx, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut requests = Vec::new();
    for seq in 0..30u32 {
        tick.tick().await;
        let (poller, tx) = (api.clone(), arrivals_tx.clone());
        requests.push(tokio::spawn(async move {
            let (status, _, body) = poller
                .get(&format!(
                    "/api/messages?since=0&transport=interval&seq={seq}"
                ))
                .await;
            assert_eq!(status, 200);
            tx.send((seq, body["last_id"].as_u64().unwrap())).unwrap();
        }));
        if seq % 3 == 0 {
            api.post_ok("ada", &format!("during poll {seq}")).await;
        }
    }
    for request in requests {
        request.await.unwrap();
    }
    drop(arrivals_tx);
    let mut order = Vec::new();
    while let Some((seq, last_id)) = arrivals.recv().await {
        order.push((seq, last_id));
    }
    let overtaken = order.windows(2).filter(|w| w[1].0 < w[0].0).count();
    assert!(
        overtaken > 0,
        "answers arrived strictly in request order: {order:?}"
    );
    let stale = order.windows(2).filter(|w| w[1].1 < w[0].1).count();
    assert!(
        stale > 0,
        "an older view of the room should arrive after a newer one: {order:?}"
    );

    // The streams: 10 messages, in id order, once each.
    let ws_ids = ids(&ws.messages(10).await);
    let sse_ids = ids(&sse.messages(10).await);
    let expected: Vec<u64> = (1..=10).collect();
    assert_eq!(ws_ids, expected);
    assert_eq!(sse_ids, expected);

    // setTimeout-style polling, under the same jitter, is in order by
    // construction — one request at a time — and gets every message once.
    let mut since = 0;
    let mut seen = Vec::new();
    while seen.len() < 10 {
        let (_, _, body) = api
            .get(&format!("/api/messages?since={since}&transport=timeout"))
            .await;
        for m in body["messages"].as_array().unwrap() {
            since = m["id"].as_u64().unwrap();
            seen.push(since);
        }
    }
    assert_eq!(seen, expected);
}

/// Outage: open WebSockets close with 1013, SSE streams end, requests get
/// 503; when it ends, every transport resumes from its cursor and gets
/// everything exactly once.
#[tokio::test]
async fn outage_closes_streams_and_everyone_recovers() {
    let server = start_server();
    let api = Api::new(&server);
    api.post_ok("ada", "before").await;
    let mut ws = Ws::connect(&server, 0).await;
    let mut sse = Sse::connect(&server, "?since=0", None).await;
    assert_eq!(ids(&ws.messages(1).await), vec![1]);
    assert_eq!(ids(&sse.messages(1).await), vec![1]);

    api.lab(&server.teacher_token, json!({"outage": true}))
        .await;
    assert_eq!(ws.close_code().await, 1013);
    assert!(sse.next().await.is_none(), "the event stream ends");
    let (status, headers, body) = api.get("/api/messages?since=1").await;
    assert_eq!((status, body["code"].as_str()), (503, Some("outage")));
    assert!(headers.contains_key("retry-after"));
    api.wait_for_stats("streams to be closed", |s| {
        s["transports"]["websocket"]["open"] == 0 && s["transports"]["sse"]["open"] == 0
    })
    .await;

    api.lab(&server.teacher_token, json!({"outage": false}))
        .await;
    api.post_ok("ada", "after").await;
    let mut ws = Ws::connect(&server, 1).await;
    let mut sse = Sse::connect(&server, "", Some("1")).await;
    assert_eq!(ids(&ws.messages(1).await), vec![2]);
    assert_eq!(ids(&sse.messages(1).await), vec![2]);
    let (_, _, body) = api.get("/api/longpoll?since=1&timeout=5").await;
    assert_eq!(ids(body["messages"].as_array().unwrap()), vec![2]);
}

/// Every SSE stream starts with `retry:`, and an idle stream gets comment
/// keep-alives.
#[tokio::test]
async fn sse_starts_with_retry_and_keeps_idle_streams_alive() {
    let server = start_with(|c| {
        c.sse_keepalive_ms = 100;
        c.sse_retry_ms = 1500;
    });
    let mut sse = Sse::connect(&server, "", None).await;
    let first = sse.next().await.unwrap();
    assert_eq!(first.retry, Some(1500));
    // Wait for keep-alives by reading until a message arrives.
    let api = Api::new(&server);
    let reader = tokio::spawn(async move {
        let got = sse.messages(1).await;
        (sse.comments, got)
    });
    // Give the stream time for at least two keep-alive intervals of
    // silence, measured by the server's own clock via /api/stats bytes.
    api.wait_for_stats("keep-alives to be sent", |s| {
        s["transports"]["sse"]["bytes_sent"].as_u64().unwrap() >= 16 + 2 * 14
    })
    .await;
    api.post_ok("ada", "hello").await;
    let (comments, got) = reader.await.unwrap();
    assert!(comments >= 2, "{comments} keep-alives");
    assert_eq!(ids(&got), vec![1]);
}
