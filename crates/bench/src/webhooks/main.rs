//! Webhook intake benchmark (run by scripts/bench/webhooks): validly signed, distinct Stripe
//! `payment_intent.succeeded` deliveries posted to one webhook-ingest endpoint through the nginx gateway.
//!
//! - `load`: a paced run (open model: request `k` is due at `k / rate` whatever the answers before it, and its time
//!   to 2xx is measured from when it was due, so a stall is not hidden by sending less: no coordinated omission),
//!   then closed-loop runs at rising concurrency. Prints a table of accepted webhooks/s, p50 and p99.
//! - `flood`: a paced stream of payments with repeats and partial refunds among them, every refused or failed
//!   delivery retried as Stripe retries; prints what it sent, for the script to check against the database.
//!
//! Each delivery is built and signed (HMAC-SHA256, Stripe's scheme) just before it is sent, so bodies, event ids
//! and signatures are all distinct and fresh. Load goes to a loopback gateway only; every phase is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use almoner_webhook_verify::stripe;
use anyhow::{Context, ensure};
use clap::{Parser, Subcommand};
use serde_json::json;
use tokio::sync::Semaphore;

const MAX_CONCURRENCY: usize = 1024;
const MAX_RATE: u64 = 20_000;
const MAX_SECS: u64 = 120;
const MAX_FLOOD: usize = 200_000;
/// Deliveries allowed in flight in a paced run before the pacer waits (the wait still counts in the latencies).
const PACED_IN_FLIGHT: usize = 4096;

#[derive(Parser)]
#[command(name = "almoner-bench-webhooks", about = "Signed Stripe webhooks through the gateway")]
struct Cli {
    /// The endpoint's delivery URL through the gateway (loopback only), `.../webhooks/stripe/<id>`.
    #[arg(long, env = "BENCH_WEBHOOK_URL")]
    url: String,
    /// The endpoint's Stripe signing secret.
    #[arg(long, env = "BENCH_WEBHOOK_SECRET")]
    secret: String,
    /// Goes into every event and payment id (`evt_bench_<run>_<n>`, `pi_bench_<run>_<n>`), so runs never collide
    /// and the script can find this run's rows.
    #[arg(long)]
    run: String,
    /// Payers the payments spread over (customer `cus_bench_<run>_<d>`, email `bench-donor-<run>-<d>@example.org`):
    /// each run's own, so that a run's donors have a run's gifts rather than every earlier run's too.
    #[arg(long, default_value_t = 2000)]
    donors: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A paced run, then closed-loop runs at rising concurrency.
    Load {
        /// Webhooks/s of the paced run (0 to skip it).
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Seconds of the paced run.
        #[arg(long, default_value_t = 10)]
        paced_secs: u64,
        /// Concurrency levels of the closed-loop runs, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "8,16,32,64,128")]
        levels: Vec<usize>,
        /// Seconds per level, warm-up included.
        #[arg(long, default_value_t = 8)]
        level_secs: u64,
        /// Seconds at the start of each run that are not measured.
        #[arg(long, default_value_t = 1)]
        warmup_secs: u64,
        /// The p99 budget (ms) that picks the reported level.
        #[arg(long, default_value_t = 50.0)]
        p99_budget_ms: f64,
    },
    /// A paced stream of `total` deliveries: payments, with every 25th a repeat of an earlier delivery and every
    /// 50th a partial refund of an earlier payment. Non-2xx answers and failed requests are retried.
    Flood {
        #[arg(long, default_value_t = 20_000)]
        total: usize,
        /// Deliveries per second.
        #[arg(long, default_value_t = 400)]
        rate: u64,
    },
}

