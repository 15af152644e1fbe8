//! WebSockets: `GET /api/ws?since=N` upgrades to one persistent, two-way
//! connection. The lecture's four things, server side:
//!
//! 1. **open** — the HTTP request is answered `101 Switching Protocols`
//!    ([`accept`]), and from then on the TCP connection carries frames, not
//!    requests. We say `welcome` with the newest position, then send the
//!    backlog after the client's cursor.
//! 2. **send** — every entry published to the log is pushed as a frame the
//!    moment it exists: no request, no headers, a few bytes of framing.
//! 3. **receive** — the client sends frames on the same connection; each is
//!    handed to the log's [`Topic::on_frame`] (the chat stores a `send` and
//!    answers `ack`) and the reply goes back on the same connection.
//! 4. **close** — either side may close with a code: 1000 normal, 1001 the
//!    server is going away, 1008 the session it was opened with ended
//!    (signed out), 1009 a frame was too big, 1013 "try again later" (the
//!    lab's outage, or a client too slow to keep up).
//!
//! One task per connection runs [`Connection::run`]: a `select!` loop that
//! waits for whichever comes first — a frame from the client, news in the
//! log, the heartbeat tick, shutdown or outage. The heartbeat matters: a
//! phone that sleeps or leaves the Wi-Fi does not say goodbye, so the
//! server pings and drops a peer that has been silent too long.
//!
//! Sending goes through actix-ws's `Session`, whose channel is small and
//! bounded: every write — a frame, a ping, a pong, the close — waits while
//! the client is not reading. Each connection awaits only its own client,
//! so a slow client slows only itself, and every one of those waits is
//! bounded by `--send-timeout-ms`: a client that blocks a write for longer
//! is closed with 1013 and, reconnecting with its cursor, misses nothing.

use std::ops::ControlFlow;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use bytestring::ByteString;
use tokio::time::Instant;

use crate::error::ApiError;
use crate::http::{ReadQuery, check_origin};
use crate::identity::Peer;
use crate::limits::ConnectionGuard;
use crate::log::Entry;
use crate::message::Via;
use crate::state::AppState;
use crate::transports::feed::Feed;
use crate::transports::{Reader, Topic};

/// An upgraded WebSocket, checked and within its limits, ready for its
/// connection task.
pub struct Accepted {
    /// The `101 Switching Protocols` answer to send back.
    pub response: HttpResponse,
    /// Where frames to the client are written.
    pub session: Session,
    /// Frames from the client: reassembled from fragments, and refused
    /// (1009) past `--ws-max-frame-bytes`.
    pub stream: AggregatedMessageStream,
    /// The connection's slot; dropping it frees the slot.
    pub slot: ConnectionGuard,
}

/// Accepting any WebSocket (`/api/ws`, `/api/echo`, `/api/doc/ws`): refused
/// during the lab's outage, from another site's page, or over the
/// connection limits — each before the handshake, as an ordinary HTTP error
/// with the contract's JSON body.
pub fn accept(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> Result<Accepted, ApiError> {
    accept_frames_up_to(req, body, state, state.config.ws_max_frame_bytes)
}

/// [`accept`], taking frames (and reassembled messages) of up to `max`
/// bytes.
pub fn accept_frames_up_to(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
    max: usize,
) -> Result<Accepted, ApiError> {
    state.check_outage()?;
    check_origin(req, &state.config.allowed_origins)?;
    let slot = Peer::of(req, state).acquire(&state.ws_slots)?;
    let (response, session, stream) =
        actix_ws::handle(req, body).map_err(|_| ApiError::NotWebSocket)?;
    // A message may arrive in fragments; reassemble them, but refuse (1009)
    // anything over the limit, fragmented or not.
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    Ok(Accepted {
        response,
        session,
        stream,
        slot,
    })
}

/// `GET /api/ws?since=N` (and `GET /api/doc/ws`) — check, then upgrade and
/// hand the connection to its own task.
pub async fn websocket<T: Topic>(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<ReadQuery>,
    reader: Reader<T>,
) -> Result<HttpResponse, ApiError> {
    let Reader { topic, state, peer } = reader;
    let accepted = query.since().and_then(|since| {
        let max = topic.max_frame_bytes(&state);
        Ok((since, accept_frames_up_to(&req, body, &state, max)?))
    });
    topic.stats(&state).of(Via::Websocket).count(&accepted);
    let (since, accepted) = accepted?;

    let connection = Connection {
        feed: Feed::of(topic.get_ref(), &state, since, ws_frame::<T::Entry>),
        topic: topic.into_inner(),
        state: state.into_inner(),
        session: accepted.session,
        last_heard: Instant::now(),
        peer,
    };
    actix_web::rt::spawn(connection.run(accepted.stream, accepted.slot));
    Ok(accepted.response)
}

fn ws_frame<E: Entry>(entry: &E) -> ByteString {
    entry.wire().ws_frame.clone()
}

/// How a connection ends.
#[derive(Debug)]
pub enum Ending {
    /// Say why in a close frame, then drop the connection.
    Close(CloseReason),
    /// Just drop it: the peer is gone, or it is not reading.
    Drop,
}

/// Close with `code`, saying why.
pub fn close(code: CloseCode, description: &str) -> Ending {
    Ending::Close(CloseReason {
        code,
        description: Some(description.to_owned()),
    })
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
        ProtocolError::Io(_) => Ending::Drop,
        other => {
            tracing::debug!(%other, "websocket protocol error");
            close(CloseCode::Protocol, "protocol error")
        }
    }
}

