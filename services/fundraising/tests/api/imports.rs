//! Imports: the dry run reports every row's outcome and writes nothing but the import.

use crate::helpers::{TestApp, fields, problem, spawn_app, spawn_app_with_storage, spawn_app_with_storage_and};
use serde_json::{Value, json};

const CSV: &str = "Supporter ID,First Name,Surname,Email,Postcode,Gift Ref,Amount,Date,Refund Of\n\
D1,Ann,Smith,ann@example.org,SW1A 1AA,G1,25.00,2025-04-06,\n\
D1,Ann,Smith,ann@example.org,SW1A 1AA,G2,£10,07/04/2025,\n\
D1,Ann,Smith,ann@example.org,SW1A 1AA,G1,25.00,2025-04-06,\n\
D2,Bob,,bob@example.org,,G3,10,2025-04-06,\n\
D3,Cy,Jones,cy@example.org,,G4,ten,2025-04-06,\n\
,Old,Friend,old@example.org,,G5,5,2025-04-09,\n\
D1,Ann,Smith,,,G6,-5,2025-04-10,G2\n";

#[tokio::test]
async fn a_dry_run_reports_every_row_and_writes_nothing() {
    let app = spawn_app().await;
    let token = app.token();
    let existing =
        app.create_donor(&json!({"first_name": "Old", "last_name": "Friend", "email": "old@example.org"})).await;

    let response = app.post("/v1/imports", &token, &json!({"csv": CSV, "source": "legacy_crm"})).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let import: Value = response.json().await.unwrap();
    assert_eq!(import["status"], "dry_run");
    assert_eq!(import["rows_total"], 7);
    assert_eq!(
        import["summary"],
        json!({"create_donor": 1, "match_donor": 2, "duplicate_gift": 1, "refund": 1, "error": 2})
    );
    let outcomes = app.get(import["outcomes_href"].as_str().unwrap(), &token).await.text().await.unwrap();
    let lines: Vec<&str> = outcomes.lines().collect();
    assert_eq!(lines[0], "line,outcome");
    assert_eq!(lines[1], "2,create donor; create gift");
    assert!(
        lines[2].starts_with("3,match donor ") && lines[2].ends_with(" by external_id; create gift"),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with("4,duplicate gift "), "{}", lines[3]);
    assert_eq!(lines[4], "5,error: last_name: is required");
    assert_eq!(lines[5], "6,error: amount: must be an amount such as 25.00");
    assert_eq!(lines[6], format!("7,match donor {} by name_email; create gift", existing["id"].as_str().unwrap()));
    assert!(lines[7].starts_with("8,refund gift "), "{}", lines[7]);

    // Nothing written: the one donor that existed, no gifts.
    let donors: Value = app.get("/v1/donors", &token).await.json().await.unwrap();
    assert_eq!(donors["data"].as_array().unwrap().len(), 1);
    let gifts: Value = app.get("/v1/gifts", &token).await.json().await.unwrap();
    assert!(gifts["data"].as_array().unwrap().is_empty());

    let read: Value =
        app.get(&format!("/v1/imports/{}", import["id"].as_str().unwrap()), &token).await.json().await.unwrap();
    assert_eq!(read["summary"], import["summary"]);
    problem(
        app.get(&format!("/v1/imports/{}", import["id"].as_str().unwrap()), &app.token_for(uuid::Uuid::new_v4())).await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn bad_options_and_headers_are_named() {
    let app = spawn_app().await;
    let token = app.token();
    let bad = app
        .post(
            "/v1/imports",
            &token,
            &json!({"csv": CSV, "source": "Legacy CRM", "donor_match": ["email", "shoe"],
            "gift_match": "vibes"}),
        )
        .await;
    let mut named = fields(&problem(bad, 422, "validation_failed").await);
    named.sort();
    assert_eq!(named, ["donor_match[1]", "gift_match", "source"]);
    let headers =
        app.post("/v1/imports", &token, &json!({"csv": "Name,Amount\nAnn,5\n", "source": "legacy_crm"})).await;
    let body = problem(headers, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["csv", "csv"], "{body}");
    // A mapping makes an unrecognised header count.
    let mapped = app
        .post(
            "/v1/imports",
            &token,
            &json!({"csv": "Name,Amount,When\nAnn,5,2025-01-01\n", "source": "legacy_crm",
            "mapping": {"Name": "last_name", "When": "gift_date"}}),
        )
        .await;
    assert_eq!(mapped.status(), 201);
    assert_eq!(mapped.json::<Value>().await.unwrap()["summary"]["create_donor"], 1);
}

/// Each parsing and matching rule, row by row: refunds in every notation a UK spreadsheet writes, emails that
/// cannot be addresses, names differing in case and whitespace, a couple sharing an email, refunds found by the
/// mapping's pattern in the notes.
const RULES_CSV: &str = "Supporter ID,First Name,Surname,Email,Postcode,Gift Ref,Amount,Date,Notes\n\
D1,Maria,De  Souza,maria@example.org,SW1A 1AA,TX-1,\"£1,234.56\",2025-04-01,\n\
,maria, de souza ,MARIA@example.org,,TX-2,100.00,2025-04-02,\n\
,MARIA,DE SOUZA,,sw1a1aa,TX-3,100,2025-04-03,\n\
,Ann,Smith,smiths@example.org,LS1 4AP,TX-4,50.00,2025-04-04,\n\
,Bob,Smith,smiths@example.org,LS1 4AP,TX-5,50.00,2025-04-04,\n\
D1,Maria,De Souza,,,R-1,-£10.00,2025-04-05,Refund of TX-1\n\
D1,Maria,De Souza,,,R-2,£-10.00,2025-04-05,Refund of TX-2\n\
D1,Maria,De Souza,,,R-3,-10.00,2025-04-05,Refund of TX-3\n\
D1,Maria,De Souza,,,R-4,(10.00),2025-04-06,Refund of TX-1\n\
D1,Maria,De Souza,,,R-5,\"(1,000.00)\",2025-04-07,Refund of TX-1\n\
D1,Maria,De Souza,,,R-6,\"-£1,000.00\",2025-04-08,Refund of TX-1\n\
D1,Maria,De Souza,,,R-7,-5.00,2025-04-07,Refund of TX-99\n\
D1,Maria,De Souza,,,R-8,-5.00,2025-04-07,Chargeback\n\
,Cy,Jones,\"cy@example,org\",,TX-6,5,2025-04-08,\n\
,Cy,Jones,cy@exa_mple.org,,TX-7,5,2025-04-08,\n\
,Cy,Jones,cy@example..org,,TX-8,5,2025-04-08,\n\
,Cy,Jones,cy@-example.org,,TX-9,5,2025-04-08,\n\
,Cy,Jones,cy@example-.org,,TX-10,5,2025-04-08,\n\
,Cy,Jones,.cy@example.org,,TX-11,5,2025-04-08,\n\
,Cy,Jones,cy@example.org,,TX-12,10,50,2025-04-08,\n\
,Cy,Jones,cy@example.org,,TX-13,\"10,50\",2025-04-08,\n";

#[tokio::test]
async fn each_parsing_and_matching_rule_decides_its_rows() {
    let app = spawn_app().await;
    let token = app.token();
    let response = app
        .post(
            "/v1/imports",
            &token,
            &json!({"csv": RULES_CSV, "source": "legacy_crm",
                    "patterns": {"refund_of": {"column": "Notes", "pattern": "Refund of (.+)"}}}),
        )
        .await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let import: Value = response.json().await.unwrap();
    assert_eq!(import["options"]["patterns"], json!({"refund_of": {"column": "Notes", "pattern": "Refund of (.+)"}}));
    assert_eq!(import["options"]["donor_match"], json!(["external_id", "name_email", "name_postcode"]));
    let outcomes = app.get(import["outcomes_href"].as_str().unwrap(), &token).await.text().await.unwrap();
    let lines: Vec<String> = csv::Reader::from_reader(outcomes.as_bytes())
        .records()
        .map(|r| r.unwrap().get(1).unwrap().to_owned())
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let maria = lines[0];
    assert_eq!(maria, "create donor; create gift");
    // Names trimmed, whitespace collapsed, case folded; postcodes without spaces or case.
    assert!(lines[1].starts_with("match donor ") && lines[1].ends_with(" by name_email; create gift"), "{}", lines[1]);
    assert!(lines[2].ends_with(" by name_postcode; create gift"), "{}", lines[2]);
    let maria_id = lines[1].split(' ').nth(2).unwrap();
    assert!(lines[2].contains(maria_id), "the same Maria: {outcomes}");
    // A couple sharing an email are two donors.
    assert_eq!(lines[3], "create donor; create gift");
    assert_eq!(lines[4], "create donor; create gift", "Bob is not Ann");
    // Refunds in each notation, found by the pattern in the notes.
    for (i, line) in lines[5..10].iter().enumerate() {
        assert!(line.starts_with("refund gift "), "row {}: {line}", i + 7);
    }
    assert!(
        lines[10].starts_with("error: amount: must be at most ") && lines[10].contains("214.56"),
        "£1,234.56 less £10 + £10 + £1,000 refunded leaves £214.56: {}",
        lines[10]
    );
    assert_eq!(lines[11], "error: refund_of: no gift with reference \"TX-99\" in the file before this row or recorded");
    assert_eq!(lines[12], "error: amount: is negative: a refund names the gift it refunds (refund_of)");
    // Emails that cannot be addresses.
    assert_eq!(lines[13], "error: email: must not contain a comma (one address per field)");
    assert_eq!(lines[14], "error: email: must have only letters, digits, '-' and '.' in its domain");
    assert!(
        lines[15].starts_with("error: email: must have a domain such as example.org, without an empty part"),
        "{}",
        lines[15]
    );
    assert_eq!(lines[16], "error: email: must not have a domain part that starts or ends with '-'");
    assert_eq!(lines[17], "error: email: must not have a domain part that starts or ends with '-'");
    assert_eq!(lines[18], "error: email: must not start or end with '.', or have '..', before '@'");
    // An unquoted decimal comma shifts the columns; a quoted one is refused, never read as £1,050.
    assert!(lines[19].starts_with("error: "), "{}", lines[19]);
    assert_eq!(lines[20], "error: amount: must group thousands by three (1,234.56); decimals follow a '.'");
    assert_eq!(
        import["summary"],
        json!({"create_donor": 3, "match_donor": 2, "duplicate_gift": 0, "refund": 5, "error": 11})
    );

    // Committed: the amounts as parsed, the refunds as negative entries of the gifts they name.
    let id = import["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/v1/imports/{id}/commit"), &token, &json!({})).await.status(), 202);
    let committed = wait_committed(&app, id).await;
    assert_eq!(committed["summary"], import["summary"]);
    let admin = app.db.admin_client().await;
    let sum = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        sum("SELECT sum(amount_minor)::bigint FROM fundraising.gifts WHERE refund_of IS NULL").await,
        123_456 + 20_000 + 10_000
    );
    assert_eq!(
        sum("SELECT sum(amount_minor)::bigint FROM fundraising.gifts WHERE refund_of IS NOT NULL").await,
        -(1000 * 4 + 100_000)
    );
    assert_eq!(sum("SELECT count(*) FROM fundraising.donors WHERE last_name = 'Smith'").await, 2);
}

