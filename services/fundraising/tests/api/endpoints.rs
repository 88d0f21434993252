//! Every operation in the OpenAPI document is served at its path and method, and a documented path asked with
//! a method it does not have is 405 naming the ones it has (not "no route"). Paths nested under another
//! resource's (`/v1/donors/{id}/gift-aid-declarations`) are included: nothing may swallow them.

use crate::helpers::{problem, spawn_app};
use uuid::Uuid;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

#[tokio::test]
async fn every_documented_operation_is_served_and_other_methods_are_405() {
    let app = spawn_app().await;
    let document = fundraising::openapi::document();
    assert!(document.paths.paths.contains_key("/v1/donors/{id}/gift-aid-declarations"), "the routes are documented");
    for (path, item) in &document.paths.paths {
        let operations = [
            ("GET", item.get.is_some()),
            ("POST", item.post.is_some()),
            ("PUT", item.put.is_some()),
            ("PATCH", item.patch.is_some()),
            ("DELETE", item.delete.is_some()),
        ];
        let documented: Vec<&str> = operations.iter().filter(|(_, has)| *has).map(|(method, _)| *method).collect();
        // Each path parameter gets an id nobody has: the route must still be found.
        let url = app.url(&with_ids(path));
        for method in &documented {
            let response = app.client.request(method.parse().unwrap(), &url).send().await.unwrap();
            assert_eq!(response.status(), 401, "{method} {path} is served (and needs a token)");
            problem(response, 401, "unauthorized").await;
        }
        let other = METHODS.iter().find(|m| !documented.contains(m)).expect("some method is not documented");
        let response = app.client.request(other.parse().unwrap(), &url).send().await.unwrap();
        assert_eq!(response.status(), 405, "{other} {path}");
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(allow.as_deref(), Some(documented.join(", ").as_str()), "{other} {path}");
        problem(response, 405, "method_not_allowed").await;
    }
}

/// `path` with each `{parameter}` replaced by a fresh UUID.
fn with_ids(path: &str) -> String {
    path.split('/')
        .map(|segment| if segment.starts_with('{') { Uuid::new_v4().to_string() } else { segment.to_owned() })
        .collect::<Vec<_>>()
        .join("/")
}
