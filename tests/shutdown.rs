//! Graceful shutdown (Ctrl-C / SIGTERM): held long polls are answered,
//! WebSockets are closed with 1001 ("going away"), SSE streams end, and
//! everything that was acknowledged is on disk for the next start.

mod common;

use common::*;

#[tokio::test]
async fn shutdown_says_goodbye_on_every_transport() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("room.db");
    let server = start_with(|c| c.db = db.clone());
    let api = Api::new(&server);
    api.post_ok("ada", "before the bell").await;

    let mut ws = Ws::connect(&server, 1).await;
    ws.next_of("welcome").await;
    let mut sse = Sse::connect(&server, "?since=1", None).await;
    sse.next().await; // retry:
    let held = {
        let api = api.clone();
        tokio::spawn(async move { api.get("/api/longpoll?since=1&timeout=50").await })
    };
    api.wait_for_stats("all three connected", |s| {
        let t = &s["transports"];
        t["longpoll"]["open"] == 1 && t["websocket"]["open"] == 1 && t["sse"]["open"] == 1
    })
    .await;

    let stopping = tokio::task::spawn_blocking(move || server.stop());
    assert_eq!(ws.close_code().await, 1001);
    assert!(sse.next().await.is_none(), "the event stream ends");
    let (status, headers, body) = held.await.unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("shutting_down"))
    );
    assert!(headers.contains_key("retry-after"));
    stopping.await.unwrap().unwrap();

    let server = start_with(|c| c.db = db.clone());
    assert_eq!(ids(&Api::new(&server).all_since(0).await), vec![1]);
}