impl Cli {
    fn check(&self) -> anyhow::Result<()> {
        let url = reqwest::Url::parse(&self.url).context("--url is not a URL")?;
        let host = url.host_str().unwrap_or_default();
        ensure!(matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1"), "--url must be loopback, not {host}");
        ensure!(
            !self.run.is_empty() && self.run.chars().all(|c| c.is_ascii_alphanumeric()),
            "--run is letters and digits"
        );
        ensure!((1..=10_000).contains(&self.donors), "--donors must be 1 to 10000");
        match &self.command {
            Command::Load { rate, paced_secs, levels, level_secs, warmup_secs, .. } => {
                ensure!(*rate <= MAX_RATE, "--rate at most {MAX_RATE}");
                ensure!((1..=MAX_SECS).contains(paced_secs), "--paced-secs must be 1 to {MAX_SECS}");
                ensure!(!levels.is_empty() && levels.len() <= 12, "1 to 12 levels");
                ensure!(levels.iter().all(|c| (1..=MAX_CONCURRENCY).contains(c)), "concurrency 1 to {MAX_CONCURRENCY}");
                ensure!(
                    level_secs > warmup_secs && *level_secs <= MAX_SECS && paced_secs > warmup_secs,
                    "runs must be longer than the warm-up and at most {MAX_SECS} s"
                );
            }
            Command::Flood { total, rate } => {
                ensure!((100..=MAX_FLOOD).contains(total), "--total must be 100 to {MAX_FLOOD}");
                ensure!((1..=MAX_RATE).contains(rate), "--rate must be 1 to {MAX_RATE}");
            }
        }
        Ok(())
    }
}

/// Builds and signs deliveries.
struct Deliveries {
    client: reqwest::Client,
    url: String,
    secret: String,
    run: String,
    donors: usize,
}

/// What one delivery carries.
enum Kind {
    /// Payment `n` of `amount` pence.
    Payment { n: usize, amount: i64 },
    /// A refund (event `n`) bringing payment `of`'s refunded total to `refunded`.
    Refund { n: usize, of: usize, paid: i64, refunded: i64 },
}

/// A payment's amount: spread, deterministic, so the flood's script can recompute nothing and trust the summary.
fn amount_of(n: usize) -> i64 {
    300 + (n as i64 * 7_919) % 20_000
}

impl Deliveries {
    fn body(&self, kind: &Kind) -> Vec<u8> {
        let now = chrono::Utc::now().timestamp();
        let run = &self.run;
        let (id, event_type, object) = match *kind {
            Kind::Payment { n, amount } => {
                let donor = n % self.donors;
                let email = format!("bench-donor-{run}-{donor}@example.org");
                (
                    format!("evt_bench_{run}_{n}"),
                    "payment_intent.succeeded",
                    json!({"id": format!("pi_bench_{run}_{n}"), "object": "payment_intent", "amount": amount,
                           "amount_received": amount, "currency": "gbp", "created": now,
                           "customer": format!("cus_bench_{run}_{donor}"), "receipt_email": email,
                           "payment_method_types": ["card"],
                           "charges": {"data": [{"billing_details": {"name": format!("Bench Donor{donor}"),
                                                                      "email": email}}]}}),
                )
            }
            Kind::Refund { n, of, paid, refunded } => (
                format!("evt_bench_{run}_{n}"),
                "charge.refunded",
                json!({"id": format!("ch_bench_{run}_{of}"), "object": "charge",
                       "payment_intent": format!("pi_bench_{run}_{of}"), "amount": paid,
                       "amount_refunded": refunded, "currency": "gbp", "created": now, "refunded": false}),
            ),
        };
        serde_json::to_vec(&json!({"id": id, "object": "event", "type": event_type, "created": now,
            "livemode": false, "api_version": "2024-06-20", "data": {"object": object}}))
        .expect("an event serialises")
    }

