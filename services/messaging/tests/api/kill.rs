//! The real `messaging serve` binary, its sender SIGKILLed twice in the middle of a 5,000-recipient campaign and
//! started again: the fake Twilio must receive each recipient exactly once. Jobs the killed process had marked
//! `sending` are looked up at Twilio when their lease runs out: recorded if Twilio has them, sent if not.

use crate::helpers::{TEST_SECRETS_KEY, TestApp, spawn_app_with};
use almoner_testkit::db::APP_ROLE;
use almoner_testkit::fake_twilio::FakeTwilio;
use serde_json::json;
use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const RECIPIENTS: usize = 5_000;

/// A `messaging serve` child process running the sender; SIGKILLed when dropped.
struct MessagingProcess(Child);

impl MessagingProcess {
    fn spawn(app: &TestApp, twilio: &FakeTwilio) -> Self {
        let amqp_url = std::env::var("ALMONER_TEST_AMQP_URL").expect("ALMONER_TEST_AMQP_URL is set");
        let mut command = Command::new(env!("CARGO_BIN_EXE_messaging"));
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ALMONER_") {
                command.env_remove(name);
            }
        }
        command
            .arg("serve")
            .env("ALMONER_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
            .env("ALMONER_ENV", "test")
            .env("ALMONER_SERVER__PORT", "0")
            .env("ALMONER_SERVER__WORKERS", "1")
            .env("ALMONER_DATABASE__URL", app.db.app_url())
            .env("ALMONER_DATABASE__MIGRATION_URL", app.db.admin_url())
            .env("ALMONER_DATABASE__APP_ROLE", APP_ROLE)
            .env("ALMONER_AMQP__URL", amqp_url)
            .env("ALMONER_AMQP__NAMESPACE", &app.amqp.namespace)
            .env("ALMONER_AUTH__JWKS_URL", &app.issuer.jwks_url)
            .env("ALMONER_SMS__TWILIO_BASE_URL", twilio.base_url())
            .env("ALMONER_SMS__SECRETS_KEY", TEST_SECRETS_KEY)
            .env("ALMONER_SMS__MESSAGES_PER_SECOND", "0")
            .env("ALMONER_SMS__BATCH_SIZE", "50")
            .env("ALMONER_SMS__SENDING_TIMEOUT_SECS", "2")
            .env("ALMONER_TELEMETRY__LOG_LEVEL", "warn")
            .stdin(Stdio::null());
        if std::env::var_os("TEST_LOG").is_none() {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Self(command.spawn().expect("the messaging binary starts"))
    }
}

impl Drop for MessagingProcess {
    fn drop(&mut self) {
        // std's Child::kill sends SIGKILL: no shutdown at all.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until(what: &str, seconds: u64, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !check() {
        assert!(Instant::now() < deadline, "{what} within {seconds} s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_twice_mid_campaign_sends_each_recipient_exactly_once() {
    let twilio = FakeTwilio::start().await;
    twilio.add_account(ACCOUNT, TOKEN);
    // The API in this process, its sender off: only the child processes send.
    let app = spawn_app_with(|s| {
        s.sms.sender = false;
        s.sms.secrets_key = Some(TEST_SECRETS_KEY.to_owned().into());
    })
    .await;
    let response = app
        .client
        .put(app.url("/v1/provider"))
        .bearer_auth(app.token())
        .json(&json!({"account_sid": ACCOUNT, "auth_token": TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // 5,000 messages at $0.04 are $200: above the default $100 a day.
    let response = app
        .patch(
            "/v1/settings",
            &app.token(),
            &json!({"quiet_start": "00:00", "quiet_end": "00:00", "daily_budget_micros": 300_000_000}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let mut csv = String::from("phone,first_name\n");
    for i in 0..RECIPIENTS {
        csv.push_str(&format!("+4477{i:08},P{i}\n"));
    }
    let import = app
        .post_ok("/v1/contact-imports", &json!({"csv": csv, "consent_source": "kill test", "tags": ["all"]}), 201)
        .await;
    let import_id = import["id"].as_str().unwrap().to_owned();
    app.post_ok(&format!("/v1/contact-imports/{import_id}/commit"), &json!({}), 202).await;
    app.wait_committed(&import_id).await;
    let template = app.post_ok("/v1/templates", &json!({"name": "k", "body": "Thank you {{first_name}}"}), 201).await;
    let campaign = app
        .post_ok(
            "/v1/campaigns",
            &json!({"name": "Kill", "template_id": template["id"], "tags": ["all"], "sender": "+447700900000"}),
            201,
        )
        .await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let queued = app.post_ok(&format!("/v1/campaigns/{id}/queue"), &json!({}), 200).await;
    assert_eq!(queued["queue_summary"]["jobs"], RECIPIENTS);

    for kill_at in [800, 2_500] {
        let process = MessagingProcess::spawn(&app, &twilio);
        wait_until(&format!("{kill_at} sent before the kill"), 120, || twilio.count() >= kill_at).await;
        drop(process);
    }
    let _last = MessagingProcess::spawn(&app, &twilio);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let c = app.get_ok(&format!("/v1/campaigns/{id}")).await;
        if c["status"] == "completed" {
            assert_eq!(c["jobs"]["sent"], RECIPIENTS, "{c}");
            break;
        }
        assert!(Instant::now() < deadline, "the campaign completes after the kills: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let messages = twilio.messages();
    let distinct: HashSet<&str> = messages.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(distinct.len(), RECIPIENTS, "every recipient texted");
    assert_eq!(messages.len(), RECIPIENTS, "none twice");
}
