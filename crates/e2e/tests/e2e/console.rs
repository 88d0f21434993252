//! The staff console's browser tests (`console/tests/*.test.mjs`, Node's test runner driving Chromium) against a
//! whole stack: the gateway serving the console build, identity mailing sign-in links to an SMTP sink, and two
//! tenants' staff and donors seeded here. The scenarios themselves are the console's; this file owns the stack and
//! the environment they read:
//!
//! | variable | value |
//! |---|---|
//! | `CONSOLE_URL` | the gateway, `http://127.0.0.1:<port>` (identity's `sign_in.console_url`, so links open it) |
//! | `MAILBOX_URL` | the SMTP sink's HTTP view: `GET /messages?to=<address>` |
//! | `CHROMIUM_BIN` | `ALMONER_TEST_CHROMIUM_BIN` |
//! | `SCREENSHOT_DIR` | `target/console-screenshots` |
//! | `ALMONER_ADMIN_EMAIL`, `ALMONER_VIEWER_EMAIL` | tenant A's admin and viewer |
//! | `ALMONER_OTHER_ADMIN_EMAIL` | tenant B's admin |
//! | `ALMONER_EXISTING_DONOR` | tenant A's donor, `{"first_name","last_name","email","postcode"}` |
//! | `ALMONER_STAGED` | tenant A's staged Stripe payments: `{"approve": {"amount","payer_email","candidates":[{"id","name"}]}, "reject": {"amount"}}` |
//! | `ALMONER_CLAIM` | tenant A's Gift Aid material: `{"up_to","donor","gifts":[{"id","amount","gift_date"}],"excluded":{"id","amount"}}` |
//!
//! Tenant A (the stack's own) also has a fund. Its staging queue holds two payments that came in as Stripe
//! webhooks, signed, through the gateway and webhook-ingest: £42.00 from an address two donors share
//! (`several_donors_match`, for the approve test) and £7.50 naming no one (`no_email`, for the reject test). For
//! the claim test it has a donor with a Gift Aid declaration and two gifts of the last two months, and a donor
//! without one whose gift a claim leaves out. Messaging runs too: tenant A has an SMS contact and a contact import's
//! dry run. Tenant B has a donor of another name.

use crate::stack::{Options, Stack};
use almoner_testkit::fake_twilio::{FakeTwilio, Options as TwilioOptions};
use almoner_webhook_verify::stripe;
use chrono::{Days, Utc};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The most the browser tests may take, well inside nextest's limit for this test (.config/nextest.toml).
/// The fake Twilio account of the console's tenant.
const TWILIO_ACCOUNT: &str = "AC99887766554433221100ffeeddccbbaa";
const TWILIO_TOKEN: &str = "00112233445566778899aabbccddeeff";

const BROWSER_TESTS_TIMEOUT: Duration = Duration::from_secs(540);

fn required_env(name: &str, what: &str) -> String {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{name} is not set: {what}. scripts/test sets it (it builds the console and installs Chromium); to run this \
             test alone, set ALMONER_TEST_CONSOLE_DIST=$PWD/console/dist and ALMONER_TEST_CHROMIUM_BIN=/usr/bin/chromium"
        ),
    }
}

fn repository_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// A POST through the gateway that must answer 201; returns the body.
async fn create(stack: &Stack, token: &str, path: &str, body: Value) -> Value {
    let response = stack.client.post(stack.gateway.url(path)).bearer_auth(token).json(&body).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "POST {path} {body}: {answer}");
    answer
}

/// A GET through the gateway that must answer 200; returns the body.
async fn get(stack: &Stack, token: &str, path: &str) -> Value {
    let response = stack.client.get(stack.gateway.url(path)).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 200, "GET {path}: {answer}");
    answer
}

