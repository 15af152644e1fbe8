//! Editing the shared document over HTTP and WebSocket: what an editor
//! sends, checked once, and the document as a topic of the transports.
//!
//! Submitting is one path, whatever the page: `POST /api/doc/ops`,
//! `PUT /api/doc/text` (the naive "save the textarea") and the WebSocket's
//! `op` frame all call [`submit`], which validates the fields, applies the
//! editor's rate limit, and hands the edit to the document's writer
//! (`doc.rs`), which recognises a resend by `(client, seq)`, transforms an
//! edit made at an old revision, and stores it. Reading the operations is
//! the generic transports' job (the [`Topic`] impl below); `GET /api/doc`
//! gives the text itself.
//!
//! Presence (who edits where: carets and selections, see `presence.rs`)
//! is a third log, served by the same transports under
//! `/api/doc/presence…`; an editor publishes its caret with
//! `POST /api/doc/presence` or a `presence` frame on the presence socket.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use crate::doc::{Change, DocError, Document, StoredOp, Submission, SubmitError, Submitted};
use crate::error::ApiError;
use crate::http::{json_response, query_number, read_json};
use crate::identity::{Peer, Who};
use crate::log::Log;
use crate::message::Via;
use crate::ot::{MAX_SAFE_INTEGER, Operation, check_text};
use crate::presence::{Caret, Presence, PresenceEntry};
use crate::state::AppState;
use crate::stats::TransportSet;
use crate::transports::Topic;
use crate::transports::websocket::expect_type;

/// What an editor sends, before it is checked: `POST /api/doc/ops` bodies
/// and WebSocket `op` frames (`type` and `ref` aside). Numbers are read as
/// JSON values, so that `1.5` or `-1` is refused with a sentence naming the
/// field rather than a parser's message.
#[derive(Debug, Deserialize)]
pub struct Incoming {
    /// The editor's id (one per browser tab).
    pub client: Value,
    /// Its number for this edit.
    pub seq: Value,
    /// The revision the edit was made at.
    pub rev: Value,
    /// The edit.
    pub op: Value,
    /// Who writes, if they say.
    pub author: Option<String>,
    /// The page it comes from (extension, as for chat messages).
    pub via: Option<String>,
}

/// `PUT /api/doc/text` body.
#[derive(Debug, Deserialize)]
pub struct Replacement {
    /// The editor's id.
    pub client: Value,
    /// Its number for this edit.
    pub seq: Value,
    /// The whole new text.
    pub text: String,
    /// Who writes, if they say.
    pub author: Option<String>,
    /// The page it comes from.
    pub via: Option<String>,
}

/// The one way an edit gets into the document: check the fields, apply
/// the editor's rate limit, then let the writer dedupe, transform and store.
pub async fn submit(
    state: &AppState,
    peer: &Peer,
    client: &Value,
    seq: &Value,
    change: Result<Change, ApiError>,
    author: Option<&str>,
    via: Via,
) -> Result<Submitted, ApiError> {
    if state.is_closing() {
        return Err(ApiError::ShuttingDown);
    }
    let checked = (|| {
        let client = client_id(client)?;
        let seq = whole_number("seq", "invalid_seq", seq)?;
        // Signed in: the account's name, whatever the body says. A guest
        // may leave the author out (an anonymous edit), or name itself like
        // a chat author — but not after somebody's account.
        let author = match (&peer.session, author) {
            (None, None) if !state.config.accounts_required => None,
            (_, claimed) => Some(peer.author(state, claimed)?),
        };
        Ok::<_, ApiError>((client, seq, author, change?))
    })();
    let (client, seq, author, change) = checked.inspect_err(|_| {
        state.stats.doc_rejected.fetch_add(1, Relaxed);
    })?;
    // Per person — an account, or else the editor (`client`, one per tab) —
    // and, looser, per address: a class behind one address types at once,
    // but a script that makes up a new `client` for every edit is bounded.
    let who = match &peer.session {
        Some(session) => Who::Account(session.name.clone()),
        None => Who::Tab(client.clone()),
    };
    if let Err(wait) = state
        .doc_rate
        .check(who)
        .and_then(|()| state.doc_rate_ip.check(peer.ip))
    {
        state.stats.doc_rate_limited.fetch_add(1, Relaxed);
        return Err(ApiError::RateLimited(wait));
    }
    let submitted = state
        .doc
        .submit(Submission {
            client,
            seq,
            change,
            account: author.as_ref().is_some_and(|a| a.account),
            author: author.map(|a| a.name),
            via,
        })
        .await
        .map_err(|err| match err {
            SubmitError::Refused(refused) => {
                state.stats.doc_rejected.fetch_add(1, Relaxed);
                ApiError::from(refused)
            }
            SubmitError::Store(err) => ApiError::from(err),
        })?;
    if submitted.created {
        state
            .stats
            .doc
            .of(via)
            .messages_received
            .fetch_add(1, Relaxed);
    }
    Ok(submitted)
}

