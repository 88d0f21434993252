//! A stand-in for Twilio's Programmable Messaging API in tests: sending an SMS, its status callbacks and incoming
//! messages, speaking Twilio's documented wire format over real HTTP on `127.0.0.1:<ephemeral>`.
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: HTTP basic auth with a registered account's SID and
//!   auth token (`401`, code 20003, otherwise), a form body with `To` (E.164), `From` or `MessagingServiceSid`,
//!   `Body` and optionally `StatusCallback`; answers `201` with the Message resource (`status` `queued`,
//!   `num_segments` counted here by Twilio's rules), or Twilio's error `{"code", "message", "more_info", "status"}`:
//!   `400` 21604 without `To`, 21211 a `To` that is not E.164, 21603 without `From` or `MessagingServiceSid`, 21602
//!   without `Body`, 21617 a body over 1,600 characters, 21609 a `StatusCallback` that is not an http(s) URL, 21610
//!   a recipient who opted out; `429` 20429 a sender over its per-second limit.
//! - Each accepted message is priced per segment ([`FakeTwilio::price_record`]); `price` in the resource stays
//!   `null`, as Twilio leaves it until the carrier has billed.
//! - Status callbacks: for a message with a `StatusCallback`, `sent` and then its final status (`delivered`, or by
//!   seeded rates `undelivered` 30003 or `failed` 30008) are posted there as forms signed with `X-Twilio-Signature`
//!   under the account's auth token, each retried a few times on a non-2xx answer or a connection error.
//! - [`FakeTwilio::inbound`] posts a signed incoming message to a receiver, as Twilio calls a number's webhook.
//! - Faults: a fraction (or the next `n`) of calls answered `500`/`503` before anything is recorded, a delay before
//!   each answer (after the message is recorded, as when Twilio is slow), and [`FakeTwilio::set_paused`] holding
//!   calls unanswered and unrecorded until released.
//!
//! ```ignore
//! let twilio = FakeTwilio::start_with(Options { failed_rate: 0.1, seed: 7, ..Options::default() }).await;
//! twilio.add_account("AC0123456789abcdef0123456789abcdef", "auth-token");
//! twilio.opt_out("+447700900999");
//! // the service sends through twilio.base_url(); then:
//! assert_eq!(twilio.messages_to("+447700900123")[0].segments, 1);
//! assert_eq!(twilio.total_price_micros(), 7_900);
//! let status = twilio.inbound(&public_url, "AC0123456789abcdef0123456789abcdef", "+447700900123",
//!     "+447700900000", "STOP").await?;
//! ```

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use almoner_webhook_verify::twilio::{Algorithm, signature};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::AbortHandle;

const API_VERSION: &str = "2010-04-01";
/// Twilio refuses a longer body (code 21617).
const MAX_BODY_CHARACTERS: usize = 1_600;

/// How the fake behaves; every field has a default that makes it a well-behaved Twilio.
#[derive(Debug, Clone)]
pub struct Options {
    /// Seeds the draws of final statuses and faults, so a test sees the same sequence on every run.
    pub seed: u64,
    /// The price of one segment in micro-dollars (Twilio's US rate, $0.0079, by default).
    pub price_per_segment_micros: u64,
    /// The fraction of accepted messages whose final status is `undelivered` (error 30003).
    pub undelivered_rate: f64,
    /// The fraction of accepted messages whose final status is `failed` (error 30008).
    pub failed_rate: f64,
    /// How long after acceptance the first status callback is posted.
    pub delay_before_sent: Duration,
    /// How long after the first status callback the second is posted.
    pub delay_before_final: Duration,
    /// Posts the final status first and `sent` after it, as carriers' receipts sometimes overtake each other.
    pub final_before_sent: bool,
    /// Holds every status callback until [`FakeTwilio::release_callbacks`].
    pub hold_callbacks: bool,
    /// How many times a callback answered non-2xx (or not at all) is tried again.
    pub callback_retries: u32,
    /// The wait before the first retry of a callback, doubling for each further one.
    pub callback_backoff: Duration,
    /// The fraction of API calls answered [`Options::fault_status`] before anything is recorded.
    pub fault_rate: f64,
    /// `500` or `503` (anything else is taken as `500`).
    pub fault_status: u16,
    /// Messages accepted per second from one `From` number (or messaging service) before `429`; none by default.
    pub rate_limit_per_second: Option<u32>,
    /// How long each API call is held, after it is recorded, before it is answered.
    pub response_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 0,
            price_per_segment_micros: 7_900,
            undelivered_rate: 0.0,
            failed_rate: 0.0,
            delay_before_sent: Duration::from_millis(50),
            delay_before_final: Duration::from_millis(50),
            final_before_sent: false,
            hold_callbacks: false,
            callback_retries: 3,
            callback_backoff: Duration::from_millis(100),
            fault_rate: 0.0,
            fault_status: 500,
            rate_limit_per_second: None,
            response_delay: Duration::ZERO,
        }
    }
}

/// The last status a message reaches, drawn at acceptance from [`Options`]' rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalStatus {
    Delivered,
    /// The carrier could not deliver it (Twilio error 30003, unreachable handset).
    Undelivered,
    /// Twilio could not send it (error 30008, unknown error).
    Failed,
}

impl FinalStatus {
    /// The status as Twilio names it in `MessageStatus`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Delivered => "delivered",
            FinalStatus::Undelivered => "undelivered",
            FinalStatus::Failed => "failed",
        }
    }

    /// The `ErrorCode` its callback carries.
    pub fn error_code(self) -> Option<u16> {
        match self {
            FinalStatus::Delivered => None,
            FinalStatus::Undelivered => Some(30003),
            FinalStatus::Failed => Some(30008),
        }
    }
}

/// A message the fake accepted, as it was asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub body: String,
    pub status_callback: Option<String>,
    /// Counted by the fake, as `num_segments` in its answer.
    pub segments: u32,
    pub final_status: FinalStatus,
    pub received_at: Instant,
}

/// What an accepted message costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRecord {
    pub sid: String,
    pub to: String,
    /// `None` for a message sent through a messaging service alone.
    pub from: Option<String>,
    pub body: String,
    pub segments: u32,
    pub price_micros: u64,
}

/// One attempt at posting a status callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    pub message_sid: String,
    /// The `MessageStatus` posted: `sent`, `delivered`, `undelivered` or `failed`.
    pub message_status: String,
    pub url: String,
    /// 1 for the first try of this status, 2 for its first retry...
    pub attempt: u32,
    /// The receiver's answer, `None` when it could not be reached or did not answer in time.
    pub answer: Option<u16>,
}

