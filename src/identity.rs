//! Who is asking: the client's address, its session (if it is signed in)
//! and its tab — and the rules that follow from that: whose name a message
//! or an edit carries, whose limits it counts against, who is the teacher.
//!
//! # How every transport knows who you are
//!
//! A browser cannot set headers on `new WebSocket(…)` or
//! `new EventSource(…)`; what it does send, on every request to this
//! server — polls, long polls, event streams and the WebSocket's upgrade
//! request alike — is its cookies. So the session is a cookie
//! ([`SESSION_COOKIE`], `HttpOnly`, `SameSite=Lax`), and one extractor reads
//! it for every handler: the transports never see a password or a token.
//!
//! The catch: a page on *another* site can also open `ws://this-server/…`,
//! and the browser attaches the same cookie (cross-site WebSocket
//! hijacking). What the browser also attaches, and no page can forge, is
//! the `Origin` header — which is why the server checks it on every
//! upgrade and every request that changes something
//! ([`crate::http::check_origin`]).

use std::future::{Future, Ready, ready};
use std::net::IpAddr;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, ResponseError, web};

use crate::accounts::{Role, Session};
use crate::error::ApiError;
use crate::http::{bearer_token, check_origin, client_ip, teacher_token_matches};
pub use crate::limits::Who;
use crate::limits::{ConnectionGuard, ConnectionLimiter};
use crate::message::{NewMessage, Via};
use crate::state::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "weebsockets_session";

/// Who is on the other end of a request or connection.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub ip: IpAddr,
    /// Its session, if it is signed in (and the session is live).
    pub session: Option<Session>,
    /// The tab's own id (`client=` in the query string), if it sent one.
    pub tab: Option<String>,
}

/// The author a message or an edit is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author {
    /// The name (trimmed; an account's name as it was registered).
    pub name: String,
    /// True when it is a signed-in account's name.
    pub account: bool,
}

impl Peer {
    /// The peer of `req`: its address, the live session its cookie names
    /// (none for no cookie, or an ended, expired or made-up one), and its
    /// tab id.
    pub fn of(req: &HttpRequest, state: &AppState) -> Peer {
        let session = req
            .cookie(SESSION_COOKIE)
            .and_then(|cookie| state.accounts.session(cookie.value()));
        Peer {
            ip: client_ip(req),
            session,
            tab: tab_of(req),
        }
    }

    /// Takes a slot of `limiter` for this peer (its own share and its
    /// address's), or explains the refusal.
    pub fn acquire(
        &self,
        limiter: &Arc<ConnectionLimiter<Who>>,
    ) -> Result<ConnectionGuard<Who>, ApiError> {
        limiter
            .acquire(self.who(), self.ip)
            .map_err(|refusal| ApiError::TooManyConnections {
                what: limiter.what,
                refusal,
            })
    }

    /// Takes one message's token for this peer: from its own bucket and
    /// from its address's (the outer bound), or says how long to wait.
    pub fn check_post_rate(&self, state: &AppState) -> Result<(), ApiError> {
        state
            .post_rate
            .check(self.who())
            .and_then(|()| state.post_rate_ip.check(self.ip))
            .map_err(ApiError::RateLimited)
    }

    /// The person this peer counts as, for per-person limits.
    pub fn who(&self) -> Who {
        match (&self.session, &self.tab) {
            (Some(session), _) => Who::Account(Arc::clone(&session.name)),
            (None, Some(tab)) => Who::Tab(tab.clone()),
            (None, None) => Who::Address(self.ip),
        }
    }

    /// The author of what this peer writes: signed in, the account's name
    /// whatever `claimed` says; a guest, `claimed` — unless it is an
    /// account's name (`409 name_taken`), or the server wants accounts
    /// (`401 sign_in_required`).
    pub fn author(&self, state: &AppState, claimed: Option<&str>) -> Result<Author, ApiError> {
        if let Some(session) = &self.session {
            return Ok(Author {
                name: session.name.to_string(),
                account: true,
            });
        }
        if state.config.accounts_required {
            return Err(ApiError::SignInRequired);
        }
        // Only a signed-in sender may leave the author out; for a guest it
        // is a missing field, as in v1 of the contract.
        let Some(claimed) = claimed else {
            return Err(ApiError::BadJson("missing field `author`".into()));
        };
        // A guest's name follows a message author's rules…
        let name = NewMessage::validate(claimed, "-", Via::Api, 1)?.author;
        // …and may not be somebody's account.
        if state.accounts.is_account_name(&name) {
            return Err(ApiError::NameTaken);
        }
        Ok(Author {
            name,
            account: false,
        })
    }

    /// True when this request may act as the teacher: a teacher's session,
    /// or the teacher token (`Authorization: Bearer …`, for scripts).
    pub fn is_teacher(&self, req: &HttpRequest, state: &AppState) -> bool {
        self.session
            .as_ref()
            .is_some_and(|session| session.role == Role::Teacher)
            || (bearer_token(req).is_some() && teacher_token_matches(req, &state.teacher_token))
    }

    /// Resolves when this peer's session ends (sign-out, expiry, the
    /// teacher); never for a guest. A WebSocket or event stream `select!`s
    /// on it and closes.
    pub fn session_ended(
        &self,
        state: &AppState,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        match &self.session {
            Some(session) => Box::pin(state.accounts.ended(&session.id)),
            None => Box::pin(std::future::pending()),
        }
    }
}

/// The `client=` parameter of the query string: the tab's id, as the pages
/// send it on every request (1..=64 of `A-Z a-z 0-9 _ -`; anything else is
/// ignored here and refused where it is a real parameter).
fn tab_of(req: &HttpRequest) -> Option<String> {
    req.query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("client="))
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .map(str::to_owned)
}

impl FromRequest for Peer {
    type Error = actix_web::Error;
    type Future = Ready<Result<Peer, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.app_data::<web::Data<AppState>>() {
            Some(state) => Ok(Peer::of(req, state)),
            None => Err(actix_web::error::ErrorInternalServerError(
                "the server's state is not registered",
            )),
        })
    }
}

/// Middleware: a request that changes something (`POST`, `PUT`, `PATCH`,
/// `DELETE`) from a page of another site is refused with
/// `403 forbidden_origin` before any handler runs — so that a form or a
/// script on another site cannot post as a signed-in student, whose cookie
/// the browser would attach. (The WebSocket upgrade, a `GET`, is checked
/// where it is accepted.) Requests without `Origin`, from curl or scripts,
/// pass; so does every reading request.
pub async fn refuse_cross_site_changes(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let changes = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if changes {
        let allowed = req
            .app_data::<web::Data<AppState>>()
            .map(|state| state.config.allowed_origins.clone())
            .unwrap_or_default();
        if let Err(err) = check_origin(req.request(), &allowed) {
            let response = err.error_response().map_into_right_body();
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}