/// `client`: 1 to 64 printable ASCII characters.
fn client_id(value: &Value) -> Result<String, ApiError> {
    match value.as_str() {
        Some(id)
            if (1..=64).contains(&id.len()) && id.bytes().all(|b| (b' '..=b'~').contains(&b)) =>
        {
            Ok(id.to_owned())
        }
        _ => Err(ApiError::InvalidField {
            code: "invalid_client",
            message: "client must be 1 to 64 printable ASCII characters".into(),
        }),
    }
}

/// A whole number from 0 to 2^53 − 1 (so JavaScript holds it exactly).
fn whole_number(name: &str, code: &'static str, value: &Value) -> Result<u64, ApiError> {
    match value.as_u64() {
        Some(n) if n <= MAX_SAFE_INTEGER => Ok(n),
        _ => Err(ApiError::InvalidField {
            code,
            message: format!("{name} must be a whole number from 0 to 2^53 - 1 (got {value})"),
        }),
    }
}

/// An edit made at a revision.
fn edit(rev: &Value, op: &Value) -> Result<Change, ApiError> {
    let rev = whole_number("rev", "invalid_rev", rev)?;
    let op = Operation::from_json(op).map_err(|e| ApiError::Doc(DocError::Op(e)))?;
    Ok(Change::Edit { rev, op })
}

fn via_of(name: Option<&str>) -> Result<Via, ApiError> {
    match name {
        None => Ok(Via::Api),
        Some(name) => Via::parse(name).ok_or(ApiError::Invalid(
            crate::message::InvalidMessage::UnknownVia,
        )),
    }
}

/// `{"rev":N,"op":[…]}`: the answer to a submission.
fn submitted_body(stored: &StoredOp) -> Bytes {
    Bytes::from(serde_json::json!({"rev": stored.rev, "op": stored.op.to_json()}).to_string())
}

/// `201` for a new operation, `200` for a resend.
fn submitted_response(submitted: &Submitted) -> HttpResponse {
    let status = if submitted.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    json_response(status, submitted_body(&submitted.stored))
}

/// `POST /api/doc/ops`: submit an operation.
pub async fn post_op(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let body: Incoming = read_json(&req, payload, state.config.doc_max_body_bytes).await?;
    let via = via_of(body.via.as_deref())?;
    let change = edit(&body.rev, &body.op);
    let submitted = submit(
        &state,
        &Peer::of(&req, &state),
        &body.client,
        &body.seq,
        change,
        body.author.as_deref(),
        via,
    )
    .await?;
    Ok(submitted_response(&submitted))
}

/// `PUT /api/doc/text`: replace the whole text (the naive "save the
/// textarea": whatever others typed meanwhile is lost).
pub async fn put_text(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let body: Replacement = read_json(&req, payload, state.config.doc_max_body_bytes).await?;
    let via = via_of(body.via.as_deref())?;
    let change = check_text(&body.text)
        .map(|()| Change::ReplaceAll(body.text.clone()))
        .map_err(|e| ApiError::Doc(DocError::Op(e)));
    let submitted = submit(
        &state,
        &Peer::of(&req, &state),
        &body.client,
        &body.seq,
        change,
        body.author.as_deref(),
        via,
    )
    .await?;
    Ok(submitted_response(&submitted))
}

/// `GET /api/doc`: `{"rev":R,"text":"…"}` — where an editor starts.
pub async fn get_doc(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let (rev, text) = state.doc.current();
    let body = serde_json::json!({"rev": rev, "text": text}).to_string();
    lab_delay(&state).await;
    Ok(json_response(HttpResponse::Ok(), Bytes::from(body)))
}

/// `GET /api/doc/summary` (extension): `{"rev","length","hash"}` of the
/// text now, so that an editor can tell whether its own text is the
/// server's without downloading it. `hash` is FNV-1a (32 bits, as 8 hex
/// digits) of the text's UTF-8 bytes; `length` counts characters.
pub async fn summary(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let (rev, text) = state.doc.current();
    let body = serde_json::json!({
        "rev": rev,
        "length": text.chars().count(),
        "hash": format!("{:08x}", fnv1a(text.as_bytes())),
    })
    .to_string();
    lab_delay(&state).await;
    Ok(json_response(HttpResponse::Ok(), Bytes::from(body)))
}

