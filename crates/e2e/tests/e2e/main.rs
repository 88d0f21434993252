//! A charity's day, end to end through the gateway: identity issues the token, fundraising records donor and
//! gifts, rollup shows the totals.

mod console;
mod deployment;
mod faults;
mod files;
mod flood;
mod gateway;
mod import;
mod rollout;
mod schemathesis;
mod sms;
mod stack;
mod webhooks;
mod widget;

use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_donation_through_the_gateway_shows_in_the_donors_totals_within_a_second() {
    let stack = stack::Stack::start().await;
    let base = &stack.gateway.base_url;
    let client = &stack.client;

    let token: Value = client
        .post(format!("{base}/api/identity/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_secret", stack.admin.api_key.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();

    let donor: Value = client
        .post(format!("{base}/api/fundraising/v1/donors"))
        .bearer_auth(&token)
        .json(&json!({"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org",
                      "address": {"line1": "12 Analytical Row", "town": "London", "postcode": "sw1a 1aa", "country": "GB"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let donor_id = donor["id"].as_str().expect("donor created").to_owned();
    assert_eq!(donor["address"]["postcode"], "SW1A 1AA");

    let today = chrono::Utc::now().date_naive();
    let mut gift_ids = Vec::new();
    for (amount, days_ago) in [(2_500, 30), (10_000, 10), (5_000, 1)] {
        let date = today - chrono::Duration::days(days_ago);
        let response = client
            .post(format!("{base}/api/fundraising/v1/gifts"))
            .bearer_auth(&token)
            .header("idempotency-key", format!("gift-{amount}"))
            .json(&json!({"donor_id": donor_id, "amount_minor": amount, "currency": "GBP", "gift_date": date}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let gift: Value = response.json().await.unwrap();
        gift_ids.push(gift["id"].as_str().unwrap().to_owned());
    }
    let response = client
        .post(format!("{base}/api/fundraising/v1/gifts/{}/refunds", gift_ids[1]))
        .bearer_auth(&token)
        .json(&json!({"amount_minor": 4_000, "date": today, "reason": "donor asked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let last_write = Instant::now();

    // 2,500 + 10,000 + 5,000 - 4,000.
    let expected_total = 13_500;
    let totals = loop {
        let response =
            client.get(format!("{base}/api/rollup/v1/donors/{donor_id}")).bearer_auth(&token).send().await.unwrap();
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            if body["currencies"][0]["lifetime_total_minor"] == expected_total {
                break body;
            }
        }
        assert!(last_write.elapsed() < Duration::from_secs(1), "rollup not consistent within 1 s of the last write");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let gbp = &totals["currencies"][0];
    assert_eq!(gbp["currency"], "GBP");
    assert_eq!(gbp["lifetime_count"], 3);
    assert_eq!(gbp["largest_gift_minor"], 10_000);
    assert_eq!(gbp["smallest_gift_minor"], 2_500);
    assert_eq!(gbp["last_365_days"]["total_minor"], expected_total);
    assert_eq!(gbp["first_gift"]["amount_minor"], 2_500);
    assert_eq!(totals["display_name"].as_str().map(|n| n.contains("Lovelace")), Some(true));

    // Another tenant sees none of it.
    let other = identity::bootstrap::bootstrap(&stack.identity_pool, "Other Charity").await.unwrap();
    let other_token: Value = client
        .post(format!("{base}/api/identity/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_secret", other.api_key.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let other_token = other_token["access_token"].as_str().unwrap();
    for path in [
        format!("/api/fundraising/v1/donors/{donor_id}"),
        format!("/api/fundraising/v1/gifts/{}", gift_ids[0]),
        format!("/api/rollup/v1/donors/{donor_id}"),
    ] {
        let response = client.get(format!("{base}{path}")).bearer_auth(other_token).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json");
    }
    stack.clean_up().await;
}
