//! The HTML pages (issue: the classroom pages). Until they land, `/` says
//! where the API is.

use actix_web::{HttpResponse, web};

/// Page routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index));
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body("Weebsockets is running. The API is under /api (see docs/protocol.md).\n")
}
