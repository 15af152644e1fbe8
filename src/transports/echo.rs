//! `GET /api/echo`: the classic WebSocket echo server. Whatever frame you
//! send — text or binary, whole or in fragments — comes straight back.
//!
//! It is not part of any log. It exists so a student can play with raw
//! frames from the browser console (`new WebSocket(…/api/echo)`) and so the
//! server's WebSocket stack can be checked against the Autobahn|Testsuite
//! (see `docs/conformance.md`) with the same limits as `/api/ws`: it is
//! accepted the same way ([`accept`]), writes within the same send timeout,
//! and closes like any other socket on shutdown (1001), in the lab's
//! outage (1013) and when the session it was opened with ends (1008).

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, Session};

use crate::error::ApiError;
use crate::identity::Peer;
use crate::message::Via;
use crate::state::AppState;
use crate::transports::websocket::{Ending, accept, close, ending_for, finish, write_within};

/// `GET /api/echo`
pub async fn echo(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    // Echo sockets count against the same WebSocket limits as the room's.
    let accepted = accept(&req, body, &state);
    state.stats.chat.of(Via::Websocket).count(&accepted);
    let accepted = accepted?;
    // Signed in, the socket is the session's like any other (the contract:
    // a session that ends closes the WebSockets opened with it).
    let session_ended = Peer::of(&req, &state).session_ended(&state);
    let state = state.into_inner();
    actix_web::rt::spawn(async move {
        let _slot = accepted.slot;
        let mut session = accepted.session;
        let ending = echo_until_done(&state, &mut session, accepted.stream, session_ended).await;
        finish(&state, session, ending).await;
    });
    Ok(accepted.response)
}

/// Sends every frame back until the client closes, goes quiet for the
/// WebSocket timeout, the server stops or goes into the lab's outage, or
/// the session the socket was opened with ends.
async fn echo_until_done(
    state: &AppState,
    session: &mut Session,
    mut stream: AggregatedMessageStream,
    session_ended: impl Future<Output = ()>,
) -> Ending {
    let closing = state.closing();
    let outage = state.lab.outage_started();
    tokio::pin!(closing, outage, session_ended);
    let silence = state.config.ws_timeout();
    loop {
        let frame = tokio::select! {
            biased;
            _ = &mut closing => return close(CloseCode::Away, "server shutting down"),
            _ = &mut outage => return close(CloseCode::Again, "network lab outage"),
            _ = &mut session_ended => return close(CloseCode::Policy, "your session ended: sign in again"),
            // An echo client that says nothing for the WebSocket timeout is
            // dropped, like any other.
            frame = tokio::time::timeout(silence, stream.recv()) => match frame {
                Ok(frame) => frame,
                Err(_silent) => return Ending::Drop,
            },
        };
        let written = match frame {
            Some(Ok(AggregatedMessage::Text(text))) => {
                write_within(state, session.text(text)).await
            }
            Some(Ok(AggregatedMessage::Binary(bytes))) => {
                write_within(state, session.binary(bytes)).await
            }
            Some(Ok(AggregatedMessage::Ping(payload))) => {
                write_within(state, session.pong(&payload)).await
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Close(reason))) => {
                return Ending::Close(reason.unwrap_or_else(|| CloseCode::Normal.into()));
            }
            Some(Err(err)) => return ending_for(err),
            None => return Ending::Drop,
        };
        if let Err(ending) = written {
            return ending;
        }
    }
}
