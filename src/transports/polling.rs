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

use crate::error::ApiError;
use crate::http::ReadQuery;
use crate::message::Via;
use crate::transports::{Reader, Topic, answer_after_lab, read_request};

/// `GET /api/messages?since=N&limit=L[&transport=interval|timeout&seq=K]`
/// (and the same for any other log, e.g. `GET /api/doc/ops`).
pub async fn poll<T: Topic>(
    query: web::Query<ReadQuery>,
    reader: Reader<T>,
) -> Result<HttpResponse, ApiError> {
    let (topic, state) = (reader.topic.get_ref(), reader.state.get_ref());
    // Which page is asking decides only which counters move.
    let via = query
        .transport
        .as_deref()
        .and_then(Via::parse)
        .unwrap_or(Via::Api);
    let stats = topic.stats(state).of(via);
    let _open = stats.open_guard();
    let result = async {
        let (since, limit) = read_request(&query, state, stats)?;
        let started = Instant::now();
        let slice = topic.log().read_since(since, limit).await?;
        // Measured before the lab's delay, which Server-Timing lists on
        // its own.
        let held = started.elapsed();
        Ok(answer_after_lab::<T>(state, stats, Some(slice), held).await)
    }
    .await;
    stats.count(&result);
    result
}
