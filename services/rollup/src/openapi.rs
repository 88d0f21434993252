//! rollup's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it). The operations come from `routes::configure`, which
//! registers each handler with its operation, so a route cannot be served undocumented or documented unserved.

use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner rollup", description = "Donors', households' and funds' giving totals, kept live from fundraising's events."),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "donors", description = "One donor's giving, and the top donors"),
        (name = "households", description = "A household's giving, each gift counted once"),
        (name = "funds", description = "Funds and the money allocated to them"),
        (name = "recurring", description = "Recurring agreements and the tenant's recurring income per month"),
        (name = "summary", description = "The tenant's totals by fiscal year and month"),
    )
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] (info, tags, the security scheme) with every operation the routes register.
pub fn document() -> utoipa::openapi::OpenApi {
    almoner_http::endpoints::openapi(<ApiDoc as utoipa::OpenApi>::openapi(), crate::routes::configure)
}
