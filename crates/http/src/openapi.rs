//! What every service's OpenAPI document shares: the bearer security scheme and the committed-snapshot check.

use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// Adds the `bearer` (JWT) security scheme that endpoints name in `security(("bearer" = [...]))`.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Compares a service's generated document with its committed `openapi.json` in `service_dir`; with
/// `UPDATE_OPENAPI` set it rewrites the file instead. Returns a message naming the fix when they differ.
pub fn check_snapshot(doc: &utoipa::openapi::OpenApi, service_dir: &str, package: &str) -> Result<(), String> {
    let generated = doc.to_pretty_json().map_err(|e| e.to_string())? + "\n";
    let path = std::path::Path::new(service_dir).join("openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        return std::fs::write(&path, &generated).map_err(|e| e.to_string());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == generated {
        Ok(())
    } else {
        Err(format!(
            "{} is out of date: run `UPDATE_OPENAPI=1 cargo nextest run -p {package} openapi` and commit it",
            path.display()
        ))
    }
}
