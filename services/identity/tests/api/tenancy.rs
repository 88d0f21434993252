use crate::helpers::{problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn another_tenants_token_sees_nothing_of_the_first() {
    let app = spawn_app().await;
    let token_a = app.admin_token().await;
    let created: Value = app
        .create_api_key(&token_a, &json!({"name": "A's key", "scopes": ["identity:read"]}))
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();

    let other = app.other_tenant().await;
    let token_b = app.token_for(&other.api_key).await;
    problem(app.get(&format!("/v1/api-keys/{id}"), Some(&token_b)).await, 404, "not_found").await;
    let response =
        app.client.delete(app.url(&format!("/v1/api-keys/{id}"))).bearer_auth(&token_b).send().await.unwrap();
    problem(response, 404, "not_found").await;
    let page: Value = app.get("/v1/api-keys", Some(&token_b)).await.json().await.unwrap();
    let names: Vec<&str> = page["data"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Bootstrap admin key"]);
    let tenant: Value = app.get("/v1/tenant", Some(&token_b)).await.json().await.unwrap();
    assert_eq!(tenant["name"], "Other Charity");
    // A's key is still A's and unrevoked.
    let key: Value = app.get(&format!("/v1/api-keys/{id}"), Some(&token_a)).await.json().await.unwrap();
    assert!(key["revoked_at"].is_null());
}

#[tokio::test]
async fn row_level_security_hides_rows_from_a_query_that_forgets_the_tenant() {
    let app = spawn_app().await;
    let other = app.other_tenant().await;

    let admin = app.db.admin_client().await;
    let all: i64 = admin.query_one("SELECT count(*) FROM identity.api_keys", &[]).await.unwrap().get(0);
    assert_eq!(all, 2, "the superuser sees both tenants' keys");

    // The service's own role, with no tenant set: nothing, not an error.
    let (client, connection) = tokio_postgres::connect(&app.db.app_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let is_super: bool =
        client.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).await.unwrap().get(0);
    assert!(!is_super, "tests must run as a non-superuser to prove RLS");
    for table in [
        "identity.api_keys",
        "identity.tenants",
        "identity.idempotency_keys",
        "identity.widget_settings",
        "identity.reply_mails",
    ] {
        let n: i64 = client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "{table} leaked rows without a tenant");
    }

    // With a tenant set, exactly that tenant's rows.
    let tx = app.pool.tenant_tx(other.tenant_id).await.unwrap();
    let rows = tx.query("SELECT tenant_id FROM api_keys", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, uuid::Uuid>(0), other.tenant_id);
    // And it cannot write into another tenant.
    let refused = tx
        .execute(
            "INSERT INTO api_keys (id, tenant_id, name, secret_hash, scopes, created_by) VALUES ($1, $2, 'x', '\\x00', '{}', 't')",
            &[&uuid::Uuid::new_v4(), &app.admin.tenant_id],
        )
        .await;
    assert!(refused.is_err(), "WITH CHECK must refuse a row for another tenant");
}

#[tokio::test]
async fn tenant_settings_change_with_validation() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let patch = |body: Value| app.client.patch(app.url("/v1/tenant")).bearer_auth(&token).json(&body).send();

    let body = problem(
        patch(json!({"name": " ", "fiscal_year_start_month": 13, "time_zone": "GMT+1"})).await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(crate::helpers::fields(&body), ["name", "fiscal_year_start_month", "time_zone"]);

    let response = patch(json!({"fiscal_year_start_month": 1})).await.unwrap();
    assert_eq!(response.status(), 200);
    let tenant: Value = response.json().await.unwrap();
    assert_eq!(tenant["fiscal_year_start_month"], 1);
    assert_eq!(tenant["name"], "Test Charity");
    assert_eq!(tenant["time_zone"], "Europe/London", "the default");
    assert_eq!(tenant["revision"], 2);
    let moved: Value = patch(json!({"time_zone": "australia/sydney"})).await.unwrap().json().await.unwrap();
    assert_eq!((moved["time_zone"].as_str(), moved["revision"].as_i64()), (Some("Australia/Sydney"), Some(3)));
    let tenant: Value = patch(json!({"time_zone": "Europe/London"})).await.unwrap().json().await.unwrap();
    assert_eq!(tenant["revision"], 4);
    // The accounting period ends the day before the fiscal year starts until the tenant sets its own.
    assert_eq!(tenant["accounting_period_end"], json!({"month": 12, "day": 31}));

    let bad = problem(
        patch(json!({"accounting_period_end": {"month": 2, "day": 30}})).await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(crate::helpers::fields(&bad), ["accounting_period_end.day"]);
    let bad =
        problem(patch(json!({"accounting_period_end": {"month": 13}})).await.unwrap(), 422, "validation_failed").await;
    assert_eq!(crate::helpers::fields(&bad), ["accounting_period_end.day", "accounting_period_end.month"]);
    let tenant: Value =
        patch(json!({"accounting_period_end": {"month": 6, "day": 30}})).await.unwrap().json().await.unwrap();
    assert_eq!(
        (tenant["accounting_period_end"].clone(), tenant["revision"].clone()),
        (json!({"month": 6, "day": 30}), json!(5))
    );
    // Another setting leaves it as it is; null goes back to the default.
    let tenant: Value = patch(json!({"fiscal_year_start_month": 4})).await.unwrap().json().await.unwrap();
    assert_eq!(tenant["accounting_period_end"], json!({"month": 6, "day": 30}));
    let tenant: Value = patch(json!({"accounting_period_end": null})).await.unwrap().json().await.unwrap();
    assert_eq!(tenant["accounting_period_end"], json!({"month": 3, "day": 31}));

    let reader: Value =
        app.create_api_key(&token, &json!({"name": "Reader", "scopes": ["identity:read"]})).await.json().await.unwrap();
    let reader = app.token_for(reader["key"].as_str().unwrap()).await;
    let response =
        app.client.patch(app.url("/v1/tenant")).bearer_auth(&reader).json(&json!({"name": "X"})).send().await;
    problem(response.unwrap(), 403, "forbidden").await;
}