/// FNV-1a, 32 bits: a tiny hash a browser computes in three lines too.
pub fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Query of `GET /api/doc/text`.
#[derive(Debug, Deserialize)]
pub struct TextQuery {
    /// The revision (default: the newest).
    pub rev: Option<String>,
    /// `1`: ask the browser to save it as a file.
    pub download: Option<String>,
}

/// `GET /api/doc/text?rev=N[&download=1]` (extension): the plain text at
/// revision N (default the newest) — the history scrubber's view, and the
/// teacher's download.
pub async fn get_text(
    query: web::Query<TextQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let newest = state.doc.rev();
    let rev = query_number("rev", query.rev.as_deref(), newest, 0..=newest)?;
    let text = state.doc.text_at(rev).await?;
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Doc-Rev", rev.to_string()))
        .content_type("text/plain; charset=utf-8");
    if query.download.as_deref() == Some("1") {
        response.insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"document-rev-{rev}.txt\""),
        ));
    }
    Ok(response.body(text))
}

/// `POST /api/doc/restore` body.
#[derive(Debug, Deserialize)]
pub struct Restore {
    /// The revision whose text to bring back.
    pub rev: Value,
}

/// `POST /api/doc/restore {"rev":N}` (extension, the teacher only): makes
/// the text what it was at revision N, stored as a new operation (the
/// smallest edit from now to then): history is never rewritten.
pub async fn restore(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let peer = Peer::of(&req, &state);
    if !peer.is_teacher(&req, &state) {
        return Err(ApiError::Unauthorized);
    }
    state.check_outage()?;
    let body: Restore = read_json(&req, payload, state.config.max_body_bytes).await?;
    let rev = whole_number("rev", "invalid_rev", &body.rev)?;
    if rev > state.doc.rev() {
        return Err(ApiError::Doc(DocError::RevAhead {
            rev,
            last: state.doc.rev(),
        }));
    }
    let text = state.doc.text_at(rev).await?;
    // The teacher's restores are one editor whose numbers only grow. Not
    // through `submit`: the teacher is already known, and no guest rule or
    // editor's rate limit applies.
    let submitted = state
        .doc
        .submit(Submission {
            client: "teacher-restore".into(),
            seq: next_restore_seq(),
            change: Change::Restore(text),
            // A teacher's session's name, or — by the token — "teacher".
            author: Some(
                peer.session
                    .as_ref()
                    .map_or_else(|| "teacher".to_owned(), |s| s.name.to_string()),
            ),
            account: peer.session.is_some(),
            via: Via::Api,
        })
        .await
        .map_err(|err| match err {
            SubmitError::Refused(refused) => ApiError::from(refused),
            SubmitError::Store(err) => ApiError::from(err),
        })?;
    Ok(submitted_response(&submitted))
}

/// The `seq` of the next restore. The teacher's restores are one editor
/// (`teacher-restore`) whose numbers must only grow, across restarts too:
/// the clock in milliseconds — but one more than the last if the clock has
/// not moved on, or two restores in one millisecond (two clicks, two tabs)
/// would share a `seq`, and the second would be taken for a resend of the
/// first and answered with the first's text.
fn next_restore_seq() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = crate::store::now_ms();
    let next = |last: u64| now.max(last + 1);
    match LAST.fetch_update(Relaxed, Relaxed, |last| Some(next(last))) {
        Ok(last) | Err(last) => next(last),
    }
}

/// The lab's latency and jitter on a read that is not a transport.
async fn lab_delay(state: &AppState) {
    let delay = state.lab.sample_delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}

/// The document, as every transport serves it.
impl Topic for Document {
    type Entry = StoredOp;
    const ENTRIES: &'static str = "ops";
    const LAST: &'static str = "last_rev";

    fn log(&self) -> &Log<StoredOp> {
        Document::log(self)
    }

    fn stats<'a>(&'a self, state: &'a AppState) -> &'a TransportSet {
        &state.stats.doc
    }

    /// An edit may be a whole pasted text: the same limit as a body.
    fn max_frame_bytes(&self, state: &AppState) -> usize {
        state.config.doc_max_body_bytes
    }

