//! Every transport reads the same log: messages posted from any transport
//! reach readers of every other transport exactly once, in id order, and a
//! reader that reconnects with its cursor misses nothing.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Polls `GET /api/messages` like the setTimeout page does (one request at a
/// time, each from the last cursor) until `count` messages arrived.
async fn poll_until(api: &Api, transport: &str, mut since: u64, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while out.len() < count {
        assert!(tokio::time::Instant::now() < deadline, "polling timed out");
        let (status, headers, body) = api
            .get(&format!(
                "/api/messages?since={since}&transport={transport}&seq={}",
                out.len()
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(headers["cache-control"], "no-store");
        for m in body["messages"].as_array().unwrap() {
            since = m["id"].as_u64().unwrap();
            out.push(m.clone());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out
}

/// Long-polls until `count` messages arrived.
async fn long_poll_until(api: &Api, mut since: u64, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < count {
        let (status, headers, body) = api
            .get(&format!("/api/longpoll?since={since}&timeout=10"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert!(headers.contains_key("server-timing"));
        for m in body["messages"].as_array().unwrap() {
            since = m["id"].as_u64().unwrap();
            out.push(m.clone());
        }
    }
    out
}

/// Five readers — setInterval-style and setTimeout-style polling, long
/// polling, a WebSocket and an SSE stream — all see the same 40 messages,
/// sent from every transport (including WebSocket frames), once each and in
/// id order.
#[tokio::test]
async fn every_transport_sees_every_message_once_in_order() {
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    let mut ws = Ws::connect(&server, 0).await;
    assert_eq!(ws.next().await, json!({"type":"welcome","last_id":0}));
    let mut sse = Sse::connect(&server, "?since=0", None).await;
    let mut sender_ws = Ws::connect(&server, 0).await;

    const N: usize = 40;
    let readers = {
        let (a, b, c) = (api.clone(), api.clone(), api.clone());
        (
            tokio::spawn(async move { poll_until(&a, "interval", 0, N).await }),
            tokio::spawn(async move { poll_until(&b, "timeout", 0, N).await }),
            tokio::spawn(async move { long_poll_until(&c, 0, N).await }),
        )
    };
    let vias = ["interval", "timeout", "longpoll", "sse", "api"];
    for i in 0..N {
        if i % 6 == 5 {
            sender_ws
                .send_json(json!({"type":"send","ref":format!("r{i}"),"author":"ws","text":format!("m{i}")}))
                .await;
            let ack = sender_ws.next_of("ack").await;
            assert_eq!(ack["ref"], format!("r{i}"));
        } else {
            let (status, _) = api
                .post("poster", &format!("m{i}"), Some(vias[i % 6]))
                .await;
            assert_eq!(status, 201);
        }
    }

    let expected: Vec<u64> = (1..=N as u64).collect();
    let ws_got = ws.messages(N).await;
    let sse_got = sse.messages(N).await;
    let (interval, timeout, long) = (
        readers.0.await.unwrap(),
        readers.1.await.unwrap(),
        readers.2.await.unwrap(),
    );
    for (name, got) in [
        ("websocket", &ws_got),
        ("sse", &sse_got),
        ("interval", &interval),
        ("timeout", &timeout),
        ("longpoll", &long),
    ] {
        assert_eq!(
            ids(got),
            expected,
            "{name} readers see every id once, in order"
        );
        assert_eq!(
            got[5]["via"], "websocket",
            "{name}: WebSocket sends are via websocket"
        );
        assert_eq!(got[5]["text"], "m5");
    }
    // Nothing extra arrives afterwards on the push transports.
    api.post_ok("closer", "last").await;
    assert_eq!(ids(&ws.messages(1).await), vec![N as u64 + 1]);
    assert_eq!(ids(&sse.messages(1).await), vec![N as u64 + 1]);

    let stats = api.stats().await;
    assert_eq!(stats["room"]["last_id"], N as u64 + 1);
    assert!(
        stats["transports"]["interval"]["requests"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        stats["transports"]["websocket"]["messages_delivered"]
            .as_u64()
            .unwrap()
            >= N as u64
    );
}

/// A reader on each transport takes part of the log, goes away, and comes
/// back with its cursor while more was posted: it gets exactly the rest.
#[tokio::test]
async fn reconnecting_with_the_cursor_misses_nothing() {
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    for i in 0..10 {
        api.post_ok("a", &format!("before {i}")).await;
    }

    // WebSocket: read 4 of the backlog, drop the connection mid-stream.
    let mut ws = Ws::connect(&server, 0).await;
    let first = ws.messages(4).await;
    let ws_cursor = first.last().unwrap()["id"].as_u64().unwrap();
    drop(ws);

    // SSE: read 6, drop; resume with Last-Event-ID as EventSource would.
    let mut sse = Sse::connect(&server, "?since=0", None).await;
    let first_sse = sse.messages(6).await;
    let sse_cursor = first_sse.last().unwrap()["id"].to_string();
    drop(sse);

    // Polling with a small limit: the cursor pages through.
    let (_, _, page) = api.get("/api/messages?since=0&limit=3").await;
    assert_eq!(ids(page["messages"].as_array().unwrap()), vec![1, 2, 3]);
    assert_eq!(
        page["last_id"], 10,
        "last_id tells the client more is waiting"
    );

    for i in 0..5 {
        api.post_ok("b", &format!("after {i}")).await;
    }

    let mut ws = Ws::connect(&server, ws_cursor).await;
    assert_eq!(ws.next().await["type"], "welcome");
    assert_eq!(
        ids(&ws.messages(15 - ws_cursor as usize).await),
        (ws_cursor + 1..=15).collect::<Vec<_>>()
    );

    // Last-Event-ID wins over ?since.
    let mut sse = Sse::connect(&server, "?since=0", Some(&sse_cursor)).await;
    let cursor: u64 = sse_cursor.parse().unwrap();
    assert_eq!(
        ids(&sse.messages(15 - cursor as usize).await),
        (cursor + 1..=15).collect::<Vec<_>>()
    );

    let rest = poll_until(&api, "timeout", 3, 12).await;
    assert_eq!(ids(&rest), (4..=15).collect::<Vec<_>>());
    let rest = long_poll_until(&api, 12, 3).await;
    assert_eq!(ids(&rest), vec![13, 14, 15]);

    // Nothing more is pending for any of them.
    api.post_ok("c", "final").await;
    assert_eq!(ids(&ws.messages(1).await), vec![16]);
    assert_eq!(ids(&sse.messages(1).await), vec![16]);
}

/// A long poll is held until a message exists, answered with it and a
/// Server-Timing header; with nothing new it ends in 204 after `timeout`.
#[tokio::test]
async fn long_poll_holds_until_news_then_times_out_with_204() {
    let server = start_server();
    let api = Api::new(&server);

    let held = {
        let api = api.clone();
        tokio::spawn(async move {
            let response = api
                .http
                .get(api.url("/api/longpoll?since=0&timeout=30"))
                .send()
                .await
                .unwrap();
            let timing = response.headers()["server-timing"]
                .to_str()
                .unwrap()
                .to_owned();
            (
                response.status().as_u16(),
                timing,
                response.json::<Value>().await.unwrap(),
            )
        })
    };
    api.wait_for_stats("the poll to be held", |s| {
        s["transports"]["longpoll"]["open"] == 1
    })
    .await;
    assert!(!held.is_finished(), "held until there is news");
    let id = api.post_ok("ada", "wake up").await;
    let (status, timing, body) = held.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(ids(body["messages"].as_array().unwrap()), vec![id]);
    assert!(timing.starts_with("hold;dur="), "{timing}");

    // Already-available news is answered at once.
    let (status, _, body) = api.get("/api/longpoll?since=0&timeout=30").await;
    assert_eq!((status, body["last_id"].as_u64()), (200, Some(1)));

    let started = std::time::Instant::now();
    let (status, headers, body) = api.get("/api/longpoll?since=1&timeout=1").await;
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null, "204 has no body");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(
        headers["server-timing"]
            .to_str()
            .unwrap()
            .contains("hold;dur=")
    );
    api.wait_for_stats("the slot to be released", |s| {
        s["transports"]["longpoll"]["open"] == 0
    })
    .await;
}

/// A thousand held long polls cost no polling in the server and all wake
/// on one post.
#[tokio::test]
async fn a_thousand_held_long_polls_all_wake_on_one_post() {
    raise_fd_limit();
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    const N: usize = 1_000;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(N)
        .build()
        .unwrap();
    let mut polls = Vec::new();
    for _ in 0..N {
        let client = client.clone();
        let url = api.url("/api/longpoll?since=0&timeout=50");
        polls.push(tokio::spawn(async move {
            let response = client.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }));
    }
    api.wait_for_stats("1,000 held polls", |s| {
        s["transports"]["longpoll"]["open"] == N as u64
    })
    .await;
    let id = api.post_ok("ada", "everyone up").await;
    for poll in polls {
        let (status, body) = poll.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(ids(body["messages"].as_array().unwrap()), vec![id]);
    }
    let stats = api.stats().await;
    assert_eq!(
        stats["transports"]["longpoll"]["messages_delivered"],
        N as u64
    );
}

/// The page's polling requests are told apart by `transport=`, and the
/// stats count who is here by `client=`.
#[tokio::test]
async fn stats_count_requests_per_polling_page_and_clients() {
    let server = start_server();
    let api = Api::new(&server);
    for seq in 0..3 {
        api.get(&format!(
            "/api/messages?since=0&transport=interval&seq={seq}&client=tab-a"
        ))
        .await;
    }
    api.get("/api/messages?since=0&transport=interval&client=tab-b")
        .await;
    api.get("/api/messages?since=0&transport=timeout&client=tab-c")
        .await;
    let (status, _, body) = api.get("/api/messages?client=no%20spaces").await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_query")));
    let stats = api.stats().await;
    let t = &stats["transports"];
    assert_eq!(t["interval"]["requests"], 4);
    assert_eq!(t["interval"]["empty_responses"], 4);
    assert_eq!(t["interval"]["clients"], 2);
    assert_eq!(t["timeout"]["requests"], 1);
    assert_eq!(t["timeout"]["clients"], 1);
}
