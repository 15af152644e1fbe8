//! Each connection and rate limit refuses with the contract's JSON error —
//! never a silent drop — and the server keeps serving everyone else.

mod common;

use common::*;
use serde_json::{Value, json};

/// What a refused upgrade or stream looks like to a client.
async fn refused_status(api: &Api, path: &str) -> (u16, Value, bool) {
    let response = api.http.get(api.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key("retry-after");
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        retry_after,
    )
}

/// Per-address limits answer 429, server-wide totals 503, both with
/// `too_many_connections` and Retry-After; closing one frees its slot.
#[tokio::test]
async fn connection_limits_per_address_and_in_total() {
    let server = start_with(|c| {
        c.ws_per_ip = 2;
        c.sse_per_ip = 2;
        c.longpoll_per_ip = 2;
    });
    let api = Api::new(&server);

    // WebSockets: two are fine, the third is refused before the upgrade.
    let ws1 = Ws::connect(&server, 0).await;
    let _ws2 = Ws::connect(&server, 0).await;
    match tokio_tungstenite::connect_async(server.ws_url("/api/ws")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], "too_many_connections");
        }
        other => panic!("expected 429, got {other:?}"),
    }
    drop(ws1);
    api.wait_for_stats("the slot back", |s| {
        s["transports"]["websocket"]["open"] == 1
    })
    .await;
    let _ws3 = Ws::connect(&server, 0).await;

    // SSE streams.
    let _s1 = Sse::connect(&server, "", None).await;
    let _s2 = Sse::connect(&server, "", None).await;
    let (status, body, retry) = refused_status(&api, "/api/events").await;
    assert_eq!(
        (status, body["code"].as_str(), retry),
        (429, Some("too_many_connections"), true)
    );

    // Held long polls.
    let mut held = Vec::new();
    for _ in 0..2 {
        let api = api.clone();
        held.push(tokio::spawn(async move {
            api.get("/api/longpoll?since=0&timeout=30").await
        }));
    }
    api.wait_for_stats("two held polls", |s| {
        s["transports"]["longpoll"]["open"] == 2
    })
    .await;
    let (status, body, retry) = refused_status(&api, "/api/longpoll?since=0&timeout=30").await;
    assert_eq!(
        (status, body["code"].as_str(), retry),
        (429, Some("too_many_connections"), true)
    );

    // Everyone else is still served: a post wakes both held polls.
    let id = api.post_ok("ada", "still fine").await;
    for poll in held {
        let (status, _, body) = poll.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(ids(body["messages"].as_array().unwrap()), vec![id]);
    }

    // Totals: a second server with a total of one stream.
    let server = start_with(|c| c.sse_total = 1);
    let api = Api::new(&server);
    let _only = Sse::connect(&server, "", None).await;
    let (status, body, retry) = refused_status(&api, "/api/events").await;
    assert_eq!(
        (status, body["code"].as_str(), retry),
        (503, Some("too_many_connections"), true)
    );
    assert!(body["error"].as_str().unwrap().contains("full"));
}

/// Over a WebSocket, the rate limit is an error frame with the ref and how
/// long to wait; the connection stays open and works once the bucket refills.
#[tokio::test]
async fn websocket_rate_limit_is_an_error_frame_not_a_drop() {
    let server = start_with(|c| {
        c.post_rate = 20.0;
        c.post_burst = 2;
    });
    let mut ws = Ws::connect(&server, 0).await;
    ws.next_of("welcome").await;
    for i in 0..2 {
        ws.send_json(json!({"type":"send","ref":i,"author":"ada","text":"burst"}))
            .await;
        ws.next_of("ack").await;
    }
    ws.send_json(json!({"type":"send","ref":"third","author":"ada","text":"too fast"}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["ref"], "third");
    let wait = error["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 50, "{wait}");

    // After the wait, the same connection sends again.
    tokio::time::sleep(std::time::Duration::from_millis(wait + 5)).await;
    ws.send_json(json!({"type":"send","ref":"later","author":"ada","text":"patient"}))
        .await;
    let ack = ws.next_of("ack").await;
    assert_eq!(
        (ack["ref"].as_str(), ack["id"].as_u64()),
        (Some("later"), Some(3))
    );
}

/// The rate limit is per address and shared by both ways of sending.
#[tokio::test]
async fn rate_limit_is_shared_by_http_and_websocket_sends() {
    let server = start_with(|c| {
        c.post_rate = 0.1;
        c.post_burst = 2;
    });
    let api = Api::new(&server);
    api.post_ok("ada", "one").await;
    let mut ws = Ws::connect(&server, 0).await;
    ws.send_json(json!({"type":"send","ref":"two","author":"ada","text":"two"}))
        .await;
    ws.next_of("ack").await;
    let (status, body) = api.post("ada", "three", None).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("rate_limited")));
    let stats = api.stats().await;
    assert_eq!(stats["room"]["posts_rate_limited"], 1);
}