    /// Signs and posts one body; `Ok(status)` for an answer, `Err` for a failed request.
    async fn post(&self, body: Vec<u8>) -> Result<u16, String> {
        let signature = stripe::signature_header(&self.secret, chrono::Utc::now().timestamp(), &body);
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{e}"))?;
        let status = response.status().as_u16();
        // Read the answer whole, so the connection is reused.
        let _ = response.bytes().await;
        Ok(status)
    }
}

/// Latencies in microseconds.
#[derive(Default)]
struct Latencies(Vec<u32>);

impl Latencies {
    fn push(&mut self, d: Duration) {
        self.0.push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }
    /// Nearest-rank percentile in milliseconds.
    fn ms(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_unstable();
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        f64::from(self.0[rank.clamp(1, self.0.len()) - 1]) / 1000.0
    }
}

/// One run's outcome: accepted deliveries in the measured window and their times to 2xx, and the others.
#[derive(Default)]
struct RunResult {
    accepted: usize,
    latencies: Latencies,
    errors: usize,
    first_error: Option<String>,
}

impl RunResult {
    fn record(&mut self, outcome: Result<u16, String>, took: Duration) {
        match outcome {
            Ok(status) if (200..300).contains(&status) => {
                self.accepted += 1;
                self.latencies.push(took);
            }
            Ok(status) => self.error(format!("HTTP {status}")),
            Err(e) => self.error(e),
        }
    }
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
    fn merge(&mut self, other: RunResult) {
        self.accepted += other.accepted;
        self.latencies.0.extend(other.latencies.0);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Numbers payments across runs of one invocation, so no two deliveries share an event id.
static NEXT_PAYMENT: AtomicUsize = AtomicUsize::new(0);

fn next_payment() -> Kind {
    let n = NEXT_PAYMENT.fetch_add(1, Ordering::Relaxed);
    Kind::Payment { n, amount: amount_of(n) }
}

/// Open model: delivery `k` is due at `start + k / rate`; its time counts from then.
async fn paced(d: Arc<Deliveries>, rate: u64, secs: u64, warmup: Duration) -> (RunResult, Duration) {
    let start = tokio::time::Instant::now();
    let total = rate * secs;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let in_flight = Arc::new(Semaphore::new(PACED_IN_FLIGHT));
    let mut tasks = Vec::with_capacity(total as usize);
    for k in 0..total {
        let due = start + interval.mul_f64(k as f64);
        tokio::time::sleep_until(due).await;
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        let d = d.clone();
        let measured = due.duration_since(start) >= warmup;
        tasks.push(tokio::spawn(async move {
            let outcome = d.post(d.body(&next_payment())).await;
            drop(permit);
            (measured, outcome, due.elapsed())
        }));
    }
    let mut result = RunResult::default();
    for task in tasks {
        let (measured, outcome, took) = task.await.expect("a delivery task");
        if measured {
            result.record(outcome, took);
        }
    }
    // What the service kept up with: the measured deliveries over the time from the first being due to the last
    // being answered. Below the offered rate when the service falls behind.
    (result, start.elapsed() - warmup)
}

/// Closed loop: `concurrency` senders post back to back for `secs`; those started after the warm-up count.
async fn closed(d: Arc<Deliveries>, concurrency: usize, secs: u64, warmup: Duration) -> (RunResult, Duration) {
    let start = Instant::now();
    let (measure_from, end) = (start + warmup, start + Duration::from_secs(secs));
    let senders: Vec<_> = (0..concurrency)
        .map(|_| {
            let d = d.clone();
            tokio::spawn(async move {
                let mut result = RunResult::default();
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        return result;
                    }
                    let outcome = d.post(d.body(&next_payment())).await;
                    if sent >= measure_from {
                        result.record(outcome, sent.elapsed());
                    }
                }
            })
        })
        .collect();
    let mut result = RunResult::default();
    for sender in senders {
        result.merge(sender.await.expect("a sender"));
    }
    // Senders stop starting requests at `end`; the window is what they had to start them in.
    (result, end - measure_from)
}

fn row(label: &str, result: &mut RunResult, window: Duration) -> f64 {
    let rate = result.accepted as f64 / window.as_secs_f64();
    let (p50, p99) = (result.latencies.ms(50.0), result.latencies.ms(99.0));
    println!(
        "{label:>14} {rate:>12.0} {p50:>9.1} {p99:>9.1} {errors:>8}{first}",
        errors = result.errors,
        first = result.first_error.as_deref().map(|e| format!("  (first: {e})")).unwrap_or_default()
    );
    p99
}

async fn load(
    d: Arc<Deliveries>,
    rate: u64,
    paced_secs: u64,
    levels: &[usize],
    level_secs: u64,
    warmup: Duration,
    budget: f64,
) {
    println!("{:>14} {:>12} {:>9} {:>9} {:>8}", "run", "accepted/s", "p50 ms", "p99 ms", "errors");
    let mut verdicts = Vec::new();
    if rate > 0 {
        let (mut result, window) = paced(d.clone(), rate, paced_secs, warmup).await;
        let p99 = row(&format!("paced {rate}/s"), &mut result, window);
        verdicts.push(format!(
            "paced {rate}/s: p99 {p99:.1} ms (goal under 20 ms: {})",
            if p99 < 20.0 && result.errors == 0 { "met" } else { "NOT met" }
        ));
    }
    let mut chosen: Option<(usize, f64, f64)> = None;
    for &concurrency in levels {
        let (mut result, window) = closed(d.clone(), concurrency, level_secs, warmup).await;
        let rate = result.accepted as f64 / window.as_secs_f64();
        let p99 = row(&format!("concurrency {concurrency}"), &mut result, window);
        if p99 < budget && result.errors == 0 {
            chosen = Some((concurrency, rate, p99));
        }
    }
    match chosen {
        Some((concurrency, rate, p99)) => verdicts.push(format!(
            "highest concurrency with p99 under {budget} ms: {concurrency}, {rate:.0} accepted/s at p99 {p99:.1} ms \
             (goal at least 2000/s: {})",
            if rate >= 2000.0 { "met" } else { "NOT met" }
        )),
        None => verdicts.push(format!("no concurrency kept p99 under {budget} ms without errors")),
    }
    for verdict in verdicts {
        println!("{verdict}");
    }
    println!("payments sent: {}", NEXT_PAYMENT.load(Ordering::Relaxed));
}

/// What the flood sends at `k`: every 25th a repeat of delivery `k - 10`, every 50th (offset 41) a partial refund
/// of payment `k - 20`, otherwise a new payment numbered `k`.
fn flood_kind(k: usize) -> (Kind, bool) {
    if k % 25 == 12 {
        return (flood_kind(k - 10).0, true);
    }
    if k % 50 == 41 {
        let of = k - 20;
        let paid = amount_of(of);
        return (Kind::Refund { n: k, of, paid, refunded: paid / 3 }, false);
    }
    (Kind::Payment { n: k, amount: amount_of(k) }, false)
}

async fn flood(d: Arc<Deliveries>, total: usize, rate: u64) {
    let (mut payments, mut refunds, mut repeats, mut net) = (0usize, 0usize, 0usize, 0i64);
    for k in 0..total {
        match flood_kind(k) {
            (_, true) => repeats += 1,
            (Kind::Payment { amount, .. }, false) => (payments, net) = (payments + 1, net + amount),
            (Kind::Refund { refunded, .. }, false) => (refunds, net) = (refunds + 1, net - refunded),
        }
    }
    let retries = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let in_flight = Arc::new(Semaphore::new(PACED_IN_FLIGHT));
    let progress = tokio::spawn({
        let answered = answered.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                eprintln!(
                    "[flood] {:>6} of {total} answered 2xx after {:.0} s",
                    answered.load(Ordering::Relaxed),
                    start.elapsed().as_secs_f64()
                );
            }
        }
    });
    let mut tasks = Vec::with_capacity(total);
    for k in 0..total {
        let due = start + interval.mul_f64(k as f64);
        tokio::time::sleep_until(due).await;
        let permit = in_flight.clone().acquire_owned().await.expect("the semaphore is never closed");
        let (d, retries, answered) = (d.clone(), retries.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let body = d.body(&flood_kind(k).0);
            // As Stripe does: until a 2xx, again with a new signature, backing off (here briefly: 0.2 s to 3.2 s).
            for attempt in 0..30u32 {
                match d.post(body.clone()).await {
                    Ok(status) if (200..300).contains(&status) => {
                        drop(permit);
                        answered.fetch_add(1, Ordering::Relaxed);
                        return (due.elapsed(), attempt);
                    }
                    _ => {
                        retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(200 << attempt.min(4))).await;
                    }
                }
            }
            panic!("delivery {k} was not accepted after 30 attempts");
        }));
    }
    let mut latencies = Latencies::default();
    for task in tasks {
        let (took, _) = task.await.expect("every delivery is accepted in the end");
        latencies.push(took);
    }
    progress.abort();
    let elapsed = start.elapsed();
    println!(
        "flood: {total} deliveries in {:.1} s ({:.0}/s): p50 {:.1} ms, p99 {:.1} ms to 2xx (from when each was due); \
         {} retries",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        latencies.ms(50.0),
        latencies.ms(99.0),
        retries.load(Ordering::Relaxed)
    );
    // For the script: `key=value`, one line.
    println!(
        "FLOOD events={} payments={payments} refunds={refunds} repeats={repeats} net_minor={net}",
        payments + refunds
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.check()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_CONCURRENCY)
        .timeout(Duration::from_secs(30))
        .build()
        .context("HTTP client")?;
    let deliveries = Arc::new(Deliveries {
        client,
        url: cli.url.clone(),
        secret: cli.secret.clone(),
        run: cli.run.clone(),
        donors: cli.donors,
    });
    match cli.command {
        Command::Load { rate, paced_secs, levels, level_secs, warmup_secs, p99_budget_ms } => {
            let warmup = Duration::from_secs(warmup_secs);
            load(deliveries, rate, paced_secs, &levels, level_secs, warmup, p99_budget_ms).await;
        }
        Command::Flood { total, rate } => flood(deliveries, total, rate).await,
    }
    Ok(())
}
