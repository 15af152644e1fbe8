//! WebSockets: `GET /api/ws?since=N` upgrades to one persistent, two-way
//! connection. The lecture's four things, server side:
//!
//! 1. **open** — the HTTP request is answered `101 Switching Protocols`,
//!    and from then on the TCP connection carries frames, not requests. We
//!    say `welcome` with the newest position, then send the backlog after
//!    the client's cursor.
//! 2. **send** — every entry published to the log is pushed as a frame the
//!    moment it exists: no request, no headers, a few bytes of framing.
//! 3. **receive** — the client sends frames on the same connection; each is
//!    handed to the log's [`Topic::on_frame`] (the chat stores a `send` and
//!    answers `ack`) and the reply goes back on the same connection. Frames
//!    sent back to back are worked on together and answered in the order
//!    they came ([`MAX_IN_FLIGHT`]), so they share the store's commits.
//! 4. **close** — either side may close with a code: 1000 normal, 1001 the
//!    server is going away, 1008 the session it was opened with ended
//!    (signed out), 1009 a frame was too big, 1013 "try again later" (the
//!    lab's outage).
//!
//! # One task per connection, and it is actix's
//!
//! After the `101`, actix keeps running the connection's task: it reads
//! the socket into the request's payload and writes the response's body to
//! the socket. The room's socket *is* that body: a `Connection` that
//! actix polls for bytes whenever it can write. Each poll does what a
//! `select!` loop would, without a task of its own:
//!
//! - the server shutting down, the lab's outage, or the end of the session
//!   the socket was opened with (sign-out, the teacher) → a close frame, the
//!   end;
//! - the heartbeat's tick → a ping (or, after `--ws-timeout-ms` of silence,
//!   the end: a phone that sleeps or leaves the Wi-Fi does not say goodbye);
//! - a frame from the client, decoded from the payload → its reply, a pong;
//! - the feed → every entry (and control frame) whose time has come, framed.
//!
//! So a published entry costs one wake: the log's watch wakes actix's task,
//! which polls the body, which reads the log by cursor and hands back the
//! bytes to write. (The socket used to be written through actix-ws's
//! `Session`: the feed's own task woke, sent the frame down a channel, and
//! *that* woke actix's task to write it — two wakes, a channel and a task
//! per connection. `docs/benchmarks.md` has what the change bought.)
//!
//! **Back-pressure** comes for free: actix stops polling the body while its
//! write buffer is full, i.e. while the client is not reading; meanwhile the
//! body reads no frames from the client and no entries from the log. A
//! client that takes none of our bytes for `--send-timeout-ms` is cut off
//! by the kernel (see [`crate::listen`]), and resumes from its cursor.
//!
//! The echo socket (`echo.rs`) still uses actix-ws's `Session`, through
//! [`accept`]: it has no log to follow and is the reference the Autobahn
//! suite checks the stack with.

use std::convert::Infallible;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use actix_http::ws::{Codec, Frame, Item, Message};
use actix_web::body::{BodyStream, MessageBody};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{
    AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, ProtocolError, Session,
};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::stream::FuturesOrdered;
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, Interval};
use tokio_util::codec::{Decoder, Encoder};

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

/// What every WebSocket must pass before its handshake: refused during the
/// lab's outage, from another site's page, or over the connection limits —
/// each an ordinary HTTP error with the contract's JSON body. Returns the
/// connection's slot.
fn admit(req: &HttpRequest, state: &AppState) -> Result<ConnectionGuard, ApiError> {
    state.check_outage()?;
    check_origin(req, &state.config.allowed_origins)?;
    Peer::of(req, state).acquire(&state.ws_slots)
}

