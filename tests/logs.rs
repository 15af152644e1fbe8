//! The transports are written once, for any ordered log. These tests run
//! the same transport checks against every log: the chat, the shared
//! document's operations, its presence (carets, in memory only), and a
//! made-up log of numbers that exists only in this file — served by nothing more
//! than a [`Topic`] impl and a route per transport. If adding a log needed
//! a copy of any transport, the made-up one could not pass them.
//!
//! Each check: every transport (setInterval- and setTimeout-style polling,
//! long polling, WebSocket, SSE) reads every entry once, in order; a reader
//! that comes back with its cursor gets exactly the rest; a long poll is
//! held until news and ends in 204 without; the lab's jitter delays push
//! frames without reordering them; the lab's outage refuses and closes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use bytes::Bytes;
use bytestring::ByteString;
use common::*;
use serde_json::{Value, json};
use weebsockets::error::ApiError;
use weebsockets::identity::Peer;
use weebsockets::log::{Entry, Log, Wire};
use weebsockets::server::{api_scope, resource};
use weebsockets::stats::TransportSet;
use weebsockets::transports::{Topic, long_poll, polling, sse, websocket};
use weebsockets::{AppState, Running};

/// An entry of the made-up log: just its position.
struct Number {
    n: u64,
    wire: Wire,
}

impl Entry for Number {
    fn position(&self) -> u64 {
        self.n
    }
    fn wire(&self) -> &Wire {
        &self.wire
    }
}

/// The made-up log: numbers, appended by the test itself, read-only for
/// clients.
struct Tally {
    log: Log<Number>,
    stats: TransportSet,
}

impl Tally {
    fn new() -> Arc<Tally> {
        Arc::new(Tally {
            log: Log::new(Vec::new(), 0, 100, None),
            stats: TransportSet::default(),
        })
    }

