/// The committed `openapi.json` must match the code. `UPDATE_OPENAPI=1` rewrites it.
#[test]
fn committed_openapi_matches_the_code() {
    let doc = messaging::openapi::document();
    if let Err(message) = almoner_http::openapi::check_snapshot(&doc, env!("CARGO_MANIFEST_DIR"), "messaging") {
        panic!("{message}");
    }
}
