//! The chat: sending a message, and the room as the transports serve it.
//!
//! Sending is one path, whatever the page: `POST /api/messages` and the
//! WebSocket's `send` frame both call [`send`], which validates, applies the
//! sender's rate limit, lets the store recognise a resend by its `key`,
//! appends, and counts. Only *receiving* differs between the transports,
//! which is the whole lesson — and receiving is generic (`transports`): the
//! [`Topic`] impl below is all the chat adds to it.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::error::ApiError;
use crate::http::{json_response, read_json};
use crate::identity::Peer;
use crate::log::Log;
use crate::message::{InvalidMessage, NewMessage, StoredMessage, Via};
use crate::room::Room;
use crate::state::AppState;
use crate::stats::TransportSet;
use crate::transports::Topic;
use crate::transports::websocket::expect_type;

/// What a sender asks to have stored.
#[derive(Debug, Deserialize)]
pub struct Outgoing {
    /// Who writes (trimmed, 1..=32 characters). Signed in, the account's
    /// name is used instead, and the field may be left out.
    pub author: Option<String>,
    /// What they write (trimmed, 1..=2000 characters).
    pub text: String,
    /// The sender's resend key (contract v2), if any.
    pub key: Option<String>,
}

/// A message the room has, after [`send`].
pub struct Sent {
    /// The message as stored.
    pub message: Arc<StoredMessage>,
    /// False when this was a resend of a message stored before.
    pub created: bool,
}

/// The one way a message gets into the room: who writes (an account's
/// name, or a guest's that is nobody's account) → validate → rate-limit →
/// (the store) recognise a resend by its key → append → count.
pub async fn send(
    state: &AppState,
    peer: &Peer,
    outgoing: &Outgoing,
    via: Via,
) -> Result<Sent, ApiError> {
    if state.is_closing() {
        return Err(ApiError::ShuttingDown);
    }
    let checked = peer
        .author(state, outgoing.author.as_deref())
        .and_then(|author| {
            let mut message = NewMessage::validate_keyed(
                &author.name,
                &outgoing.text,
                via,
                outgoing.key.as_deref(),
                usize::from(state.config.max_text_chars),
            )?;
            message.account = author.account;
            Ok(message)
        });
    let message = checked.inspect_err(|_| {
        state.stats.posts_rejected.fetch_add(1, Relaxed);
    })?;
    // The rate limit is checked after validation, so a refused message
    // spends no token and a 429 always means "valid, but slow down".
    peer.check_post_rate(state).inspect_err(|_| {
        state.stats.posts_rate_limited.fetch_add(1, Relaxed);
    })?;
    let appended = state.room.append(message).await?;
    if appended.created {
        state
            .stats
            .chat
            .of(via)
            .messages_received
            .fetch_add(1, Relaxed);
    }
    Ok(Sent {
        message: appended.message,
        created: appended.created,
    })
}

/// `POST /api/messages` body.
#[derive(Debug, Deserialize)]
struct PostBody {
    #[serde(flatten)]
    outgoing: Outgoing,
    via: Option<String>,
}

/// `POST /api/messages`: answers `201` with the stored message (its id is
/// the sender's proof that it is durable), or `200` with the message stored
/// the first time when this is a resend of a stored `key`.
pub async fn post_message(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let body: PostBody = read_json(&req, payload, state.config.max_body_bytes)
        .await
        .inspect_err(|_| {
            state.stats.posts_rejected.fetch_add(1, Relaxed);
        })?;
    let via = match body.via.as_deref() {
        None => Via::Api,
        Some(name) => Via::parse(name).ok_or_else(|| {
            state.stats.posts_rejected.fetch_add(1, Relaxed);
            InvalidMessage::UnknownVia
        })?,
    };
    let sent = send(&state, &Peer::of(&req, &state), &body.outgoing, via).await?;
    let status = if sent.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(json_response(status, sent.message.wire.json.clone()))
}

/// The chat's room, as every transport serves it.
impl Topic for Room {
    type Entry = StoredMessage;
    const ENTRIES: &'static str = "messages";
    const LAST: &'static str = "last_id";

    fn log(&self) -> &Log<StoredMessage> {
        Room::log(self)
    }

    fn stats<'a>(&'a self, state: &'a AppState) -> &'a TransportSet {
        &state.stats.chat
    }

    /// A `send` frame is stored like a `POST` and answered with
    /// `{"type":"ack","ref":…,"id":…}`.
    async fn on_frame(
        &self,
        state: &AppState,
        peer: &Peer,
        frame: serde_json::Value,
    ) -> Result<Option<String>, ApiError> {
        let reference = frame.get("ref").cloned();
        expect_type(&frame, "send")?;
        // `{"type":"send","ref":…,"author":…,"text":…,"key"?:…}`: the fields
        // other than type and ref are a POST's.
        let outgoing: Outgoing = serde_json::from_value(frame)
            .map_err(|e| ApiError::BadJson(format!("invalid send frame: {e}")))?;
        let sent = send(state, peer, &outgoing, Via::Websocket).await?;
        Ok(Some(
            serde_json::json!({"type": "ack", "ref": reference, "id": sent.message.id()})
                .to_string(),
        ))
    }
}
