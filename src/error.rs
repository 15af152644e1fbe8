//! Every way a request can fail, and the one place where a failure becomes
//! the contract's JSON: `{"error":"<for a person>","code":"<stable_snake_case>"}`.
//!
//! Handlers return `Result<_, ApiError>`; actix calls
//! [`ResponseError::error_response`] for the error arm. Actix's own
//! extractor errors (a malformed query string, say) are routed here too, by
//! [`query_error`], so a client never gets a plain-text error from `/api/*`.
//!
//! The same codes appear in WebSocket `error` frames, so a client handles
//! `rate_limited` once whichever transport it uses.

use std::time::Duration;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::accounts::AccountError;
use crate::doc::DocError;
use crate::limits::Refusal;
use crate::message::InvalidMessage;
use crate::store::StoreError;

/// A failed `/api/*` request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: a query parameter is missing its form or its range.
    #[error("{0}")]
    BadQuery(String),
    /// 400: the body is not the JSON we expect.
    #[error("{0}")]
    BadJson(String),
    /// 400: a plain GET arrived where a WebSocket upgrade was expected.
    #[error("this endpoint speaks WebSocket: send an Upgrade: websocket request")]
    NotWebSocket,
    /// WebSocket only: a frame whose `type` the server does not know.
    #[error("unknown frame type {0:?}; the only type a client sends is \"send\"")]
    UnknownFrameType(String),
    /// WebSocket only: a binary frame on the room's socket.
    #[error("this socket takes JSON text frames, not binary ones")]
    BinaryNotSupported,
    /// 401: this needs the teacher (a teacher's session, or the token).
    #[error(
        "this needs the teacher: sign in as the teacher, or send the teacher token (Authorization: Bearer <token>)"
    )]
    Unauthorized,
    /// 401: the server wants accounts, and this guest is not signed in.
    #[error("sign in to write here: this server does not take messages or edits from guests")]
    SignInRequired,
    /// 401: `GET /api/session` without a live session.
    #[error("not signed in")]
    NotSignedIn,
    /// 409: a guest used a name that belongs to an account.
    #[error("that name belongs to an account: sign in as it, or choose another name")]
    NameTaken,
    /// An account operation was refused (its own status and code). A
    /// failure of the accounts' database or hasher becomes [`ApiError::Store`]
    /// instead, so its details stay in the server's log.
    #[error(transparent)]
    Account(AccountError),
    /// 403: a WebSocket upgrade, or a request that changes something,
    /// from a page on another site.
    #[error(
        "pages of another site (origin {0}) may not open this server's sockets or change anything here"
    )]
    ForbiddenOrigin(String),
    /// 404: no such endpoint.
    #[error("no such endpoint: {0}")]
    NotFound(String),
    /// 405: the endpoint exists but not with this method.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// 413: the body exceeds `--max-body-bytes`.
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// 415: the body is not declared as JSON.
    #[error("send the body as JSON with Content-Type: application/json")]
    NotJson,
    /// 422: a field is out of its bounds.
    #[error(transparent)]
    Invalid(#[from] InvalidMessage),
    /// 422: a lab field is out of its bounds.
    #[error("{0}")]
    InvalidLab(String),
    /// 422: a field of an edit is not of its form (`invalid_client`,
    /// `invalid_seq`, `invalid_rev`).
    #[error("{message}")]
    InvalidField {
        /// The stable code.
        code: &'static str,
        /// A sentence for a person.
        message: String,
    },
    /// 409 or 422: the document refused an edit.
    #[error(transparent)]
    Doc(#[from] DocError),
    /// 429: this client is sending (messages, edits, carets) too fast.
    #[error("too fast: wait {}s before sending again", retry_secs(*.0))]
    RateLimited(Duration),
    /// 429 (one address over its share) or 503 (server full).
    #[error("{}", connection_refusal_text(.what, .refusal))]
    TooManyConnections {
        /// What kind of connection was refused.
        what: &'static str,
        /// Which limit refused it.
        refusal: Refusal,
    },
    /// 503: the teacher switched the lab's outage on.
    #[error("the network lab's outage is on; try again shortly")]
    Outage,
    /// 503: the server is stopping.
    #[error("the server is shutting down; try again shortly")]
    ShuttingDown,
    /// 503: the database writer's queue is full.
    #[error("the server is busy storing messages; try again shortly")]
    Busy,
    /// 500: the database failed. The sentence is deliberately plain: what
    /// SQLite said (which can name tables and columns) goes to the server's
    /// log, not to the client.
    #[error("the server could not read or store that; please try again")]
    Store,
}

fn retry_secs(d: Duration) -> u64 {
    // Retry-After is whole seconds; round up so the client never comes back
    // before a token is there.
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn connection_refusal_text(what: &str, refusal: &Refusal) -> String {
    match refusal {
        Refusal::PerPerson(n) => {
            format!("you have too many {what} open (at most {n}); close some tabs")
        }
        Refusal::PerAddress(n) => {
            format!("too many {what} from your address (at most {n} for everyone behind it)")
        }
        Refusal::Total(n) => format!("the server is full: {n} {what} are open already"),
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Store(_) | AccountError::Hash(_) => {
                tracing::error!(%err, "accounts failed");
                ApiError::Store
            }
            refused => ApiError::Account(refused),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Closed => ApiError::ShuttingDown,
            StoreError::Busy => ApiError::Busy,
            other => {
                tracing::error!(err = %other, "store failed");
                ApiError::Store
            }
        }
    }
}

impl ApiError {
    /// The stable snake_case code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadQuery(_) => "bad_query",
            ApiError::BadJson(_) => "bad_json",
            ApiError::NotWebSocket => "not_websocket",
            ApiError::UnknownFrameType(_) => "unknown_type",
            ApiError::BinaryNotSupported => "binary_not_supported",
            ApiError::Unauthorized => "unauthorized",
            ApiError::SignInRequired => "sign_in_required",
            ApiError::NotSignedIn => "not_signed_in",
            ApiError::NameTaken => "name_taken",
            ApiError::Account(err) => err.code(),
            ApiError::ForbiddenOrigin(_) => "forbidden_origin",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::NotJson => "not_json",
            ApiError::Invalid(invalid) => invalid.code(),
            ApiError::InvalidLab(_) => "invalid_lab",
            ApiError::InvalidField { code, .. } => code,
            ApiError::Doc(refused) => match refused {
                DocError::RevAhead { .. } => "rev_ahead",
                DocError::RevTooOld { .. } => "rev_too_old",
                DocError::Op(op) => op.code(),
                DocError::DoesNotFit { .. } => "bad_operation",
                DocError::TooLong { .. } => "document_too_long",
            },
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::TooManyConnections { .. } => "too_many_connections",
            ApiError::Outage => "outage",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Busy => "busy",
            ApiError::Store => "store_failed",
        }
    }

    /// How long the client should wait before trying again, if it should.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited(wait) => Some(*wait),
            ApiError::Account(err) => err.retry_after(),
            ApiError::TooManyConnections { .. }
            | ApiError::Outage
            | ApiError::ShuttingDown
            | ApiError::Busy => Some(Duration::from_secs(2)),
            _ => None,
        }
    }

    /// The JSON body shared by HTTP answers and WebSocket error frames.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.to_string(),
            code: self.code(),
            retry_after_ms: self.retry_after().map(|d| d.as_millis() as u64),
        }
    }
}

