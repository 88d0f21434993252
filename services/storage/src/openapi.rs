//! storage's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it). The operations come from `routes::configure`.

use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner storage", description = "Files in S3-compatible object storage: private, uploaded \
        straight from the browser with a presigned link, checked (size, type by content), and downloaded with \
        short-lived links."),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "uploads", description = "A browser's upload: a presigned PUT, then completion"),
        (name = "objects", description = "Stored files: metadata, download links, server-to-server upload and \
            read, deletion"),
        (name = "grants", description = "Stored files shared with chat widget members"),
        (name = "policy", description = "The tenant's allowed content types, largest file and quota, and the \
            limits on members' uploads"),
    )
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] with every operation the routes register.
pub fn document() -> utoipa::openapi::OpenApi {
    almoner_http::endpoints::openapi(<ApiDoc as utoipa::OpenApi>::openapi(), crate::routes::configure)
}