/// A signed Stripe `payment_intent.succeeded` for `amount_minor` pence from `email` (none when `None`), posted
/// through the gateway to the endpoint at `path`; webhook-ingest must accept it.
async fn post_stripe_payment(stack: &Stack, path: &str, secret: &str, amount_minor: i64, email: Option<&str>) {
    let now = Utc::now().timestamp();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let billing = match email {
        Some(email) => json!({"name": "Pat Morgan", "email": email}),
        None => json!({"name": null, "email": null}),
    };
    let body = serde_json::to_vec(&json!({
        "id": format!("evt_{id}"), "object": "event", "type": "payment_intent.succeeded", "created": now,
        "livemode": false, "api_version": "2024-06-20",
        "data": {"object": {"id": format!("pi_{id}"), "object": "payment_intent", "amount": amount_minor,
            "amount_received": amount_minor, "currency": "gbp", "created": now, "customer": null,
            "receipt_email": email, "payment_method_types": ["card"],
            "charges": {"data": [{"billing_details": billing}]}}}
    }))
    .unwrap();
    let response = stack
        .client
        .post(stack.gateway.url(path))
        .header("content-type", "application/json")
        .header("stripe-signature", stripe::signature_header(secret, now, &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "the Stripe delivery was refused: {}", response.status());
}

/// Seeds tenant A's staging queue through webhook-ingest; returns `ALMONER_STAGED`.
async fn seed_staging(stack: &Stack, token: &str, unique: &str) -> Value {
    const SECRET: &str = "whsec_consoleBrowserTests7c1e";
    let endpoint = create(
        stack,
        token,
        "/api/webhook-ingest/v1/endpoints",
        json!({"provider": "stripe", "name": "Stripe (console tests)", "secret": SECRET}),
    )
    .await;
    let path = endpoint["path"].as_str().expect("the endpoint's delivery path").to_owned();
    let shared = format!("pat@{unique}.example");
    let mut candidates = Vec::new();
    for (first, last) in [("Pat", "Morgan"), ("Patricia", "Morgan-Reed")] {
        let donor = create(
            stack,
            token,
            "/api/fundraising/v1/donors",
            json!({"first_name": first, "last_name": last, "email": shared}),
        )
        .await;
        candidates.push(json!({"id": donor["id"], "name": format!("{first} {last}")}));
    }
    post_stripe_payment(stack, &path, SECRET, 4200, Some(&shared)).await;
    post_stripe_payment(stack, &path, SECRET, 750, None).await;

    // Fundraising stages them from webhook-ingest's events.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pending = get(stack, token, "/api/fundraising/v1/staging?status=pending&limit=100").await;
        let reasons: Vec<&str> =
            pending["data"].as_array().unwrap().iter().filter_map(|e| e["reason"].as_str()).collect();
        if reasons.contains(&"several_donors_match") && reasons.contains(&"no_email") {
            break;
        }
        assert!(Instant::now() < deadline, "the two Stripe payments were not staged within 30 s: {pending}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    json!({
        "approve": {"amount": "£42.00", "payer_email": shared, "candidates": candidates},
        "reject": {"amount": "£7.50"},
    })
}

/// Seeds tenant A's Gift Aid material; returns `ALMONER_CLAIM`.
async fn seed_claim(stack: &Stack, token: &str) -> Value {
    let today = Utc::now().date_naive();
    let address = json!({"line1": "12 High Street", "town": "York", "postcode": "yo1 7hh", "country": "GB"});
    let giver = create(
        stack,
        token,
        "/api/fundraising/v1/donors",
        json!({"first_name": "Ann", "last_name": "Giver", "address": address}),
    )
    .await;
    let giver_id = giver["id"].as_str().unwrap().to_owned();
    create(
        stack,
        token,
        &format!("/api/fundraising/v1/donors/{giver_id}/gift-aid-declarations"),
        json!({"method": "online", "start_date": (today - Days::new(365)).to_string(),
               "declaration_text": "I want to Gift Aid my donation and any donations I make in the future or have \
                made in the past 4 years. I am a UK taxpayer."}),
    )
    .await;
    let mut gifts = Vec::new();
    for (days, amount_minor, amount) in [(60, 5000, "£50.00"), (30, 2500, "£25.00")] {
        let gift_date = (today - Days::new(days)).to_string();
        let gift = create(
            stack,
            token,
            "/api/fundraising/v1/gifts",
            json!({"donor_id": giver_id, "amount_minor": amount_minor, "currency": "GBP", "gift_date": gift_date}),
        )
        .await;
        gifts.push(json!({"id": gift["id"], "amount": amount, "gift_date": gift_date}));
    }
    let undeclared = create(
        stack,
        token,
        "/api/fundraising/v1/donors",
        json!({"first_name": "Una", "last_name": "Declared", "address": address}),
    )
    .await;
    let excluded = create(
        stack,
        token,
        "/api/fundraising/v1/gifts",
        json!({"donor_id": undeclared["id"], "amount_minor": 1300, "currency": "GBP",
               "gift_date": (today - Days::new(45)).to_string()}),
    )
    .await;
    json!({
        "up_to": (today - Days::new(1)).to_string(),
        "donor": {"id": giver_id, "name": "Ann Giver"},
        "gifts": gifts,
        "excluded": {"id": excluded["id"], "amount": "£13.00"},
    })
}

