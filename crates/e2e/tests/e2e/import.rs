//! A historical import through the gateway: the dry run names every bad row and writes nothing; the commit writes
//! exactly the good rows; rollup's totals then equal a direct sum over fundraising's gifts, with no manual step.

use crate::faults::{disagreement, mix};
use crate::stack::Stack;
use chrono::{Days, Utc};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
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

    commit_import(&stack, &base, &token, &dry_run, Duration::from_secs(30)).await;
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

/// Rows in the file of every parsing and matching case.
const CASE_ROWS: usize = 10_000;
/// Donors the rows are spread over (each with a partner sharing their email and postcode).
const CASE_DONORS: usize = 700;

/// What a row must come to: its outcome's kind, and for an error the field named.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    CreateDonor,
    MatchDonor,
    Duplicate,
    Refund,
    Error(&'static str),
}

/// The file of every case and what each row and total must come to once missing funds are created.
struct Cases {
    csv: String,
    expected: Vec<Expected>,
    /// Lines whose fund is unknown until created.
    unknown_fund_lines: Vec<usize>,
    /// Money counted per donor key (`D<n>` or `P<n>`) and per fund code (`GEN`, `BELLS-APPEAL`).
    by_donor: HashMap<String, i64>,
    by_fund: HashMap<&'static str, i64>,
    /// Donors whose rows declare Gift Aid: one declaration each.
    declarations: i64,
}

/// Pence as a spreadsheet writes pounds: with thousands separators or without, with `£` or without.
fn pounds(pence: i64, style: u64) -> String {
    let (whole, part) = (pence / 100, pence % 100);
    let plain = whole.to_string();
    let grouped = {
        let digits: Vec<char> = plain.chars().collect();
        let mut out = String::new();
        for (i, c) in digits.iter().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(*c);
        }
        out
    };
    match style % 4 {
        0 => format!("£{grouped}.{part:02}"),
        1 => format!("{plain}.{part:02}"),
        2 => format!("{grouped}.{part:02}"),
        _ => format!("£{plain}.{part:02}"),
    }
}

/// A CSV field, quoted when it holds a comma.
fn field(value: &str) -> String {
    if value.contains([',', '"']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value.to_owned() }
}

