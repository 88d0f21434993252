use crate::helpers::{problem, spawn_app};
use serde_json::{Value, json};

#[tokio::test]
async fn another_tenants_token_sees_nothing_of_the_first() {
    let app = spawn_app().await;
    let donor = app.create_donor(&json!({"last_name": "Smith", "email": "ann@example.org"})).await;
    let donor_id = donor["id"].as_str().unwrap();
    let gift = app.create_gift(donor_id, 1000).await;
    let gift_id = gift["id"].as_str().unwrap();

    let other = app.token_for(uuid::Uuid::new_v4());
    problem(app.get(&format!("/v1/donors/{donor_id}"), &other).await, 404, "not_found").await;
    problem(app.get(&format!("/v1/gifts/{gift_id}"), &other).await, 404, "not_found").await;
    problem(app.patch(&format!("/v1/donors/{donor_id}"), &other, &json!({"last_name": "X"})).await, 404, "not_found")
        .await;
    problem(app.delete(&format!("/v1/gifts/{gift_id}"), &other).await, 404, "not_found").await;
    problem(app.delete(&format!("/v1/donors/{donor_id}"), &other).await, 404, "not_found").await;
    problem(
        app.post(&format!("/v1/gifts/{gift_id}/refunds"), &other, &json!({"amount_minor": 1, "date": "2025-01-01"}))
            .await,
        404,
        "not_found",
    )
    .await;
    // Another tenant's donor is unknown when recording a gift.
    let body = json!({"donor_id": donor_id, "amount_minor": 1, "currency": "GBP", "gift_date": "2025-01-01"});
    problem(app.post("/v1/gifts", &other, &body).await, 422, "validation_failed").await;
    for path in ["/v1/donors", "/v1/donors?email=ann@example.org", "/v1/gifts"] {
        let page: Value = app.get(path, &other).await.json().await.unwrap();
        assert_eq!(page["data"], json!([]), "{path}");
    }
    // And the first tenant still has everything.
    let read: Value = app.get(&format!("/v1/gifts/{gift_id}"), &app.token()).await.json().await.unwrap();
    assert_eq!(read["revision"], 1);
}

