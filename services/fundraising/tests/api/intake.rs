//! `POST /v1/gifts` under a burst: requests written together in one transaction must each get exactly the answer
//! they would have got alone (created, replayed, refused), and refusals must not leave anything behind.

use crate::helpers::{TestApp, problem, spawn_app};
use almoner_types::Currency;
use fundraising::domain::{GiftDetails, GiftStatus, SourceName};
use fundraising::intake::{GiftIntake, Recorded, Submission};
use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

fn gift(donor_id: &str, amount_minor: i64, reference: Option<&str>) -> Value {
    let mut body =
        json!({"donor_id": donor_id, "amount_minor": amount_minor, "currency": "GBP", "gift_date": "2025-05-01"});
    if let Some(reference) = reference {
        body["external_reference"] = json!(reference);
        body["source"] = json!("stripe");
    }
    body
}

async fn largest_batch(app: &TestApp) -> f64 {
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    // The largest bucket bound that saw fewer batches than all of them tells the biggest batch's size.
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter(|l| {
            l.starts_with("almoner_group_commit_batch_size_bucket{") && l.contains("queue=\"fundraising_intake\"")
        })
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let count = l.rsplit(' ').next()?.parse().ok()?;
            Some((le.parse().unwrap_or(f64::INFINITY), count))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets.iter().filter(|(_, count)| *count < total).map(|(le, _)| *le).fold(1.0, f64::max)
}

#[tokio::test]
async fn a_burst_of_gifts_gets_the_answers_one_by_one_would() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Burst"})).await;
    let donor_id = donor["id"].as_str().unwrap().to_owned();
    let ghost = Uuid::now_v7().to_string();

    // 40 good gifts, 6 for a donor that does not exist (each with a key), 5 racing for one external reference,
    // 8 retries of one keyed request, 3 reusing a key with another body.
    let mut requests: Vec<(Option<String>, Value)> = Vec::new();
    for n in 0..40 {
        requests.push((if n % 2 == 0 { Some(format!("good-{n}")) } else { None }, gift(&donor_id, 100 + n, None)));
    }
    for n in 0..6 {
        requests.push((Some(format!("ghost-{n}")), gift(&ghost, 500, None)));
    }
    for _ in 0..5 {
        requests.push((None, gift(&donor_id, 700, Some("ch_race"))));
    }
    for _ in 0..8 {
        requests.push((Some("retried".to_owned()), gift(&donor_id, 900, None)));
    }
    requests.push((Some("reused".to_owned()), gift(&donor_id, 1000, None)));
    for n in 0..2 {
        requests.push((Some("reused".to_owned()), gift(&donor_id, 1001 + n, None)));
    }
    let responses = join_all(requests.iter().map(|(key, body)| async {
        let response = match key {
            Some(key) => app.post_with_key("/v1/gifts", &token, key, body).await,
            None => app.post("/v1/gifts", &token, body).await,
        };
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        let body: Value = response.json().await.unwrap();
        (status, replayed, body)
    }))
    .await;

    for (status, _, body) in &responses[..40] {
        assert_eq!(*status, 201, "{body}");
    }
    for (status, _, body) in &responses[40..46] {
        assert_eq!((*status, body["code"].as_str()), (422, Some("validation_failed")), "{body}");
    }
    let race: Vec<u16> = responses[46..51].iter().map(|r| r.0).collect();
    assert_eq!(race.iter().filter(|s| **s == 201).count(), 1, "one gift wins the reference: {race:?}");
    assert_eq!(race.iter().filter(|s| **s == 409).count(), 4, "{race:?}");
    let retried = &responses[51..59];
    assert!(retried.iter().all(|(status, _, _)| *status == 201), "{retried:?}");
    assert_eq!(retried.iter().filter(|(_, replayed, _)| !replayed).count(), 1, "created once, replayed after");
    assert!(retried.iter().all(|(_, _, body)| body["id"] == retried[0].2["id"]), "every retry sees the same gift");
    let reused = &responses[59..62];
    assert_eq!(reused.iter().filter(|r| r.0 == 201).count(), 1, "{reused:?}");
    assert_eq!(reused.iter().filter(|r| r.1).count(), 0);
    assert_eq!(
        reused.iter().filter(|r| r.2["code"] == "idempotency_key_reused").count(),
        2,
        "the other bodies are refused: {reused:?}"
    );
    assert!(largest_batch(&app).await > 1.0, "the burst was written in batches");

    // Exactly the created gifts are stored, each with one event.
    let admin = app.db.admin_client().await;
    let count = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let created = 40 + 1 + 1 + 1;
    assert_eq!(count("SELECT count(*) FROM fundraising.gifts").await, created);
    // Every created gift is announced, in an upserted or a batch_upserted event, exactly once.
    assert_eq!(
        count(
            "SELECT count(DISTINCT gift->>'id') FROM fundraising.outbox, \
                 jsonb_array_elements(CASE WHEN event_type = 'fundraising.gift.upserted.v1' \
                     THEN jsonb_build_array(payload::jsonb->'payload'->'gift') ELSE payload::jsonb->'payload'->'gifts' END) AS gift \
             WHERE event_type IN ('fundraising.gift.upserted.v1', 'fundraising.gift.batch_upserted.v1')"
        )
        .await,
        created
    );
    assert_eq!(
        count(
            "SELECT coalesce(sum(CASE WHEN event_type = 'fundraising.gift.upserted.v1' THEN 1 \
                 ELSE jsonb_array_length(payload::jsonb->'payload'->'gifts') END), 0)::bigint FROM fundraising.outbox \
             WHERE event_type IN ('fundraising.gift.upserted.v1', 'fundraising.gift.batch_upserted.v1')"
        )
        .await,
        created,
        "no gift announced twice"
    );
    // Which gifts shared a transaction here depends on timing (two writers racing for the same reference and
    // key roll a batch back to one-by-one); `gifts_queued_together_are_written_and_announced_together` pins
    // down that a batch's gifts share one event.
    // The refused requests' keys were released: a corrected retry with the same key goes through.
    let response = app.post_with_key("/v1/gifts", &token, "ghost-0", &gift(&donor_id, 500, None)).await;
    assert_eq!(response.status(), 201);
    assert!(!response.headers().contains_key("idempotent-replayed"));
    problem(
        app.post_with_key("/v1/gifts", &token, "retried", &gift(&donor_id, 901, None)).await,
        409,
        "idempotency_key_reused",
    )
    .await;
}

