//! Gift intake benchmark (run by scripts/bench/gifts): closed-loop load of `POST /api/fundraising/v1/gifts` through
//! the nginx gateway at rising concurrency, the highest concurrency whose p99 stays under a budget, and the lag from
//! a gift's `201` to rollup's `GET /api/rollup/v1/donors/{id}` showing the donor's new lifetime total.
//!
//! Every loop is bounded in time and count; load goes to a loopback gateway only.

mod api;
mod metrics;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use uuid::Uuid;

use api::{Api, Credentials, GiftOutcome};
use metrics::{Histogram, Scrape};

const MAX_LEVELS: usize = 12;
const MAX_CONCURRENCY: usize = 512;
const MAX_DONORS: usize = 5000;
const MAX_PHASE_SECS: u64 = 60;

#[derive(Parser)]
#[command(name = "almoner-bench", about = "Gift intake throughput and rollup lag through the gateway")]
struct Cli {
    /// The gateway (loopback only).
    #[arg(long, env = "BENCH_GATEWAY", default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// JSON with api_key_id and api_key (scripts/up writes .run/demo-credentials.json).
    #[arg(long, env = "BENCH_CREDENTIALS")]
    credentials: PathBuf,
    /// fundraising's /metrics, read directly (empty to skip the breakdown).
    #[arg(long, env = "BENCH_FUNDRAISING_METRICS", default_value = "http://127.0.0.1:8081/metrics")]
    fundraising_metrics: String,
    /// rollup's /metrics, read directly (empty to skip).
    #[arg(long, env = "BENCH_ROLLUP_METRICS", default_value = "http://127.0.0.1:8085/metrics")]
    rollup_metrics: String,
    /// Donors to spread the load over.
    #[arg(long, env = "BENCH_DONORS", default_value_t = 200)]
    donors: usize,
    /// Concurrency levels of the sweep, comma separated.
    #[arg(long, env = "BENCH_LEVELS", value_delimiter = ',', default_value = "1,2,4,8,16,32,64")]
    levels: Vec<usize>,
    /// Seconds per level, warm-up included.
    #[arg(long, env = "BENCH_LEVEL_SECS", default_value_t = 8)]
    level_secs: u64,
    /// Seconds at the start of each level that are not measured.
    #[arg(long, env = "BENCH_WARMUP_SECS", default_value_t = 1)]
    warmup_secs: u64,
    /// The p99 budget, in milliseconds, that picks the reported level.
    #[arg(long, env = "BENCH_P99_BUDGET_MS", default_value_t = 50.0)]
    p99_budget_ms: f64,
    /// Run every level even after two in a row exceed the budget.
    #[arg(long, env = "BENCH_FULL_SWEEP", default_value_t = false)]
    full_sweep: bool,
    /// Background gifts/s of the paced lag run (0 to skip it).
    #[arg(long, env = "BENCH_LAG_RATE", default_value_t = 200)]
    lag_rate: u64,
    /// Seconds of each lag run.
    #[arg(long, env = "BENCH_LAG_SECS", default_value_t = 6)]
    lag_secs: u64,
    /// Also measure the lag under the chosen level's closed-loop load.
    #[arg(long, env = "BENCH_LAG_AT_CHOSEN", default_value_t = true, action = clap::ArgAction::Set)]
    lag_at_chosen: bool,
    /// Dedicated donors the lag watchers give to, one gift in flight each.
    #[arg(long, env = "BENCH_LAG_WATCHERS", default_value_t = 4)]
    lag_watchers: usize,
    /// Milliseconds between rollup polls.
    #[arg(long, env = "BENCH_LAG_POLL_MS", default_value_t = 10)]
    lag_poll_ms: u64,
    /// Milliseconds a watcher waits after a visible gift before its next one.
    #[arg(long, env = "BENCH_LAG_PAUSE_MS", default_value_t = 20)]
    lag_pause_ms: u64,
    /// Seconds to wait for one gift to show before counting it as a timeout.
    #[arg(long, env = "BENCH_LAG_TIMEOUT_SECS", default_value_t = 10)]
    lag_timeout_secs: u64,
    /// Currency of the gifts.
    #[arg(long, env = "BENCH_CURRENCY", default_value = "GBP")]
    currency: String,
    /// Shown in the header and the result line: how the services were built and the database runs.
    #[arg(long, env = "BENCH_BUILD", default_value = "unknown")]
    build: String,
}

