use crate::helpers::{GiftSpec, donor_event, problem, spawn_app, tenant_updated};
use almoner_events::fundraising::GiftStatus;
use serde_json::{Value, json};
use uuid::Uuid;

/// Three gifts and a refund (plus a pending and a failed gift that never count), with today = 2025-06-15.
fn history(tenant: Uuid, donor: Uuid) -> Vec<GiftSpec> {
    let this_year = GiftSpec::new(tenant, donor, 5000, "2025-04-01"); // first day of FY 2025 (April start)
    let refunded = GiftSpec::new(tenant, donor, 2000, "2025-03-31").status(GiftStatus::Refunded); // last day of FY 2024
    let older = GiftSpec::new(tenant, donor, 10000, "2023-06-01"); // FY 2023
    let refund = refunded.refund(2000, "2025-04-10"); // nets off in FY 2025
    let pending = GiftSpec::new(tenant, donor, 999, "2025-05-01").status(GiftStatus::Pending);
    let failed = GiftSpec::new(tenant, donor, 777, "2025-05-02").status(GiftStatus::Failed);
    vec![this_year, refunded, older, refund, pending, failed]
}

fn fy(fiscal_year: i32, total_minor: i64, count: i64) -> Value {
    json!({"fiscal_year": fiscal_year, "total_minor": total_minor, "count": count})
}

#[tokio::test]
async fn totals_after_three_gifts_and_a_refund_with_an_april_fiscal_year() {
    let app = spawn_app().await;
    let (tenant, donor) = (Uuid::new_v4(), Uuid::new_v4());
    app.publish(&donor_event(tenant, donor, 1, "Ada", "Lovelace")).await;
    for gift in history(tenant, donor) {
        app.publish(&gift.event()).await;
    }
    app.wait_processed(7).await;

    let body = app.donor(tenant, donor).await;
    assert_eq!(
        body,
        json!({
            "donor_id": donor,
            "display_name": "Ada Lovelace",
            "as_of": "2025-06-15",
            "fiscal_year_start_month": 4,
            "current_fiscal_year": 2025,
            "currencies": [{
                "currency": "GBP",
                "lifetime_total_minor": 15000,
                "lifetime_count": 3,
                "average_gift_minor": 5000,
                "largest_gift_minor": 10000,
                "smallest_gift_minor": 2000,
                "first_gift": {"date": "2023-06-01", "amount_minor": 10000},
                "last_gift": {"date": "2025-04-01", "amount_minor": 5000},
                "this_fiscal_year": fy(2025, 3000, 1),
                "last_fiscal_year": fy(2024, 2000, 1),
                "fiscal_year_before_last": fy(2023, 10000, 1),
                "last_365_days": {"total_minor": 5000, "count": 2},
                "best_fiscal_year": fy(2023, 10000, 1),
                "consecutive_fiscal_years": 3,
                "fiscal_years_donated": 3,
            }],
            "soft_credits": [],
            "pledges": [],
            "recurring": [],
        })
    );

    let summary = app.get_ok(tenant, "/v1/summary").await;
    assert_eq!(
        summary,
        json!({
            "fiscal_year_start_month": 4,
            "currencies": [{
                "currency": "GBP",
                "by_fiscal_year": [
                    {"fiscal_year": 2023, "total_minor": 10000, "count": 1, "donors": 1},
                    {"fiscal_year": 2024, "total_minor": 2000, "count": 1, "donors": 1},
                    {"fiscal_year": 2025, "total_minor": 3000, "count": 1, "donors": 1},
                ],
                "by_month": [
                    {"month": "2023-06", "total_minor": 10000, "count": 1, "donors": 1},
                    {"month": "2025-03", "total_minor": 2000, "count": 1, "donors": 1},
                    {"month": "2025-04", "total_minor": 3000, "count": 1, "donors": 1},
                ],
                "unallocated_minor": 15000,
            }]
        })
    );
    app.clean_up().await;
}

