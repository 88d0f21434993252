//! identity's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it). The operations come from `routes::configure`, which
//! registers each handler with its operation, so a route cannot be served undocumented or documented unserved.

use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner identity", description = "Tenants, staff and their sign-in, API keys, the chat widget's member identity and the tokens other services verify."),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "OAuth2 client credentials and the JWKS"),
        (name = "api-keys", description = "Issue, list and revoke API keys"),
        (name = "staff", description = "The people who sign in to the console, and their roles"),
        (name = "sign-in", description = "Staff sign-in by magic link, and the console session"),
        (name = "tenants", description = "The caller's tenant"),
        (name = "widget", description = "The chat widget: its settings and secret (staff), and its own public \
            endpoints, which exchange a member's signed identifier for a member token"),
    )
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] (info, tags, the security scheme) with every operation the routes register.
pub fn document() -> utoipa::openapi::OpenApi {
    almoner_http::endpoints::openapi(<ApiDoc as utoipa::OpenApi>::openapi(), crate::routes::configure)
}
