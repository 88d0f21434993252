use crate::helpers::{fields, problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn a_gift_is_recorded_read_changed_and_deleted() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let donor_id = donor["id"].as_str().unwrap();
    let response = app
        .post(
            "/v1/gifts",
            &token,
            &json!({"donor_id": donor_id, "amount_minor": 2500, "currency": "gbp", "gift_date": "2025-04-06",
                "fund": "General", "notes": "At the fair", "external_reference": "ch_1", "source": "stripe"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let gift: Value = response.json().await.unwrap();
    assert_eq!(gift["revision"], 1);
    assert_eq!(gift["status"], "succeeded");
    assert_eq!(gift["currency"], "GBP");
    assert_eq!(gift["source"], "stripe");
    let id = gift["id"].as_str().unwrap();
    let read: Value = app.get(&format!("/v1/gifts/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read, gift);

    let changed: Value = app
        .patch(&format!("/v1/gifts/{id}"), &token, &json!({"fund": null, "campaign": "Spring", "amount_minor": 3000}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["revision"], 2);
    assert!(changed["fund"].is_null());
    assert_eq!(changed["campaign"], "Spring");
    assert_eq!(changed["amount_minor"], 3000);
    assert_eq!(changed["notes"], "At the fair");

    // The external reference is unique per tenant and source while the gift lives.
    let again = json!({"donor_id": donor_id, "amount_minor": 1, "currency": "GBP", "gift_date": "2025-04-07",
        "external_reference": "ch_1", "source": "stripe"});
    let body = problem(app.post("/v1/gifts", &token, &again).await, 409, "conflict").await;
    assert_eq!(fields(&body), ["external_reference"]);

    assert_eq!(app.delete(&format!("/v1/gifts/{id}"), &token).await.status(), 204);
    problem(app.get(&format!("/v1/gifts/{id}"), &token).await, 404, "not_found").await;
    assert_eq!(app.post("/v1/gifts", &token, &again).await.status(), 201, "a deleted gift frees its reference");
}

#[tokio::test]
async fn gift_validation_names_every_bad_field() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let body = problem(
        app.post(
            "/v1/gifts",
            &token,
            &json!({"donor_id": donor["id"], "amount_minor": 0, "currency": "XYZ", "gift_date": "06/04/2025",
                "status": "refunded"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["amount_minor", "currency", "gift_date", "status"]);
    let body = problem(app.post("/v1/gifts", &token, &json!({})).await, 422, "validation_failed").await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["amount_minor", "currency", "donor_id", "gift_date"]);
    // A donor that does not exist is named.
    let body = problem(
        app.post(
            "/v1/gifts",
            &token,
            &json!({"donor_id": uuid::Uuid::new_v4(), "amount_minor": 100, "currency": "GBP",
                "gift_date": "2025-01-01"}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["donor_id"]);
}

#[tokio::test]
async fn refunds_partial_then_full_mark_the_gift_refunded() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let gift = app.create_gift(donor["id"].as_str().unwrap(), 1000).await;
    let id = gift["id"].as_str().unwrap();
    let refunds = format!("/v1/gifts/{id}/refunds");

    let response =
        app.post(&refunds, &token, &json!({"amount_minor": 400, "date": "2025-05-01", "reason": "Asked"})).await;
    assert_eq!(response.status(), 201);
    let partial: Value = response.json().await.unwrap();
    assert_eq!(partial["refund"]["amount_minor"], -400);
    assert_eq!(partial["refund"]["refund_of"], id);
    assert_eq!(partial["refund"]["donor_id"], donor["id"]);
    assert_eq!(partial["refund"]["currency"], "GBP");
    assert_eq!(partial["refund"]["notes"], "Asked");
    assert_eq!(partial["refund"]["status"], "succeeded");
    assert_eq!(partial["gift"]["status"], "succeeded");
    assert_eq!(partial["gift"]["revision"], 1);

    let body = problem(
        app.post(&refunds, &token, &json!({"amount_minor": 601, "date": "2025-05-02"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["amount_minor"]);
    let body =
        problem(app.post(&refunds, &token, &json!({"amount_minor": -1, "date": "x"})).await, 422, "validation_failed")
            .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["amount_minor", "date"]);

    let full: Value =
        app.post(&refunds, &token, &json!({"amount_minor": 600, "date": "2025-05-02"})).await.json().await.unwrap();
    assert_eq!(full["gift"]["status"], "refunded");
    assert_eq!(full["gift"]["revision"], 2);
    let read: Value = app.get(&format!("/v1/gifts/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read["status"], "refunded");
    problem(
        app.post(&refunds, &token, &json!({"amount_minor": 1, "date": "2025-05-03"})).await,
        422,
        "validation_failed",
    )
    .await;
    // A refund entry is not refundable, and a gift with refunds cannot be deleted.
    let entry = full["refund"]["id"].as_str().unwrap();
    problem(
        app.post(&format!("/v1/gifts/{entry}/refunds"), &token, &json!({"amount_minor": 1, "date": "2025-05-03"}))
            .await,
        409,
        "conflict",
    )
    .await;
    problem(app.delete(&format!("/v1/gifts/{id}"), &token).await, 409, "conflict").await;

    // Deleting a refund entry undoes the full refund.
    assert_eq!(app.delete(&format!("/v1/gifts/{entry}"), &token).await.status(), 204);
    let read: Value = app.get(&format!("/v1/gifts/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read["status"], "succeeded");
    assert_eq!(read["revision"], 3);
}

#[tokio::test]
async fn gift_posts_are_idempotent() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = app.create_donor(&json!({"last_name": "Smith"})).await;
    let body = json!({"donor_id": donor["id"], "amount_minor": 500, "currency": "GBP", "gift_date": "2025-04-06"});
    let first: Value = app.post_with_key("/v1/gifts", &token, "g-1", &body).await.json().await.unwrap();
    let again = app.post_with_key("/v1/gifts", &token, "g-1", &body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let mut other = body.clone();
    other["amount_minor"] = json!(501);
    problem(app.post_with_key("/v1/gifts", &token, "g-1", &other).await, 409, "idempotency_key_reused").await;

    let refunds = format!("/v1/gifts/{}/refunds", first["id"].as_str().unwrap());
    let refund = json!({"amount_minor": 100, "date": "2025-05-01"});
    let r1: Value = app.post_with_key(&refunds, &token, "r-1", &refund).await.json().await.unwrap();
    let r2: Value = app.post_with_key(&refunds, &token, "r-1", &refund).await.json().await.unwrap();
    assert_eq!(r1, r2);
    let page: Value =
        app.get(&format!("/v1/gifts?donor_id={}", donor["id"].as_str().unwrap()), &token).await.json().await.unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2, "one gift, one refund entry");
}

#[tokio::test]
async fn gifts_are_filtered_and_paged() {
    let app = spawn_app().await;
    let token = app.token();
    let a = app.create_donor(&json!({"last_name": "A"})).await;
    let b = app.create_donor(&json!({"last_name": "B"})).await;
    for (donor, date, fund) in [
        (&a, "2025-01-01", "General"),
        (&a, "2025-02-01", "Roof"),
        (&b, "2025-03-01", "General"),
        (&a, "2025-04-01", "General"),
    ] {
        let body =
            json!({"donor_id": donor["id"], "amount_minor": 100, "currency": "GBP", "gift_date": date, "fund": fund});
        assert_eq!(app.post("/v1/gifts", &token, &body).await.status(), 201);
    }
    let dates = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|g| g["gift_date"].as_str().unwrap().to_owned()).collect()
    };
    let a_id = a["id"].as_str().unwrap();
    let page: Value = app.get(&format!("/v1/gifts?donor_id={a_id}&fund=General"), &token).await.json().await.unwrap();
    assert_eq!(dates(&page), ["2025-04-01", "2025-01-01"]);
    let page: Value = app.get("/v1/gifts?from=2025-02-01&to=2025-03-31", &token).await.json().await.unwrap();
    assert_eq!(dates(&page), ["2025-03-01", "2025-02-01"]);

    let mut seen = Vec::new();
    let mut path = "/v1/gifts?limit=3".to_owned();
    loop {
        let page: Value = app.get(&path, &token).await.json().await.unwrap();
        seen.extend(dates(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/gifts?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["2025-04-01", "2025-03-01", "2025-02-01", "2025-01-01"]);
    let body =
        problem(app.get("/v1/gifts?from=yesterday&status=lost&donor_id=1", &token).await, 422, "validation_failed")
            .await;
    let mut named = fields(&body);
    named.sort();
    assert_eq!(named, ["donor_id", "from", "status"]);
}

#[tokio::test]
async fn allocations_and_soft_credits_are_checked_shown_and_netted_by_refunds() {
    let app = spawn_app().await;
    let token = app.token();
    let payer = app.create_donor(&json!({"last_name": "Payer"})).await;
    let payer_id = payer["id"].as_str().unwrap();
    let friend = app.create_donor(&json!({"last_name": "Friend"})).await;
    let friend_id = friend["id"].as_str().unwrap();
    let (roof, general, old) =
        (app.create_fund("ROOF").await, app.create_fund("GEN").await, app.create_fund("OLD").await);
    app.patch(&format!("/v1/funds/{old}"), &token, &json!({"archived": true})).await;
    let gift = |allocations: Value, soft_credits: Value| {
        json!({"donor_id": payer_id, "amount_minor": 1000, "currency": "GBP", "gift_date": "2025-04-06",
               "allocations": allocations, "soft_credits": soft_credits})
    };

    // Every rule names its member.
    let unknown = uuid::Uuid::now_v7();
    let body = problem(
        app.post(
            "/v1/gifts",
            &token,
            &gift(
                json!([{"fund_id": roof, "amount_minor": 0}, {"fund_id": roof, "amount_minor": 1000}]),
                json!([{"donor_id": payer_id, "amount_minor": 10, "kind": "matched"},
                       {"donor_id": friend_id, "amount_minor": 1001, "kind": "in_memory"},
                       {"donor_id": friend_id, "amount_minor": 5, "kind": "gift"}]),
            ),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        fields(&body),
        [
            "allocations[0].amount_minor",
            "allocations[1].fund_id",
            "soft_credits[0].donor_id",
            "soft_credits[1].amount_minor",
            "soft_credits[2].donor_id",
            "soft_credits[2].kind"
        ]
    );
    let body = problem(
        app.post("/v1/gifts", &token, &gift(json!([{"fund_id": roof, "amount_minor": 999}]), json!([]))).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["allocations"]);
    let body = problem(
        app.post(
            "/v1/gifts",
            &token,
            &gift(
                json!([{"fund_id": unknown, "amount_minor": 500}, {"fund_id": old, "amount_minor": 500}]),
                json!([{"donor_id": unknown, "amount_minor": 10, "kind": "solicitor"}]),
            ),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["allocations[0].fund_id", "allocations[1].fund_id", "soft_credits[0].donor_id"]);

    // A good one: 700 + 300, a friend matched with all of it.
    let response = app
        .post(
            "/v1/gifts",
            &token,
            &gift(
                json!([{"fund_id": roof, "amount_minor": 700}, {"fund_id": general, "amount_minor": 300}]),
                json!([{"donor_id": friend_id, "amount_minor": 1000, "kind": "matched"}]),
            ),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let read: Value = app.get(&format!("/v1/gifts/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read, created);
    let by_fund = |g: &Value| -> Vec<(String, i64)> {
        let mut parts: Vec<(String, i64)> = g["allocations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["fund_id"].as_str().unwrap().to_owned(), a["amount_minor"].as_i64().unwrap()))
            .collect();
        parts.sort();
        parts
    };
    let mut expected = vec![(roof.clone(), 700), (general.clone(), 300)];
    expected.sort();
    assert_eq!(by_fund(&created), expected);
    assert_eq!(created["soft_credits"], json!([{"donor_id": friend_id, "amount_minor": 1000, "kind": "matched"}]));

    // Changing the amount without new allocations is refused; with them it is fine.
    let body = problem(
        app.patch(&format!("/v1/gifts/{id}"), &token, &json!({"amount_minor": 1200})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["allocations"]);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("new allocations"), "{body}");
    let changed: Value = app
        .patch(
            &format!("/v1/gifts/{id}"),
            &token,
            &json!({"amount_minor": 1001, "allocations": [{"fund_id": roof, "amount_minor": 701},
                                                          {"fund_id": general, "amount_minor": 300}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["revision"], 2);

    // Refunds: 1 of 1001 first, then 500, then the rest; each entry's parts add up to it and all net to zero.
    let mut entries = Vec::new();
    for amount in [1, 500, 500] {
        let response = app
            .post(&format!("/v1/gifts/{id}/refunds"), &token, &json!({"amount_minor": amount, "date": "2025-05-01"}))
            .await;
        assert_eq!(response.status(), 201);
        let recorded: Value = response.json().await.unwrap();
        let entry = recorded["refund"].clone();
        let parts: i64 =
            entry["allocations"].as_array().unwrap().iter().map(|a| a["amount_minor"].as_i64().unwrap()).sum();
        assert_eq!(parts, -amount, "{entry}");
        assert!(entry["allocations"].as_array().unwrap().iter().all(|a| a["amount_minor"].as_i64().unwrap() < 0));
        assert!(entry["soft_credits"].as_array().unwrap().iter().all(|c| c["amount_minor"].as_i64().unwrap() < 0));
        entries.push(entry);
    }
    // Soft credits round toward zero, cumulatively: 1000 * 1 / 1001 = 0, 1000 * 501 / 1001 = 500, then the rest.
    let credited: Vec<Value> = entries.iter().map(|e| e["soft_credits"].clone()).collect();
    assert_eq!(credited[0], json!([]));
    assert_eq!(credited[1], json!([{"donor_id": friend_id, "amount_minor": -500, "kind": "matched"}]));
    assert_eq!(credited[2], json!([{"donor_id": friend_id, "amount_minor": -500, "kind": "matched"}]));
    for (fund, whole) in [(&roof, 701), (&general, 300)] {
        let refunded: i64 = entries
            .iter()
            .flat_map(|e| e["allocations"].as_array().unwrap().clone())
            .filter(|a| a["fund_id"] == fund.as_str())
            .map(|a| a["amount_minor"].as_i64().unwrap())
            .sum();
        assert_eq!(refunded, -whole, "fund {fund} nets to zero");
    }
    let read: Value = app.get(&format!("/v1/gifts/{id}"), &token).await.json().await.unwrap();
    assert_eq!(read["status"], "refunded");

    // With refunds, the split stays; the donor soft-credited cannot be deleted meanwhile.
    problem(app.patch(&format!("/v1/gifts/{id}"), &token, &json!({"soft_credits": null})).await, 409, "conflict").await;
    problem(app.delete(&format!("/v1/donors/{friend_id}"), &token).await, 409, "conflict").await;
    // An archived fund stays on a gift that already had it.
    app.patch(&format!("/v1/funds/{general}"), &token, &json!({"archived": true})).await;
    let kept = app.patch(&format!("/v1/gifts/{id}"), &token, &json!({"campaign": "Spring"})).await;
    assert_eq!(kept.status(), 200);
}
