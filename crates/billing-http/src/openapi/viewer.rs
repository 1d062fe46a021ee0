//! `GET /api-docs`: the OpenAPI document of [`super`] in a browsable viewer (Swagger UI),
//! every file of it served from the binary.
//!
//! The files come from `utoipa-swagger-ui` with its `vendored` feature: its build script
//! takes Swagger UI's distribution from the `utoipa-swagger-ui-vendored` crate (a registry
//! package) instead of downloading it, and `debug-embed` embeds the files in debug builds
//! too, so nothing is fetched at build time or at run time (no CDN). The viewer loads the
//! document from `/api-docs/openapi.json`, the JSON route of [`super::openapi`], which
//! stays as it is; these routes are the document's viewer, not operations of the API, so
//! they are not in the document nor in [`crate::paths::ALL`].
//!
//! Swagger UI's validator badge would call an outside service: it is turned off
//! (`validatorUrl: "none"`), like the top bar's "explore" box (the base layout).

use std::sync::{Arc, OnceLock};

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::Config;

use crate::error::ApiError;

/// The viewer's configuration: the one document, relative to the page (so that the viewer
/// also works behind a proxy that adds a path prefix), nothing fetched from outside.
fn config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                Config::new(["openapi.json"])
                    .use_base_layout()
                    .validator_url("none")
                    .deep_linking(true)
                    .display_operation_id(false),
            )
        })
        .clone()
}

/// `GET /api-docs`: to `/api-docs/`, where the viewer's relative asset paths resolve.
pub async fn redirect() -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, "api-docs/"))
        .finish()
}

/// `GET /api-docs/{file}`: the viewer's page (for an empty `file`) and its assets; a
/// problem+json 404 for a file it does not have.
pub async fn file(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = path.into_inner();
    match utoipa_swagger_ui::serve(&name, config()) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(file.bytes.into_owned())),
        Ok(None) => Err(ApiError::route_not_found()),
        Err(e) => Err(ApiError::internal(e.as_ref())),
    }
}
