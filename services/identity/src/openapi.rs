//! identity's OpenAPI document. `openapi.json` at the service root is its committed snapshot; a test fails when
//! they differ (run with `UPDATE_OPENAPI=1` to refresh it).

use crate::routes::{api_keys, jwks, oauth, tenant};
use almoner_http::openapi::BearerAuth;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Almoner identity", description = "Tenants, API keys and the tokens other services verify."),
    paths(
        oauth::token,
        jwks::jwks,
        tenant::get_tenant,
        tenant::update_tenant,
        api_keys::create_api_key,
        api_keys::list_api_keys,
        api_keys::get_api_key,
        api_keys::revoke_api_key,
    ),
    components(schemas(almoner_http::Problem, almoner_http::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "OAuth2 client credentials and the JWKS"),
        (name = "api-keys", description = "Issue, list and revoke API keys"),
        (name = "tenants", description = "The caller's tenant"),
    )
)]
pub struct ApiDoc;