#[tokio::test]
async fn a_january_fiscal_year_regroups_totals_already_stored() {
    let app = spawn_app().await;
    let (tenant, donor) = (Uuid::new_v4(), Uuid::new_v4());
    for gift in history(tenant, donor) {
        app.publish(&gift.event()).await;
    }
    app.wait_processed(6).await;
    let before = app.donor(tenant, donor).await;
    assert_eq!(before["currencies"][0]["this_fiscal_year"], fy(2025, 3000, 1));
    assert_eq!(before["display_name"], Value::Null, "known from its gifts only");

    // The tenant moves to calendar-year reporting; an older revision delivered late changes nothing.
    app.publish(&tenant_updated(tenant, 2, 1)).await;
    app.publish(&tenant_updated(tenant, 1, 7)).await;
    app.wait_processed(8).await;

    let body = app.donor(tenant, donor).await;
    assert_eq!(body["fiscal_year_start_month"], 1);
    assert_eq!(body["current_fiscal_year"], 2025);
    let gbp = &body["currencies"][0];
    assert_eq!(gbp["lifetime_total_minor"], 15000);
    assert_eq!(gbp["this_fiscal_year"], fy(2025, 5000, 2));
    assert_eq!(gbp["last_fiscal_year"], fy(2024, 0, 0));
    assert_eq!(gbp["fiscal_year_before_last"], fy(2023, 10000, 1));
    assert_eq!(gbp["best_fiscal_year"], fy(2023, 10000, 1));
    assert_eq!(gbp["consecutive_fiscal_years"], 1);
    assert_eq!(gbp["fiscal_years_donated"], 2);
    assert_eq!(gbp["last_365_days"], json!({"total_minor": 5000, "count": 2}));
    let summary = app.get_ok(tenant, "/v1/summary").await;
    assert_eq!(summary["fiscal_year_start_month"], 1);
    assert_eq!(
        summary["currencies"][0]["by_fiscal_year"],
        json!([
            {"fiscal_year": 2023, "total_minor": 10000, "count": 1, "donors": 1},
            {"fiscal_year": 2025, "total_minor": 5000, "count": 2, "donors": 1},
        ])
    );
    app.clean_up().await;
}

#[tokio::test]
async fn a_deleted_gift_drops_out_and_a_late_older_revision_does_not_bring_it_back() {
    let app = spawn_app().await;
    let (tenant, donor) = (Uuid::new_v4(), Uuid::new_v4());
    let kept = GiftSpec::new(tenant, donor, 3000, "2025-05-01");
    let mistaken = GiftSpec::new(tenant, donor, 90000, "2025-05-02");
    app.publish(&kept.event()).await;
    app.publish(&mistaken.event()).await;
    app.wait_processed(2).await;
    assert_eq!(app.donor(tenant, donor).await["currencies"][0]["lifetime_total_minor"], 93000);

    app.publish(&mistaken.deleted(2)).await;
    app.wait_processed(3).await;
    // A gift deleted before its creation arrives leaves a tombstone.
    let never = GiftSpec::new(tenant, donor, 50000, "2025-05-03");
    app.publish(&never.deleted(2)).await;
    app.publish(&never.event()).await;
    app.publish(&mistaken.event()).await; // a redelivery of the old revision, under a new event id
    app.wait_processed(6).await;

    let gbp = &app.donor(tenant, donor).await["currencies"][0];
    assert_eq!(gbp["lifetime_total_minor"], 3000);
    assert_eq!(gbp["lifetime_count"], 1);
    assert_eq!(gbp["largest_gift_minor"], 3000);
    assert_eq!(gbp["last_gift"], json!({"date": "2025-05-01", "amount_minor": 3000}));
    app.clean_up().await;
}

#[tokio::test]
async fn top_donors_are_ordered_by_lifetime_total_and_paged() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let (small, large, gone, euro) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    app.publish(&donor_event(tenant, large, 1, "Grace", "Hopper")).await;
    app.publish(&GiftSpec::new(tenant, small, 1500, "2024-01-01").event()).await;
    app.publish(&GiftSpec::new(tenant, large, 25000, "2024-02-01").event()).await;
    app.publish(&GiftSpec::new(tenant, gone, 99999, "2024-02-01").event()).await;
    let mut in_euros = GiftSpec::new(tenant, euro, 500000, "2024-02-01");
    in_euros.currency = "EUR";
    app.publish(&in_euros.event()).await;
    app.publish(&almoner_events::Envelope::new(
        tenant,
        "fundraising",
        almoner_events::fundraising::DonorDeletedV1 {
            donor_id: gone,
            tenant_id: tenant,
            revision: 5,
            deleted_at: chrono::Utc::now(),
        },
    ))
    .await;
    app.wait_processed(6).await;

    let page = app.get_ok(tenant, "/v1/donors?order=lifetime_total&currency=GBP&limit=1").await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["donor_id"], json!(large));
    assert_eq!(page["data"][0]["display_name"], "Grace Hopper");
    assert_eq!(page["data"][0]["lifetime_total_minor"], 25000);
    assert_eq!(page["data"][0]["lifetime_count"], 1);
    assert_eq!(page["data"][0]["last_gift_date"], "2024-02-01");
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = app.get_ok(tenant, &format!("/v1/donors?currency=GBP&limit=1&cursor={cursor}")).await;
    assert_eq!(next["data"][0]["donor_id"], json!(small));
    assert_eq!(next["next_cursor"], Value::Null, "the deleted donor is left out");
    let euros = app.get_ok(tenant, "/v1/donors?currency=EUR").await;
    assert_eq!(euros["data"][0]["donor_id"], json!(euro));

    problem(app.get(&format!("/v1/donors/{gone}"), &app.token(tenant)).await, 404, "not_found").await;
    let bad = app.get("/v1/donors?order=name&currency=XYZ&limit=0&cursor=%%", &app.token(tenant)).await;
    let body = problem(bad, 422, "validation_failed").await;
    let mut fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["currency", "cursor", "limit", "order"]);
    app.clean_up().await;
}

