//! `GET /api/echo`: the classic WebSocket echo server. Whatever frame you
//! send — text or binary, whole or in fragments — comes straight back.
//!
//! It is not part of the room. It exists so a student can play with raw
//! frames from the browser console (`new WebSocket(…/api/echo)`) and so the
//! server's WebSocket stack can be checked against the Autobahn|Testsuite
//! (see `docs/conformance.md`) with the same limits as `/api/ws`.

use std::sync::atomic::Ordering::Relaxed;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode};

use crate::api::client_ip;
use crate::error::ApiError;
use crate::message::Via;
use crate::server::AppState;
use crate::transports::websocket::{check_origin, ending_for};

/// `GET /api/echo`
pub async fn echo(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    check_origin(&req, &state.config.allowed_origins)?;
    // Echo sockets count against the same WebSocket limits as the room's.
    let slot = state.acquire(&state.ws_slots, client_ip(&req))?;
    let (response, mut session, stream) =
        actix_ws::handle(&req, body).map_err(|_| ApiError::NotWebSocket)?;
    let max = state.config.ws_max_frame_bytes;
    let mut stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    let timeout = state.config.ws_timeout();
    state
        .stats
        .of(Via::Websocket)
        .requests
        .fetch_add(1, Relaxed);

    actix_web::rt::spawn(async move {
        let _slot = slot;
        let ending = loop {
            // An echo client that says nothing for the WebSocket timeout is
            // dropped, like any other.
            let Ok(frame) = tokio::time::timeout(timeout, stream.recv()).await else {
                break None;
            };
            let sent = match frame {
                Some(Ok(AggregatedMessage::Text(text))) => session.text(text).await,
                Some(Ok(AggregatedMessage::Binary(bytes))) => session.binary(bytes).await,
                Some(Ok(AggregatedMessage::Ping(payload))) => session.pong(&payload).await,
                Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
                Some(Ok(AggregatedMessage::Close(reason))) => {
                    break Some(reason.unwrap_or_else(|| CloseCode::Normal.into()));
                }
                Some(Err(err)) => break ending_for(err),
                None => break None,
            };
            if sent.is_err() {
                break None;
            }
        };
        if let Some(reason) = ending {
            let _ = session.close(Some(reason)).await;
        }
    });
    Ok(response)
}
