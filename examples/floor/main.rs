//! The floor: the least a server can do to fan a chat message out — one
//! thread, one epoll loop, each message encoded once, each delivery one
//! non-blocking `write`. No async runtime, no tasks, no channels, no
//! durability, no limits, no lab.
//!
//! It speaks only the part of the wire contract that the load generator's
//! `fanout` and `idle-memory` scenarios use, so that `benches/compare.sh`
//! can measure it in the same run as Weebsockets and the Express peer:
//!
//! - `POST /api/messages` `{"author","text","via"?}` → `201` + the message
//!   (kept in memory, never on disk), then pushed to every client;
//! - `GET /api/messages?since=N&limit=L` → `{"messages":[…],"last_id":M}`;
//! - `GET /api/ws?since=N` → a WebSocket: `welcome`, the backlog, then every
//!   new message as a `message` frame; frames from the client are read and
//!   dropped (a close frame closes);
//! - `GET /api/events?since=N` → Server-Sent Events, `retry:` first;
//! - `GET /api/stats` → how many WebSockets and event streams are open.
//!
//! ```sh
//! cargo run --release --example floor -- --port 0   # prints its URL
//! ```
//!
//! Whatever Weebsockets spends per delivery above this program is the cost
//! of its stack (async runtime, actix, the lesson's features); below it is
//! the kernel's `write`, which every server pays. `docs/benchmarks.md`
//! has the comparison.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

/// The listening socket's token; connections count up from 1.
const LISTENER: Token = Token(0);
/// Largest request head plus body we accept (the chat's posts are small).
const MAX_REQUEST: usize = 64 * 1024;

/// What a connection is, once its request has been read.
#[derive(PartialEq)]
enum Kind {
    /// Plain HTTP, keep-alive: requests and answers.
    Http,
    /// Upgraded: gets every message as a frame.
    WebSocket,
    /// An event stream: gets every message as an event.
    Events,
}

struct Conn {
    stream: TcpStream,
    kind: Kind,
    /// Bytes read and not yet handled.
    input: Vec<u8>,
    /// Bytes the socket would not take yet, written when it is writable.
    output: Vec<u8>,
    /// Whether WRITABLE interest is registered (only while `output` waits).
    want_write: bool,
}

/// One stored message, encoded once for each transport.
struct Stored {
    json: String,
    ws_frame: Vec<u8>,
    sse_event: Vec<u8>,
}

struct Floor {
    conns: HashMap<Token, Conn>,
    messages: Vec<Stored>,
    next_token: usize,
}

