use crate::helpers::{GiftSpec, donor_event, pledge_event, spawn_app};
use almoner_events::fundraising::{GiftStatus, PledgeStatus};
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn pledges_paid_fulfilled_and_cancelled() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let donor = Uuid::new_v4();
    let (open, fulfilled, cancelled) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    app.publish(&donor_event(tenant, donor, 1, "Ada", "Lovelace")).await;
    app.publish(&pledge_event(tenant, open, donor, 1, 12000, PledgeStatus::Open)).await;
    app.publish(&pledge_event(tenant, fulfilled, donor, 1, 3000, PledgeStatus::Open)).await;
    app.publish(&pledge_event(tenant, cancelled, donor, 1, 9000, PledgeStatus::Open)).await;
    // Two instalments of the open pledge, one refunded in part by an entry without a pledge id of its own; a
    // pending instalment does not count.
    let first = GiftSpec::new(tenant, donor, 1000, "2025-01-01").pledge(open);
    app.publish(&first.event()).await;
    app.publish(&GiftSpec::new(tenant, donor, 1000, "2025-02-01").pledge(open).event()).await;
    app.publish(&first.refund(400, "2025-02-10").event()).await;
    app.publish(&GiftSpec::new(tenant, donor, 1000, "2025-03-01").pledge(open).status(GiftStatus::Pending).event())
        .await;
    app.publish(&GiftSpec::new(tenant, donor, 3000, "2025-01-05").pledge(fulfilled).event()).await;
    app.publish(&GiftSpec::new(tenant, donor, 2000, "2025-01-06").pledge(cancelled).event()).await;
    app.wait_processed(10).await;

    let body = app.donor(tenant, donor).await;
    assert_eq!(
        body["pledges"],
        json!([{"currency": "GBP", "open": 3, "pledged_minor": 24000, "paid_minor": 6600, "outstanding_minor": 17400}])
    );
    // A pledge is never money: the donor's total is the counted gifts alone.
    assert_eq!(body["currencies"][0]["lifetime_total_minor"], 6600);

    app.publish(&pledge_event(tenant, fulfilled, donor, 2, 3000, PledgeStatus::Fulfilled)).await;
    app.publish(&pledge_event(tenant, cancelled, donor, 2, 9000, PledgeStatus::Cancelled)).await;
    app.publish(&pledge_event(tenant, cancelled, donor, 1, 9000, PledgeStatus::Open)).await; // late and older
    app.wait_processed(13).await;
    let body = app.donor(tenant, donor).await;
    assert_eq!(
        body["pledges"],
        json!([{"currency": "GBP", "open": 1, "pledged_minor": 15000, "paid_minor": 4600, "outstanding_minor": 10400}])
    );
    assert_eq!(body["currencies"][0]["lifetime_total_minor"], 6600, "a cancelled pledge's money still counts");
    app.clean_up().await;
}

#[tokio::test]
async fn soft_credits_net_off_with_a_refund_and_never_enter_hard_totals() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let (employer, employee, honoured) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let matched = GiftSpec::new(tenant, employer, 5000, "2025-04-20").soft_credit(&[(employee, 5000)]);
    let in_honour =
        GiftSpec::new(tenant, employer, 2000, "2024-05-01").soft_credit(&[(employee, 2000), (honoured, 1000)]);
    app.publish(&matched.event()).await;
    app.publish(&in_honour.clone().status(GiftStatus::Refunded).revision(2).event()).await;
    app.publish(&in_honour.refund(2000, "2025-05-01").soft_credit(&[(employee, -2000), (honoured, -1000)]).event())
        .await;
    app.wait_processed(3).await;

    let body = app.donor(tenant, employee).await;
    assert_eq!(body["currencies"], json!([]), "soft credits are not the donor's own giving");
    assert_eq!(
        body["soft_credits"],
        json!([{
            "currency": "GBP", "total_minor": 5000, "count": 2,
            "this_fiscal_year": {"fiscal_year": 2025, "total_minor": 3000, "count": 1},
            "last_fiscal_year": {"fiscal_year": 2024, "total_minor": 2000, "count": 1},
        }])
    );
    let honoured_body = app.donor(tenant, honoured).await;
    assert_eq!(honoured_body["soft_credits"][0]["total_minor"], 0, "a full refund nets the soft credit to zero");
    assert_eq!(honoured_body["soft_credits"][0]["count"], 1);
    let employer_body = app.donor(tenant, employer).await;
    assert_eq!(employer_body["currencies"][0]["lifetime_total_minor"], 5000);
    assert_eq!(employer_body["soft_credits"], json!([]));
    app.clean_up().await;
}
