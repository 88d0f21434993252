//! webhook-ingest's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails
//! when they differ (run with `UPDATE_OPENAPI=1` to refresh it).

use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner webhook-ingest",
        description = "The verified, durable entry point for provider webhooks, and the endpoints they arrive at."),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "webhooks", description = "Where providers deliver (no bearer token: the signature is the credential)"),
        (name = "endpoints", description = "A tenant's webhook endpoints and their secrets"),
        (name = "received", description = "Stored provider events, and replaying them"),
    )
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] with every operation the routes register.
pub fn document() -> utoipa::openapi::OpenApi {
    almoner_http::endpoints::openapi(<ApiDoc as utoipa::OpenApi>::openapi(), crate::routes::configure)
}
