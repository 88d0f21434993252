//! `GET /.well-known/jwks.json`: the public keys that verify identity's tokens.

use crate::signing::SigningKeys;
use actix_web::{HttpResponse, get, web};
use almoner_http::Jwks;
use almoner_http::endpoints::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(jwks);
}

/// The JSON Web Key Set. Verifiers may cache it for a few minutes and refetch on an unknown `kid`.
#[utoipa::path(tag = "tokens",
    responses((status = 200, description = "Current and recently retired public keys", body = Jwks)))]
#[get("/.well-known/jwks.json")]
pub async fn jwks(keys: web::Data<SigningKeys>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("cache-control", "public, max-age=300")).json(keys.jwks())
}