fn cases() -> Cases {
    let mut csv = String::from(
        "Supporter ID,First Name,Surname,Email,Postcode,Gift Ref,Amount,Date,Fund,Notes,Gift Aid,Declaration Date,\
         Declaration Method\n",
    );
    let mut declared: HashSet<String> = HashSet::new();
    let mut expected = Vec::new();
    let mut unknown_fund_lines = Vec::new();
    let mut created: HashSet<String> = HashSet::new();
    // Gifts accepted so far: (reference, donor key, amount, fund), those not yet refunded.
    let mut accepted: Vec<(String, String, i64, Option<&'static str>)> = Vec::new();
    let mut refundable: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    let (mut by_donor, mut by_fund): (HashMap<String, i64>, HashMap<&'static str, i64>) = Default::default();
    let bad_emails = ["d@example,org", "d@exa_mple.org", "d@example..org", "d@-example.org", "d@example-.org"];
    for i in 0..CASE_ROWS {
        let line = i + 2;
        let r = mix(i + 1_000_000);
        let n = (r % CASE_DONORS as u64) as usize;
        let amount = 100 + ((r >> 12) % 300_000) as i64;
        let date = format!("{:02}/{:02}/2025", 1 + (r >> 40) % 28, 1 + (r >> 48) % 5);
        let email = format!("family{n}@example.org");
        let postcode = if n.is_multiple_of(2) { "LS1 4AP" } else { "SW1A 1AA" };
        let gift = |key: &str, created: &mut HashSet<String>| {
            if created.insert(key.to_owned()) { Expected::CreateDonor } else { Expected::MatchDonor }
        };
        // Every 20th row (kind 18) declares Gift Aid; half of kind 19 says yes without a date.
        let declaration: [&str; 3] = match i % 20 {
            18 => ["Yes", "01/04/2024", if (i / 20) % 2 == 0 { "Written" } else { "online" }],
            19 if (i / 20) % 2 == 0 => ["yes", "", "online"],
            _ => ["", "", ""],
        };
        let mut row = |cols: [&str; 10]| {
            let fields: Vec<String> = cols.iter().chain(&declaration).map(|c| field(c)).collect();
            csv.push_str(&fields.join(","));
            csv.push('\n');
        };
        let reference = format!("G{i}");
        let kind = i % 20;
        let (can_refund, can_repeat) = (!refundable.is_empty(), !accepted.is_empty());
        let money = pounds(amount, r >> 20);
        let mut accept =
            |key: String, fund: Option<&'static str>, expected: &mut Vec<Expected>, refundable_too: bool| {
                expected.push(gift(&key, &mut created));
                *by_donor.entry(key.clone()).or_default() += amount;
                if let Some(code) = fund {
                    *by_fund.entry(code).or_default() += amount;
                }
                if refundable_too {
                    refundable.push_back(accepted.len());
                }
                accepted.push((reference.clone(), key, amount, fund));
            };
        match kind {
            // The donor written differently: no id, names in other case and spacing, the email in capitals.
            10 => {
                let (first, last, mail) = (format!("  ANN{n} "), format!("de   SOUZA{n}"), email.to_uppercase());
                row(["", &first, &last, &mail, "", &reference, &money, &date, "", ""]);
                accept(format!("D{n}"), None, &mut expected, true);
            }
            // A refund by the pattern in the notes, in each negative notation.
            11 if can_refund => {
                let index = refundable.pop_front().unwrap();
                let (refunded, key, gift_amount, fund) = accepted[index].clone();
                let half = gift_amount / 2;
                let unsigned = pounds(half, r >> 20).trim_start_matches('£').to_owned();
                let written = match (r >> 30) % 5 {
                    0 => format!("-£{unsigned}"),
                    1 => format!("£-{unsigned}"),
                    2 => format!("-{unsigned}"),
                    3 => format!("({unsigned})"),
                    _ => format!("(£{unsigned})"),
                };
                let notes = format!("Refund of {refunded}");
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    "",
                    "",
                    "",
                    &written,
                    "01/06/2025",
                    "",
                    &notes,
                ]);
                expected.push(Expected::Refund);
                *by_donor.entry(key).or_default() -= half;
                if let Some(code) = fund {
                    *by_fund.entry(code).or_default() -= half;
                }
            }
            // An email that cannot be an address.
            12 => {
                let bad = bad_emails[(i / 20) % bad_emails.len()];
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    bad,
                    postcode,
                    &reference,
                    &money,
                    &date,
                    "",
                    "",
                ]);
                expected.push(Expected::Error("email"));
            }
            // The partner: the same surname, email and postcode, another first name: another donor.
            13 => {
                row([
                    "",
                    &format!("Bob{n}"),
                    &format!("De Souza{n}"),
                    &email,
                    postcode,
                    &reference,
                    &money,
                    &date,
                    "GEN",
                    "",
                ]);
                accept(format!("P{n}"), Some("GEN"), &mut expected, true);
            }
            // A gift already in the file.
            14 if can_repeat => {
                let (earlier, _, earlier_amount, _) = accepted[(r >> 8) as usize % accepted.len()].clone();
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    &email,
                    postcode,
                    &earlier,
                    &pounds(earlier_amount, 1),
                    &date,
                    "",
                    "",
                ]);
                expected.push(Expected::Duplicate);
            }
            // A fund no fund has: refused unless the import creates it.
            15 => {
                let fund = if (i / 20) % 2 == 0 { "Bells Appeal" } else { "  bells   APPEAL" };
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    &email,
                    postcode,
                    &reference,
                    &money,
                    &date,
                    fund,
                    "",
                ]);
                unknown_fund_lines.push(line);
                // Not refunded or repeated: without the fund the row is refused, and the runs differ only there.
                accept(format!("D{n}"), Some("BELLS-APPEAL"), &mut expected, false);
            }
            // A decimal comma: refused rather than read as a hundred times the gift.
            16 => {
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    &email,
                    postcode,
                    &reference,
                    "10,50",
                    &date,
                    "",
                    "",
                ]);
                expected.push(Expected::Error("amount"));
            }
            // A negative amount whose note names no gift.
            17 => {
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    &email,
                    postcode,
                    &reference,
                    "-5.00",
                    &date,
                    "",
                    "Chargeback",
                ]);
                expected.push(Expected::Error("amount"));
            }
            // A declaration without its date.
            19 if (i / 20) % 2 == 0 => {
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    &email,
                    postcode,
                    &reference,
                    &money,
                    &date,
                    "",
                    "",
                ]);
                expected.push(Expected::Error("gift_aid_declaration_date"));
            }
            // Gifts, to the general fund by code or by name, or to none.
            _ => {
                if kind == 18 {
                    declared.insert(format!("D{n}"));
                }
                let (written, fund) = match i % 3 {
                    0 => ("GEN", Some("GEN")),
                    1 => ("general  fund", Some("GEN")),
                    _ => ("", None),
                };
                row([
                    &format!("S{n}"),
                    &format!("Ann{n}"),
                    &format!("De Souza{n}"),
                    &email,
                    postcode,
                    &reference,
                    &money,
                    &date,
                    written,
                    "",
                ]);
                accept(format!("D{n}"), fund, &mut expected, true);
            }
        }
    }
    Cases { csv, expected, unknown_fund_lines, by_donor, by_fund, declarations: declared.len() as i64 }
}

