//! The plain HTTP endpoints that are not a transport or a log's own: the
//! teacher's lab, the stats, the health check, and the JSON answers for
//! unknown paths and methods.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;

use crate::error::ApiError;
use crate::http::{json_response, read_json};
use crate::identity::Peer;
use crate::lab::LabChange;
use crate::state::AppState;

/// `GET /api/stats`.
pub async fn stats(state: web::Data<AppState>) -> HttpResponse {
    let mut snapshot =
        serde_json::to_value(state.stats.snapshot(state.room.last_id(), state.doc.rev()))
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

/// `PUT /api/lab`: only the teacher may change it (a teacher's session, or
/// the teacher token).
pub async fn put_lab(
    req: HttpRequest,
    peer: Peer,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !peer.is_teacher(&req, &state) {
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

/// Answers unknown `/api/*` paths with JSON, not actix's empty 404.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(req.path().to_owned()))
}

/// Answers a known path asked with the wrong method.
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}
