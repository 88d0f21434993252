//! One member of staff using the console: signed in with a link of their own, holding the console's live inbox
//! stream, and going round the three journeys with think time between page loads. Each page makes exactly the
//! calls the console's page makes (console/src/pages), in parallel where the browser makes them in parallel, and
//! is timed until its last call has answered.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::stats::{Endpoint, Recorder};

/// What every call of the console goes to, by service and route.
pub mod endpoints {
    use super::Endpoint;

    pub const SIGN_IN: Endpoint = Endpoint::new("identity", "POST", "/v1/sign-in/tokens");
    pub const REFRESH: Endpoint = Endpoint::new("identity", "POST", "/v1/session/refresh");
    pub const TENANT: Endpoint = Endpoint::new("identity", "GET", "/v1/tenant");
    pub const INBOX_SUMMARY: Endpoint = Endpoint::new("messaging", "GET", "/v1/conversations/summary");
    /// Timed to the response's head: the body is the live stream, open until the session ends.
    pub const INBOX_STREAM: Endpoint = Endpoint::new("messaging", "GET", "/v1/conversations/stream");
    pub const SUMMARY: Endpoint = Endpoint::new("rollup", "GET", "/v1/summary");
    pub const RETENTION: Endpoint = Endpoint::new("rollup", "GET", "/v1/summary/retention");
    pub const INCOME_FUNDS: Endpoint = Endpoint::new("rollup", "GET", "/v1/summary/income/funds");
    pub const INCOME_SOURCES: Endpoint = Endpoint::new("rollup", "GET", "/v1/summary/income/sources");
    pub const TOP_DONORS: Endpoint = Endpoint::new("rollup", "GET", "/v1/summary/top-donors");
    pub const DONOR_GIVING: Endpoint = Endpoint::new("rollup", "GET", "/v1/donors/{id}");
    pub const DONORS: Endpoint = Endpoint::new("fundraising", "GET", "/v1/donors");
    pub const DONOR: Endpoint = Endpoint::new("fundraising", "GET", "/v1/donors/{id}");
    pub const GIFTS: Endpoint = Endpoint::new("fundraising", "GET", "/v1/gifts");
    pub const DECLARATIONS: Endpoint = Endpoint::new("fundraising", "GET", "/v1/donors/{id}/gift-aid-declarations");
    pub const PLEDGES: Endpoint = Endpoint::new("fundraising", "GET", "/v1/pledges");
    pub const RECURRING: Endpoint = Endpoint::new("fundraising", "GET", "/v1/recurring");
    pub const HOUSEHOLD: Endpoint = Endpoint::new("fundraising", "GET", "/v1/households/{id}");
    pub const FUNDS: Endpoint = Endpoint::new("fundraising", "GET", "/v1/funds");
    pub const DONOR_CONVERSATIONS: Endpoint = Endpoint::new("messaging", "GET", "/v1/conversations");
    pub const RECORD_GIFT: Endpoint = Endpoint::new("fundraising", "POST", "/v1/gifts");
}
use endpoints::*;

/// The pages, in the order the report lists them.
pub const PAGES: [&str; 8] = [
    "sign-in",
    "dashboard",
    "donors: search",
    "donor page",
    "gift entry: open",
    "gift entry: find donor",
    "gift entry: donor chosen",
    "gift entry: save",
];

/// A donor of the tenant the journeys look up and give to.
#[derive(Debug, Clone)]
pub struct Donor {
    pub id: String,
    pub first_name: String,
    pub last_name: String,
}

/// What every user shares: where to go, what to look up, and when the measured window is.
pub struct Plan {
    pub gateway: String,
    pub donors: Vec<Donor>,
    pub funds: Vec<String>,
    pub currency: String,
    /// Sign-ins are spread evenly from `started` over `ramp`.
    pub started: Instant,
    pub ramp: Duration,
    /// Calls and pages that start in `[steady_start, steady_end)` are measured; users start no page after it.
    pub steady_start: Instant,
    pub steady_end: Instant,
    pub think_mean: Duration,
    pub think_cap: Duration,
    pub live_streams: bool,
    pub request_timeout: Duration,
    pub seed: u64,
}

impl Plan {
    fn steady(&self, at: Instant) -> bool {
        at >= self.steady_start && at < self.steady_end
    }
}

/// What a user hands back: their record, their address and how many calls they made in the window.
pub struct Outcome {
    pub address: IpAddr,
    pub recorder: Recorder,
    pub steady_calls: u64,
}

