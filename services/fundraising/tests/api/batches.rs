use crate::events::{clean_up, observe};
use crate::helpers::{TestApp, fields, problem, spawn_app};
use almoner_bus::Received;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

async fn create_batch(app: &TestApp, body: &Value) -> Value {
    let response = app.post("/v1/gift-batches", &app.token(), body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn add_entry(app: &TestApp, batch_id: &str, body: &Value) -> Value {
    let response = app.post(&format!("/v1/gift-batches/{batch_id}/entries"), &app.token(), body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn read(app: &TestApp, path: &str) -> Value {
    let response = app.get(path, &app.token()).await;
    assert_eq!(response.status(), 200, "{path}: {}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// The ids of the gift upserts among the next events, until `n` have come (other events are skipped).
async fn gift_upserts(rx: &mut mpsc::UnboundedReceiver<Received>, n: usize) -> Vec<Value> {
    let mut gifts = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while gifts.len() < n {
            let message = rx.recv().await.expect("observer running");
            if message.event_type() == "fundraising.gift.upserted.v1" {
                gifts.push(message.envelope.payload["gift"].clone());
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} gift events arrived", gifts.len()));
    gifts
}

#[tokio::test]
async fn a_batch_takes_entries_with_its_defaults_and_processing_records_and_publishes_their_gifts() {
    let app = spawn_app().await;
    let token = app.token();
    let fund_id = app.create_fund("GEN").await;
    let other_fund = app.create_fund("ROOF").await;
    let ann = app.create_donor(&json!({"last_name": "Smith"})).await;
    let bob = app.create_donor(&json!({"last_name": "Jones"})).await;
    let shutdown = CancellationToken::new();
    let mut events = observe(&app, &shutdown).await;

    let batch = create_batch(
        &app,
        &json!({"name": " Cheques 2 June ", "currency": "gbp", "expected_count": 3, "expected_total_minor": 6000,
                "default_fund_id": fund_id, "default_payment_method": "cheque", "default_gift_date": "2025-06-02"}),
    )
    .await;
    assert_eq!(batch["name"], "Cheques 2 June");
    assert_eq!(batch["currency"], "GBP");
    assert_eq!(batch["status"], "open");
    assert_eq!(batch["revision"], 1);
    assert_eq!((batch["entered_count"].as_i64(), batch["entered_total_minor"].as_i64()), (Some(0), Some(0)));
    assert_eq!((batch["count_matches"].as_bool(), batch["total_matches"].as_bool()), (Some(false), Some(false)));
    let batch_id = batch["id"].as_str().unwrap();

    // Defaults fill what an entry leaves out: currency, gift date, payment method, and the whole amount to the fund.
    let first = add_entry(&app, batch_id, &json!({"donor_id": ann["id"], "amount_minor": 1000})).await;
    assert_eq!(first["position"], 1);
    assert_eq!(first["currency"], "GBP");
    assert_eq!(first["gift_date"], "2025-06-02");
    assert_eq!(first["payment_method"], "cheque");
    assert_eq!(first["allocations"], json!([{"fund_id": fund_id, "amount_minor": 1000}]));
    assert!(first["gift_id"].is_null());
    // What an entry gives is kept; `[]` is unallocated.
    let second = add_entry(
        &app,
        batch_id,
        &json!({"donor_id": bob["id"], "amount_minor": 2000, "gift_date": "2025-06-01", "payment_method": "cash",
                "allocations": [{"fund_id": other_fund, "amount_minor": 2000}], "external_reference": "chq-2"}),
    )
    .await;
    assert_eq!((second["gift_date"].as_str(), second["payment_method"].as_str()), (Some("2025-06-01"), Some("cash")));
    assert_eq!(second["allocations"][0]["fund_id"], other_fund.as_str());
    let third =
        add_entry(&app, batch_id, &json!({"donor_id": ann["id"], "amount_minor": 3000, "allocations": []})).await;
    assert_eq!(third["allocations"], json!([]));
    assert_eq!(third["position"], 3);

    let batch = read(&app, &format!("/v1/gift-batches/{batch_id}")).await;
    assert_eq!((batch["entered_count"].as_i64(), batch["entered_total_minor"].as_i64()), (Some(3), Some(6000)));
    assert_eq!((batch["count_matches"].as_bool(), batch["total_matches"].as_bool()), (Some(true), Some(true)));
    let entries = read(&app, &format!("/v1/gift-batches/{batch_id}/entries")).await;
    let ids: Vec<&str> = entries["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first["id"].as_str().unwrap(), second["id"].as_str().unwrap(), third["id"].as_str().unwrap()]);
    // Entries are not gifts.
    assert_eq!(read(&app, "/v1/gifts").await["data"], json!([]));

    let response = app.post(&format!("/v1/gift-batches/{batch_id}/process"), &token, &json!({})).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let processed: Value = response.json().await.unwrap();
    assert_eq!(processed["status"], "processed");
    assert_eq!(processed["revision"], 2);
    assert!(processed["processed_at"].is_string());
    assert!(processed["processed_by"].is_string());

    let entries = read(&app, &format!("/v1/gift-batches/{batch_id}/entries")).await;
    let gift_ids: BTreeSet<String> = entries["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["gift_id"].as_str().expect("each entry names its gift").to_owned())
        .collect();
    assert_eq!(gift_ids.len(), 3);
    let listed = read(&app, &format!("/v1/gifts?batch_id={batch_id}")).await;
    let gifts = listed["data"].as_array().unwrap();
    assert_eq!(gifts.len(), 3);
    assert!(gifts.iter().all(|g| g["batch_id"] == batch_id && g["revision"] == 1 && g["currency"] == "GBP"));
    assert_eq!(gifts.iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>(), gift_ids);
    let first_gift = &entries["data"][0]["gift_id"];
    let gift = read(&app, &format!("/v1/gifts/{}", first_gift.as_str().unwrap())).await;
    assert_eq!(gift["payment_method"], "cheque");
    assert_eq!(gift["allocations"], json!([{"fund_id": fund_id, "amount_minor": 1000}]));
    assert_eq!(gift["batch_id"], batch_id);
    assert_eq!(read(&app, &format!("/v1/gifts?batch_id={}", uuid::Uuid::new_v4())).await["data"], json!([]));
    problem(app.get("/v1/gifts?batch_id=nope", &token).await, 422, "validation_failed").await;

    // Each gift is published once, as a gift recorded on its own is.
    let published = gift_upserts(&mut events, 3).await;
    let published_ids: BTreeSet<String> = published.iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(published_ids, gift_ids);
    assert!(published.iter().all(|g| g["revision"] == 1));
    clean_up(&app, shutdown).await;
}

#[tokio::test]
async fn a_batch_whose_entries_do_not_match_is_refused_saying_expected_and_entered() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let batch = create_batch(
        &app,
        &json!({"name": "Statement", "currency": "GBP", "expected_count": 2, "expected_total_minor": 3000,
                "default_gift_date": "2025-06-02"}),
    )
    .await;
    let batch_id = batch["id"].as_str().unwrap();
    add_entry(&app, batch_id, &json!({"donor_id": donor["id"], "amount_minor": 1000})).await;
    let process = format!("/v1/gift-batches/{batch_id}/process");
    let body = problem(app.post(&process, &token, &json!({})).await, 409, "batch_totals_mismatch").await;
    assert_eq!(
        body["detail"],
        "the batch expects 2 gifts totalling 3000 (minor units of GBP) but has 1 entries totalling 1000"
    );
    // The count matches but not the total.
    add_entry(&app, batch_id, &json!({"donor_id": donor["id"], "amount_minor": 1500})).await;
    let body = problem(app.post(&process, &token, &json!({})).await, 409, "batch_totals_mismatch").await;
    assert!(body["detail"].as_str().unwrap().ends_with("has 2 entries totalling 2500"), "{body}");
    let batch = read(&app, &format!("/v1/gift-batches/{batch_id}")).await;
    assert_eq!((batch["count_matches"].as_bool(), batch["total_matches"].as_bool()), (Some(true), Some(false)));
    assert_eq!(batch["status"], "open");
    assert_eq!(read(&app, "/v1/gifts").await["data"], json!([]));

    // Fixing the expected total (or an entry) makes it processable.
    let response =
        app.patch(&format!("/v1/gift-batches/{batch_id}"), &token, &json!({"expected_total_minor": 2500})).await;
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!((patched["revision"].as_i64(), patched["total_matches"].as_bool()), (Some(2), Some(true)));
    assert_eq!(app.post(&process, &token, &json!({})).await.status(), 200);
}

#[tokio::test]
async fn processing_twice_is_a_conflict_unless_the_key_repeats_and_a_processed_batch_changes_no_more() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let batch = create_batch(
        &app,
        &json!({"name": "Cheques", "currency": "GBP", "expected_count": 1, "expected_total_minor": 500}),
    )
    .await;
    let batch_id = batch["id"].as_str().unwrap();
    let entry =
        add_entry(&app, batch_id, &json!({"donor_id": donor["id"], "amount_minor": 500, "gift_date": "2025-06-02"}))
            .await;
    let entry_id = entry["id"].as_str().unwrap();
    let process = format!("/v1/gift-batches/{batch_id}/process");
    let first = app.post_with_key(&process, &token, "process-1", &json!({})).await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let again = app.post_with_key(&process, &token, "process-1", &json!({})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let body = problem(app.post(&process, &token, &json!({})).await, 409, "conflict").await;
    assert!(body["detail"].as_str().unwrap().contains("already recorded"), "{body}");
    assert_eq!(read(&app, "/v1/gifts").await["data"].as_array().unwrap().len(), 1);

    // Nothing of a processed batch changes.
    let entries = format!("/v1/gift-batches/{batch_id}/entries");
    let more = json!({"donor_id": donor["id"], "amount_minor": 1, "gift_date": "2025-06-02"});
    problem(app.post(&entries, &token, &more).await, 409, "conflict").await;
    problem(app.delete(&format!("{entries}/{entry_id}"), &token).await, 409, "conflict").await;
    problem(app.patch(&format!("{entries}/{entry_id}"), &token, &json!({"amount_minor": 2})).await, 409, "conflict")
        .await;
    problem(app.patch(&format!("/v1/gift-batches/{batch_id}"), &token, &json!({"name": "X"})).await, 409, "conflict")
        .await;
    problem(app.delete(&format!("/v1/gift-batches/{batch_id}"), &token).await, 409, "conflict").await;
    let listed = read(&app, "/v1/gift-batches?status=processed").await;
    assert_eq!(listed["data"][0]["id"], batch_id);
    assert_eq!(read(&app, "/v1/gift-batches?status=open").await["data"], json!([]));
    problem(app.get("/v1/gift-batches?status=closed", &token).await, 422, "validation_failed").await;
}

#[tokio::test]
async fn concurrent_processing_records_the_gifts_once() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let batch = create_batch(
        &app,
        &json!({"name": "Cheques", "currency": "GBP", "expected_count": 20, "expected_total_minor": 2100,
                "default_gift_date": "2025-06-02"}),
    )
    .await;
    let batch_id = batch["id"].as_str().unwrap();
    for amount in 1..=20 {
        add_entry(&app, batch_id, &json!({"donor_id": donor["id"], "amount_minor": amount * 10})).await;
    }
    let process = format!("/v1/gift-batches/{batch_id}/process");
    let empty = json!({});
    let calls = (0..6).map(|_| app.post(&process, &token, &empty));
    let statuses: Vec<u16> = futures::future::join_all(calls).await.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "{statuses:?}");
    let gifts = read(&app, &format!("/v1/gifts?batch_id={batch_id}&limit=500")).await;
    assert_eq!(gifts["data"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn another_tenant_sees_no_batch() {
    let app = spawn_app().await;
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let batch = create_batch(
        &app,
        &json!({"name": "Cheques", "currency": "GBP", "expected_count": 1, "expected_total_minor": 500}),
    )
    .await;
    let batch_id = batch["id"].as_str().unwrap();
    let entry =
        add_entry(&app, batch_id, &json!({"donor_id": donor["id"], "amount_minor": 500, "gift_date": "2025-06-02"}))
            .await;
    let entry_id = entry["id"].as_str().unwrap();

    let other = app.token_for(uuid::Uuid::new_v4());
    let base = format!("/v1/gift-batches/{batch_id}");
    for path in [base.clone(), format!("{base}/entries"), format!("{base}/entries/{entry_id}")] {
        problem(app.get(&path, &other).await, 404, "not_found").await;
    }
    let entry_body = json!({"donor_id": donor["id"], "amount_minor": 1, "gift_date": "2025-06-02"});
    problem(app.post(&format!("{base}/entries"), &other, &entry_body).await, 404, "not_found").await;
    problem(app.post(&format!("{base}/process"), &other, &json!({})).await, 404, "not_found").await;
    problem(app.patch(&base, &other, &json!({"name": "Mine"})).await, 404, "not_found").await;
    problem(
        app.patch(&format!("{base}/entries/{entry_id}"), &other, &json!({"amount_minor": 2})).await,
        404,
        "not_found",
    )
    .await;
    problem(app.delete(&format!("{base}/entries/{entry_id}"), &other).await, 404, "not_found").await;
    problem(app.delete(&base, &other).await, 404, "not_found").await;
    let page: Value = app.get("/v1/gift-batches", &other).await.json().await.unwrap();
    assert_eq!(page["data"], json!([]));
    // And the first tenant still has it whole.
    let batch = read(&app, &base).await;
    assert_eq!((batch["revision"].as_i64(), batch["entered_count"].as_i64()), (Some(1), Some(1)));
}

#[tokio::test]
async fn batch_and_entry_validation_names_every_bad_field() {
    let app = spawn_app().await;
    let token = app.token();
    let body = problem(
        app.post(
            "/v1/gift-batches",
            &token,
            &json!({"name": " ", "currency": "XYZ", "expected_count": 10001, "expected_total_minor": 0,
                    "default_gift_date": "02/06/2025", "default_payment_method": "a\u{7}b"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(
        named,
        ["currency", "default_gift_date", "default_payment_method", "expected_count", "expected_total_minor", "name"]
    );
    let body = problem(app.post("/v1/gift-batches", &token, &json!({})).await, 422, "validation_failed").await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["currency", "expected_count", "expected_total_minor", "name"]);
    let unknown_fund = json!({"name": "B", "currency": "GBP", "expected_count": 1, "expected_total_minor": 1,
        "default_fund_id": uuid::Uuid::new_v4()});
    let body = problem(app.post("/v1/gift-batches", &token, &unknown_fund).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["default_fund_id"]);

    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let batch = create_batch(
        &app,
        &json!({"name": "Cheques", "currency": "GBP", "expected_count": 2, "expected_total_minor": 500}),
    )
    .await;
    let entries = format!("/v1/gift-batches/{}/entries", batch["id"].as_str().unwrap());
    // As POST /v1/gifts names them; without a default gift date one is required.
    let body = problem(
        app.post(&entries, &token, &json!({"amount_minor": 0, "status": "refunded", "currency": "GBP"})).await,
        422,
        "validation_failed",
    )
    .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["amount_minor", "donor_id", "gift_date", "status"]);
    let body = problem(
        app.post(
            &entries,
            &token,
            &json!({"donor_id": donor["id"], "amount_minor": 5, "gift_date": "2025-06-02",
            "currency": "EUR"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["currency"]);
    assert_eq!(body["errors"][0]["message"], "must be the batch's currency, GBP");
    let body = problem(
        app.post(
            &entries,
            &token,
            &json!({"donor_id": uuid::Uuid::new_v4(), "amount_minor": 5,
            "gift_date": "2025-06-02"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["donor_id"]);
    let body = problem(
        app.post(&entries, &token, &json!({"donor_id": donor["id"], "colour": "red"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["colour"]);
    // A reference is once per batch, as among gifts.
    let referenced = json!({"donor_id": donor["id"], "amount_minor": 5, "gift_date": "2025-06-02",
        "external_reference": "chq-1"});
    add_entry(&app, batch["id"].as_str().unwrap(), &referenced).await;
    let body = problem(app.post(&entries, &token, &referenced).await, 409, "conflict").await;
    assert_eq!(fields(&body), ["external_reference"]);
    problem(app.get(&format!("/v1/gift-batches/{}", uuid::Uuid::new_v4()), &token).await, 404, "not_found").await;
    problem(app.get("/v1/gift-batches/not-an-id", &token).await, 404, "not_found").await;
}

#[tokio::test]
async fn entries_are_changed_and_removed_while_open_and_checked_again_when_processed() {
    let app = spawn_app().await;
    let token = app.token();
    let fund_id = app.create_fund("GEN").await;
    let ann = app.create_donor(&json!({"last_name": "Smith"})).await;
    let gone = app.create_donor(&json!({"last_name": "Gone"})).await;
    let batch = create_batch(
        &app,
        &json!({"name": "Cheques", "currency": "GBP", "expected_count": 2, "expected_total_minor": 3000,
                "default_fund_id": fund_id, "default_gift_date": "2025-06-02"}),
    )
    .await;
    let batch_id = batch["id"].as_str().unwrap();
    let entries = format!("/v1/gift-batches/{batch_id}/entries");
    let entry = add_entry(&app, batch_id, &json!({"donor_id": ann["id"], "amount_minor": 1000})).await;
    let entry_path = format!("{entries}/{}", entry["id"].as_str().unwrap());
    // The default allocation follows a changed amount.
    let response = app.patch(&entry_path, &token, &json!({"amount_minor": 2000, "notes": "Signed"})).await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["allocations"], json!([{"fund_id": fund_id, "amount_minor": 2000}]));
    assert_eq!((changed["notes"].as_str(), changed["position"].as_i64()), (Some("Signed"), Some(1)));
    assert_eq!(read(&app, &entry_path).await, changed);
    let body =
        problem(app.patch(&entry_path, &token, &json!({"amount_minor": -1})).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["amount_minor"]);

    let spare = add_entry(&app, batch_id, &json!({"donor_id": ann["id"], "amount_minor": 7})).await;
    assert_eq!(app.delete(&format!("{entries}/{}", spare["id"].as_str().unwrap()), &token).await.status(), 204);
    problem(app.delete(&format!("{entries}/{}", spare["id"].as_str().unwrap()), &token).await, 404, "not_found").await;
    let last = add_entry(&app, batch_id, &json!({"donor_id": gone["id"], "amount_minor": 1000})).await;
    assert_eq!(last["position"], 2, "after the last entry");

    // A donor deleted since their entry was keyed: processing names the entry and records nothing.
    assert_eq!(app.delete(&format!("/v1/donors/{}", gone["id"].as_str().unwrap()), &token).await.status(), 204);
    let process = format!("/v1/gift-batches/{batch_id}/process");
    let body = problem(app.post(&process, &token, &json!({})).await, 409, "batch_entries_invalid").await;
    assert_eq!(fields(&body), [format!("entries.{}.donor_id", last["id"].as_str().unwrap())]);
    assert_eq!(read(&app, "/v1/gifts").await["data"], json!([]));
    let response = app
        .patch(&format!("{entries}/{}", last["id"].as_str().unwrap()), &token, &json!({"donor_id": ann["id"]}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.post(&process, &token, &json!({})).await.status(), 200);

    // An open batch is deleted with its entries.
    let spare_batch = create_batch(
        &app,
        &json!({"name": "Mistake", "currency": "GBP", "expected_count": 1, "expected_total_minor": 1}),
    )
    .await;
    let spare_path = format!("/v1/gift-batches/{}", spare_batch["id"].as_str().unwrap());
    add_entry(
        &app,
        spare_batch["id"].as_str().unwrap(),
        &json!({"donor_id": ann["id"], "amount_minor": 1,
        "gift_date": "2025-06-02"}),
    )
    .await;
    assert_eq!(app.delete(&spare_path, &token).await.status(), 204);
    problem(app.get(&spare_path, &token).await, 404, "not_found").await;
}