/// The ending for a client that did not take a write within the send
/// timeout.
pub fn too_slow() -> Ending {
    close(CloseCode::Again, "too slow: reconnect with your cursor")
}

/// Writes one thing to the client — a frame, a ping, a pong — within the
/// send timeout. `Err` is how the connection must end: the peer is gone, or
/// too slow.
pub async fn write_within<F>(state: &AppState, write: F) -> Result<(), Ending>
where
    F: Future<Output = Result<(), actix_ws::Closed>>,
{
    match tokio::time::timeout(state.config.send_timeout(), write).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(actix_ws::Closed)) => Err(Ending::Drop),
        Err(_elapsed) => Err(too_slow()),
    }
}

/// Says goodbye: a close frame with the reason, unless the peer is gone.
/// Bounded in time, because a client that is not reading cannot take a
/// close frame either.
pub async fn finish(state: &AppState, session: Session, ending: Ending) {
    if let Ending::Close(reason) = ending {
        let _ =
            tokio::time::timeout(state.config.send_timeout(), session.close(Some(reason))).await;
    }
}

/// One open WebSocket of a log.
struct Connection<T: Topic> {
    topic: Arc<T>,
    state: Arc<AppState>,
    session: Session,
    /// Where this client is in the log, and frames waiting to be sent.
    feed: Feed<T::Entry, ByteString>,
    /// When the client last sent anything (a pong counts): the heartbeat
    /// drops peers silent for longer than `--ws-timeout-ms`.
    last_heard: Instant,
    /// Who is on the other end, for the limits.
    peer: Peer,
}

impl<T: Topic> Connection<T> {
    async fn run(mut self, mut stream: AggregatedMessageStream, _slot: ConnectionGuard) {
        let (state, topic) = (Arc::clone(&self.state), Arc::clone(&self.topic));
        let _open = topic.stats(&state).of(Via::Websocket).open_guard();
        let config = &state.config;
        let (ping_every, timeout) = (config.ws_ping(), config.ws_timeout());
        // The first ping goes out one interval after the upgrade.
        let mut heartbeat = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        // open: say hello first, so the client learns the newest position
        // even if the backlog is empty.
        let welcome = format!(
            r#"{{"type":"welcome","{}":{}}}"#,
            T::LAST,
            self.topic.log().last()
        );
        self.feed.push(welcome.into());

        let closing = state.closing();
        let outage = state.lab.outage_started();
        // Signed in: the session can end while the socket is open (sign-out
        // in another tab, the teacher, expiry). A guest's never does.
        let mut session_ended = self.peer.session_ended(&state);
        tokio::pin!(closing, outage);

        let ending = loop {
            // send: write every frame whose time has come.
            if let Err(ending) = self.flush().await {
                break ending;
            }
            tokio::select! {
                // Checked in this order when several are ready at once.
                biased;

                _ = &mut closing => break close(CloseCode::Away, "server shutting down"),
                _ = &mut outage => break close(CloseCode::Again, "network lab outage"),
                _ = &mut session_ended => break close(CloseCode::Policy, "your session ended: sign in again"),

                // receive: a frame from the client — but only while a reply
                // fits in the feed. A client that sends faster than it reads
                // is left to TCP's back-pressure.
                frame = stream.recv(), if self.feed.has_room() => match frame {
                    Some(Ok(frame)) => {
                        self.last_heard = Instant::now();
                        if let ControlFlow::Break(ending) = self.on_frame(frame).await {
                            break ending;
                        }
                    }
                    Some(Err(err)) => break ending_for(err),
                    None => break Ending::Drop,
                },

                // Heartbeat: ping, or give up on a peer that stopped answering.
                _ = heartbeat.tick() => {
                    if self.last_heard.elapsed() > timeout {
                        tracing::debug!(ip = %self.peer.ip, "websocket peer timed out");
                        break Ending::Drop;
                    }
                    if let Err(ending) = write_within(&state, self.session.ping(b"")).await {
                        break ending;
                    }
                }

                // News in the log, or a delayed frame came due.
                _ = self.feed.ready() => {
                    if let Err(err) = self.feed.fill().await {
                        tracing::warn!(%err, "websocket could not read the log");
                        break close(CloseCode::Error, "server error");
                    }
                }
            }
        };
        if matches!(ending, Ending::Close(ref reason) if reason.code == CloseCode::Again) {
            tracing::info!(ip = %self.peer.ip, cursor = self.feed.cursor(), "websocket closed with 1013");
        }
        // close: say why, unless the peer is already gone.
        finish(&state, self.session, ending).await;
    }