/// Accepting a WebSocket written through actix-ws's `Session` (the echo
/// socket): `admit`, then the handshake.
pub fn accept(
    req: &HttpRequest,
    body: web::Payload,
    state: &AppState,
) -> Result<Accepted, ApiError> {
    let slot = admit(req, state)?;
    let (response, session, stream) =
        actix_ws::handle(req, body).map_err(|_| ApiError::NotWebSocket)?;
    let max = state.config.ws_max_frame_bytes;
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

/// `GET /api/ws?since=N` (and `GET /api/doc/ws`) — check, then upgrade;
/// the `101`'s body is the connection.
pub async fn websocket<T: Topic>(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<ReadQuery>,
    reader: Reader<T>,
) -> Result<HttpResponse, ApiError> {
    let Reader { topic, state, peer } = reader;
    let accepted = query.since().and_then(|since| {
        let slot = admit(&req, &state)?;
        let handshake =
            actix_http::ws::handshake(req.head()).map_err(|_| ApiError::NotWebSocket)?;
        Ok((since, slot, handshake))
    });
    topic.stats(&state).of(Via::Websocket).count(&accepted);
    let (since, slot, mut handshake) = accepted?;

    let connection = Connection::open(
        topic.into_inner(),
        state.into_inner(),
        peer,
        since,
        body,
        slot,
    );
    let response = handshake
        .message_body(BodyStream::new(connection).boxed())
        .map_err(|_| ApiError::NotWebSocket)?;
    Ok(response.into())
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

/// One open WebSocket of a log: the body of its `101` response, which
/// actix polls for the bytes to write (see "One task per connection").
struct Connection<T: Topic> {
    topic: Arc<T>,
    state: Arc<AppState>,
    /// Where this client is in the log, and frames waiting to be sent.
    feed: Feed<T::Entry, ByteString>,
    /// Frames from the client.
    incoming: Incoming,
    /// Replies to the client's frames while the log's owner works on them
    /// (the chat: until the message is stored), oldest first; `None` inside
    /// when a frame needs no answer. Each has a place kept in the feed. At
    /// most [`MAX_IN_FLIGHT`].
    replies: FuturesOrdered<Reply>,
    /// Pings the client every `--ws-ping-ms`.
    heartbeat: Interval,
    /// When the client last sent anything (a pong counts): the heartbeat
    /// drops peers silent for longer than `--ws-timeout-ms`.
    last_heard: Instant,
    /// Resolves when the server begins to shut down.
    closing: Pin<Box<dyn Future<Output = ()>>>,
    /// Resolves when the teacher switches the lab's outage on.
    outage: Pin<Box<dyn Future<Output = ()>>>,
    /// Resolves when the session the socket was opened with ends (sign-out
    /// in another tab, the teacher, expiry); never for a guest.
    session_ended: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Set once the closing frame is written (or the connection dropped):
    /// the body ends, and actix closes the connection.
    done: bool,
    /// Set when a poll handed bytes back with every source left pending
    /// (see [`Connection::poll_next`]).
    drained: bool,
    /// Who is on the other end, for the limits.
    peer: Peer,
    /// The connection's slot, freed when actix drops the body.
    _slot: ConnectionGuard,
}

/// The reply to one frame of the client, once it is ready.
type Reply = Pin<Box<dyn Future<Output = Option<String>>>>;

/// Most frames of one client worked on at once. An editor that sends edit
/// k against revision k − 1 without waiting for k − 1's `ack` (it may, when
/// it is the only writer), or a page that sends three chat lines in a row,
/// would otherwise wait for one commit per frame — one `fsync` each. Worked
/// on together, the frames reach the writer back to back and share its
/// commits (group commit, `store.rs`); their replies still go out in the
/// order the frames came (`FuturesOrdered`).
///
/// Order matters for more than the replies: edit k names the revision edit
/// k − 1 will get, so k − 1 must reach the writer first. It does, because
/// a frame's handling is polled once the moment it is read (see
/// `Connection::work_on`), and everything up to its hand-over to the
/// writer (the writer's `try_send`) runs before its first `.await`.
///
/// As many as the feed has places for: enough that the writer commits one
/// batch while the next one gathers (`docs/benchmarks.md`, "The document":
/// 32 left one connection's edits waiting for each commit to end).
pub const MAX_IN_FLIGHT: usize = crate::transports::feed::MAX_PENDING;

/// Bytes one poll of a connection gathers before handing them to actix,
/// which copies them into its write buffer (32 KiB).
const BATCH: usize = 16 * 1024;

impl<T: Topic> Connection<T> {
    fn open(
        topic: Arc<T>,
        state: Arc<AppState>,
        peer: Peer,
        since: u64,
        payload: web::Payload,
        slot: ConnectionGuard,
    ) -> Connection<T> {
        let config = &state.config;
        let ping_every = config.ws_ping();
        // The first ping goes out one interval after the upgrade.
        let mut heartbeat = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut feed = Feed::of(topic.as_ref(), &state, since, ws_frame::<T::Entry>);
        // open: say hello first, so the client learns the newest position
        // even if the backlog is empty.
        let welcome = format!(
            r#"{{"type":"welcome","{}":{}}}"#,
            T::LAST,
            topic.log().last()
        );
        feed.push(welcome.into());
        // Counted open until the body is dropped (see Drop below): like
        // `TransportStats::open_guard`, whose guard cannot outlive a borrow.
        let stats = topic.stats(&state).of(Via::Websocket);
        let open = stats.open.fetch_add(1, Relaxed) + 1;
        stats.open_max.fetch_max(open, Relaxed);
        Connection {
            incoming: Incoming::new(payload, topic.max_frame_bytes(&state)),
            session_ended: peer.session_ended(&state),
            replies: FuturesOrdered::new(),
            heartbeat,
            last_heard: Instant::now(),
            closing: Box::pin(state.closing()),
            outage: Box::pin(state.lab.outage_started()),
            done: false,
            drained: false,
            feed,
            topic,
            state,
            peer,
            _slot: slot,
        }
    }

    /// Does whatever is ready, writing frames into `out`; `Break` when the
    /// connection must end. `Continue(true)` when it stopped because every
    /// source was pending — each has registered the task's waker, so actix
    /// polls again when one changes — and `Continue(false)` when it stopped
    /// because `out` is full.
    fn poll_work(&mut self, cx: &mut Context<'_>, out: &mut BytesMut) -> ControlFlow<Ending, bool> {
        // Checked first: when several things are ready, the ending wins.
        if self.closing.as_mut().poll(cx).is_ready() {
            return ControlFlow::Break(close(CloseCode::Away, "server shutting down"));
        }
        if self.outage.as_mut().poll(cx).is_ready() {
            return ControlFlow::Break(close(CloseCode::Again, "network lab outage"));
        }
        if self.session_ended.as_mut().poll(cx).is_ready() {
            return ControlFlow::Break(close(
                CloseCode::Policy,
                "your session ended: sign in again",
            ));
        }
        // Heartbeat: ping, or give up on a peer that stopped answering.
        while self.heartbeat.poll_tick(cx).is_ready() {
            if self.last_heard.elapsed() > self.state.config.ws_timeout() {
                tracing::debug!(ip = %self.peer.ip, "websocket peer timed out");
                return ControlFlow::Break(Ending::Drop);
            }
            encode(Message::Ping(Bytes::new()), out);
        }
        loop {
            let mut progress = false;
            // Replies to the client's frames, oldest first, into the places
            // kept for them.
            while let Poll::Ready(Some(reply)) = self.replies.poll_next_unpin(cx) {
                self.answer(reply);
                progress = true;
            }
            // receive: a frame from the client — but only while its reply
            // fits in the feed. A client that sends faster than it reads is
            // left to TCP's back-pressure.
            if self.replies.len() < MAX_IN_FLIGHT && self.feed.has_room() && out.len() < BATCH {
                match Pin::new(&mut self.incoming).poll_next(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        self.last_heard = Instant::now();
                        self.on_frame(frame, cx, out)?;
                        progress = true;
                    }
                    Poll::Ready(Some(Err(err))) => return ControlFlow::Break(ending_for(err)),
                    Poll::Ready(None) => return ControlFlow::Break(Ending::Drop),
                    Poll::Pending => {}
                }
            }
            // send: every frame whose time has come.
            let (mut entries, mut entry_bytes, mut control_bytes) = (0, 0, 0);
            while out.len() < BATCH {
                match self.feed.poll_next(cx) {
                    Poll::Ready(Ok(frame)) => {
                        let len = frame.frame.len();
                        if frame.is_entry {
                            entries += 1;
                            entry_bytes += len;
                        } else {
                            control_bytes += len;
                        }
                        encode(Message::Text(frame.frame), out);
                        progress = true;
                    }
                    Poll::Ready(Err(err)) => {
                        tracing::warn!(%err, "websocket could not read the log");
                        return ControlFlow::Break(close(CloseCode::Error, "server error"));
                    }
                    Poll::Pending => break,
                }
            }
            // Counted once per batch: two shared counters, not two per frame.
            let stats = self.topic.stats(&self.state).of(Via::Websocket);
            if entries > 0 {
                stats.delivered(entries, entry_bytes);
            }
            if control_bytes > 0 {
                stats.bytes_sent.fetch_add(control_bytes as u64, Relaxed);
            }
            if out.len() >= BATCH {
                return ControlFlow::Continue(false);
            }
            if !progress {
                return ControlFlow::Continue(true);
            }
        }
    }

    /// Handles one frame from the client; pongs go straight into `out`.
    fn on_frame(
        &mut self,
        frame: AggregatedMessage,
        cx: &mut Context<'_>,
        out: &mut BytesMut,
    ) -> ControlFlow<Ending> {
        match frame {
            AggregatedMessage::Text(text) => {
                match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(value) => {
                        // Echoed in the reply, so the client can match it.
                        let reference = value.get("ref").cloned();
                        let (topic, state, peer) = (
                            Arc::clone(&self.topic),
                            Arc::clone(&self.state),
                            self.peer.clone(),
                        );
                        self.work_on(
                            cx,
                            Box::pin(async move {
                                match topic.on_frame(&state, &peer, value).await {
                                    Ok(reply) => reply,
                                    Err(err) => {
                                        topic.stats(&state).of(Via::Websocket).refused_frame();
                                        Some(error_frame(reference, &err))
                                    }
                                }
                            }),
                        );
                    }
                    Err(e) => {
                        let err = ApiError::BadJson(format!("invalid JSON frame: {e}"));
                        self.refuse(cx, error_frame(None, &err));
                    }
                }
            }
            AggregatedMessage::Binary(_) => {
                self.refuse(cx, error_frame(None, &ApiError::BinaryNotSupported));
            }
            AggregatedMessage::Ping(payload) => encode(Message::Pong(payload), out),
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

    /// Starts working on a client's frame: its reply gets a place in the
    /// feed now (there is one: frames are only read while the feed has
    /// room) and goes there, after the replies to earlier frames, once
    /// ready.
    ///
    /// Polled once here, at once, so that frames reach the log's owner in
    /// the order they came: `FuturesOrdered` keeps the order of the
    /// *results*, but not, on its own terms, the order in which it first
    /// polls what it holds.
    fn work_on(&mut self, cx: &mut Context<'_>, mut reply: Reply) {
        self.feed.reserve();
        match reply.as_mut().poll(cx) {
            // Nothing before it waits: answered now.
            Poll::Ready(frame) if self.replies.is_empty() => self.answer(frame),
            // Ready, but behind replies still worked on: it waits its turn.
            Poll::Ready(frame) => self.replies.push_back(Box::pin(std::future::ready(frame))),
            Poll::Pending => self.replies.push_back(reply),
        }
    }

    /// Puts a reply in the place kept for it (or gives the place back when
    /// the frame needs no answer).
    fn answer(&mut self, frame: Option<String>) {
        match frame {
            Some(frame) => self.feed.push_reserved(frame.into()),
            None => self.feed.release(),
        }
    }

    /// Answers a frame that could not be read with an error (which the
    /// stats count), in its turn.
    fn refuse(&mut self, cx: &mut Context<'_>, frame: String) {
        self.topic
            .stats(&self.state)
            .of(Via::Websocket)
            .refused_frame();
        self.work_on(cx, Box::pin(std::future::ready(Some(frame))));
    }
}

impl<T: Topic> Stream for Connection<T> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // Actix asks again at once after every chunk we hand it. If the
        // last poll left every source pending, nothing can be ready now
        // that did not wake the task — and a wake since then makes actix
        // poll once more. So this second poll of each delivery does nothing:
        // half the polling per frame.
        if std::mem::take(&mut this.drained) {
            return Poll::Pending;
        }
        let mut out = BytesMut::new();
        let work = this.poll_work(cx, &mut out);
        this.drained = matches!(work, ControlFlow::Continue(true)) && !out.is_empty();
        if let ControlFlow::Break(ending) = work {
            this.done = true;
            if let Ending::Close(reason) = ending {
                if reason.code == CloseCode::Again {
                    tracing::info!(ip = %this.peer.ip, cursor = this.feed.cursor(), "websocket closed with 1013");
                }
                // close: say why. The body then ends, and actix closes the
                // connection once the frame is written.
                encode(Message::Close(Some(reason)), &mut out);
            }
        }
        match (out.is_empty(), this.done) {
            (false, _) => Poll::Ready(Some(Ok(out.freeze()))),
            (true, true) => Poll::Ready(None),
            (true, false) => Poll::Pending,
        }
    }
}

