//! A stand-in for PayPal's REST API in tests: the two endpoints a webhook receiver calls, speaking PayPal's
//! documented wire format over real HTTP on `127.0.0.1:<ephemeral>`.
//!
//! - `POST /v1/oauth2/token`: HTTP basic auth with a registered app's client id and secret, form body
//!   `grant_type=client_credentials`; answers `{"scope", "access_token", "token_type": "Bearer", "app_id",
//!   "expires_in", "nonce"}`, or `401 {"error": "invalid_client", ...}`.
//! - `POST /v1/notifications/verify-webhook-signature`: `Authorization: Bearer <token>` and a JSON body with
//!   `auth_algo`, `cert_url`, `transmission_id`, `transmission_sig`, `transmission_time`, `webhook_id` and
//!   `webhook_event`; answers `{"verification_status": "SUCCESS"}` only for a transmission the test registered as
//!   genuine (every field and the event equal), `"FAILURE"` for anything else, `400 VALIDATION_ERROR` when a field
//!   is missing and `401 invalid_token` for an unknown or expired token.
//!
//! ```ignore
//! let paypal = FakePayPal::start().await;
//! paypal.add_app("client", "secret");
//! paypal.register(transmission.clone());           // what PayPal really sent
//! let verifier = Verifier::new(paypal.base_url());
//! ```

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One delivery as PayPal sent it: its signing headers, the webhook it was for, and its event.
#[derive(Debug, Clone, PartialEq)]
pub struct Transmission {
    pub auth_algo: String,
    pub cert_url: String,
    pub transmission_id: String,
    pub transmission_sig: String,
    pub transmission_time: String,
    pub webhook_id: String,
    pub event: Value,
}

impl Transmission {
    /// A plausible transmission of `event` for `webhook_id`, its id and signature unique.
    pub fn of(webhook_id: &str, event: Value) -> Transmission {
        let id = uuid::Uuid::new_v4();
        Transmission {
            auth_algo: "SHA256withRSA".into(),
            cert_url: "https://api-m.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77".into(),
            transmission_id: id.to_string(),
            transmission_sig: STANDARD.encode(format!("signature of {id}")),
            transmission_time: "2026-12-05T21:00:00Z".into(),
            webhook_id: webhook_id.into(),
            event,
        }
    }

    /// The headers PayPal sends it with, as a receiver sees them (lower-case names).
    pub fn headers(&self) -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            ("paypal-auth-algo".into(), self.auth_algo.clone()),
            ("paypal-cert-url".into(), self.cert_url.clone()),
            ("paypal-transmission-id".into(), self.transmission_id.clone()),
            ("paypal-transmission-sig".into(), self.transmission_sig.clone()),
            ("paypal-transmission-time".into(), self.transmission_time.clone()),
        ]
    }
}

