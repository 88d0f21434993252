//! The policy's defaults, and row-level security under the tables that hold each tenant's files.

use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_tenant_starts_with_the_services_defaults_and_sees_only_its_own_policy() {
    let app = spawn_app().await;
    let policy: Value = app.get("/v1/policy", &app.token()).await.json().await.unwrap();
    assert_eq!(policy["max_size_bytes"], 25 * 1024 * 1024);
    assert_eq!(policy["used_bytes"], 0);
    assert_eq!(
        policy["own"],
        json!({"allowed_content_types": null, "max_size_bytes": null, "quota_bytes": null,
            "member_content_types": null, "member_max_size_bytes": null})
    );
    assert!(policy["updated_at"].is_null());
    app.set_policy(&json!({"max_size_bytes": 10})).await;
    let other: Value = app.get("/v1/policy", &app.token_for(uuid::Uuid::new_v4())).await.json().await.unwrap();
    assert_eq!(other["max_size_bytes"], 25 * 1024 * 1024, "one tenant's policy is not another's");
}

/// Without a tenant set, the service's own role sees no object, policy or usage at all.
#[tokio::test]
async fn a_query_without_a_tenant_sees_nothing() {
    let app = spawn_app().await;
    app.store_file("a.csv", "text/csv", &csv(2)).await;
    app.set_policy(&json!({"quota_bytes": 1000})).await;
    let pool = almoner_db::Pool::new(&app.settings.database, storage::db::SCHEMA).unwrap();
    let client = pool.get().await.unwrap();
    for table in ["objects", "policies", "usage"] {
        let rows = client.query(&format!("SELECT 1 FROM storage.{table}"), &[]).await.unwrap();
        assert!(rows.is_empty(), "{table} leaked {} rows", rows.len());
    }
    let tx = pool.tenant_tx(app.tenant).await.unwrap();
    assert_eq!(tx.query("SELECT 1 FROM objects", &[]).await.unwrap().len(), 1);
}
