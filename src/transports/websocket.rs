//! WebSockets: `GET /api/ws?since=N` upgrades to one persistent, two-way
//! connection. The lecture's four things, server side:
//!
//! 1. **open** — the HTTP request is answered `101 Switching Protocols`
//!    ([`websocket`]), and from then on the TCP connection carries frames,
//!    not requests. We say `welcome` with the newest id, then send the
//!    backlog after the client's cursor.
//! 2. **send** — every message committed to the room is pushed as a
//!    `{"type":"message",…}` frame the moment it exists: no request, no
//!    headers, a few bytes of framing.
//! 3. **receive** — the client sends `{"type":"send",…}` frames on the same
//!    connection; each is validated, stored and acknowledged with
//!    `{"type":"ack","ref":…,"id":…}`.
//! 4. **close** — either side may close with a code: 1000 normal, 1001 the
//!    server is going away, 1009 a frame was too big, 1013 "try again later"
//!    (the lab's outage, or a client too slow to keep up).
//!
//! One task per connection runs [`Connection::run`]: a `select!` loop that
//! waits for whichever comes first — a frame from the client, news in the
//! room, the heartbeat tick, shutdown or outage. The heartbeat matters:
//! a phone that sleeps or leaves the Wi-Fi does not say goodbye, so the
//! server pings and drops a peer that has been silent too long.
//!
//! Sending goes through actix-ws's `Session`, whose channel is small and
//! bounded: `session.text(..).await` waits while the client is not reading.
//! Each connection awaits only its own client, so a slow client slows only
//! itself; a client that blocks a send for longer than `--send-timeout-ms`
//! is closed with 1013 and, reconnecting with its cursor, misses nothing.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use bytestring::ByteString;
use serde::Deserialize;
use std::sync::atomic::Ordering::Relaxed;
use tokio::time::Instant;

use crate::api::{ReadQuery, client_ip};
use crate::error::ApiError;
use crate::limits::ConnectionGuard;
use crate::message::{NewMessage, StoredMessage, Via};
use crate::server::AppState;
use crate::transports::feed::Feed;

/// `GET /api/ws?since=N` — check, then upgrade and hand the connection to
/// its own task.
pub async fn websocket(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<ReadQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let stats = state.stats.of(Via::Websocket);
    stats.requests.fetch_add(1, Relaxed);
    let accepted = (|| -> Result<_, ApiError> {
        state.check_outage()?;
        check_origin(&req, &state.config.allowed_origins)?;
        let since = query.since()?;
        let slot = state.acquire(&state.ws_slots, client_ip(&req))?;
        let (response, session, stream) =
            actix_ws::handle(&req, body).map_err(|_| ApiError::NotWebSocket)?;
        Ok((response, session, stream, since, slot))
    })();
    let (response, session, stream, since, slot) = accepted.inspect_err(|_| {
        stats.errors.fetch_add(1, Relaxed);
    })?;

    let max = state.config.ws_max_frame_bytes;
    // A message may arrive in fragments; reassemble them, but refuse (1009)
    // anything over the limit, fragmented or not.
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let connection = Connection {
        feed: Feed::new(state.room.clone(), state.lab.clone(), since, ws_frame),
        state: state.into_inner(),
        session,
        last_heard: Instant::now(),
        ip: client_ip(&req),
    };
    actix_web::rt::spawn(connection.run(stream, slot));
    Ok(response)
}

/// How to end a connection whose client broke the protocol (RFC 6455 §7.4).
pub fn ending_for(err: ProtocolError) -> Ending {
    match err {
        ProtocolError::Overflow => close(CloseCode::Size, "frame too large"),
        // A text message that is not UTF-8. actix-ws reports it as an
        // InvalidData I/O error carrying the UTF-8 decoder's message (reserved
        // bits set are InvalidData too, but a protocol error: 1002 below).
        ProtocolError::Io(io)
            if io.kind() == std::io::ErrorKind::InvalidData && io.to_string().contains("utf-8") =>
        {
            close(CloseCode::Invalid, "text frame is not valid UTF-8")
        }
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            close(CloseCode::Protocol, "protocol error")
        }
        // The socket itself failed: nobody is there to read a close frame.
        ProtocolError::Io(_) => None,
        other => {
            tracing::debug!(%other, "websocket protocol error");
            close(CloseCode::Protocol, "protocol error")
        }
    }
}