    /// An `op` frame is submitted like a `POST` and answered with
    /// `{"type":"ack","ref":…,"rev":N}`; the operation itself comes back to
    /// this editor too, in rev order, like everyone else's.
    async fn on_frame(
        &self,
        state: &AppState,
        peer: &Peer,
        frame: Value,
    ) -> Result<Option<String>, ApiError> {
        let reference = frame.get("ref").cloned();
        expect_type(&frame, "op")?;
        let incoming: Incoming = serde_json::from_value(frame)
            .map_err(|e| ApiError::BadJson(format!("invalid op frame: {e}")))?;
        let change = edit(&incoming.rev, &incoming.op);
        let submitted = submit(
            state,
            peer,
            &incoming.client,
            &incoming.seq,
            change,
            incoming.author.as_deref(),
            Via::Websocket,
        )
        .await?;
        Ok(Some(
            serde_json::json!({"type": "ack", "ref": reference, "rev": submitted.stored.rev})
                .to_string(),
        ))
    }
}

/// What an editor says about its caret: `POST /api/doc/presence` bodies
/// and `presence` frames on `/api/doc/presence/ws`.
#[derive(Debug, Deserialize)]
pub struct CaretUpdate {
    /// The editor's id (its `client` in the document).
    pub client: Value,
    /// The revision `anchor` and `head` are positions in.
    pub rev: Value,
    /// Where the selection starts (code points).
    pub anchor: Value,
    /// Where the caret is.
    pub head: Value,
    /// The name to show (a guest's; signed in, the account's is used).
    pub name: Option<String>,
    /// The transport the editor reads over.
    pub via: Option<String>,
    /// True when the editor is leaving.
    #[serde(default)]
    pub left: bool,
}

/// Checks a caret update and publishes it to every reader of presence.
pub fn publish_caret(
    state: &AppState,
    peer: &Peer,
    update: &CaretUpdate,
) -> Result<std::sync::Arc<PresenceEntry>, ApiError> {
    state.check_outage()?;
    let client = client_id(&update.client)?;
    let rev = whole_number("rev", "invalid_rev", &update.rev)?;
    if rev > state.doc.rev() {
        return Err(ApiError::Doc(DocError::RevAhead {
            rev,
            last: state.doc.rev(),
        }));
    }
    let anchor = whole_number("anchor", "invalid_caret", &update.anchor)?;
    let head = whole_number("head", "invalid_caret", &update.head)?;
    let via = via_of(update.via.as_deref())?;
    // The same name rules as everywhere: signed in, the account's name; a
    // guest may not show somebody's account name next to its caret.
    let author = match (&peer.session, update.name.as_deref()) {
        (None, None) => None,
        (_, claimed) => Some(peer.author(state, claimed)?),
    };
    if let Err(wait) = state.presence_rate.check(client.clone()) {
        return Err(ApiError::RateLimited(wait));
    }
    Ok(state.presence.publish(Caret {
        color: Presence::color_of(&client),
        client,
        name: author
            .as_ref()
            .map_or_else(|| "guest".to_owned(), |a| a.name.clone()),
        account: author.is_some_and(|a| a.account),
        via,
        rev,
        anchor,
        head,
        left: update.left,
    }))
}

/// `POST /api/doc/presence`: publishes this editor's caret; `204`.
pub async fn post_presence(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let update: CaretUpdate = read_json(&req, payload, state.config.max_body_bytes).await?;
    let peer = Peer::of(&req, &state);
    publish_caret(&state, &peer, &update)?;
    state
        .stats
        .presence
        .of(via_of(update.via.as_deref())?)
        .messages_received
        .fetch_add(1, Relaxed);
    Ok(HttpResponse::NoContent().finish())
}

/// Presence, as every transport serves it.
impl Topic for Presence {
    type Entry = PresenceEntry;
    const ENTRIES: &'static str = "carets";
    const LAST: &'static str = "last_seq";

    fn log(&self) -> &Log<PresenceEntry> {
        Presence::log(self)
    }

    fn stats<'a>(&'a self, state: &'a AppState) -> &'a TransportSet {
        &state.stats.presence
    }

    /// A `presence` frame is published like a `POST` and needs no answer
    /// (the editor's own caret comes back in the stream like everyone's).
    async fn on_frame(
        &self,
        state: &AppState,
        peer: &Peer,
        frame: Value,
    ) -> Result<Option<String>, ApiError> {
        expect_type(&frame, "presence")?;
        let update: CaretUpdate = serde_json::from_value(frame)
            .map_err(|e| ApiError::BadJson(format!("invalid presence frame: {e}")))?;
        publish_caret(state, peer, &update)?;
        state
            .stats
            .presence
            .of(Via::Websocket)
            .messages_received
            .fetch_add(1, Relaxed);
        Ok(None)
    }
}
