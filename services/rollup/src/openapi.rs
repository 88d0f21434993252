//! rollup's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it).

use crate::routes::{donors, funds, households, summary};
use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner rollup", description = "Donors', households' and funds' giving totals, kept live from fundraising's events."),
    paths(
        donors::get_donor,
        donors::list_top_donors,
        households::get_household,
        funds::list_funds,
        funds::get_fund,
        summary::get_summary
    ),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "donors", description = "One donor's giving, and the top donors"),
        (name = "households", description = "A household's giving, each gift counted once"),
        (name = "funds", description = "Funds and the money allocated to them"),
        (name = "summary", description = "The tenant's totals by fiscal year and month"),
    )
)]
pub struct ApiDoc;
