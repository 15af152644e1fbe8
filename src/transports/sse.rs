//! Server-Sent Events: `GET /api/events?since=N` answers with a response
//! that never ends. Its body is a stream of events:
//!
//! ```text
//! retry: 2000
//!
//! id: 42
//! event: message
//! data: {"id":42,"author":"ada","text":"hello",…}
//!
//! : keep-alive
//! ```
//!
//! The lesson: push without a new protocol. It is plain HTTP, so it passes
//! proxies that mangle WebSockets, and the browser's `EventSource` does the
//! hard part of long polling for you — when the stream breaks it waits
//! `retry` ms and reconnects by itself, sending the last `id:` it saw as the
//! `Last-Event-ID` header. The server resumes from there: nothing lost,
//! nothing repeated. The price: it is one-way (the page still sends with
//! `POST`), text only, and over HTTP/1.1 each stream holds one of the
//! browser's six connections per host.
//!
//! The framing above is written by hand (each entry's event is encoded once,
//! in its [`Wire`](crate::log::Wire)): it is three lines of text, and seeing
//! them is the lesson — a crate would hide it.
//!
//! # The stream is the response body
//!
//! No task or channel of our own: the response's body is an
//! `EventStream` that actix polls for bytes whenever it can write, and
//! each poll hands back the events whose time has come — each entry's
//! pre-encoded event, as it is, without a copy. The log's watch wakes
//! actix's connection task, which polls the body, which reads the log by
//! cursor: one wake per delivery. While the client is not reading, actix
//! stops polling and the stream reads nothing; a client that takes none of
//! our bytes for `--send-timeout-ms` is cut off by the kernel (see
//! [`crate::listen`]) and reconnects from its last id.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;
use crate::http::ReadQuery;
use crate::limits::ConnectionGuard;
use crate::log::Entry;
use crate::message::Via;
use crate::state::AppState;
use crate::transports::feed::Feed;
use crate::transports::{Reader, Topic};