impl Cli {
    fn check(&self) -> anyhow::Result<()> {
        let url = reqwest::Url::parse(&self.gateway).context("--gateway is not a URL")?;
        let host = url.host_str().unwrap_or_default();
        ensure!(
            matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "::1"),
            "--gateway must be a loopback address, not {host}"
        );
        for metrics in [&self.fundraising_metrics, &self.rollup_metrics] {
            if !metrics.is_empty() {
                let url = reqwest::Url::parse(metrics).context("a metrics URL is not a URL")?;
                ensure!(
                    url.host_str() == Some("127.0.0.1") || url.host_str() == Some("localhost"),
                    "metrics URLs must be loopback"
                );
            }
        }
        ensure!(!self.levels.is_empty() && self.levels.len() <= MAX_LEVELS, "1 to {MAX_LEVELS} levels");
        ensure!(
            self.levels.iter().all(|c| (1..=MAX_CONCURRENCY).contains(c)),
            "concurrency must be 1 to {MAX_CONCURRENCY}"
        );
        ensure!((1..=MAX_DONORS).contains(&self.donors), "--donors must be 1 to {MAX_DONORS}");
        ensure!(
            self.level_secs > self.warmup_secs && self.level_secs <= MAX_PHASE_SECS,
            "--level-secs must exceed the warm-up and be at most {MAX_PHASE_SECS}"
        );
        ensure!((1..=MAX_PHASE_SECS).contains(&self.lag_secs), "--lag-secs must be 1 to {MAX_PHASE_SECS}");
        ensure!(self.lag_rate <= 5000, "--lag-rate at most 5000");
        ensure!((1..=64).contains(&self.lag_watchers), "--lag-watchers must be 1 to 64");
        ensure!((1..=30).contains(&self.lag_timeout_secs), "--lag-timeout-secs must be 1 to 30");
        ensure!(self.lag_poll_ms >= 1, "--lag-poll-ms at least 1");
        Ok(())
    }
}

fn today() -> String {
    chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string()
}

fn random_amount() -> i64 {
    rand::random_range(100..=25_000)
}

/// Latencies in microseconds; sorted before reading percentiles.
#[derive(Default)]
struct Latencies(Vec<u32>);

impl Latencies {
    fn push(&mut self, d: Duration) {
        self.0.push(u32::try_from(d.as_micros()).unwrap_or(u32::MAX));
    }
    fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }
    fn sort(&mut self) {
        self.0.sort_unstable();
    }
    /// Nearest-rank percentile in milliseconds (sorted first).
    fn ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        f64::from(self.0[rank.clamp(1, self.0.len()) - 1]) / 1000.0
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Default)]
struct Errors {
    count: u64,
    first: Option<String>,
}

impl Errors {
    fn add(&mut self, what: String) {
        self.count += 1;
        self.first.get_or_insert(what);
    }
    fn merge(&mut self, other: Errors) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

struct LevelResult {
    concurrency: usize,
    ok: usize,
    errors: Errors,
    measured: Duration,
    latencies: Latencies,
    server: Option<Histogram>,
    pool_wait: Option<Histogram>,
}

impl LevelResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.measured.as_secs_f64()
    }
}

