//! Polling: `GET /api/messages?since=N` answers at once with whatever is
//! newer than the client's cursor — often nothing at all.
//!
//! The server side of "simple polling" is the simplest handler in the
//! project, and that is the point: the whole cost of polling is paid by
//! asking again and again. Most answers are `{"messages":[],"last_id":N}`,
//! each one a full HTTP round trip with headers, which `GET /api/stats`
//! counts as `empty_responses`.
//!
//! setInterval and setTimeout pages call this same endpoint. They differ
//! only in *when* the browser sends the next request (see
//! `assets/js/transports/interval.js` and `timeout.js`); the server tells
//! them apart by the `transport=` query parameter, for the stats and for
//! the network tab.

use std::time::Instant;

use actix_web::{HttpResponse, web};

use crate::api::{ReadQuery, json_response, page_body};
use crate::error::ApiError;
use crate::message::Via;
use crate::server::AppState;

/// `GET /api/messages?since=N&limit=L[&transport=interval|timeout&seq=K]`
pub async fn get_messages(
    query: web::Query<ReadQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Which page is asking decides only which counters move.
    let via = query
        .transport
        .as_deref()
        .and_then(Via::parse)
        .unwrap_or(Via::Api);
    let stats = state.stats.of(via);
    let _open = stats.open_guard();
    let result = async {
        state.check_outage()?;
        let (since, limit) = (query.since()?, query.limit()?);
        if let Some(client) = query.client()? {
            stats.seen_client(client);
        }
        let started = Instant::now();
        let page = state.room.read_since(since, limit).await?;

        // The lab's latency and jitter: the answer is "slow on the wire".
        // With jitter, an earlier request can now answer after a later one.
        let delay = state.lab.sample_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }

        let body = page_body(&page);
        stats.delivered(page.messages.len(), body.len());
        let mut response = HttpResponse::Ok();
        response.insert_header(crate::server::server_timing(started.elapsed(), delay));
        Ok(json_response(response, body))
    }
    .await;
    stats
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    result.inspect_err(|_| {
        stats
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
}
