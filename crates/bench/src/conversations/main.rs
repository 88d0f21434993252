//! Conversations benchmark (run by scripts/bench/conversations) against the stack of scripts/up, through the nginx
//! gateway: `--members` chat widget members each hold their live stream open (Server-Sent Events) while one staff
//! inbox stream is open too; then members write and staff reply, `--messages` in all at `--concurrency`, each
//! message timed from its request to its arrival on the stream that must show it (the staff inbox for a member's
//! message, the member's own stream for a staff reply). Prints the messages accepted per second and the delivery
//! latency (p50, p95, p99, max) with every connection open.
//!
//! It gives the demo tenant's widget a bench origin and a new secret (printed): the demo's previous secret stops
//! working. Load goes to loopback only; every wait is bounded.

use anyhow::{Context, bail, ensure};
use clap::Parser;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const ORIGIN: &str = "https://bench.almoner.invalid";

#[derive(Parser)]
#[command(name = "almoner-bench-conversations", about = "Live conversation delivery through the gateway")]
struct Cli {
    /// The gateway (loopback), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    gateway: String,
    /// An access token of the tenant with identity:admin, messaging:read and messaging:write.
    #[arg(long, env = "BENCH_TOKEN")]
    token: String,
    /// Members, each with a live stream open.
    #[arg(long, default_value_t = 1000)]
    members: usize,
    /// Messages sent in all (half by members, half staff replies).
    #[arg(long, default_value_t = 4000)]
    messages: usize,
    /// Messages in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// The longest to wait for every message to arrive.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

/// When each marked message was sent; its delivery removes it and records the latency.
#[derive(Default)]
struct Clock {
    sent: HashMap<String, Instant>,
    latencies: Vec<Duration>,
}

type Shared = Arc<Mutex<Clock>>;

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

async fn ok_json(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    ensure!(status.is_success(), "{what}: {status} {body}");
    Ok(body)
}

/// Reads a stream until it ends, recording the delivery of every marked message it carries.
async fn follow(mut response: reqwest::Response, clock: Shared, ready: tokio::sync::mpsc::Sender<()>) {
    let mut buffer = String::new();
    let mut announced = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        let arrived = Instant::now();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            if !announced && frame.contains("event: ready") {
                announced = true;
                let _ = ready.send(()).await;
            }
            if let Some(start) = frame.find("[bench:") {
                let mark: String = frame[start..].chars().take_while(|c| *c != ']').collect();
                let mut clock = clock.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(sent) = clock.sent.remove(&mark) {
                    clock.latencies.push(arrived - sent);
                }
            }
        }
    }
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ensure!(
        cli.gateway.starts_with("http://127.0.0.1") || cli.gateway.starts_with("http://localhost"),
        "loopback only"
    );
    let http = reqwest::Client::builder().pool_max_idle_per_host(cli.concurrency * 2).build()?;
    let url = |path: &str| format!("{}{path}", cli.gateway.trim_end_matches('/'));
    let claims: Value = {
        use base64::Engine;
        let payload = cli.token.split('.').nth(1).context("the token is not a JWT")?;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?
    };
    let tenant = claims["tid"].as_str().context("the token has no tenant")?.to_owned();

    // The widget, for the bench's origin.
    let current =
        ok_json(http.get(url("/api/identity/v1/widget")).bearer_auth(&cli.token).send().await?, "widget").await?;
    let mut origins: Vec<Value> = current["allowed_origins"].as_array().cloned().unwrap_or_default();
    if !origins.iter().any(|o| o == ORIGIN) {
        origins.push(json!(ORIGIN));
    }
    let settings = json!({
        "allowed_origins": origins, "identity_required": true, "greeting": current["greeting"],
        "accent_colour": current["accent_colour"], "notify_email_on_reply": false,
        "reply_mail_url": current["reply_mail_url"],
    });
    ok_json(http.put(url("/api/identity/v1/widget")).bearer_auth(&cli.token).json(&settings).send().await?, "settings")
        .await?;
    let secret =
        ok_json(http.post(url("/api/identity/v1/widget/secret")).bearer_auth(&cli.token).send().await?, "secret")
            .await?["secret"]
            .as_str()
            .context("no secret")?
            .to_owned();
    println!("widget secret rotated for the bench (the demo's previous one no longer works): {secret}");

    let clock: Shared = Arc::default();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(cli.members + 1);
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();

    // The staff inbox.
    let inbox = http.get(url("/api/messaging/v1/conversations/stream")).bearer_auth(&cli.token).send().await?;
    ensure!(inbox.status().is_success(), "the inbox stream: {}", inbox.status());
    tokio::spawn(follow(inbox, clock.clone(), ready_tx.clone()));

    // Members: a token each, a stream each, a conversation each.
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(cli.concurrency));
    let mut joins = Vec::new();
    for i in 0..cli.members {
        let (http, gate, clock, ready_tx) = (http.clone(), gate.clone(), clock.clone(), ready_tx.clone());
        let (token_url, stream_url, start_url) = (
            url("/api/identity/v1/widget/token"),
            url("/api/messaging/v1/member/stream"),
            url("/api/messaging/v1/member/conversations"),
        );
        let (tenant, secret, run) = (tenant.clone(), secret.clone(), run.clone());
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let identifier = format!("bench-{run}-{i}");
            let body = json!({"tenant_id": tenant, "identifier": identifier,
                "identifier_hash": hmac_hex(secret.as_bytes(), identifier.as_bytes())});
            let token = ok_json(http.post(&token_url).header("origin", ORIGIN).json(&body).send().await?, "token")
                .await?["access_token"]
                .as_str()
                .context("no token")?
                .to_owned();
            let stream = http.get(&stream_url).bearer_auth(&token).header("origin", ORIGIN).send().await?;
            ensure!(stream.status().is_success(), "member stream: {}", stream.status());
            tokio::spawn(follow(stream, clock, ready_tx));
            let first = json!({"body": format!("Hello from {identifier}")});
            let conversation = ok_json(
                http.post(&start_url).bearer_auth(&token).header("origin", ORIGIN).json(&first).send().await?,
                "conversation",
            )
            .await?["conversation"]["id"]
                .as_str()
                .context("no conversation")?
                .to_owned();
            Ok::<_, anyhow::Error>((token, conversation))
        }));
    }
    let mut members = Vec::new();
    for join in joins {
        members.push(join.await??);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for _ in 0..=cli.members {
        tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), ready_rx.recv())
            .await
            .context("not every stream said it was ready within 30 s")?;
    }
    println!(
        "{} member streams and 1 staff inbox stream open ({} conversations started) in {:.1} s",
        cli.members,
        members.len(),
        started.elapsed().as_secs_f64()
    );

    // The load: alternately a member's message (to the inbox) and a staff reply (to the member's stream).
    let members = Arc::new(members);
    let started = Instant::now();
    let mut joins = Vec::new();
    for n in 0..cli.messages {
        let (http, gate, clock, members) = (http.clone(), gate.clone(), clock.clone(), members.clone());
        let (member_url, staff_url, staff_token) =
            (url("/api/messaging/v1/member/conversations"), url("/api/messaging/v1/conversations"), cli.token.clone());
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let (token, conversation) = &members[n % members.len()];
            let mark = format!("[bench:{n}");
            let body = json!({"body": format!("message {mark}] of the bench")});
            clock.lock().unwrap_or_else(|e| e.into_inner()).sent.insert(mark, Instant::now());
            let request = if n % 2 == 0 {
                http.post(format!("{member_url}/{conversation}/messages")).bearer_auth(token).header("origin", ORIGIN)
            } else {
                http.post(format!("{staff_url}/{conversation}/messages")).bearer_auth(&staff_token)
            };
            ok_json(request.json(&body).send().await?, "message").await?;
            Ok::<_, anyhow::Error>(())
        }));
    }
    for join in joins {
        join.await??;
    }
    let accepted = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(cli.timeout_secs);
    loop {
        let waiting = clock.lock().unwrap_or_else(|e| e.into_inner()).sent.len();
        if waiting == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{waiting} messages never arrived on their stream within {} s", cli.timeout_secs);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies = std::mem::take(&mut clock.lock().unwrap_or_else(|e| e.into_inner()).latencies);
    latencies.sort();
    println!(
        "{} messages accepted in {:.2} s: {:.0} messages/s (concurrency {}), every one delivered",
        cli.messages,
        accepted.as_secs_f64(),
        cli.messages as f64 / accepted.as_secs_f64(),
        cli.concurrency
    );
    println!(
        "delivery latency (request sent -> frame on the stream), ms: p50 {:.1}, p95 {:.1}, p99 {:.1}, max {:.1}",
        quantile(&latencies, 0.50),
        quantile(&latencies, 0.95),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0)
    );
    Ok(())
}
