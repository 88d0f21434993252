//! A stand-in for JustGiving's public API in tests: the one endpoint fundraising's pull calls, speaking the wire
//! format JustGiving documents, over real HTTP on `127.0.0.1:<ephemeral>`.
//!
//! - `GET /{appId}/v1/fundraising/pages/{pageShortName}/donations?pageSize=&pageNum=` with
//!   `Accept: application/json`: `{"donations": [...], "id", "pageShortName", "pagination": {"pageNumber",
//!   "pageSizeRequested", "pageSizeReturned", "totalPages", "totalResults"}}`, donations newest first (as the
//!   page shows them), each as JustGiving writes one (see [`donation`]). `pageSize` defaults to 25 here, `pageNum`
//!   to 1.
//! - Errors are JustGiving's list of `{"id", "desc"}`: `404` for an unknown page, `401` for an app id the fake does
//!   not know, `400` for a `pageSize`/`pageNum` that is not a positive number.
//! - Without `Accept: application/json` it answers XML, as JustGiving does by default.
//! - [`FakeJustGiving::fail_next`] answers the next requests `500`, [`FakeJustGiving::rate_limit_next`] `429`.
//!
//! ```ignore
//! let jg = FakeJustGiving::start().await;
//! jg.add_app("0f938d22");
//! jg.add_page("my-page");
//! jg.donate("my-page", donation(1234, "10.00", "GBP", 1_743_761_607_553));
//! ```

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// A donation as JustGiving's API writes one: `amount` a decimal string in major units, `donationDate` a WCF
/// date (`/Date(<ms since the epoch>+0000)/`), status `Accepted`. Change fields with `value["..."] = ...`.
pub fn donation(id: i64, amount: &str, currency: &str, epoch_millis: i64) -> Value {
    json!({
        "amount": amount,
        "currencyCode": currency,
        "donationDate": format!("/Date({epoch_millis}+0000)/"),
        "donationRef": null,
        "donorDisplayName": format!("Donor {id}"),
        "donorLocalAmount": amount,
        "donorLocalCurrencyCode": currency,
        "estimatedTaxReclaim": 0.0,
        "id": id,
        "image": "",
        "message": format!("Good luck from donor {id}"),
        "source": "SponsorshipDonations",
        "status": "Accepted",
        "thirdPartyReference": null,
        "charityId": 2050,
    })
}

/// The fake server; it stops when dropped.
pub struct FakeJustGiving {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct State {
    apps: HashSet<String>,
    /// Each page's donations, oldest first (as added), by short name in lower case.
    pages: HashMap<String, Vec<Value>>,
    /// Statuses to answer the next requests with, first first.
    failures: Vec<u16>,
    /// Every request's path and query, as received.
    requests: Vec<String>,
}

impl Drop for FakeJustGiving {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        self.server.abort();
    }
}

impl FakeJustGiving {
    pub async fn start() -> FakeJustGiving {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake JustGiving");
        let base_url = format!("http://{}", listener.local_addr().expect("fake JustGiving address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/{app_id}/v1/fundraising/pages/{short_name:.+}/donations", web::get().to(donations))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen on the fake JustGiving's socket")
        .run();
        let handle = server.handle();
        let server = tokio::spawn(async move {
            let _ = server.await;
        });
        FakeJustGiving { base_url, state, handle, server }
    }

    /// Where the client is pointed (`http://127.0.0.1:<port>`, no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Registers an application id: requests with another get `401`.
    pub fn add_app(&self, app_id: &str) {
        self.state().apps.insert(app_id.to_owned());
    }

    /// Creates a fundraising page with no donations yet.
    pub fn add_page(&self, short_name: &str) {
        self.state().pages.entry(short_name.to_ascii_lowercase()).or_default();
    }

    /// Adds a donation to a page (creating it), newer than those before.
    pub fn donate(&self, short_name: &str, donation: Value) {
        self.state().pages.entry(short_name.to_ascii_lowercase()).or_default().push(donation);
    }

    /// Answers the next `n` requests `500 Internal Server Error`.
    pub fn fail_next(&self, n: usize) {
        self.state().failures.extend(std::iter::repeat_n(500, n));
    }

    /// Answers the next `n` requests `429 Too Many Requests`.
    pub fn rate_limit_next(&self, n: usize) {
        self.state().failures.extend(std::iter::repeat_n(429, n));
    }

    /// Every request so far: its path and query.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn errors(status: u16, id: &str, desc: &str) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    HttpResponse::build(status).json(json!([{"id": id, "desc": desc}]))
}

fn positive(query: &HashMap<String, String>, name: &str, default: usize) -> Option<usize> {
    match query.get(name) {
        None => Some(default),
        Some(raw) => raw.parse().ok().filter(|n| *n > 0),
    }
}

async fn donations(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let (app_id, short_name) = path.into_inner();
    let mut state = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    state.requests.push(req.uri().to_string());
    if !state.failures.is_empty() {
        let status = state.failures.remove(0);
        return if status == 429 {
            errors(429, "TooManyRequests", "Rate limit exceeded")
        } else {
            errors(status, "InternalServerError", "An error occurred")
        };
    }
    let wants_json = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    if !wants_json {
        return HttpResponse::Ok()
            .content_type("application/xml")
            .body("<?xml version=\"1.0\" encoding=\"utf-8\"?><fundraisingPageDonations/>");
    }
    if !state.apps.contains(&app_id) {
        return errors(401, "AppIdNotValid", "The application id is not valid");
    }
    let Some(all) = state.pages.get(&short_name.to_ascii_lowercase()) else {
        return errors(404, "FundraisingPageNotFound", "Fundraising page not found");
    };
    let (Some(size), Some(number)) = (positive(&query, "pageSize", 25), positive(&query, "pageNum", 1)) else {
        return errors(400, "InvalidPaging", "pageSize and pageNum must be positive numbers");
    };
    let newest_first: Vec<&Value> = all.iter().rev().collect();
    let total = newest_first.len();
    let chunk: Vec<&Value> = newest_first.iter().skip((number - 1) * size).take(size).copied().collect();
    HttpResponse::Ok().json(json!({
        "donations": chunk,
        "id": short_name,
        "pageShortName": short_name,
        "pagination": {
            "pageNumber": number,
            "pageSizeRequested": size,
            "pageSizeReturned": chunk.len(),
            "totalPages": total.div_ceil(size),
            "totalResults": total,
        },
    }))
}