#[tokio::test]
async fn another_tenant_sees_no_household_fund_or_pledge() {
    let app = spawn_app().await;
    let token = app.token();
    let household: Value = app.post("/v1/households", &token, &json!({"name": "Smiths"})).await.json().await.unwrap();
    let household_id = household["id"].as_str().unwrap();
    let fund_id = app.create_fund("GEN").await;
    let donor = app.create_donor(&json!({"last_name": "Smith", "household_id": household_id})).await;
    let donor_id = donor["id"].as_str().unwrap();
    let pledge: Value = app
        .post(
            "/v1/pledges",
            &token,
            &json!({"donor_id": donor_id, "amount_minor": 100, "currency": "GBP", "frequency": "once",
                    "start_date": "2025-01-01", "fund_id": fund_id}),
        )
        .await
        .json()
        .await
        .unwrap();
    let pledge_id = pledge["id"].as_str().unwrap();

    let other_tenant = uuid::Uuid::new_v4();
    let other = app.token_for(other_tenant);
    for path in
        [format!("/v1/households/{household_id}"), format!("/v1/funds/{fund_id}"), format!("/v1/pledges/{pledge_id}")]
    {
        problem(app.get(&path, &other).await, 404, "not_found").await;
    }
    problem(
        app.patch(&format!("/v1/households/{household_id}"), &other, &json!({"name": "X"})).await,
        404,
        "not_found",
    )
    .await;
    problem(app.patch(&format!("/v1/funds/{fund_id}"), &other, &json!({"name": "X"})).await, 404, "not_found").await;
    problem(
        app.patch(&format!("/v1/pledges/{pledge_id}"), &other, &json!({"status": "cancelled"})).await,
        404,
        "not_found",
    )
    .await;
    for path in ["/v1/households", "/v1/funds", "/v1/pledges"] {
        let page: Value = app.get(path, &other).await.json().await.unwrap();
        assert_eq!(page["data"], json!([]), "{path}");
    }
    // Nor can it link to them: its donor cannot join the household, its gift cannot use the fund or the pledge.
    let theirs = app.post("/v1/donors", &other, &json!({"last_name": "Other"})).await.json::<Value>().await.unwrap();
    let body = problem(
        app.post("/v1/donors", &other, &json!({"last_name": "X", "household_id": household_id})).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(crate::helpers::fields(&body), ["household_id"]);
    let body = problem(
        app.post(
            "/v1/gifts",
            &other,
            &json!({"donor_id": theirs["id"], "amount_minor": 100, "currency": "GBP", "gift_date": "2025-01-01",
                    "allocations": [{"fund_id": fund_id, "amount_minor": 100}], "pledge_id": pledge_id}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(crate::helpers::fields(&body), ["allocations[0].fund_id", "pledge_id"]);
    let body = problem(
        app.post(
            "/v1/pledges",
            &other,
            &json!({"donor_id": theirs["id"], "amount_minor": 100, "currency": "GBP", "frequency": "once",
                    "start_date": "2025-01-01", "fund_id": fund_id}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(crate::helpers::fields(&body), ["fund_id"]);
}

#[tokio::test]
async fn row_level_security_hides_rows_from_a_query_that_forgets_the_tenant() {
    let app = spawn_app().await;
    let donor = app.create_donor(&json!({"last_name": "Smith", "external_ids": {"crm": "1"}})).await;
    let donor_id = donor["id"].as_str().unwrap();
    let fund_id = app.create_fund("GEN").await;
    let friend = app.create_donor(&json!({"last_name": "Friend"})).await;
    let gift: Value = app
        .post(
            "/v1/gifts",
            &app.token(),
            &json!({"donor_id": donor_id, "amount_minor": 1000, "currency": "GBP", "gift_date": "2025-04-06",
                    "allocations": [{"fund_id": fund_id, "amount_minor": 1000}],
                    "soft_credits": [{"donor_id": friend["id"], "amount_minor": 1000, "kind": "in_honour"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    app.post("/v1/households", &app.token(), &json!({"name": "Smiths"})).await;
    app.post(
        "/v1/pledges",
        &app.token(),
        &json!({"donor_id": donor_id, "amount_minor": 100, "currency": "GBP", "frequency": "once",
                "start_date": "2025-01-01"}),
    )
    .await;
    app.post_with_key(
        &format!("/v1/gifts/{}/refunds", gift["id"].as_str().unwrap()),
        &app.token(),
        "k",
        &json!({"amount_minor": 1, "date": "2025-01-01"}),
    )
    .await;

    let admin = app.db.admin_client().await;
    let all: i64 = admin.query_one("SELECT count(*) FROM fundraising.gifts", &[]).await.unwrap().get(0);
    assert_eq!(all, 2, "the superuser sees the rows");
    for table in ["households", "funds", "gift_allocations", "gift_soft_credits", "pledges"] {
        let n: i64 = admin.query_one(&format!("SELECT count(*) FROM fundraising.{table}"), &[]).await.unwrap().get(0);
        assert!(n >= 1, "{table} has rows to hide");
    }

    let (client, connection) = tokio_postgres::connect(&app.db.app_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let is_super: bool =
        client.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user", &[]).await.unwrap().get(0);
    assert!(!is_super, "tests must run as a non-superuser to prove RLS");
    for table in [
        "fundraising.donors",
        "fundraising.donor_external_ids",
        "fundraising.gifts",
        "fundraising.idempotency_keys",
        "fundraising.households",
        "fundraising.funds",
        "fundraising.gift_allocations",
        "fundraising.gift_soft_credits",
        "fundraising.pledges",
    ] {
        let n: i64 = client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "{table} leaked rows without a tenant");
    }

    // With the tenant set, its rows; and no row can be written for another tenant.
    let tx = app.pool.tenant_tx(app.tenant_id).await.unwrap();
    assert_eq!(tx.query("SELECT id FROM donors", &[]).await.unwrap().len(), 2);
    let refused = tx
        .execute(
            "INSERT INTO donors (id, tenant_id, last_name) VALUES ($1, $2, 'X')",
            &[&uuid::Uuid::new_v4(), &uuid::Uuid::new_v4()],
        )
        .await;
    assert!(refused.is_err(), "WITH CHECK must refuse a row for another tenant");
}
