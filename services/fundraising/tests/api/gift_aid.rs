//! Gift Aid declarations and each eligibility rule, through the API.

use crate::helpers::{TestApp, fields, problem, spawn_app, spawn_app_with_storage};
use chrono::{Datelike, Days, NaiveDate, Utc};
use futures::StreamExt;
use serde_json::{Value, json};

pub const TEXT: &str = "I want to Gift Aid my donation and any donations I make in the future or have made in the past \
    4 years. I am a UK taxpayer and understand that if I pay less Income Tax and/or Capital Gains Tax than the amount \
    of Gift Aid claimed on all my donations in that tax year it is my responsibility to pay any difference.";

pub fn days_ago(n: u64) -> String {
    (Utc::now().date_naive() - Days::new(n)).to_string()
}

pub async fn uk_donor(app: &TestApp) -> String {
    let donor = app
        .create_donor(&json!({"first_name": "Ann", "last_name": "Giver",
            "address": {"line1": "12 High Street", "town": "Leeds", "postcode": "ls1 4ap"}}))
        .await;
    donor["id"].as_str().unwrap().to_owned()
}

pub async fn gift(app: &TestApp, donor: &str, extra: Value) -> String {
    let mut body = json!({"donor_id": donor, "amount_minor": 1000, "currency": "GBP", "gift_date": days_ago(60)});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = app.post("/v1/gifts", &app.token(), &body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

pub async fn declare(app: &TestApp, donor: &str, body: Value) -> Value {
    let response = app.post(&format!("/v1/donors/{donor}/gift-aid-declarations"), &app.token(), &body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn eligibility(app: &TestApp, gift: &str) -> Value {
    let response = app.get(&format!("/v1/gifts/{gift}/gift-aid"), &app.token()).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn codes(eligibility: &Value) -> Vec<String> {
    eligibility["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_covered_gift_is_eligible_and_each_rule_refuses_with_its_reason() {
    let app = spawn_app().await;
    let donor = uk_donor(&app).await;
    let covered = gift(&app, &donor, json!({})).await;
    assert_eq!(codes(&eligibility(&app, &covered).await), ["no_declaration"]);

    let declaration =
        declare(&app, &donor, json!({"method": "online", "declaration_text": TEXT, "start_date": days_ago(365 * 4)}))
            .await;
    assert_eq!(declaration["state"], "active");
    let e = eligibility(&app, &covered).await;
    assert_eq!(e["eligible"], true, "{e}");
    assert_eq!((e["claimable_amount_minor"].as_i64(), e["gift_aid_minor"].as_i64()), (Some(1000), Some(250)));
    assert_eq!(e["declaration_id"], declaration["id"]);

    // Each gift-side rule, alone.
    let cases = [
        (json!({"source": "justgiving"}), "agent_claims_gift_aid"),
        (json!({"currency": "EUR"}), "not_gbp"),
        (json!({"status": "pending"}), "not_succeeded"),
        (json!({"gift_date": days_ago(365 * 4 + 10)}), "no_declaration"),
    ];
    for (extra, code) in cases {
        let id = gift(&app, &donor, extra.clone()).await;
        // A gift from before the declaration's start may also be past the 4-year limit, on some days of the year.
        let found = codes(&eligibility(&app, &id).await);
        assert_eq!(found.first().map(String::as_str), Some(code), "{extra}: {found:?}");
        assert!(found.iter().all(|c| c == code || c == "out_of_time"), "{extra}: {found:?}");
    }
    // Refunds: a partial one lowers the claim, a full one ends it; the refund entry itself is not a donation.
    let partly = gift(&app, &donor, json!({})).await;
    let refund = app
        .post(&format!("/v1/gifts/{partly}/refunds"), &app.token(), &json!({"amount_minor": 400, "date": days_ago(30)}))
        .await;
    assert_eq!(refund.status(), 201);
    let refund_id = refund.json::<Value>().await.unwrap()["refund"]["id"].as_str().unwrap().to_owned();
    assert_eq!(eligibility(&app, &partly).await["claimable_amount_minor"], 600);
    assert!(codes(&eligibility(&app, &refund_id).await).contains(&"refund_entry".to_owned()));
    let full = gift(&app, &donor, json!({})).await;
    app.post(&format!("/v1/gifts/{full}/refunds"), &app.token(), &json!({"amount_minor": 1000, "date": days_ago(30)}))
        .await;
    assert_eq!(codes(&eligibility(&app, &full).await), ["fully_refunded"]);

    // Ending the declaration before the gift's date takes it out.
    let ended = app
        .patch(
            &format!("/v1/gift-aid-declarations/{}", declaration["id"].as_str().unwrap()),
            &app.token(),
            &json!({"end_date": days_ago(61), "end_reason": "donor_request"}),
        )
        .await;
    assert_eq!(ended.status(), 200);
    let ended: Value = ended.json().await.unwrap();
    assert_eq!((ended["state"].as_str(), ended["revision"].as_i64()), (Some("ended"), Some(2)));
    assert_eq!(codes(&eligibility(&app, &covered).await), ["no_declaration"]);
}

#[tokio::test]
async fn the_donor_needs_an_address_with_a_house_a_uk_postcode_or_x_and_a_first_name() {
    let app = spawn_app().await;
    // A donor living abroad who pays UK tax can be claimed for (HMRC's schedule shows X for the postcode).
    let abroad = app
        .create_donor(&json!({"first_name": "Amélie", "last_name": "Abroad",
            "address": {"line1": "1 Rue de Rivoli", "postcode": "75001", "country": "FR"}}))
        .await;
    let abroad_no_house = app
        .create_donor(&json!({"first_name": "Ann", "last_name": "Abroad",
            "address": {"town": "Paris", "postcode": "75001", "country": "FR"}}))
        .await;
    let no_house = app
        .create_donor(&json!({"first_name": "Ann", "last_name": "Nohouse", "address": {"postcode": "LS1 4AP"}}))
        .await;
    let nothing = app.create_donor(&json!({"first_name": "Ann", "last_name": "Nothing"})).await;
    // No first name, or none left once written in Latin letters: excluded, never an empty cell.
    let no_first_name = app
        .create_donor(&json!({"last_name": "Nofirst", "address": {"line1": "2 Low Road", "postcode": "M1 1AE"}}))
        .await;
    let unwritable_first_name = app
        .create_donor(
            &json!({"first_name": "李", "last_name": "Li", "address": {"line1": "3 Low Road", "postcode": "M1 1AE"}}),
        )
        .await;
    for (donor, expected) in [
        (&abroad, vec![]),
        (&abroad_no_house, vec!["no_house_name_or_number"]),
        (&no_house, vec!["no_house_name_or_number"]),
        (&nothing, vec!["no_uk_address"]),
        (&no_first_name, vec!["no_first_name"]),
        (&unwritable_first_name, vec!["no_first_name"]),
    ] {
        let id = donor["id"].as_str().unwrap();
        declare(&app, id, json!({"method": "written", "declaration_text": TEXT, "start_date": days_ago(365)})).await;
        let g = gift(&app, id, json!({})).await;
        assert_eq!(codes(&eligibility(&app, &g).await), expected, "{donor}");
    }
}

#[tokio::test]
async fn oral_declarations_count_after_their_record_and_thirty_days() {
    let app = spawn_app().await;
    let donor = uk_donor(&app).await;
    let g = gift(&app, &donor, json!({})).await;
    let oral = declare(
        &app,
        &donor,
        json!({"method": "oral", "declaration_text": TEXT, "declared_on": days_ago(90), "start_date": days_ago(90)}),
    )
    .await;
    assert_eq!(oral["state"], "awaiting_confirmation");
    assert_eq!(codes(&eligibility(&app, &g).await), ["oral_declaration_not_confirmed"]);
    let path = format!("/v1/gift-aid-declarations/{}", oral["id"].as_str().unwrap());

    let sent = app.patch(&path, &app.token(), &json!({"confirmation_sent_on": days_ago(10)})).await;
    let sent: Value = sent.json().await.unwrap();
    assert_eq!(sent["state"], "in_cancellation_window");
    let closes = Utc::now().date_naive() - Days::new(10) + Days::new(30);
    assert_eq!(sent["cancellation_window_ends"], closes.to_string());
    assert_eq!(codes(&eligibility(&app, &g).await), ["in_cancellation_window"]);

    // Sent 31 days ago: the window has closed and the gift can be claimed.
    app.patch(&path, &app.token(), &json!({"confirmation_sent_on": days_ago(31)})).await;
    assert_eq!(eligibility(&app, &g).await["eligible"], true);

    // A cancellation must fall inside the window, and voids the declaration from the start.
    let late = app.patch(&path, &app.token(), &json!({"cancelled_on": days_ago(0)})).await;
    assert_eq!(fields(&problem(late, 422, "validation_failed").await), ["cancelled_on"]);
    let cancelled = app.patch(&path, &app.token(), &json!({"cancelled_on": days_ago(20)})).await;
    assert_eq!(cancelled.json::<Value>().await.unwrap()["state"], "cancelled");
    assert_eq!(codes(&eligibility(&app, &g).await), ["no_declaration"]);
}

#[tokio::test]
async fn declarations_are_validated_settings_change_the_agents_and_tenants_stay_apart() {
    let app = spawn_app().await;
    let donor = uk_donor(&app).await;
    let path = format!("/v1/donors/{donor}/gift-aid-declarations");
    let bad = app
        .post(
            &path,
            &app.token(),
            &json!({"method": "fax", "declared_on": days_ago(0), "start_date": days_ago(365 * 5),
            "end_date": "not a date"}),
        )
        .await;
    let mut named = fields(&problem(bad, 422, "validation_failed").await);
    named.sort();
    assert_eq!(named, ["declaration_text", "end_date", "method", "start_date"]);
    let written_with_confirmation = app
        .post(
            &path,
            &app.token(),
            &json!({"method": "written", "declaration_text": TEXT, "confirmation_sent_on": days_ago(0)}),
        )
        .await;
    assert_eq!(fields(&problem(written_with_confirmation, 422, "validation_failed").await), ["confirmation_sent_on"]);
    let ghost = format!("/v1/donors/{}/gift-aid-declarations", uuid::Uuid::now_v7());
    problem(
        app.post(&ghost, &app.token(), &json!({"method": "online", "declaration_text": TEXT})).await,
        404,
        "not_found",
    )
    .await;

    // Settings: the charity's own list of platforms that claim for themselves.
    declare(&app, &donor, json!({"method": "online", "declaration_text": TEXT, "start_date": days_ago(365)})).await;
    let via_justgiving = gift(&app, &donor, json!({"source": "justgiving"})).await;
    let via_enthuse = gift(&app, &donor, json!({"source": "enthuse"})).await;
    assert_eq!(eligibility(&app, &via_enthuse).await["eligible"], true);
    let response = app
        .client
        .put(app.url("/v1/gift-aid/settings"))
        .bearer_auth(app.token())
        .json(&json!({"agent_sources": ["Enthuse", "enthuse"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"agent_sources": ["enthuse"], "aggregate_up_to_minor": 2000,
            "accounting_period_end": {"month": 3, "day": 31}})
    );
    assert_eq!(eligibility(&app, &via_justgiving).await["eligible"], true);
    let not_json = app
        .client
        .put(app.url("/v1/gift-aid/settings"))
        .bearer_auth(app.token())
        .header("content-type", "text/plain")
        .body("agent_sources=enthuse")
        .send()
        .await
        .unwrap();
    problem(not_json, 415, "unsupported_media_type").await;
    assert_eq!(codes(&eligibility(&app, &via_enthuse).await), ["agent_claims_gift_aid"]);

    // Another tenant sees none of it.
    let declarations: Value = app.get(&path, &app.token()).await.json().await.unwrap();
    let id = declarations["data"][0]["id"].as_str().unwrap().to_owned();
    let other = app.token_for(uuid::Uuid::new_v4());
    problem(app.get(&format!("/v1/gift-aid-declarations/{id}"), &other).await, 404, "not_found").await;
    problem(app.get(&path, &other).await, 404, "not_found").await;
    problem(app.get(&format!("/v1/gifts/{via_enthuse}/gift-aid"), &other).await, 404, "not_found").await;
}

pub async fn post_claim(app: &TestApp, up_to: &str) -> Value {
    let response = app.post("/v1/gift-aid/claims", &app.token(), &json!({"up_to": up_to})).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_claim_gathers_eligible_gifts_once_and_follows_review_submission_and_hmrcs_answer() {
    let app = spawn_app().await;
    let token = app.token();
    let donor = uk_donor(&app).await;
    declare(&app, &donor, json!({"method": "online", "declaration_text": TEXT, "start_date": days_ago(365 * 2)})).await;
    let undeclared = app
        .create_donor(&json!({"last_name": "Nodecl", "address": {"line1": "3 Low Road", "postcode": "M1 1AE"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = gift(&app, &donor, json!({"gift_date": days_ago(100), "amount_minor": 2000})).await;
    let second = gift(&app, &donor, json!({"gift_date": days_ago(50), "amount_minor": 1000})).await;
    let _later = gift(&app, &donor, json!({"gift_date": days_ago(5)})).await;
    let _no_declaration = gift(&app, &undeclared, json!({"gift_date": days_ago(40)})).await;
    let _agent = gift(&app, &donor, json!({"gift_date": days_ago(40), "source": "justgiving"})).await;

    let claim = post_claim(&app, &days_ago(30)).await;
    assert_eq!((claim["status"].as_str(), claim["gifts"].as_i64()), (Some("draft"), Some(2)), "{claim}");
    assert_eq!((claim["amount_minor"].as_i64(), claim["gift_aid_minor"].as_i64()), (Some(3000), Some(750)));
    assert_eq!(claim["exclusions"], 2);
    let claim_path = format!("/v1/gift-aid/claims/{}", claim["id"].as_str().unwrap());
    let exclusions: Value = app.get(&format!("{claim_path}/exclusions"), &token).await.json().await.unwrap();
    let mut codes: Vec<&str> =
        exclusions["data"].as_array().unwrap().iter().map(|x| x["reasons"][0]["code"].as_str().unwrap()).collect();
    codes.sort();
    assert_eq!(codes, ["agent_claims_gift_aid", "no_declaration"]);

    // A second claim cannot take them, and each says where it is.
    let again = post_claim(&app, &days_ago(30)).await;
    assert_eq!(again["gifts"], 0);
    assert_eq!(eligibility(&app, &first).await["reasons"][0]["code"], "already_claimed");
    let again_path = format!("/v1/gift-aid/claims/{}", again["id"].as_str().unwrap());
    problem(app.post(&format!("{again_path}/submit"), &token, &json!({})).await, 409, "conflict").await;
    assert_eq!(app.delete(&again_path, &token).await.status(), 204);

    // Review: take one out of the draft; it is eligible again.
    assert_eq!(app.delete(&format!("{claim_path}/gifts/{second}"), &token).await.status(), 204);
    assert_eq!(eligibility(&app, &second).await["eligible"], true);
    let gifts: Value = app.get(&format!("{claim_path}/gifts"), &token).await.json().await.unwrap();
    assert_eq!(gifts["data"].as_array().unwrap().len(), 1);
    assert_eq!(gifts["data"][0]["gift_id"], first.as_str());

    // Submitted: nothing changes any more.
    let submitted: Value = app
        .post(&format!("{claim_path}/submit"), &token, &json!({"hmrc_reference": "CHARITY-2025-1"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((submitted["status"].as_str(), submitted["revision"].as_i64()), (Some("submitted"), Some(2)));
    problem(app.delete(&format!("{claim_path}/gifts/{first}"), &token).await, 409, "conflict").await;
    problem(app.delete(&claim_path, &token).await, 409, "conflict").await;
    assert_eq!(post_claim(&app, &days_ago(30)).await["gifts"], 1, "only the removed gift is left to claim");

    // HMRC's answer: a gift that is not in the claim is named; a rejected one goes back to the pool.
    let stranger = app
        .post(
            &format!("{claim_path}/outcome"),
            &token,
            &json!({"answered_on": days_ago(1),
            "rejected": [{"gift_id": second, "reason": "x"}]}),
        )
        .await;
    assert_eq!(fields(&problem(stranger, 422, "validation_failed").await), ["rejected[0].gift_id"]);
    let answered: Value = app
        .post(
            &format!("{claim_path}/outcome"),
            &token,
            &json!({"answered_on": days_ago(1),
            "rejected": [{"gift_id": first, "reason": "declaration not found by HMRC"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((answered["status"].as_str(), answered["rejected"].as_i64()), (Some("partly_rejected"), Some(1)));
    assert_eq!(answered["gifts"], 0);
    assert_eq!(eligibility(&app, &first).await["eligible"], true);
    problem(
        app.post(&format!("{claim_path}/outcome"), &token, &json!({"answered_on": days_ago(0)})).await,
        409,
        "conflict",
    )
    .await;

    // Another tenant sees no claim.
    problem(app.get(&claim_path, &app.token_for(uuid::Uuid::new_v4())).await, 404, "not_found").await;
}

#[tokio::test]
async fn concurrent_claims_never_take_the_same_gift() {
    let app = spawn_app().await;
    let donor = uk_donor(&app).await;
    declare(&app, &donor, json!({"method": "written", "declaration_text": TEXT, "start_date": days_ago(365)})).await;
    for n in 0..30 {
        gift(&app, &donor, json!({"gift_date": days_ago(40 + n)})).await;
    }
    let up_to = days_ago(1);
    let claims = futures::future::join_all((0..4).map(|_| post_claim(&app, &up_to))).await;
    let total: i64 = claims.iter().map(|c| c["gifts"].as_i64().unwrap()).sum();
    assert_eq!(total, 30, "every gift in exactly one claim: {claims:?}");
    let admin = app.db.admin_client().await;
    let doubled: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT gift_id FROM fundraising.gift_aid_claim_gifts GROUP BY gift_id \
             HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(doubled, 0);
}

#[tokio::test]
async fn a_claim_exports_hmrcs_schedule_as_csv_and_ods_and_keeps_every_file() {
    let app = spawn_app_with_storage().await;
    // The files are kept in storage: exporting them needs storage:write, downloading them storage:read.
    let token = app.files_token();
    let donor = app
        .create_donor(&json!({"title": "Mrs.", "first_name": "Zoë", "last_name": "O'Neill",
            "address": {"line1": "Rose Cottage, Mill Lane", "postcode": "ls14ap"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    declare(&app, &donor, json!({"method": "online", "declaration_text": TEXT, "start_date": days_ago(365)})).await;
    gift(&app, &donor, json!({"gift_date": days_ago(60), "amount_minor": 5000})).await;
    for n in 0..3 {
        gift(&app, &donor, json!({"gift_date": days_ago(50 - n), "amount_minor": 1000})).await;
    }
    let claim = post_claim(&app, &days_ago(1)).await;
    let claim_path = format!("/v1/gift-aid/claims/{}", claim["id"].as_str().unwrap());

    // A small sponsored-event gift is never aggregated: its own row, marked "Yes".
    let sponsored_claim = {
        let sponsored = gift(
            &app,
            &donor,
            json!({"gift_date": days_ago(40), "amount_minor": 500,
                                                 "sponsored_event": true}),
        )
        .await;
        let read: Value = app.get(&format!("/v1/gifts/{sponsored}"), &token).await.json().await.unwrap();
        assert_eq!(read["sponsored_event"], true);
        post_claim(&app, &days_ago(1)).await
    };
    let path = format!("/v1/gift-aid/claims/{}/exports", sponsored_claim["id"].as_str().unwrap());
    let files: Value = app.post(&path, &token, &json!({"format": "csv"})).await.json().await.unwrap();
    let csv = app.get(files["data"][0]["href"].as_str().unwrap(), &token).await.text().await.unwrap();
    assert_eq!(
        csv.lines().nth(1).unwrap(),
        format!("Mrs,Zoe,O'Neill,Rose Cottage,LS1 4AP,,Yes,{},5.00", hmrc_date(40))
    );

    let exported = app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "csv"})).await;
    assert_eq!(exported.status(), 201);
    let files: Value = exported.json().await.unwrap();
    let file = &files["data"][0];
    assert_eq!((file["part"].as_i64(), file["parts"].as_i64(), file["rows"].as_i64()), (Some(1), Some(1), Some(2)));
    // Downloaded from storage (the redirect followed): its type as storage keeps it.
    let response = app.get(file["href"].as_str().unwrap(), &token).await;
    assert_eq!(response.headers()["content-type"], "text/csv");
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[1], format!("Mrs,Zoe,O'Neill,Rose Cottage,LS1 4AP,,,{},50.00", hmrc_date(60)));
    assert_eq!(lines[2], format!(",,,,,Small donations: 3 gifts,,{},30.00", hmrc_date(48)));

    let exported = app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "ods"})).await;
    let files: Value = exported.json().await.unwrap();
    let response = app.get(files["data"][0]["href"].as_str().unwrap(), &token).await;
    assert_eq!(response.headers()["content-type"], "application/vnd.oasis.opendocument.spreadsheet");
    let ods = response.bytes().await.unwrap();
    assert_eq!(&ods[..2], b"PK");
    assert_eq!(&ods[30..38], b"mimetype");
    // LibreOffice opens it and finds HMRC's layout: the earliest donation date in D13, the donations from row 25
    // numbered from 1 in column B, and in C to K the same cells as the CSV export.
    let sheet = libreoffice_rows(&ods).await;
    assert_eq!(cell(&sheet, 13, 'D'), hmrc_date(60));
    for (i, line) in lines[1..].iter().enumerate() {
        let row = 25 + i;
        assert_eq!(cell(&sheet, row, 'B'), (i + 1).to_string());
        let cells: Vec<String> = ('C'..='K').map(|column| cell(&sheet, row, column)).collect();
        assert_eq!(cells.join(","), *line, "row {row}");
    }
    assert_eq!(cell(&sheet, 25 + lines.len() - 1, 'B'), "", "nothing after the last donation");

    // A claim gathered before claims kept their donors is exported from the donors as they are now, by the same
    // rules.
    let admin = app.db.admin_client().await;
    let forgotten = admin
        .execute(
            "UPDATE fundraising.gift_aid_claim_gifts SET donor_title = NULL, donor_first_name = NULL, \
             donor_last_name = NULL, donor_house = NULL, donor_postcode = NULL WHERE claim_id = $1",
            &[&uuid::Uuid::parse_str(claim["id"].as_str().unwrap()).unwrap()],
        )
        .await
        .unwrap();
    assert_eq!(forgotten, 4);
    let files: Value =
        app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "csv"})).await.json().await.unwrap();
    let again = app.get(files["data"][0]["href"].as_str().unwrap(), &token).await.text().await.unwrap();
    assert_eq!(again, csv);

    // Every export is kept; the draft they came from can no longer be discarded.
    let all: Value = app.get(&format!("{claim_path}/files"), &token).await.json().await.unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 3);
    problem(app.delete(&claim_path, &token).await, 409, "conflict").await;
    let bad = app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "xlsx"})).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["format"]);
}

/// Converts an ODS to CSV with the real LibreOffice (`soffice --headless --convert-to csv`), as a user would open
/// it (cells as shown), and returns the first sheet's rows.
async fn libreoffice_rows(ods: &[u8]) -> Vec<Vec<String>> {
    let soffice = almoner_testkit::required_env("ALMONER_TEST_SOFFICE_BIN");
    let dir = std::env::temp_dir().join(format!("almoner-ods-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("schedule.ods"), ods).unwrap();
    // A profile of its own, so parallel tests and a user's LibreOffice do not share one.
    let profile = format!("-env:UserInstallation=file://{}", dir.join("profile").display());
    let output = tokio::process::Command::new(&soffice)
        .args([
            profile.as_str(),
            "--headless",
            "--convert-to",
            "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true",
            "--outdir",
        ])
        .arg(&dir)
        .arg(dir.join("schedule.ods"))
        .output()
        .await
        .expect("soffice runs");
    let csv = std::fs::read_to_string(dir.join("schedule.csv"))
        .unwrap_or_else(|e| panic!("soffice wrote no CSV ({e}): {}", String::from_utf8_lossy(&output.stderr)));
    let _ = std::fs::remove_dir_all(&dir);
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv.as_bytes())
        .records()
        .map(|record| record.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// The cell at a spreadsheet address (row from 1, column letter), empty when LibreOffice wrote nothing there.
fn cell(sheet: &[Vec<String>], row: usize, column: char) -> String {
    let column = usize::from(column as u8 - b'A');
    sheet.get(row - 1).and_then(|r| r.get(column)).cloned().unwrap_or_default()
}

fn hmrc_date(days: u64) -> String {
    (Utc::now().date_naive() - Days::new(days)).format("%d/%m/%y").to_string()
}

/// Publishes identity's tenant settings event as identity would.
async fn publish_tenant_settings(app: &TestApp, tenant_id: uuid::Uuid, payload: Value) -> uuid::Uuid {
    publish_tenant_settings_as(app, uuid::Uuid::new_v4(), tenant_id, payload).await
}

/// [`publish_tenant_settings`] with the event id given (a redelivery).
async fn publish_tenant_settings_as(
    app: &TestApp,
    id: uuid::Uuid,
    tenant_id: uuid::Uuid,
    payload: Value,
) -> uuid::Uuid {
    let publisher = almoner_bus::Publisher::connect(&app.amqp, "fundraising tests").await.expect("publisher connects");
    let envelope = almoner_events::Envelope {
        id,
        event_type: "identity.tenant.updated.v1".to_owned(),
        occurred_at: Utc::now(),
        tenant_id,
        producer: "identity".to_owned(),
        traceparent: None,
        payload,
    };
    publisher.publish(&almoner_bus::OutgoingMessage::from_envelope(&envelope, None).unwrap()).await.expect("published");
    envelope.id
}

fn tenant_settings(tenant_id: uuid::Uuid, revision: i64, fiscal_year_start_month: u8, end: Option<NaiveDate>) -> Value {
    let mut payload = json!({"tenant_id": tenant_id, "revision": revision, "name": "Test Charity",
        "fiscal_year_start_month": fiscal_year_start_month, "updated_at": Utc::now()});
    if let Some(end) = end {
        payload["accounting_period_end"] = json!({"month": end.month(), "day": end.day()});
    }
    payload
}

/// Waits until fundraising has handled the event.
async fn wait_handled(app: &TestApp, event_id: uuid::Uuid) {
    let admin = app.db.admin_client().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let handled: i64 = admin
            .query_one(
                "SELECT count(*) FROM fundraising.processed_events \
                 WHERE consumer = 'fundraising.tenant_settings' AND event_id = $1",
                &[&event_id],
            )
            .await
            .unwrap()
            .get(0);
        if handled == 1 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "event {event_id} not handled");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn period_end(app: &TestApp) -> Value {
    let settings: Value = app.get("/v1/gift-aid/settings", &app.token()).await.json().await.unwrap();
    settings["accounting_period_end"].clone()
}

#[tokio::test]
async fn gifts_past_four_years_from_their_accounting_period_end_are_out_of_time_as_identity_sets_it() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive();
    // Unknown to fundraising until identity says: fiscal year from April, the period ends 31 March.
    assert_eq!(period_end(&app).await, json!({"month": 3, "day": 31}));
    let donor = uk_donor(&app).await;
    declare(
        &app,
        &donor,
        json!({"method": "written", "declaration_text": TEXT, "declared_on": days_ago(365 * 6),
            "start_date": days_ago(365 * 6)}),
    )
    .await;
    // Five years ago: whatever the period end, it ended less than a year later, more than 4 years ago.
    let old = gift(&app, &donor, json!({"gift_date": days_ago(365 * 5)})).await;
    let e = eligibility(&app, &old).await;
    assert_eq!(codes(&e), ["out_of_time"]);
    assert!(e["reasons"][0]["detail"].as_str().unwrap().contains("4 years"), "{e}");

    // 4 years and 60 days ago: in time if its period ended 90 days after it, not if 30 days after.
    let given = today - Days::new(365 * 4 + 60);
    let borderline = gift(&app, &donor, json!({"gift_date": given.to_string()})).await;
    let (late_end, early_end) = (given + Days::new(90), given + Days::new(30));
    let newer =
        publish_tenant_settings(&app, app.tenant_id, tenant_settings(app.tenant_id, 5, 4, Some(late_end))).await;
    wait_handled(&app, newer).await;
    assert_eq!(period_end(&app).await, json!({"month": late_end.month(), "day": late_end.day()}));
    assert_eq!(eligibility(&app, &borderline).await["eligible"], true);

    // An older revision, the same revision again, and the same event delivered again (even carrying a newer
    // revision: its id was handled) change nothing.
    let older =
        publish_tenant_settings(&app, app.tenant_id, tenant_settings(app.tenant_id, 4, 4, Some(early_end))).await;
    wait_handled(&app, older).await;
    let same_revision =
        publish_tenant_settings(&app, app.tenant_id, tenant_settings(app.tenant_id, 5, 4, Some(early_end))).await;
    wait_handled(&app, same_revision).await;
    publish_tenant_settings_as(&app, newer, app.tenant_id, tenant_settings(app.tenant_id, 10, 4, Some(early_end)))
        .await;
    // Handlers run concurrently: once an event published after it is handled, and a moment more, the redelivery
    // has been too (a change from it would show below).
    let after = publish_tenant_settings(&app, app.tenant_id, tenant_settings(app.tenant_id, 5, 4, None)).await;
    wait_handled(&app, after).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(period_end(&app).await, json!({"month": late_end.month(), "day": late_end.day()}));

    let newest =
        publish_tenant_settings(&app, app.tenant_id, tenant_settings(app.tenant_id, 6, 4, Some(early_end))).await;
    wait_handled(&app, newest).await;
    assert_eq!(codes(&eligibility(&app, &borderline).await), ["out_of_time"]);
    // A claim leaves out-of-time gifts out, with the reason.
    let claim = post_claim(&app, &days_ago(1)).await;
    assert_eq!((claim["gifts"].as_i64(), claim["exclusions"].as_i64()), (Some(0), Some(2)), "{claim}");
    let exclusions: Value = app
        .get(&format!("/v1/gift-aid/claims/{}/exclusions", claim["id"].as_str().unwrap()), &app.token())
        .await
        .json()
        .await
        .unwrap();
    for exclusion in exclusions["data"].as_array().unwrap() {
        assert_eq!(exclusion["reasons"][0]["code"], "out_of_time", "{exclusion}");
    }

    // An event from before the setting existed: the day before the fiscal year starts (January: 31 December).
    let legacy = publish_tenant_settings(&app, app.tenant_id, tenant_settings(app.tenant_id, 7, 1, None)).await;
    wait_handled(&app, legacy).await;
    assert_eq!(period_end(&app).await, json!({"month": 12, "day": 31}));

    // What cannot be applied is dead-lettered: another tenant in the payload than the envelope's, a day that does
    // not exist; the settings stay.
    publish_tenant_settings(&app, app.tenant_id, tenant_settings(uuid::Uuid::new_v4(), 8, 4, None)).await;
    let mut impossible = tenant_settings(app.tenant_id, 9, 4, None);
    impossible["accounting_period_end"] = json!({"month": 2, "day": 30});
    publish_tenant_settings(&app, app.tenant_id, impossible).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let dead = almoner_bus::dead_letters::count(&app.amqp, "fundraising.tenant_settings").await.unwrap();
        if dead >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {dead} dead letters");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(period_end(&app).await, json!({"month": 12, "day": 31}));
    // Each tenant keeps its own.
    let other: Value =
        app.get("/v1/gift-aid/settings", &app.token_for(uuid::Uuid::new_v4())).await.json().await.unwrap();
    assert_eq!(other["accounting_period_end"], json!({"month": 3, "day": 31}));
}

/// HMRC's own checks of a schedule cell (`hmrc/charities-claims-validation`, GiftAidValidationService): what its
/// validator would say of each donation row it reads, or `Ok`.
struct HmrcRules {
    title: regex::Regex,
    postcode: regex::Regex,
    item: regex::Regex,
    latin1: regex::Regex,
    amount: regex::Regex,
}

impl HmrcRules {
    fn new() -> Self {
        Self {
            title: regex::Regex::new(r"^[A-Za-z][A-Za-z'-]{1,3}$").unwrap(),
            // HMRC's pattern, matched whole (Java's `matches`).
            postcode: regex::Regex::new(
                r"^(?:(GIR 0AA)|((([A-Z][0-9][0-9]?)|(([A-Z][A-HJ-Y][0-9][0-9]?)|(([A-Z][0-9][A-Z])|([A-Z][A-HJ-Y][0-9]?[A-Z])))) [0-9][A-Z]{2}))$",
            )
            .unwrap(),
            item: regex::Regex::new(r"^[1-9][0-9]{0,3}$").unwrap(),
            // What HMRC keeps of a cell: anything else it deletes.
            latin1: regex::Regex::new(r"^[\x20-\x7E\xA1-\xFF]*$").unwrap(),
            amount: regex::Regex::new(r"^[0-9]+\.[0-9]{2}$").unwrap(),
        }
    }

    /// Every rule HMRC applies to donation row `row` (B to K) of a sheet.
    fn check_row(&self, sheet: &[Vec<String>], row: usize, expected_item: usize) {
        let at = |column| cell(sheet, row, column);
        for column in 'B'..='K' {
            assert!(self.latin1.is_match(&at(column)), "{column}{row} {:?} has characters HMRC deletes", at(column));
        }
        assert!(self.item.is_match(&at('B')), "B{row} {:?}", at('B'));
        assert_eq!(at('B').parse::<usize>().unwrap(), expected_item, "B{row}: items numbered from 1");
        let date = NaiveDate::parse_from_str(&at('J'), "%d/%m/%y").unwrap_or_else(|_| panic!("J{row} {:?}", at('J')));
        assert!(date <= Utc::now().date_naive(), "J{row} in the future");
        assert!(self.amount.is_match(&at('K')), "K{row} {:?}: 2 decimals", at('K'));
        let pence: i64 = at('K').replace('.', "").parse().unwrap();
        assert!(pence >= 1, "K{row}");
        if at('H').is_empty() {
            let title = at('C');
            assert!(title.is_empty() || self.title.is_match(&title), "C{row} {title:?}");
            for (column, max) in [('D', 35), ('E', 35), ('F', 40)] {
                let value = at(column);
                assert!(!value.is_empty() && value.chars().count() <= max, "{column}{row} {value:?}");
            }
            let postcode = at('G');
            assert!(postcode == "X" || self.postcode.is_match(&postcode), "G{row} {postcode:?}");
            assert!(at('I').is_empty() || at('I') == "Yes", "I{row}");
        } else {
            assert!(at('H').chars().count() <= 35, "H{row}");
            for column in ['C', 'D', 'E', 'F', 'G', 'I'] {
                assert_eq!(at(column), "", "{column}{row}: an aggregated line has no donor and is not sponsored");
            }
            assert!(pence <= 100_000, "K{row}: an aggregated line is at most £1,000");
        }
    }
}

/// The name of the first sheet in an ODS file's content.
fn first_sheet_name(ods: &[u8]) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(ods)).unwrap();
    let mut content = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("content.xml").unwrap(), &mut content).unwrap();
    let start = content.find("<table:table table:name=\"").expect("a sheet") + "<table:table table:name=\"".len();
    content[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_exported_schedule_passes_hmrcs_rules_cell_by_cell_and_keeps_donors_as_they_were_gathered() {
    let app = spawn_app_with_storage().await;
    let token = app.files_token();
    let declared = |donor: Value| {
        let app = &app;
        async move {
            let id = donor["id"].as_str().unwrap().to_owned();
            declare(
                app,
                &id,
                json!({"method": "written", "declaration_text": TEXT, "declared_on": days_ago(365 * 6),
                    "start_date": days_ago(365 * 6)}),
            )
            .await;
            id
        }
    };
    let overseas = declared(
        app.create_donor(&json!({"title": "Mr.", "first_name": "Jürgen", "last_name": "Müller",
            "address": {"line1": "12 Rue de la Paix", "town": "Paris", "postcode": "75002", "country": "FR"}}))
            .await,
    )
    .await;
    let double_barrelled = declared(
        app.create_donor(&json!({"title": "Reverend", "first_name": "Anne-Marie", "last_name": "Smith-Jones",
            "address": {"line1": "Rose Cottage, Mill Lane", "postcode": "ls14ap"}}))
            .await,
    )
    .await;
    let edited_later = declared(
        app.create_donor(&json!({"title": "M", "first_name": "Zoë", "last_name": "O’Neill",
            "address": {"line1": "Tŷ Gwyn, Bala", "postcode": "LL23 7AA"}}))
            .await,
    )
    .await;
    let no_first_name = declared(
        app.create_donor(&json!({"title": "Dr", "last_name": "Initial",
            "address": {"line1": "4 Low Road", "postcode": "M1 1AE"}}))
            .await,
    )
    .await;
    let bulk = declared(
        app.create_donor(&json!({"first_name": "Bulk", "last_name": "Giver",
            "address": {"line1": "1 Bulk Street", "postcode": "M1 1AE"}}))
            .await,
    )
    .await;
    gift(&app, &overseas, json!({"gift_date": days_ago(100), "amount_minor": 5000})).await;
    gift(&app, &double_barrelled, json!({"gift_date": days_ago(90), "amount_minor": 3000})).await;
    gift(&app, &double_barrelled, json!({"gift_date": days_ago(80), "amount_minor": 500, "sponsored_event": true}))
        .await;
    let out_of_time = gift(&app, &double_barrelled, json!({"gift_date": days_ago(365 * 5 + 30)})).await;
    gift(&app, &edited_later, json!({"gift_date": days_ago(70), "amount_minor": 2500})).await;
    let nameless = gift(&app, &no_first_name, json!({"gift_date": days_ago(60), "amount_minor": 4000})).await;
    for n in 0..3 {
        gift(&app, &bulk, json!({"gift_date": days_ago(50 - n), "amount_minor": 1000})).await;
    }
    // 1,000 more named rows: 1,005 in all, so the schedule takes two files.
    futures::stream::iter(0..1000)
        .map(|_| gift(&app, &bulk, json!({"gift_date": days_ago(40), "amount_minor": 2100})))
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;

    let claim = post_claim(&app, &days_ago(1)).await;
    assert_eq!((claim["gifts"].as_i64(), claim["exclusions"].as_i64()), (Some(1007), Some(2)), "{claim}");
    let claim_path = format!("/v1/gift-aid/claims/{}", claim["id"].as_str().unwrap());
    let exclusions: Value = app.get(&format!("{claim_path}/exclusions"), &token).await.json().await.unwrap();
    let reasons: std::collections::HashMap<String, Vec<String>> = exclusions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["gift_id"].as_str().unwrap().to_owned(), codes(x)))
        .collect();
    assert_eq!(reasons[&out_of_time], ["out_of_time"]);
    assert_eq!(reasons[&nameless], ["no_first_name"]);

    // Edited after the claim was gathered: the schedule keeps the donor as they were.
    let edited = app
        .patch(
            &format!("/v1/donors/{edited_later}"),
            &token,
            &json!({"title": "Mrs", "first_name": "Changed", "last_name": "Other",
                "address": {"line1": "99 New Road", "postcode": "SW1A 1AA"}}),
        )
        .await;
    assert_eq!(edited.status(), 200, "{}", edited.text().await.unwrap());

    let files: Value =
        app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "ods"})).await.json().await.unwrap();
    let files = files["data"].as_array().unwrap().clone();
    assert_eq!(files.iter().map(|f| f["rows"].as_i64().unwrap()).collect::<Vec<_>>(), [1000, 5]);
    let rules = HmrcRules::new();
    let mut sheets = Vec::new();
    for file in &files {
        assert_eq!((file["parts"].as_i64(), file["format"].as_str()), (Some(2), Some("ods")));
        // A connection of its own: LibreOffice's conversions take longer than the server keeps an idle one open.
        let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let response = fresh.get(app.url(file["href"].as_str().unwrap())).bearer_auth(&token).send().await.unwrap();
        let (status, url) = (response.status(), response.url().clone());
        let ods = response.bytes().await.unwrap();
        assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&ods));
        assert!(ods.len() < 250 * 1024, "{} bytes: HMRC takes files under 250 KB", ods.len());
        assert_eq!(file["bytes"].as_u64(), Some(ods.len() as u64));
        assert!(first_sheet_name(&ods).starts_with("R68GAD_V1_00_0"));
        let sheet = libreoffice_rows(&ods).await;
        let rows = usize::try_from(file["rows"].as_i64().unwrap()).unwrap();
        // D13: the earliest donation date, required; D17 (previously over-claimed): none.
        let earliest = NaiveDate::parse_from_str(&cell(&sheet, 13, 'D'), "%d/%m/%y").expect("D13 is DD/MM/YY");
        assert_eq!(cell(&sheet, 17, 'D'), "");
        for item in 1..=rows {
            rules.check_row(&sheet, 24 + item, item);
        }
        let dates: Vec<NaiveDate> = (1..=rows)
            .map(|item| NaiveDate::parse_from_str(&cell(&sheet, 24 + item, 'J'), "%d/%m/%y").unwrap())
            .collect();
        assert!(dates.iter().all(|d| *d >= earliest));
        assert!(rows <= 1000 && cell(&sheet, 25 + rows, 'B').is_empty() && cell(&sheet, 25 + rows, 'K').is_empty());
        sheets.push(sheet);
    }
    let first = &sheets[0];
    assert_eq!(cell(first, 13, 'D'), hmrc_date(100));
    assert_eq!(cell(&sheets[1], 13, 'D'), hmrc_date(40));
    let row = |r: usize| ('B'..='K').map(|c| cell(first, r, c)).collect::<Vec<_>>().join("|");
    assert_eq!(row(25), format!("1|Mr|Jurgen|Muller|12|X|||{}|50.00", hmrc_date(100)), "overseas: X");
    assert_eq!(row(26), format!("2||Anne-Marie|Smith Jones|Rose Cottage|LS1 4AP|||{}|30.00", hmrc_date(90)));
    assert_eq!(row(27), format!("3||Anne-Marie|Smith Jones|Rose Cottage|LS1 4AP||Yes|{}|5.00", hmrc_date(80)));
    assert_eq!(row(28), format!("4||Zoe|O'Neill|Ty Gwyn|LL23 7AA|||{}|25.00", hmrc_date(70)), "as gathered");
    assert_eq!(row(29), format!("5||||||Small donations: 3 gifts||{}|30.00", hmrc_date(48)));
    assert_eq!(row(30), format!("6||Bulk|Giver|1|M1 1AE|||{}|21.00", hmrc_date(40)));
    assert!(!first.iter().flatten().any(|c| c.contains("Initial")), "the donor without a first name is left out");
}