/// `GET /api/events?since=N` (and `GET /api/doc/events`); a `Last-Event-ID`
/// header wins over `since`.
pub async fn events<T: Topic>(
    req: HttpRequest,
    query: web::Query<ReadQuery>,
    reader: Reader<T>,
) -> Result<HttpResponse, ApiError> {
    let Reader { topic, state, peer } = reader;
    let accepted = (|| -> Result<_, ApiError> {
        state.check_outage()?;
        let since = query.since_or_last_event_id(&req)?;
        let slot = peer.acquire(&state.sse_slots)?;
        Ok((since, slot))
    })();
    topic.stats(&state).of(Via::Sse).count(&accepted);
    let (since, slot) = accepted?;

    let session_ended = peer.session_ended(&state);
    let stream = EventStream::open(
        topic.into_inner(),
        state.into_inner(),
        since,
        slot,
        session_ended,
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Tells nginx-style proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

fn sse_event<E: Entry>(entry: &E) -> Bytes {
    entry.wire().sse_event.clone()
}

/// The comment line an idle stream sends.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// One open event stream: the body of its response.
struct EventStream<T: Topic> {
    topic: Arc<T>,
    state: Arc<AppState>,
    feed: Feed<T::Entry, Bytes>,
    /// How long an idle stream waits before a keep-alive.
    keepalive_every: Duration,
    /// Wakes the stream when a keep-alive may be due. Set lazily: when it
    /// fires early (a frame was queued since), it is set again from the
    /// last queued frame, so a busy stream touches no timer per event.
    keepalive: Pin<Box<Sleep>>,
    /// Resolves when the server begins to shut down.
    closing: Pin<Box<dyn Future<Output = ()>>>,
    /// Resolves when the teacher switches the lab's outage on.
    outage: Pin<Box<dyn Future<Output = ()>>>,
    /// Resolves when the session the stream was opened with ends
    /// (sign-out, the teacher, expiry); never for a guest.
    session_ended: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// Set when a poll handed bytes back with every source left pending.
    drained: bool,
    /// The slot, freed when actix drops the body.
    _slot: ConnectionGuard,
}

/// Bytes one poll gathers when several events are due at once.
const BATCH: usize = 16 * 1024;

impl<T: Topic> EventStream<T> {
    fn open(
        topic: Arc<T>,
        state: Arc<AppState>,
        since: u64,
        slot: ConnectionGuard,
        session_ended: Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> EventStream<T> {
        let mut feed = Feed::of(topic.as_ref(), &state, since, sse_event::<T::Entry>);
        // First tell EventSource how long to wait before reconnecting.
        feed.push(Bytes::from(format!(
            "retry: {}\n\n",
            state.config.sse_retry_ms
        )));
        let keepalive_every = state.config.sse_keepalive();
        // Counted open until the body is dropped (see Drop below).
        let stats = topic.stats(&state).of(Via::Sse);
        let open = stats.open.fetch_add(1, Relaxed) + 1;
        stats.open_max.fetch_max(open, Relaxed);
        EventStream {
            keepalive: Box::pin(tokio::time::sleep_until(
                feed.last_queued() + keepalive_every,
            )),
            keepalive_every,
            closing: Box::pin(state.closing()),
            outage: Box::pin(state.lab.outage_started()),
            session_ended,
            drained: false,
            feed,
            topic,
            state,
            _slot: slot,
        }
    }

    /// Idle: a comment line keeps proxies from timing the stream out, and
    /// fails fast if the client vanished. Due a keep-alive interval after
    /// the last frame was *queued* (see Feed::last_queued), so there is one
    /// per interval whatever the lab delays, and never more than fit the
    /// feed.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) {
        while self.keepalive.as_mut().poll(cx).is_ready() {
            let due = self.feed.last_queued() + self.keepalive_every;
            if due > Instant::now() {
                // Early: a frame was queued since the timer was set.
                self.keepalive.as_mut().reset(due);
            } else if self.feed.push(Bytes::from_static(KEEP_ALIVE)) {
                let next = self.feed.last_queued() + self.keepalive_every;
                self.keepalive.as_mut().reset(next);
            } else {
                // Full of frames still to come: no keep-alive needed now.
                let later = Instant::now() + self.keepalive_every;
                self.keepalive.as_mut().reset(later);
            }
        }
    }
}

impl<T: Topic> Stream for EventStream<T> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        // As for the WebSocket (see `websocket::Connection::poll_next`): the
        // poll right after one that left every source pending has nothing
        // to do; any wake since makes actix poll again.
        if std::mem::take(&mut this.drained) {
            return Poll::Pending;
        }
        // Ending the body ends the response; EventSource reconnects after
        // `retry` ms and finds the server back (or not yet) — or, when the
        // session it was opened with ended, comes back as who it is now.
        // (A browser that went away is actix's to notice: it drops the body.)
        if this.closing.as_mut().poll(cx).is_ready()
            || this.outage.as_mut().poll(cx).is_ready()
            || this.session_ended.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        this.poll_keepalive(cx);
        // Every event whose time has come. One event — the usual case — is
        // handed over as it is, the entry's own bytes, without a copy;
        // several are joined into one chunk.
        let (mut first, mut joined) = (None::<Bytes>, BytesMut::new());
        let (mut entries, mut entry_bytes, mut control_bytes) = (0, 0, 0);
        let drained = loop {
            if joined.len() >= BATCH {
                break false;
            }
            match this.feed.poll_next(cx) {
                Poll::Ready(Ok(out)) => {
                    if out.is_entry {
                        entries += 1;
                        entry_bytes += out.frame.len();
                    } else {
                        control_bytes += out.frame.len();
                    }
                    match first.take() {
                        None if joined.is_empty() => first = Some(out.frame),
                        None => joined.extend_from_slice(&out.frame),
                        Some(earlier) => {
                            joined.extend_from_slice(&earlier);
                            joined.extend_from_slice(&out.frame);
                        }
                    }
                }
                Poll::Ready(Err(err)) => {
                    tracing::warn!(%err, "sse stream could not read the log");
                    return Poll::Ready(None);
                }
                Poll::Pending => break true,
            }
        };
        let stats = this.topic.stats(&this.state).of(Via::Sse);
        if entries > 0 {
            stats.delivered(entries, entry_bytes);
        }
        if control_bytes > 0 {
            stats.bytes_sent.fetch_add(control_bytes as u64, Relaxed);
        }
        let chunk = first.or_else(|| (!joined.is_empty()).then(|| joined.freeze()));
        match chunk {
            Some(chunk) => {
                this.drained = drained;
                Poll::Ready(Some(Ok(chunk)))
            }
            None => Poll::Pending,
        }
    }
}

impl<T: Topic> Drop for EventStream<T> {
    fn drop(&mut self) {
        self.topic
            .stats(&self.state)
            .of(Via::Sse)
            .open
            .fetch_sub(1, Relaxed);
    }
}
