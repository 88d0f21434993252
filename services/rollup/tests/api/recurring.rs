use crate::helpers::{donor_event, recurring_event, spawn_app};
use almoner_events::fundraising::{RecurringInterval, RecurringStatus};
use serde_json::json;
use uuid::Uuid;

use RecurringInterval::{Annually, Monthly, Quarterly, Weekly};
use RecurringStatus::{Active, Cancelled, Lapsed, Paused};

#[tokio::test]
async fn a_donors_active_agreements_normalise_to_a_month_and_add_up_for_the_tenant() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let donor = Uuid::new_v4();
    app.publish(&donor_event(tenant, donor, 1, "Ada", "Lovelace")).await;
    // £10 a month; £5 a week (2166.67 → 2167); £10 a quarter (333.33 → 333); £60 a year (500); and €1.00 a
    // year (8.33 → 8).
    app.publish(&recurring_event(tenant, Uuid::new_v4(), Some(donor), 1, 1000, "GBP", Monthly, Active)).await;
    app.publish(&recurring_event(tenant, Uuid::new_v4(), Some(donor), 1, 500, "GBP", Weekly, Active)).await;
    app.publish(&recurring_event(tenant, Uuid::new_v4(), Some(donor), 1, 1000, "GBP", Quarterly, Active)).await;
    app.publish(&recurring_event(tenant, Uuid::new_v4(), Some(donor), 1, 6000, "GBP", Annually, Active)).await;
    app.publish(&recurring_event(tenant, Uuid::new_v4(), Some(donor), 1, 100, "EUR", Annually, Active)).await;
    // Not yet tied to a donor: the tenant's income, nobody's.
    app.publish(&recurring_event(tenant, Uuid::new_v4(), None, 1, 2000, "GBP", Monthly, Active)).await;
    app.wait_processed(7).await;

    let body = app.donor(tenant, donor).await;
    assert_eq!(
        body["recurring"],
        json!([
            {"currency": "EUR", "active": 1, "monthly_minor": 8},
            {"currency": "GBP", "active": 4, "monthly_minor": 1000 + 2167 + 333 + 500},
        ])
    );
    assert_eq!(body["currencies"], json!([]), "an agreement is not money");
    let summary = app.get_ok(tenant, "/v1/recurring/summary").await;
    assert_eq!(
        summary,
        json!({
            "by_status": {"active": 6, "paused": 0, "cancelled": 0, "lapsed": 0},
            "currencies": [
                {"currency": "EUR", "active": 1, "monthly_minor": 8},
                {"currency": "GBP", "active": 5, "monthly_minor": 1000 + 2167 + 333 + 500 + 2000},
            ],
        })
    );

    // Rebuilding recomputes nothing the figures depend on: they stay the same.
    rollup::rebuild::rebuild(&app.pool, Some(tenant)).await.unwrap();
    assert_eq!(app.get_ok(tenant, "/v1/recurring/summary").await, summary);
    assert_eq!(app.donor(tenant, donor).await["recurring"], body["recurring"]);
    app.clean_up().await;
}

#[tokio::test]
async fn newer_revisions_replace_older_ones_and_status_changes_move_income_in_and_out() {
    let app = spawn_app().await;
    let tenant = Uuid::new_v4();
    let donor = Uuid::new_v4();
    let (monthly, weekly) = (Uuid::new_v4(), Uuid::new_v4());
    app.publish(&recurring_event(tenant, monthly, Some(donor), 1, 1000, "GBP", Monthly, Active)).await;
    app.publish(&recurring_event(tenant, weekly, Some(donor), 1, 300, "GBP", Weekly, Active)).await;
    app.wait_processed(2).await;
    let summary = |active, monthly_minor, by_status: [i64; 4]| {
        json!({
            "by_status": {"active": by_status[0], "paused": by_status[1], "cancelled": by_status[2], "lapsed": by_status[3]},
            "currencies": if active == 0 { json!([]) } else {
                json!([{"currency": "GBP", "active": active, "monthly_minor": monthly_minor}])
            },
        })
    };
    assert_eq!(app.get_ok(tenant, "/v1/recurring/summary").await, summary(2, 1000 + 1300, [2, 0, 0, 0]));

    // Paused, then lapsed: out of the income, still counted by status.
    app.publish(&recurring_event(tenant, monthly, Some(donor), 2, 1000, "GBP", Monthly, Paused)).await;
    app.publish(&recurring_event(tenant, weekly, Some(donor), 2, 300, "GBP", Weekly, Lapsed)).await;
    app.wait_processed(4).await;
    assert_eq!(app.get_ok(tenant, "/v1/recurring/summary").await, summary(0, 0, [0, 1, 0, 1]));
    assert_eq!(app.donor(tenant, donor).await["recurring"], json!([]));

    // Active again at a new amount (in), and the weekly one cancelled.
    app.publish(&recurring_event(tenant, monthly, Some(donor), 3, 1500, "GBP", Monthly, Active)).await;
    app.publish(&recurring_event(tenant, weekly, Some(donor), 3, 300, "GBP", Weekly, Cancelled)).await;
    // Late and older: ignored.
    app.publish(&recurring_event(tenant, monthly, Some(donor), 2, 1000, "GBP", Monthly, Paused)).await;
    app.publish(&recurring_event(tenant, weekly, Some(donor), 1, 300, "GBP", Weekly, Active)).await;
    app.wait_processed(8).await;
    assert_eq!(app.get_ok(tenant, "/v1/recurring/summary").await, summary(1, 1500, [1, 0, 1, 0]));
    assert_eq!(
        app.donor(tenant, donor).await["recurring"],
        json!([{"currency": "GBP", "active": 1, "monthly_minor": 1500}])
    );
    app.clean_up().await;
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_agreements() {
    let app = spawn_app().await;
    let (tenant, other) = (Uuid::new_v4(), Uuid::new_v4());
    let donor = Uuid::new_v4();
    app.publish(&recurring_event(tenant, Uuid::new_v4(), Some(donor), 1, 1200, "GBP", Annually, Active)).await;
    app.publish(&recurring_event(other, Uuid::new_v4(), None, 1, 999, "GBP", Monthly, Active)).await;
    app.wait_processed(2).await;

    assert_eq!(
        app.get_ok(tenant, "/v1/recurring/summary").await["currencies"],
        json!([{"currency": "GBP", "active": 1, "monthly_minor": 100}])
    );
    assert_eq!(
        app.get_ok(other, "/v1/recurring/summary").await["currencies"],
        json!([{"currency": "GBP", "active": 1, "monthly_minor": 999}])
    );
    let response = app.get(&format!("/v1/donors/{donor}"), &app.token(other)).await;
    assert_eq!(response.status(), 404, "another tenant's donor");
    app.clean_up().await;
}
