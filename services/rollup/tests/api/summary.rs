//! The dashboard's summary endpoints: a fiscal year's income by fund and by source, and the top donors.

use crate::helpers::{GiftSpec, donor_event, fund_event, problem, spawn_app, tenant_updated};
use almoner_events::fundraising::{DonorDeletedV1, GiftStatus};
use serde_json::{Value, json};
use uuid::Uuid;

/// The twelve months from `first` (`YYYY-MM`), zeros except the `(month, total, count)` given.
fn year_of_months(first: &str, filled: &[(&str, i64, i64)]) -> Value {
    let (year, month): (i32, u32) = (first[..4].parse().unwrap(), first[5..].parse().unwrap());
    let months: Vec<Value> = (0..12)
        .map(|i| {
            let zero_based = month - 1 + i;
            let label = format!("{:04}-{:02}", year + (zero_based / 12) as i32, zero_based % 12 + 1);
            let (total, count) = filled.iter().find(|f| f.0 == label).map_or((0, 0), |f| (f.1, f.2));
            json!({"month": label, "total_minor": total, "count": count})
        })
        .collect();
    Value::Array(months)
}

fn fields(body: &Value) -> Vec<String> {
    let mut fields: Vec<String> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect();
    fields.sort();
    fields
}

/// With a July start, FY 2024 runs from 2024-07-01 to 2025-06-30 and is the one today (2025-06-15) falls in.
#[tokio::test]
async fn income_by_fund_nets_refunds_by_month_within_the_tenants_fiscal_year() {
    let app = spawn_app().await;
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (general, roof, unheard) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (ada, bea) = (Uuid::new_v4(), Uuid::new_v4());
    app.publish(&tenant_updated(tenant, 1, 7)).await;
    app.publish(&fund_event(tenant, general, 1, "GEN", false)).await;
    app.publish(&fund_event(tenant, roof, 1, "ROOF", true)).await;
    // £100 split 60/40 on the year's first day, £50 of it refunded pro rata in August.
    let split = GiftSpec::new(tenant, ada, 10000, "2024-07-01").allocate(&[(general, 6000), (roof, 4000)]);
    let refund = split.refund(5000, "2024-08-10").allocate(&[(general, -3000), (roof, -2000)]);
    // An unallocated £8 refunded in full the next January: +8 in November, -8 in January.
    let refunded = GiftSpec::new(tenant, bea, 800, "2024-11-01").status(GiftStatus::Refunded);
    let gifts = [
        split.clone(),
        refund,
        GiftSpec::new(tenant, bea, 2000, "2025-06-30").allocate(&[(roof, 2000)]), // the year's last day
        GiftSpec::new(tenant, bea, 1500, "2024-12-01"),                           // unallocated
        GiftSpec::new(tenant, bea, 1000, "2024-06-30"),                           // FY 2023, unallocated
        GiftSpec::new(tenant, bea, 700, "2025-07-01").allocate(&[(general, 700)]), // FY 2025
        GiftSpec::new(tenant, bea, 999, "2024-09-01").allocate(&[(general, 999)]).status(GiftStatus::Pending),
        GiftSpec::new(tenant, bea, 500, "2024-09-02").allocate(&[(unheard, 500)]), // a fund known only so
        GiftSpec::new(tenant, bea, 3000, "2024-10-01").allocate(&[(general, 3000)]).currency("EUR"),
        refunded.refund(800, "2025-01-05"),
        refunded,
        GiftSpec::new(other, bea, 123456, "2024-12-01").allocate(&[(general, 123456)]),
    ];
    for gift in &gifts {
        app.publish(&gift.event()).await;
    }
    app.wait_processed(15).await;

    let body = app.get_ok(tenant, "/v1/summary/income/funds").await;
    let months = |filled: &[(&str, i64, i64)]| year_of_months("2024-07", filled);
    assert_eq!(
        body,
        json!({
            "fiscal_year_start_month": 7,
            "fiscal_year": 2024,
            "starts_on": "2024-07-01",
            "ends_on": "2025-06-30",
            "currencies": [
                {"currency": "EUR", "total_minor": 3000, "funds": [
                    {"fund_id": general, "code": "GEN", "name": "The GEN fund", "total_minor": 3000, "count": 1,
                     "by_month": months(&[("2024-10", 3000, 1)])},
                    {"fund_id": null, "code": null, "name": null, "total_minor": 0, "count": 0, "by_month": months(&[])},
                ]},
                {"currency": "GBP", "total_minor": 9000, "funds": [
                    {"fund_id": roof, "code": "ROOF", "name": "The ROOF fund", "total_minor": 4000, "count": 2,
                     "by_month": months(&[("2024-07", 4000, 1), ("2024-08", -2000, 0), ("2025-06", 2000, 1)])},
                    {"fund_id": general, "code": "GEN", "name": "The GEN fund", "total_minor": 3000, "count": 1,
                     "by_month": months(&[("2024-07", 6000, 1), ("2024-08", -3000, 0)])},
                    {"fund_id": unheard, "code": null, "name": null, "total_minor": 500, "count": 1,
                     "by_month": months(&[("2024-09", 500, 1)])},
                    {"fund_id": null, "code": null, "name": null, "total_minor": 1500, "count": 2,
                     "by_month": months(&[("2024-11", 800, 1), ("2024-12", 1500, 1), ("2025-01", -800, 0)])},
                ]},
            ],
        })
    );
    // The unallocated line agrees with the summary's, summed over the year's months.
    let year_before = app.get_ok(tenant, "/v1/summary/income/funds?fiscal_year=2023").await;
    assert_eq!(
        (year_before["starts_on"].clone(), year_before["ends_on"].clone()),
        (json!("2023-07-01"), json!("2024-06-30"))
    );
    assert_eq!(
        year_before["currencies"],
        json!([{"currency": "GBP", "total_minor": 1000, "funds": [
            {"fund_id": null, "code": null, "name": null, "total_minor": 1000, "count": 1,
             "by_month": year_of_months("2023-07", &[("2024-06", 1000, 1)])},
        ]}])
    );
    let next = app.get_ok(tenant, "/v1/summary/income/funds?fiscal_year=2025").await;
    let gbp_funds = &next["currencies"][0]["funds"];
    assert_eq!(gbp_funds.as_array().unwrap().len(), 2);
    assert_eq!((gbp_funds[0]["fund_id"].clone(), gbp_funds[0]["total_minor"].clone()), (json!(general), json!(700)));
    assert_eq!(app.get_ok(tenant, "/v1/summary/income/funds?fiscal_year=2030").await["currencies"], json!([]));
    // The last year asked for ends by 9999, whatever the start month: its last day is still a four-digit date.
    let last = app.get_ok(tenant, "/v1/summary/income/funds?fiscal_year=9998").await;
    assert_eq!((last["starts_on"].clone(), last["ends_on"].clone()), (json!("9998-07-01"), json!("9999-06-30")));

    // Another tenant's gift in the same fund id and month is its own.
    let theirs = app.get_ok(other, "/v1/summary/income/funds?fiscal_year=2024").await;
    assert_eq!(theirs["fiscal_year_start_month"], 4);
    assert_eq!(theirs["currencies"][0]["total_minor"], 123456);
    assert_eq!(theirs["currencies"][0]["funds"][0]["name"], Value::Null, "this tenant's fund names are not theirs");

    for bad in ["twenty", "1899", "9999", "2024.5"] {
        let response = app.get(&format!("/v1/summary/income/funds?fiscal_year={bad}"), &app.token(tenant)).await;
        assert_eq!(fields(&problem(response, 422, "validation_failed").await), ["fiscal_year"], "{bad}");
    }
    app.clean_up().await;
}

