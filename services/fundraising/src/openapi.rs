//! fundraising's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it). The operations come from `routes::configure`, which
//! registers each handler with its operation, so a route cannot be served undocumented or documented unserved.

use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner fundraising", description = "Donors and households, funds, gifts and refunds, gift batches, pledges, Gift Aid, recurring agreements, and provider payments to review (JustGiving's pulled)."),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "donors", description = "The people who give"),
        (name = "gifts", description = "Gifts and their refunds"),
        (name = "gift batches", description = "Gifts keyed in batches (a stack of cheques, a bank statement), recorded together once their count and total match"),
        (name = "households", description = "Donors giving together"),
        (name = "funds", description = "What gifts are given to"),
        (name = "pledges", description = "Promises to give, and what has been paid of them"),
        (name = "gift aid", description = "Gift Aid declarations, eligibility, claims and HMRC schedules"),
        (name = "imports", description = "Historical data from CSV files"),
        (name = "recurring", description = "Recurring agreements with payment providers"),
        (name = "staging", description = "Provider payments waiting for a person to choose their donor"),
        (name = "providers", description = "The tenant's access to payment providers' APIs"),
        (name = "justgiving", description = "JustGiving fundraising pages whose donations are pulled into staging"),
    )
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] (info, tags, the security scheme) with every operation the routes register.
pub fn document() -> utoipa::openapi::OpenApi {
    almoner_http::endpoints::openapi(<ApiDoc as utoipa::OpenApi>::openapi(), crate::routes::configure)
}
