//! The five ways to read a log, one module each — written once, for any
//! log.
//!
//! Every transport is a thin adapter over an ordered [`Log`]: it keeps a
//! cursor (the position of the last entry it delivered), asks the log for
//! what is newer, and writes it to the client in its own framing. Read them
//! in the order the lesson teaches them:
//!
//! 1. [`polling`] — `GET /api/messages`: answer at once, whether or not there
//!    is news. Both setInterval and setTimeout pages use it; the difference
//!    between them is entirely in the browser.
//! 2. [`long_poll`] — `GET /api/longpoll`: hold the request until there is
//!    news, then answer; the client asks again.
//! 3. [`websocket`] — `GET /api/ws`: upgrade to one persistent, two-way
//!    connection; push every entry as a frame.
//! 4. [`sse`] — `GET /api/events`: one long HTTP response that never ends;
//!    push every entry as an event. One-way, but reconnects by itself.
//! 5. [`echo`] — `GET /api/echo`: not a transport of a log, the classic
//!    WebSocket echo, for playing with raw frames.
//!
//! [`feed`] is what the two push transports share: a cursor, a small
//! bounded queue and the lab's ordered delay.
//!
//! # One transport, any log
//!
//! The handlers are generic over a [`Topic`]: a log plus the few things
//! that differ between logs — what a polling answer calls its entries
//! (`messages` or `ops`), whose counters move, and what a client may send on
//! the WebSocket. The chat's room is one topic (`crate::chat`); serving a
//! second log is a route per transport with that log's topic, not a copy of
//! any transport (`tests/second_log.rs` mounts a made-up one).

pub mod echo;
pub mod feed;
pub mod long_poll;
pub mod polling;
pub mod sse;
pub mod websocket;

use std::future::{Future, Ready, ready};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use crate::error::ApiError;
use crate::http::{ReadQuery, json_response, server_timing, slice_body};
use crate::identity::Peer;
use crate::log::{Entry, Log, Slice};
use crate::state::AppState;
use crate::stats::{TransportSet, TransportStats};

/// A log as the transports serve it.
///
/// Handlers find their topic with actix's `web::Data<T>`, so each topic is
/// registered once as app data and each route names its topic's type.
pub trait Topic: Send + Sync + 'static {
    /// What the log holds.
    type Entry: Entry;

    /// The name of a polling answer's array: `messages`, `ops`.
    const ENTRIES: &'static str;

    /// The name of the newest position in a polling answer and in the
    /// WebSocket's `welcome` frame: `last_id`, `last_rev`.
    const LAST: &'static str;

    /// The log itself.
    fn log(&self) -> &Log<Self::Entry>;

    /// This log's counters, one set per transport.
    fn stats<'a>(&'a self, state: &'a AppState) -> &'a TransportSet;

    /// The largest frame a client may send on this log's WebSocket
    /// (`--ws-max-frame-bytes` unless the log needs more).
    fn max_frame_bytes(&self, state: &AppState) -> usize {
        state.config.ws_max_frame_bytes
    }

    /// A text frame a client sent on this log's WebSocket, parsed as JSON
    /// (not yet checked for any shape). Returns the reply frame (an `ack`;
    /// `None` for a frame that needs no answer), or the error that the
    /// transport sends back as an `error` frame with the frame's `ref`.
    fn on_frame(
        &self,
        state: &AppState,
        peer: &Peer,
        frame: serde_json::Value,
    ) -> impl Future<Output = Result<Option<String>, ApiError>>;
}

/// What every transport's handler starts from: its log's topic, the
/// server's shared state, and who is asking. An actix extractor, so a
/// handler names it once instead of three parameters.
pub struct Reader<T> {
    /// The log being read, as registered with `app_data`.
    pub topic: web::Data<T>,
    /// The server's shared state.
    pub state: web::Data<AppState>,
    /// Who is on the other end.
    pub peer: Peer,
}

impl<T: Topic> FromRequest for Reader<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Reader<T>, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let topic = req.app_data::<web::Data<T>>().cloned();
        let state = req.app_data::<web::Data<AppState>>().cloned();
        ready(match (topic, state) {
            (Some(topic), Some(state)) => Ok(Reader {
                topic,
                peer: Peer::of(req, &state),
                state,
            }),
            // Only a route registered without its topic's app data gets
            // here: a wiring mistake, found by the first request.
            _ => Err(actix_web::error::ErrorInternalServerError(
                "this log is not registered with the server",
            )),
        })
    }
}

/// The start of both polling transports: refused in the lab's outage, the
/// cursor and the page size read from the query, the asking tab noted for
/// the stats. Returns `(since, limit)`.
fn read_request(
    query: &ReadQuery,
    state: &AppState,
    stats: &TransportStats,
) -> Result<(u64, usize), ApiError> {
    state.check_outage()?;
    let (since, limit) = (query.since()?, query.limit()?);
    if let Some(client) = query.client()? {
        stats.seen_client(client);
    }
    Ok((since, limit))
}

/// The end of both polling transports: let the lab delay the answer (as if
/// it were slow on the wire: with jitter, an earlier request can now answer
/// after a later one), count it, and answer `200` with the slice — or `204`
/// when a long poll's hold ran out with nothing to say. `held` is how long
/// the server held the request before the lab's delay.
async fn answer_after_lab<T: Topic>(
    state: &AppState,
    stats: &TransportStats,
    slice: Option<Slice<T::Entry>>,
    held: Duration,
) -> HttpResponse {
    let delay = state.lab.sample_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let timing = server_timing(held, delay);
    match slice {
        Some(slice) => {
            let body = slice_body(T::ENTRIES, T::LAST, &slice);
            stats.delivered(slice.entries.len(), body.len());
            let mut response = HttpResponse::Ok();
            response.insert_header(timing);
            json_response(response, body)
        }
        None => {
            stats.delivered(0, 0);
            HttpResponse::NoContent()
                .insert_header(timing)
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish()
        }
    }
}
