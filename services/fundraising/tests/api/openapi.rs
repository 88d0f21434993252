use utoipa::OpenApi;

/// The committed `openapi.json` must match the code. `UPDATE_OPENAPI=1` rewrites it.
#[test]
fn committed_openapi_matches_the_code() {
    let generated = fundraising::openapi::ApiDoc::openapi().to_pretty_json().unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "services/fundraising/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo nextest run -p fundraising openapi` and commit it"
    );
}