async fn token_for(stack: &Stack, api_key: &str) -> String {
    let response = stack
        .client
        .post(stack.gateway.url("/api/identity/v1/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_secret", api_key)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "token request");
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().expect("an access token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_browser_tests_pass_against_the_whole_stack() {
    let dist = required_env("ALMONER_TEST_CONSOLE_DIST", "the console build the gateway serves (console/dist)");
    let chromium = required_env("ALMONER_TEST_CHROMIUM_BIN", "the Chromium the browser tests drive");
    let node = std::env::var("ALMONER_TEST_NODE_BIN").ok().filter(|n| !n.is_empty()).unwrap_or_else(|| "node".into());
    assert!(
        PathBuf::from(&dist).join("index.html").is_file(),
        "{dist}/index.html is missing: build the console (cd console && npm ci && npm run build)"
    );
    let root = repository_root();
    assert!(
        root.join("console/node_modules/playwright-core").is_dir(),
        "console/node_modules is not installed: cd console && npm ci"
    );

    // A fake Twilio for the campaigns the browser tests send (a segment's campaign and its report); its signed
    // status callbacks reach webhook-ingest through the gateway, as Twilio's would.
    let twilio = FakeTwilio::start_with(TwilioOptions {
        seed: 11,
        price_per_segment_micros: 40_000,
        ..TwilioOptions::default()
    })
    .await;
    twilio.add_account(TWILIO_ACCOUNT, TWILIO_TOKEN);
    let twilio_url: &'static str = Box::leak(twilio.base_url().to_owned().into_boxed_str());
    let stack = Stack::start_with(Options {
        console: true,
        webhook_ingest: true,
        messaging: true,
        twilio_base_url: Some(twilio_url),
        ..Options::default()
    })
    .await;
    let mailbox_url = stack.mailbox.as_ref().expect("a console stack has a mailbox").url.clone();
    let unique = uuid::Uuid::new_v4().simple().to_string()[..10].to_owned();

    // Tenant A, the stack's own: an admin, a viewer, a donor the gift entry test meets again, a fund.
    let token = stack.admin_token().await;
    let admin_email = format!("admin@a-{unique}.example");
    let viewer_email = format!("viewer@a-{unique}.example");
    create(
        &stack,
        &token,
        "/api/identity/v1/staff",
        json!({"email": admin_email, "name": "Ada Admin", "role": "admin"}),
    )
    .await;
    create(
        &stack,
        &token,
        "/api/identity/v1/staff",
        json!({"email": viewer_email, "name": "Vera Viewer", "role": "viewer"}),
    )
    .await;
    let donor = create(
        &stack,
        &token,
        "/api/fundraising/v1/donors",
        json!({"first_name": "Grace", "last_name": "Hopper", "email": format!("grace@{unique}.example"),
               "address": {"line1": "1 Compiler Lane", "town": "Leeds", "postcode": "ls1 4ap", "country": "GB"}}),
    )
    .await;
    let existing_donor = json!({
        "first_name": donor["first_name"],
        "last_name": donor["last_name"],
        "email": donor["email"],
        "postcode": donor["address"]["postcode"],
    });
    create(&stack, &token, "/api/fundraising/v1/funds", json!({"code": "GENERAL", "name": "General fund"})).await;
    // Messaging: a contact and a contact import's dry run, so that every SMS page has something to show (the viewer
    // test opens both, looking for write controls).
    create(
        &stack,
        &token,
        "/api/messaging/v1/contacts",
        json!({"phone": "07700 900001", "first_name": "Sid", "last_name": "Seeded", "tags": ["seeded"],
               "attributes": {"branch": "York"}, "consent_source": "console tests", "consented_at": "2025-04-06"}),
    )
    .await;
    create(
        &stack,
        &token,
        "/api/messaging/v1/contact-imports",
        json!({"csv": "Phone,First name,Last name\n07700 900002,Dee,Seeded\n020 7946 0018,Lan,Dline\n",
               "consent_source": "console tests"}),
    )
    .await;
    // The tenant's Twilio account, its callbacks to its webhook-ingest endpoint.
    let endpoint = create(
        &stack,
        &token,
        "/api/webhook-ingest/v1/endpoints",
        json!({"provider": "twilio", "name": "Twilio", "secret": TWILIO_TOKEN}),
    )
    .await;
    let callback = stack.gateway.url(endpoint["path"].as_str().expect("the endpoint's path"));
    let response = reqwest::Client::new()
        .put(stack.gateway.url("/api/messaging/v1/provider"))
        .bearer_auth(&token)
        .json(&json!({"account_sid": TWILIO_ACCOUNT, "auth_token": TWILIO_TOKEN, "status_callback_url": callback}))
        .send()
        .await
        .expect("PUT /provider");
    assert_eq!(response.status(), 200, "PUT /api/messaging/v1/provider");
    let staged = seed_staging(&stack, &token, &unique).await;
    let claim = seed_claim(&stack, &token).await;

    // Tenant B: its own admin, and a donor of another name that tenant A must never see.
    let other = identity::bootstrap::bootstrap(&stack.identity_pool, &format!("Other Charity {unique}"))
        .await
        .expect("tenant B");
    let other_token = token_for(&stack, &other.api_key).await;
    let other_admin_email = format!("admin@b-{unique}.example");
    create(
        &stack,
        &other_token,
        "/api/identity/v1/staff",
        json!({"email": other_admin_email, "name": "Otto Other", "role": "admin"}),
    )
    .await;
    create(
        &stack,
        &other_token,
        "/api/fundraising/v1/donors",
        json!({"first_name": "Katherine", "last_name": "Johnson", "email": format!("katherine@{unique}.example")}),
    )
    .await;

    let screenshots = root.join("target/console-screenshots");
    std::fs::create_dir_all(&screenshots).expect("the screenshot directory");
    eprintln!(
        "console: {} (mailbox {mailbox_url}); admin {admin_email}, viewer {viewer_email}, tenant B admin \
         {other_admin_email}; screenshots in {}",
        stack.gateway.base_url,
        screenshots.display()
    );
    // Node's output goes straight to the test's (nextest shows it live with --no-capture, and on failure).
    let mut child = tokio::process::Command::new(&node)
        .args(["--test", "--test-concurrency=1", "console/tests/"])
        .current_dir(&root)
        .env("CONSOLE_URL", &stack.gateway.base_url)
        .env("MAILBOX_URL", &mailbox_url)
        .env("CHROMIUM_BIN", &chromium)
        .env("SCREENSHOT_DIR", &screenshots)
        .env("ALMONER_ADMIN_EMAIL", &admin_email)
        .env("ALMONER_VIEWER_EMAIL", &viewer_email)
        .env("ALMONER_OTHER_ADMIN_EMAIL", &other_admin_email)
        .env("ALMONER_EXISTING_DONOR", existing_donor.to_string())
        .env("ALMONER_STAGED", staged.to_string())
        .env("ALMONER_CLAIM", claim.to_string())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {node} (ALMONER_TEST_NODE_BIN): {e}"));
    let status = match tokio::time::timeout(BROWSER_TESTS_TIMEOUT, child.wait()).await {
        Ok(status) => status.expect("waiting for node"),
        Err(_) => {
            let _ = child.kill().await;
            panic!("the console's browser tests did not finish within {BROWSER_TESTS_TIMEOUT:?}");
        }
    };
    assert!(
        status.success(),
        "the console's browser tests failed ({status}); their output is above, screenshots in {}, the gateway's \
         access log:\n{}",
        screenshots.display(),
        stack.gateway.access_log().lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    stack.clean_up().await;
}
