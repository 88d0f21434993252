//! A stand-in for GoCardless's Pro API in tests: `GET /payments/{id}`, `/subscriptions/{id}`, `/mandates/{id}` and
//! `/customers/{id}`, speaking GoCardless's documented wire format over real HTTP on `127.0.0.1:<ephemeral>`.
//!
//! - Each request must carry `Authorization: Bearer <token>` with a token the test registered (`401
//!   invalid_api_usage`, `access_token_not_found`, otherwise) and `GoCardless-Version: 2015-07-06` (`400
//!   invalid_api_usage`, `version_not_found` or `missing_version_header`).
//! - A resource the test registered under that token's account is answered `200` wrapped in its name
//!   (`{"payments": {...}}`); anything else `404 invalid_api_usage`, `resource_not_found`.
//! - Errors are GoCardless's `{"error": {"type", "code", "message", "documentation_url", "request_id",
//!   "errors": [{"reason", "message"}]}}`.
//! - [`FakeGoCardless::fail_next`] answers the next requests `500 gocardless`, `internal_server_error`;
//!   [`FakeGoCardless::delay_next`] holds them for a while before answering (to test timeouts).
//!
//! ```ignore
//! let gocardless = FakeGoCardless::start().await;
//! gocardless.add_token("sandbox_token");
//! gocardless.add("sandbox_token", "payments", json!({"id": "PM1", "amount": 1000, ...}));
//! ```

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The resources the fake serves.
pub const RESOURCES: [&str; 4] = ["payments", "subscriptions", "mandates", "customers"];

/// The fake server; it stops when dropped.
pub struct FakeGoCardless {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct State {
    tokens: HashSet<String>,
    /// Resources by (token, resource type, id): a token sees its own account's only.
    resources: HashMap<(String, String, String), Value>,
    /// Requests still to answer `500` before answering normally.
    outages: usize,
    /// Requests still to hold for `delay` before answering.
    delayed: usize,
    delay: Duration,
    /// Every request's path, in order.
    requests: Vec<String>,
}

impl Drop for FakeGoCardless {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
        self.server.abort();
    }
}

impl FakeGoCardless {
    pub async fn start() -> FakeGoCardless {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake GoCardless");
        let base_url = format!("http://{}", listener.local_addr().expect("fake GoCardless address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(shared.clone()).route("/{resource}/{id}", web::get().to(get_resource)).default_service(
                web::to(|request: HttpRequest| async move {
                    error(
                        StatusCode::NOT_FOUND,
                        "invalid_api_usage",
                        "path_not_found",
                        &format!("Path {} not found", request.path()),
                    )
                }),
            )
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .expect("listen on the fake GoCardless's socket")
        .run();
        let handle = server.handle();
        let server = tokio::spawn(async move {
            let _ = server.await;
        });
        FakeGoCardless { base_url, state, handle, server }
    }

    /// Where fundraising is pointed (`http://127.0.0.1:<port>`, no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Registers an access token (one account).
    pub fn add_token(&self, token: &str) {
        self.state().tokens.insert(token.into());
    }

    /// Registers (or replaces) a resource of the account of `token`: `resource` is `payments`, `subscriptions`,
    /// `mandates` or `customers`, and the object's `id` is its id.
    pub fn add(&self, token: &str, resource: &str, object: Value) {
        assert!(RESOURCES.contains(&resource), "the fake serves {RESOURCES:?}, not {resource}");
        let id = object["id"].as_str().expect("a GoCardless resource has an id").to_owned();
        self.state().resources.insert((token.into(), resource.into(), id), object);
    }

    /// Answers the next `n` requests `500`.
    pub fn fail_next(&self, n: usize) {
        self.state().outages = n;
    }

    /// Holds the next `n` requests for `delay` before answering them.
    pub fn delay_next(&self, n: usize, delay: Duration) {
        let mut state = self.state();
        state.delayed = n;
        state.delay = delay;
    }

    /// The paths requested so far (`/payments/PM1`...), in order.
    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake GoCardless state")
    }
}

fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_uppercase()
}

/// An error as GoCardless documents them.
fn error(status: StatusCode, kind: &str, reason: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).content_type("application/json").json(json!({
        "error": {
            "message": message,
            "documentation_url": format!("https://developer.gocardless.com/api-reference#{reason}"),
            "type": kind,
            "request_id": request_id(),
            "errors": [{"reason": reason, "message": message}],
            "code": status.as_u16(),
        }
    }))
}

async fn get_resource(
    request: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let (resource, id) = path.into_inner();
    let delay = {
        let mut state = state.lock().expect("fake GoCardless state");
        state.requests.push(format!("/{resource}/{id}"));
        if state.delayed > 0 {
            state.delayed -= 1;
            Some(state.delay)
        } else {
            None
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut state = state.lock().expect("fake GoCardless state");
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let token = header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    let Some(token) = token.filter(|t| state.tokens.contains(t)) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_usage",
            "access_token_not_found",
            "Access token not found",
        );
    };
    match header("gocardless-version").as_deref() {
        Some("2015-07-06") => {}
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_api_usage",
                "version_not_found",
                "Version not found. Please use one of the documented versions",
            );
        }
        None => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_api_usage",
                "missing_version_header",
                "GoCardless-Version header is required",
            );
        }
    }
    if state.outages > 0 {
        state.outages -= 1;
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "gocardless",
            "internal_server_error",
            "Uh-oh! Something went wrong on our end",
        );
    }
    match state.resources.get(&(token, resource.clone(), id)) {
        Some(object) if RESOURCES.contains(&resource.as_str()) => HttpResponse::Ok().json(json!({ resource: object })),
        _ => error(StatusCode::NOT_FOUND, "invalid_api_usage", "resource_not_found", "Resource not found"),
    }
}