fn ws_frame(message: &StoredMessage) -> ByteString {
    message.ws_frame.clone()
}

/// Why the loop ended: close with this code and reason, or (`None`) just
/// drop the connection because the peer is gone.
pub type Ending = Option<CloseReason>;

fn close(code: CloseCode, description: &str) -> Ending {
    Some(CloseReason {
        code,
        description: Some(description.to_owned()),
    })
}

/// One open WebSocket.
struct Connection {
    state: std::sync::Arc<AppState>,
    session: Session,
    /// Where this client is in the room, and frames waiting to be sent.
    feed: Feed<ByteString>,
    /// When the client last sent anything (a pong counts): the heartbeat
    /// drops peers silent for longer than `--ws-timeout-ms`.
    last_heard: Instant,
    ip: std::net::IpAddr,
}

impl Connection {
    async fn run(mut self, mut stream: AggregatedMessageStream, _slot: ConnectionGuard) {
        let state = std::sync::Arc::clone(&self.state);
        let _open = state.stats.of(Via::Websocket).open_guard();
        let config = &state.config;
        let (ping_every, timeout) = (config.ws_ping(), config.ws_timeout());
        // The first ping goes out one interval after the upgrade.
        let mut heartbeat = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        // open: say hello first, so the client learns the newest id even if
        // the backlog is empty.
        let welcome = format!(r#"{{"type":"welcome","last_id":{}}}"#, state.room.last_id());
        self.feed.push(welcome.into());

        let closing = state.room.closing();
        let outage = state.lab.outage_started();
        tokio::pin!(closing, outage);

        let ending: Ending = loop {
            // send: write every frame whose time has come.
            if let Err(ending) = self.flush().await {
                break ending;
            }
            tokio::select! {
                // Checked in this order when several are ready at once.
                biased;

                _ = &mut closing => break close(CloseCode::Away, "server shutting down"),
                _ = &mut outage => break close(CloseCode::Again, "network lab outage"),

                // receive: a frame from the client.
                frame = stream.recv() => match frame {
                    Some(Ok(frame)) => {
                        self.last_heard = Instant::now();
                        if let Some(ending) = self.on_frame(frame).await {
                            break ending;
                        }
                    }
                    Some(Err(err)) => break ending_for(err),
                    None => break None,
                },

                // Heartbeat: ping, or give up on a peer that stopped answering.
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > timeout {
                        tracing::debug!(ip = %self.ip, "websocket peer timed out");
                        break None;
                    }
                    if self.session.ping(b"").await.is_err() {
                        break None;
                    }
                }

                // News in the room, or a delayed frame came due.
                _ = self.feed.ready() => {
                    if let Err(err) = self.feed.fill().await {
                        tracing::warn!(%err, "websocket could not read the room");
                        break close(CloseCode::Error, "server error");
                    }
                }
            }
        };

        // close: say why, unless the peer is already gone. Bounded in time,
        // because a client that is not reading cannot take a close frame
        // either.
        if let Some(reason) = ending {
            let _ =
                tokio::time::timeout(config.send_timeout(), self.session.close(Some(reason))).await;
        }
    }