pub struct User {
    index: usize,
    address: IpAddr,
    link_token: String,
    client: reqwest::Client,
    plan: Arc<Plan>,
    rng: StdRng,
    access_token: String,
    /// The refresh cookie, as the browser keeps it (`almoner_session=...`).
    cookie: Option<String>,
    refresh_at: Instant,
    recorder: Mutex<Recorder>,
    steady_calls: std::sync::atomic::AtomicU64,
    stream: Option<tokio::task::JoinHandle<String>>,
}

/// A failed call: a short cause for the table (`429`, `timeout`...) and the detail for the examples.
type Failure = (String, String);

fn transport(e: &reqwest::Error) -> Failure {
    let cause = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    (cause.to_owned(), format!("{e:#}"))
}

/// `fiscalYearOf` of console/src/lib/format.ts: a fiscal year is named by the calendar year it starts in.
fn fiscal_year_of(date: chrono::NaiveDate, start_month: u32) -> i32 {
    use chrono::Datelike;
    if date.month() >= start_month { date.year() } else { date.year() - 1 }
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

impl User {
    pub fn new(index: usize, address: IpAddr, link_token: String, plan: Arc<Plan>) -> anyhow::Result<Self> {
        // One browser: its own connections from its own address, kept alive between pages (under the gateway's
        // 65 s keep-alive) and never more idle ones than it would hold.
        let client = reqwest::Client::builder()
            .local_address(address)
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(50))
            .pool_max_idle_per_host(8)
            .tcp_nodelay(true)
            .build()?;
        let rng = StdRng::seed_from_u64(plan.seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Ok(Self {
            index,
            address,
            link_token,
            client,
            plan,
            rng,
            access_token: String::new(),
            cookie: None,
            refresh_at: Instant::now(),
            recorder: Mutex::new(Recorder::default()),
            steady_calls: Default::default(),
            stream: None,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.plan.gateway)
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// A GET with a query string, encoded as `URLSearchParams` does.
    fn get_with(&self, path: &str, query: &[(&str, &str)]) -> reqwest::RequestBuilder {
        match reqwest::Url::parse_with_params(&self.url(path), query) {
            Ok(url) => self.client.get(url),
            Err(_) => self.get(path),
        }
    }

    fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends one call with the session's token as the console's `send` does, reads the whole answer, and records
    /// it. `Some(body)` when it answered 2xx (or 404 where `not_found_is_an_answer`, as the console takes it).
    async fn call(&self, endpoint: Endpoint, request: reqwest::RequestBuilder) -> Option<Value> {
        self.call_with(endpoint, request, false).await
    }

    async fn call_with(
        &self,
        endpoint: Endpoint,
        request: reqwest::RequestBuilder,
        not_found_is_an_answer: bool,
    ) -> Option<Value> {
        let started = Instant::now();
        let result: Result<Value, Failure> = async {
            let response = request
                .bearer_auth(&self.access_token)
                .header("accept", "application/json, application/problem+json")
                .timeout(self.plan.request_timeout)
                .send()
                .await
                .map_err(|e| transport(&e))?;
            let status = response.status();
            let body = response.bytes().await.map_err(|e| transport(&e))?;
            if status.is_success() || (not_found_is_an_answer && status.as_u16() == 404) {
                Ok(serde_json::from_slice(&body).unwrap_or(Value::Null))
            } else {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                Err((status.as_u16().to_string(), format!("{status} {text}")))
            }
        }
        .await;
        self.record(endpoint, started, result)
    }

    fn record(&self, endpoint: Endpoint, started: Instant, result: Result<Value, Failure>) -> Option<Value> {
        let elapsed = started.elapsed();
        let steady = self.plan.steady(started);
        if steady {
            self.steady_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match result {
            Ok(body) => {
                self.recorder().call(endpoint, steady, elapsed, None);
                Some(body)
            }
            Err(failure) => {
                self.recorder().call(endpoint, steady, elapsed, Some(failure));
                None
            }
        }
    }

    /// `getAll` of console/src/lib/api.ts: pages of 500 following `next_cursor`, at most 2,000 items.
    async fn get_all(&self, endpoint: Endpoint, path: &str, query: &[(&str, &str)]) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", "500"));
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            let page = self.call(endpoint, self.get_with(path, &q)).await?;
            out.extend(page["data"].as_array().cloned().unwrap_or_default());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() || out.len() >= 2000 {
                return Some(out);
            }
        }
    }

    /// Times a page until its last call answered; it failed if any call did.
    async fn page(&self, name: &'static str, load: impl Future<Output = bool>) -> bool {
        let started = Instant::now();
        let ok = load.await;
        self.recorder().page(name, self.plan.steady(started), started.elapsed(), !ok);
        ok
    }

    /// Waits a think time (exponential around the mean, capped); false once the steady window has ended, when
    /// the user stops.
    async fn think(&mut self) -> bool {
        let mean = self.plan.think_mean.as_secs_f64();
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        let wait = Duration::from_secs_f64(-mean * u.ln()).min(self.plan.think_cap);
        self.pause(wait).await
    }

    /// A short pause inside a page: keys typed before the search box asks.
    async fn typing(&mut self) -> bool {
        let wait = Duration::from_millis(self.rng.random_range(400..1200));
        self.pause(wait).await
    }

    async fn pause(&self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        if until >= self.plan.steady_end {
            tokio::time::sleep_until(self.plan.steady_end.into()).await;
            return false;
        }
        tokio::time::sleep_until(until.into()).await;
        true
    }

    fn take_session(&mut self, body: &Value, cookie: Option<String>) -> bool {
        let Some(token) = body["access_token"].as_str() else { return false };
        self.access_token = token.to_owned();
        if cookie.is_some() {
            self.cookie = cookie;
        }
        // As console/src/lib/session.ts: a minute before it expires, or at 80% of a short lifetime.
        let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(900).max(30));
        self.refresh_at = Instant::now() + lifetime - lifetime.mul_f64(0.2).min(Duration::from_secs(60));
        true
    }

    /// POSTs to identity's session routes (no bearer), recording the call; the body and the new refresh cookie.
    async fn session_call(&mut self, endpoint: Endpoint, request: reqwest::RequestBuilder) -> bool {
        let started = Instant::now();
        let result: Result<(Value, Option<String>), Failure> = async {
            let response = request.timeout(self.plan.request_timeout).send().await.map_err(|e| transport(&e))?;
            let status = response.status();
            let cookie = response
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find(|v| v.starts_with("almoner_session="))
                .and_then(|v| v.split(';').next())
                .map(str::to_owned);
            let body = response.bytes().await.map_err(|e| transport(&e))?;
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
                return Err((status.as_u16().to_string(), format!("{status} {text}")));
            }
            Ok((serde_json::from_slice(&body).unwrap_or(Value::Null), cookie))
        }
        .await;
        let (result, cookie) = match result {
            Ok((body, cookie)) => (Ok(body), cookie),
            Err(f) => (Err(f), None),
        };
        match self.record(endpoint, started, result) {
            Some(body) => self.take_session(&body, cookie),
            None => false,
        }
    }

    /// The sign-in link's token exchanged for a session (`/sign-in/callback`), then what the console's shell asks
    /// once signed in: the tenant (its time zone), then the inbox counters for the nav's badge with the live
    /// stream opened beside them.
    async fn sign_in(&mut self) -> bool {
        let started = Instant::now();
        let request =
            self.client.post(self.url("/api/identity/v1/sign-in/tokens")).json(&json!({"token": self.link_token}));
        let mut ok = self.session_call(SIGN_IN, request).await;
        if ok {
            ok = self.call(TENANT, self.get("/api/identity/v1/tenant")).await.is_some();
        }
        if ok {
            let (summary, stream) =
                tokio::join!(self.call(INBOX_SUMMARY, self.get("/api/messaging/v1/conversations/summary")), async {
                    if self.plan.live_streams { self.open_stream().await } else { None }
                });
            ok = summary.is_some() && (stream.is_some() || !self.plan.live_streams);
            self.stream = stream;
        }
        self.recorder().page("sign-in", self.plan.steady(started), started.elapsed(), !ok);
        ok
    }

    /// Opens `/conversations/stream` (console/src/lib/live.ts), timed to its head; its body is read by a task of
    /// its own until the run ends, which says why if the stream ends first.
    async fn open_stream(&self) -> Option<tokio::task::JoinHandle<String>> {
        let started = Instant::now();
        let sent = self
            .get("/api/messaging/v1/conversations/stream")
            .bearer_auth(&self.access_token)
            .header("accept", "text/event-stream")
            .send()
            .await;
        let response = match sent {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                self.record(INBOX_STREAM, started, Err((status.as_u16().to_string(), format!("{status} {text}"))));
                return None;
            }
            Err(e) => {
                self.record(INBOX_STREAM, started, Err(transport(&e)));
                return None;
            }
        };
        self.record(INBOX_STREAM, started, Ok(Value::Null));
        Some(tokio::spawn(async move {
            let mut response = response;
            loop {
                match response.chunk().await {
                    Ok(Some(_)) => {}
                    Ok(None) => return "the server ended the stream".to_owned(),
                    Err(e) => return format!("the stream broke: {e:#}"),
                }
            }
        }))
    }

    /// Refreshes the session the way the console's timer does, when it is due.
    async fn refresh_if_due(&mut self) -> bool {
        if Instant::now() < self.refresh_at {
            return true;
        }
        let mut request = self.client.post(self.url("/api/identity/v1/session/refresh"));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        self.session_call(REFRESH, request).await
    }

    /// `/`: Dashboard.tsx. Five calls at once; the fiscal year is first guessed from the default start month
    /// (April) and, when the tenant's answers name another, the three calls that take it are made again.
    async fn dashboard(&self) -> bool {
        let fy = fiscal_year_of(today(), 4).to_string();
        let by_year = |fy: String| async move {
            let q = [("fiscal_year", fy.as_str())];
            let top = [("period", "fiscal_year"), ("fiscal_year", fy.as_str()), ("limit", "10")];
            let (funds, sources, top) = tokio::join!(
                self.call(INCOME_FUNDS, self.get_with("/api/rollup/v1/summary/income/funds", &q)),
                self.call(INCOME_SOURCES, self.get_with("/api/rollup/v1/summary/income/sources", &q)),
                self.call(TOP_DONORS, self.get_with("/api/rollup/v1/summary/top-donors", &top)),
            );
            funds.is_some() && sources.is_some() && top.is_some()
        };
        let (summary, retention, charts) = tokio::join!(
            self.call(SUMMARY, self.get("/api/rollup/v1/summary")),
            self.call(RETENTION, self.get("/api/rollup/v1/summary/retention")),
            by_year(fy.clone()),
        );
        let mut ok = summary.is_some() && retention.is_some() && charts;
        let current = retention.as_ref().and_then(|r| r["current_fiscal_year"].as_i64()).map(|y| y.to_string());
        if let Some(current) = current.filter(|c| *c != fy) {
            ok &= by_year(current).await;
        }
        ok
    }

    /// `/donors`: the search form, submitted with the donor's surname.
    async fn donor_search(&self, donor: &Donor) -> bool {
        let q = [("q", donor.last_name.as_str()), ("limit", "50")];
        self.call(DONORS, self.get_with("/api/fundraising/v1/donors", &q)).await.is_some()
    }

    /// `/donors/:id`: Donors.tsx's `loadDonor` (the donor, then six lists at once), rollup's totals and the
    /// donor's conversations (for roles with messaging:read) beside it.
    async fn donor_page(&self, donor: &Donor) -> bool {
        let id = donor.id.as_str();
        let details = async {
            let Some(found) = self.call(DONOR, self.get(&format!("/api/fundraising/v1/donors/{id}"))).await else {
                return false;
            };
            let household = found["household_id"].as_str().map(str::to_owned);
            let by_donor = [("donor_id", id)];
            let (gifts, declarations, pledges, recurring, household, funds) = tokio::join!(
                self.get_all(GIFTS, "/api/fundraising/v1/gifts", &by_donor),
                self.call(DECLARATIONS, self.get(&format!("/api/fundraising/v1/donors/{id}/gift-aid-declarations"))),
                self.get_all(PLEDGES, "/api/fundraising/v1/pledges", &by_donor),
                self.get_all(RECURRING, "/api/fundraising/v1/recurring", &by_donor),
                async {
                    match &household {
                        Some(h) => self.call(HOUSEHOLD, self.get(&format!("/api/fundraising/v1/households/{h}"))).await,
                        None => Some(Value::Null),
                    }
                },
                self.get_all(FUNDS, "/api/fundraising/v1/funds", &[]),
            );
            gifts.is_some()
                && declarations.is_some()
                && pledges.is_some()
                && recurring.is_some()
                && household.is_some()
                && funds.is_some()
        };
        let conversations = [("donor_id", id), ("limit", "50")];
        let (details, giving, conversations) = tokio::join!(
            details,
            // A donor rollup has not heard of yet is a 404 the page shows as "no giving yet".
            self.call_with(DONOR_GIVING, self.get(&format!("/api/rollup/v1/donors/{id}")), true),
            self.call(DONOR_CONVERSATIONS, self.get_with("/api/messaging/v1/conversations", &conversations)),
        );
        details && giving.is_some() && conversations.is_some()
    }

    /// `/gifts/new`: the active funds for the form.
    async fn gift_entry_open(&self) -> bool {
        self.get_all(FUNDS, "/api/fundraising/v1/funds", &[("archived", "false")]).await.is_some()
    }

    /// The form's donor box (DonorSearch in GiftEntry.tsx): ten matches for what is typed so far.
    async fn gift_entry_find(&self, typed: &str) -> bool {
        let q = [("q", typed), ("limit", "10")];
        self.call(DONORS, self.get_with("/api/fundraising/v1/donors", &q)).await.is_some()
    }

    /// A donor chosen: their Gift Aid declarations, so staff do not record a second one.
    async fn gift_entry_chosen(&self, donor: &Donor) -> bool {
        let path = format!("/api/fundraising/v1/donors/{}/gift-aid-declarations", donor.id);
        self.call(DECLARATIONS, self.get(&path)).await.is_some()
    }

    /// Save: `POST /gifts` with the form's idempotency key, to a fund when the tenant has one.
    async fn gift_entry_save(&mut self, donor: &Donor) -> bool {
        let amount: i64 = self.rng.random_range(500..=10_000);
        let mut body = json!({
            "donor_id": donor.id,
            "amount_minor": amount,
            "currency": self.plan.currency,
            "gift_date": today().format("%Y-%m-%d").to_string(),
            "payment_method": null,
            "notes": null,
        });
        if !self.plan.funds.is_empty() {
            let fund = &self.plan.funds[self.rng.random_range(0..self.plan.funds.len())];
            body["allocations"] = json!([{"fund_id": fund, "amount_minor": amount}]);
        }
        let key = format!("{}-gift", uuid::Uuid::new_v4());
        let request =
            self.client.post(self.url("/api/fundraising/v1/gifts")).header("idempotency-key", key).json(&body);
        self.page("gift entry: save", async { self.call(RECORD_GIFT, request).await.is_some() }).await
    }

    fn pick_donor(&mut self) -> Donor {
        self.plan.donors[self.rng.random_range(0..self.plan.donors.len())].clone()
    }

    /// Signs in at this user's moment of the ramp, then goes round dashboard, donor, gift entry until the window
    /// ends.
    pub async fn run(mut self, users: usize) -> Outcome {
        let offset = self.plan.ramp.mul_f64(self.index as f64 / users.max(1) as f64);
        tokio::time::sleep_until((self.plan.started + offset).into()).await;
        if self.sign_in().await {
            self.journeys().await;
        }
        if let Some(stream) = self.stream.take() {
            if stream.is_finished() {
                let why = stream.await.unwrap_or_else(|e| e.to_string());
                self.record(INBOX_STREAM, Instant::now(), Err(("stream ended".to_owned(), why)));
            } else {
                stream.abort();
            }
        }
        Outcome {
            address: self.address,
            steady_calls: self.steady_calls.into_inner(),
            recorder: self.recorder.into_inner().unwrap_or_else(|e| e.into_inner()),
        }
    }

    async fn journeys(&mut self) {
        loop {
            if !self.refresh_if_due().await {
                return;
            }
            self.page("dashboard", self.dashboard()).await;
            if !self.think().await {
                return;
            }
            let donor = self.pick_donor();
            self.page("donors: search", self.donor_search(&donor)).await;
            if !self.think().await {
                return;
            }
            self.page("donor page", self.donor_page(&donor)).await;
            if !self.think().await {
                return;
            }
            let donor = self.pick_donor();
            self.page("gift entry: open", self.gift_entry_open()).await;
            if !self.typing().await {
                return;
            }
            // The box asks once typing pauses: the start of the surname, then the whole name.
            let start: String = donor.last_name.chars().take(3).collect();
            self.page("gift entry: find donor", self.gift_entry_find(&start)).await;
            if !self.typing().await {
                return;
            }
            let whole = format!("{} {}", donor.first_name, donor.last_name);
            self.page("gift entry: find donor", self.gift_entry_find(&whole)).await;
            self.page("gift entry: donor chosen", self.gift_entry_chosen(&donor)).await;
            // Filling in the amount and the rest of the form.
            if !self.think().await {
                return;
            }
            self.gift_entry_save(&donor).await;
            if !self.think().await {
                return;
            }
        }
    }
}
