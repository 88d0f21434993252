//! The SMS pilot, as the cutover plan runs it, through the real nginx gateway against a fake Twilio speaking the
//! Messages API: 20 contacts imported (a dry run, then the commit), a campaign queued into 20 jobs and sent, each
//! number texted once; Twilio's signed status callbacks arriving through the gateway at webhook-ingest and applied
//! by messaging; a short link clicked and counted once; a STOP reply keeping its number out of the next campaign
//! (and withdrawing the linked fundraising donor's SMS consent);
//! a $1 budget refusing a new campaign; the kill switch stopping sends and resuming them; quiet hours delaying jobs.

use crate::stack::{Options, Stack};
use almoner_testkit::fake_twilio::{FakeTwilio, Options as TwilioOptions};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "AC00112233445566778899aabbccddeeff";
const TOKEN: &str = "ffeeddccbbaa99887766554433221100";

async fn call(stack: &Stack, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = stack.client.request(method, stack.gateway.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn ok(stack: &Stack, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let (status, answer) = call(stack, token, method.clone(), path, body).await;
    assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    answer
}

async fn until(what: &str, seconds: u64, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} within {seconds} s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sms_pilot_runs_end_to_end_through_the_gateway() {
    use reqwest::Method;
    // Twilio's price per segment here is the tenant's default price (4 US cents), as a UK charity would set it.
    let twilio =
        FakeTwilio::start_with(TwilioOptions { seed: 7, price_per_segment_micros: 40_000, ..TwilioOptions::default() })
            .await;
    twilio.add_account(ACCOUNT, TOKEN);
    let base: &'static str = Box::leak(twilio.base_url().to_owned().into_boxed_str());
    let stack = Stack::start_with(Options {
        console: true,
        webhook_ingest: true,
        messaging: true,
        twilio_base_url: Some(base),
        ..Options::default()
    })
    .await;
    let token = stack.admin_token().await;
    let api = |path: &str| format!("/api/messaging{path}");

    // Twilio posts its callbacks to the tenant's webhook-ingest endpoint, through the gateway, signed with the
    // auth token over the URL it was given.
    let endpoint = ok(
        &stack,
        &token,
        Method::POST,
        "/api/webhook-ingest/v1/endpoints",
        Some(json!({"provider": "twilio", "name": "Twilio", "secret": TOKEN})),
    )
    .await;
    let callback = stack.gateway.url(endpoint["path"].as_str().unwrap());
    ok(
        &stack,
        &token,
        Method::PUT,
        &api("/v1/provider"),
        Some(json!({"account_sid": ACCOUNT, "auth_token": TOKEN, "status_callback_url": callback})),
    )
    .await;
    ok(
        &stack,
        &token,
        Method::PATCH,
        &api("/v1/settings"),
        Some(json!({"quiet_start": "00:00", "quiet_end": "00:00"})),
    )
    .await;

    // 20 contacts from a CSV: a dry run, then the commit.
    let mut csv = String::from("Mobile,First name,Tags\n");
    for i in 0..20 {
        csv.push_str(&format!("07700 900{:03},Friend{i},pilot\n", 500 + i));
    }
    let dry = ok(
        &stack,
        &token,
        Method::POST,
        &api("/v1/contact-imports"),
        Some(json!({"csv": csv, "consent_source": "pilot sign-up sheet"})),
    )
    .await;
    assert_eq!(dry["summary"]["create"], 20, "{dry}");
    let import = dry["id"].as_str().unwrap();
    ok(&stack, &token, Method::POST, &api(&format!("/v1/contact-imports/{import}/commit")), None).await;
    until("the import committed", 20, async || {
        ok(&stack, &token, Method::GET, &api(&format!("/v1/contact-imports/{import}")), None).await["status"]
            == "committed"
    })
    .await;

    // A campaign to them, with a link: 20 jobs, sent.
    let template = ok(
        &stack,
        &token,
        Method::POST,
        &api("/v1/templates"),
        Some(json!({"name": "pilot", "body": "Hi {{first_name}}, see https://charity.example/pilot"})),
    )
    .await;
    let new_campaign =
        |name: &str| json!({"name": name, "template_id": template["id"], "tags": ["pilot"], "sender": "+447700900000"});
    let first = ok(&stack, &token, Method::POST, &api("/v1/campaigns"), Some(new_campaign("Pilot 1"))).await;
    let first = first["id"].as_str().unwrap().to_owned();
    let queued = ok(&stack, &token, Method::POST, &api(&format!("/v1/campaigns/{first}/queue")), None).await;
    assert_eq!(queued["queue_summary"]["jobs"], 20, "{queued}");
    until("19 or more sent, their delivered callbacks applied", 60, async || {
        let r = ok(&stack, &token, Method::GET, &api(&format!("/v1/campaigns/{first}/report")), None).await;
        r["sent"].as_i64().unwrap_or(0) >= 19 && r["delivered"].as_i64().unwrap_or(0) >= 19
    })
    .await;
    for i in 0..20 {
        assert_eq!(twilio.messages_to(&format!("+447700900{:03}", 500 + i)).len(), 1, "each number once");
    }
    let report = ok(&stack, &token, Method::GET, &api(&format!("/v1/campaigns/{first}/report")), None).await;
    let price: u64 = twilio.price_record().iter().map(|r| r.price_micros).sum();
    let spend = report["spend_micros"].as_u64().unwrap();
    assert!(spend.abs_diff(price) * 100 <= price, "spend {spend} within 1% of Twilio's {price}");

    // A link clicked: counted once as a person.
    let body = twilio.messages_to("+447700900500")[0].body.clone();
    let link = body.split_whitespace().find(|w| w.contains("/l/")).unwrap().to_owned();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let click =
        no_redirects.get(&link).header("user-agent", "Mozilla/5.0 (iPhone) Mobile/15E148").send().await.unwrap();
    assert_eq!(click.status(), 302);
    assert_eq!(click.headers()["location"], "https://charity.example/pilot");
    let report = ok(&stack, &token, Method::GET, &api(&format!("/v1/campaigns/{first}/report")), None).await;
    assert_eq!(report["human_clicks"], 1);

    // The number is a donor's in fundraising, who agreed to texts there: messaging links the contact to them.
    let donor = ok(
        &stack,
        &token,
        Method::POST,
        "/api/fundraising/v1/donors",
        Some(json!({"last_name": "Friend", "phone": "+447700900503", "communication_preferences": {"sms": true}})),
    )
    .await;
    let donor_id = donor["id"].as_str().unwrap().to_owned();
    let contacts = ok(&stack, &token, Method::GET, &api("/v1/contacts?q=900503"), None).await;
    let contact = contacts["data"][0]["id"].as_str().unwrap().to_owned();
    until("the contact linked to its donor", 20, async || {
        ok(&stack, &token, Method::GET, &api(&format!("/v1/contacts/{contact}")), None).await["donor_id"] == donor_id
    })
    .await;

    // STOP from that number, through the gateway and webhook-ingest: it is left out of the next campaign, and the
    // donor's SMS preference in fundraising follows.
    let status = twilio.inbound(&callback, ACCOUNT, "+447700900503", "+447700900000", "STOP").await.unwrap();
    assert!((200..300).contains(&status), "webhook-ingest answered the reply {status}");
    until("STOP applied", 20, async || {
        call(&stack, &token, Method::GET, &api("/v1/do-not-contact/%2B447700900503"), None).await.0 == 200
    })
    .await;
    until("the donor's SMS consent withdrawn in fundraising", 20, async || {
        let d = ok(&stack, &token, Method::GET, &format!("/api/fundraising/v1/donors/{donor_id}"), None).await;
        d["communication_preferences"]["sms"] == false
    })
    .await;
    let contact = ok(&stack, &token, Method::GET, &api(&format!("/v1/contacts/{contact}")), None).await;
    assert_eq!(contact["sms_consent"], false, "{contact}");
    let second = ok(&stack, &token, Method::POST, &api("/v1/campaigns"), Some(new_campaign("Pilot 2"))).await;
    let second = second["id"].as_str().unwrap().to_owned();

    // A $1 budget blocks it ($0.80 spent, $0.76 more); the kill switch holds it; resuming sends it, without the
    // number that said STOP.
    ok(&stack, &token, Method::PATCH, &api("/v1/settings"), Some(json!({"daily_budget_micros": 1_000_000}))).await;
    let (status, problem) =
        call(&stack, &token, Method::POST, &api(&format!("/v1/campaigns/{second}/queue")), None).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("budget_exceeded")), "{problem}");
    ok(&stack, &token, Method::PATCH, &api("/v1/settings"), Some(json!({"daily_budget_micros": 100_000_000}))).await;
    ok(&stack, &token, Method::POST, &api("/v1/pause"), None).await;
    let (status, problem) =
        call(&stack, &token, Method::POST, &api(&format!("/v1/campaigns/{second}/queue")), None).await;
    assert_eq!((status, problem["code"].as_str()), (409, Some("tenant_paused")));
    ok(&stack, &token, Method::POST, &api("/v1/resume"), None).await;
    let before = twilio.count();
    let queued = ok(&stack, &token, Method::POST, &api(&format!("/v1/campaigns/{second}/queue")), None).await;
    assert_eq!(queued["queue_summary"]["jobs"], 19);
    assert_eq!(queued["queue_summary"]["do_not_contact"], 1);
    ok(&stack, &token, Method::POST, &api("/v1/pause"), None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let paused_count = twilio.count();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(twilio.count(), paused_count, "nothing is sent while paused");
    ok(&stack, &token, Method::POST, &api("/v1/resume"), None).await;
    until("the second campaign sent", 60, async || twilio.count() >= before + 19).await;
    assert_eq!(twilio.count(), before + 19);
    assert_eq!(twilio.messages_to("+447700900503").len(), 1, "STOP kept the number out");

    // Quiet hours around now: a third campaign's jobs wait for their end.
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::London);
    let quiet = json!({"quiet_start": (now - chrono::Duration::hours(1)).format("%H:%M").to_string(),
                       "quiet_end": (now + chrono::Duration::hours(1)).format("%H:%M").to_string()});
    ok(&stack, &token, Method::PATCH, &api("/v1/settings"), Some(quiet)).await;
    let third = ok(&stack, &token, Method::POST, &api("/v1/campaigns"), Some(new_campaign("Pilot 3"))).await;
    let third = third["id"].as_str().unwrap().to_owned();
    let count = twilio.count();
    let queued = ok(&stack, &token, Method::POST, &api(&format!("/v1/campaigns/{third}/queue")), None).await;
    assert_eq!(queued["status"], "scheduled");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(twilio.count(), count, "nothing goes in quiet hours");
    stack.clean_up().await;
}
