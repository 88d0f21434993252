use crate::testkit::db::{APP_ROLE, TestDatabase};
use almoner_db::migrate::{PLATFORM_MIGRATIONS, Track};
use almoner_db::{Migration, migrate};

use crate::helpers::{SCHEMA, TestDb, init_logs, service_migrations};

#[tokio::test]
async fn migrations_apply_once_and_a_rerun_is_a_no_op() {
    init_logs();
    let database = TestDatabase::create().await;
    let settings = database.database_settings();
    let migrations = service_migrations();

    let first = migrate(&settings, SCHEMA, &migrations).await.unwrap();
    let applied: Vec<_> = first.applied.iter().map(|m| (m.track, m.version)).collect();
    assert_eq!(
        applied,
        vec![
            (Track::Platform, 1),
            (Track::Platform, 2),
            (Track::Platform, 3),
            (Track::Service, 1),
            (Track::Service, 2)
        ]
    );

    let second = migrate(&settings, SCHEMA, &migrations).await.unwrap();
    assert!(second.applied.is_empty(), "{:?}", second.applied);

    let admin = database.admin_client().await;
    let history: i64 = admin.query_one("SELECT count(*) FROM svc.almoner_migrations", &[]).await.unwrap().get(0);
    assert_eq!(history, 5);
    for table in ["svc.outbox", "svc.processed_events", "svc.idempotency_keys", "svc.notes"] {
        let row = admin
            .query_one("SELECT has_table_privilege($1, $2, 'SELECT, INSERT, UPDATE, DELETE')", &[&APP_ROLE, &table])
            .await
            .unwrap();
        assert!(row.get::<_, bool>(0), "{APP_ROLE} lacks DML on {table}");
    }
    let can_rewrite_history: bool = admin
        .query_one("SELECT has_table_privilege($1, 'svc.almoner_migrations', 'DELETE')", &[&APP_ROLE])
        .await
        .unwrap()
        .get(0);
    assert!(!can_rewrite_history, "the app role must not be able to rewrite the migration history");
}

#[tokio::test]
async fn tables_created_by_later_migrations_are_granted_too() {
    let db = TestDb::migrated().await;
    let mut migrations = service_migrations();
    migrations.push(Migration { version: 3, name: "0003_tags.sql", sql: "CREATE TABLE tags (name text PRIMARY KEY);" });
    migrate(&db.settings, SCHEMA, &migrations).await.unwrap();

    let tx = db.pool.system_tx().await.unwrap();
    tx.execute("INSERT INTO tags (name) VALUES ('x')", &[]).await.unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    let db = TestDb::migrated().await;
    let mut migrations = service_migrations();
    migrations[0].sql = "CREATE TABLE notes (id uuid PRIMARY KEY, tenant_id uuid NOT NULL);";

    let error = migrate(&db.settings, SCHEMA, &migrations).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("service migration 1 (0001_notes.sql) was changed"), "{message}");
}

#[tokio::test]
async fn a_failing_migration_rolls_back_and_stops() {
    let db = TestDb::migrated().await;
    let mut migrations = service_migrations();
    migrations.push(Migration {
        version: 3,
        name: "0003_broken.sql",
        sql: "CREATE TABLE half (id int); SELECT * FROM no_such_table;",
    });
    let error = migrate(&db.settings, SCHEMA, &migrations).await.unwrap_err();
    assert!(format!("{error:#}").contains("service migration 3 (0003_broken.sql) failed"), "{error:#}");
    assert_eq!(db.admin_count("SELECT count(*) FROM pg_tables WHERE tablename = 'half'").await, 0);
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.almoner_migrations WHERE track = 'service'").await, 2);
}

#[tokio::test]
async fn concurrent_migrations_apply_each_migration_once() {
    init_logs();
    let database = TestDatabase::create().await;
    let settings = database.database_settings();
    let migrations = service_migrations();

    let runs = futures::future::join_all((0..4).map(|_| migrate(&settings, SCHEMA, &migrations))).await;
    let mut applied = 0;
    for run in runs {
        applied += run.expect("every concurrent run succeeds").applied.len();
    }
    assert_eq!(applied, PLATFORM_MIGRATIONS.len() + migrations.len());
}

#[tokio::test]
async fn unsafe_names_are_refused_before_connecting() {
    let database = TestDatabase::create().await;
    let mut settings = database.database_settings();
    assert!(migrate(&settings, "svc; DROP", &[]).await.is_err());
    settings.app_role = Some("Robert\"); DROP".into());
    assert!(migrate(&settings, SCHEMA, &[]).await.is_err());
}

#[tokio::test]
async fn missing_names_the_migrations_a_newer_binary_waits_for_until_they_are_applied() {
    let db = TestDb::migrated().await;
    let mut migrations = service_migrations();
    assert!(almoner_db::migrate::missing(&db.pool, &migrations).await.unwrap().is_empty());

    migrations.push(Migration { version: 3, name: "0003_tags.sql", sql: "CREATE TABLE tags (name text PRIMARY KEY);" });
    // Read with the service's own role, as `/ready` does.
    assert_eq!(almoner_db::migrate::missing(&db.pool, &migrations).await.unwrap(), vec!["service 3 (0003_tags.sql)"]);

    migrate(&db.settings, SCHEMA, &migrations).await.unwrap();
    assert!(almoner_db::migrate::missing(&db.pool, &migrations).await.unwrap().is_empty());
    // An older binary after a rollback: the schema is ahead of it, which is fine.
    assert!(almoner_db::migrate::missing(&db.pool, &service_migrations()).await.unwrap().is_empty());
}
