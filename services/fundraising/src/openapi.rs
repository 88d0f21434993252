//! fundraising's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it).

use crate::routes::{claims, donors, gift_aid, gifts, imports};
use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner fundraising", description = "Donors, gifts and refunds, and Gift Aid."),
    paths(
        donors::create_donor,
        donors::list_donors,
        donors::get_donor,
        donors::update_donor,
        donors::delete_donor,
        gifts::create_gift,
        gifts::list_gifts,
        gifts::get_gift,
        gifts::update_gift,
        gifts::delete_gift,
        gifts::refund_gift,
        gift_aid::create_declaration,
        gift_aid::list_declarations,
        gift_aid::get_declaration,
        gift_aid::update_declaration,
        gift_aid::gift_eligibility,
        gift_aid::get_settings,
        gift_aid::put_settings,
        claims::create_claim,
        claims::list_claims,
        claims::get_claim,
        claims::discard_claim,
        claims::claim_gifts,
        claims::remove_gift,
        claims::claim_exclusions,
        claims::submit_claim,
        claims::record_outcome,
        claims::export_claim,
        claims::claim_files,
        claims::download_file,
        imports::create_import,
        imports::get_import,
        imports::import_outcomes,
        imports::commit_import,
    ),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "donors", description = "The people who give"),
        (name = "gifts", description = "Gifts and their refunds"),
        (name = "gift aid", description = "Gift Aid declarations, eligibility, claims and HMRC schedules"),
        (name = "imports", description = "Historical data from CSV files"),
    )
)]
pub struct ApiDoc;