/// The fake server; it stops when dropped (or [`FakeTwilio::stop`]ped), and its pending callbacks with it.
pub struct FakeTwilio {
    base_url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<()>,
}

/// What the server's handlers and the callback tasks share with the test.
struct Shared {
    options: Options,
    state: Mutex<State>,
    /// While true, API calls wait before anything else happens.
    paused: watch::Sender<bool>,
    /// While true, status callbacks wait before being posted.
    callbacks_held: watch::Sender<bool>,
    /// Posts callbacks and inbound messages; used only on the test's runtime, where its connections live.
    client: reqwest::Client,
    /// The test's runtime, where callbacks are posted from (the server's workers have runtimes of their own).
    runtime: tokio::runtime::Handle,
}

struct State {
    /// Auth tokens by account SID.
    accounts: HashMap<String, String>,
    opted_out: HashSet<String>,
    messages: Vec<Message>,
    prices: Vec<PriceRecord>,
    attempts: Vec<CallbackAttempt>,
    /// When each sender's recent messages were accepted, for the per-second limit.
    recent_sends: HashMap<String, VecDeque<Instant>>,
    /// Separate draws for outcomes and faults, so that turning faults on does not change which messages fail.
    outcome_rng: StdRng,
    fault_rng: StdRng,
    /// Calls still to answer with a fault before answering normally.
    outages: usize,
    api_calls: usize,
    callback_tasks: Vec<AbortHandle>,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        // The stop command is sent at once; awaiting would only wait for the workers to finish.
        drop(self.handle.stop(false));
        self.server.abort();
        self.abort_callbacks();
    }
}

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        FakeTwilio::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> FakeTwilio {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake Twilio");
        let base_url = format!("http://{}", listener.local_addr().expect("fake Twilio address"));
        let state = State {
            accounts: HashMap::new(),
            opted_out: HashSet::new(),
            messages: Vec::new(),
            prices: Vec::new(),
            attempts: Vec::new(),
            recent_sends: HashMap::new(),
            outcome_rng: StdRng::seed_from_u64(options.seed),
            fault_rng: StdRng::seed_from_u64(options.seed ^ 0x5eed_fa17),
            outages: 0,
            api_calls: 0,
            callback_tasks: Vec::new(),
        };
        let shared = Arc::new(Shared {
            paused: watch::Sender::new(false),
            callbacks_held: watch::Sender::new(options.hold_callbacks),
            options,
            state: Mutex::new(state),
            // Twilio gives a webhook 15 seconds to answer.
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .user_agent("TwilioProxy/1.1")
                .build()
                .expect("the fake Twilio's HTTP client"),
            runtime: tokio::runtime::Handle::current(),
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/2010-04-01/Accounts/{account_sid}/Messages.json", web::post().to(create_message))
                .route("/2010-04-01/Accounts/{account_sid}/Messages.json", web::get().to(list_messages))
                .default_service(web::to(|request: HttpRequest| async move {
                    let message = format!("The requested resource {} was not found", request.path());
                    error(StatusCode::NOT_FOUND, 20404, &message)
                }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen on the fake Twilio's socket")
        .run();
        let handle = server.handle();
        let server = tokio::spawn(async move {
            let _ = server.await;
        });
        FakeTwilio { base_url, shared, handle, server }
    }

    /// Where the messaging client is pointed instead of `https://api.twilio.com` (`http://127.0.0.1:<port>`, no
    /// trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Stops answering (connections are refused from now on) and drops the callbacks not yet posted.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
        self.abort_callbacks();
    }

    /// Registers an account whose SID and auth token authenticate calls and sign its callbacks.
    pub fn add_account(&self, account_sid: &str, auth_token: &str) {
        self.state().accounts.insert(account_sid.into(), auth_token.into());
    }

    /// Puts a number on the opted-out list, as a recipient's `STOP` does: sending to it answers 21610.
    pub fn opt_out(&self, number: &str) {
        self.state().opted_out.insert(number.into());
    }

    /// Takes a number off the opted-out list, as its `START` does.
    pub fn opt_in(&self, number: &str) {
        self.state().opted_out.remove(number);
    }

    /// While paused, API calls hang unanswered and unrecorded; unpausing lets the waiting ones through.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.send_replace(paused);
    }

    /// Holds status callbacks not yet posted until [`FakeTwilio::release_callbacks`].
    pub fn hold_callbacks(&self) {
        self.shared.callbacks_held.send_replace(true);
    }

    /// Posts the held status callbacks, and the later ones as they fall due.
    pub fn release_callbacks(&self) {
        self.shared.callbacks_held.send_replace(false);
    }

    /// Answers the next `n` API calls with [`Options::fault_status`] before anything is recorded.
    pub fn fail_next(&self, n: usize) {
        self.state().outages = n;
    }

    /// The messages accepted, in order.
    /// Forgets every message to `number`, as if it had never been sent (for a test of a send that never arrived).
    pub fn forget_to(&self, number: &str) {
        let mut state = self.state();
        state.messages.retain(|m| m.to != number);
        state.prices.retain(|p| p.to != number);
    }

    pub fn messages(&self) -> Vec<Message> {
        self.state().messages.clone()
    }

    /// The messages accepted for one recipient, in order.
    pub fn messages_to(&self, number: &str) -> Vec<Message> {
        self.state().messages.iter().filter(|m| m.to == number).cloned().collect()
    }

    /// How many messages were accepted.
    pub fn count(&self) -> usize {
        self.state().messages.len()
    }

    /// How many API calls arrived, answered or not, faults and refusals included.
    pub fn api_calls(&self) -> usize {
        self.state().api_calls
    }

    /// What each accepted message costs, in order.
    pub fn price_record(&self) -> Vec<PriceRecord> {
        self.state().prices.clone()
    }

    /// What the accepted messages cost together, in micro-dollars.
    pub fn total_price_micros(&self) -> u64 {
        self.state().prices.iter().map(|p| p.price_micros).sum()
    }

    /// Every status callback attempt so far, in the order they were answered.
    pub fn callback_attempts(&self) -> Vec<CallbackAttempt> {
        self.state().attempts.clone()
    }

    /// Posts an incoming SMS to `url`, signed as Twilio signs a number's webhook with the auth token of
    /// `account_sid` (which must be registered), and returns the receiver's answer status.
    pub async fn inbound(
        &self,
        url: &str,
        account_sid: &str,
        from: &str,
        to: &str,
        body: &str,
    ) -> reqwest::Result<u16> {
        let auth_token = self.state().accounts.get(account_sid).cloned();
        let auth_token = auth_token.unwrap_or_else(|| panic!("add_account({account_sid:?}, ...) before inbound"));
        let sid = message_sid();
        let params = fields(&[
            ("ToCountry", "US"),
            ("SmsMessageSid", &sid),
            ("NumMedia", "0"),
            ("SmsSid", &sid),
            ("SmsStatus", "received"),
            ("Body", body),
            ("To", to),
            ("NumSegments", &segments(body).to_string()),
            ("MessageSid", &sid),
            ("AccountSid", account_sid),
            ("From", from),
            ("ApiVersion", API_VERSION),
        ]);
        let signed = signature(Algorithm::HmacSha1, &auth_token, url, &params);
        let response = self
            .shared
            .client
            .post(url)
            .header("X-Twilio-Signature", signed)
            .header("I-Twilio-Idempotency-Token", uuid::Uuid::new_v4().to_string())
            .form(&params)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }

    fn abort_callbacks(&self) {
        for task in self.state().callback_tasks.drain(..) {
            task.abort();
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state()
    }
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake Twilio state")
    }
}

async fn create_message(
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    shared.state().api_calls += 1;
    // An error means the fake is being dropped; answering then is harmless.
    let _ = shared.paused.subscribe().wait_for(|paused| !*paused).await;
    let answer = accept(&shared, &request, &path, &body);
    if !shared.options.response_delay.is_zero() {
        tokio::time::sleep(shared.options.response_delay).await;
    }
    answer
}

/// Checks a send as Twilio does and records it, answering the Message resource or Twilio's error.
fn accept(shared: &Arc<Shared>, request: &HttpRequest, account_sid: &str, body: &[u8]) -> HttpResponse {
    let options = &shared.options;
    let mut state = shared.state();
    let fault = if state.outages > 0 {
        state.outages -= 1;
        true
    } else {
        options.fault_rate > 0.0 && state.fault_rng.random::<f64>() < options.fault_rate
    };
    if fault {
        return match options.fault_status {
            503 => error(StatusCode::SERVICE_UNAVAILABLE, 20503, "Service Unavailable"),
            _ => error(StatusCode::INTERNAL_SERVER_ERROR, 20500, "Internal Server Error"),
        };
    }
    let authenticated = basic_auth(request).is_some_and(|(sid, token)| {
        sid == account_sid && state.accounts.get(&sid).is_some_and(|known| *known == token)
    });
    let Some(auth_token) = state.accounts.get(account_sid).cloned().filter(|_| authenticated) else {
        return HttpResponse::Unauthorized().insert_header(("WWW-Authenticate", "Basic realm=\"Twilio API\"")).json(
            json!({
                "code": 20003,
                "detail": "Your AccountSid or AuthToken was incorrect.",
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            }),
        );
    };

    // A body that is not a form (or not UTF-8) has none of the parameters, as Twilio reads it.
    let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    let param = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let Some(to) = param("To") else {
        return error(StatusCode::BAD_REQUEST, 21604, "A 'To' phone number is required.");
    };
    if !is_e164(&to) {
        return error(StatusCode::BAD_REQUEST, 21211, &format!("The 'To' number {to} is not a valid phone number."));
    }
    let from = param("From");
    let messaging_service_sid = param("MessagingServiceSid");
    let Some(sender) = from.clone().or_else(|| messaging_service_sid.clone()) else {
        return error(StatusCode::BAD_REQUEST, 21603, "A 'From' phone number is required.");
    };
    let Some(text) = param("Body") else {
        return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    if text.chars().count() > MAX_BODY_CHARACTERS {
        return error(
            StatusCode::BAD_REQUEST,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    let status_callback = param("StatusCallback");
    if let Some(url) = status_callback.as_deref().filter(|url| !is_http_url(url)) {
        return error(StatusCode::BAD_REQUEST, 21609, &format!("The StatusCallback URL {url} is not a valid URL."));
    }
    if state.opted_out.contains(&to) {
        return error(StatusCode::BAD_REQUEST, 21610, "Attempt to send to unsubscribed recipient");
    }
    if let Some(limit) = options.rate_limit_per_second {
        let now = Instant::now();
        let recent = state.recent_sends.entry(sender).or_default();
        while recent.front().is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1)) {
            recent.pop_front();
        }
        if recent.len() >= limit as usize {
            return error(StatusCode::TOO_MANY_REQUESTS, 20429, "Too Many Requests");
        }
        recent.push_back(now);
    }

    let draw = state.outcome_rng.random::<f64>();
    let final_status = if draw < options.failed_rate {
        FinalStatus::Failed
    } else if draw < options.failed_rate + options.undelivered_rate {
        FinalStatus::Undelivered
    } else {
        FinalStatus::Delivered
    };
    let message = Message {
        sid: message_sid(),
        account_sid: account_sid.to_owned(),
        to,
        from,
        messaging_service_sid,
        segments: segments(&text),
        body: text,
        status_callback,
        final_status,
        received_at: Instant::now(),
    };
    state.prices.push(PriceRecord {
        sid: message.sid.clone(),
        to: message.to.clone(),
        from: message.from.clone(),
        body: message.body.clone(),
        segments: message.segments,
        price_micros: u64::from(message.segments) * options.price_per_segment_micros,
    });
    state.messages.push(message.clone());
    if message.status_callback.is_some() {
        let callbacks = shared.runtime.spawn(post_status_callbacks(shared.clone(), message.clone(), auth_token));
        state.callback_tasks.retain(|task| !task.is_finished());
        state.callback_tasks.push(callbacks.abort_handle());
    }
    HttpResponse::Created().json(resource(&message))
}

/// `GET .../Messages.json?To=&From=&PageSize=`: the account's messages, newest first, as Twilio lists them
/// (`{"messages": [...], "next_page_uri": null, ...}`), filtered by `To` and `From` when given.
async fn list_messages(
    shared: web::Data<Shared>,
    request: HttpRequest,
    account_sid: web::Path<String>,
) -> HttpResponse {
    let state = shared.state();
    let authenticated = basic_auth(&request).is_some_and(|(sid, token)| {
        sid == *account_sid && state.accounts.get(&sid).is_some_and(|known| *known == token)
    });
    if !authenticated {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let query: Vec<(String, String)> = serde_urlencoded::from_str(request.query_string()).unwrap_or_default();
    let param = |name: &str| query.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let (to, from) = (param("To"), param("From"));
    let size = param("PageSize").and_then(|s| s.parse::<usize>().ok()).unwrap_or(50).min(1000);
    let messages: Vec<serde_json::Value> = state
        .messages
        .iter()
        .rev()
        .filter(|m| m.account_sid == *account_sid)
        .filter(|m| to.as_ref().is_none_or(|t| *t == m.to))
        .filter(|m| from.as_ref().is_none_or(|f| m.from.as_ref() == Some(f)))
        .take(size)
        .map(resource)
        .collect();
    HttpResponse::Ok().json(json!({"messages": messages, "next_page_uri": null, "page": 0, "page_size": size}))
}

/// The Message resource as Twilio answers a send.
fn resource(message: &Message) -> serde_json::Value {
    let now = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S %z").to_string();
    let uri = format!("/{API_VERSION}/Accounts/{}/Messages/{}", message.account_sid, message.sid);
    json!({
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": message.from,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": message.segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": message.sid,
        "status": "queued",
        "subresource_uris": {"media": format!("{uri}/Media.json")},
        "uri": format!("{uri}.json"),
    })
}

/// Posts `sent` and the message's final status to its `StatusCallback`, in the order and with the delays the
/// options say, each signed and retried.
async fn post_status_callbacks(shared: Arc<Shared>, message: Message, auth_token: String) {
    let options = &shared.options;
    let Some(url) = message.status_callback.clone() else { return };
    let final_status = message.final_status;
    let mut statuses = [("sent", None), (final_status.as_str(), final_status.error_code())];
    if options.final_before_sent {
        statuses.reverse();
    }
    for ((status, error_code), delay) in
        statuses.into_iter().zip([options.delay_before_sent, options.delay_before_final])
    {
        tokio::time::sleep(delay).await;
        let _ = shared.callbacks_held.subscribe().wait_for(|held| !*held).await;
        let error_code = error_code.map(|code| code.to_string());
        let mut pairs = vec![
            ("SmsSid", Some(message.sid.as_str())),
            ("SmsStatus", Some(status)),
            ("MessageStatus", Some(status)),
            ("To", Some(message.to.as_str())),
            ("MessagingServiceSid", message.messaging_service_sid.as_deref()),
            ("MessageSid", Some(message.sid.as_str())),
            ("AccountSid", Some(message.account_sid.as_str())),
            ("From", message.from.as_deref()),
            ("ApiVersion", Some(API_VERSION)),
            ("ErrorCode", error_code.as_deref()),
        ];
        pairs.retain(|(_, value)| value.is_some());
        let params: Vec<(String, String)> =
            pairs.into_iter().map(|(name, value)| (name.to_owned(), value.unwrap_or_default().to_owned())).collect();
        let signed = signature(Algorithm::HmacSha1, &auth_token, &url, &params);
        // The same token on each retry, as Twilio sends it, so a receiver can tell a retry from a new callback.
        let idempotency_token = uuid::Uuid::new_v4().to_string();
        let mut backoff = options.callback_backoff;
        for attempt in 1..=options.callback_retries.saturating_add(1) {
            let answer = shared
                .client
                .post(&url)
                .header("X-Twilio-Signature", &signed)
                .header("I-Twilio-Idempotency-Token", &idempotency_token)
                .form(&params)
                .send()
                .await
                .ok()
                .map(|response| response.status().as_u16());
            shared.state().attempts.push(CallbackAttempt {
                message_sid: message.sid.clone(),
                message_status: status.to_owned(),
                url: url.clone(),
                attempt,
                answer,
            });
            if answer.is_some_and(|status| (200..300).contains(&status)) || attempt > options.callback_retries {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
        }
    }
}

/// An error as Twilio answers them.
fn error(status: StatusCode, code: u32, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status.as_u16(),
    }))
}

/// A message SID: `SM` and 32 lower-case hex digits.
fn message_sid() -> String {
    format!("SM{}", uuid::Uuid::new_v4().simple())
}

fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

/// The account SID and auth token of an `Authorization: Basic` header.
fn basic_auth(request: &HttpRequest) -> Option<(String, String)> {
    let value = request.headers().get("authorization")?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let (sid, token) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((sid.to_owned(), token.to_owned()))
}

/// E.164: a plus and 7 to 15 digits, the first not 0.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (7..=15).contains(&digits.len()) && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn is_http_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
}

