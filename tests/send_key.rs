//! A page whose `POST` timed out, or whose WebSocket `ack` never came, sends
//! the same message again with the same `key` (contract v2). The server
//! stores it once: the repeat is answered `200` (over HTTP) or with the same
//! `ack` (over WebSocket) carrying the message stored the first time — also
//! when twenty repeats race, when the repeat comes over the other transport,
//! and after a restart. The key belongs to the sender: another author's
//! identical key is another message, a malformed key is refused (`422`,
//! `invalid_key`), and readers never see a key.

mod common;

use common::*;
use serde_json::{Value, json};

fn body(author: &str, text: &str, key: &str) -> Value {
    json!({"author": author, "text": text, "key": key})
}

fn send_frame(reference: &str, author: &str, text: &str, key: &str) -> Value {
    json!({"type": "send", "ref": reference, "author": author, "text": text, "key": key})
}

/// A message as a reader sees it must not carry the sender's key.
fn assert_no_key(message: &Value, seen_by: &str) {
    assert!(
        message.get("key").is_none(),
        "{seen_by} sees the sender's key: {message}"
    );
}

/// The second POST with a key answers 200 with the first message — even if
/// its text differs (the contract: "the answer is the message stored the
/// first time") — and the log holds one message.
#[tokio::test]
async fn a_repeated_post_answers_200_with_the_first_message() {
    let server = start_server();
    let api = Api::new(&server);
    let (status, first) = api.post_json(&body("ada", "hello", "tab-1:1")).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["id"], 1);

    let (status, again) = api.post_json(&body("ada", "hello", "tab-1:1")).await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "a repeat answers 200 with the first message"
    );
    let (status, edited) = api.post_json(&body("ada", "hello!!", "tab-1:1")).await;
    assert_eq!(
        (status, &edited),
        (200, &first),
        "a repeat with other text is still a repeat"
    );

    assert_eq!(
        ids(&api.all_since(0).await),
        vec![1],
        "the log holds one message"
    );
    // The repeats took no id: the next message is 2.
    assert_eq!(api.post_ok("ada", "next").await, 2);
}

/// Twenty POSTs with one key at the same time: exactly one is stored (201),
/// the nineteen others answer 200 with that same message.
#[tokio::test]
async fn twenty_concurrent_posts_with_one_key_store_one_message() {
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    let answers = futures_util::future::join_all((0..20).map(|_| {
        let api = api.clone();
        async move { api.post_json(&body("ada", "once", "race")).await }
    }))
    .await;
    let created: Vec<_> = answers.iter().filter(|(s, _)| *s == 201).collect();
    let repeated: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(
        (created.len(), repeated.len()),
        (1, 19),
        "one 201 and nineteen 200: {:?}",
        answers
            .iter()
            .map(|(s, b)| (s, b["id"].clone()))
            .collect::<Vec<_>>()
    );
    for (_, answer) in &repeated {
        assert_eq!(
            *answer, created[0].1,
            "every repeat answers the stored message"
        );
    }
    assert_eq!(api.all_since(0).await.len(), 1, "the log holds one message");
    assert_eq!(api.post_ok("ada", "next").await, 2);
}

/// Over WebSocket: a repeated `send` with a key gets an `ack` with the same
/// id (under its own `ref`); so do ten sockets racing with one key. A reader
/// sees each message once.
#[tokio::test]
async fn a_repeated_websocket_send_gets_the_same_ack() {
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    let mut reader = Ws::connect(&server, 0).await;
    reader.next_of("welcome").await;

    let mut ws = Ws::connect(&server, 0).await;
    ws.send_json(send_frame("a", "ada", "hello", "ws-1")).await;
    let first = ws.next_of("ack").await;
    assert_eq!(first, json!({"type": "ack", "ref": "a", "id": 1}));
    ws.send_json(send_frame("b", "ada", "hello", "ws-1")).await;
    let again = ws.next_of("ack").await;
    assert_eq!(
        again,
        json!({"type": "ack", "ref": "b", "id": 1}),
        "the repeat's ack"
    );

    let mut racers = Vec::new();
    for _ in 0..10 {
        let mut racer = Ws::connect(&server, 0).await;
        racer.next_of("welcome").await;
        racers.push(racer);
    }
    let acks = futures_util::future::join_all(racers.iter_mut().enumerate().map(
        |(i, racer)| async move {
            racer
                .send_json(send_frame(&format!("r{i}"), "grace", "once", "ws-race"))
                .await;
            racer.next_of("ack").await["id"].clone()
        },
    ))
    .await;
    assert!(
        acks.iter().all(|id| *id == 2),
        "every racer's ack names id 2: {acks:?}"
    );

    assert_eq!(
        ids(&api.all_since(0).await),
        vec![1, 2],
        "the log holds two messages"
    );
    // The reader got 1 and 2 once each: the next message after them is 3.
    assert_eq!(api.post_ok("ada", "next").await, 3);
    assert_eq!(ids(&reader.messages(3).await), vec![1, 2, 3]);
}

