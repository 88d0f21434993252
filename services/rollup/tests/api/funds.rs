use crate::helpers::{GiftSpec, fund_event, problem, spawn_app};
use serde_json::{Value, json};
use uuid::Uuid;

#[tokio::test]
async fn a_split_gift_and_a_partial_refund_land_in_their_funds_and_the_rest_is_unallocated() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let (general, roof, unknown) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (ada, bea) = (Uuid::new_v4(), Uuid::new_v4());
    app.publish(&fund_event(tenant, general, 1, "GEN", false)).await;
    app.publish(&fund_event(tenant, roof, 2, "ROOF", true)).await;
    app.publish(&fund_event(tenant, roof, 1, "OLD-ROOF", false)).await; // older: ignored
    // £100 split 60/40, then £50 of it refunded pro rata (30/20); £20 to the roof from another donor; £15 to no
    // fund; £5 to a fund rollup has not heard of yet.
    let split = GiftSpec::new(tenant, ada, 10000, "2025-04-10").allocate(&[(general, 6000), (roof, 4000)]);
    let refund = split.refund(5000, "2025-05-10").allocate(&[(general, -3000), (roof, -2000)]);
    app.publish(&split.event()).await;
    app.publish(&refund.event()).await;
    app.publish(&GiftSpec::new(tenant, bea, 2000, "2025-05-01").allocate(&[(roof, 2000)]).event()).await;
    app.publish(&GiftSpec::new(tenant, bea, 1500, "2025-05-02").event()).await;
    app.publish(&GiftSpec::new(tenant, bea, 500, "2025-05-03").allocate(&[(unknown, 500)]).event()).await;
    app.wait_processed(8).await;

    let roof_view = app.get_ok(tenant, &format!("/v1/funds/{roof}")).await;
    assert_eq!(
        roof_view,
        json!({
            "fund_id": roof, "code": "ROOF", "name": "The ROOF fund", "restricted": true, "archived": false,
            "currencies": [{"currency": "GBP", "total_minor": 4000, "gift_count": 2, "donors": 2}]
        })
    );
    let list = app.get_ok(tenant, "/v1/funds?limit=2").await;
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["fund_id"], json!(unknown), "a fund known only from allocations sorts first");
    assert_eq!(data[0]["code"], Value::Null);
    assert_eq!(data[0]["currencies"][0]["total_minor"], 500);
    assert_eq!(data[1]["code"], "GEN");
    assert_eq!(data[1]["currencies"][0], json!({"currency": "GBP", "total_minor": 3000, "gift_count": 1, "donors": 1}));
    let cursor = list["next_cursor"].as_str().unwrap();
    let rest = app.get_ok(tenant, &format!("/v1/funds?cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["code"], "ROOF");
    assert_eq!(rest["next_cursor"], Value::Null);

    // Money counts once: the donor's net total holds the whole gift, the funds hold their parts.
    assert_eq!(app.donor(tenant, ada).await["currencies"][0]["lifetime_total_minor"], 5000);
    let summary = app.get_ok(tenant, "/v1/summary").await;
    assert_eq!(summary["currencies"][0]["unallocated_minor"], 1500);

    problem(app.get(&format!("/v1/funds/{}", Uuid::new_v4()), &app.token(tenant)).await, 404, "not_found").await;
    let bad = problem(app.get("/v1/funds?limit=0&cursor=%%", &app.token(tenant)).await, 422, "validation_failed").await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2, "{bad}");
    app.clean_up().await;
}