fn main() -> io::Result<()> {
    let port = std::env::args()
        .skip_while(|a| a != "--port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8090u16);
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut listener = TcpListener::bind(addr)?;
    println!("floor listening on http://{}", listener.local_addr()?);
    weebsockets::raise_open_files_limit();

    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut floor = Floor {
        conns: HashMap::new(),
        messages: Vec::new(),
        next_token: 1,
    };
    loop {
        poll.poll(&mut events, None)?;
        for event in events.iter() {
            if event.token() == LISTENER {
                floor.accept(&listener, &poll)?;
                continue;
            }
            let token = event.token();
            if event.is_writable() {
                floor.flush(token, &poll);
            }
            if event.is_readable() || event.is_read_closed() {
                floor.read(token, &poll);
            }
        }
    }
}

impl Floor {
    fn accept(&mut self, listener: &TcpListener, poll: &Poll) -> io::Result<()> {
        loop {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    // As Weebsockets does: small frames go out at once.
                    stream.set_nodelay(true)?;
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    poll.registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    self.conns.insert(
                        token,
                        Conn {
                            stream,
                            kind: Kind::Http,
                            input: Vec::new(),
                            output: Vec::new(),
                            want_write: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads what arrived; handles whole requests (or, on a WebSocket,
    /// looks for a close frame).
    fn read(&mut self, token: Token, poll: &Poll) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let mut closed = false;
        loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => conn.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        match conn.kind {
            Kind::WebSocket => {
                // Client frames (pongs, a close) are dropped; a close frame
                // (opcode 8) ends the connection.
                if conn.input.first().is_some_and(|b| b & 0x0f == 0x8) {
                    closed = true;
                }
                conn.input.clear();
            }
            Kind::Events => conn.input.clear(),
            Kind::Http => {
                while let Some(done) = self.handle_request(token, poll) {
                    if !done {
                        closed = true;
                        break;
                    }
                }
            }
        }
        let too_long = |c: &Conn| c.input.len() > MAX_REQUEST;
        if (closed || self.conns.get(&token).is_some_and(too_long))
            && let Some(mut conn) = self.conns.remove(&token)
        {
            let _ = poll.registry().deregister(&mut conn.stream);
        }
    }

    /// Handles one whole request at the front of the input, if there is
    /// one: `Some(true)` handled, `Some(false)` unparseable, `None` wait.
    fn handle_request(&mut self, token: Token, poll: &Poll) -> Option<bool> {
        let conn = self.conns.get_mut(&token)?;
        if conn.kind != Kind::Http || conn.input.is_empty() {
            return None;
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&conn.input) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return None,
            Err(_) => return Some(false),
        };
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
        };
        let body_len: usize = header("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if conn.input.len() < head_len + body_len {
            return None;
        }
        let method = req.method.unwrap_or("").to_owned();
        let target = req.path.unwrap_or("/").to_owned();
        let ws_key = header("sec-websocket-key").map(str::to_owned);
        let last_event_id = header("last-event-id").and_then(|v| v.trim().parse().ok());
        let body = conn.input[head_len..head_len + body_len].to_vec();
        conn.input.drain(..head_len + body_len);

        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let number = |name: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        let since = number("since").unwrap_or(0);
        match (method.as_str(), path) {
            ("POST", "/api/messages") => self.post(token, &body, poll),
            ("GET", "/api/messages") => {
                let limit = number("limit").unwrap_or(100).clamp(1, 500) as usize;
                let page: Vec<&str> = self
                    .after(since)
                    .iter()
                    .take(limit)
                    .map(|m| m.json.as_str())
                    .collect();
                let body = format!(
                    r#"{{"messages":[{}],"last_id":{}}}"#,
                    page.join(","),
                    self.messages.len()
                );
                self.answer(token, "200 OK", &body, poll);
            }
            ("GET", "/api/ws") => {
                let Some(key) = ws_key else {
                    self.answer(token, "400 Bad Request", "{}", poll);
                    return Some(true);
                };
                let mut sha = Sha1::new();
                sha.update(key.trim().as_bytes());
                sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
                let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
                let mut out = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
                )
                .into_bytes();
                let welcome = format!(r#"{{"type":"welcome","last_id":{}}}"#, self.messages.len());
                out.extend_from_slice(&ws_text(welcome.as_bytes()));
                for m in self.after(since) {
                    out.extend_from_slice(&m.ws_frame);
                }
                self.kind_and_write(token, Kind::WebSocket, &out, poll);
            }
            ("GET", "/api/events") => {
                let since = last_event_id.unwrap_or(since);
                let mut out = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                    Cache-Control: no-store\r\nConnection: close\r\n\r\nretry: 2000\n\n"
                    .to_vec();
                for m in self.after(since) {
                    out.extend_from_slice(&m.sse_event);
                }
                self.kind_and_write(token, Kind::Events, &out, poll);
            }
            ("GET", "/api/stats") => {
                let count = |kind: Kind| self.conns.values().filter(|c| c.kind == kind).count();
                let body = json!({"transports": {
                    "websocket": {"open": count(Kind::WebSocket)},
                    "sse": {"open": count(Kind::Events)},
                }})
                .to_string();
                self.answer(token, "200 OK", &body, poll);
            }
            _ => self.answer(token, "404 Not Found", r#"{"error":"not here"}"#, poll),
        }
        Some(true)
    }

    /// The stored messages with `id > since`.
    fn after(&self, since: u64) -> &[Stored] {
        let from = (since as usize).min(self.messages.len());
        &self.messages[from..]
    }

    /// Stores a posted message and pushes it to every push client.
    fn post(&mut self, token: Token, body: &[u8], poll: &Poll) {
        let Ok(posted) = serde_json::from_slice::<Value>(body) else {
            self.answer(token, "400 Bad Request", r#"{"error":"bad json"}"#, poll);
            return;
        };
        let id = self.messages.len() as u64 + 1;
        let sent_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let message = json!({
            "id": id, "author": posted["author"], "text": posted["text"],
            "sent_at": sent_at, "via": posted.get("via").cloned().unwrap_or("api".into()),
        })
        .to_string();
        // Encoded once, written to everyone.
        let frame = ws_text(format!(r#"{{"type":"message","message":{message}}}"#).as_bytes());
        let event = format!("id: {id}\nevent: message\ndata: {message}\n\n").into_bytes();
        let pushers: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.kind != Kind::Http)
            .map(|(t, _)| *t)
            .collect();
        for client in pushers {
            let bytes: &[u8] = match self.conns[&client].kind {
                Kind::WebSocket => &frame,
                _ => &event,
            };
            self.write(client, bytes, poll);
        }
        self.answer(token, "201 Created", &message, poll);
        self.messages.push(Stored {
            json: message,
            ws_frame: frame,
            sse_event: event,
        });
    }

    fn answer(&mut self, token: Token, status: &str, body: &str, poll: &Poll) {
        let out = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.write(token, out.as_bytes(), poll);
    }

    fn kind_and_write(&mut self, token: Token, kind: Kind, bytes: &[u8], poll: &Poll) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.kind = kind;
        }
        self.write(token, bytes, poll);
    }

    /// One non-blocking write; what the socket does not take waits in the
    /// connection's output until it is writable.
    fn write(&mut self, token: Token, bytes: &[u8], poll: &Poll) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.output.is_empty() {
            conn.output.extend_from_slice(bytes);
            return;
        }
        let written = match conn.stream.write(bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                if let Some(mut conn) = self.conns.remove(&token) {
                    let _ = poll.registry().deregister(&mut conn.stream);
                }
                return;
            }
        };
        if written < bytes.len() {
            conn.output.extend_from_slice(&bytes[written..]);
            conn.want_write = true;
            let _ = poll.registry().reregister(
                &mut conn.stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            );
        }
    }

    /// The socket is writable again: write what waited.
    fn flush(&mut self, token: Token, poll: &Poll) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        while !conn.output.is_empty() {
            match conn.stream.write(&conn.output) {
                Ok(n) => {
                    conn.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    conn.output.clear();
                    break;
                }
            }
        }
        if conn.want_write {
            conn.want_write = false;
            let _ = poll
                .registry()
                .reregister(&mut conn.stream, token, Interest::READABLE);
        }
    }
}

/// One unmasked WebSocket text frame (RFC 6455 §5.2).
fn ws_text(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(0x81);
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n if n < 65_536 => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}