impl<T: Topic> Drop for Connection<T> {
    fn drop(&mut self) {
        // However the connection ended (a close, the peer gone, the kernel
        // giving up on a client that stopped reading), it is not open now.
        let stats = self.topic.stats(&self.state).of(Via::Websocket);
        stats.open.fetch_sub(1, Relaxed);
    }
}

/// Frames a server message (unmasked) into `out`.
fn encode(message: Message, out: &mut BytesMut) {
    // unwrap-free: encoding into memory only fails for control frames over
    // 125 bytes, and ours (pings, pongs of ≤125-byte pings, short close
    // reasons) never are.
    if let Err(err) = Codec::new().encode(message, out) {
        tracing::warn!(%err, "websocket frame not encoded");
    }
}

/// A client's frames, decoded from the request's payload: fragments
/// reassembled, text checked to be UTF-8, and anything larger than
/// `--ws-max-frame-bytes` (whole or reassembled) refused as an overflow
/// (1009). The same [`Codec`] actix-ws decodes with.
struct Incoming {
    payload: web::Payload,
    /// Bytes read but not yet decoded.
    buf: BytesMut,
    codec: Codec,
    max: usize,
    /// The fragments of a message that has not ended yet, and whether it is
    /// text.
    fragments: Option<(bool, BytesMut)>,
    /// The payload ended (the client is gone).
    ended: bool,
}

