//! messaging's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it).

use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner messaging", description = "SMS contacts, their imports, the do-not-contact list and the tenant's SMS settings."),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "contacts", description = "The people a charity may text"),
        (name = "contact imports", description = "Contacts from a CSV file: a dry run first, then a commit"),
        (name = "do not contact", description = "Numbers that are never texted"),
        (name = "campaigns", description = "Messages to an audience: queued once into send jobs, after the gates"),
        (name = "segments", description = "Saved filters over contacts, counted live: a campaign's audience"),
        (name = "templates", description = "Message templates, and previews counted as Twilio counts"),
        (name = "links", description = "Short links in messages, and their clicks"),
        (name = "provider", description = "The tenant's Twilio account"),
        (name = "settings", description = "The tenant's SMS settings and kill switch"),
    )
)]
pub struct ApiDoc;

/// The whole document: [`ApiDoc`] with every operation the routes register.
pub fn document() -> utoipa::openapi::OpenApi {
    almoner_http::endpoints::openapi(<ApiDoc as utoipa::OpenApi>::openapi(), crate::routes::configure)
}
