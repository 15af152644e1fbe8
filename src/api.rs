//! The plain HTTP endpoints that are not a transport: sending a message
//! (`POST /api/messages`), the teacher's lab, the stats, the health check —
//! and the small helpers every `/api/*` handler shares (reading JSON bodies,
//! parsing query numbers, writing JSON answers).
//!
//! Sending is the same for every page except the WebSocket one (which sends
//! a frame on its open connection): a `POST` with a JSON body. Only
//! *receiving* differs between the transports, which is the whole lesson.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering::Relaxed;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::lab::LabChange;
use crate::message::{InvalidMessage, NewMessage, Via};
use crate::room::Page;
use crate::server::AppState;

/// `POST /api/messages` body.
#[derive(Debug, Deserialize)]
struct PostBody {
    author: String,
    text: String,
    via: Option<String>,
}

/// `POST /api/messages`: validate, rate-limit, store, answer `201` with the
/// stored message (its id is the sender's proof that it is durable).
pub async fn post_message(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.check_outage()?;
    let result = async {
        let body: PostBody = read_json(&req, payload, state.config.max_body_bytes).await?;
        let via = match body.via.as_deref() {
            None => Via::Api,
            Some(name) => Via::parse(name).ok_or(InvalidMessage::UnknownVia)?,
        };
        let message = NewMessage::validate(
            &body.author,
            &body.text,
            via,
            usize::from(state.config.max_text_chars),
        )?;
        Ok::<_, ApiError>(message)
    }
    .await;
    let message = result.inspect_err(|_| {
        state.stats.posts_rejected.fetch_add(1, Relaxed);
    })?;

    // The rate limit is checked after validation, so a refused message
    // spends no token and a 429 always means "valid, but slow down".
    if let Err(wait) = state.post_rate.check(client_ip(&req)) {
        state.stats.posts_rate_limited.fetch_add(1, Relaxed);
        return Err(ApiError::RateLimited(wait));
    }

    let via = message.via;
    let stored = state.room.append(message).await?;
    state.stats.of(via).messages_received.fetch_add(1, Relaxed);
    Ok(json_response(HttpResponse::Created(), stored.json.clone()))
}

/// `GET /api/stats`.
pub async fn stats(state: web::Data<AppState>) -> HttpResponse {
    let mut snapshot = serde_json::to_value(state.stats.snapshot(state.room.last_id()))
        // unwrap: the snapshot is plain data.
        .unwrap();
    // The lab's state rides along so the dashboard needs one request, not two.
    snapshot["lab"] = serde_json::to_value(state.lab.settings()).unwrap_or_default();
    json_response(
        HttpResponse::Ok(),
        // unwrap: a serde_json::Value always serialises.
        Bytes::from(serde_json::to_vec(&snapshot).unwrap()),
    )
}

/// `GET /api/lab`: anyone may look.
pub async fn get_lab(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(state.lab.settings())
}

/// `PUT /api/lab`: only the teacher may change it.
pub async fn put_lab(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), state.teacher_token.as_bytes()) {
        return Err(ApiError::Unauthorized);
    }
    let change: LabChange = read_json(&req, payload, state.config.max_body_bytes).await?;
    let settings = state.lab.apply(change).map_err(ApiError::InvalidLab)?;
    tracing::info!(?settings, "lab changed");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(settings))
}

/// `GET /healthz`: the process is up and the room answers.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "status": "ok", "last_id": state.room.last_id() }))
}

/// Compares two secrets in time that does not depend on *where* they
/// differ, so an attacker cannot guess the token one character at a time by
/// timing the 401s. (Only the length can leak, which says nothing useful
/// about a random token.)
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a JSON body of at most `limit` bytes and parses it as `T`.
///
/// Done by hand rather than with `web::Json` so that each failure — wrong
/// `Content-Type` (415), too big (413), malformed (400) — is *our* error with
/// the contract's JSON body, and the size is checked before the body is
/// buffered.
pub async fn read_json<T: DeserializeOwned>(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::NotJson);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::BodyTooLarge(limit));
    }
    let mut body = BytesMut::with_capacity(declared.map_or(1024, |len| len as usize));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadJson(format!("could not read the body: {e}")))?;
        // Chunked bodies have no Content-Length: count as we go.
        if body.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
        body.put(chunk);
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::BadJson(format!("invalid JSON body: {e}")))
}