/// The fake server; it stops when dropped.
pub struct FakePayPal {
    base_url: String,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct State {
    /// Client secrets by client id.
    apps: HashMap<String, String>,
    /// Issued tokens and when each expires.
    tokens: HashMap<String, Instant>,
    token_lifetime: Option<Duration>,
    genuine: Vec<Transmission>,
    /// Verify requests still to answer `503` before answering normally.
    outages: usize,
    token_requests: usize,
    /// Every verify request's body, as received.
    verify_requests: Vec<Value>,
    /// Certificate chains (PEM) served at `/v1/notifications/certs/{id}`, by id.
    certificates: HashMap<String, String>,
    /// Certificate downloads answered so far.
    certificate_requests: usize,
}

impl Drop for FakePayPal {
    fn drop(&mut self) {
        // The stop command is sent at once; awaiting would only wait for the workers to finish.
        drop(self.handle.stop(false));
        self.server.abort();
    }
}

impl FakePayPal {
    pub async fn start() -> FakePayPal {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the fake PayPal");
        let base_url = format!("http://{}", listener.local_addr().expect("fake PayPal address"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/v1/oauth2/token", web::post().to(token))
                .route("/v1/notifications/verify-webhook-signature", web::post().to(verify))
                .route("/v1/notifications/certs/{id}", web::get().to(certificate))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen on the fake PayPal's socket")
        .run();
        let handle = server.handle();
        let server = tokio::spawn(async move {
            let _ = server.await;
        });
        FakePayPal { base_url, state, handle, server }
    }

    /// Where the verifier is pointed (`http://127.0.0.1:<port>`, no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Serves a certificate chain (PEM, the signing certificate first) as PayPal serves its signing certificates,
    /// and returns its URL, for a delivery's `PAYPAL-CERT-URL`.
    pub fn add_certificate(&self, id: &str, pem: &str) -> String {
        self.state.lock().unwrap().certificates.insert(id.to_owned(), pem.to_owned());
        format!("{}/v1/notifications/certs/{id}", self.base_url)
    }

    /// How many certificate downloads were answered.
    pub fn certificate_requests(&self) -> usize {
        self.state.lock().unwrap().certificate_requests
    }

    /// Registers a REST app whose credentials get tokens.
    pub fn add_app(&self, client_id: &str, client_secret: &str) {
        self.state().apps.insert(client_id.into(), client_secret.into());
    }

    /// Registers a transmission PayPal really sent: verifying exactly it answers `SUCCESS`.
    pub fn register(&self, transmission: Transmission) {
        self.state().genuine.push(transmission);
    }

    /// How long tokens issued from now on live (PayPal: about nine hours).
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = Some(lifetime);
    }

    /// Forgets every issued token, as if PayPal revoked them: the next verify request with one gets `401`.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Answers the next `n` verify requests `503 Service Unavailable`.
    pub fn fail_next(&self, n: usize) {
        self.state().outages = n;
    }

    /// How many tokens were asked for.
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// The bodies of the verify requests received, in order.
    pub fn verify_requests(&self) -> Vec<Value> {
        self.state().verify_requests.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("fake PayPal state")
    }
}

const FIELDS: [&str; 7] = [
    "auth_algo",
    "cert_url",
    "transmission_id",
    "transmission_sig",
    "transmission_time",
    "webhook_id",
    "webhook_event",
];

async fn token(request: HttpRequest, form: web::Bytes, state: web::Data<Mutex<State>>) -> HttpResponse {
    let mut state = state.lock().expect("fake PayPal state");
    state.token_requests += 1;
    let client = basic_auth(&request);
    let known = client.as_ref().is_some_and(|(id, secret)| state.apps.get(id) == Some(secret));
    if !known {
        return HttpResponse::Unauthorized()
            .json(json!({"error": "invalid_client", "error_description": "Client Authentication failed"}));
    }
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&form).unwrap_or_default();
    let form_type = request.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !form_type.starts_with("application/x-www-form-urlencoded")
        || !fields.iter().any(|(n, v)| n == "grant_type" && v == "client_credentials")
    {
        return HttpResponse::BadRequest()
            .json(json!({"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"}));
    }
    let access_token = format!("A21AA{}", uuid::Uuid::new_v4().simple());
    let lifetime = state.token_lifetime.unwrap_or(Duration::from_secs(32_400));
    state.tokens.insert(access_token.clone(), Instant::now() + lifetime);
    HttpResponse::Ok().json(json!({
        "scope": "https://uri.paypal.com/services/applications/webhooks https://uri.paypal.com/services/applications/verify-webhook-signature",
        "access_token": access_token,
        "token_type": "Bearer",
        "app_id": "APP-80W284485P519543T",
        "expires_in": lifetime.as_secs(),
        "nonce": format!("2026-12-05T21:00:00Z{}", uuid::Uuid::new_v4().simple()),
    }))
}

async fn verify(request: HttpRequest, body: web::Bytes, state: web::Data<Mutex<State>>) -> HttpResponse {
    let mut state = state.lock().expect("fake PayPal state");
    let bearer =
        request.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let live = bearer.and_then(|t| state.tokens.get(t)).is_some_and(|expires| *expires > Instant::now());
    if !live {
        return HttpResponse::Unauthorized()
            .json(json!({"error": "invalid_token", "error_description": "Token signature verification failed"}));
    }
    if state.outages > 0 {
        state.outages -= 1;
        return HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
            "name": "INTERNAL_SERVICE_ERROR",
            "message": "An internal service error has occurred.",
            "debug_id": debug_id(),
        }));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return validation_error(vec![json!({"field": "/", "location": "body", "issue": "MALFORMED_REQUEST_JSON"})]);
    };
    state.verify_requests.push(Value::Object(fields.clone()));
    let missing: Vec<Value> = FIELDS
        .iter()
        .filter(|f| fields.get(**f).is_none_or(|v| v.is_null() || v.as_str() == Some("")))
        .map(|f| json!({"field": format!("/{f}"), "location": "body", "issue": "MISSING_REQUIRED_PARAMETER"}))
        .collect();
    if !missing.is_empty() {
        return validation_error(missing);
    }
    let text = |name: &str| fields.get(name).and_then(Value::as_str).unwrap_or_default();
    let genuine = state.genuine.iter().any(|t| {
        t.auth_algo == text("auth_algo")
            && t.cert_url == text("cert_url")
            && t.transmission_id == text("transmission_id")
            && t.transmission_sig == text("transmission_sig")
            && t.transmission_time == text("transmission_time")
            && t.webhook_id == text("webhook_id")
            && Some(&t.event) == fields.get("webhook_event")
    });
    HttpResponse::Ok().json(json!({"verification_status": if genuine { "SUCCESS" } else { "FAILURE" }}))
}

fn validation_error(details: Vec<Value>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({
        "name": "VALIDATION_ERROR",
        "message": "Invalid request - see details",
        "debug_id": debug_id(),
        "details": details,
    }))
}

fn debug_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..13].to_owned()
}

/// The client id and secret of an `Authorization: Basic` header.
fn basic_auth(request: &HttpRequest) -> Option<(String, String)> {
    let value = request.headers().get("authorization")?.to_str().ok()?;
    let decoded = STANDARD.decode(value.strip_prefix("Basic ")?).ok()?;
    let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn certificate(state: web::Data<Mutex<State>>, id: web::Path<String>) -> HttpResponse {
    let mut state = state.lock().unwrap();
    state.certificate_requests += 1;
    match state.certificates.get(id.as_str()) {
        Some(pem) => HttpResponse::Ok().content_type("application/x-pem-file").body(pem.clone()),
        None => HttpResponse::NotFound().json(serde_json::json!({
            "name": "RESOURCE_NOT_FOUND",
            "message": "The specified resource does not exist.",
        })),
    }
}
