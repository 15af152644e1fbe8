//! Signing up, in and out over HTTP, the session cookie, and the teacher's
//! view of who is signed in. The accounts themselves (names, Argon2id,
//! sessions, the sign-in throttle) are [`crate::accounts`]; who a request
//! is, once it carries the cookie, is [`crate::identity`].
//!
//! | endpoint | what it does |
//! | --- | --- |
//! | `POST /api/accounts` | create an account and sign it in (`201`) |
//! | `POST /api/session` | sign in (`200`) |
//! | `GET /api/session` | who this browser is (`200`, or `401 not_signed_in`) |
//! | `DELETE /api/session` | sign out, on the server too (`204`) |
//! | `GET /api/accounts` | the teacher: who is signed in |
//! | `DELETE /api/accounts/{name}/sessions` | the teacher: end someone's sessions |
//!
//! Every sign-in gets a new session id, whatever cookie the browser brought
//! along — and the session that cookie named, if any, ends: a session id
//! planted in a student's browser beforehand (session fixation) never
//! becomes a signed-in one.

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::accounts::{SignedIn, SignedInUser};
use crate::error::ApiError;
use crate::http::{bearer_token, read_json, teacher_token_matches};
use crate::identity::{Peer, SESSION_COOKIE};
use crate::state::AppState;

/// `POST /api/accounts` and `POST /api/session` bodies.
#[derive(Deserialize)]
struct Credentials {
    name: String,
    /// Never logged, never in `Debug`.
    password: String,
}

/// `{"name":…,"role":…}`, with the session cookie.
fn signed_in_response(
    mut builder: actix_web::HttpResponseBuilder,
    req: &HttpRequest,
    state: &AppState,
    signed_in: &SignedIn,
) -> HttpResponse {
    let lifetime = state.accounts.session_lifetime();
    let cookie = Cookie::build(SESSION_COOKIE, signed_in.token.as_str().to_owned())
        // JavaScript never needs to read it: a script injected into a page
        // cannot steal it.
        .http_only(true)
        // Sent when the student follows a link here, not on requests other
        // sites' pages make (the Origin check covers WebSockets, which
        // SameSite does not).
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(time::Duration::seconds(lifetime.as_secs() as i64))
        .secure(is_https(req))
        .finish();
    builder
        .cookie(cookie)
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "name": &*signed_in.session.name,
            "role": signed_in.session.role.as_str(),
        }))
}

/// True when the page was served over HTTPS (directly, or by a proxy that
/// says so): then the cookie is `Secure` too.
fn is_https(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// Ends the session the browser's cookie names, if any: every sign-in
/// starts a new one.
async fn end_brought_session(req: &HttpRequest, state: &AppState) {
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        let _ = state.accounts.sign_out(cookie.value()).await;
    }
}

/// `POST /api/accounts {"name","password"}`: creates the account and signs
/// it in. The `--teacher` name needs the teacher token
/// (`Authorization: Bearer …`).
pub async fn create_account(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let credentials: Credentials = read_json(&req, payload, state.config.max_body_bytes).await?;
    // Each account costs a password hash and a place in memory: a script
    // creating accounts in a loop is slowed down, a class is not.
    state
        .signup_rate
        .check(crate::http::client_ip(&req))
        .map_err(ApiError::RateLimited)?;
    let teacher_token =
        bearer_token(&req).is_some() && teacher_token_matches(&req, &state.teacher_token);
    let signed_in = state
        .accounts
        .create(&credentials.name, &credentials.password, teacher_token)
        .await?;
    end_brought_session(&req, &state).await;
    tracing::info!(name = %signed_in.session.name, role = signed_in.session.role.as_str(), "account created");
    Ok(signed_in_response(
        HttpResponse::Created(),
        &req,
        &state,
        &signed_in,
    ))
}

/// `POST /api/session {"name","password"}`: signs in. A wrong password and
/// an unknown name get the same answer, after the same work.
pub async fn sign_in(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let credentials: Credentials = read_json(&req, payload, state.config.max_body_bytes).await?;
    let signed_in = state
        .accounts
        .sign_in(
            &credentials.name,
            &credentials.password,
            crate::http::client_ip(&req),
        )
        .await?;
    end_brought_session(&req, &state).await;
    Ok(signed_in_response(
        HttpResponse::Ok(),
        &req,
        &state,
        &signed_in,
    ))
}

/// `GET /api/session`: who this browser is.
pub async fn who_am_i(peer: Peer) -> Result<HttpResponse, ApiError> {
    let session = peer.session.ok_or(ApiError::NotSignedIn)?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"name": &*session.name, "role": session.role.as_str()})))
}

/// `DELETE /api/session`: signs out — the session ends on the server (its
/// WebSockets and event streams close), and the cookie is cleared.
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    end_brought_session(&req, &state).await;
    let mut gone = Cookie::build(SESSION_COOKIE, "")
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(is_https(&req))
        .finish();
    gone.make_removal();
    Ok(HttpResponse::NoContent().cookie(gone).finish())
}

/// `GET /api/accounts` (the teacher): who is signed in, with how many
/// sessions and when each was last seen.
pub async fn signed_in(
    req: HttpRequest,
    peer: Peer,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !peer.is_teacher(&req, &state) {
        return Err(ApiError::Unauthorized);
    }
    let users: Vec<SignedInUser> = state.accounts.signed_in();
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "signed_in": users })))
}

/// `DELETE /api/accounts/{name}/sessions` (the teacher): signs that person
/// out everywhere; their open WebSockets and event streams close.
pub async fn end_sessions(
    req: HttpRequest,
    peer: Peer,
    name: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !peer.is_teacher(&req, &state) {
        return Err(ApiError::Unauthorized);
    }
    let ended = state.accounts.end_sessions_of(&name).await?;
    tracing::info!(name = %name, ended, "sessions ended by the teacher");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ended": ended })))
}