#[tokio::test]
async fn another_tenants_token_gets_404_and_an_empty_summary() {
    let app = spawn_app().await;
    let (tenant, donor, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    app.publish(&GiftSpec::new(tenant, donor, 1000, "2025-05-01").event()).await;
    app.wait_processed(1).await;
    app.donor(tenant, donor).await;

    problem(app.get(&format!("/v1/donors/{donor}"), &app.token(other)).await, 404, "not_found").await;
    problem(app.get(&format!("/v1/donors/{}", Uuid::new_v4()), &app.token(tenant)).await, 404, "not_found").await;
    assert_eq!(app.get_ok(other, "/v1/summary").await["currencies"], json!([]));
    assert_eq!(app.get_ok(other, "/v1/donors").await["data"], json!([]));
    // Without the scope, or without a token.
    let wrong_scope = app.issuer.token(tenant, &["fundraising:read"]);
    problem(app.get(&format!("/v1/donors/{donor}"), &wrong_scope).await, 403, "forbidden").await;
    let anonymous = app.client.get(app.url("/v1/summary")).send().await.unwrap();
    problem(anonymous, 401, "unauthorized").await;

    // Row-level security: the service's role sees nothing without a tenant.
    let (client, connection) = tokio_postgres::connect(&app.db.app_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    for table in ["gifts", "donor_totals", "donor_fiscal_year_totals", "donors", "tenant_settings"] {
        let n: i64 = client.query_one(&format!("SELECT count(*) FROM rollup.{table}"), &[]).await.unwrap().get(0);
        assert_eq!(n, 0, "{table} leaked rows without a tenant");
    }
    app.clean_up().await;
}

#[tokio::test]
async fn rebuild_restores_damaged_totals_for_every_tenant() {
    let app = spawn_app().await;
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (donor_a, donor_b) = (Uuid::new_v4(), Uuid::new_v4());
    for gift in history(a, donor_a) {
        app.publish(&gift.event()).await;
    }
    app.publish(&GiftSpec::new(b, donor_b, 4200, "2025-01-01").event()).await;
    app.wait_processed(7).await;
    let (good_a, good_b) = (app.donor(a, donor_a).await, app.donor(b, donor_b).await);

    let admin = app.db.admin_client().await;
    admin.batch_execute("UPDATE rollup.donor_totals SET lifetime_total = 1, largest_gift = 1; DELETE FROM rollup.donor_fiscal_year_totals").await.unwrap();
    assert_ne!(app.donor(a, donor_a).await, good_a);

    let rebuilt = rollup::rebuild::rebuild(&app.pool, None).await.unwrap();
    assert_eq!(rebuilt.len(), 2);
    assert_eq!(app.donor(a, donor_a).await, good_a);
    assert_eq!(app.donor(b, donor_b).await, good_b);
    app.clean_up().await;
}

/// The dashboard's retention: each donor new, retained, reactivated or lapsed once a fiscal year, up to today's.
#[tokio::test]
async fn retention_counts_each_donor_once_a_fiscal_year() {
    let app = spawn_app().await;
    let (tenant, ada, bob, cy) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // Ada: FY 2023, 2024 and 2025 (history(): her FY 2024 gift's refund is dated, and nets off, in FY 2025).
    for gift in history(tenant, ada) {
        app.publish(&gift.event()).await;
    }
    // Bob: FY 2023 and FY 2024 (an April start). Cy: FY 2024 only.
    app.publish(&GiftSpec::new(tenant, bob, 1000, "2023-05-01").event()).await;
    app.publish(&GiftSpec::new(tenant, bob, 1000, "2024-05-01").event()).await;
    app.publish(&GiftSpec::new(tenant, cy, 500, "2024-12-25").event()).await;
    app.wait_processed(9).await;

    let retention = app.get_ok(tenant, "/v1/summary/retention").await;
    let year = |fy: i32, donors: i64, new: i64, retained: i64, reactivated: i64, lapsed: i64| {
        json!({"fiscal_year": fy, "donors": donors, "new": new, "retained": retained, "reactivated": reactivated,
            "lapsed": lapsed})
    };
    assert_eq!(
        retention,
        json!({
            "fiscal_year_start_month": 4,
            "current_fiscal_year": 2025,
            "fiscal_years": [
                year(2023, 2, 2, 0, 0, 0),
                year(2024, 3, 1, 2, 0, 0),
                year(2025, 1, 0, 1, 0, 2),
            ],
        })
    );
    let other = app.get_ok(Uuid::new_v4(), "/v1/summary/retention").await;
    assert_eq!(other["fiscal_years"], json!([]), "another tenant sees nothing of this one");
}
