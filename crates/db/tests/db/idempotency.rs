use std::time::Duration;

use almoner_db::IdempotencyOutcome;
use almoner_db::idempotency::{begin, complete, request_hash};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::TestDb;

#[tokio::test]
async fn a_key_is_new_then_replayed_and_refused_for_another_request() {
    let db = TestDb::migrated().await;
    let tenant = Uuid::new_v4();
    let hash = request_hash("POST", "/v1/notes", br#"{"body":"x"}"#);

    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(begin(&tx, "key-1", &hash).await.unwrap(), IdempotencyOutcome::New);
    complete(&tx, "key-1", 201, &json!({"id": 1})).await.unwrap();
    tx.commit().await.unwrap();

    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(
        begin(&tx, "key-1", &hash).await.unwrap(),
        IdempotencyOutcome::Replay { status: 201, body: json!({"id": 1}) }
    );
    let other = request_hash("POST", "/v1/notes", br#"{"body":"y"}"#);
    assert_eq!(begin(&tx, "key-1", &other).await.unwrap(), IdempotencyOutcome::Mismatch);
    drop(tx);

    // Keys are per tenant.
    let tx = db.pool.tenant_tx(Uuid::new_v4()).await.unwrap();
    assert_eq!(begin(&tx, "key-1", &other).await.unwrap(), IdempotencyOutcome::New);
}

#[tokio::test]
async fn a_rolled_back_attempt_releases_the_key() {
    let db = TestDb::migrated().await;
    let tenant = Uuid::new_v4();
    let hash = request_hash("POST", "/v1/notes", b"{}");
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(begin(&tx, "k", &hash).await.unwrap(), IdempotencyOutcome::New);
    tx.rollback().await.unwrap();

    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(begin(&tx, "k", &hash).await.unwrap(), IdempotencyOutcome::New);
}

#[tokio::test]
async fn a_concurrent_retry_waits_for_the_first_and_replays_its_response() {
    let db = TestDb::migrated().await;
    let tenant = Uuid::new_v4();
    let hash = request_hash("POST", "/v1/notes", b"{}");

    let first = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(begin(&first, "k", &hash).await.unwrap(), IdempotencyOutcome::New);

    let pool = db.pool.clone();
    let retry_hash = hash.clone();
    let retry = tokio::spawn(async move {
        let tx = pool.tenant_tx(tenant).await.unwrap();
        begin(&tx, "k", &retry_hash).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!retry.is_finished(), "the retry must wait while the first request is in flight");

    complete(&first, "k", 201, &json!({"done": true})).await.unwrap();
    first.commit().await.unwrap();
    assert_eq!(retry.await.unwrap(), IdempotencyOutcome::Replay { status: 201, body: json!({"done": true}) });
}

#[tokio::test]
async fn expired_keys_are_absent_and_purged() {
    let db = TestDb::migrated().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let hash = request_hash("POST", "/v1/notes", b"{}");
    for (tenant, key) in [(a, "old"), (b, "old"), (a, "fresh")] {
        let tx = db.pool.tenant_tx(tenant).await.unwrap();
        assert_eq!(begin(&tx, key, &hash).await.unwrap(), IdempotencyOutcome::New);
        complete(&tx, key, 200, &json!({})).await.unwrap();
        tx.commit().await.unwrap();
    }
    let admin = db.database.admin_client().await;
    admin
        .execute("UPDATE svc.idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'", &[])
        .await
        .unwrap();

    // Expired: claimed afresh, even with another body.
    let tx = db.pool.tenant_tx(a).await.unwrap();
    let other = request_hash("POST", "/v1/notes", b"{\"x\":1}");
    assert_eq!(begin(&tx, "old", &other).await.unwrap(), IdempotencyOutcome::New);
    drop(tx);

    // The purge runs without a tenant, removes every tenant's expired keys and keeps the rest.
    let counts = almoner_db::cleanup::purge(&db.pool, Duration::from_secs(3600), None).await.unwrap();
    assert_eq!(counts.idempotency_keys, 2);
    assert_eq!(db.admin_count("SELECT count(*) FROM svc.idempotency_keys").await, 1);

    // Inside a tenant transaction the purge function refuses, rather than deleting that tenant's live keys.
    let tx = db.pool.tenant_tx(a).await.unwrap();
    assert!(tx.query_one("SELECT almoner_purge_expired_idempotency_keys()", &[]).await.is_err());
}

#[tokio::test]
async fn a_system_transaction_cannot_use_keys_and_bad_keys_are_refused() {
    let db = TestDb::migrated().await;
    let tx = db.pool.system_tx().await.unwrap();
    assert!(begin(&tx, "k", b"h").await.is_err());
    drop(tx);
    let tx = db.pool.tenant_tx(Uuid::new_v4()).await.unwrap();
    let error = begin(&tx, &"k".repeat(256), b"h").await.unwrap_err();
    assert!(matches!(error, almoner_db::DbError::CheckViolation { .. }), "{error:?}");
}

#[tokio::test]
async fn keys_stored_with_their_answers_replay_and_a_key_taken_meanwhile_is_reported() {
    use almoner_db::idempotency::{insert_answered_many, present_many};
    let db = TestDb::migrated().await;
    let tenant = Uuid::new_v4();
    let (hash_a, hash_b) = (request_hash("POST", "/v1/notes", b"a"), request_hash("POST", "/v1/notes", b"b"));

    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert!(present_many(&tx, &["a", "b"]).await.unwrap().is_empty());
    let answered =
        [("a", hash_a.as_slice(), 201, json!({"id": "a"})), ("b", hash_b.as_slice(), 201, json!({"id": "b"}))];
    assert!(insert_answered_many(&tx, &answered).await.unwrap());
    tx.commit().await.unwrap();

    // Stored once, as answered: a retry replays it, another body is refused, another tenant does not see it.
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    let mut present = present_many(&tx, &["a", "b", "c"]).await.unwrap();
    present.sort();
    assert_eq!(present, ["a", "b"]);
    assert_eq!(
        begin(&tx, "a", &hash_a).await.unwrap(),
        IdempotencyOutcome::Replay { status: 201, body: json!({"id": "a"}) }
    );
    assert_eq!(begin(&tx, "b", &hash_a).await.unwrap(), IdempotencyOutcome::Mismatch);
    drop(tx);
    let other = db.pool.tenant_tx(Uuid::new_v4()).await.unwrap();
    assert!(present_many(&other, &["a"]).await.unwrap().is_empty());
    drop(other);

    // A key another transaction claims after this one looked: the insert waits for it to commit, then says so.
    let hash_c = request_hash("POST", "/v1/notes", b"c");
    let batch = db.pool.tenant_tx(tenant).await.unwrap();
    assert!(present_many(&batch, &["c", "d"]).await.unwrap().is_empty());
    let single = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(begin(&single, "c", &hash_c).await.unwrap(), IdempotencyOutcome::New);
    let answered = [("c", hash_c.as_slice(), 201, json!({"id": "batch"})), ("d", hash_c.as_slice(), 201, json!({}))];
    let insert = insert_answered_many(&batch, &answered);
    let commit_single = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        complete(&single, "c", 201, &json!({"id": "single"})).await.unwrap();
        single.commit().await.unwrap();
    };
    let (all_stored, ()) = tokio::join!(insert, commit_single);
    assert!(!all_stored.unwrap(), "the key the other transaction took must be reported");
    drop(batch);
    let tx = db.pool.tenant_tx(tenant).await.unwrap();
    assert_eq!(
        begin(&tx, "c", &hash_c).await.unwrap(),
        IdempotencyOutcome::Replay { status: 201, body: json!({"id": "single"}) }
    );
    assert!(present_many(&tx, &["d"]).await.unwrap().is_empty(), "the batch rolled back");
}
