//! `GET /.well-known/jwks.json`: the public keys that verify identity's tokens.

use crate::signing::SigningKeys;
use actix_web::{HttpResponse, web};
use almoner_http::Jwks;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks));
}

/// The JSON Web Key Set. Verifiers may cache it for a few minutes and refetch on an unknown `kid`.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "Current and recently retired public keys", body = Jwks)))]
pub async fn jwks(keys: web::Data<SigningKeys>) -> HttpResponse {
    HttpResponse::Ok().insert_header(("cache-control", "public, max-age=300")).json(keys.jwks())
}
