//! JustGiving: pages configured through the API, their donations pulled from a fake JustGiving speaking its
//! documented format into the staging queue, once each, and their gifts never claimed for Gift Aid.

use crate::helpers::{TestApp, fields, problem, spawn_app_with};
use almoner_testkit::fake_justgiving::{FakeJustGiving, donation};
use chrono::{Days, Utc};
use serde_json::{Value, json};

const APP_ID: &str = "0f938d22";

async fn with_fake(every_secs: u64) -> (TestApp, FakeJustGiving) {
    let jg = FakeJustGiving::start().await;
    jg.add_app(APP_ID);
    let base_url = jg.base_url().to_owned();
    let app = spawn_app_with(|s| {
        s.intake.justgiving_base_url = base_url;
        s.intake.justgiving_pull_secs = every_secs;
    })
    .await;
    (app, jg)
}

/// Sixty days ago at noon UTC, as JustGiving's milliseconds.
fn sixty_days_ago_millis() -> i64 {
    let day = Utc::now().date_naive() - Days::new(60);
    day.and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis()
}

async fn set_app_id(app: &TestApp, app_id: &str) {
    let response = app.put_json("/v1/justgiving/settings", &json!({"app_id": app_id})).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn add_page(app: &TestApp, body: Value) -> String {
    let response = app.post("/v1/justgiving/pages", &app.token(), &body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

async fn pull(app: &TestApp, page: &str) -> Value {
    let response = app.post(&format!("/v1/justgiving/pages/{page}/pull"), &app.token(), &json!({})).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn staged(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.get("/v1/staging?limit=500", token).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone()
}

impl TestApp {
    async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.put(self.url(path)).bearer_auth(self.token()).json(body).send().await.expect("request sent")
    }
}

#[tokio::test]
async fn donations_are_staged_once_page_after_page_and_only_new_ones_are_fetched_again() {
    let (app, jg) = with_fake(900).await;
    let at = sixty_days_ago_millis();
    for id in 1..=120 {
        jg.donate("ann-runs-london", donation(1000 + id, "10.00", "GBP", at));
    }
    let mut pending = donation(1121, "5.00", "GBP", at);
    pending["status"] = json!("Pending");
    jg.donate("ann-runs-london", pending);
    let mut hidden = donation(1122, "5.00", "GBP", at);
    hidden["amount"] = Value::Null;
    jg.donate("ann-runs-london", hidden);
    set_app_id(&app, APP_ID).await;
    let page =
        add_page(&app, json!({"short_name": "Ann-Runs-London", "fund": "Marathon", "campaign": "Spring 2026"})).await;

    let first = pull(&app, &page).await;
    assert_eq!(first["outcome"], "pulled", "{first}");
    assert_eq!((first["pages_read"].as_u64(), first["new_donations"].as_u64()), (Some(3), Some(122)), "{first}");
    assert_eq!((first["staged"].as_u64(), first["passed_over"].as_u64()), (Some(120), Some(2)));
    assert_eq!(first["page"]["highest_donation_id"], 1122);
    assert_eq!(first["page"]["donations_staged"], 120);
    assert!(first["page"]["last_error"].is_null());
    let requests = jg.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[0].starts_with(&format!("/{APP_ID}/v1/fundraising/pages/Ann-Runs-London/donations?")));
    assert!(requests[2].contains("pageNum=3"), "{requests:?}");

    let entries = staged(&app, &app.token()).await;
    assert_eq!(entries.len(), 120);
    let one = entries.iter().find(|e| e["proposed_gift"]["external_reference"] == "1007").unwrap();
    let gift = &one["proposed_gift"];
    assert_eq!((gift["source"].as_str(), gift["amount_minor"].as_i64()), (Some("justgiving"), Some(1000)));
    assert_eq!((gift["currency"].as_str(), gift["fund"].as_str()), (Some("GBP"), Some("Marathon")));
    assert_eq!((gift["campaign"].as_str(), gift["gift_aid_claimable"].as_bool()), (Some("Spring 2026"), Some(false)));
    assert_eq!(gift["gift_date"], (Utc::now().date_naive() - Days::new(60)).to_string());
    assert_eq!((one["reason"].as_str(), one["status"].as_str()), (Some("no_email"), Some("pending")));
    assert_eq!(one["payer"]["display_name"], "Donor 1007");
    assert_eq!(one["payer"]["message"], "Good luck from donor 1007");

    // Again: nothing new, one result page read (it reaches donations already seen).
    let second = pull(&app, &page).await;
    assert_eq!((second["staged"].as_u64(), second["new_donations"].as_u64()), (Some(0), Some(0)), "{second}");
    assert_eq!(second["pages_read"], 1);
    assert_eq!(staged(&app, &app.token()).await.len(), 120);

    // Two new donations: only they are staged.
    jg.donate("ann-runs-london", donation(1123, "20.00", "GBP", at));
    jg.donate("ann-runs-london", donation(1124, "0.50", "GBP", at));
    let third = pull(&app, &page).await;
    assert_eq!((third["staged"].as_u64(), third["pages_read"].as_u64()), (Some(2), Some(1)), "{third}");
    assert_eq!(third["page"]["donations_staged"], 122);
    assert_eq!(staged(&app, &app.token()).await.len(), 122);
}

#[tokio::test]
async fn failures_are_recorded_on_the_page_and_the_next_pull_succeeds() {
    let (app, jg) = with_fake(900).await;
    jg.donate("bake-sale", donation(7, "3.00", "GBP", sixty_days_ago_millis()));
    let page = add_page(&app, json!({"short_name": "bake-sale"})).await;
    let missing = add_page(&app, json!({"short_name": "no-such-page"})).await;

    // No app id yet.
    let failed = pull(&app, &page).await;
    assert_eq!(failed["outcome"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("app id"), "{failed}");
    // An app id JustGiving does not know.
    set_app_id(&app, "deadbeef").await;
    let failed = pull(&app, &page).await;
    assert!(failed["error"].as_str().unwrap().contains("refused the request (401)"), "{failed}");
    assert!(failed["page"]["last_error"].as_str().unwrap().contains("AppIdNotValid"), "{failed}");
    set_app_id(&app, APP_ID).await;
    // A page JustGiving does not know.
    let unknown = pull(&app, &missing).await;
    assert_eq!(unknown["outcome"], "failed");
    assert!(unknown["error"].as_str().unwrap().contains("does not know the page"), "{unknown}");
    // JustGiving failing, then limiting the rate: recorded, nothing staged.
    jg.fail_next(1);
    let failed = pull(&app, &page).await;
    assert!(failed["error"].as_str().unwrap().contains("unavailable"), "{failed}");
    jg.rate_limit_next(1);
    let failed = pull(&app, &page).await;
    assert!(failed["error"].as_str().unwrap().contains("rate limited"), "{failed}");
    assert!(staged(&app, &app.token()).await.is_empty());
    let read: Value = app.get(&format!("/v1/justgiving/pages/{page}"), &app.token()).await.json().await.unwrap();
    assert!(read["last_error"].as_str().unwrap().contains("rate limited"));
    assert!(read["last_pulled_at"].is_string());

    // Then it works, and the error is gone.
    let pulled = pull(&app, &page).await;
    assert_eq!((pulled["outcome"].as_str(), pulled["staged"].as_u64()), (Some("pulled"), Some(1)), "{pulled}");
    assert!(pulled["page"]["last_error"].is_null());
}

#[tokio::test]
async fn the_schedule_pulls_every_page_without_being_asked() {
    let (app, jg) = with_fake(1).await;
    jg.donate("fun-run", donation(42, "15.00", "GBP", sixty_days_ago_millis()));
    set_app_id(&app, APP_ID).await;
    add_page(&app, json!({"short_name": "fun-run"})).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let entries = staged(&app, &app.token()).await;
        if entries.len() == 1 {
            assert_eq!(entries[0]["proposed_gift"]["external_reference"], "42");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the scheduled pull staged nothing");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_approved_justgiving_donation_is_a_gift_no_gift_aid_claim_ever_takes() {
    let (app, jg) = with_fake(900).await;
    let token = app.token();
    jg.donate("memorial-walk", donation(555, "25.00", "GBP", sixty_days_ago_millis()));
    set_app_id(&app, APP_ID).await;
    let page = add_page(&app, json!({"short_name": "memorial-walk", "fund": "Hospice", "campaign": "Walk"})).await;
    pull(&app, &page).await;
    let entry = staged(&app, &token).await.remove(0);

    // A donor with a declaration and a UK address: everything else would make the gift claimable.
    let donor = app
        .create_donor(&json!({"first_name": "Ann", "last_name": "Giver",
            "address": {"line1": "12 High Street", "town": "Leeds", "postcode": "ls1 4ap"}}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let declaration = json!({"method": "online", "declaration_text": "I want to Gift Aid my donation.",
        "start_date": (Utc::now().date_naive() - Days::new(365)).to_string()});
    let response = app.post(&format!("/v1/donors/{donor}/gift-aid-declarations"), &token, &declaration).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());

    let response = app
        .post(&format!("/v1/staging/{}/approve", entry["id"].as_str().unwrap()), &token, &json!({"donor_id": donor}))
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let approved: Value = response.json().await.unwrap();
    let gift_id = approved["gift_id"].as_str().unwrap().to_owned();
    let gift: Value = app.get(&format!("/v1/gifts/{gift_id}"), &token).await.json().await.unwrap();
    assert_eq!((gift["source"].as_str(), gift["external_reference"].as_str()), (Some("justgiving"), Some("555")));
    assert_eq!((gift["fund"].as_str(), gift["campaign"].as_str()), (Some("Hospice"), Some("Walk")));
    assert_eq!(gift["amount_minor"], 2500);

    // Even with no agent sources configured, and the source changed, it is the platform's to claim.
    let settings = json!({"agent_sources": [], "aggregate_up_to_minor": 2000});
    assert_eq!(app.put_json("/v1/gift-aid/settings", &settings).await.status(), 200);
    let patched = app.patch(&format!("/v1/gifts/{gift_id}"), &token, &json!({"source": "manual"})).await;
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    let eligibility: Value = app.get(&format!("/v1/gifts/{gift_id}/gift-aid"), &token).await.json().await.unwrap();
    assert_eq!(eligibility["eligible"], false, "{eligibility}");
    let codes: Vec<&str> =
        eligibility["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["claimed_by_platform"]);

    let up_to = (Utc::now().date_naive() - Days::new(1)).to_string();
    let response = app.post("/v1/gift-aid/claims", &token, &json!({"up_to": up_to})).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let claim: Value = response.json().await.unwrap();
    assert_eq!((claim["gifts"].as_i64(), claim["exclusions"].as_i64()), (Some(0), Some(1)), "{claim}");
    let exclusions: Value = app
        .get(&format!("/v1/gift-aid/claims/{}/exclusions", claim["id"].as_str().unwrap()), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(exclusions["data"][0]["reasons"][0]["code"], "claimed_by_platform");
}

#[tokio::test]
async fn pages_and_settings_are_validated_and_each_tenant_sees_its_own() {
    let (app, jg) = with_fake(900).await;
    let token = app.token();
    jg.donate("shared-name", donation(9, "1.00", "GBP", sixty_days_ago_millis()));

    let bad = app.put_json("/v1/justgiving/settings", &json!({"app_id": "not an id!"})).await;
    assert_eq!(fields(&problem(bad, 422, "validation_failed").await), ["app_id"]);
    let missing = app.put_json("/v1/justgiving/settings", &json!({})).await;
    assert_eq!(fields(&problem(missing, 422, "validation_failed").await), ["app_id"]);
    let bad = app
        .post(
            "/v1/justgiving/pages",
            &token,
            &json!({"short_name": "../admin", "fund": "x".repeat(101), "campaign": "a\u{7}"}),
        )
        .await;
    let mut named = fields(&problem(bad, 422, "validation_failed").await);
    named.sort();
    assert_eq!(named, ["campaign", "fund", "short_name"]);
    let unknown = app.post("/v1/justgiving/pages", &token, &json!({"short_name": "x", "extra": 1})).await;
    assert_eq!(unknown.status(), 422);

    set_app_id(&app, APP_ID).await;
    let page = add_page(&app, json!({"short_name": "shared-name"})).await;
    let taken = app.post("/v1/justgiving/pages", &token, &json!({"short_name": "SHARED-NAME"})).await;
    assert_eq!(fields(&problem(taken, 409, "conflict").await), ["short_name"]);
    pull(&app, &page).await;

    // Another tenant sees none of it, cannot pull or remove it, and may pull the same page for itself.
    let other = app.token_for(uuid::Uuid::new_v4());
    problem(app.get(&format!("/v1/justgiving/pages/{page}"), &other).await, 404, "not_found").await;
    problem(app.post(&format!("/v1/justgiving/pages/{page}/pull"), &other, &json!({})).await, 404, "not_found").await;
    problem(app.delete(&format!("/v1/justgiving/pages/{page}"), &other).await, 404, "not_found").await;
    let listed: Value = app.get("/v1/justgiving/pages", &other).await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]));
    let settings: Value = app.get("/v1/justgiving/settings", &other).await.json().await.unwrap();
    assert!(settings["app_id"].is_null());
    assert!(staged(&app, &other).await.is_empty());
    let response = app.post("/v1/justgiving/pages", &other, &json!({"short_name": "shared-name"})).await;
    assert_eq!(response.status(), 201);

    let listed: Value = app.get("/v1/justgiving/pages", &token).await.json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let settings: Value = app.get("/v1/justgiving/settings", &token).await.json().await.unwrap();
    assert_eq!(settings["app_id"], APP_ID);

    // Removing a page keeps what it staged.
    assert_eq!(app.delete(&format!("/v1/justgiving/pages/{page}"), &token).await.status(), 204);
    problem(app.get(&format!("/v1/justgiving/pages/{page}"), &token).await, 404, "not_found").await;
    assert_eq!(staged(&app, &token).await.len(), 1);
}
