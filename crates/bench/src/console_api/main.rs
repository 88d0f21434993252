//! Console API load benchmark (run by scripts/bench/console-api): `--users` members of staff, each signed in with
//! a sign-in link of their own (their own session and access token, as the console gets it), use the console
//! through the nginx gateway at once. Each goes round three journeys with think time between page loads: the
//! dashboard, a donor found by name and their page, and a gift entered for a donor; every page makes the calls
//! its page in console/src/pages makes, in parallel as the browser does. Prints, per API call and per page, the
//! count, errors and p50/p95/p99/max of what started in the steady window, with each service's own p99 for the
//! route (from its /metrics histograms), and PASS or FAIL against the budgets.
//!
//! - `prepare` adds the staff members (role `fundraiser`) to the tenant of an admin API key and prints their
//!   addresses; the script makes a sign-in link for each with `identity sign-in-link`.
//! - `run` takes those links and runs the load.
//!
//! Each user connects from an address of its own on the loopback network (127.1.x.y), as staff at home or in
//! offices each behind their own address do, so the gateway's per-address rate limit applies to each as it would
//! in production; `--offices K` puts the users behind K addresses instead (an office's NAT). Load goes to
//! loopback only; every wait is bounded.

mod journeys;
#[allow(dead_code)]
#[path = "../metrics.rs"]
mod metrics;
mod stats;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use journeys::{Donor, PAGES, Plan, User};
use metrics::Scrape;
use stats::{Endpoint, Recorder, Series};

const MAX_USERS: usize = 5000;

#[derive(Parser)]
#[command(name = "almoner-bench-console-api", about = "The staff console's API calls under many users at once")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Adds the bench's staff members to the tenant of the API key (those already there are kept) and prints
    /// their addresses, one a line.
    Prepare {
        #[command(flatten)]
        tenant: TenantArgs,
        #[arg(long, default_value_t = 500)]
        users: usize,
    },
    /// Signs every user in with their link and runs the load.
    Run(Box<RunArgs>),
}

#[derive(clap::Args)]
struct TenantArgs {
    /// The gateway (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// JSON with the tenant's admin API key: api_key_id and api_key.
    #[arg(long)]
    credentials: PathBuf,
    /// The domain of the staff members' addresses.
    #[arg(long, default_value = "console-api-bench.example")]
    domain: String,
}

#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    tenant: TenantArgs,
    /// Sign-in links (…#token=…), one a line, one per user.
    #[arg(long)]
    links: PathBuf,
    /// Members of staff using the console at once.
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// Seconds over which users sign in, evenly.
    #[arg(long, default_value_t = 10)]
    ramp_secs: u64,
    /// Seconds measured once every user is in.
    #[arg(long, default_value_t = 60)]
    steady_secs: u64,
    /// Mean think time between page loads, in seconds (exponentially distributed).
    #[arg(long, default_value_t = 5.0)]
    think_mean_secs: f64,
    /// The longest think time, as a multiple of the mean.
    #[arg(long, default_value_t = 10.0)]
    think_cap_factor: f64,
    /// Client addresses the users share (an office's NAT); 0 for one address per user.
    #[arg(long, default_value_t = 0)]
    offices: usize,
    /// Hold the console's live inbox stream open for each user, as every console tab does.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    live_streams: bool,
    /// Budget of every API call's p99, in milliseconds.
    #[arg(long, default_value_t = 500.0)]
    p99_budget_ms: f64,
    /// Budget of every page's p99 (until its last call answered), in milliseconds.
    #[arg(long, default_value_t = 2000.0)]
    page_budget_ms: f64,
    /// A call not answered within this many seconds is an error.
    #[arg(long, default_value_t = 10)]
    request_timeout_secs: u64,
    /// Donors the journeys pick from (the first ones of the tenant's list).
    #[arg(long, default_value_t = 2000)]
    donor_sample: usize,
    #[arg(long, default_value = "GBP")]
    currency: String,
    /// Seeds each user's think times and choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// SERVICE=URL of each service's /metrics, read directly before and after the window (loopback only).
    #[arg(long, value_delimiter = ',')]
    metrics: Vec<String>,
    /// The gateway's per-address limit as configured, for the report (e.g. "100r/s burst 200").
    #[arg(long, default_value = "unknown")]
    gateway_limit: String,
    /// How the services were built and the database runs, for the header.
    #[arg(long, default_value = "unknown")]
    build: String,
}

