use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_pledge_is_paid_fulfilled_reopened_by_a_refund_and_cancelled() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let donor_id = donor["id"].as_str().unwrap();
    let fund = app.create_fund("GEN").await;
    let body = json!({"donor_id": donor_id, "amount_minor": 1000, "currency": "GBP", "frequency": "monthly",
                      "instalments": 3, "start_date": "2020-01-31", "fund_id": fund});
    let response = app.post_with_key("/v1/pledges", &token, "p-1", &body).await;
    assert_eq!(response.status(), 201);
    let pledge: Value = response.json().await.unwrap();
    let id = pledge["id"].as_str().unwrap();
    assert_eq!((pledge["status"].as_str(), pledge["paid_minor"].as_i64()), (Some("open"), Some(0)));
    assert_eq!(pledge["outstanding_minor"], 1000);
    let schedule: Vec<(String, i64, bool, bool)> = pledge["schedule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["due_date"].as_str().unwrap().to_owned(),
                i["amount_minor"].as_i64().unwrap(),
                i["covered"].as_bool().unwrap(),
                i["overdue"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        schedule,
        [
            ("2020-01-31".to_owned(), 333, false, true),
            ("2020-02-29".to_owned(), 333, false, true),
            ("2020-03-31".to_owned(), 334, false, true)
        ]
    );
    let replay = app.post_with_key("/v1/pledges", &token, "p-1", &body).await;
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], pledge["id"]);
    let mut changed = body.clone();
    changed["amount_minor"] = json!(2000);
    let other = app.post_with_key("/v1/pledges", &token, "p-1", &changed).await;
    problem(other, 409, "idempotency_key_reused").await;

    // A pending gift does not count; a succeeded one does.
    let gift = |amount: i64, status: &str| {
        json!({"donor_id": donor_id, "amount_minor": amount, "currency": "GBP", "gift_date": "2020-02-01",
               "status": status, "pledge_id": id})
    };
    let pending: Value = app.post("/v1/gifts", &token, &gift(400, "pending")).await.json().await.unwrap();
    assert_eq!(pending["pledge_id"], id);
    let read: Value = app.get(&format!("/v1/pledges/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read["paid_minor"], 0);
    let paid: Value = app.post("/v1/gifts", &token, &gift(333, "succeeded")).await.json().await.unwrap();
    let read: Value = app.get(&format!("/v1/pledges/{id}"), &token).await.json().await.unwrap();
    assert_eq!((read["paid_minor"].as_i64(), read["outstanding_minor"].as_i64()), (Some(333), Some(667)));
    assert_eq!(read["schedule"][0]["covered"], true);
    assert_eq!(read["schedule"][0]["overdue"], false);
    assert_eq!(read["schedule"][1]["overdue"], true);
    assert_eq!(read["revision"], 1);

    // The pending gift succeeding takes it to 733; another 267 fulfils it.
    let pending_id = pending["id"].as_str().unwrap();
    app.patch(&format!("/v1/gifts/{pending_id}"), &token, &json!({"status": "succeeded"})).await;
    let last: Value = app.post("/v1/gifts", &token, &gift(267, "succeeded")).await.json().await.unwrap();
    let read: Value = app.get(&format!("/v1/pledges/{id}"), &token).await.json().await.unwrap();
    assert_eq!((read["status"].as_str(), read["paid_minor"].as_i64()), (Some("fulfilled"), Some(1000)));
    assert_eq!((read["outstanding_minor"].as_i64(), read["revision"].as_i64()), (Some(0), Some(2)));
    assert!(read["schedule"].as_array().unwrap().iter().all(|i| i["covered"] == true && i["overdue"] == false));
    // A fulfilled pledge takes no more gifts, and cannot be cancelled.
    let body = problem(app.post("/v1/gifts", &token, &gift(1, "succeeded")).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["pledge_id"]);
    problem(app.patch(&format!("/v1/pledges/{id}"), &token, &json!({"status": "cancelled"})).await, 409, "conflict")
        .await;

    // A refund takes it below: open again, with the refund entry naming the pledge.
    let last_id = last["id"].as_str().unwrap();
    let refund: Value = app
        .post(&format!("/v1/gifts/{last_id}/refunds"), &token, &json!({"amount_minor": 100, "date": "2020-03-01"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refund["refund"]["pledge_id"], id);
    let read: Value = app.get(&format!("/v1/pledges/{id}"), &token).await.json().await.unwrap();
    assert_eq!((read["status"].as_str(), read["paid_minor"].as_i64()), (Some("open"), Some(900)));
    assert_eq!((read["outstanding_minor"].as_i64(), read["revision"].as_i64()), (Some(100), Some(3)));
    // Deleting the refund fulfils it again.
    app.delete(&format!("/v1/gifts/{}", refund["refund"]["id"].as_str().unwrap()), &token).await;
    let read: Value = app.get(&format!("/v1/pledges/{id}"), &token).await.json().await.unwrap();
    assert_eq!((read["status"].as_str(), read["revision"].as_i64()), (Some("fulfilled"), Some(4)));
    // Deleting a paying gift opens it; cancelling leaves nothing outstanding; reopening brings it back.
    app.delete(&format!("/v1/gifts/{}", paid["id"].as_str().unwrap()), &token).await;
    let cancelled: Value =
        app.patch(&format!("/v1/pledges/{id}"), &token, &json!({"status": "cancelled"})).await.json().await.unwrap();
    assert_eq!((cancelled["status"].as_str(), cancelled["outstanding_minor"].as_i64()), (Some("cancelled"), Some(0)));
    assert!(cancelled["schedule"].as_array().unwrap().iter().all(|i| i["overdue"] == false));
    let body = problem(app.post("/v1/gifts", &token, &gift(1, "succeeded")).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["pledge_id"]);
    let reopened: Value =
        app.patch(&format!("/v1/pledges/{id}"), &token, &json!({"status": "open"})).await.json().await.unwrap();
    assert_eq!((reopened["status"].as_str(), reopened["outstanding_minor"].as_i64()), (Some("open"), Some(333)));
    problem(
        app.patch(&format!("/v1/pledges/{id}"), &token, &json!({"status": "fulfilled"})).await,
        422,
        "validation_failed",
    )
    .await;
    let list: Value = app.get(&format!("/v1/pledges?donor_id={donor_id}"), &token).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let none: Value =
        app.get(&format!("/v1/pledges?donor_id={}", uuid::Uuid::now_v7()), &token).await.json().await.unwrap();
    assert_eq!(none["data"], json!([]));
    // The donor with a pledge cannot be deleted.
    problem(app.delete(&format!("/v1/donors/{donor_id}"), &token).await, 409, "conflict").await;
}

#[tokio::test]
async fn pledge_and_gift_rules_name_each_field() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let donor_id = donor["id"].as_str().unwrap();
    let other = app.create_donor(&json!({"last_name": "Jones"})).await;
    let body = problem(
        app.post(
            "/v1/pledges",
            &token,
            &json!({"donor_id": donor_id, "amount_minor": 0, "currency": "XYZ", "frequency": "once",
                    "instalments": 2, "start_date": "soon"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["amount_minor", "currency", "instalments", "start_date"]);
    let body = problem(
        app.post("/v1/pledges", &token, &json!({"donor_id": donor_id, "frequency": "weekly"})).await,
        422,
        "validation_failed",
    )
    .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["amount_minor", "currency", "frequency", "start_date"]);
    let body = problem(
        app.post(
            "/v1/pledges",
            &token,
            &json!({"donor_id": uuid::Uuid::now_v7(), "amount_minor": 100, "currency": "GBP", "frequency": "once",
                    "start_date": "2025-01-01", "fund_id": uuid::Uuid::now_v7()}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["donor_id", "fund_id"]);

    let pledge: Value = app
        .post(
            "/v1/pledges",
            &token,
            &json!({"donor_id": donor_id, "amount_minor": 100, "currency": "GBP", "frequency": "once",
                    "start_date": "2025-01-01"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pledge["instalments"], 1);
    let pledge_id = pledge["id"].as_str().unwrap();
    let gift = |donor: &str, currency: &str, pledge: &str| {
        json!({"donor_id": donor, "amount_minor": 100, "currency": currency, "gift_date": "2025-01-01",
               "pledge_id": pledge})
    };
    for (body, why) in [
        (gift(other["id"].as_str().unwrap(), "GBP", pledge_id), "another donor's"),
        (gift(donor_id, "EUR", pledge_id), "in GBP"),
        (gift(donor_id, "GBP", &uuid::Uuid::now_v7().to_string()), "no such pledge"),
    ] {
        let problem = problem(app.post("/v1/gifts", &token, &body).await, 422, "validation_failed").await;
        assert_eq!(fields(&problem), ["pledge_id"]);
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains(why), "{problem}");
    }
    // A pledge is not a gift.
    let gifts: Value = app.get(&format!("/v1/gifts?donor_id={donor_id}"), &token).await.json().await.unwrap();
    assert_eq!(gifts["data"], json!([]));
}
