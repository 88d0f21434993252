use crate::testkit::db::APP_ROLE;
use almoner_db::{DbError, Isolation, Scope};
use uuid::Uuid;

use crate::helpers::TestDb;

#[tokio::test]
async fn the_app_role_is_neither_superuser_nor_owner() {
    let db = TestDb::migrated().await;
    let admin = db.database.admin_client().await;
    let row = admin
        .query_one(
            "SELECT r.rolsuper, r.rolbypassrls, t.tableowner = r.rolname
             FROM pg_roles r, pg_tables t WHERE r.rolname = $1 AND t.schemaname = 'svc' AND t.tablename = 'notes'",
            &[&APP_ROLE],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0) && !row.get::<_, bool>(1) && !row.get::<_, bool>(2));
    let tx = db.pool.system_tx().await.unwrap();
    let user: String = tx.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(user, APP_ROLE);
}

#[tokio::test]
async fn a_tenant_transaction_sees_only_its_own_rows() {
    let db = TestDb::migrated().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    db.insert_note(a, "a1").await;
    db.insert_note(a, "a2").await;
    db.insert_note(b, "b1").await;

    // No WHERE clause: row-level security alone confines the query.
    let tx = db.pool.tenant_tx(a).await.unwrap();
    let bodies: Vec<String> =
        tx.query("SELECT body FROM notes ORDER BY body", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(bodies, ["a1", "a2"]);
    tx.commit().await.unwrap();

    let tx = db.pool.tenant_tx(b).await.unwrap();
    let count: i64 = tx.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn without_a_tenant_nothing_is_visible() {
    let db = TestDb::migrated().await;
    db.insert_note(Uuid::new_v4(), "hidden").await;
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.notes").await, 1);

    let tx = db.pool.system_tx().await.unwrap();
    let count: i64 = tx.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get(0);
    assert_eq!(count, 0, "a system transaction must not see tenant rows");
    let updated = tx.execute("UPDATE notes SET body = 'changed'", &[]).await.unwrap();
    assert_eq!(updated, 0);
    tx.commit().await.unwrap();

    // A bare pooled connection, outside any transaction the crate opened.
    let client = db.pool.get().await.unwrap();
    let count: i64 = client.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get(0);
    assert_eq!(count, 0);
}

#[tokio::test]
async fn the_tenant_does_not_outlive_its_transaction_on_a_reused_connection() {
    let db = TestDb::with_pool_size(1).await;
    let tenant = Uuid::new_v4();
    db.insert_note(tenant, "mine").await;

    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(tx.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get::<_, i64>(0), 1);
    tx.commit().await.unwrap();

    // The only connection, which just had the tenant set, shows nothing without it.
    let tx = db.pool.system_tx().await.unwrap();
    assert_eq!(tx.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get::<_, i64>(0), 0);
}

#[tokio::test]
async fn inserting_a_row_for_another_tenant_is_refused() {
    let db = TestDb::migrated().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let tx = db.pool.tenant_tx(a).await.unwrap();
    let error = tx.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, 'x')", &[&b]).await.unwrap_err();
    assert!(format!("{error:#}").contains("row-level security"), "{error:#}");
    drop(tx);

    // Without a tenant, even the column default cannot produce an acceptable row.
    let tx = db.pool.system_tx().await.unwrap();
    assert!(tx.execute("INSERT INTO notes (tenant_id, body) VALUES ($1, 'x')", &[&a]).await.is_err());
    drop(tx);

    // The default fills in the transaction's tenant.
    let tx = db.pool.tenant_tx(a).await.unwrap();
    let owner: Uuid =
        tx.query_one("INSERT INTO notes (body) VALUES ('y') RETURNING tenant_id", &[]).await.unwrap().get(0);
    assert_eq!(owner, a);
}

#[tokio::test]
async fn a_dropped_transaction_is_rolled_back_before_its_connection_is_reused() {
    let db = TestDb::with_pool_size(1).await;
    let tenant = Uuid::new_v4();
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    tx.execute("INSERT INTO notes (body) VALUES ('abandoned')", &[]).await.unwrap();
    drop(tx);

    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(tx.query_one("SELECT count(*) FROM notes", &[]).await.unwrap().get::<_, i64>(0), 0);
    tx.commit().await.unwrap();
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.notes").await, 0);
}

#[tokio::test]
async fn errors_are_classified() {
    let db = TestDb::migrated().await;
    let tenant = Uuid::new_v4();
    let id = Uuid::new_v4();
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    tx.execute("INSERT INTO notes (id, body) VALUES ($1, 'one')", &[&id]).await.unwrap();
    let error = tx.execute("INSERT INTO notes (id, body) VALUES ($1, 'two')", &[&id]).await.unwrap_err();
    assert!(matches!(&error, DbError::UniqueViolation { constraint: Some(c) } if c == "notes_pkey"), "{error:?}");
    assert!(!error.is_transient());
    drop(tx);

    // Two serializable transactions that each read what the other writes: one must fail to commit.
    let first = db.pool.begin(Scope::Tenant(tenant), Isolation::Serializable).await.unwrap();
    let second = db.pool.begin(Scope::Tenant(tenant), Isolation::Serializable).await.unwrap();
    first.query("SELECT count(*) FROM notes WHERE body = 'b'", &[]).await.unwrap();
    second.query("SELECT count(*) FROM notes WHERE body = 'a'", &[]).await.unwrap();
    first.execute("INSERT INTO notes (body) VALUES ('a')", &[]).await.unwrap();
    second.execute("INSERT INTO notes (body) VALUES ('b')", &[]).await.unwrap();
    first.commit().await.unwrap();
    let error = second.commit().await.unwrap_err();
    assert!(matches!(error, DbError::SerializationFailure), "{error:?}");
    assert!(error.is_transient());
}

#[tokio::test]
async fn an_exhausted_pool_times_out_distinctly_and_ping_still_reports() {
    let db = TestDb::with_pool_size(1).await;
    let mut settings = db.settings.clone();
    settings.max_connections = 1;
    settings.acquire_timeout_secs = 1;
    let pool = almoner_db::Pool::new(&settings, crate::helpers::SCHEMA).unwrap();
    pool.ping().await.unwrap();
    let held = pool.system_tx().await.unwrap();
    let error = pool.system_tx().await.unwrap_err();
    assert!(matches!(error, DbError::PoolTimeout), "{error:?}");
    drop(held);
}

#[tokio::test]
async fn ping_fails_when_postgres_is_unreachable() {
    let db = TestDb::migrated().await;
    let mut settings = db.settings.clone();
    settings.url = "postgres://nobody@127.0.0.1:1/none".to_owned().into();
    let pool = almoner_db::Pool::new(&settings, crate::helpers::SCHEMA).unwrap();
    let error = pool.ping().await.unwrap_err();
    assert!(matches!(error, DbError::Unavailable(_)), "{error:?}");
}

/// The planner's row estimate for `SELECT * FROM notes` in a tenant transaction of `tenant`.
async fn estimated_rows(db: &TestDb, tenant: Uuid) -> f64 {
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    let plan: serde_json::Value =
        tx.query_one("EXPLAIN (FORMAT JSON) SELECT body FROM notes", &[]).await.unwrap().get(0);
    tx.commit().await.unwrap();
    plan[0]["Plan"]["Plan Rows"].as_f64().unwrap()
}

#[tokio::test]
async fn a_tenant_the_statistics_have_not_seen_is_planned_as_an_average_tenant() {
    let db = TestDb::migrated().await;
    let admin = db.database.admin_client().await;
    // Four tenants of 5,000 rows each, analysed; then a fifth the statistics know nothing of.
    admin
        .batch_execute(
            "INSERT INTO svc.notes (tenant_id, body)
             SELECT md5(t::text)::uuid, 'n' FROM generate_series(1, 4) t, generate_series(1, 5000);
             ANALYZE svc.notes;",
        )
        .await
        .unwrap();
    let rows = estimated_rows(&db, Uuid::new_v4()).await;
    assert!(rows > 1000.0, "a new tenant estimated at {rows} rows: its queries would be planned as if it had none");

    // The old form, still found in tables declared before the convention, estimates one row; the platform's
    // rewrite brings it to the initplan form.
    admin
        .batch_execute(
            "ALTER POLICY tenant_isolation ON svc.notes
                 USING (tenant_id = svc.almoner_current_tenant())
                 WITH CHECK (tenant_id = svc.almoner_current_tenant());",
        )
        .await
        .unwrap();
    assert!(estimated_rows(&db, Uuid::new_v4()).await < 10.0, "the old form is what this test guards against");
    admin.batch_execute("SET search_path = svc").await.unwrap();
    let rewritten: i32 =
        admin.query_one("SELECT svc.almoner_tenant_policies_as_initplans()", &[]).await.unwrap().get(0);
    assert_eq!(rewritten, 1, "notes; the platform's idempotency_keys is in the new form already");
    assert!(estimated_rows(&db, Uuid::new_v4()).await > 1000.0);
    let qual: String = admin
        .query_one("SELECT qual FROM pg_policies WHERE schemaname = 'svc' AND tablename = 'notes'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(qual.contains("SELECT almoner_current_tenant()"), "{qual}");
}
