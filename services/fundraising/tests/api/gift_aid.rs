//! Gift Aid declarations and each eligibility rule, through the API.

use crate::helpers::{TestApp, fields, problem, spawn_app};
use chrono::{Days, Utc};
use serde_json::{Value, json};

const TEXT: &str = "I want to Gift Aid my donation and any donations I make in the future or have made in the past \
    4 years. I am a UK taxpayer and understand that if I pay less Income Tax and/or Capital Gains Tax than the amount \
    of Gift Aid claimed on all my donations in that tax year it is my responsibility to pay any difference.";

fn days_ago(n: u64) -> String {
    (Utc::now().date_naive() - Days::new(n)).to_string()
}

async fn uk_donor(app: &TestApp) -> String {
    let donor = app
        .create_donor(&json!({"first_name": "Ann", "last_name": "Giver",
            "address": {"line1": "12 High Street", "town": "Leeds", "postcode": "ls1 4ap"}}))
        .await;
    donor["id"].as_str().unwrap().to_owned()
}

async fn gift(app: &TestApp, donor: &str, extra: Value) -> String {
    let mut body = json!({"donor_id": donor, "amount_minor": 1000, "currency": "GBP", "gift_date": days_ago(60)});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let response = app.post("/v1/gifts", &app.token(), &body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn declare(app: &TestApp, donor: &str, body: Value) -> Value {
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
        assert_eq!(codes(&eligibility(&app, &id).await), [code], "{extra}");
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
async fn the_donor_needs_a_uk_address_with_a_house_and_postcode() {
    let app = spawn_app().await;
    let abroad = app
        .create_donor(&json!({"last_name": "Abroad", "address": {"line1": "1 Rue de Rivoli", "postcode": "75001",
            "country": "FR"}}))
        .await;
    let no_house = app.create_donor(&json!({"last_name": "Nohouse", "address": {"postcode": "LS1 4AP"}})).await;
    let nothing = app.create_donor(&json!({"last_name": "Nothing"})).await;
    for (donor, expected) in [
        (&abroad, vec!["no_uk_address"]),
        (&no_house, vec!["no_house_name_or_number"]),
        (&nothing, vec!["no_uk_address"]),
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
        json!({"agent_sources": ["enthuse"], "aggregate_up_to_minor": 2000})
    );
    assert_eq!(eligibility(&app, &via_justgiving).await["eligible"], true);
    assert_eq!(codes(&eligibility(&app, &via_enthuse).await), ["agent_claims_gift_aid"]);

    // Another tenant sees none of it.
    let declarations: Value = app.get(&path, &app.token()).await.json().await.unwrap();
    let id = declarations["data"][0]["id"].as_str().unwrap().to_owned();
    let other = app.token_for(uuid::Uuid::new_v4());
    problem(app.get(&format!("/v1/gift-aid-declarations/{id}"), &other).await, 404, "not_found").await;
    problem(app.get(&path, &other).await, 404, "not_found").await;
    problem(app.get(&format!("/v1/gifts/{via_enthuse}/gift-aid"), &other).await, 404, "not_found").await;
}

async fn post_claim(app: &TestApp, up_to: &str) -> Value {
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
    let app = spawn_app().await;
    let token = app.token();
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
    let response = app.get(file["href"].as_str().unwrap(), &token).await;
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
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
    // LibreOffice opens it, and its cells read as HMRC's schedule expects: the same as the CSV export.
    assert_eq!(libreoffice_csv(&ods).await.lines().collect::<Vec<_>>(), lines);

    // Both exports are kept; the draft they came from can no longer be discarded.
    let all: Value = app.get(&format!("{claim_path}/files"), &token).await.json().await.unwrap();
    assert_eq!(all["data"].as_array().unwrap().len(), 2);
    problem(app.delete(&claim_path, &token).await, 409, "conflict").await;
    let bad = app.post(&format!("{claim_path}/exports"), &token, &json!({"format": "xlsx"})).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["format"]);
}

/// Converts an ODS to CSV with the real LibreOffice (`soffice --headless --convert-to csv`), as a user would open
/// it, and returns the CSV.
async fn libreoffice_csv(ods: &[u8]) -> String {
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
    csv
}

fn hmrc_date(days: u64) -> String {
    (Utc::now().date_naive() - Days::new(days)).format("%d/%m/%y").to_string()
}