    /// Sends every due frame. `Err` ends the connection.
    async fn flush(&mut self) -> Result<(), Ending> {
        let stats = self.state.stats.of(Via::Websocket);
        let send_timeout = self.state.config.send_timeout();
        while let Some(frame) = self.feed.pop_due() {
            let len = frame.len();
            let is_message = frame.starts_with(r#"{"type":"message""#);
            match tokio::time::timeout(send_timeout, self.session.text(frame)).await {
                Ok(Ok(())) => {
                    if is_message {
                        stats.delivered(1, len);
                    } else {
                        stats.bytes_sent.fetch_add(len as u64, Relaxed);
                    }
                }
                Ok(Err(_closed)) => return Err(None),
                Err(_elapsed) => {
                    tracing::info!(ip = %self.ip, cursor = self.feed.cursor(), "slow websocket consumer closed");
                    return Err(close(
                        CloseCode::Again,
                        "too slow: reconnect with your cursor",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Handles one frame from the client; `Some` ends the connection.
    async fn on_frame(&mut self, frame: AggregatedMessage) -> Option<Ending> {
        match frame {
            AggregatedMessage::Text(text) => {
                let reply = self.on_text(&text).await;
                self.feed.push(reply.into());
                None
            }
            AggregatedMessage::Binary(_) => {
                let error = error_frame(None, &ApiError::BinaryNotSupported);
                self.feed.push(error.into());
                None
            }
            AggregatedMessage::Ping(payload) => {
                if self.session.pong(&payload).await.is_err() {
                    return Some(None);
                }
                None
            }
            AggregatedMessage::Pong(_) => None,
            // The client is closing: answer with the same code (RFC 6455
            // §5.5.1) and stop.
            AggregatedMessage::Close(reason) => Some(reason.or(Some(CloseCode::Normal.into()))),
        }
    }

    /// A text frame: a `send` is stored and acknowledged; anything else gets
    /// an error frame. Returns the reply frame.
    async fn on_text(&mut self, text: &str) -> String {
        let stats = self.state.stats.of(Via::Websocket);
        let value: serde_json::Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                stats.errors.fetch_add(1, Relaxed);
                let err = ApiError::BadJson(format!("invalid JSON frame: {e}"));
                return error_frame(None, &err);
            }
        };
        let reference = value.get("ref").cloned();
        match self.on_send(value).await {
            Ok(id) => {
                stats.messages_received.fetch_add(1, Relaxed);
                serde_json::json!({"type": "ack", "ref": reference, "id": id}).to_string()
            }
            Err(err) => {
                stats.errors.fetch_add(1, Relaxed);
                error_frame(reference, &err)
            }
        }
    }

    /// A parsed frame that should be a `send`: validate, rate-limit, store —
    /// the same steps as `POST /api/messages`. Returns the new id.
    async fn on_send(&self, frame: serde_json::Value) -> Result<u64, ApiError> {
        match frame.get("type").and_then(|t| t.as_str()) {
            Some("send") => {}
            Some(other) => return Err(ApiError::UnknownFrameType(other.to_owned())),
            None => return Err(ApiError::BadJson("a frame needs a \"type\"".to_owned())),
        }
        let send: SendFrame = serde_json::from_value(frame)
            .map_err(|e| ApiError::BadJson(format!("invalid send frame: {e}")))?;
        let message = NewMessage::validate(
            &send.author,
            &send.text,
            Via::Websocket,
            usize::from(self.state.config.max_text_chars),
        )
        .inspect_err(|_| {
            self.state.stats.posts_rejected.fetch_add(1, Relaxed);
        })?;
        if let Err(wait) = self.state.post_rate.check(self.ip) {
            self.state.stats.posts_rate_limited.fetch_add(1, Relaxed);
            return Err(ApiError::RateLimited(wait));
        }
        Ok(self.state.room.append(message).await?.id())
    }
}

/// The one frame a client sends.
#[derive(Debug, Deserialize)]
struct SendFrame {
    author: String,
    text: String,
}

/// `{"type":"error","ref":…,"error":…,"code":…}` — the same `error`, `code`
/// (and `retry_after_ms`) an HTTP client would get in its JSON body.
fn error_frame(reference: Option<serde_json::Value>, err: &ApiError) -> String {
    // unwrap: ErrorBody is plain strings and numbers.
    let mut frame = serde_json::to_value(err.body()).unwrap();
    frame["type"] = "error".into();
    if let Some(reference) = reference {
        frame["ref"] = reference;
    }
    frame.to_string()
}

/// Browsers send `Origin` with every WebSocket handshake, and — unlike
/// `fetch` — the WebSocket API is not held back by CORS. Without this check
/// any site a student visits could open the room in their browser, with
/// their address. So: a browser may connect only from a page of this
/// server (the Origin's host equals the Host it asked for) or from an origin
/// the teacher allowed. Non-browser clients send no Origin and are let in.
pub fn check_origin(req: &HttpRequest, allowed: &[String]) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return Ok(());
    }
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !origin_host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::ForbiddenOrigin(origin.to_owned()))
    }
}