#[derive(Deserialize)]
struct Credentials {
    api_key_id: String,
    api_key: String,
}

fn loopback(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    let host = parsed.host_str().unwrap_or_default();
    ensure!(matches!(host, "127.0.0.1" | "localhost"), "{url}: loopback only");
    Ok(())
}

/// The address user `index` connects from: one each, or the `offices`' few.
fn address(index: usize, offices: usize) -> IpAddr {
    let (net, n) = if offices == 0 { (1, index) } else { (2, index % offices) };
    IpAddr::V4(Ipv4Addr::new(127, net, (n / 250) as u8, (n % 250 + 2) as u8))
}

async fn api_token(http: &reqwest::Client, tenant: &TenantArgs) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(&tenant.credentials)
        .with_context(|| format!("reading {}", tenant.credentials.display()))?;
    let credentials: Credentials = serde_json::from_str(&text).context("the credentials file")?;
    let response = http
        .post(format!("{}/api/identity/v1/oauth/token", tenant.gateway))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", credentials.api_key_id.as_str()),
            ("client_secret", credentials.api_key.as_str()),
        ])
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    ensure!(status.is_success(), "the tenant's token: {status} {body}");
    Ok(body["access_token"].as_str().context("no access_token")?.to_owned())
}

/// Sends a request built by `make`, waiting out the gateway's 429s (set-up traffic, not measured).
async fn patiently(make: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
    for _ in 0..30 {
        let response = make().send().await?;
        if response.status().as_u16() != 429 {
            return Ok(response);
        }
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1u64);
        tokio::time::sleep(Duration::from_secs(wait.clamp(1, 10))).await;
    }
    bail!("still rate limited after 30 tries")
}

fn staff_email(i: usize, domain: &str) -> String {
    format!("staff-{i:04}@{domain}")
}

async fn prepare(tenant: TenantArgs, users: usize) -> anyhow::Result<()> {
    loopback(&tenant.gateway)?;
    ensure!((1..=MAX_USERS).contains(&users), "--users must be 1 to {MAX_USERS}");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let token = Arc::new(api_token(&http, &tenant).await?);
    let gate = Arc::new(Semaphore::new(8));
    let mut joins = Vec::new();
    for i in 0..users {
        let (http, token, gate) = (http.clone(), token.clone(), gate.clone());
        let url = format!("{}/api/identity/v1/staff", tenant.gateway);
        let email = staff_email(i, &tenant.domain);
        joins.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let body = json!({"email": email, "name": format!("Bench Staff {i:04}"), "role": "fundraiser"});
            let response = patiently(|| http.post(&url).bearer_auth(token.as_str()).json(&body)).await?;
            match response.status().as_u16() {
                201 => Ok(true),
                // Already a member of staff: from an earlier run.
                409 => Ok(false),
                status => bail!("adding {email}: {status} {}", response.text().await.unwrap_or_default()),
            }
        }));
    }
    let mut added = 0;
    for join in joins {
        added += usize::from(join.await??);
    }
    eprintln!("{added} staff members added, {} already there", users - added);
    for i in 0..users {
        println!("{}", staff_email(i, &tenant.domain));
    }
    Ok(())
}

/// The first `max` donors of the tenant's list, and its active funds, through the API key (not measured).
async fn sample(tenant: &TenantArgs, max: usize) -> anyhow::Result<(Vec<Donor>, Vec<String>)> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let token = api_token(&http, tenant).await?;
    let mut donors = Vec::new();
    let mut cursor: Option<String> = None;
    while donors.len() < max {
        let mut query = vec![("limit", "500".to_owned())];
        if let Some(c) = &cursor {
            query.push(("cursor", c.clone()));
        }
        let url = reqwest::Url::parse_with_params(&format!("{}/api/fundraising/v1/donors", tenant.gateway), &query)?;
        let response = patiently(|| http.get(url.clone()).bearer_auth(&token)).await?;
        ensure!(response.status().is_success(), "listing donors: {}", response.status());
        let page: Value = response.json().await?;
        for d in page["data"].as_array().into_iter().flatten() {
            let (Some(id), Some(last)) = (d["id"].as_str(), d["last_name"].as_str()) else { continue };
            donors.push(Donor {
                id: id.to_owned(),
                first_name: d["first_name"].as_str().unwrap_or_default().to_owned(),
                last_name: last.to_owned(),
            });
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    donors.truncate(max);
    ensure!(!donors.is_empty(), "the tenant has no donors to look up");
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/fundraising/v1/funds", tenant.gateway),
        [("archived", "false"), ("limit", "500")],
    )?;
    let response = patiently(|| http.get(url.clone()).bearer_auth(&token)).await?;
    ensure!(response.status().is_success(), "listing funds: {}", response.status());
    let funds: Value = response.json().await?;
    let funds =
        funds["data"].as_array().into_iter().flatten().filter_map(|f| f["id"].as_str().map(str::to_owned)).collect();
    Ok((donors, funds))
}