/// Closed loop: `concurrency` workers each post gifts back to back until `total` has passed; only requests started
/// after `warmup` count.
async fn closed_loop(
    api: Arc<Api>,
    donors: Arc<Vec<Uuid>>,
    concurrency: usize,
    warmup: Duration,
    total: Duration,
) -> (Latencies, Errors, Duration) {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = start + total;
    let date = Arc::new(today());
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (api, donors, date) = (api.clone(), donors.clone(), date.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut errors = Errors::default();
            while Instant::now() < end {
                let donor = donors[rand::random_range(0..donors.len())];
                let sent = Instant::now();
                let outcome = api.create_gift(donor, random_amount(), &date).await;
                let took = sent.elapsed();
                if sent < measure_from {
                    continue;
                }
                match outcome {
                    GiftOutcome::Created => latencies.push(took),
                    GiftOutcome::Rejected(status, body) => errors.add(format!("{status}: {body}")),
                    GiftOutcome::Failed(e) => {
                        errors.add(e);
                        // A refused connection fails at once: do not spin.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Latencies::default();
    let mut errors = Errors::default();
    for worker in workers {
        let (l, e) = worker.await.expect("load worker panicked");
        latencies.merge(l);
        errors.merge(e);
    }
    latencies.sort();
    (latencies, errors, total - warmup)
}

/// Open loop at `rate` gifts/s for `total`, at most 256 in flight (beyond that a tick is skipped and counted).
async fn paced_loop(api: Arc<Api>, donors: Arc<Vec<Uuid>>, rate: u64, total: Duration) -> (u64, u64, u64) {
    let sent_ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut skipped = 0;
    let in_flight = Arc::new(tokio::sync::Semaphore::new(256));
    let date = Arc::new(today());
    let end = Instant::now() + total;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    while Instant::now() < end {
        tick.tick().await;
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let (api, donors, date, sent_ok, failed) =
            (api.clone(), donors.clone(), date.clone(), sent_ok.clone(), failed.clone());
        tasks.spawn(async move {
            let donor = donors[rand::random_range(0..donors.len())];
            match api.create_gift(donor, random_amount(), &date).await {
                GiftOutcome::Created => sent_ok.fetch_add(1, Ordering::Relaxed),
                _ => failed.fetch_add(1, Ordering::Relaxed),
            };
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    (sent_ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), skipped)
}

struct LagResult {
    label: String,
    /// How long rollup took, before this run, to catch up with what earlier phases had posted.
    caught_up_in: Duration,
    lags: Latencies,
    polls: Latencies,
    timeouts: u64,
    errors: Errors,
    background_rate: f64,
    background_errors: u64,
    relay: Option<Histogram>,
    rollup_get: Option<Histogram>,
}

struct LagSettings {
    secs: u64,
    poll: Duration,
    pause: Duration,
    timeout: Duration,
}

/// One watcher per dedicated donor: post a gift, then poll rollup until the donor's lifetime total includes it.
/// `expected` is the donor's lifetime total so far (gifts of earlier runs); the new one is returned.
async fn watcher(
    api: Arc<Api>,
    donor: Uuid,
    mut expected: i64,
    settings: Arc<LagSettings>,
    end: Instant,
) -> (Latencies, Latencies, u64, Errors, i64) {
    let mut lags = Latencies::default();
    let mut polls = Latencies::default();
    let mut timeouts = 0;
    let mut errors = Errors::default();
    let date = today();
    // Bounded: one gift per iteration, each bounded by the lag timeout, until `end`.
    while Instant::now() < end {
        let amount = random_amount();
        match api.create_gift(donor, amount, &date).await {
            GiftOutcome::Created => expected += amount,
            GiftOutcome::Rejected(status, body) => {
                errors.add(format!("gift {status}: {body}"));
                tokio::time::sleep(settings.pause).await;
                continue;
            }
            GiftOutcome::Failed(e) => {
                errors.add(format!("gift: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        let created = Instant::now();
        let give_up = created + settings.timeout;
        loop {
            let asked = Instant::now();
            let seen = api.rollup_total(donor).await;
            polls.push(asked.elapsed());
            match seen {
                Ok(Some(total)) if total >= expected => {
                    lags.push(created.elapsed());
                    if total > expected {
                        errors.add(format!("rollup shows {total}, more than the {expected} given to {donor}"));
                        expected = total;
                    }
                    break;
                }
                Ok(_) => {}
                Err(e) => errors.add(e.to_string()),
            }
            if Instant::now() >= give_up {
                timeouts += 1;
                break;
            }
            tokio::time::sleep(settings.poll).await;
        }
        tokio::time::sleep(settings.pause).await;
    }
    (lags, polls, timeouts, errors, expected)
}

/// Posts a probe gift for `donor` and waits (at most 120 s) until rollup shows it: the queue is then drained of
/// everything posted before. Returns how long that took.
async fn catch_up(api: &Api, donor: Uuid, expected: &mut i64, settings: &LagSettings) -> anyhow::Result<Duration> {
    let amount = random_amount();
    match api.create_gift(donor, amount, &today()).await {
        GiftOutcome::Created => *expected += amount,
        GiftOutcome::Rejected(status, body) => anyhow::bail!("probe gift refused: {status} {body}"),
        GiftOutcome::Failed(e) => anyhow::bail!("probe gift failed: {e:#}"),
    }
    let started = Instant::now();
    let give_up = started + Duration::from_secs(120);
    loop {
        if let Ok(Some(total)) = api.rollup_total(donor).await
            && total >= *expected
        {
            *expected = total;
            return Ok(started.elapsed());
        }
        anyhow::ensure!(Instant::now() < give_up, "rollup did not catch up within 120 s");
        tokio::time::sleep(settings.poll.max(Duration::from_millis(20))).await;
    }
}

enum Background {
    Paced(u64),
    Closed(usize),
}

#[allow(clippy::too_many_arguments)]
async fn lag_run(
    api: Arc<Api>,
    cli: &Cli,
    donors: Arc<Vec<Uuid>>,
    watched: &[Uuid],
    expected: &mut [i64],
    settings: Arc<LagSettings>,
    background: Background,
) -> anyhow::Result<LagResult> {
    api.refresh_token().await?;
    // Lag is measured on a queue that is not still working through an earlier phase's backlog.
    let caught_up_in = catch_up(&api, watched[0], &mut expected[0], &settings).await?;
    let before = scrape_all(&api, cli).await;
    let total = Duration::from_secs(settings.secs);
    let end = Instant::now() + total;
    let watchers: Vec<_> = watched
        .iter()
        .zip(expected.iter())
        .map(|(&d, &e)| tokio::spawn(watcher(api.clone(), d, e, settings.clone(), end)))
        .collect();
    let (label, background_rate, background_errors) = match background {
        Background::Paced(rate) => {
            let (ok, failed, skipped) = paced_loop(api.clone(), donors, rate, total).await;
            (format!("paced {rate}/s"), ok as f64 / total.as_secs_f64(), failed + skipped)
        }
        Background::Closed(c) => {
            let (latencies, errors, measured) = closed_loop(api.clone(), donors, c, Duration::ZERO, total).await;
            (format!("closed c={c}"), latencies.len() as f64 / measured.as_secs_f64(), errors.count)
        }
    };
    let mut result = LagResult {
        label,
        caught_up_in,
        lags: Latencies::default(),
        polls: Latencies::default(),
        timeouts: 0,
        errors: Errors::default(),
        background_rate,
        background_errors,
        relay: None,
        rollup_get: None,
    };
    for (w, expected) in watchers.into_iter().zip(expected.iter_mut()) {
        let (lags, polls, timeouts, errors, total) = w.await.expect("watcher panicked");
        *expected = total;
        result.lags.merge(lags);
        result.polls.merge(polls);
        result.timeouts += timeouts;
        result.errors.merge(errors);
    }
    result.lags.sort();
    result.polls.sort();
    let after = scrape_all(&api, cli).await;
    result.relay = delta(&before.0, &after.0, "almoner_outbox_relay_lag_seconds", &[("schema", "fundraising")]);
    result.rollup_get =
        delta(&before.1, &after.1, "http_request_duration_seconds", &[("method", "GET"), ("route", "/v1/donors/{id}")]);
    Ok(result)
}

async fn scrape(api: &Api, url: &str) -> Option<Scrape> {
    if url.is_empty() {
        return None;
    }
    match api.scrape(url).await {
        Ok(text) => Some(Scrape::parse(&text)),
        Err(e) => {
            eprintln!("[bench] no breakdown from {url}: {e:#}");
            None
        }
    }
}

async fn scrape_all(api: &Api, cli: &Cli) -> (Option<Scrape>, Option<Scrape>) {
    (scrape(api, &cli.fundraising_metrics).await, scrape(api, &cli.rollup_metrics).await)
}

fn delta(before: &Option<Scrape>, after: &Option<Scrape>, name: &str, filter: &[(&str, &str)]) -> Option<Histogram> {
    let after = after.as_ref()?.histogram(name, filter)?;
    let before = before.as_ref().and_then(|s| s.histogram(name, filter));
    Some(after.since(before.as_ref())).filter(|h| h.count > 0.0)
}

async fn create_donors(api: &Arc<Api>, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8.min(n) {
        let (api, next) = (api.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= n {
                    return Ok::<_, anyhow::Error>(ids);
                }
                ids.push(api.create_donor(i).await?);
            }
        }));
    }
    let mut ids = Vec::with_capacity(n);
    for t in tasks {
        ids.extend(t.await.expect("donor task panicked")?);
    }
    Ok(ids)
}

fn ms(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "n/a".to_owned(), |s| format!("{:.2}", s * 1000.0))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(2),
        Err(e) => {
            eprintln!("[bench] ERROR: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs everything; `Ok(false)` when no level met the budget (the report says so).
async fn run() -> anyhow::Result<bool> {
    let cli = Cli::parse();
    cli.check()?;
    let credentials: Credentials = serde_json::from_slice(
        &std::fs::read(&cli.credentials).with_context(|| format!("reading {}", cli.credentials.display()))?,
    )
    .with_context(|| format!("{} has no api_key_id and api_key", cli.credentials.display()))?;
    let max_c = cli.levels.iter().copied().max().unwrap_or(1) + cli.lag_watchers + 16;
    let api = Arc::new(Api::new(&cli.gateway, credentials, cli.currency.clone(), max_c)?);

    let ttl = api.refresh_token().await.context("getting a token with the demo credentials")?;
    eprintln!("[bench] token ok (valid {ttl} s); creating {} donors + {} watched", cli.donors, cli.lag_watchers);
    let started = Instant::now();
    let all = create_donors(&api, cli.donors + cli.lag_watchers).await?;
    let (watched, loaded) = all.split_at(cli.lag_watchers);
    let donors = Arc::new(loaded.to_vec());
    eprintln!("[bench] donors created in {:.1} s", started.elapsed().as_secs_f64());

    // The sweep.
    let mut results: Vec<LevelResult> = Vec::new();
    for &c in &cli.levels {
        api.refresh_token().await?;
        let before = scrape(&api, &cli.fundraising_metrics).await;
        eprintln!("[bench] concurrency {c}: {} s", cli.level_secs);
        let (latencies, errors, measured) = closed_loop(
            api.clone(),
            donors.clone(),
            c,
            Duration::from_secs(cli.warmup_secs),
            Duration::from_secs(cli.level_secs),
        )
        .await;
        let after = scrape(&api, &cli.fundraising_metrics).await;
        let result = LevelResult {
            concurrency: c,
            ok: latencies.len(),
            errors,
            measured,
            server: delta(
                &before,
                &after,
                "http_request_duration_seconds",
                &[("method", "POST"), ("route", "/v1/gifts")],
            ),
            pool_wait: delta(&before, &after, "almoner_db_pool_acquire_seconds", &[("schema", "fundraising")]),
            latencies,
        };
        let over = |r: &LevelResult| r.ok == 0 || r.latencies.ms(99.0) >= cli.p99_budget_ms;
        // Two levels in a row over the budget end the sweep (one may be a hiccup of a busy machine).
        let stop = over(&result) && results.last().is_some_and(over);
        results.push(result);
        if stop && !cli.full_sweep {
            eprintln!(
                "[bench] p99 over {} ms at two levels in a row (up to {c}): stopping the sweep",
                cli.p99_budget_ms
            );
            break;
        }
    }
    let chosen = results
        .iter()
        .filter(|r| r.ok > 0 && r.errors.count == 0 && r.latencies.ms(99.0) < cli.p99_budget_ms)
        .max_by_key(|r| r.concurrency);

    // The lag.
    let settings = Arc::new(LagSettings {
        secs: cli.lag_secs,
        poll: Duration::from_millis(cli.lag_poll_ms),
        pause: Duration::from_millis(cli.lag_pause_ms),
        timeout: Duration::from_secs(cli.lag_timeout_secs),
    });
    let mut lag_results = Vec::new();
    // Each watched donor's lifetime total so far, carried from one lag run to the next.
    let mut expected = vec![0i64; watched.len()];
    if cli.lag_rate > 0 {
        eprintln!("[bench] lag under {} gifts/s: {} s", cli.lag_rate, cli.lag_secs);
        lag_results.push(
            lag_run(
                api.clone(),
                &cli,
                donors.clone(),
                watched,
                &mut expected,
                settings.clone(),
                Background::Paced(cli.lag_rate),
            )
            .await?,
        );
    }
    if let (true, Some(chosen)) = (cli.lag_at_chosen, chosen) {
        eprintln!("[bench] lag under closed-loop concurrency {}: {} s", chosen.concurrency, cli.lag_secs);
        lag_results.push(
            lag_run(
                api.clone(),
                &cli,
                donors.clone(),
                watched,
                &mut expected,
                settings.clone(),
                Background::Closed(chosen.concurrency),
            )
            .await?,
        );
    }

    report(&cli, &results, chosen, &lag_results);
    Ok(chosen.is_some())
}

fn report(cli: &Cli, results: &[LevelResult], chosen: Option<&LevelResult>, lags: &[LagResult]) {
    println!();
    println!(
        "POST /api/fundraising/v1/gifts through nginx at {}, services: {}, {} donors, {} s per level ({} s warm-up), closed loop",
        cli.gateway, cli.build, cli.donors, cli.level_secs, cli.warmup_secs
    );
    println!();
    println!(
        "{:>11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>11} {:>11} {:>11}",
        "concurrency",
        "gifts/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "errors",
        "server p50",
        "server p99",
        "pool wait"
    );
    for r in results {
        let mark = if chosen.is_some_and(|c| c.concurrency == r.concurrency) { " <" } else { "" };
        println!(
            "{:>11} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>11} {:>11} {:>11}{mark}",
            r.concurrency,
            r.rate(),
            r.latencies.ms(50.0),
            r.latencies.ms(90.0),
            r.latencies.ms(99.0),
            r.latencies.ms(100.0),
            r.errors.count,
            ms(r.server.as_ref().and_then(|h| h.quantile(0.5))),
            ms(r.server.as_ref().and_then(|h| h.quantile(0.99))),
            ms(r.pool_wait.as_ref().and_then(|h| h.mean())),
        );
        if let Some(first) = &r.errors.first {
            println!("{:>11} first error: {first}", "");
        }
    }
    println!(
        "(server = fundraising's own http_request_duration_seconds for POST /v1/gifts, bucket-interpolated; pool wait = mean almoner_db_pool_acquire_seconds; ms)"
    );

    if !lags.is_empty() {
        println!();
        println!(
            "Lag: from a gift's 201 to GET /api/rollup/v1/donors/{{id}} showing the new lifetime total ({} watched donors, one gift in flight each, polled every {} ms)",
            cli.lag_watchers, cli.lag_poll_ms
        );
        println!();
        println!(
            "{:<16} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>11}",
            "background",
            "catch-up s",
            "samples",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "timeouts",
            "bg gifts/s",
            "relay p50",
            "relay p99"
        );
        for l in lags {
            println!(
                "{:<16} {:>9.1} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9} {:>11.1} {:>11} {:>11}",
                l.label,
                l.caught_up_in.as_secs_f64(),
                l.lags.len(),
                l.lags.ms(50.0),
                l.lags.ms(90.0),
                l.lags.ms(99.0),
                l.lags.ms(100.0),
                l.timeouts,
                l.background_rate,
                ms(l.relay.as_ref().and_then(|h| h.quantile(0.5))),
                ms(l.relay.as_ref().and_then(|h| h.quantile(0.99))),
            );
            if l.errors.count + l.background_errors > 0 {
                println!(
                    "{:<16} errors: {} watcher ({}), {} background",
                    "",
                    l.errors.count,
                    l.errors.first.as_deref().unwrap_or("-"),
                    l.background_errors
                );
            }
        }
        println!(
            "(relay = fundraising's almoner_outbox_relay_lag_seconds: commit to confirmed publish, bucket-interpolated;"
        );
        println!(
            " catch-up = before the run, how long rollup took to show a probe gift, i.e. to work off what earlier phases posted)"
        );
    }

    println!();
    println!("Where the time goes");
    // The chosen level, or (none met the budget) the first one.
    if let Some(c) = chosen.or(results.first()) {
        let client50 = c.latencies.ms(50.0);
        let server = c.server.as_ref();
        if let (Some(s50), Some(mean)) = (server.and_then(|h| h.quantile(0.5)), server.and_then(|h| h.mean())) {
            println!(
                "  gift at c={}: client p50 {:.2} ms = fundraising handler p50 ~{:.2} ms (mean {:.2}, of which pool wait mean {}) + nginx, network and client ~{:.2} ms",
                c.concurrency,
                client50,
                s50 * 1000.0,
                mean * 1000.0,
                ms(c.pool_wait.as_ref().and_then(|h| h.mean())),
                client50 - s50 * 1000.0
            );
        } else {
            println!("  gift: no server-side histogram (is {} reachable?)", cli.fundraising_metrics);
        }
    }
    for l in lags {
        let lag50 = l.lags.ms(50.0);
        let poll50 = l.polls.ms(50.0);
        match l.relay.as_ref().and_then(|h| h.quantile(0.5)) {
            Some(relay50) => println!(
                "  lag under {}: p50 {:.2} ms = outbox relay (commit to publish) p50 ~{:.2} ms + broker, rollup consumer and apply, and read-back ~{:.2} ms (one rollup GET p50 {:.2} ms through nginx, server side {} ms; poll every {} ms)",
                l.label,
                lag50,
                relay50 * 1000.0,
                lag50 - relay50 * 1000.0,
                poll50,
                ms(l.rollup_get.as_ref().and_then(|h| h.quantile(0.5))),
                cli.lag_poll_ms
            ),
            None => println!(
                "  lag under {}: p50 {lag50:.2} ms (no relay histogram; one rollup GET p50 {poll50:.2} ms)",
                l.label
            ),
        }
    }
    println!(
        "  (histogram quantiles are interpolated within buckets: 1, 2.5, 5, 10, 25, 50 ms ... for HTTP; 5, 10, 25, 50 ms ... for the relay)"
    );

    println!();
    match chosen {
        Some(c) => {
            let lag = lags
                .first()
                .map(|l| {
                    format!("; rollup lag p50 {:.1} ms, p99 {:.1} ms ({})", l.lags.ms(50.0), l.lags.ms(99.0), l.label)
                })
                .unwrap_or_default();
            println!(
                "RESULT: {:.0} gifts/s at concurrency {} (p99 < {} ms): POST p50 {:.1} ms, p99 {:.1} ms{lag} [{}]",
                c.rate(),
                c.concurrency,
                cli.p99_budget_ms,
                c.latencies.ms(50.0),
                c.latencies.ms(99.0),
                cli.build
            );
        }
        None => println!("RESULT: no concurrency level kept p99 under {} ms without errors", cli.p99_budget_ms),
    }
}
