//! rollup's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it).

use crate::routes::{donors, summary};
use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner rollup", description = "Donors' giving totals, kept live from fundraising's events."),
    paths(donors::get_donor, donors::list_top_donors, summary::get_summary),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "donors", description = "One donor's giving, and the top donors"),
        (name = "summary", description = "The tenant's totals by fiscal year and month"),
    )
)]
pub struct ApiDoc;