#[tokio::test]
async fn a_refund_pattern_that_is_no_regular_expression_or_has_no_group_is_named() {
    let app = spawn_app().await;
    let token = app.token();
    for (pattern, message) in [
        ("Refund of (.+", "is not a valid regular expression: "),
        ("Refund of .+", "must have a capture group around what it takes, e.g. Refund of (.+)"),
    ] {
        let body = problem(
            app.post(
                "/v1/imports",
                &token,
                &json!({"csv": CSV, "source": "legacy_crm",
                        "patterns": {"refund_of": {"column": "Notes", "pattern": pattern}}}),
            )
            .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(fields(&body), ["patterns.refund_of.pattern"], "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().starts_with(message), "{body}");
    }
    // Unknown members are refused, and a column the file lacks is a header problem.
    let body = problem(
        app.post(
            "/v1/imports",
            &token,
            &json!({"csv": CSV, "source": "legacy_crm",
                  "patterns": {"refund_of": {"column": "Notes", "pattern": "(.+)", "flags": "i"}}}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["patterns.refund_of.flags"], "{body}");
    let body = problem(
        app.post(
            "/v1/imports",
            &token,
            &json!({"csv": CSV, "source": "legacy_crm",
                  "patterns": {"refund_of": {"column": "Notes", "pattern": "Refund of (.+)"}}}),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&body), ["csv"], "{body}");
    assert!(body.to_string().contains("patterns.refund_of names the column \\\"Notes\\\""), "{body}");
}

#[tokio::test]
async fn the_fund_column_allocates_each_gift_by_fund_code_or_name_and_creates_missing_funds_only_when_asked() {
    let app = spawn_app().await;
    let token = app.token();
    let general = app.create_fund("GEN").await;
    let csv = "Supporter ID,Surname,Gift Ref,Amount,Date,Fund\n\
               D1,Smith,G1,25.00,2025-04-06,GEN\n\
               D1,Smith,G2,10.00,2025-04-07,gen\n\
               D2,Jones,G3,12.00,2025-04-07,Church Bells\n\
               D2,Jones,G4,8.00,2025-04-08,church  bells\n\
               D2,Jones,G5,1.00,2025-04-08,\n";
    let dry_run = |create: bool| {
        let app = &app;
        let token = &token;
        async move {
            let body = json!({"csv": csv, "source": "legacy_crm", "create_missing_funds": create});
            let import: Value = app.post("/v1/imports", token, &body).await.json().await.unwrap();
            let outcomes = app.get(import["outcomes_href"].as_str().unwrap(), token).await.text().await.unwrap();
            (import, outcomes)
        }
    };
    let (refused, outcomes) = dry_run(false).await;
    assert_eq!(refused["summary"]["error"], 2, "{outcomes}");
    assert!(
        outcomes.contains(
            "4,\"error: fund: no fund has the code or name \"\"Church Bells\"\" (the import's create_missing_funds creates it)\""
        ),
        "{outcomes}"
    );
    let (import, outcomes) = dry_run(true).await;
    assert_eq!(import["summary"]["error"], 0, "{outcomes}");
    assert_eq!(import["options"]["create_missing_funds"], true);
    let id = import["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/v1/imports/{id}/commit"), &token, &json!({})).await.status(), 202);
    let committed = wait_committed(&app, id).await;
    assert_eq!(committed["summary"], import["summary"]);

    let admin = app.db.admin_client().await;
    let allocated: Vec<(String, i64)> = admin
        .query(
            "SELECT f.code, sum(a.amount_minor)::bigint FROM fundraising.gift_allocations a
             JOIN fundraising.funds f ON f.id = a.fund_id GROUP BY f.code ORDER BY f.code",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(allocated, [("CHURCH-BELLS".to_owned(), 2000), ("GEN".to_owned(), 3500)]);
    let general_allocated: i64 = admin
        .query_one(
            "SELECT count(*) FROM fundraising.gift_allocations WHERE fund_id = $1",
            &[&general.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(general_allocated, 2);
    // The new fund is published once, as the API publishes a fund; the gifts carry their allocations.
    assert_eq!(
        admin
            .query_one("SELECT count(*) FROM fundraising.outbox WHERE event_type = 'fundraising.fund.upserted.v1'", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2,
        "GEN through the API, Church Bells by the import"
    );
    let event: Value = admin
        .query_one(
            "SELECT payload::jsonb FROM fundraising.outbox WHERE event_type = 'fundraising.gift.batch_upserted.v1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let with_allocations = event["payload"]["gifts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["allocations"].as_array().is_some_and(|a| a.len() == 1))
        .count();
    assert_eq!(with_allocations, 4);
}

#[tokio::test]
async fn declaration_columns_create_each_donors_gift_aid_declaration_once() {
    let app = spawn_app().await;
    let token = app.token();
    let csv = "Supporter ID,Surname,Gift Ref,Amount,Date,Gift Aid,Declaration Date,Declaration Method\n\
               D1,Smith,G1,25.00,2025-04-06,Yes,01/04/2024,Written\n\
               D1,Smith,G2,10.00,2025-04-07,yes,01/04/2024,written\n\
               D2,Jones,G3,12.00,2025-04-07,Y,2025-01-02,online\n\
               D3,Brown,G4,8.00,2025-04-08,No,,\n\
               D4,Green,G5,8.00,2025-04-08,yes,,online\n\
               D5,White,G6,8.00,2025-04-08,yes,2025-01-02,oral\n";
    let import: Value =
        app.post("/v1/imports", &token, &json!({"csv": csv, "source": "legacy_crm"})).await.json().await.unwrap();
    let outcomes = app.get(import["outcomes_href"].as_str().unwrap(), &token).await.text().await.unwrap();
    assert!(
        outcomes.contains("6,error: gift_aid_declaration_date: is required when gift_aid_declaration is yes"),
        "{outcomes}"
    );
    assert!(outcomes.contains("7,error: gift_aid_declaration_method: an oral declaration"), "{outcomes}");
    let id = import["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/v1/imports/{id}/commit"), &token, &json!({})).await.status(), 202);
    wait_committed(&app, id).await;
    let admin = app.db.admin_client().await;
    let declarations: Vec<(String, String, chrono::NaiveDate, chrono::NaiveDate, String)> = admin
        .query(
            "SELECT d.last_name, g.method, g.declared_on, g.start_date, g.declaration_text
             FROM fundraising.gift_aid_declarations g JOIN fundraising.donors d ON d.id = g.donor_id
             ORDER BY d.last_name",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let day = |s: &str| s.parse::<chrono::NaiveDate>().unwrap();
    assert_eq!(
        declarations,
        [
            (
                "Jones".to_owned(),
                "online".to_owned(),
                day("2025-01-02"),
                day("2025-01-02"),
                "Imported from legacy_crm: the donor's online Gift Aid declaration of 2025-01-02, as recorded there."
                    .to_owned()
            ),
            (
                "Smith".to_owned(),
                "written".to_owned(),
                day("2024-04-01"),
                day("2024-04-01"),
                "Imported from legacy_crm: the donor's written Gift Aid declaration of 2024-04-01, as recorded there."
                    .to_owned()
            ),
        ],
        "once per donor, covering from its date"
    );
    // Imported gifts are now claimable without retyping a declaration: the API's eligibility sees it.
    let gift = admin
        .query_one("SELECT id::text FROM fundraising.gifts WHERE external_reference = 'G1'", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    let eligibility: Value = app.get(&format!("/v1/gifts/{gift}/gift-aid"), &token).await.json().await.unwrap();
    assert_eq!(eligibility["eligible"], false, "the donor has no address yet: {eligibility}");
    assert!(!eligibility["reasons"].as_array().unwrap().iter().any(|r| r["code"] == "no_declaration"), "{eligibility}");
    // Importing the file again makes none: the declarations on file cover their dates.
    let again: Value =
        app.post("/v1/imports", &token, &json!({"csv": csv, "source": "legacy_crm"})).await.json().await.unwrap();
    let id = again["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/v1/imports/{id}/commit"), &token, &json!({})).await.status(), 202);
    wait_committed(&app, id).await;
    let count: i64 =
        admin.query_one("SELECT count(*) FROM fundraising.gift_aid_declarations", &[]).await.unwrap().get(0);
    assert_eq!(count, 2);
}

/// How many entities the outbox's events of `event_type` carry in their payload's `field` array.
async fn carried(admin: &tokio_postgres::Client, event_type: &str, field: &str) -> i64 {
    admin
        .query_one(
            "SELECT COALESCE(sum(json_array_length(payload->'payload'->$2)), 0)::bigint FROM fundraising.outbox
             WHERE event_type = $1",
            &[&event_type, &field],
        )
        .await
        .unwrap()
        .get(0)
}

async fn wait_committed(app: &TestApp, id: &str) -> Value {
    wait_committed_as(app, id, &app.token()).await
}

async fn wait_committed_as(app: &TestApp, id: &str, token: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let import: Value = app.get(&format!("/v1/imports/{id}"), token).await.json().await.unwrap();
        if import["status"] == "committed" {
            return import;
        }
        assert!(std::time::Instant::now() < deadline, "not committed in time: {import}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_commit_writes_exactly_the_good_rows_with_their_events_and_a_rerun_adds_nothing() {
    let app = spawn_app().await;
    let token = app.token();
    app.create_donor(&json!({"first_name": "Old", "last_name": "Friend", "email": "old@example.org"})).await;
    let import: Value =
        app.post("/v1/imports", &token, &json!({"csv": CSV, "source": "legacy_crm"})).await.json().await.unwrap();
    let id = import["id"].as_str().unwrap().to_owned();
    let reported = app.get(&format!("/v1/imports/{id}/outcomes"), &token).await.text().await.unwrap();
    let accepted = app.post(&format!("/v1/imports/{id}/commit"), &token, &json!({})).await;
    assert_eq!(accepted.status(), 202);
    let committed = wait_committed(&app, &id).await;
    assert_eq!((committed["rows_done"].as_i64(), committed["rows_total"].as_i64()), (Some(7), Some(7)));
    assert_eq!(committed["summary"], import["summary"], "the commit did what the dry run said");
    let written = app.get(&format!("/v1/imports/{id}/outcomes"), &token).await.text().await.unwrap();
    assert_eq!(written, reported, "row by row, ids included");
    problem(app.post(&format!("/v1/imports/{id}/commit"), &token, &json!({})).await, 409, "conflict").await;

    // Two donors now (Ann created, Old Friend matched), three gifts and a refund of G2 (£5 of £10).
    let admin = app.db.admin_client().await;
    let count = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM fundraising.donors").await, 2);
    assert_eq!(
        count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NULL AND source = 'legacy_crm'").await,
        3
    );
    assert_eq!(
        count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NOT NULL AND amount_minor = -500").await,
        1
    );
    assert_eq!(count("SELECT count(*) FROM fundraising.donor_external_ids WHERE source = 'legacy_crm'").await, 1);
    // The chunk's donor travels in one event, its gifts and refund entry in another.
    assert_eq!(
        carried(&admin, "fundraising.gift.batch_upserted.v1", "gifts").await,
        4,
        "every new gift and the refund entry in the chunk's event"
    );
    assert_eq!(
        carried(&admin, "fundraising.donor.batch_upserted.v1", "donors").await,
        1,
        "the new donor in a chunk event"
    );
    assert_eq!(
        count("SELECT count(*) FROM fundraising.outbox WHERE event_type = 'fundraising.gift.upserted.v1'").await,
        0,
        "nothing one by one"
    );
    let outcomes = app.get(&format!("/v1/imports/{id}/outcomes"), &token).await.text().await.unwrap();
    assert!(outcomes.lines().nth(7).unwrap().starts_with("8,refund gift "), "{outcomes}");

    // Run the same import again from its start (as a resume after a crash would decide it): nothing new.
    admin
        .batch_execute(&format!(
            "UPDATE fundraising.imports SET status = 'committing', rows_done = 0 WHERE id = '{id}';
             INSERT INTO fundraising.pending_imports (import_id, tenant_id) SELECT id, tenant_id FROM fundraising.imports WHERE id = '{id}';"
        ))
        .await
        .unwrap();
    let again = wait_committed(&app, &id).await;
    assert_eq!(count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NULL").await, 3);
    assert_eq!(count("SELECT count(*) FROM fundraising.donors").await, 2);
    assert_eq!(count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NOT NULL").await, 1, "the refund too");
    assert_eq!(again["summary"]["create_donor"], 0);
    assert_eq!(again["summary"]["duplicate_gift"], 5);
}

#[tokio::test]
async fn a_commit_that_fails_after_its_first_chunk_resumes_along_its_write_order_and_writes_each_row_once() {
    let app = spawn_app().await;
    let token = app.token();
    // More rows than a chunk, 300 donors taking turns, so the write order (grouped by donor) differs from the
    // file's; the last row refunds the first gift.
    let rows = fundraising::importer::CHUNK_ROWS + 700;
    let mut csv = String::from("Supporter ID,Surname,Gift Ref,Amount,Date,Refund Of\n");
    for n in 0..rows {
        csv.push_str(&format!("D{},Donor{},G{n},{}.00,2025-04-06,\n", n % 300, n % 300, 1 + n % 50));
    }
    csv.push_str("D0,Donor0,,1.00,2025-04-07,G0\n");
    let import: Value =
        app.post("/v1/imports", &token, &json!({"csv": csv, "source": "legacy_crm"})).await.json().await.unwrap();
    let id = import["id"].as_str().unwrap().to_owned();
    assert_eq!(
        import["summary"],
        json!({"create_donor": 300, "match_donor": rows - 300, "duplicate_gift": 0,
        "refund": 1, "error": 0})
    );
    let reported = app.get(&format!("/v1/imports/{id}/outcomes"), &token).await.text().await.unwrap();

    // The second chunk's transaction fails once, as a crash would end it: the first chunk stays committed.
    let admin = app.db.admin_client().await;
    admin
        .batch_execute(&format!(
            "CREATE SEQUENCE fundraising.fail_once;
             GRANT ALL ON SEQUENCE fundraising.fail_once TO PUBLIC;
             CREATE FUNCTION fundraising.fail_second_chunk() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.rows_done > {chunk} THEN
                     IF nextval('fundraising.fail_once') = 1 THEN
                         RAISE EXCEPTION 'the second chunk fails';
                     END IF;
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER fail_second_chunk BEFORE UPDATE OF rows_done ON fundraising.imports
                 FOR EACH ROW EXECUTE FUNCTION fundraising.fail_second_chunk();",
            chunk = fundraising::importer::CHUNK_ROWS
        ))
        .await
        .unwrap();
    assert_eq!(app.post(&format!("/v1/imports/{id}/commit"), &token, &json!({})).await.status(), 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !admin.query_one("SELECT is_called FROM fundraising.fail_once", &[]).await.unwrap().get::<_, bool>(0) {
        assert!(std::time::Instant::now() < deadline, "the second chunk never ran");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let stopped: Value = app.get(&format!("/v1/imports/{id}"), &token).await.json().await.unwrap();
    assert_eq!(
        (stopped["status"].as_str(), stopped["rows_done"].as_i64()),
        (Some("committing"), Some(fundraising::importer::CHUNK_ROWS as i64))
    );
    let gifts_then: i64 = admin.query_one("SELECT count(*) FROM fundraising.gifts", &[]).await.unwrap().get(0);
    assert!(gifts_then > 0 && gifts_then < rows as i64, "only the first chunk: {gifts_then}");

    // The lease runs out (now, rather than in 2 minutes) and the importer resumes.
    admin
        .execute("UPDATE fundraising.pending_imports SET leased_until = now() - interval '1 second'", &[])
        .await
        .unwrap();
    let committed = wait_committed(&app, &id).await;
    assert_eq!(committed["rows_done"].as_i64(), Some(rows as i64 + 1));
    assert_eq!(committed["summary"], import["summary"]);
    let written = app.get(&format!("/v1/imports/{id}/outcomes"), &token).await.text().await.unwrap();
    assert_eq!(written, reported, "row by row, ids included");
    let count = |sql: &'static str| {
        let admin = &admin;
        async move { admin.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("SELECT count(*) FROM fundraising.donors").await, 300);
    assert_eq!(count("SELECT count(*) FROM fundraising.known_tenants").await, 1, "the tenant is known, once");
    assert_eq!(count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NULL").await, rows as i64);
    assert_eq!(count("SELECT count(*) FROM fundraising.gifts WHERE refund_of IS NOT NULL").await, 1);
    assert_eq!(
        carried(&admin, "fundraising.donor.batch_upserted.v1", "donors").await,
        300,
        "each donor published once"
    );
}

/// Only the import route takes bodies past the service's limit (64 KiB in tests), and only up to 10 MiB.
#[tokio::test]
async fn an_import_may_be_larger_than_other_bodies_but_not_over_10_mib() {
    let app = spawn_app().await;
    let token = app.token();
    let send = |path: &'static str, body: String| {
        let request = app.client.post(app.url(path)).bearer_auth(&token).header("content-type", "application/json");
        async move { request.body(body).send().await.expect("request sent") }
    };
    // 1 MiB reaches the import, which reads it all: its header names no field it knows.
    let import = json!({"csv": "x".repeat(1024 * 1024), "source": "legacy_crm"}).to_string();
    let body = problem(send("/v1/imports", import.clone()).await, 422, "validation_failed").await;
    let named = fields(&body);
    assert!(!named.is_empty() && named.iter().all(|field| field == "csv"), "{body}");
    // The same size anywhere else is over the service's limit.
    problem(send("/v1/donors", import).await, 413, "payload_too_large").await;
    // Just over 10 MiB is over the import's.
    let too_big = json!({"csv": "x".repeat(10 * 1024 * 1024), "source": "legacy_crm"}).to_string();
    problem(send("/v1/imports", too_big).await, 413, "payload_too_large").await;
}

/// An import's outcome file with every id replaced by `<id>`: two imports of one file differ only in the ids
/// they give new donors and gifts.
fn without_ids(outcomes: &str) -> String {
    let uuid = regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    uuid.replace_all(outcomes, "<id>").into_owned()
}

/// Dry-runs `request` as `token`, commits it and waits; the dry run, its outcomes, the commit and its outcomes.
async fn dry_run_and_commit(app: &TestApp, token: &str, request: Value) -> (Value, String, Value, String) {
    let response = app.post("/v1/imports", token, &request).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let dry_run: Value = response.json().await.unwrap();
    let id = dry_run["id"].as_str().unwrap().to_owned();
    let reported = app.get(&format!("/v1/imports/{id}/outcomes"), token).await.text().await.unwrap();
    assert_eq!(app.post(&format!("/v1/imports/{id}/commit"), token, &json!({})).await.status(), 202);
    let committed = wait_committed_as(app, &id, token).await;
    let written = app.get(&format!("/v1/imports/{id}/outcomes"), token).await.text().await.unwrap();
    (dry_run, without_ids(&reported), committed, without_ids(&written))
}

/// What a tenant holds after an import: donors, gifts, refund entries.
async fn holdings(admin: &tokio_postgres::Client, tenant: uuid::Uuid) -> (i64, i64, i64) {
    let row = admin
        .query_one(
            "SELECT (SELECT count(*) FROM fundraising.donors WHERE tenant_id = $1),
                    (SELECT count(*) FROM fundraising.gifts WHERE tenant_id = $1 AND refund_of IS NULL),
                    (SELECT count(*) FROM fundraising.gifts WHERE tenant_id = $1 AND refund_of IS NOT NULL)",
            &[&tenant],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test]
async fn an_import_of_a_csv_uploaded_to_storage_does_exactly_what_the_same_csv_in_the_body_does() {
    let app = spawn_app_with_storage().await;
    // Two tenants alike (an "Old Friend" each): one imports the file in the body, the other uploads it first.
    let (body_tenant, object_tenant) = (app.tenant_id, uuid::Uuid::new_v4());
    let (body_token, object_token) = (app.token(), app.files_token_for(object_tenant));
    for token in [&body_token, &object_token] {
        let old = app
            .post("/v1/donors", token, &json!({"first_name": "Old", "last_name": "Friend", "email": "old@example.org"}))
            .await;
        assert_eq!(old.status(), 201);
    }

    let (body_dry_run, body_reported, body_committed, body_written) =
        dry_run_and_commit(&app, &body_token, json!({"csv": CSV, "source": "legacy_crm"})).await;
    let object = app.upload(&object_token, "legacy.csv", "text/csv", CSV.as_bytes()).await;
    let object_id = object["id"].as_str().unwrap();
    let (dry_run, reported, committed, written) =
        dry_run_and_commit(&app, &object_token, json!({"object_id": object_id, "source": "legacy_crm"})).await;

    assert_eq!(dry_run["object_id"], object_id);
    assert_eq!(body_dry_run["object_id"], Value::Null);
    assert_eq!(dry_run["rows_total"], 7);
    assert_eq!(dry_run["summary"], body_dry_run["summary"]);
    assert_eq!(
        dry_run["summary"],
        json!({"create_donor": 1, "match_donor": 2, "duplicate_gift": 1, "refund": 1, "error": 2})
    );
    assert_eq!(reported, body_reported, "row by row");
    assert_eq!(committed["summary"], dry_run["summary"], "the commit did what the dry run said");
    assert_eq!(committed["summary"], body_committed["summary"]);
    assert_eq!(written, body_written);
    let admin = app.db.admin_client().await;
    assert_eq!(holdings(&admin, object_tenant).await, (2, 3, 1));
    assert_eq!(holdings(&admin, object_tenant).await, holdings(&admin, body_tenant).await);
    // The import keeps its own copy of the file, for the commit (which runs without the caller's token).
    let kept: Vec<u8> = admin
        .query_one(
            "SELECT content FROM fundraising.imports WHERE id = $1",
            &[&uuid::Uuid::parse_str(dry_run["id"].as_str().unwrap()).unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, CSV.as_bytes());
}

#[tokio::test]
async fn an_object_id_must_name_a_completed_utf8_csv_of_the_callers_tenant() {
    let app = spawn_app_with_storage_and(|settings| settings.storage.max_import_bytes = 2048).await;
    let token = app.files_token();
    let import = |object_id: &str| json!({"object_id": object_id, "source": "legacy_crm"});
    let named = |body: Value| fields(&body);

    // Unknown, another tenant's, or no id at all: the import's 422, naming object_id.
    let unknown = problem(
        app.post("/v1/imports", &token, &import(&uuid::Uuid::new_v4().to_string())).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(named(unknown.clone()), ["object_id"]);
    assert!(unknown["detail"].as_str().unwrap().contains("no such object"), "{unknown}");
    let other = app.files_token_for(uuid::Uuid::new_v4());
    let theirs = app.upload(&other, "theirs.csv", "text/csv", CSV.as_bytes()).await;
    let refused = app.post("/v1/imports", &token, &import(theirs["id"].as_str().unwrap())).await;
    assert_eq!(named(problem(refused, 422, "validation_failed").await), ["object_id"]);
    let refused = app.post("/v1/imports", &token, &import("not-an-id")).await;
    assert_eq!(named(problem(refused, 422, "validation_failed").await), ["object_id"]);
    let both =
        app.post("/v1/imports", &token, &json!({"csv": CSV, "object_id": theirs["id"], "source": "legacy_crm"})).await;
    assert_eq!(named(problem(both, 422, "validation_failed").await), ["object_id"]);
    let neither = app.post("/v1/imports", &token, &json!({"source": "legacy_crm"})).await;
    assert_eq!(named(problem(neither, 422, "validation_failed").await), ["csv"]);

    // An upload not completed (its file never sent): 409 upload_missing, naming object_id.
    let pending = app.start_upload(&token, "later.csv", "text/csv", CSV.len()).await;
    let refused = app.post("/v1/imports", &token, &import(pending["object"]["id"].as_str().unwrap())).await;
    let body = problem(refused, 409, "upload_missing").await;
    assert_eq!(named(body), ["object_id"]);

    // Not a CSV, not UTF-8 past the bytes storage checked, or larger than the import reads.
    let json_file = app.upload(&token, "data.json", "application/json", b"{\"rows\": []}").await;
    let refused = app.post("/v1/imports", &token, &import(json_file["id"].as_str().unwrap())).await;
    let body = problem(refused, 422, "validation_failed").await;
    assert!(body["detail"].as_str().unwrap().contains("application/json"), "{body}");
    // storage checks the first 512 bytes are text; the Latin-1 byte comes after them.
    let mut latin1 = format!("{CSV}{}", "D1,Ann,Smith,,,,1,2025-04-06,\n".repeat(10)).into_bytes();
    latin1.extend_from_slice(b"D9,Ren\xe9,Dupont,,,G9,5,2025-04-06,\n");
    let latin1 = app.upload(&token, "latin1.csv", "text/csv", &latin1).await;
    let body = problem(
        app.post("/v1/imports", &token, &import(latin1["id"].as_str().unwrap())).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("UTF-8"), "{body}");
    let large = format!("{CSV}{}", "D1,Ann,Smith,,,,1,2025-04-06,\n".repeat(80));
    let large = app.upload(&token, "large.csv", "text/csv", large.as_bytes()).await;
    let body = problem(
        app.post("/v1/imports", &token, &import(large["id"].as_str().unwrap())).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("2048 bytes"), "{body}");

    // A token without storage:read: told it needs it. Nothing was imported by any of this.
    let mine = app.upload(&token, "mine.csv", "text/csv", CSV.as_bytes()).await;
    let refused =
        problem(app.post("/v1/imports", &app.token(), &import(mine["id"].as_str().unwrap())).await, 403, "forbidden")
            .await;
    assert!(refused["detail"].as_str().unwrap().contains("storage:read"), "{refused}");
    let admin = app.db.admin_client().await;
    let imports: i64 = admin.query_one("SELECT count(*) FROM fundraising.imports", &[]).await.unwrap().get(0);
    assert_eq!(imports, 0);
}

#[tokio::test]
async fn an_object_id_while_storage_is_unreachable_is_a_503() {
    let app = spawn_app().await;
    let refused = app
        .post("/v1/imports", &app.files_token(), &json!({"object_id": uuid::Uuid::new_v4(), "source": "legacy_crm"}))
        .await;
    problem(refused, 503, "service_unavailable").await;
}

#[tokio::test]
async fn imports_are_listed_newest_first_by_status_a_page_at_a_time_and_only_the_tenants_own() {
    let app = spawn_app().await;
    let token = app.token();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let import: Value =
            app.post("/v1/imports", &token, &json!({"csv": CSV, "source": "legacy_crm"})).await.json().await.unwrap();
        ids.push(import["id"].as_str().unwrap().to_owned());
    }
    let committed = &ids[0];
    assert_eq!(app.post(&format!("/v1/imports/{committed}/commit"), &token, &json!({})).await.status(), 202);
    wait_committed(&app, committed).await;

    // Newest first, two to a page; the cursor gives the rest.
    let first: Value = app.get("/v1/imports?limit=2", &token).await.json().await.unwrap();
    let listed: Vec<&str> = first["data"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);
    assert_eq!(first["data"][0]["rows_total"], 7);
    assert_eq!(first["data"][0]["outcomes_href"], format!("/v1/imports/{}/outcomes", ids[2]));
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest: Value = app.get(&format!("/v1/imports?limit=2&cursor={cursor}"), &token).await.json().await.unwrap();
    let listed: Vec<&str> = rest["data"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [committed.as_str()]);
    assert!(rest["next_cursor"].is_null(), "{rest}");

    // By status.
    let done: Value = app.get("/v1/imports?status=committed", &token).await.json().await.unwrap();
    let listed: Vec<&str> = done["data"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(listed, [committed.as_str()]);
    assert_eq!(done["data"][0]["rows_done"], 7);
    let dry: Value = app.get("/v1/imports?status=%20dry_run%20", &token).await.json().await.unwrap();
    assert_eq!(dry["data"].as_array().unwrap().len(), 2);

    // A status that is none, or a bad page, is named.
    let body = problem(app.get("/v1/imports?status=done", &token).await, 422, "validation_failed").await;
    assert_eq!(fields(&body), ["status"]);
    let body = problem(app.get("/v1/imports?limit=0&cursor=nope", &token).await, 422, "validation_failed").await;
    let mut named = fields(&body);
    named.sort_unstable();
    assert_eq!(named, ["cursor", "limit"]);

    // Another tenant has none; a token without fundraising:read may not look.
    let other: Value = app.get("/v1/imports", &app.token_for(uuid::Uuid::new_v4())).await.json().await.unwrap();
    assert!(other["data"].as_array().unwrap().is_empty(), "{other}");
    let no_scope = app.issuer.token(app.tenant_id, &["storage:read"]);
    problem(app.get("/v1/imports", &no_scope).await, 403, "forbidden").await;
}