/// `{"error": …, "code": …}` (plus `retry_after_ms` when there is one, an
/// extension so WebSocket clients, which get no headers, know it too).
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// A sentence for a person.
    pub error: String,
    /// A stable snake_case code for a program.
    pub code: &'static str,
    /// When to try again, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadQuery(_)
            | ApiError::BadJson(_)
            | ApiError::NotWebSocket
            | ApiError::UnknownFrameType(_) => StatusCode::BAD_REQUEST,
            ApiError::BinaryNotSupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized | ApiError::SignInRequired | ApiError::NotSignedIn => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::NameTaken => StatusCode::CONFLICT,
            ApiError::Account(err) => {
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            ApiError::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) | ApiError::InvalidLab(_) | ApiError::InvalidField { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::Doc(DocError::RevAhead { .. } | DocError::RevTooOld { .. }) => {
                StatusCode::CONFLICT
            }
            ApiError::Doc(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::TooManyConnections { refusal, .. } => match refusal {
                Refusal::PerPerson(_) | Refusal::PerAddress(_) => StatusCode::TOO_MANY_REQUESTS,
                Refusal::Total(_) => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::Outage | ApiError::ShuttingDown | ApiError::Busy => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(wait) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, retry_secs(wait).max(1).to_string()));
        }
        if matches!(self, ApiError::Unauthorized) {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(self.body())
    }
}

/// Turns actix's query-string extractor errors into our `400 bad_query`.
pub fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    ApiError::BadQuery(format!("bad query string: {err}")).into()
}
