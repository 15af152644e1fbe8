//! Shared helpers for the integration tests: start the real server on an
//! ephemeral port, and small real clients for each transport (HTTP via
//! reqwest, WebSocket via tokio-tungstenite, SSE parsed from a streaming
//! HTTP body).
#![allow(dead_code)]

pub mod accounts;
pub mod editors;
pub mod traces;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weebsockets::{Config, Running};

/// Long enough for anything a test waits on; short enough that a hang
/// fails the test instead of the CI job.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Starts the real server (in-memory store, limits at their defaults) on
/// 127.0.0.1 with an ephemeral port.
pub fn start_server() -> Running {
    start_with(|_| {})
}

/// Like [`start_server`], after letting the test adjust the config.
pub fn start_with(adjust: impl FnOnce(&mut Config)) -> Running {
    let mut config = Config::for_tests();
    adjust(&mut config);
    weebsockets::start(config).expect("server starts")
}

/// Raises this process's open-file limit, for tests that open thousands
/// of sockets.
pub fn raise_fd_limit() -> u64 {
    weebsockets::raise_open_files_limit()
}

/// The real binary, started with `--bind 127.0.0.1:0 --workers 2 --db DB`
/// and `extra` flags; returns the child and its base URL (parsed from the
/// banner it prints).
pub fn spawn_binary(db: &std::path::Path, extra: &[&str]) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_weebsockets"))
        .args(["--bind", "127.0.0.1:0", "--workers", "2", "--db"])
        .arg(db)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the weebsockets binary starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the banner names a URL")
            .expect("stdout readable");
        if let Some(start) = line.find("http://") {
            let url = &line[start..];
            let end = url[7..].find('/').map_or(url.len(), |i| i + 7);
            break url[..end].to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

/// Resident memory of a process, in KiB (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An HTTP client for one server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(server: &Running) -> Api {
        Api {
            base: server.url(""),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(70))
                .build()
                .unwrap(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a message; returns the status and the JSON body.
    pub async fn post(&self, author: &str, text: &str, via: Option<&str>) -> (u16, Value) {
        let mut body = json!({"author": author, "text": text});
        if let Some(via) = via {
            body["via"] = json!(via);
        }
        let response = self
            .http
            .post(self.url("/api/messages"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs any JSON body to `/api/messages` (extra fields such as `key`
    /// included); returns the status and the JSON body.
    pub async fn post_json(&self, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/api/messages"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sends `body` as JSON with `method` to `path`; returns the status and
    /// the JSON answer (Null if none).
    pub async fn json(&self, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .request(method, self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs a message that must be accepted; returns its id.
    pub async fn post_ok(&self, author: &str, text: &str) -> u64 {
        let (status, body) = self.post(author, text, None).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_u64().unwrap()
    }

    /// GETs a path; returns status, headers and the body as JSON (Null if
    /// empty or not JSON).
    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            headers,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// All messages with id > since, paging through `limit`.
    pub async fn all_since(&self, mut since: u64) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let (status, _, body) = self
                .get(&format!("/api/messages?since={since}&limit=500"))
                .await;
            assert_eq!(status, 200, "{body}");
            let messages = body["messages"].as_array().unwrap().clone();
            if messages.is_empty() {
                return out;
            }
            since = messages.last().unwrap()["id"].as_u64().unwrap();
            out.extend(messages);
        }
    }

    pub async fn stats(&self) -> Value {
        self.get("/api/stats").await.2
    }

    /// Changes the lab with the teacher token.
    pub async fn lab(&self, token: &str, change: Value) -> Value {
        let response = self
            .http
            .put(self.url("/api/lab"))
            .bearer_auth(token)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until `check(stats)` holds (synchronising on the server's own
    /// counters rather than on a sleep).
    pub async fn wait_for_stats(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let stats = self.stats().await;
            if check(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; stats: {stats}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Ids of a list of messages.
pub fn ids(messages: &[Value]) -> Vec<u64> {
    messages.iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

/// A WebSocket client speaking the contract's frames.
pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(server: &Running, since: u64) -> Ws {
        Ws::connect_url(&server.ws_url(&format!("/api/ws?since={since}"))).await
    }

    /// Connects to any WebSocket URL (another log's socket, say).
    pub async fn connect_url(url: &str) -> Ws {
        let (stream, response) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket upgrade");
        assert_eq!(response.status(), 101);
        Ws { stream }
    }

    /// Connects to any WebSocket path of the server (`/api/echo`, say).
    pub async fn connect_path(server: &Running, path: &str) -> Ws {
        let (stream, response) = tokio_tungstenite::connect_async(server.ws_url(path))
            .await
            .expect("websocket upgrade");
        assert_eq!(response.status(), 101);
        Ws { stream }
    }

    /// Connects to a server known only by address (e.g. a spawned binary).
    pub async fn connect_to(addr: std::net::SocketAddr, since: u64) -> Ws {
        let (stream, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws?since={since}"))
                .await
                .expect("websocket upgrade");
        Ws { stream }
    }

    /// The next text frame as JSON (pings are answered by tungstenite).
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame within PATIENCE")
                .expect("stream open")
                .expect("valid frame");
            match frame {
                WsMessage::Text(text) => return serde_json::from_str(&text).unwrap(),
                WsMessage::Close(reason) => panic!("closed unexpectedly: {reason:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads `message` frames until `count` have arrived; returns them.
    pub async fn messages(&mut self, count: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < count {
            let frame = self.next().await;
            if frame["type"] == "message" {
                out.push(frame["message"].clone());
            }
        }
        out
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.stream
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// Waits for the server's close frame; returns its code.
    pub async fn close_code(&mut self) -> u16 {
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a close within PATIENCE");
            match frame {
                Some(Ok(WsMessage::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(WsMessage::Close(None))) => return 1005,
                Some(Ok(_)) => continue,
                other => panic!("connection ended without a close frame: {other:?}"),
            }
        }
    }
}

impl Ws {
    /// Like [`Ws::close_code`], but waits at most `patience` and says what
    /// happened instead of panicking: `Ok(code)` for a close frame,
    /// `Err(what)` if the connection stayed open or ended without one.
    pub async fn close_code_within(&mut self, patience: Duration) -> Result<u16, String> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return Err(format!("still open after {patience:?}, no close frame")),
                Ok(Some(Ok(WsMessage::Close(Some(frame))))) => return Ok(frame.code.into()),
                Ok(Some(Ok(WsMessage::Close(None)))) => return Ok(1005),
                Ok(Some(Ok(_))) => continue,
                Ok(other) => return Err(format!("ended without a close frame: {other:?}")),
            }
        }
    }
}

/// A WebSocket opened by hand on a raw TCP socket whose receive buffer is
/// tiny, so a test can play a client that simply never reads: the upgrade
/// request is written and the `101` head read byte by byte (nothing past
/// it), then the socket is the test's to write frames on, or not.
pub async fn raw_websocket(
    addr: std::net::SocketAddr,
    path: &str,
    recv_buffer: u32,
) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(recv_buffer).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream
}

/// A client-to-server frame (masked, as RFC 6455 requires of clients) with
/// opcode `opcode` and a payload of at most 125 bytes.
pub fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125, "short frames only");
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// One Server-Sent Event.
#[derive(Debug, Default, Clone)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub retry: Option<u64>,
}

/// A minimal SSE client over a streaming reqwest response.
pub struct Sse {
    pub response: reqwest::Response,
    buffer: String,
    /// The start of a character split between two chunks (a chunk may end
    /// in the middle of a multi-byte UTF-8 sequence).
    split: Vec<u8>,
    /// Comment lines seen (keep-alives).
    pub comments: usize,
}

impl Sse {
    pub async fn connect(server: &Running, query: &str, last_event_id: Option<&str>) -> Sse {
        Sse::connect_url(&server.url(&format!("/api/events{query}")), last_event_id).await
    }

    /// Opens any event stream URL (another log's stream, say).
    pub async fn connect_url(url: &str, last_event_id: Option<&str>) -> Sse {
        let client = reqwest::Client::new();
        let mut request = client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Sse::from_response(response)
    }

    /// Reads events from a response that is already an event stream.
    pub fn from_response(response: reqwest::Response) -> Sse {
        Sse {
            response,
            buffer: String::new(),
            split: Vec::new(),
            comments: 0,
        }
    }

    /// The next event (blocks until one arrives), or None if the stream
    /// ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                let mut is_comment_only = true;
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        let _ = comment;
                        self.comments += 1;
                        continue;
                    }
                    is_comment_only = false;
                    let (field, value) = line.split_once(": ").unwrap_or((line, ""));
                    match field {
                        "id" => event.id = Some(value.to_owned()),
                        "event" => event.event = Some(value.to_owned()),
                        "data" => event.data.push_str(value),
                        "retry" => event.retry = value.parse().ok(),
                        _ => {}
                    }
                }
                if is_comment_only {
                    continue;
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.response.chunk())
                .await
                .expect("an event within PATIENCE")
                .ok()??;
            self.split.extend_from_slice(&chunk);
            let whole = match std::str::from_utf8(&self.split) {
                Ok(text) => text.len(),
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(e) => panic!("the event stream is not UTF-8: {e}"),
            };
            let rest = self.split.split_off(whole);
            // unwrap: checked just above.
            self.buffer
                .push_str(std::str::from_utf8(&self.split).unwrap());
            self.split = rest;
        }
    }

    /// The next `count` message events, as JSON.
    pub async fn messages(&mut self, count: usize) -> Vec<Value> {
        let mut out = Vec::new();
        while out.len() < count {
            let event = self.next().await.expect("stream still open");
            if event.event.as_deref() == Some("message") {
                let message: Value = serde_json::from_str(&event.data).unwrap();
                assert_eq!(
                    event.id.as_deref(),
                    Some(message["id"].to_string().as_str())
                );
                out.push(message);
            }
        }
        out
    }
}
