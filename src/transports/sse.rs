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
//! A task per stream feeds a small bounded channel that actix drains into
//! the socket; when the channel stays full for `--send-timeout-ms` the
//! client is too slow and the stream ends (it reconnects from its last id).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::error::ApiError;
use crate::http::ReadQuery;
use crate::limits::ConnectionGuard;
use crate::log::Entry;
use crate::message::Via;
use crate::state::AppState;
use crate::transports::feed::Feed;
use crate::transports::{Reader, Topic};

/// Events buffered between the stream's task and the socket writer.
const CHANNEL_CAPACITY: usize = 16;

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

    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    let session_ended = peer.session_ended(&state);
    let stream = EventStream {
        feed: Feed::of(topic.get_ref(), &state, since, sse_event::<T::Entry>),
        topic: topic.into_inner(),
        state: state.into_inner(),
        tx,
    };
    actix_web::rt::spawn(stream.run(slot, session_ended));

    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Tells nginx-style proxies not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

fn sse_event<E: Entry>(entry: &E) -> Bytes {
    entry.wire().sse_event.clone()
}

/// The comment line an idle stream sends.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// One open event stream.
struct EventStream<T: Topic> {
    topic: Arc<T>,
    state: Arc<AppState>,
    feed: Feed<T::Entry, Bytes>,
    /// The response body's end of the channel; dropping it ends the stream.
    tx: mpsc::Sender<Bytes>,
}

impl<T: Topic> EventStream<T> {
    async fn run(
        mut self,
        _slot: ConnectionGuard,
        mut session_ended: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    ) {
        let (state, topic) = (Arc::clone(&self.state), Arc::clone(&self.topic));
        let _open = topic.stats(&state).of(Via::Sse).open_guard();
        let keepalive = state.config.sse_keepalive();

        // First tell EventSource how long to wait before reconnecting.
        let retry = format!("retry: {}\n\n", state.config.sse_retry_ms);
        self.feed.push(Bytes::from(retry));

        let closing = state.closing();
        let outage = state.lab.outage_started();
        tokio::pin!(closing, outage);

        loop {
            if self.flush().await.is_err() {
                break;
            }
            let keepalive_due = self.feed.last_queued() + keepalive;
            let room_for_keepalive = self.feed.has_room();
            tokio::select! {
                biased;
                // Ending the body ends the response; EventSource reconnects
                // after `retry` ms and finds the server back (or not yet).
                _ = &mut closing => break,
                _ = &mut outage => break,
                // Signed out (here, in another tab, by the teacher): the
                // stream opened with that session ends.
                _ = &mut session_ended => break,
                // The browser went away (tab closed, network gone).
                _ = self.tx.closed() => break,
                _ = self.feed.ready() => {
                    if let Err(err) = self.feed.fill().await {
                        tracing::warn!(%err, "sse stream could not read the log");
                        break;
                    }
                }
                // Idle: a comment line keeps proxies from timing the stream
                // out, and fails fast if the client vanished. Due a
                // keep-alive interval after the last frame was *queued*
                // (see Feed::last_queued), so there is one per interval
                // whatever the lab delays, and never more than fit the feed.
                _ = tokio::time::sleep_until(keepalive_due), if room_for_keepalive => {
                    self.feed.push(Bytes::from_static(KEEP_ALIVE));
                }
            }
        }
    }

    /// Sends every due event; `Err` when the stream must end.
    async fn flush(&mut self) -> Result<(), ()> {
        let stats = self.topic.stats(&self.state).of(Via::Sse);
        let send_timeout = self.state.config.send_timeout();
        while let Some(out) = self.feed.pop_due() {
            let len = out.frame.len();
            match tokio::time::timeout(send_timeout, self.tx.send(out.frame)).await {
                Ok(Ok(())) => {
                    if out.is_entry {
                        stats.delivered(1, len);
                    } else {
                        stats.bytes_sent.fetch_add(len as u64, Relaxed);
                    }
                }
                Ok(Err(_closed)) => return Err(()),
                Err(_elapsed) => {
                    tracing::info!(
                        cursor = self.feed.cursor(),
                        "slow sse consumer disconnected"
                    );
                    return Err(());
                }
            }
        }
        Ok(())
    }
}