/// Query parameters shared by the reading endpoints. All are strings here
/// and parsed by [`number`], so a bad value gets a sentence that names the
/// parameter and its range. Unknown parameters are ignored (contract).
#[derive(Debug, Default, Deserialize)]
pub struct ReadQuery {
    /// Cursor: deliver messages with `id > since`.
    pub since: Option<String>,
    /// Most messages in one answer.
    pub limit: Option<String>,
    /// Long poll: longest hold in seconds.
    pub timeout: Option<String>,
    /// Which polling page is asking (`interval`, `timeout`), for the stats.
    pub transport: Option<String>,
    /// A per-tab id the pages send so the stats can count who is here.
    pub client: Option<String>,
}

/// Default and bounds of `limit` (contract).
pub const LIMIT_DEFAULT: u64 = 100;
/// See [`LIMIT_DEFAULT`].
pub const LIMIT_RANGE: RangeInclusive<u64> = 1..=500;

impl ReadQuery {
    /// `since`, default 0.
    pub fn since(&self) -> Result<u64, ApiError> {
        number("since", self.since.as_deref(), 0, 0..=u64::MAX)
    }

    /// `client`, if given: 1..=64 of `A-Z a-z 0-9 _ -`.
    pub fn client(&self) -> Result<Option<&str>, ApiError> {
        match self.client.as_deref() {
            None => Ok(None),
            Some(id)
                if (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Ok(Some(id))
            }
            Some(id) => Err(ApiError::BadQuery(format!(
                "client must be 1 to 64 letters, digits, '_' or '-' (got {id:?})"
            ))),
        }
    }

    /// `limit`, default 100, 1..=500.
    pub fn limit(&self) -> Result<usize, ApiError> {
        number("limit", self.limit.as_deref(), LIMIT_DEFAULT, LIMIT_RANGE).map(|n| n as usize)
    }
}

/// Parses an optional decimal parameter within `range`.
pub fn number(
    name: &str,
    value: Option<&str>,
    default: u64,
    range: RangeInclusive<u64>,
) -> Result<u64, ApiError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let bounds = if *range.end() == u64::MAX {
        format!("a whole number from {}", range.start())
    } else {
        format!("a whole number from {} to {}", range.start(), range.end())
    };
    match value.parse::<u64>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ApiError::BadQuery(format!(
            "{name} must be {bounds} (got {value:?})"
        ))),
    }
}

/// The client's address, for per-client limits. IPv4 clients reaching an
/// IPv6 socket appear as `::ffff:a.b.c.d`; fold them back so one student is
/// one key.
pub fn client_ip(req: &HttpRequest) -> IpAddr {
    match req.peer_addr().map(|a| a.ip()) {
        Some(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        Some(ip) => ip,
        None => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    }
}

/// `{"messages":[…],"last_id":M}`, assembled from each message's
/// pre-encoded JSON (no serde work per request).
pub fn page_body(page: &Page) -> Bytes {
    let size: usize = page.messages.iter().map(|m| m.json.len() + 1).sum();
    let mut body = BytesMut::with_capacity(size + 40);
    body.put_slice(b"{\"messages\":[");
    for (i, message) in page.messages.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(&message.json);
    }
    body.put_slice(b"],\"last_id\":");
    body.put_slice(page.last_id.to_string().as_bytes());
    body.put_u8(b'}');
    body.freeze()
}

/// A JSON answer that no browser or proxy may cache: a cached poll would
/// show old news as new.
pub fn json_response(mut builder: actix_web::HttpResponseBuilder, body: Bytes) -> HttpResponse {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .content_type("application/json")
        .body(body)
}

/// Answers unknown `/api/*` paths (and wrong methods) with JSON, not
/// actix's empty 404.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(req.path().to_owned()))
}

/// Answers a known path asked with the wrong method.
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}
