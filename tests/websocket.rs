//! The WebSocket transport frame by frame: welcome, backlog, live messages,
//! acks and error frames on one connection; a frame over the limit closes
//! it with 1009; pages from other sites may not open it.

mod common;

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// open → welcome with the newest id, then the backlog after `since`, then
/// live messages (the sender's own included), acks with the client's ref,
/// and error frames that leave the connection open.
#[tokio::test]
async fn welcome_backlog_live_ack_and_error_frames() {
    let server = start_server();
    let api = Api::new(&server);
    for i in 1..=3 {
        api.post_ok("ada", &format!("old {i}")).await;
    }

    let mut ws = Ws::connect(&server, 1).await;
    assert_eq!(ws.next().await, json!({"type": "welcome", "last_id": 3}));
    assert_eq!(
        ids(&ws.messages(2).await),
        vec![2, 3],
        "backlog after since=1"
    );

    // receive: a live message posted over HTTP.
    let id = api.post_ok("bob", "live").await;
    let live = ws.messages(1).await;
    assert_eq!(
        (live[0]["id"].as_u64(), live[0]["text"].as_str()),
        (Some(id), Some("live"))
    );

    // send: stored, acknowledged, and echoed to the sender like to anyone.
    ws.send_json(json!({"type":"send","ref":"c-1","author":" ada ","text":"hi from ws"}))
        .await;
    let mut ack = None;
    let mut echoed = None;
    while ack.is_none() || echoed.is_none() {
        let frame = ws.next().await;
        match frame["type"].as_str() {
            Some("ack") => ack = Some(frame),
            Some("message") => echoed = Some(frame["message"].clone()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (ack, echoed) = (ack.unwrap(), echoed.unwrap());
    assert_eq!(ack, json!({"type":"ack","ref":"c-1","id":5}));
    assert_eq!(echoed["author"], "ada", "trimmed");
    assert_eq!(echoed["via"], "websocket");

    // Errors: each is a frame with the ref echoed; the connection stays open.
    ws.send_json(json!({"type":"send","ref":"c-2","author":"ada","text":"   "}))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(
        (error["ref"].as_str(), error["code"].as_str()),
        (Some("c-2"), Some("invalid_text"))
    );
    assert!(error["error"].as_str().unwrap().contains("text"));

    ws.send_json(json!({"type":"shout","ref":"c-3"})).await;
    let error = ws.next_of("error").await;
    assert_eq!(
        (error["ref"].as_str(), error["code"].as_str()),
        (Some("c-3"), Some("unknown_type"))
    );

    ws.stream
        .send(WsMessage::Text("{not json".into()))
        .await
        .unwrap();
    let error = ws.next_of("error").await;
    assert_eq!(error["code"], "bad_json");
    assert!(error.get("ref").is_none());

    ws.stream
        .send(WsMessage::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(ws.next_of("error").await["code"], "binary_not_supported");

    ws.send_json(json!({"type":"send","ref":"c-4","author":"ada","text":"bell\u{7}"}))
        .await;
    assert_eq!(ws.next_of("error").await["code"], "control_character");

    // Rejected frames took no id: the next message is 6.
    ws.send_json(json!({"type":"send","ref":"c-5","author":"ada","text":"still here"}))
        .await;
    assert_eq!(ws.next_of("ack").await["id"], 6);
    assert_eq!(api.all_since(0).await.len(), 6);
}

/// A frame larger than `--ws-max-frame-bytes` closes the connection with
/// 1009 (message too big); a new connection works.
#[tokio::test]
async fn oversized_frame_closes_with_1009() {
    let server = start_with(|c| c.ws_max_frame_bytes = 1024);
    let mut ws = Ws::connect(&server, 0).await;
    ws.next_of("welcome").await;
    let big = "x".repeat(2048);
    ws.send_json(json!({"type":"send","ref":"big","author":"ada","text":big}))
        .await;
    assert_eq!(ws.close_code().await, 1009);

    let mut again = Ws::connect(&server, 0).await;
    again.next_of("welcome").await;
    again
        .send_json(json!({"type":"send","ref":"ok","author":"ada","text":"small"}))
        .await;
    assert_eq!(again.next_of("ack").await["id"], 1);
}

/// Browsers send Origin; a page on another site must not open the room.
/// Pages of this server and allow-listed origins may; clients without an
/// Origin (scripts, curl) may.
#[tokio::test]
async fn websocket_upgrade_checks_origin() {
    let server = start_with(|c| c.allowed_origins = vec!["http://teacher.example".into()]);
    let connect = |origin: Option<String>| {
        let mut request = server.ws_url("/api/ws").into_client_request().unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    let same = format!("http://{}", server.addr);
    assert!(connect(Some(same)).await.is_ok());
    assert!(connect(Some("http://teacher.example".into())).await.is_ok());
    assert!(connect(None).await.is_ok());
    match connect(Some("http://evil.example".into())).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], "forbidden_origin");
        }
        other => panic!("expected a 403, got {other:?}"),
    }
}

/// A refused upgrade is an ordinary HTTP error with the JSON body.
#[tokio::test]
async fn refused_upgrades_are_json_http_errors() {
    let server = start_server();
    let api = Api::new(&server);
    match tokio_tungstenite::connect_async(server.ws_url("/api/ws?since=-1")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["code"], "bad_query");
        }
        other => panic!("expected a 400, got {other:?}"),
    }
    // A plain GET (no Upgrade header) is told what the endpoint speaks.
    let (status, _, body) = api.get("/api/ws").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("not_websocket"))
    );
}

/// `/api/echo` sends every text and binary frame straight back.
#[tokio::test]
async fn echo_socket_echoes_text_and_binary() {
    let server = start_server();
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url("/api/echo"))
        .await
        .unwrap();
    use futures_util::StreamExt;
    ws.send(WsMessage::Text("hello".into())).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        WsMessage::Text("hello".into())
    );
    ws.send(WsMessage::Binary(vec![0, 255, 7].into()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        WsMessage::Binary(vec![0, 255, 7].into())
    );
    ws.close(None).await.unwrap();
}
