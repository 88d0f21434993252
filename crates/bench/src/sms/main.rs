//! SMS benchmark (run by scripts/bench/sms) against the stack of scripts/up, through the nginx gateway:
//!
//! - `fake`: a stand-in for Twilio's Messages API with no rate limit, answering each `POST
//!   .../Messages.json` with `201` and a sid, and `GET /count` with how many it took. It is the provider the
//!   script restarts messaging against, so the figures are messaging's, not a network's.
//! - `run`: imports `--contacts` contacts (a dry run, then the commit), queues one campaign to all of them and
//!   prints the jobs created per second (the queue call's own time), then waits for the fake to have every message
//!   and prints the send throughput, and the campaign's report.
//!
//! Load goes to loopback only; every wait is bounded.

use anyhow::{Context, ensure};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "almoner-bench-sms", about = "Campaign queueing and sending through the gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves a Twilio Messages API stand-in on 127.0.0.1:<port> until killed.
    Fake {
        #[arg(long)]
        port: u16,
    },
    /// Imports contacts, queues a campaign to them, and measures queueing and sending.
    Run {
        /// The gateway (loopback), e.g. http://127.0.0.1:8080.
        #[arg(long)]
        gateway: String,
        /// An access token of a tenant with messaging:write.
        #[arg(long, env = "BENCH_TOKEN")]
        token: String,
        /// The fake's address, as messaging was started against it.
        #[arg(long)]
        fake: String,
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        /// The longest to wait for every message to reach the fake.
        #[arg(long, default_value_t = 900)]
        timeout_secs: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Fake { port } => fake(port).await,
        Command::Run { gateway, token, fake, contacts, timeout_secs } => {
            ensure!(
                gateway.starts_with("http://127.0.0.1") || gateway.starts_with("http://localhost"),
                "loopback only"
            );
            run(&gateway, &token, &fake, contacts, Duration::from_secs(timeout_secs)).await
        }
    }
}

async fn fake(port: u16) -> anyhow::Result<()> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let taken = Arc::new(AtomicU64::new(0));
    let data = web::Data::from(taken);
    // Twilio's sids are unique everywhere: each run of the stand-in has its own prefix, so its sids never meet an
    // earlier run's (a tenant's provider sids are unique).
    let run = web::Data::new(rand::random::<u32>());
    HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(run.clone())
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                web::post().to(|n: web::Data<AtomicU64>, run: web::Data<u32>| async move {
                    let k = n.fetch_add(1, Ordering::Relaxed);
                    let sid = format!("SM{:08x}{k:024x}", **run);
                    HttpResponse::Created().json(json!({"sid": sid, "status": "queued"}))
                }),
            )
            .route(
                "/count",
                web::get().to(|n: web::Data<AtomicU64>| async move {
                    HttpResponse::Ok().json(json!({"count": n.load(Ordering::Relaxed)}))
                }),
            )
    })
    .workers(1)
    .bind(("127.0.0.1", port))
    .with_context(|| format!("binding 127.0.0.1:{port}"))?
    .run()
    .await?;
    Ok(())
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request =
            self.http.request(method.clone(), format!("{}/api/messaging{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status.is_success(), "{method} {path}: {status} {answer}");
        Ok(answer)
    }
}

async fn run(gateway: &str, token: &str, fake: &str, contacts: usize, timeout: Duration) -> anyhow::Result<()> {
    let api =
        Api { http: reqwest::Client::new(), base: gateway.trim_end_matches('/').to_owned(), token: token.to_owned() };
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let tag = format!("bench-{run}");
    let count = || async {
        let body: Value = reqwest::get(format!("{fake}/count")).await?.json().await?;
        anyhow::Ok(body["count"].as_u64().unwrap_or(0))
    };

    // The tenant's sending rules for the run: no quiet hours, a budget the campaign fits, the fake as Twilio.
    api.call(
        reqwest::Method::PATCH,
        "/v1/settings",
        Some(json!({"quiet_start": "00:00", "quiet_end": "00:00",
        "daily_budget_micros": 9_000_000_000_000_i64, "monthly_budget_micros": 9_000_000_000_000_i64,
        "daily_segment_limit": null, "monthly_segment_limit": null})),
    )
    .await?;
    api.call(
        reqwest::Method::PUT,
        "/v1/provider",
        Some(json!({"account_sid": "AC00000000000000000000000000000b3c",
        "auth_token": "0123456789abcdef0123456789abcdef"})),
    )
    .await?;

    // Contacts: +44 7<run digit><8 digits> numbers of this run, imported in files of at most 100,000 rows.
    let started = Instant::now();
    let prefix = u64::from_str_radix(&run[..2], 16).unwrap_or(0) % 10;
    for chunk in (0..contacts).collect::<Vec<_>>().chunks(100_000) {
        let mut csv = String::from("phone,first_name\n");
        for i in chunk {
            csv.push_str(&format!("+447{prefix}{i:08},Friend\n"));
        }
        let import = api
            .call(
                reqwest::Method::POST,
                "/v1/contact-imports",
                Some(json!({"csv": csv, "consent_source": "benchmark", "tags": [tag]})),
            )
            .await?;
        let id = import["id"].as_str().context("an import id")?.to_owned();
        api.call(reqwest::Method::POST, &format!("/v1/contact-imports/{id}/commit"), None).await?;
        let deadline = Instant::now() + timeout;
        while api.call(reqwest::Method::GET, &format!("/v1/contact-imports/{id}"), None).await?["status"] != "committed"
        {
            ensure!(Instant::now() < deadline, "the import did not commit in time");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    println!("contacts: {contacts} imported (dry run and commit) in {:.1} s", started.elapsed().as_secs_f64());

    let template = api
        .call(
            reqwest::Method::POST,
            "/v1/templates",
            Some(json!({"name": format!("bench {run}"), "body": "Thank you {{first_name}}, from the benchmark"})),
        )
        .await?;
    let campaign = api
        .call(
            reqwest::Method::POST,
            "/v1/campaigns",
            Some(json!({"name": format!("bench {run}"),
        "template_id": template["id"], "tags": [tag], "sender": "+447700900000"})),
        )
        .await?;
    let id = campaign["id"].as_str().context("a campaign id")?.to_owned();
    let before = count().await?;
    let started = Instant::now();
    let queued = api.call(reqwest::Method::POST, &format!("/v1/campaigns/{id}/queue"), None).await?;
    let queue_secs = started.elapsed().as_secs_f64();
    let jobs = queued["queue_summary"]["jobs"].as_u64().unwrap_or(0);
    println!(
        "queue: {jobs} jobs created in {queue_secs:.2} s: {:.0} jobs/s (goal: 100,000 in under 3 s)",
        jobs as f64 / queue_secs
    );

    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        let sent = count().await? - before;
        if sent >= jobs {
            break;
        }
        if Instant::now() >= deadline {
            // A run that ran out of time leaves no campaign sending behind it to slow the next.
            let _ = api.call(reqwest::Method::POST, &format!("/v1/campaigns/{id}/cancel"), None).await;
            anyhow::bail!("only {sent} of {jobs} reached the fake in {timeout:?}; the campaign is cancelled");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let send_secs = started.elapsed().as_secs_f64();
    println!(
        "send: {jobs} messages to the fake Twilio in {send_secs:.1} s: {:.0} messages/s (rate limit off, one sender)",
        jobs as f64 / send_secs
    );
    let report = api.call(reqwest::Method::GET, &format!("/v1/campaigns/{id}/report"), None).await?;
    println!("report: {}", serde_json::to_string(&report)?);
    Ok(())
}