    /// Sends every due frame. `Err` ends the connection.
    async fn flush(&mut self) -> Result<(), Ending> {
        let stats = self.topic.stats(&self.state).of(Via::Websocket);
        while let Some(out) = self.feed.pop_due() {
            let len = out.frame.len();
            write_within(&self.state, self.session.text(out.frame)).await?;
            if out.is_entry {
                stats.delivered(1, len);
            } else {
                stats
                    .bytes_sent
                    .fetch_add(len as u64, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Handles one frame from the client.
    async fn on_frame(&mut self, frame: AggregatedMessage) -> ControlFlow<Ending> {
        match frame {
            AggregatedMessage::Text(text) => {
                let reply = match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(value) => {
                        // Echoed in the reply, so the client can match it.
                        let reference = value.get("ref").cloned();
                        self.topic
                            .on_frame(&self.state, &self.peer, value)
                            .await
                            .map_err(|err| error_frame(reference, &err))
                    }
                    Err(e) => {
                        let err = ApiError::BadJson(format!("invalid JSON frame: {e}"));
                        Err(error_frame(None, &err))
                    }
                };
                self.reply(reply);
            }
            AggregatedMessage::Binary(_) => {
                self.reply(Err(error_frame(None, &ApiError::BinaryNotSupported)));
            }
            AggregatedMessage::Ping(payload) => {
                if let Err(ending) = write_within(&self.state, self.session.pong(&payload)).await {
                    return ControlFlow::Break(ending);
                }
            }
            AggregatedMessage::Pong(_) => {}
            // The client is closing: answer with the same code (RFC 6455
            // §5.5.1) and stop.
            AggregatedMessage::Close(reason) => {
                return ControlFlow::Break(Ending::Close(
                    reason.unwrap_or_else(|| CloseCode::Normal.into()),
                ));
            }
        }
        ControlFlow::Continue(())
    }
}

impl<T: Topic> Connection<T> {
    /// Queues the reply to a client's frame: an ack, or an error frame
    /// (which the stats count). There is room: frames are only read while
    /// the feed has some.
    fn reply(&mut self, reply: Result<String, String>) {
        let frame = reply.unwrap_or_else(|error| {
            self.topic
                .stats(&self.state)
                .of(Via::Websocket)
                .refused_frame();
            error
        });
        self.feed.push(frame.into());
    }
}

/// `{"type":"error","ref":…,"error":…,"code":…}` — the same `error`, `code`
/// (and `retry_after_ms`) an HTTP client would get in its JSON body.
pub fn error_frame(reference: Option<serde_json::Value>, err: &ApiError) -> String {
    // unwrap: ErrorBody is plain strings and numbers.
    let mut frame = serde_json::to_value(err.body()).unwrap();
    frame["type"] = "error".into();
    if let Some(reference) = reference {
        frame["ref"] = reference;
    }
    frame.to_string()
}
