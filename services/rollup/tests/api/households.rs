use crate::helpers::{GiftSpec, household_event, member_event, problem, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

fn fy(fiscal_year: i32, total_minor: i64, count: i64) -> Value {
    json!({"fiscal_year": fiscal_year, "total_minor": total_minor, "count": count})
}

#[tokio::test]
async fn household_totals_follow_members_as_they_move_between_households() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let (smiths, joneses) = (Uuid::new_v4(), Uuid::new_v4());
    let (ann, bob, cat) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    app.publish(&household_event(tenant, smiths, 1, "The Smiths")).await;
    app.publish(&member_event(tenant, ann, 1, "Ann", "Smith", Some(smiths))).await;
    app.publish(&member_event(tenant, bob, 1, "Bob", "Smith", Some(smiths))).await;
    app.publish(&member_event(tenant, cat, 1, "Cat", "Jones", Some(joneses))).await;
    // Ann's gift soft-credits Bob: the household still counts it once, and Bob's own totals not at all.
    app.publish(&GiftSpec::new(tenant, ann, 10000, "2024-06-01").soft_credit(&[(bob, 10000)]).event()).await;
    app.publish(&GiftSpec::new(tenant, bob, 2500, "2025-05-01").event()).await;
    app.publish(&GiftSpec::new(tenant, cat, 700, "2025-05-02").event()).await;
    app.wait_processed(7).await;

    let smith = app.get_ok(tenant, &format!("/v1/households/{smiths}")).await;
    assert_eq!(
        smith,
        json!({
            "household_id": smiths, "name": "The Smiths", "member_count": 2,
            "as_of": "2025-06-15", "fiscal_year_start_month": 4, "current_fiscal_year": 2025,
            "currencies": [{
                "currency": "GBP", "lifetime_total_minor": 12500, "lifetime_count": 2, "largest_gift_minor": 10000,
                "first_gift": {"date": "2024-06-01", "amount_minor": 10000},
                "last_gift": {"date": "2025-05-01", "amount_minor": 2500},
                "this_fiscal_year": fy(2025, 2500, 1), "last_fiscal_year": fy(2024, 10000, 1),
            }]
        })
    );
    let jones = app.get_ok(tenant, &format!("/v1/households/{joneses}")).await;
    assert_eq!(jones["name"], Value::Null, "known from its member only");
    assert_eq!(jones["currencies"][0]["lifetime_total_minor"], 700);

    // Bob moves to the Joneses (his gifts go with him); a late older revision changes nothing; Ann leaves any
    // household.
    app.publish(&member_event(tenant, bob, 3, "Bob", "Smith", Some(joneses))).await;
    app.publish(&member_event(tenant, bob, 2, "Bob", "Smith", Some(smiths))).await;
    app.publish(&household_event(tenant, joneses, 1, "The Joneses")).await;
    app.wait_processed(10).await;
    let smith = app.get_ok(tenant, &format!("/v1/households/{smiths}")).await;
    assert_eq!(smith["member_count"], 1);
    assert_eq!(smith["currencies"][0]["lifetime_total_minor"], 10000);
    assert_eq!(smith["currencies"][0]["lifetime_count"], 1);
    let jones = app.get_ok(tenant, &format!("/v1/households/{joneses}")).await;
    assert_eq!(jones["name"], "The Joneses");
    assert_eq!(jones["member_count"], 2);
    assert_eq!(jones["currencies"][0]["lifetime_total_minor"], 3200);
    assert_eq!(jones["currencies"][0]["this_fiscal_year"], fy(2025, 3200, 2));

    app.publish(&member_event(tenant, ann, 2, "Ann", "Smith", None)).await;
    app.wait_processed(11).await;
    let smith = app.get_ok(tenant, &format!("/v1/households/{smiths}")).await;
    assert_eq!(smith["member_count"], 0);
    assert_eq!(smith["currencies"], json!([]), "known from its event, with no gifts left in it");
    let bob_totals = app.donor(tenant, bob).await;
    assert_eq!(bob_totals["currencies"][0]["lifetime_total_minor"], 2500, "soft credits are not hard totals");
    assert_eq!(bob_totals["soft_credits"][0]["total_minor"], 10000);

    problem(app.get(&format!("/v1/households/{}", Uuid::new_v4()), &app.token(tenant)).await, 404, "not_found").await;
    problem(app.get("/v1/households/not-an-id", &app.token(tenant)).await, 404, "not_found").await;
    app.clean_up().await;
}

#[tokio::test]
async fn households_funds_and_their_ledgers_are_invisible_to_other_tenants() {
    let app = spawn_app().await;
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (household, donor, fund, pledge) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    app.publish(&household_event(tenant, household, 1, "The Curies")).await;
    app.publish(&member_event(tenant, donor, 1, "Marie", "Curie", Some(household))).await;
    app.publish(&crate::helpers::fund_event(tenant, fund, 1, "GEN", false)).await;
    app.publish(&crate::helpers::pledge_event(
        tenant,
        pledge,
        donor,
        1,
        5000,
        almoner_events::fundraising::PledgeStatus::Open,
    ))
    .await;
    let credited = Uuid::new_v4();
    app.publish(
        &GiftSpec::new(tenant, donor, 1000, "2025-05-01")
            .allocate(&[(fund, 1000)])
            .soft_credit(&[(credited, 1000)])
            .pledge(pledge)
            .event(),
    )
    .await;
    app.wait_processed(5).await;
    app.get_ok(tenant, &format!("/v1/households/{household}")).await;
    app.get_ok(tenant, &format!("/v1/funds/{fund}")).await;

    let token = app.token(other);
    problem(app.get(&format!("/v1/households/{household}"), &token).await, 404, "not_found").await;
    problem(app.get(&format!("/v1/funds/{fund}"), &token).await, 404, "not_found").await;
    problem(app.get(&format!("/v1/donors/{credited}"), &token).await, 404, "not_found").await;
    assert_eq!(app.get_ok(other, "/v1/funds").await["data"], json!([]));
    let wrong_scope = app.issuer.token(tenant, &["fundraising:read"]);
    problem(app.get("/v1/funds", &wrong_scope).await, 403, "forbidden").await;
    problem(app.get(&format!("/v1/households/{household}"), &wrong_scope).await, 403, "forbidden").await;

    // Row-level security: the service's role sees nothing without a tenant.
    let (client, connection) = tokio_postgres::connect(&app.db.app_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    for table in [
        "gift_allocations",
        "gift_soft_credits",
        "households",
        "funds",
        "pledges",
        "household_totals",
        "household_fiscal_year_totals",
        "fund_totals",
        "donor_soft_credit_totals",
        "pledge_payments",
    ] {
        let n: i64 = client.query_one(&format!("SELECT count(*) FROM rollup.{table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "{table} leaked rows without a tenant");
    }
    app.clean_up().await;
}