/// A message first sent by POST and repeated as a WebSocket `send`, or the
/// other way round, is recognised as the same message.
#[tokio::test]
async fn a_repeat_over_the_other_transport_is_recognised() {
    let server = start_server();
    let api = Api::new(&server);
    let mut ws = Ws::connect(&server, 0).await;
    ws.next_of("welcome").await;

    let (status, posted) = api.post_json(&body("ada", "by post", "k-post")).await;
    assert_eq!(status, 201, "{posted}");
    ws.send_json(send_frame("again", "ada", "by post", "k-post"))
        .await;
    assert_eq!(
        ws.next_of("ack").await,
        json!({"type": "ack", "ref": "again", "id": posted["id"]}),
        "a POST repeated over WebSocket"
    );

    ws.send_json(send_frame("first", "ada", "by frame", "k-frame"))
        .await;
    let sent = ws.next_of("ack").await["id"].clone();
    assert_eq!(sent, 2, "a new key over WebSocket is a new message");
    let (status, repeated) = api.post_json(&body("ada", "by frame", "k-frame")).await;
    assert_eq!(
        (status, &repeated["id"]),
        (200, &sent),
        "a WebSocket send repeated by POST: {repeated}"
    );
    assert_eq!(repeated["via"], "websocket", "the first message, as stored");

    assert_eq!(ids(&api.all_since(0).await), vec![1, 2]);
}

/// Keys are per author: the same key from someone else is their message.
#[tokio::test]
async fn the_same_key_from_another_author_is_another_message() {
    let server = start_server();
    let api = Api::new(&server);
    let (status, ada) = api.post_json(&body("ada", "hi", "tab-1:1")).await;
    assert_eq!(status, 201, "{ada}");
    let (status, grace) = api.post_json(&body("grace", "hi", "tab-1:1")).await;
    assert_eq!(status, 201, "another author, same key: {grace}");
    assert_eq!(grace["id"], 2);
    let (status, again) = api.post_json(&body("grace", "hi", "tab-1:1")).await;
    assert_eq!((status, &again), (200, &grace), "grace's own repeat");
    assert_eq!(ids(&api.all_since(0).await), vec![1, 2]);
}

/// A key is 1..=64 printable ASCII characters; anything else is `422`
/// `invalid_key` over HTTP, an error frame with that code over WebSocket,
/// and stores nothing. The bounds themselves are fine.
#[tokio::test]
async fn malformed_keys_are_refused_with_invalid_key() {
    let server = start_with(|c| c.no_limits = true);
    let api = Api::new(&server);
    let mut ws = Ws::connect(&server, 0).await;
    ws.next_of("welcome").await;
    let long = "k".repeat(65);
    let malformed = [
        ("empty", ""),
        ("65 characters", long.as_str()),
        ("a tab", "tab\there"),
        ("a NUL", "nul\u{0}"),
        ("DEL", "del\u{7f}"),
        ("a newline", "line\nbreak"),
        ("non-ASCII", "clé"),
        ("an emoji", "key🙂"),
    ];
    for (what, key) in malformed {
        let (status, answer) = api.post_json(&body("ada", "hi", key)).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (422, Some("invalid_key")),
            "POST with {what} as key: {answer}"
        );
        assert!(
            answer["error"].as_str().is_some_and(|e| !e.is_empty()),
            "a sentence for a person: {answer}"
        );
        ws.send_json(send_frame(what, "ada", "hi", key)).await;
        let reply = ws.next().await;
        assert_eq!(
            (
                reply["type"].as_str(),
                reply["code"].as_str(),
                reply["ref"].as_str()
            ),
            (Some("error"), Some("invalid_key"), Some(what)),
            "WebSocket send with {what} as key: {reply}"
        );
    }
    assert!(api.all_since(0).await.is_empty(), "nothing was stored");

    // The bounds: one character, 64, every printable ASCII character.
    for key in [
        "!",
        &"k".repeat(64),
        "~ !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~",
    ] {
        let (status, answer) = api.post_json(&body("ada", "hi", key)).await;
        assert_eq!(status, 201, "key {key:?}: {answer}");
    }
}

/// Keys are remembered with the messages: a repeat after the server
/// restarted on the same database file is still a repeat.
#[tokio::test]
async fn a_repeat_after_a_restart_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("room.db");
    let server = start_with(|c| c.db = db.clone());
    let (status, first) = Api::new(&server)
        .post_json(&body("ada", "before", "tab-7:3"))
        .await;
    assert_eq!(status, 201, "{first}");
    server.stop().unwrap();

    let server = start_with(|c| c.db = db.clone());
    let api = Api::new(&server);
    let (status, again) = api.post_json(&body("ada", "before", "tab-7:3")).await;
    assert_eq!(
        (status, &again),
        (200, &first),
        "the repeat after a restart"
    );
    assert_eq!(ids(&api.all_since(0).await), vec![1]);
}

/// Readers see the message without its key, on every transport.
#[tokio::test]
async fn the_key_is_not_part_of_the_message_readers_see() {
    let server = start_server();
    let api = Api::new(&server);
    let mut ws = Ws::connect(&server, 0).await;
    let mut sse = Sse::connect(&server, "?since=0", None).await;
    let (status, posted) = api.post_json(&body("ada", "secret key", "tab-1:1")).await;
    assert_eq!(status, 201, "{posted}");
    assert_no_key(&posted, "the POST's answer");
    let (_, _, polled) = api.get("/api/messages?since=0").await;
    assert_no_key(&polled["messages"][0], "a poll");
    let (_, _, long_polled) = api.get("/api/longpoll?since=0&timeout=1").await;
    assert_no_key(&long_polled["messages"][0], "a long poll");
    assert_no_key(&ws.messages(1).await[0], "a WebSocket");
    assert_no_key(&sse.messages(1).await[0], "an event stream");
    // And the sender's own repeat gets the same message, without its key.
    let (status, again) = api.post_json(&body("ada", "secret key", "tab-1:1")).await;
    assert_eq!(status, 200, "{again}");
    assert_no_key(&again, "the repeat's answer");
}