async fn scrape_all(http: &reqwest::Client, targets: &[(String, String)]) -> HashMap<String, Scrape> {
    let mut out = HashMap::new();
    for (service, url) in targets {
        if let Ok(response) = http.get(url).send().await
            && let Ok(text) = response.text().await
        {
            out.insert(service.clone(), Scrape::parse(&text));
        }
    }
    out
}

/// The service's own p99 for an endpoint over the window, from its `http_request_duration_seconds`.
fn server_p99(before: &HashMap<String, Scrape>, after: &HashMap<String, Scrape>, endpoint: &Endpoint) -> Option<f64> {
    let filter = [("method", endpoint.method), ("route", endpoint.route)];
    let later = after.get(endpoint.service)?.histogram("http_request_duration_seconds", &filter)?;
    let earlier = before.get(endpoint.service).and_then(|s| s.histogram("http_request_duration_seconds", &filter));
    later.since(earlier.as_ref()).quantile(0.99).map(|s| s * 1000.0)
}

fn ms(v: f64) -> String {
    if v.is_nan() { "-".into() } else { format!("{v:.1}") }
}

fn errors_text(series: &Series) -> String {
    if series.errors.is_empty() {
        return "0".into();
    }
    series.errors.iter().map(|(cause, n)| format!("{n} {cause}")).collect::<Vec<_>>().join(", ")
}

async fn run(args: RunArgs) -> anyhow::Result<bool> {
    loopback(&args.tenant.gateway)?;
    ensure!((1..=MAX_USERS).contains(&args.users), "--users must be 1 to {MAX_USERS}");
    ensure!(args.offices <= args.users, "--offices at most --users");
    ensure!(args.steady_secs >= 5 && args.steady_secs <= 3600, "--steady-secs must be 5 to 3600");
    ensure!(args.ramp_secs <= 600, "--ramp-secs at most 600");
    ensure!(
        args.think_mean_secs > 0.0 && args.think_mean_secs <= 600.0,
        "--think-mean-secs must be over 0, at most 600"
    );
    ensure!(args.think_cap_factor >= 1.0, "--think-cap-factor at least 1");
    let targets: Vec<(String, String)> = args
        .metrics
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| {
            let (service, url) = m.split_once('=').context("--metrics takes SERVICE=URL")?;
            loopback(url)?;
            Ok((service.to_owned(), url.to_owned()))
        })
        .collect::<anyhow::Result<_>>()?;

    let links: Vec<String> = std::fs::read_to_string(&args.links)
        .with_context(|| format!("reading {}", args.links.display()))?
        .lines()
        .filter_map(|l| l.split_once("#token=").map(|(_, t)| t.trim().to_owned()))
        .collect();
    ensure!(links.len() >= args.users, "{} sign-in links for {} users", links.len(), args.users);

    let (donors, funds) = sample(&args.tenant, args.donor_sample).await?;
    let think_mean = Duration::from_secs_f64(args.think_mean_secs);
    let started = Instant::now() + Duration::from_millis(500);
    let ramp = Duration::from_secs(args.ramp_secs);
    // The first pages of the last user to arrive are part of the ramp.
    let steady_start = started + ramp + Duration::from_secs(2);
    let steady_end = steady_start + Duration::from_secs(args.steady_secs);
    let plan = Arc::new(Plan {
        gateway: args.tenant.gateway.trim_end_matches('/').to_owned(),
        donors,
        funds,
        currency: args.currency.clone(),
        started,
        ramp,
        steady_start,
        steady_end,
        think_mean,
        think_cap: think_mean.mul_f64(args.think_cap_factor),
        live_streams: args.live_streams,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        seed: args.seed,
    });
    let addresses = if args.offices == 0 { args.users } else { args.offices };
    println!(
        "\nConsole API load: {} staff users, each signed in with a link of their own, through {} ({})",
        args.users, plan.gateway, args.build
    );
    println!(
        "  sign-ins over {} s, then {} s measured; think time between page loads exponential, mean {:.1} s (at most \
         {:.0} s); live inbox stream per user: {}",
        args.ramp_secs,
        args.steady_secs,
        args.think_mean_secs,
        plan.think_cap.as_secs_f64(),
        if args.live_streams { "open" } else { "not opened" }
    );
    println!(
        "  {} client address{} ({}), gateway limit per address {}; {} donors to look up, {} active funds",
        addresses,
        if addresses == 1 { "" } else { "es" },
        if args.offices == 0 { "one per user".to_owned() } else { format!("{} offices behind NAT", args.offices) },
        args.gateway_limit,
        plan.donors.len(),
        plan.funds.len()
    );

    let scraper = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let scrapes = {
        let (scraper, targets) = (scraper.clone(), targets.clone());
        tokio::spawn(async move {
            tokio::time::sleep_until(steady_start.into()).await;
            let before = scrape_all(&scraper, &targets).await;
            tokio::time::sleep_until(steady_end.into()).await;
            let after = scrape_all(&scraper, &targets).await;
            (before, after)
        })
    };

    let mut joins = Vec::with_capacity(args.users);
    for (i, token) in links.into_iter().take(args.users).enumerate() {
        let user = User::new(i, address(i, args.offices), token, plan.clone())?;
        joins.push(tokio::spawn(user.run(args.users)));
    }
    let mut all = Recorder::default();
    let mut per_address: HashMap<IpAddr, u64> = HashMap::new();
    for join in joins {
        let outcome = join.await.context("a user's task")?;
        *per_address.entry(outcome.address).or_default() += outcome.steady_calls;
        all.merge(outcome.recorder);
    }
    let (before, after) = scrapes.await.unwrap_or_default();
    all.sort();
    Ok(report(&args, &all, &per_address, &before, &after))
}

