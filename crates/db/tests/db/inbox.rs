use std::time::Duration;

use almoner_db::inbox::mark_processed;
use uuid::Uuid;

use crate::helpers::TestDb;

#[tokio::test]
async fn an_event_is_processed_once_per_consumer() {
    let db = TestDb::migrated().await;
    let event = Uuid::new_v4();

    let tx = db.pool.system_tx().await.unwrap();
    assert!(mark_processed(&tx, "rollup.totals", event).await.unwrap());
    assert!(!mark_processed(&tx, "rollup.totals", event).await.unwrap());
    assert!(mark_processed(&tx, "messaging.attachments", event).await.unwrap(), "consumers are independent");
    tx.commit().await.unwrap();

    let tx = db.pool.tenant_tx(Uuid::new_v4()).await.unwrap();
    assert!(!mark_processed(&tx, "rollup.totals", event).await.unwrap());
}

#[tokio::test]
async fn a_rolled_back_effect_leaves_the_event_unprocessed() {
    let db = TestDb::migrated().await;
    let event = Uuid::new_v4();
    let tx = db.pool.system_tx().await.unwrap();
    assert!(mark_processed(&tx, "c", event).await.unwrap());
    tx.rollback().await.unwrap();

    let tx = db.pool.system_tx().await.unwrap();
    assert!(mark_processed(&tx, "c", event).await.unwrap());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn old_processed_ids_are_purged() {
    let db = TestDb::migrated().await;
    let tx = db.pool.system_tx().await.unwrap();
    for _ in 0..3 {
        mark_processed(&tx, "c", Uuid::new_v4()).await.unwrap();
    }
    tx.commit().await.unwrap();
    let admin = db.database.admin_client().await;
    admin
        .execute(
            "UPDATE svc.processed_events SET processed_at = now() - interval '40 days'
             WHERE event_id IN (SELECT event_id FROM svc.processed_events LIMIT 2)",
            &[],
        )
        .await
        .unwrap();
    let counts = almoner_db::cleanup::purge(&db.pool, Duration::from_secs(3600), Some(Duration::from_secs(30 * 86400)))
        .await
        .unwrap();
    assert_eq!(counts.processed_events, 2);
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.processed_events").await, 1);
}
