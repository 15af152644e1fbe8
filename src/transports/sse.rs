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
use tokio::time::Instant;

use crate::api::{ReadQuery, client_ip, number};
use crate::error::ApiError;
use crate::limits::ConnectionGuard;
use crate::message::{StoredMessage, Via};
use crate::server::AppState;
use crate::transports::feed::Feed;

/// Events buffered between the stream's task and the socket writer.
const CHANNEL_CAPACITY: usize = 16;

/// `GET /api/events?since=N` (a `Last-Event-ID` header wins over `since`).
pub async fn events(
    req: HttpRequest,
    query: web::Query<ReadQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let stats = state.stats.of(Via::Sse);
    stats.requests.fetch_add(1, Relaxed);
    let accepted = (|| -> Result<_, ApiError> {
        state.check_outage()?;
        // EventSource sends Last-Event-ID by itself when it reconnects; it
        // is the cursor of the stream that broke.
        let since = match req.headers().get("last-event-id") {
            Some(value) => number(
                "Last-Event-ID",
                Some(value.to_str().unwrap_or("?")),
                0,
                0..=u64::MAX,
            )?,
            None => query.since()?,
        };
        let slot = state.acquire(&state.sse_slots, client_ip(&req))?;
        Ok((since, slot))
    })();
    let (since, slot) = accepted.inspect_err(|_| {
        stats.errors.fetch_add(1, Relaxed);
    })?;

    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_CAPACITY);
    let stream = Stream {
        feed: Feed::new(state.room.clone(), state.lab.clone(), since, sse_event),
        state: state.into_inner(),
        tx,
    };
    actix_web::rt::spawn(stream.run(slot));

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

fn sse_event(message: &StoredMessage) -> Bytes {
    message.sse_event.clone()
}

/// One open event stream.
struct Stream {
    state: Arc<AppState>,
    feed: Feed<Bytes>,
    /// The response body's end of the channel; dropping it ends the stream.
    tx: mpsc::Sender<Bytes>,
}

impl Stream {
    async fn run(mut self, _slot: ConnectionGuard) {
        let state = Arc::clone(&self.state);
        let _open = state.stats.of(Via::Sse).open_guard();
        let keepalive = self.state.config.sse_keepalive();

        // First tell EventSource how long to wait before reconnecting.
        let retry = format!("retry: {}\n\n", self.state.config.sse_retry_ms);
        self.feed.push(Bytes::from(retry));

        let closing = self.state.room.closing();
        let outage = self.state.lab.outage_started();
        tokio::pin!(closing, outage);
        let mut last_sent = Instant::now();

        loop {
            match self.flush().await {
                Ok(true) => last_sent = Instant::now(),
                Ok(false) => {}
                Err(()) => break,
            }
            tokio::select! {
                biased;
                // Ending the body ends the response; EventSource reconnects
                // after `retry` ms and finds the server back (or not yet).
                _ = &mut closing => break,
                _ = &mut outage => break,
                // The browser went away (tab closed, network gone).
                _ = self.tx.closed() => break,
                _ = self.feed.ready() => {
                    if let Err(err) = self.feed.fill().await {
                        tracing::warn!(%err, "sse stream could not read the room");
                        break;
                    }
                }
                // Idle: a comment line keeps proxies from timing the stream
                // out, and fails fast if the client vanished.
                _ = tokio::time::sleep_until(last_sent + keepalive) => {
                    self.feed.push(Bytes::from_static(b": keep-alive\n\n"));
                }
            }
        }
    }

    /// Sends every due event; `Ok(true)` if anything was sent, `Err` when
    /// the stream must end.
    async fn flush(&mut self) -> Result<bool, ()> {
        let stats = self.state.stats.of(Via::Sse);
        let send_timeout = self.state.config.send_timeout();
        let mut sent = false;
        while let Some(event) = self.feed.pop_due() {
            let len = event.len();
            let is_message = event.starts_with(b"id: ");
            match tokio::time::timeout(send_timeout, self.tx.send(event)).await {
                Ok(Ok(())) => {
                    sent = true;
                    if is_message {
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
        Ok(sent)
    }
}