#[tokio::test]
async fn income_by_source_nets_refunds_under_their_gifts_source_and_replay_fills_in_unknown_sources() {
    let app = spawn_app().await;
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (ada, bea, cy, dan) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let card = GiftSpec::new(tenant, ada, 5000, "2025-04-01").source("stripe", Some("card"));
    let paypal = GiftSpec::new(tenant, bea, 1000, "2025-06-01").source("paypal", Some("paypal"));
    // Recorded by hand against a PayPal gift: it nets off under the gift's source, not its own.
    let paypal_refund = paypal.refund(1000, "2025-06-02").source("manual", None);
    let legacy = GiftSpec::new(tenant, dan, 600, "2025-07-01").source("manual", Some("cheque"));
    let gifts = [
        card.clone(),
        card.refund(2000, "2025-05-10"),
        GiftSpec::new(tenant, bea, 3000, "2025-05-01").source("stripe", Some("card")),
        GiftSpec::new(tenant, cy, 4000, "2025-04-15").source("manual", Some("cheque")),
        GiftSpec::new(tenant, cy, 8000, "2026-03-31").source("import", None), // FY 2025's last day
        GiftSpec::new(tenant, cy, 9999, "2025-03-31").source("import", None), // FY 2024
        GiftSpec::new(tenant, cy, 777, "2025-04-02").source("stripe", None).status(GiftStatus::Failed),
        paypal,
        paypal_refund,
        legacy.clone(),
        GiftSpec::new(other, ada, 4242, "2025-05-01").source("stripe", None),
    ];
    for gift in &gifts {
        app.publish(&gift.event()).await;
    }
    app.wait_processed(11).await;
    let admin = app.db.admin_client().await;
    let stored: (Option<String>, Option<String>) = admin
        .query_one("SELECT source, payment_method FROM rollup.gifts WHERE gift_id = $1", &[&card.id])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(stored, (Some("stripe".to_owned()), Some("card".to_owned())));
    // A gift stored before rollup kept sources has none.
    admin
        .execute("UPDATE rollup.gifts SET source = NULL, payment_method = NULL WHERE gift_id = $1", &[&legacy.id])
        .await
        .unwrap();

    let months = |filled: &[(&str, i64, i64)]| year_of_months("2025-04", filled);
    let body = app.get_ok(tenant, "/v1/summary/income/sources").await;
    assert_eq!(
        body,
        json!({
            "fiscal_year_start_month": 4,
            "fiscal_year": 2025,
            "starts_on": "2025-04-01",
            "ends_on": "2026-03-31",
            "currencies": [{"currency": "GBP", "total_minor": 18600, "count": 6, "sources": [
                {"source": "import", "total_minor": 8000, "count": 1, "by_month": months(&[("2026-03", 8000, 1)])},
                {"source": "stripe", "total_minor": 6000, "count": 2,
                 "by_month": months(&[("2025-04", 5000, 1), ("2025-05", 1000, 1)])},
                {"source": "manual", "total_minor": 4000, "count": 1, "by_month": months(&[("2025-04", 4000, 1)])},
                {"source": "paypal", "total_minor": 0, "count": 1, "by_month": months(&[("2025-06", 0, 1)])},
                {"source": "unknown", "total_minor": 600, "count": 1, "by_month": months(&[("2025-07", 600, 1)])},
            ]}],
        })
    );

    // `fundraising replay` re-emits the gift at the revision rollup holds: stored again once, for its source,
    // and counted once.
    app.publish(&legacy.event()).await;
    app.wait_processed(12).await;
    let replayed = app.get_ok(tenant, "/v1/summary/income/sources").await;
    let sources: Vec<(Value, Value, Value)> = replayed["currencies"][0]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["source"].clone(), s["total_minor"].clone(), s["count"].clone()))
        .collect();
    assert_eq!(
        sources,
        [
            (json!("import"), json!(8000), json!(1)),
            (json!("stripe"), json!(6000), json!(2)),
            (json!("manual"), json!(4600), json!(2)),
            (json!("paypal"), json!(0), json!(1)),
        ]
    );
    assert_eq!(app.donor(tenant, dan).await["currencies"][0]["lifetime_total_minor"], 600);
    let method: Option<String> = admin
        .query_one("SELECT payment_method FROM rollup.gifts WHERE gift_id = $1", &[&legacy.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(method.as_deref(), Some("cheque"));
    // A rebuild recomputes totals from the ledger and leaves its sources alone.
    rollup::rebuild::rebuild(&app.pool, Some(tenant)).await.unwrap();
    assert_eq!(app.get_ok(tenant, "/v1/summary/income/sources").await, replayed);

    let year_before = app.get_ok(tenant, "/v1/summary/income/sources?fiscal_year=2024").await;
    assert_eq!(year_before["currencies"][0]["sources"][0]["source"], "import");
    assert_eq!(year_before["currencies"][0]["total_minor"], 9999);
    let theirs = app.get_ok(other, "/v1/summary/income/sources").await;
    assert_eq!(theirs["currencies"][0]["total_minor"], 4242, "another tenant sees only its own");
    let bad = app.get("/v1/summary/income/sources?fiscal_year=last", &app.token(tenant)).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["fiscal_year"]);
    app.clean_up().await;
}

