//! Long polling ("Comet"): `GET /api/longpoll?since=N&timeout=S` is *held*
//! by the server until there is news, then answered; the client at once asks
//! again with its new cursor.
//!
//! The lesson: polling's empty answers disappear. Each request ends with a
//! message (or, after `timeout` seconds of silence, a bodyless `204` that
//! only says "ask again"), so the cost drops to about one request per
//! message, and news arrives as soon as it exists instead of at the next
//! tick.
//!
//! How it is held cheaply: the handler subscribes to (its worker's relay
//! of) the log's "newest position" watch and `.await`s it. A held poll is a
//! parked future — no thread, no timer loop, no CPU — and one commit wakes
//! every held poll at once. The answer's `Server-Timing` header says how
//! long the server held it, which DevTools shows in the request's Timing
//! tab.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::http::{ReadQuery, query_number};
use crate::message::Via;
use crate::transports::{Reader, Topic, answer_after_lab, read_request};

/// Hold when the client does not say (contract).
pub const LONG_POLL_HOLD_DEFAULT: Duration = Duration::from_secs(25);

/// `GET /api/longpoll?since=N&timeout=S` (and `GET /api/doc/longpoll`).
pub async fn long_poll<T: Topic>(
    query: web::Query<ReadQuery>,
    reader: Reader<T>,
) -> Result<HttpResponse, ApiError> {
    let result = hold(&query, &reader).await;
    let (topic, state) = (reader.topic.get_ref(), reader.state.get_ref());
    topic.stats(state).of(Via::Longpoll).count(&result);
    result
}

async fn hold<T: Topic>(query: &ReadQuery, reader: &Reader<T>) -> Result<HttpResponse, ApiError> {
    let (topic, state) = (reader.topic.get_ref(), reader.state.get_ref());
    let stats = topic.stats(state).of(Via::Longpoll);
    let (since, limit) = read_request(query, state, stats)?;
    let timeout = query_number(
        "timeout",
        query.timeout.as_deref(),
        LONG_POLL_HOLD_DEFAULT.as_secs(),
        1..=state.config.longpoll_max_s,
    )?;

    // A held poll occupies a slot until it is answered or the client goes
    // away (actix drops this future when the connection closes, which drops
    // the guards and frees the slot).
    let _slot = reader.peer.acquire(&state.longpoll_slots)?;
    let _held = stats.open_guard();

    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    // Subscribe *before* the first read, so an entry published in between
    // still wakes us (see Log::subscribe). Through this worker's relay, so
    // that when news comes the held answers go out before the requests that
    // arrive meanwhile (see Log::subscribe_here).
    let log = topic.log();
    let mut latest = log.subscribe_here();
    let closing = state.closing();
    let outage = state.lab.outage_started();
    tokio::pin!(closing, outage);
    let slice = loop {
        let slice = log.read_since(since, limit).await?;
        if !slice.entries.is_empty() {
            break Some(slice);
        }
        tokio::select! {
            // News: go round and read it.
            changed = latest.changed() => {
                if changed.is_err() {
                    return Err(ApiError::ShuttingDown);
                }
            }
            // Nothing within the hold: answer 204, the client asks again.
            _ = tokio::time::sleep_until(deadline) => break None,
            // The server is stopping: answer now instead of keeping the
            // client (and the shutdown) waiting.
            _ = &mut closing => return Err(ApiError::ShuttingDown),
            // The teacher pulled the plug.
            _ = &mut outage => return Err(ApiError::Outage),
        }
    };
    Ok(answer_after_lab::<T>(state, stats, slice, started.elapsed()).await)
}
