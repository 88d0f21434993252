use almoner_db::outbox::{enqueue, enqueue_many};
use almoner_events::Envelope;
use opentelemetry::trace::TracerProvider as _;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use uuid::Uuid;

use crate::helpers::{TestDb, event};

#[tokio::test]
async fn an_event_is_stored_only_when_its_transaction_commits() {
    let db = TestDb::migrated().await;
    let tenant = Uuid::new_v4();

    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    enqueue(&tx, &event(tenant, 1)).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.outbox").await, 0);

    let envelope = event(tenant, 2);
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    enqueue(&tx, &envelope).await.unwrap();
    tx.commit().await.unwrap();

    let admin = db.database.admin_client().await;
    let row = admin
        .query_one("SELECT id, tenant_id, event_type, payload, published_at IS NULL FROM svc.outbox", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Uuid>(0), envelope.id);
    assert_eq!(row.get::<_, Uuid>(1), tenant);
    assert_eq!(row.get::<_, String>(2), "test.note.written.v1");
    let stored: Envelope = serde_json::from_value(row.get(3)).unwrap();
    assert_eq!(stored, serde_json::from_value(serde_json::to_value(&envelope).unwrap()).unwrap());
    assert!(row.get::<_, bool>(4));
}

#[tokio::test]
async fn an_event_of_another_tenant_is_refused() {
    let db = TestDb::migrated().await;
    let tx = db.pool.tenant_tx(Uuid::new_v4()).await.unwrap();
    assert!(enqueue(&tx, &event(Uuid::new_v4(), 1)).await.is_err());
}

#[tokio::test]
async fn many_events_are_stored_in_one_statement() {
    let db = TestDb::migrated().await;
    let tenant = Uuid::new_v4();
    let events: Vec<_> = (0..50).map(|n| event(tenant, n)).collect();
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    enqueue_many(&tx, &events).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.outbox").await, 50);
}

#[tokio::test]
async fn the_current_trace_is_recorded_with_the_event() {
    let db = TestDb::migrated().await;
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let tenant = Uuid::new_v4();
    let span = tracing::info_span!("handle request");
    async {
        let tx = db.pool.tenant_tx(tenant).await.unwrap();
        enqueue(&tx, &event(tenant, 1)).await.unwrap();
        tx.commit().await.unwrap();
    }
    .instrument(span)
    .await;

    let admin = db.database.admin_client().await;
    let row = admin.query_one("SELECT traceparent, payload->>'traceparent' FROM svc.outbox", &[]).await.unwrap();
    let traceparent: String = row.get(0);
    assert!(traceparent.starts_with("00-") && traceparent.len() == 55, "{traceparent}");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some(traceparent.as_str()));

    // An explicit traceparent wins over the current span's.
    let explicit = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned();
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    enqueue(&tx, &event(tenant, 2).with_traceparent(Some(explicit.clone()))).await.unwrap();
    tx.commit().await.unwrap();
    let row = admin
        .query_one("SELECT traceparent FROM svc.outbox WHERE payload->'payload'->>'note' = '2'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), explicit);
}
