//! fundraising's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it).

use crate::routes::{donors, gifts};
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner fundraising", description = "Donors, gifts and refunds."),
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
    ),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "donors", description = "The people who give"),
        (name = "gifts", description = "Gifts and their refunds"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}