/// Each row's outcome as the outcome file says it: (line, kind, field of an error).
fn outcome_kinds(outcomes: &str) -> Vec<(usize, Expected)> {
    csv::Reader::from_reader(outcomes.as_bytes())
        .records()
        .map(|record| {
            let record = record.unwrap();
            let line: usize = record[0].parse().unwrap();
            let text = &record[1];
            let kind = if text.starts_with("create donor") {
                Expected::CreateDonor
            } else if text.starts_with("match donor") {
                Expected::MatchDonor
            } else if text.starts_with("duplicate gift") {
                Expected::Duplicate
            } else if text.starts_with("refund gift") {
                Expected::Refund
            } else {
                let field =
                    text.strip_prefix("error: ").and_then(|t| t.split_once(':')).map(|(f, _)| f).unwrap_or(text);
                Expected::Error(match field {
                    "email" => "email",
                    "amount" => "amount",
                    "fund" => "fund",
                    "gift_aid_declaration_date" => "gift_aid_declaration_date",
                    other => panic!("line {line}: unexpected outcome {other:?}: {text}"),
                })
            };
            (line, kind)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10000_row_import_of_every_case_reports_each_row_exactly_and_rollups_totals_equal_the_accepted_rows() {
    let stack = Stack::start().await;
    let token = stack.admin_token().await;
    let base = format!("{}/api/fundraising", stack.gateway.base_url);
    let admin = stack.db.admin_client().await;
    let cases = cases();
    let started = Instant::now();
    let general: Value = stack
        .client
        .post(format!("{base}/v1/funds"))
        .bearer_auth(&token)
        .json(&json!({"code": "GEN", "name": "General Fund"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dry_run = |create: bool| {
        let (stack, token, base, csv) = (&stack, &token, &base, &cases.csv);
        async move {
            let response = stack
                .client
                .post(format!("{base}/v1/imports"))
                .bearer_auth(token)
                .json(&json!({"csv": csv, "source": "old_crm", "create_missing_funds": create,
                              "patterns": {"refund_of": {"column": "Notes", "pattern": "^Refund of (.+)$"}}}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let import: Value = response.json().await.unwrap();
            let outcomes = stack
                .client
                .get(format!("{base}{}", import["outcomes_href"].as_str().unwrap()))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            (import, outcome_kinds(&outcomes))
        }
    };

    // Without create_missing_funds every row naming the unknown fund is refused for it.
    let (_, refused) = dry_run(false).await;
    let fund_errors: Vec<usize> =
        refused.iter().filter(|(_, kind)| *kind == Expected::Error("fund")).map(|(line, _)| *line).collect();
    assert_eq!(fund_errors, cases.unknown_fund_lines);

    // With it, each row comes to exactly what it should.
    let (import, outcomes) = dry_run(true).await;
    assert_eq!(outcomes.len(), CASE_ROWS);
    for ((line, kind), expected) in outcomes.iter().zip(&cases.expected) {
        assert_eq!(kind, expected, "line {line}");
    }
    let count = |wanted: fn(&Expected) -> bool| cases.expected.iter().filter(|e| wanted(e)).count() as i64;
    assert_eq!(
        import["summary"],
        json!({"create_donor": count(|e| *e == Expected::CreateDonor), "match_donor": count(|e| *e == Expected::MatchDonor),
               "duplicate_gift": count(|e| *e == Expected::Duplicate), "refund": count(|e| *e == Expected::Refund),
               "error": count(|e| matches!(e, Expected::Error(_)))})
    );
    let id = import["id"].as_str().unwrap();
    let accepted =
        stack.client.post(format!("{base}/v1/imports/{id}/commit")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now: Value = stack
            .client
            .get(format!("{base}/v1/imports/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if now["status"] == "committed" {
            assert_eq!(now["summary"], import["summary"], "the commit did what the dry run said");
            break;
        }
        assert!(Instant::now() < deadline, "not committed: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Rollup follows on its own: its donor totals equal fundraising's rows, and both equal the accepted rows.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match disagreement(&admin).await {
            None => break,
            Some(why) if Instant::now() >= deadline => panic!("rollup did not catch up with the import: {why}"),
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let donor_sums: Vec<i64> = admin
        .query("SELECT lifetime_total FROM rollup.donor_totals ORDER BY lifetime_total", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut expected_sums: Vec<i64> = cases.by_donor.values().copied().collect();
    expected_sums.sort_unstable();
    assert_eq!(donor_sums, expected_sums, "one donor per donor key (partners apart), each with its accepted rows");
    let fund_totals: HashMap<String, i64> = admin
        .query("SELECT f.code, t.total FROM rollup.fund_totals t JOIN fundraising.funds f ON f.id = t.fund_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected_funds: HashMap<String, i64> = cases.by_fund.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
    assert_eq!(fund_totals, expected_funds, "fund totals are the accepted rows' allocations, refunds taken back");
    assert_eq!(general["code"], "GEN");
    let declarations: i64 = admin
        .query_one("SELECT count(DISTINCT donor_id) FROM fundraising.gift_aid_declarations", &[])
        .await
        .unwrap()
        .get(0);
    let all: i64 = admin.query_one("SELECT count(*) FROM fundraising.gift_aid_declarations", &[]).await.unwrap().get(0);
    assert_eq!((declarations, all), (cases.declarations, cases.declarations), "one declaration per declaring donor");
    eprintln!("10,000-row import: two dry runs, commit and rollup in {:?}", started.elapsed());
    stack.clean_up().await;
}

/// Commits a dry-run import (`base` is fundraising's API through the gateway) and waits until it is committed,
/// within `within`; the commit must write what the dry run said.
pub async fn commit_import(stack: &Stack, base: &str, token: &str, dry_run: &Value, within: Duration) {
    let id = dry_run["id"].as_str().unwrap();
    let accepted = stack.client.post(format!("{base}/v1/imports/{id}/commit")).bearer_auth(token).send().await.unwrap();
    assert_eq!(accepted.status(), 202);
    let deadline = Instant::now() + within;
    loop {
        let import: Value = stack
            .client
            .get(format!("{base}/v1/imports/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if import["status"] == "committed" {
            assert_eq!(import["summary"], dry_run["summary"], "the commit wrote what the dry run said");
            return;
        }
        assert_ne!(import["status"], "failed", "{import}");
        assert!(Instant::now() < deadline, "not committed: {import}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
