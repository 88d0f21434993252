//! A service's endpoints, each registered once with its OpenAPI operation, so the served routes and the document
//! cannot diverge.
//!
//! A handler carries both its actix route macro (`#[get("/v1/funds/{id}")]`, the full path: one place to find an
//! endpoint by its URL) and `#[utoipa::path(...)]` without a `path`: the route macro's path is the document's.
//! The service's `routes::configure` is an [`Endpoints`] function calling `cfg.service(handler)` for each;
//! [`openapi`] builds the document from it and [`configure`] registers it on the actix app.
//!
//! The route macros make one actix resource per method, and a request whose path matches but whose method does
//! not would fall through to "no route" (404). [`configure`] therefore adds, after the endpoints, a resource per
//! documented path that answers every other method with `405 method_not_allowed` and an `Allow` header.

use crate::problem::{ApiError, ErrorCode};
use actix_web::{HttpResponse, web};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::PathItem;
use utoipa_actix_web::AppExt;

pub use utoipa_actix_web::service_config::ServiceConfig;

/// Registers a service's endpoints: `cfg.service(handler)` for each.
pub type Endpoints = fn(&mut ServiceConfig);

/// The service's OpenAPI document: `base` (info, tags, security schemes, shared components) with every operation
/// `endpoints` registers and the schemas those operations name, each operation with the responses the shared code
/// gives it ([`crate::openapi::complete_responses`]).
pub fn openapi(base: OpenApi, endpoints: Endpoints) -> OpenApi {
    let (_, document) = actix_web::App::new().into_utoipa_app().openapi(base).configure(endpoints).split_for_parts();
    crate::openapi::complete_responses(document)
}

/// Registers `endpoints` on the app and a `405` for the other methods of each path of `document` (theirs, as
/// [`openapi`] built it once at start, not again for every worker).
///
/// A path without parameters gets its `405` before the endpoints: otherwise another method on it would reach a
/// templated sibling (`GET /v1/received/replay` would be `GET /v1/received/{id}`, a 404). Templated paths get
/// theirs after, so that they never shadow a literal path's own endpoints.
pub fn configure(cfg: &mut web::ServiceConfig, endpoints: Endpoints, document: &OpenApi) {
    let (literal, templated): (Vec<_>, Vec<_>) = document.paths.paths.iter().partition(|(path, _)| !path.contains('{'));
    for (path, item) in literal {
        method_not_allowed(cfg, path, item);
    }
    endpoints(&mut ServiceConfig::new(cfg));
    for (path, item) in templated {
        method_not_allowed(cfg, path, item);
    }
}

/// `405 method_not_allowed` with `Allow` for the methods `item` does not document at `path`.
fn method_not_allowed(cfg: &mut web::ServiceConfig, path: &str, item: &PathItem) {
    let allowed = documented_methods(item);
    let allow = allowed.iter().map(actix_web::http::Method::as_str).collect::<Vec<_>>().join(", ");
    cfg.route(
        path,
        web::route().guard(actix_web::guard::fn_guard(move |ctx| !allowed.contains(&ctx.head().method))).to(
            move || {
                let allow = allow.clone();
                async move {
                    Err::<HttpResponse, _>(
                        ApiError::new(ErrorCode::MethodNotAllowed, format!("this resource allows {allow}"))
                            .with_header("allow", allow),
                    )
                }
            },
        ),
    );
}

/// The methods `item` documents, in a fixed order.
fn documented_methods(item: &PathItem) -> Vec<actix_web::http::Method> {
    use actix_web::http::Method;
    let operations = [
        (Method::GET, &item.get),
        (Method::POST, &item.post),
        (Method::PUT, &item.put),
        (Method::PATCH, &item.patch),
        (Method::DELETE, &item.delete),
        (Method::HEAD, &item.head),
        (Method::OPTIONS, &item.options),
        (Method::TRACE, &item.trace),
    ];
    operations.into_iter().filter(|(_, operation)| operation.is_some()).map(|(method, _)| method).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{TestRequest, call_service, init_service, read_body_json};
    use actix_web::{get, patch, post};
    use utoipa::ToSchema;

    #[derive(serde::Serialize, ToSchema)]
    struct Thing {
        id: i64,
    }

    /// Reads the thing.
    #[utoipa::path(tag = "things", responses((status = 200, body = Thing)))]
    #[get("/v1/things/{id}")]
    async fn get_thing(id: web::Path<i64>) -> HttpResponse {
        HttpResponse::Ok().json(Thing { id: id.into_inner() })
    }

    /// Changes the thing.
    #[utoipa::path(tag = "things", responses((status = 200, body = Thing)))]
    #[patch("/v1/things/{id}")]
    async fn update_thing(id: web::Path<i64>) -> HttpResponse {
        HttpResponse::Ok().json(Thing { id: id.into_inner() })
    }

    /// Counts the things: a literal path beside the templated one.
    #[utoipa::path(tag = "things", responses((status = 200, body = Thing)))]
    #[post("/v1/things/count")]
    async fn count_things() -> HttpResponse {
        HttpResponse::Ok().json(Thing { id: 2 })
    }

    fn endpoints(cfg: &mut ServiceConfig) {
        cfg.service(get_thing).service(update_thing).service(count_things);
    }

    #[test]
    fn the_document_holds_each_registered_operation_and_its_schemas() {
        #[derive(utoipa::OpenApi)]
        #[openapi(info(title = "things"))]
        struct Base;
        let document = openapi(<Base as utoipa::OpenApi>::openapi(), endpoints);
        assert_eq!(document.info.title, "things");
        let item = &document.paths.paths["/v1/things/{id}"];
        assert_eq!(documented_methods(item), [actix_web::http::Method::GET, actix_web::http::Method::PATCH]);
        assert_eq!(item.get.as_ref().and_then(|o| o.operation_id.as_deref()), Some("get_thing"));
        assert!(document.components.expect("components").schemas.contains_key("Thing"));
    }

    #[actix_web::test]
    async fn registered_methods_answer_and_other_methods_are_405() {
        let app = init_service(
            actix_web::App::new().configure(|cfg| configure(cfg, endpoints, &openapi(OpenApi::default(), endpoints))),
        )
        .await;
        let response = call_service(&app, TestRequest::get().uri("/v1/things/7").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(read_body_json::<serde_json::Value, _>(response).await, serde_json::json!({"id": 7}));
        let response = call_service(&app, TestRequest::patch().uri("/v1/things/7").to_request()).await;
        assert_eq!(response.status(), 200);
        let response = call_service(&app, TestRequest::delete().uri("/v1/things/7").to_request()).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers().get("allow").unwrap(), "GET, PATCH");
        let problem: serde_json::Value = read_body_json(response).await;
        assert_eq!(problem["code"], "method_not_allowed");
        let response = call_service(&app, TestRequest::get().uri("/v1/others").to_request()).await;
        assert_eq!(response.status(), 404);
        // A literal path registered after a templated sibling: its method answers, another is 405, not the
        // sibling's (which would read `count` as an id).
        let response = call_service(&app, TestRequest::post().uri("/v1/things/count").to_request()).await;
        assert_eq!(response.status(), 200);
        let response = call_service(&app, TestRequest::get().uri("/v1/things/count").to_request()).await;
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers().get("allow").unwrap(), "POST");
    }
}
