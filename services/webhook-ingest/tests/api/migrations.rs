use crate::helpers::spawn_app;

/// Every `migrations/*.sql` file must be in `db::MIGRATIONS`, with its file's number as its version: a file left
/// out would never run.
#[test]
fn every_migration_file_is_in_the_migration_list() {
    let listed: Vec<(u32, &str)> = webhook_ingest::db::MIGRATIONS.iter().map(|m| (m.version, m.name)).collect();
    almoner_testkit::migrations::assert_listed(env!("CARGO_MANIFEST_DIR"), "webhook_ingest::db::MIGRATIONS", &listed);
}

/// The service's role sees no tenant's rows without a tenant: row-level security is forced on every tenant table.
#[tokio::test]
async fn a_query_without_the_tenant_sees_nothing() {
    let app = spawn_app().await;
    let (endpoint, secret) = app.standard_endpoint().await;
    assert_eq!(app.deliver_now(endpoint, &secret, "rls", b"{}").await.status(), 200);
    let pool = almoner_db::Pool::new(&app.db.database_settings(), webhook_ingest::db::SCHEMA).unwrap();
    let tx = pool.system_tx().await.unwrap();
    for table in ["endpoints", "endpoint_secrets", "deliveries", "received_events"] {
        let count: i64 = tx.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        assert_eq!(count, 0, "{table} is visible without a tenant");
    }
    let directory: i64 = tx.query_one("SELECT count(*) FROM endpoint_directory", &[]).await.unwrap().get(0);
    assert_eq!(directory, 1, "the directory is what is read without a tenant");
    tx.commit().await.unwrap();
    app.clean_up().await;
}
