//! A historical import through the gateway: the dry run names every bad row and writes nothing; the commit writes
//! exactly the good rows; rollup's totals then equal a direct sum over fundraising's gifts, with no manual step.

use crate::faults::{disagreement, mix};
use crate::stack::Stack;
use chrono::{Days, Utc};
use serde_json::{Value, json};
use std::fmt::Write;
use std::time::Duration;
use tokio::time::Instant;

const DONORS: usize = 80;
const ROWS: usize = 600;

/// The sample and what each kind of row should come to.
struct Sample {
    csv: String,
    bad: usize,
    duplicates: usize,
    refunds: usize,
}

/// Deterministic rows: every 37th is bad (an amount that is no amount, or no surname), every 23rd repeats an
/// earlier gift, every 29th refunds half of an earlier gift (each gift at most once); the rest are gifts.
fn sample() -> Sample {
    let mut csv = String::from("Supporter ID,First Name,Surname,Email,Postcode,Gift Ref,Amount,Date,Refund Of\n");
    let (mut bad, mut duplicates, mut refunds) = (0, 0, 0);
    let mut gifts: Vec<(String, i64)> = Vec::new();
    let mut refunded = std::collections::HashSet::new();
    let today = Utc::now().date_naive();
    for i in 0..ROWS {
        let r = mix(i);
        let donor = (r % DONORS as u64) as usize;
        let (first, last, email) =
            (format!("Donor{donor}"), format!("Family{}", donor % 17), format!("d{donor}@example.org"));
        let date = (today - Days::new(1 + r % 900)).format("%d/%m/%Y");
        let amount = 100 + (r >> 16) % 20_000;
        let pounds = format!("{}.{:02}", amount / 100, amount % 100);
        if i % 37 == 36 {
            bad += 1;
            if i % 2 == 0 {
                writeln!(csv, "D{donor},{first},{last},{email},LS1 4AP,B{i},lots,{date},").unwrap();
            } else {
                writeln!(csv, "D{donor},{first},,{email},LS1 4AP,B{i},{pounds},{date},").unwrap();
            }
        } else if i % 23 == 22 && !gifts.is_empty() {
            duplicates += 1;
            let (reference, amount) = &gifts[(r as usize >> 3) % gifts.len()];
            // Same reference: a duplicate whatever else the row says.
            writeln!(csv, "D{donor},{first},{last},{email},LS1 4AP,{reference},{}.00,{date},", amount / 100).unwrap();
        } else if i % 29 == 28
            && let Some((reference, amount)) = gifts.iter().find(|(g, _)| !refunded.contains(g)).cloned()
        {
            refunds += 1;
            refunded.insert(reference.clone());
            let half = amount / 2;
            writeln!(
                csv,
                "D{donor},{first},{last},{email},,R{i},{}.{:02},{},{reference}",
                half / 100,
                half % 100,
                today.format("%Y-%m-%d")
            )
            .unwrap();
        } else {
            let reference = format!("G{i}");
            writeln!(csv, "D{donor},{first},{last},{email},LS1 4AP,{reference},{pounds},{date},").unwrap();
            gifts.push((reference, amount as i64));
        }
    }
    Sample { csv, bad, duplicates, refunds }
}

#[tokio::test]
async fn an_import_is_checked_then_committed_and_rollup_catches_up_on_its_own() {
    let stack = Stack::start().await;
    let token = stack.admin_token().await;
    let base = format!("{}/api/fundraising", stack.gateway.base_url);
    let admin = stack.db.admin_client().await;
    let gifts_stored =
        || async { admin.query_one("SELECT count(*) FROM fundraising.gifts", &[]).await.unwrap().get::<_, i64>(0) };
    let sample = sample();

    let dry_run: Value = stack
        .client
        .post(format!("{base}/v1/imports"))
        .bearer_auth(&token)
        .json(&json!({"csv": sample.csv, "source": "old_crm"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dry_run["status"], "dry_run", "{dry_run}");
    let summary = &dry_run["summary"];
    assert_eq!(summary["error"], sample.bad as i64, "{summary}");
    assert_eq!(summary["duplicate_gift"], sample.duplicates as i64, "{summary}");
    assert_eq!(summary["refund"], sample.refunds as i64, "{summary}");
    assert_eq!(summary["create_donor"], DONORS as i64, "{summary}");
    assert_eq!(gifts_stored().await, 0, "a dry run writes nothing");
    let outcomes = stack
        .client
        .get(format!("{base}{}", dry_run["outcomes_href"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        outcomes.lines().filter(|l| l.contains(",error: ")).count(),
        sample.bad,
        "every bad row, with its reason"
    );

    let id = dry_run["id"].as_str().unwrap();
    let accepted =
        stack.client.post(format!("{base}/v1/imports/{id}/commit")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let import: Value = stack
            .client
            .get(format!("{base}/v1/imports/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if import["status"] == "committed" {
            assert_eq!(import["summary"], dry_run["summary"], "the commit wrote what the dry run said");
            break;
        }
        assert!(Instant::now() < deadline, "not committed: {import}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let good = (ROWS - sample.bad - sample.duplicates) as i64;
    assert_eq!(gifts_stored().await, good, "gifts and refund entries: exactly the good rows");

    // No manual step: rollup follows the import's events until its totals equal the sum over fundraising.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match disagreement(&admin).await {
            None => break,
            Some(why) if Instant::now() >= deadline => panic!("rollup did not catch up with the import: {why}"),
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    stack.clean_up().await;
}