impl Incoming {
    fn new(payload: web::Payload, max: usize) -> Incoming {
        Incoming {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max),
            max,
            fragments: None,
            ended: false,
        }
    }

    /// Appends a fragment; `Err` when the message grows past the limit.
    fn gather(&mut self, text: Option<bool>, bytes: &[u8]) -> Result<(), ProtocolError> {
        let (_, gathered) = match (text, &mut self.fragments) {
            (Some(is_text), _) => self.fragments.insert((is_text, BytesMut::new())),
            (None, Some(fragments)) => fragments,
            // The codec refuses a continuation that was never started.
            (None, None) => return Err(ProtocolError::ContinuationNotStarted),
        };
        if gathered.len() + bytes.len() > self.max {
            return Err(ProtocolError::Overflow);
        }
        gathered.extend_from_slice(bytes);
        Ok(())
    }
}

/// Text must be UTF-8 (RFC 6455 §8.1); reported the way actix-ws reports
/// it, which [`ending_for`] turns into 1007.
fn text(bytes: Bytes) -> Result<AggregatedMessage, ProtocolError> {
    ByteString::try_from(bytes)
        .map(AggregatedMessage::Text)
        .map_err(|err| ProtocolError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, err)))
}

impl Stream for Incoming {
    type Item = Result<AggregatedMessage, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            // Whole frames first, from what was already read.
            if let Some(frame) = this.codec.decode(&mut this.buf)? {
                let message = match frame {
                    Frame::Text(bytes) => text(bytes)?,
                    Frame::Binary(bytes) => AggregatedMessage::Binary(bytes),
                    Frame::Ping(bytes) => AggregatedMessage::Ping(bytes),
                    Frame::Pong(bytes) => AggregatedMessage::Pong(bytes),
                    Frame::Close(reason) => AggregatedMessage::Close(reason),
                    Frame::Continuation(Item::FirstText(bytes)) => {
                        this.gather(Some(true), &bytes)?;
                        continue;
                    }
                    Frame::Continuation(Item::FirstBinary(bytes)) => {
                        this.gather(Some(false), &bytes)?;
                        continue;
                    }
                    Frame::Continuation(Item::Continue(bytes)) => {
                        this.gather(None, &bytes)?;
                        continue;
                    }
                    Frame::Continuation(Item::Last(bytes)) => {
                        this.gather(None, &bytes)?;
                        // unwrap: gather just put the fragments there.
                        let (is_text, whole) = this.fragments.take().unwrap();
                        if is_text {
                            text(whole.freeze())?
                        } else {
                            AggregatedMessage::Binary(whole.freeze())
                        }
                    }
                };
                return Poll::Ready(Some(Ok(message)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if this.buf.is_empty() {
                        // No copy when nothing is left over.
                        this.buf = BytesMut::from(bytes);
                    } else {
                        this.buf.extend_from_slice(&bytes);
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(ProtocolError::Io(std::io::Error::other(err)))));
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Checks that a client's frame is of the one `type` this socket takes
/// (`send` on the chat's, `op` on the document's…).
pub fn expect_type(frame: &serde_json::Value, kind: &str) -> Result<(), ApiError> {
    match frame.get("type").and_then(|t| t.as_str()) {
        Some(t) if t == kind => Ok(()),
        Some(other) => Err(ApiError::UnknownFrameType(other.to_owned())),
        None => Err(ApiError::BadJson("a frame needs a \"type\"".to_owned())),
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