    fn append(&self) -> u64 {
        let n = self.log.last() + 1;
        let json = format!(r#"{{"n":{n}}}"#);
        self.log.publish(&[Arc::new(Number {
            n,
            wire: Wire {
                ws_frame: ByteString::from(format!(r#"{{"type":"number","n":{n}}}"#)),
                sse_event: Bytes::from(format!("id: {n}\nevent: number\ndata: {json}\n\n")),
                json: Bytes::from(json),
            },
        })]);
        n
    }
}

impl Topic for Tally {
    type Entry = Number;
    const ENTRIES: &'static str = "numbers";
    const LAST: &'static str = "last_n";

    fn log(&self) -> &Log<Number> {
        &self.log
    }

    fn stats<'a>(&'a self, _state: &'a AppState) -> &'a TransportSet {
        &self.stats
    }

    async fn on_frame(&self, _: &AppState, _: &Peer, _: Value) -> Result<Option<String>, ApiError> {
        Err(ApiError::UnknownFrameType("anything".into()))
    }
}

/// Which log.
#[derive(PartialEq)]
enum Kind {
    Chat,
    Doc,
    Presence,
    Tally,
}

/// What a test needs to know about a log's endpoints and wire names.
struct Shape {
    kind: Kind,
    poll: &'static str,
    longpoll: &'static str,
    ws: &'static str,
    events: &'static str,
    /// Names in a polling answer.
    entries: &'static str,
    last: &'static str,
    /// The name of an entry's position.
    position: &'static str,
    /// The `type` of an entry's WebSocket frame, and where in the frame the
    /// entry is (`None`: the frame is the entry).
    ws_type: &'static str,
    ws_field: Option<&'static str>,
    /// The `event:` of an entry's SSE event.
    sse_event: &'static str,
}

const CHAT: Shape = Shape {
    kind: Kind::Chat,
    poll: "/api/messages",
    longpoll: "/api/longpoll",
    ws: "/api/ws",
    events: "/api/events",
    entries: "messages",
    last: "last_id",
    position: "id",
    ws_type: "message",
    ws_field: Some("message"),
    sse_event: "message",
};

const DOC: Shape = Shape {
    kind: Kind::Doc,
    poll: "/api/doc/ops",
    longpoll: "/api/doc/longpoll",
    ws: "/api/doc/ws",
    events: "/api/doc/events",
    entries: "ops",
    last: "last_rev",
    position: "rev",
    ws_type: "op",
    ws_field: None,
    sse_event: "op",
};

const PRESENCE: Shape = Shape {
    kind: Kind::Presence,
    poll: "/api/doc/presence",
    longpoll: "/api/doc/presence/longpoll",
    ws: "/api/doc/presence/ws",
    events: "/api/doc/presence/events",
    entries: "carets",
    last: "last_seq",
    position: "seq",
    ws_type: "presence",
    ws_field: None,
    sse_event: "presence",
};

const TALLY: Shape = Shape {
    kind: Kind::Tally,
    poll: "/api/tally/numbers",
    longpoll: "/api/tally/longpoll",
    ws: "/api/tally/ws",
    events: "/api/tally/events",
    entries: "numbers",
    last: "last_n",
    position: "n",
    ws_type: "number",
    ws_field: None,
    sse_event: "number",
};

/// One log on a running server, and a way to append to it.
struct Served {
    server: Running,
    api: Api,
    shape: Shape,
    tally: Option<Arc<Tally>>,
}

/// Starts a server serving `shape`'s log (the made-up one mounted next to
/// the server's own routes).
fn serve(shape: Shape, adjust: impl FnOnce(&mut weebsockets::Config)) -> Served {
    let mut config = weebsockets::Config::for_tests();
    config.no_limits = true;
    adjust(&mut config);
    let (server, tally) = if shape.kind == Kind::Tally {
        let tally = Tally::new();
        let data = web::Data::from(Arc::clone(&tally));
        let server = weebsockets::start_with(config, move |cfg| {
            cfg.app_data(data.clone()).service(
                api_scope("/api/tally")
                    .service(resource("/numbers").route(web::get().to(polling::poll::<Tally>)))
                    .service(
                        resource("/longpoll").route(web::get().to(long_poll::long_poll::<Tally>)),
                    )
                    .service(resource("/ws").route(web::get().to(websocket::websocket::<Tally>)))
                    .service(resource("/events").route(web::get().to(sse::events::<Tally>))),
            );
        })
        .expect("server starts");
        (server, Some(tally))
    } else {
        (weebsockets::start(config).expect("server starts"), None)
    };
    let api = Api::new(&server);
    Served {
        server,
        api,
        shape,
        tally,
    }
}

impl Served {
    /// Appends `count` entries; returns their positions.
    async fn append(&self, count: usize) -> Vec<u64> {
        let mut positions = Vec::new();
        for i in 0..count {
            positions.push(match &self.tally {
                Some(tally) => tally.append(),
                None if self.shape.kind == Kind::Doc => self.type_one_character().await,
                None if self.shape.kind == Kind::Presence => self.move_a_caret(i).await,
                None => self.api.post_ok("ada", &format!("entry {i}")).await,
            });
        }
        positions
    }

    /// Appends "x" to the document as one editor that has seen every
    /// revision; returns the new revision.
    async fn type_one_character(&self) -> u64 {
        let (_, _, doc) = self.api.get("/api/doc").await;
        let rev = doc["rev"].as_u64().unwrap();
        let len = doc["text"].as_str().unwrap().chars().count();
        let op = if len == 0 {
            json!(["x"])
        } else {
            json!([len, "x"])
        };
        let (status, body) = self
            .api
            .json(
                reqwest::Method::POST,
                "/api/doc/ops",
                &json!({"client": "typist", "seq": rev, "rev": rev, "op": op}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["rev"].as_u64().unwrap()
    }

    /// Publishes a caret of editor `i`; returns its position in the log.
    async fn move_a_caret(&self, i: usize) -> u64 {
        let before = self.api.get("/api/doc/presence?since=0&limit=1").await.2["last_seq"]
            .as_u64()
            .unwrap();
        let (status, body) = self
            .api
            .json(
                reqwest::Method::POST,
                "/api/doc/presence",
                &json!({"client": format!("editor-{i}"), "rev": 0, "anchor": 0, "head": 0}),
            )
            .await;
        assert_eq!(status, 204, "{body}");
        before + 1
    }

    fn position(&self, entry: &Value) -> u64 {
        entry[self.shape.position].as_u64().expect("a position")
    }

    /// Polls like the setTimeout page (or, with `transport=interval`,
    /// counted as the setInterval page) until `count` entries arrived.
    async fn poll(&self, transport: &str, mut since: u64, count: usize) -> Vec<u64> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while got.len() < count {
            assert!(tokio::time::Instant::now() < deadline, "polling timed out");
            let (status, headers, body) = self
                .api
                .get(&format!(
                    "{}?since={since}&limit=7&transport={transport}",
                    self.shape.poll
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(headers["cache-control"], "no-store");
            assert!(body[self.shape.last].as_u64().unwrap() >= since);
            for entry in body[self.shape.entries].as_array().unwrap() {
                since = self.position(entry);
                got.push(since);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        got
    }

    /// Long-polls until `count` entries arrived.
    async fn long_poll(&self, mut since: u64, count: usize) -> Vec<u64> {
        let mut got = Vec::new();
        while got.len() < count {
            let (status, headers, body) = self
                .api
                .get(&format!("{}?since={since}&timeout=10", self.shape.longpoll))
                .await;
            assert_eq!(status, 200, "{body}");
            assert!(headers.contains_key("server-timing"));
            for entry in body[self.shape.entries].as_array().unwrap() {
                since = self.position(entry);
                got.push(since);
            }
        }
        got
    }

    async fn ws(&self, since: u64) -> Ws {
        let url = self
            .server
            .ws_url(&format!("{}?since={since}", self.shape.ws));
        let mut ws = Ws::connect_url(&url).await;
        let welcome = ws.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert!(welcome[self.shape.last].is_u64(), "{welcome}");
        ws
    }

    /// Positions of the next `count` entry frames.
    async fn ws_entries(&self, ws: &mut Ws, count: usize) -> Vec<u64> {
        let mut got = Vec::new();
        while got.len() < count {
            let frame = ws.next().await;
            if frame["type"] == self.shape.ws_type {
                let entry = match self.shape.ws_field {
                    Some(field) => &frame[field],
                    None => &frame,
                };
                got.push(self.position(entry));
            }
        }
        got
    }

    async fn sse(&self, query: &str, last_event_id: Option<&str>) -> Sse {
        let url = self.server.url(&format!("{}{query}", self.shape.events));
        Sse::connect_url(&url, last_event_id).await
    }

    /// Positions of the next `count` entry events; each event's `id:` is
    /// its position.
    async fn sse_entries(&self, sse: &mut Sse, count: usize) -> Vec<u64> {
        let mut got = Vec::new();
        while got.len() < count {
            let event = sse.next().await.expect("stream still open");
            if event.event.as_deref() == Some(self.shape.sse_event) {
                let entry: Value = serde_json::from_str(&event.data).unwrap();
                let position = self.position(&entry);
                assert_eq!(event.id, Some(position.to_string()));
                got.push(position);
            }
        }
        got
    }
}

async fn every_transport_reads_every_entry_once_in_order(shape: Shape) {
    let log = serve(shape, |_| {});
    let before = log.append(5).await;
    let mut ws = log.ws(0).await;
    let mut sse = log.sse("?since=0", None).await;
    const N: usize = 30;
    let (interval, timeout, long, _) = tokio::join!(
        log.poll("interval", 0, N),
        log.poll("timeout", 0, N),
        log.long_poll(0, N),
        async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            log.append(N - before.len()).await
        },
    );
    let expected: Vec<u64> = (1..=N as u64).collect();
    for (name, got) in [
        ("interval", interval),
        ("timeout", timeout),
        ("longpoll", long),
        ("websocket", log.ws_entries(&mut ws, N).await),
        ("sse", log.sse_entries(&mut sse, N).await),
    ] {
        assert_eq!(got, expected, "{name} reads every entry once, in order");
    }
    // And nothing extra is waiting on the push transports.
    let next = log.append(1).await;
    assert_eq!(log.ws_entries(&mut ws, 1).await, next);
    assert_eq!(log.sse_entries(&mut sse, 1).await, next);
}

async fn a_reader_back_with_its_cursor_gets_exactly_the_rest(shape: Shape) {
    let log = serve(shape, |_| {});
    log.append(10).await;

    // WebSocket: read 4 of the backlog, drop the connection mid-stream.
    let mut ws = log.ws(0).await;
    assert_eq!(log.ws_entries(&mut ws, 4).await, [1, 2, 3, 4]);
    drop(ws);
    // SSE: read 6, drop; resume with Last-Event-ID as EventSource would.
    let mut sse = log.sse("?since=0", None).await;
    assert_eq!(log.sse_entries(&mut sse, 6).await, [1, 2, 3, 4, 5, 6]);
    drop(sse);

    log.append(5).await;
    let mut ws = log.ws(4).await;
    assert_eq!(
        log.ws_entries(&mut ws, 11).await,
        (5..=15).collect::<Vec<_>>()
    );
    // Last-Event-ID wins over ?since.
    let mut sse = log.sse("?since=0", Some("6")).await;
    assert_eq!(
        log.sse_entries(&mut sse, 9).await,
        (7..=15).collect::<Vec<_>>()
    );
    assert_eq!(
        log.poll("timeout", 3, 12).await,
        (4..=15).collect::<Vec<_>>()
    );
    assert_eq!(log.long_poll(12, 3).await, [13, 14, 15]);

    let next = log.append(1).await;
    assert_eq!(log.ws_entries(&mut ws, 1).await, next);
    assert_eq!(log.sse_entries(&mut sse, 1).await, next);
}

async fn a_long_poll_is_held_until_news_and_ends_in_204(shape: Shape) {
    let log = serve(shape, |_| {});
    let url = log
        .api
        .url(&format!("{}?since=0&timeout=30", log.shape.longpoll));
    let held = tokio::spawn({
        let http = log.api.http.clone();
        async move { http.get(url).send().await.unwrap() }
    });
    // The server says when the poll is held: the transport's open gauge
    // (the chat's in /api/stats; the made-up log's in its own counters).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let open = match &log.tally {
            Some(tally) => tally
                .stats
                .of(weebsockets::message::Via::Longpoll)
                .open
                .load(std::sync::atomic::Ordering::Relaxed),
            None => {
                let stats = log.api.stats().await;
                let transports = match log.shape.kind {
                    Kind::Doc => &stats["doc"]["transports"],
                    Kind::Presence => &stats["doc"]["presence"],
                    _ => &stats["transports"],
                };
                transports["longpoll"]["open"].as_u64().unwrap()
            }
        };
        if open == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "poll never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!held.is_finished(), "held until there is news");
    let positions = log.append(1).await;
    let response = held.await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let entries = body[log.shape.entries].as_array().unwrap();
    assert_eq!(
        entries.iter().map(|e| log.position(e)).collect::<Vec<_>>(),
        positions
    );

    let (status, _, body) = log
        .api
        .get(&format!("{}?since=1&timeout=1", log.shape.longpoll))
        .await;
    assert_eq!((status, body), (204, Value::Null), "204 without a body");
}

async fn jitter_delays_push_frames_but_never_reorders_them(shape: Shape) {
    let log = serve(shape, |_| {});
    let mut ws = log.ws(0).await;
    let mut sse = log.sse("?since=0", None).await;
    log.api
        .lab(
            &log.server.teacher_token,
            json!({"latency_ms": 5, "jitter_ms": 60}),
        )
        .await;
    log.append(20).await;
    let expected: Vec<u64> = (1..=20).collect();
    assert_eq!(log.ws_entries(&mut ws, 20).await, expected);
    assert_eq!(log.sse_entries(&mut sse, 20).await, expected);
}

async fn the_outage_refuses_polls_and_closes_push_connections(shape: Shape) {
    let log = serve(shape, |_| {});
    let mut ws = log.ws(0).await;
    let mut sse = log.sse("?since=0", None).await;
    log.api
        .lab(&log.server.teacher_token, json!({"outage": true}))
        .await;
    assert_eq!(ws.close_code().await, 1013);
    while sse.next().await.is_some() {}
    for path in [log.shape.poll, log.shape.longpoll, log.shape.events] {
        let (status, headers, body) = log.api.get(&format!("{path}?since=0")).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (503, Some("outage")),
            "{path}"
        );
        assert!(headers.contains_key("retry-after"));
    }
}

/// One `#[tokio::test]` per check and log.
macro_rules! for_every_log {
    ($($check:ident),* $(,)?) => {
        mod chat {
            $(#[tokio::test] async fn $check() { super::$check(super::CHAT).await })*
        }
        mod doc {
            $(#[tokio::test] async fn $check() { super::$check(super::DOC).await })*
        }
        mod presence {
            $(#[tokio::test] async fn $check() { super::$check(super::PRESENCE).await })*
        }
        mod made_up_log {
            $(#[tokio::test] async fn $check() { super::$check(super::TALLY).await })*
        }
    };
}

for_every_log!(
    every_transport_reads_every_entry_once_in_order,
    a_reader_back_with_its_cursor_gets_exactly_the_rest,
    a_long_poll_is_held_until_news_and_ends_in_204,
    jitter_delays_push_frames_but_never_reorders_them,
    the_outage_refuses_polls_and_closes_push_connections,
);