#[tokio::test]
async fn top_donors_of_a_fiscal_year_or_of_all_time_per_currency() {
    let app = spawn_app().await;
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (ada, bob, eve, fay, gus) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    // Equal totals: the higher donor id first.
    let (cy, dee) = (Uuid::from_u128(1), Uuid::from_u128(2));
    app.publish(&donor_event(tenant, ada, 1, "Ada", "Lovelace")).await;
    app.publish(&donor_event(tenant, eve, 1, "Eve", "Gone")).await;
    app.publish(&almoner_events::Envelope::new(
        tenant,
        "fundraising",
        DonorDeletedV1 { donor_id: eve, tenant_id: tenant, revision: 5, deleted_at: chrono::Utc::now() },
    ))
    .await;
    let bobs = GiftSpec::new(tenant, bob, 10000, "2025-06-01");
    let fays = GiftSpec::new(tenant, fay, 3000, "2025-04-20").status(GiftStatus::Refunded);
    let gifts = [
        GiftSpec::new(tenant, ada, 5000, "2025-04-10"),
        GiftSpec::new(tenant, ada, 3000, "2025-05-20"),
        GiftSpec::new(tenant, ada, 20000, "2024-05-01"), // FY 2024
        bobs.refund(4000, "2025-06-10"),
        bobs,
        GiftSpec::new(tenant, bob, 99999, "2025-06-02").status(GiftStatus::Pending),
        GiftSpec::new(tenant, cy, 7000, "2025-04-01"),
        GiftSpec::new(tenant, dee, 7000, "2025-04-02"),
        GiftSpec::new(tenant, eve, 50000, "2025-05-01"), // deleted: left out
        fays.refund(3000, "2025-04-25"),                 // refunded in full: nothing left, left out
        fays,
        GiftSpec::new(tenant, gus, 4000, "2025-05-05").currency("EUR"),
        GiftSpec::new(other, ada, 1_000_000, "2025-05-05"),
    ];
    for gift in &gifts {
        app.publish(&gift.event()).await;
    }
    app.wait_processed(16).await;

    let entry = |donor: Uuid, name: Value, total: i64, count: i64, last: &str| {
        json!({"donor_id": donor, "display_name": name, "total_minor": total, "gift_count": count,
            "last_gift_date": last})
    };
    let this_year = app.get_ok(tenant, "/v1/summary/top-donors").await;
    assert_eq!(
        this_year,
        json!({
            "period": "fiscal_year",
            "fiscal_year_start_month": 4,
            "fiscal_year": 2025,
            "currencies": [
                {"currency": "EUR", "donors": [entry(gus, Value::Null, 4000, 1, "2025-05-05")]},
                {"currency": "GBP", "donors": [
                    entry(ada, json!("Ada Lovelace"), 8000, 2, "2025-05-20"),
                    entry(dee, Value::Null, 7000, 1, "2025-04-02"),
                    entry(cy, Value::Null, 7000, 1, "2025-04-01"),
                    entry(bob, Value::Null, 6000, 1, "2025-06-01"),
                ]},
            ],
        })
    );
    let top_two = app.get_ok(tenant, "/v1/summary/top-donors?period=fiscal_year&fiscal_year=2025&limit=2").await;
    let gbp: Vec<&Value> =
        top_two["currencies"][1]["donors"].as_array().unwrap().iter().map(|d| &d["donor_id"]).collect();
    assert_eq!(gbp, [&json!(ada), &json!(dee)]);
    let last_year = app.get_ok(tenant, "/v1/summary/top-donors?fiscal_year=2024").await;
    assert_eq!(
        last_year["currencies"],
        json!([{"currency": "GBP", "donors": [entry(ada, json!("Ada Lovelace"), 20000, 1, "2024-05-01")]}])
    );

    // Lifetime (a fiscal year given alongside is not used), from the stored totals.
    let lifetime = app.get_ok(tenant, "/v1/summary/top-donors?period=lifetime&fiscal_year=2024").await;
    assert_eq!((lifetime["period"].clone(), lifetime["fiscal_year"].clone()), (json!("lifetime"), Value::Null));
    assert_eq!(
        lifetime["currencies"][1],
        json!({"currency": "GBP", "donors": [
            entry(ada, json!("Ada Lovelace"), 28000, 3, "2025-05-20"),
            entry(dee, Value::Null, 7000, 1, "2025-04-02"),
            entry(cy, Value::Null, 7000, 1, "2025-04-01"),
            entry(bob, Value::Null, 6000, 1, "2025-06-01"),
        ]})
    );

    let theirs = app.get_ok(other, "/v1/summary/top-donors?period=lifetime").await;
    assert_eq!(
        theirs["currencies"],
        json!([{"currency": "GBP", "donors": [entry(ada, Value::Null, 1_000_000, 1, "2025-05-05")]}])
    );
    assert_eq!(app.get_ok(Uuid::new_v4(), "/v1/summary/top-donors").await["currencies"], json!([]));

    let bad = app.get("/v1/summary/top-donors?period=weekly&limit=0&fiscal_year=99", &app.token(tenant)).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["fiscal_year", "limit", "period"]);
    let too_many = app.get("/v1/summary/top-donors?limit=101", &app.token(tenant)).await;
    assert_eq!(fields(&problem(too_many, 422, "validation_failed").await), ["limit"]);
    assert_eq!(app.get_ok(tenant, "/v1/summary/top-donors?limit=100").await, this_year);

    // Without the scope, or without a token.
    let wrong_scope = app.issuer.token(tenant, &["fundraising:read"]);
    for path in ["/v1/summary/top-donors", "/v1/summary/income/funds", "/v1/summary/income/sources"] {
        problem(app.get(path, &wrong_scope).await, 403, "forbidden").await;
        problem(app.client.get(app.url(path)).send().await.unwrap(), 401, "unauthorized").await;
    }
    app.clean_up().await;
}