fn report(
    args: &RunArgs,
    all: &Recorder,
    per_address: &HashMap<IpAddr, u64>,
    before: &HashMap<String, Scrape>,
    after: &HashMap<String, Scrape>,
) -> bool {
    let window = args.steady_secs as f64;
    let calls: u64 = all.calls.values().map(|s| s.latencies.len() as u64 + s.error_count()).sum();
    let pages: u64 = all.pages.values().map(|s| s.latencies.len() as u64 + s.error_count()).sum();
    let gifts = all.pages.get("gift entry: save").map_or(0, |s| s.latencies.len());
    let busiest = per_address.values().copied().max().unwrap_or(0) as f64 / window;
    println!(
        "\nSteady window ({} s): {} API calls ({:.0}/s), {} pages ({:.1}/s), {} gifts recorded ({:.1}/s); busiest \
         client address {:.1} requests/s",
        args.steady_secs,
        calls,
        calls as f64 / window,
        pages,
        pages as f64 / window,
        gifts,
        gifts as f64 / window,
        busiest
    );

    println!(
        "\n{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8} {:>11}",
        "API call (steady window), ms", "count", "errors", "p50", "p95", "p99", "max", "server p99"
    );
    let mut worst_call: Option<(String, f64)> = None;
    for (endpoint, s) in &all.calls {
        let p99 = s.ms(99.0);
        let server = server_p99(before, after, endpoint).map_or("-".to_owned(), |v| format!("{v:.1}"));
        println!(
            "{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8} {:>11}",
            endpoint.name(),
            s.latencies.len(),
            errors_text(s),
            ms(s.ms(50.0)),
            ms(s.ms(95.0)),
            ms(p99),
            ms(s.max_ms()),
            server
        );
        if !p99.is_nan() && worst_call.as_ref().is_none_or(|(_, w)| p99 > *w) {
            worst_call = Some((endpoint.name(), p99));
        }
    }
    let mut every = Series::default();
    for s in all.calls.values() {
        every.latencies.extend(&s.latencies);
    }
    every.sort();
    println!(
        "{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "every call",
        every.latencies.len(),
        all.calls.values().map(Series::error_count).sum::<u64>(),
        ms(every.ms(50.0)),
        ms(every.ms(95.0)),
        ms(every.ms(99.0)),
        ms(every.max_ms())
    );

    println!(
        "\n{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "page (until its last call answered), ms", "count", "errors", "p50", "p95", "p99", "max"
    );
    let mut worst_page: Option<(&str, f64)> = None;
    for page in PAGES {
        let Some(s) = all.pages.get(page) else { continue };
        let p99 = s.ms(99.0);
        println!(
            "{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
            page,
            s.latencies.len(),
            errors_text(s),
            ms(s.ms(50.0)),
            ms(s.ms(95.0)),
            ms(p99),
            ms(s.max_ms())
        );
        if !p99.is_nan() && worst_page.is_none_or(|(_, w)| p99 > w) {
            worst_page = Some((page, p99));
        }
    }

    println!(
        "\n{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "outside the window (sign-ins, first pages), ms", "count", "errors", "p50", "p95", "p99", "max"
    );
    for (endpoint, s) in &all.ramp_calls {
        println!(
            "{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
            endpoint.name(),
            s.latencies.len(),
            errors_text(s),
            ms(s.ms(50.0)),
            ms(s.ms(95.0)),
            ms(s.ms(99.0)),
            ms(s.max_ms())
        );
    }
    for page in PAGES {
        let Some(s) = all.ramp_pages.get(page) else { continue };
        println!(
            "{:<58} {:>7} {:>8} {:>7} {:>7} {:>7} {:>8}",
            format!("page: {page}"),
            s.latencies.len(),
            errors_text(s),
            ms(s.ms(50.0)),
            ms(s.ms(95.0)),
            ms(s.ms(99.0)),
            ms(s.max_ms())
        );
    }

    if !after.is_empty() {
        println!(
            "\n{:<58} {:>9} {:>11} {:>14} {:>15}",
            "where the time goes, per service (its /metrics)", "requests", "server ms", "pool wait ms", "pool wait p99"
        );
        let mut services: Vec<&String> = after.keys().collect();
        services.sort();
        for service in services {
            let since = |name: &str| {
                let later = after.get(service)?.histogram(name, &[])?;
                let earlier = before.get(service).and_then(|s| s.histogram(name, &[]));
                Some(later.since(earlier.as_ref()))
            };
            let http = since("http_request_duration_seconds");
            let pool = since("almoner_db_pool_acquire_seconds");
            let mean =
                |h: &Option<metrics::Histogram>| h.as_ref().and_then(|h| h.mean()).map_or(f64::NAN, |s| s * 1000.0);
            let p99 = pool.as_ref().and_then(|h| h.quantile(0.99)).map_or(f64::NAN, |s| s * 1000.0);
            println!(
                "{:<58} {:>9} {:>11} {:>14} {:>15}",
                service,
                http.as_ref().map_or(0, |h| h.count as u64),
                ms(mean(&http)),
                ms(mean(&pool)),
                ms(p99)
            );
        }
    }

    let errors = all.errors();
    if errors > 0 {
        let causes: Vec<String> = all.errors_by_cause().iter().map(|(c, n)| format!("{n} {c}")).collect();
        println!("\nErrors over the whole run: {errors} ({})", causes.join(", "));
        for e in &all.examples {
            println!("  e.g. {e}");
        }
    }
    let (call_name, call_p99) = worst_call.unwrap_or_else(|| ("no call".into(), f64::NAN));
    let (page_name, page_p99) = worst_page.unwrap_or(("no page", f64::NAN));
    let calls_ok = call_p99 < args.p99_budget_ms;
    let pages_ok = page_p99 < args.page_budget_ms;
    let pass = calls_ok && pages_ok && errors == 0;
    println!(
        "\n{}: {} users; every API call's p99 under {:.0} ms: {} (highest {} ms, {}); every page's p99 under {:.0} \
         ms: {} (highest {} ms, {}); errors: {}",
        if pass { "PASS" } else { "FAIL" },
        args.users,
        args.p99_budget_ms,
        if calls_ok { "yes" } else { "NO" },
        ms(call_p99),
        call_name,
        args.page_budget_ms,
        if pages_ok { "yes" } else { "NO" },
        ms(page_p99),
        page_name,
        errors
    );
    pass
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    match Cli::parse().command {
        Command::Prepare { tenant, users } => {
            prepare(tenant, users).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let pass = run(*args).await?;
            Ok(if pass { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_get_addresses_of_their_own_or_their_office() {
        assert_eq!(address(0, 0).to_string(), "127.1.0.2");
        assert_eq!(address(251, 0).to_string(), "127.1.1.3");
        assert_eq!(address(499, 0).to_string(), "127.1.1.251");
        assert_eq!(address(7, 2), address(1, 2));
        assert_eq!(address(1, 1).to_string(), "127.2.0.2");
        let distinct: std::collections::HashSet<_> = (0..MAX_USERS).map(|i| address(i, 0)).collect();
        assert_eq!(distinct.len(), MAX_USERS);
    }
}
