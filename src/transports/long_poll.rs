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
//! How it is held cheaply: the handler subscribes to (its worker's relay of) the room's "newest id"
//! watch and `.await`s it. A held poll is a parked future — no thread, no
//! timer loop, no CPU — and one commit wakes every held poll at once. The
//! answer's `Server-Timing` header says how long the server held it, which
//! DevTools shows in the request's Timing tab.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::{ReadQuery, client_ip, json_response, number, page_body};
use crate::error::ApiError;
use crate::message::Via;
use crate::server::{AppState, server_timing};

/// Hold when the client does not say (contract).
pub const LONG_POLL_HOLD_DEFAULT: Duration = Duration::from_secs(25);

/// `GET /api/longpoll?since=N&timeout=S`
pub async fn long_poll(
    req: HttpRequest,
    query: web::Query<ReadQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let stats = state.stats.of(Via::Longpoll);
    stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result = hold(&req, &query, &state).await;
    if result.is_err() {
        stats
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    result
}

async fn hold(
    req: &HttpRequest,
    query: &ReadQuery,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let since = query.since()?;
    let limit = query.limit()?;
    if let Some(client) = query.client()? {
        state.stats.of(Via::Longpoll).seen_client(client);
    }
    let timeout = number(
        "timeout",
        query.timeout.as_deref(),
        LONG_POLL_HOLD_DEFAULT.as_secs(),
        1..=state.config.longpoll_max_s,
    )?;

    // A held poll occupies a slot until it is answered or the client goes
    // away (actix drops this future when the connection closes, which drops
    // the guards and frees the slot).
    let _slot = state.acquire(&state.longpoll_slots, client_ip(req))?;
    let stats = state.stats.of(Via::Longpoll);
    let _held = stats.open_guard();

    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    // Subscribe *before* the first read, so a message committed in between
    // still wakes us (see Room::subscribe). Through this worker's relay, so
    // that when news comes the held answers go out before the requests that
    // arrive meanwhile (see Room::subscribe_here).
    let mut latest = state.room.subscribe_here();
    let page = loop {
        let page = state.room.read_since(since, limit).await?;
        if !page.messages.is_empty() {
            break Some(page);
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
            _ = state.room.closing() => return Err(ApiError::ShuttingDown),
            // The teacher pulled the plug.
            _ = state.lab.outage_started() => return Err(ApiError::Outage),
        }
    };
    let held = started.elapsed();

    let delay = state.lab.sample_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let timing = server_timing(held, delay);
    Ok(match page {
        Some(page) => {
            let body = page_body(&page);
            stats.delivered(page.messages.len(), body.len());
            let mut response = HttpResponse::Ok();
            response.insert_header(timing);
            json_response(response, body)
        }
        None => {
            stats.delivered(0, 0);
            HttpResponse::NoContent()
                .insert_header(timing)
                .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
                .finish()
        }
    })
}