/// GSM 03.38's basic character set: one septet each.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
    ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: an escape septet and one more each.
const GSM_EXTENSION: &str = "\x0C^{}\\[~]|€";

/// How many segments Twilio bills a body as: GSM-7 when every character is in GSM 03.38 (160 septets in one
/// segment, 153 in each part of a longer one, an extension character's escape pair never split across parts), UCS-2
/// otherwise (70 UTF-16 units in one segment, 67 in each part, a surrogate pair never split). Written apart from
/// the service's own counter, to check it.
fn segments(body: &str) -> u32 {
    let gsm: Option<Vec<u32>> = body
        .chars()
        .map(|c| {
            if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .collect();
    let (costs, single, per_part) = match gsm {
        Some(septets) => (septets, 160, 153),
        None => (body.chars().map(|c| c.len_utf16() as u32).collect(), 70, 67),
    };
    if costs.iter().sum::<u32>() <= single {
        return 1;
    }
    let (mut parts, mut used) = (1, 0);
    for cost in costs {
        if used + cost > per_part {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use almoner_webhook_verify::{Delivery, twilio};
    use tokio::sync::mpsc;

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "abcdefabcdefabcdefabcdefabcdef12";
    const OTHER_ACCOUNT: &str = "ACffffffffffffffffffffffffffffffff";
    const OTHER_TOKEN: &str = "12345678901234567890123456789012";
    const SENDER: &str = "+15005550006";
    const DONOR: &str = "+447700900123";

    async fn started(options: Options) -> FakeTwilio {
        let twilio = FakeTwilio::start_with(options).await;
        twilio.add_account(ACCOUNT, TOKEN);
        twilio.add_account(OTHER_ACCOUNT, OTHER_TOKEN);
        twilio
    }

    fn messages_url(twilio: &FakeTwilio, account: &str) -> String {
        format!("{}/2010-04-01/Accounts/{account}/Messages.json", twilio.base_url())
    }

    /// Sends `form` as `ACCOUNT`, answering the status and the JSON.
    async fn send(twilio: &FakeTwilio, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(messages_url(twilio, ACCOUNT))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(form)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn assert_twilio_error(answer: &(u16, serde_json::Value), status: u16, code: u32) {
        let (got, body) = answer;
        assert_eq!((*got, body["code"].as_u64()), (status, Some(u64::from(code))), "{body}");
        assert_eq!(body["status"], status, "{body}");
        assert_eq!(body["more_info"], format!("https://www.twilio.com/docs/errors/{code}"), "{body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }

    /// A request the receiver got: the URL it was sent to, its headers (lower-case names) and its body.
    #[derive(Debug)]
    struct Received {
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Received {
        fn field(&self, name: &str) -> Option<String> {
            let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&self.body).unwrap();
            fields.into_iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }

        /// Verifies it as webhook-ingest does, over the URL it was posted to.
        fn verify(
            &self,
            secret: &str,
        ) -> Result<Vec<almoner_webhook_verify::ProviderEvent>, almoner_webhook_verify::Refusal> {
            twilio::verify(&Delivery { url: &self.url, headers: &self.headers, body: &self.body }, &[secret])
        }
    }

    /// A webhook receiver on `127.0.0.1:<ephemeral>` that reports each request and answers the queued statuses,
    /// then `200`.
    struct Receiver {
        base_url: String,
        arrivals: mpsc::UnboundedReceiver<Received>,
        answers: Arc<Mutex<VecDeque<u16>>>,
        handle: ServerHandle,
    }

    impl Drop for Receiver {
        fn drop(&mut self) {
            drop(self.handle.stop(false));
        }
    }

    impl Receiver {
        async fn start() -> Receiver {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let base_url = format!("http://{}", listener.local_addr().unwrap());
            let (sender, arrivals) = mpsc::unbounded_channel();
            let answers = Arc::new(Mutex::new(VecDeque::new()));
            let (queued, origin) = (answers.clone(), base_url.clone());
            let server = HttpServer::new(move || {
                let (sender, queued, origin) = (sender.clone(), queued.clone(), origin.clone());
                App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                    let headers = request
                        .headers()
                        .iter()
                        .map(|(n, v)| (n.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                        .collect();
                    let _ = sender.send(Received {
                        url: format!("{origin}{}", request.uri()),
                        headers,
                        body: body.to_vec(),
                    });
                    let status = queued.lock().unwrap().pop_front().unwrap_or(200);
                    async move { HttpResponse::build(StatusCode::from_u16(status).unwrap()).finish() }
                }))
            })
            .workers(1)
            .disable_signals()
            .listen(listener)
            .unwrap()
            .run();
            let handle = server.handle();
            tokio::spawn(server);
            Receiver { base_url, arrivals, answers, handle }
        }

        fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base_url)
        }

        fn answer_next(&self, statuses: &[u16]) {
            self.answers.lock().unwrap().extend(statuses);
        }

        async fn next(&mut self) -> Received {
            tokio::time::timeout(Duration::from_secs(5), self.arrivals.recv())
                .await
                .expect("a request reached the receiver")
                .unwrap()
        }

        async fn nothing_within(&mut self, wait: Duration) -> bool {
            tokio::time::timeout(wait, self.arrivals.recv()).await.is_err()
        }
    }

    /// The callback attempts (status, try, answer) once there are `n` of them: an attempt is recorded when its
    /// answer is read, a little after the receiver has seen the request.
    async fn attempts(twilio: &FakeTwilio, n: usize) -> Vec<(String, u32, Option<u16>)> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while twilio.callback_attempts().len() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        twilio.callback_attempts().into_iter().map(|a| (a.message_status, a.attempt, a.answer)).collect()
    }

    /// Options whose callbacks come at once.
    fn quick() -> Options {
        Options {
            delay_before_sent: Duration::ZERO,
            delay_before_final: Duration::from_millis(10),
            callback_backoff: Duration::from_millis(20),
            ..Options::default()
        }
    }

    #[test]
    fn counts_segments_by_twilios_rules() {
        let gsm = |n: usize| "a".repeat(n);
        assert_eq!(segments("Thank you for your gift"), 1);
        assert_eq!(segments(&gsm(160)), 1);
        assert_eq!(segments(&gsm(161)), 2);
        assert_eq!(segments(&gsm(306)), 2);
        assert_eq!(segments(&gsm(307)), 3);
        assert_eq!(segments(&gsm(1_600)), 11);
        // GSM characters outside ASCII are one septet; the extension table's (form feed too) two.
        assert_eq!(segments(&"£é¿Ñ§Δ\n".repeat(20)), 1);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
        assert_eq!(segments(&"\x0C".repeat(81)), 2);
        // 152 + 2 + 152 septets fit two parts of 153 only by splitting the escape pair, which is never done.
        assert_eq!(segments(&format!("{}[{}", gsm(152), gsm(152))), 3);
        // One character outside GSM makes the whole body UCS-2.
        assert_eq!(segments(&format!("{}ж", gsm(69))), 1);
        assert_eq!(segments(&format!("{}ж", gsm(70))), 2);
        assert_eq!(segments(&format!("{}`", gsm(70))), 2, "a backtick is not GSM");
        assert_eq!(segments(&"ç".repeat(71)), 2, "GSM has only the capital Ç");
        assert_eq!(segments(&"ж".repeat(134)), 2);
        assert_eq!(segments(&"ж".repeat(135)), 3);
        // An emoji is a surrogate pair, two units, never split across parts.
        assert_eq!(segments(&"😀".repeat(35)), 1);
        assert_eq!(segments(&"😀".repeat(36)), 2);
        assert_eq!(segments(&format!("{}😀{}", "ж".repeat(66), "ж".repeat(66))), 3);
    }

    #[tokio::test]
    async fn accepts_a_message_and_answers_the_resource_as_twilio_does() {
        let twilio = started(Options::default()).await;
        let callback = "https://hooks.example.org/twilio/status";
        let (status, resource) =
            send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Thank you!"), ("StatusCallback", callback)])
                .await;
        assert_eq!(status, 201, "{resource}");
        let sid = resource["sid"].as_str().unwrap().to_owned();
        assert!(
            sid.len() == 34
                && sid.starts_with("SM")
                && sid[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{sid}"
        );
        let date_created = resource["date_created"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc2822(date_created).is_ok(), "{date_created}");
        assert!(date_created.ends_with(" +0000"), "{date_created}");
        assert_eq!(resource["date_updated"], date_created);
        let uri = format!("/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}");
        let expected = json!({
            "account_sid": ACCOUNT,
            "api_version": "2010-04-01",
            "body": "Thank you!",
            "date_created": date_created,
            "date_sent": null,
            "date_updated": date_created,
            "direction": "outbound-api",
            "error_code": null,
            "error_message": null,
            "from": SENDER,
            "messaging_service_sid": null,
            "num_media": "0",
            "num_segments": "1",
            "price": null,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {"media": format!("{uri}/Media.json")},
            "uri": format!("{uri}.json"),
        });
        assert_eq!(resource, expected);

        let messages = twilio.messages();
        assert_eq!((twilio.count(), messages.len()), (1, 1));
        let message = &messages[0];
        assert_eq!(
            (message.sid.as_str(), message.to.as_str(), message.body.as_str()),
            (sid.as_str(), DONOR, "Thank you!")
        );
        assert_eq!(message.status_callback.as_deref(), Some(callback));
        assert!(message.received_at.elapsed() < Duration::from_secs(5));
        assert_eq!(twilio.messages_to(DONOR), messages);
        assert!(twilio.messages_to("+447700900999").is_empty());

        // Through a messaging service: no From until Twilio picks a sender.
        let service = "MG0123456789abcdef0123456789abcdef";
        let (status, resource) =
            send(&twilio, &[("To", DONOR), ("MessagingServiceSid", service), ("Body", "Hi")]).await;
        assert_eq!(status, 201, "{resource}");
        assert_eq!(
            (resource["from"].clone(), resource["messaging_service_sid"].clone()),
            (json!(null), json!(service))
        );
        assert_eq!(twilio.count(), 2);
        assert_eq!(twilio.api_calls(), 2);
    }

    #[tokio::test]
    async fn refuses_calls_without_the_accounts_credentials() {
        let twilio = started(Options::default()).await;
        let client = reqwest::Client::new();
        let form = [("To", DONOR), ("From", SENDER), ("Body", "Hi")];
        let attempts = [
            client.post(messages_url(&twilio, ACCOUNT)).form(&form),
            client.post(messages_url(&twilio, ACCOUNT)).basic_auth(ACCOUNT, Some(OTHER_TOKEN)).form(&form),
            client.post(messages_url(&twilio, ACCOUNT)).basic_auth(ACCOUNT, None::<&str>).form(&form),
            client.post(messages_url(&twilio, ACCOUNT)).header("authorization", "Basic !!!").form(&form),
            client.post(messages_url(&twilio, ACCOUNT)).bearer_auth(TOKEN).form(&form),
            // Another account's own credentials do not reach this one's messages.
            client.post(messages_url(&twilio, ACCOUNT)).basic_auth(OTHER_ACCOUNT, Some(OTHER_TOKEN)).form(&form),
            client.post(messages_url(&twilio, "ACunknown")).basic_auth("ACunknown", Some(TOKEN)).form(&form),
        ];
        for attempt in attempts {
            let response = attempt.send().await.unwrap();
            assert_eq!(response.headers().get("www-authenticate").unwrap(), "Basic realm=\"Twilio API\"");
            let answer = (response.status().as_u16(), response.json().await.unwrap());
            assert_twilio_error(&answer, 401, 20003);
        }
        assert_eq!(twilio.count(), 0);
        let response =
            client.post(messages_url(&twilio, OTHER_ACCOUNT)).basic_auth(OTHER_ACCOUNT, Some(OTHER_TOKEN)).form(&form);
        assert_eq!(response.send().await.unwrap().status(), 201);
        let elsewhere = client.get(format!("{}/2010-04-01/Accounts/{ACCOUNT}/Calls.json", twilio.base_url()));
        let response = elsewhere.send().await.unwrap();
        assert_twilio_error(&(response.status().as_u16(), response.json().await.unwrap()), 404, 20404);
    }

    #[tokio::test]
    async fn answers_each_refusal_with_twilios_code() {
        let twilio = started(Options::default()).await;
        let too_long = "a".repeat(1_601);
        let cases: [(&[(&str, &str)], u32); 10] = [
            (&[("From", SENDER), ("Body", "Hi")], 21604),
            (&[("To", ""), ("From", SENDER), ("Body", "Hi")], 21604),
            (&[("To", "07700900123"), ("From", SENDER), ("Body", "Hi")], 21211),
            (&[("To", "+44 7700 900123"), ("From", SENDER), ("Body", "Hi")], 21211),
            (&[("To", "+0447700900123"), ("From", SENDER), ("Body", "Hi")], 21211),
            (&[("To", DONOR), ("Body", "Hi")], 21603),
            (&[("To", DONOR), ("From", SENDER)], 21602),
            (&[("To", DONOR), ("From", SENDER), ("Body", "")], 21602),
            (&[("To", DONOR), ("From", SENDER), ("Body", &too_long)], 21617),
            (&[("To", DONOR), ("From", SENDER), ("Body", "Hi"), ("StatusCallback", "not a url")], 21609),
        ];
        for (form, code) in cases {
            assert_twilio_error(&send(&twilio, form).await, 400, code);
        }
        // A body that is not a form has no parameters; it is refused, not a crash.
        let response = reqwest::Client::new()
            .post(messages_url(&twilio, ACCOUNT))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .header("content-type", "application/json")
            .body(vec![0xff, 0xfe, b'{'])
            .send()
            .await
            .unwrap();
        assert_twilio_error(&(response.status().as_u16(), response.json().await.unwrap()), 400, 21604);
        assert_eq!(twilio.count(), 0);

        // 1,600 characters are accepted, even as UCS-2.
        assert_eq!(send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", &"ж".repeat(1_600))]).await.0, 201);

        twilio.opt_out(DONOR);
        let refused = send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi")]).await;
        assert_twilio_error(&refused, 400, 21610);
        assert_eq!(refused.1["message"], "Attempt to send to unsubscribed recipient");
        twilio.opt_in(DONOR);
        assert_eq!(send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi")]).await.0, 201);
        assert_eq!(twilio.count(), 2);
    }

    #[tokio::test]
    async fn counts_segments_and_prices_them() {
        let twilio = started(Options::default()).await;
        let long = "a".repeat(161);
        let unicode = "Дякуємо за ваш дар 💛";
        for body in ["Thanks", long.as_str(), unicode] {
            assert_eq!(send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", body)]).await.0, 201);
        }
        let (_, resource) = send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", &"€".repeat(81))]).await;
        assert_eq!(resource["num_segments"], "2");
        let record = twilio.price_record();
        let summary: Vec<(u32, u64)> = record.iter().map(|p| (p.segments, p.price_micros)).collect();
        assert_eq!(summary, [(1, 7_900), (2, 15_800), (1, 7_900), (2, 15_800)]);
        assert_eq!(twilio.total_price_micros(), 47_400);
        assert_eq!(
            (record[2].body.as_str(), record[2].to.as_str(), record[2].from.as_deref()),
            (unicode, DONOR, Some(SENDER))
        );
        assert_eq!(record[2].sid, twilio.messages()[2].sid);

        let twilio = started(Options { price_per_segment_micros: 40_000, ..Options::default() }).await;
        send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", &long)]).await;
        assert_eq!(twilio.total_price_micros(), 80_000);
    }

    #[tokio::test]
    async fn posts_signed_status_callbacks_sent_then_delivered() {
        let twilio = started(quick()).await;
        let mut receiver = Receiver::start().await;
        let url = receiver.url("/webhooks/twilio/status?endpoint=main");
        let (_, resource) =
            send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi"), ("StatusCallback", &url)]).await;
        let sid = resource["sid"].as_str().unwrap();

        let sent = receiver.next().await;
        let delivered = receiver.next().await;
        for (callback, status) in [(&sent, "sent"), (&delivered, "delivered")] {
            assert_eq!(callback.url, url);
            let events = callback.verify(TOKEN).expect("signed with the account's auth token");
            assert_eq!(events[0].event_id, format!("{sid}:{status}"));
            assert!(callback.verify(OTHER_TOKEN).is_err());
            // The same signature, recomputed over the exact URL and the fields.
            let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&callback.body).unwrap();
            let header = |name: &str| callback.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            assert_eq!(
                header("x-twilio-signature"),
                Some(signature(Algorithm::HmacSha1, TOKEN, &url, &params).as_str())
            );
            assert_eq!(header("content-type"), Some("application/x-www-form-urlencoded"));
            assert!(header("i-twilio-idempotency-token").is_some());
            let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            let expected =
                ["AccountSid", "ApiVersion", "From", "MessageSid", "MessageStatus", "SmsSid", "SmsStatus", "To"];
            assert_eq!(names, expected);
            for (name, value) in [
                ("MessageSid", sid),
                ("SmsSid", sid),
                ("MessageStatus", status),
                ("SmsStatus", status),
                ("AccountSid", ACCOUNT),
                ("From", SENDER),
                ("To", DONOR),
                ("ApiVersion", "2010-04-01"),
            ] {
                assert_eq!(callback.field(name).as_deref(), Some(value), "{name}");
            }
        }
        assert!(receiver.nothing_within(Duration::from_millis(200)).await);
        let expected = [("sent", 1, Some(200)), ("delivered", 1, Some(200))];
        assert_eq!(attempts(&twilio, 2).await, expected.map(|(s, n, a)| (s.to_owned(), n, a)));
    }

    #[tokio::test]
    async fn final_statuses_follow_the_seeded_rates() {
        let options = Options { seed: 42, undelivered_rate: 0.25, failed_rate: 0.25, ..quick() };
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let twilio = started(options.clone()).await;
            for _ in 0..40 {
                send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi")]).await;
            }
            outcomes.push(twilio.messages().iter().map(|m| m.final_status).collect::<Vec<_>>());
        }
        assert_eq!(outcomes[0], outcomes[1], "the same seed, the same outcomes");
        let count = |status| outcomes[0].iter().filter(|s| **s == status).count();
        for status in [FinalStatus::Delivered, FinalStatus::Undelivered, FinalStatus::Failed] {
            assert!((4..=36).contains(&count(status)), "{status:?}: {:?}", outcomes[0]);
        }
        let other_seed = started(Options { seed: 43, ..options }).await;
        for _ in 0..40 {
            send(&other_seed, &[("To", DONOR), ("From", SENDER), ("Body", "Hi")]).await;
        }
        assert_ne!(other_seed.messages().iter().map(|m| m.final_status).collect::<Vec<_>>(), outcomes[0]);

        // The failures' callbacks carry their error codes.
        for (rates, status, code) in [((1.0, 0.0), "undelivered", "30003"), ((0.0, 1.0), "failed", "30008")] {
            let twilio = started(Options { undelivered_rate: rates.0, failed_rate: rates.1, ..quick() }).await;
            let mut receiver = Receiver::start().await;
            let url = receiver.url("/status");
            send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi"), ("StatusCallback", &url)]).await;
            let sent = receiver.next().await;
            assert_eq!((sent.field("MessageStatus").as_deref(), sent.field("ErrorCode")), (Some("sent"), None));
            let last = receiver.next().await;
            assert_eq!(last.field("MessageStatus").as_deref(), Some(status));
            assert_eq!(last.field("SmsStatus").as_deref(), Some(status));
            assert_eq!(last.field("ErrorCode").as_deref(), Some(code));
            assert!(last.verify(TOKEN).is_ok());
        }
    }

    #[tokio::test]
    async fn the_final_status_can_arrive_before_sent() {
        let twilio = started(Options { final_before_sent: true, ..quick() }).await;
        let mut receiver = Receiver::start().await;
        let url = receiver.url("/status");
        send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi"), ("StatusCallback", &url)]).await;
        assert_eq!(receiver.next().await.field("MessageStatus").as_deref(), Some("delivered"));
        assert_eq!(receiver.next().await.field("MessageStatus").as_deref(), Some("sent"));
    }

    #[tokio::test]
    async fn held_callbacks_wait_for_release_and_failed_ones_are_retried() {
        let twilio = started(Options { hold_callbacks: true, ..quick() }).await;
        let mut receiver = Receiver::start().await;
        let url = receiver.url("/status");
        let (_, resource) =
            send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi"), ("StatusCallback", &url)]).await;
        assert!(receiver.nothing_within(Duration::from_millis(300)).await, "held");
        receiver.answer_next(&[500, 503]);
        twilio.release_callbacks();
        let tries: Vec<Received> = vec![receiver.next().await, receiver.next().await, receiver.next().await];
        // Each try of the same callback carries the same fields, signature and idempotency token.
        let token = |r: &Received| r.headers.iter().find(|(n, _)| n == "i-twilio-idempotency-token").unwrap().1.clone();
        assert!(tries.iter().all(|r| r.body == tries[0].body && token(r) == token(&tries[0])));
        assert!(tries[2].verify(TOKEN).is_ok());
        let delivered = receiver.next().await;
        assert_eq!(delivered.field("MessageStatus").as_deref(), Some("delivered"));
        assert_ne!(token(&delivered), token(&tries[0]));
        let expected =
            [("sent", 1, Some(500)), ("sent", 2, Some(503)), ("sent", 3, Some(200)), ("delivered", 1, Some(200))];
        assert_eq!(attempts(&twilio, 4).await, expected.map(|(s, n, a)| (s.to_owned(), n, a)));
        assert!(twilio.callback_attempts().iter().all(|a| a.message_sid == resource["sid"] && a.url == url));

        // A receiver that cannot be reached: the first try and each retry, then the next status.
        let twilio = started(Options { callback_retries: 2, ..quick() }).await;
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/status", listener.local_addr().unwrap())
        };
        send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi"), ("StatusCallback", &closed)]).await;
        let expected = [("sent", 1), ("sent", 2), ("sent", 3), ("delivered", 1), ("delivered", 2), ("delivered", 3)];
        assert_eq!(attempts(&twilio, 6).await, expected.map(|(s, n)| (s.to_owned(), n, None)));
    }

    #[tokio::test]
    async fn limits_each_sender_per_second() {
        let twilio = started(Options { rate_limit_per_second: Some(2), ..Options::default() }).await;
        let from = |sender| [("To", DONOR), ("From", sender), ("Body", "Hi")];
        assert_eq!(send(&twilio, &from(SENDER)).await.0, 201);
        assert_eq!(send(&twilio, &from(SENDER)).await.0, 201);
        assert_twilio_error(&send(&twilio, &from(SENDER)).await, 429, 20429);
        assert_eq!(send(&twilio, &from("+15005550007")).await.0, 201, "another sender has its own limit");
        assert_eq!(twilio.count(), 3);
        tokio::time::sleep(Duration::from_millis(1_050)).await;
        assert_eq!(send(&twilio, &from(SENDER)).await.0, 201);

        let unlimited = started(Options::default()).await;
        for _ in 0..10 {
            assert_eq!(send(&unlimited, &from(SENDER)).await.0, 201);
        }
    }

    #[tokio::test]
    async fn faults_are_answered_before_anything_is_recorded() {
        let twilio = started(Options { fault_rate: 1.0, ..Options::default() }).await;
        let form = [("To", DONOR), ("From", SENDER), ("Body", "Hi")];
        assert_twilio_error(&send(&twilio, &form).await, 500, 20500);
        assert_eq!((twilio.count(), twilio.api_calls(), twilio.total_price_micros()), (0, 1, 0));

        let twilio = started(Options { fault_rate: 1.0, fault_status: 503, ..Options::default() }).await;
        assert_twilio_error(&send(&twilio, &form).await, 503, 20503);

        // A seeded fraction: the same calls fail on every run, and only they go unrecorded.
        let mut runs = Vec::new();
        for _ in 0..2 {
            let twilio = started(Options { fault_rate: 0.5, seed: 9, ..Options::default() }).await;
            let mut answers = Vec::new();
            for _ in 0..20 {
                answers.push(send(&twilio, &form).await.0);
            }
            assert_eq!(twilio.count(), answers.iter().filter(|s| **s == 201).count());
            runs.push(answers);
        }
        assert_eq!(runs[0], runs[1]);
        assert!(runs[0].contains(&500) && runs[0].contains(&201), "{:?}", runs[0]);

        let twilio = started(Options::default()).await;
        twilio.fail_next(2);
        assert_eq!(send(&twilio, &form).await.0, 500);
        assert_eq!(send(&twilio, &form).await.0, 500);
        assert_eq!(send(&twilio, &form).await.0, 201);
        assert_eq!((twilio.count(), twilio.api_calls()), (1, 3));
    }

    #[tokio::test]
    async fn paused_calls_hang_until_released_and_slow_answers_are_recorded_first() {
        let twilio = Arc::new(started(Options::default()).await);
        twilio.set_paused(true);
        let call = {
            let twilio = twilio.clone();
            tokio::spawn(async move { send(&twilio, &[("To", DONOR), ("From", SENDER), ("Body", "Hi")]).await.0 })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!call.is_finished(), "a paused call hangs");
        assert_eq!((twilio.api_calls(), twilio.count()), (1, 0));
        twilio.set_paused(false);
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), call).await.unwrap().unwrap(), 201);
        assert_eq!(twilio.count(), 1);

        let twilio = started(Options { response_delay: Duration::from_millis(500), ..Options::default() }).await;
        let timed_out = reqwest::Client::new()
            .post(messages_url(&twilio, ACCOUNT))
            .basic_auth(ACCOUNT, Some(TOKEN))
            .form(&[("To", DONOR), ("From", SENDER), ("Body", "Hi")])
            .timeout(Duration::from_millis(100))
            .send()
            .await;
        assert!(timed_out.is_err_and(|e| e.is_timeout()));
        assert_eq!(twilio.count(), 1, "the message was sent although its answer never came");

        twilio.stop().await;
        let refused = reqwest::Client::new().post(messages_url(&twilio, ACCOUNT)).send().await;
        assert!(refused.is_err(), "a stopped fake refuses connections");
    }

    #[tokio::test]
    async fn posts_inbound_messages_signed_over_the_receivers_url() {
        let twilio = started(Options::default()).await;
        let mut receiver = Receiver::start().await;
        let url = receiver.url("/webhooks/twilio/sms?endpoint=inbound");
        let body = "STOP please & thanks £5 💛";
        receiver.answer_next(&[204]);
        assert_eq!(twilio.inbound(&url, ACCOUNT, DONOR, SENDER, body).await.unwrap(), 204);
        let inbound = receiver.next().await;
        assert_eq!(inbound.url, url);
        let events = inbound.verify(TOKEN).expect("signed with the account's auth token");
        assert_eq!(events[0].event_type.as_deref(), Some("message.received"));
        assert!(inbound.verify(OTHER_TOKEN).is_err());
        let sid = inbound.field("MessageSid").unwrap();
        assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");
        assert_eq!(events[0].event_id, sid);
        for (name, value) in [
            ("SmsSid", sid.as_str()),
            ("SmsMessageSid", sid.as_str()),
            ("AccountSid", ACCOUNT),
            ("From", DONOR),
            ("To", SENDER),
            ("Body", body),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsStatus", "received"),
            ("ApiVersion", "2010-04-01"),
        ] {
            assert_eq!(inbound.field(name).as_deref(), Some(value), "{name}");
        }
        assert_eq!(inbound.field("MessagingServiceSid"), None);
        assert_eq!(inbound.field("MessageStatus"), None, "not a status callback");

        // The receiver's refusal comes back as it answered; an unreachable one as an error.
        receiver.answer_next(&[401]);
        assert_eq!(twilio.inbound(&url, OTHER_ACCOUNT, DONOR, SENDER, "hi").await.unwrap(), 401);
        assert!(receiver.next().await.verify(OTHER_TOKEN).is_ok());
        drop(receiver);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(twilio.inbound(&url, ACCOUNT, DONOR, SENDER, "hi").await.is_err());
    }
}