#[tokio::test]
async fn gifts_queued_together_are_written_and_announced_together() {
    let app = spawn_app().await;
    let donor = app.create_donor(&json!({"last_name": "Together"})).await;
    let donor_id: Uuid = donor["id"].as_str().unwrap().parse().unwrap();
    // One writer: every submission below is queued before it first runs (this test's runtime has one thread and
    // `join_all` polls them all before yielding), so it takes them as one batch.
    let intake = GiftIntake::start(app.pool.clone(), 1, 64);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let submissions = (0..10).map(|n| Submission {
        tenant_id: app.tenant_id,
        details: GiftDetails {
            donor_id,
            amount_minor: 100 + n,
            currency: Currency::GBP,
            gift_date: "2025-05-01".parse().unwrap(),
            status: GiftStatus::Succeeded,
            payment_method: None,
            source: SourceName::parse("manual").unwrap(),
            fund: None,
            campaign: None,
            notes: None,
            external_reference: None,
            allocations: Vec::new(),
            soft_credits: Vec::new(),
            pledge_id: None,
            sponsored_event: false,
        },
        idempotency: (n % 2 == 0).then(|| (format!("together-{n}"), vec![n as u8])),
        traceparent: (n == 0).then(|| traceparent.to_owned()),
    });
    let results = join_all(submissions.map(|s| intake.submit(s))).await;
    let mut ids = Vec::new();
    for result in results {
        match result {
            Ok(Recorded::Created(view)) => ids.push(view.id.to_string()),
            other => panic!("every gift is created: {other:?}"),
        }
    }

    let admin = app.db.admin_client().await;
    let events = admin
        .query(
            "SELECT event_type, payload::jsonb FROM fundraising.outbox \
             WHERE event_type IN ('fundraising.gift.upserted.v1', 'fundraising.gift.batch_upserted.v1')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1, "one transaction, one event");
    assert_eq!(events[0].get::<_, String>(0), "fundraising.gift.batch_upserted.v1");
    let payload: Value = events[0].get(1);
    let announced: Vec<String> =
        payload["payload"]["gifts"].as_array().unwrap().iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(announced, ids, "every gift, in submission order");
    assert_eq!(payload["traceparent"], traceparent, "the batch carries its first request's trace: {payload}");
    // The keyed ones were stored with their responses in the same transaction.
    let keys: i64 = admin
        .query_one("SELECT count(*) FROM fundraising.idempotency_keys WHERE key LIKE 'together-%'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(keys, 5);
}

#[tokio::test]
async fn a_burst_of_split_gifts_paying_one_pledge_is_checked_one_by_one_and_settles_the_pledge_once() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Burst"})).await;
    let donor_id = donor["id"].as_str().unwrap().to_owned();
    let friend = app.create_donor(&json!({"last_name": "Friend"})).await;
    let fund = app.create_fund("GEN").await;
    let pledge: Value = app
        .post(
            "/v1/pledges",
            &token,
            &json!({"donor_id": donor_id, "amount_minor": 2000, "currency": "GBP", "frequency": "monthly",
                    "instalments": 20, "start_date": "2025-01-01"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let pledge_id = pledge["id"].as_str().unwrap().to_owned();
    let ghost_fund = Uuid::now_v7().to_string();
    // 20 good gifts of 100 paying the pledge, split and soft-credited; 5 naming a fund that does not exist.
    let mut bodies = Vec::new();
    for n in 0..25 {
        let fund_id = if n < 20 { fund.clone() } else { ghost_fund.clone() };
        bodies.push(json!({"donor_id": donor_id, "amount_minor": 100, "currency": "GBP", "gift_date": "2025-05-01",
            "allocations": [{"fund_id": fund_id, "amount_minor": 100}],
            "soft_credits": [{"donor_id": friend["id"], "amount_minor": 50, "kind": "solicitor"}],
            "pledge_id": pledge_id}));
    }
    let responses = join_all(bodies.iter().map(|b| app.post("/v1/gifts", &token, b))).await;
    let mut created = 0;
    for (n, response) in responses.into_iter().enumerate() {
        if n < 20 {
            assert_eq!(response.status(), 201);
            let gift: Value = response.json().await.unwrap();
            assert_eq!(gift["allocations"], json!([{"fund_id": fund, "amount_minor": 100}]));
            assert_eq!(gift["soft_credits"][0]["amount_minor"], 50);
            created += 1;
        } else {
            let body = problem(response, 422, "validation_failed").await;
            assert_eq!(body["errors"][0]["field"], "allocations[0].fund_id");
        }
    }
    assert_eq!(created, 20);
    let read: Value = app.get(&format!("/v1/pledges/{pledge_id}"), &token).await.json().await.unwrap();
    assert_eq!((read["status"].as_str(), read["paid_minor"].as_i64()), (Some("fulfilled"), Some(2000)));
    assert_eq!(read["revision"], 2, "fulfilled once");
    let page: Value = app.get("/v1/gifts?limit=500", &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 20);
}
