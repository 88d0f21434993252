//! What every service serves besides its own API: `/health`, `/ready`, `/metrics`, `/openapi.json`, request ids,
//! the request root span, HTTP metrics, and problem+json for anything the router or extractors refuse.

use crate::problem::{ApiError, ErrorCode, Problem, problem_response};
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, web};
use futures::future::BoxFuture;
use opentelemetry::propagation::Extractor;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};
use tracing_opentelemetry::OpenTelemetrySpanExt;

type Check = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The dependencies `/ready` checks, each by name (`postgres`, `rabbitmq`, ...).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(&'static str, Check)>,
    timeout: Option<Duration>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check<F, Fut>(mut self, name: &'static str, check: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((name, Arc::new(move || Box::pin(check()))));
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Runs every check concurrently; each gets the timeout.
    pub async fn run(&self) -> BTreeMap<&'static str, Result<(), String>> {
        let timeout = self.timeout.unwrap_or(Duration::from_secs(2));
        let results = futures::future::join_all(self.checks.iter().map(|(name, check)| async move {
            let outcome = match tokio::time::timeout(timeout, check()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            };
            (*name, outcome)
        }))
        .await;
        results.into_iter().collect()
    }
}

/// Set once a service begins to shut down: from then on `/ready` answers 503, so the gateway and Kubernetes stop
/// routing to it while it finishes what it holds.
#[derive(Clone, Default, Debug)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn begin(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A service's identity and platform endpoints' state.
pub struct Platform {
    pub service: &'static str,
    pub version: &'static str,
    pub readiness: Readiness,
    pub draining: Draining,
    /// The service's OpenAPI document, served at `/openapi.json`.
    pub openapi: utoipa::openapi::OpenApi,
    pub body_limit_bytes: usize,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

async fn health(platform: web::Data<Platform>) -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok", service: platform.service, version: platform.version })
}

#[derive(Serialize)]
struct ReadyProblem {
    #[serde(flatten)]
    problem: Problem,
    checks: BTreeMap<&'static str, String>,
}

async fn ready(platform: web::Data<Platform>) -> HttpResponse {
    if platform.draining.is_draining() {
        let problem = ApiError::new(ErrorCode::NotReady, "shutting down").problem();
        let checks = BTreeMap::from([("shutdown", "in progress".to_owned())]);
        return HttpResponse::ServiceUnavailable()
            .content_type("application/problem+json")
            .json(ReadyProblem { problem, checks });
    }
    let results = platform.readiness.run().await;
    let failing: Vec<&str> = results.iter().filter(|(_, r)| r.is_err()).map(|(name, _)| *name).collect();
    let checks: BTreeMap<&'static str, String> = results
        .iter()
        .map(|(name, r)| (*name, r.as_ref().map(|()| "ok".to_owned()).unwrap_or_else(|e| format!("error: {e}"))))
        .collect();
    if failing.is_empty() {
        return HttpResponse::Ok().json(serde_json::json!({"status": "ready", "checks": checks}));
    }
    tracing::warn!(failing = ?failing, "not ready");
    let problem = ApiError::new(ErrorCode::NotReady, format!("unavailable: {}", failing.join(", "))).problem();
    HttpResponse::ServiceUnavailable().content_type("application/problem+json").json(ReadyProblem { problem, checks })
}

async fn metrics() -> HttpResponse {
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode_to_string(&prometheus::gather()) {
        Ok(body) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body),
        Err(e) => ApiError::unexpected(e.into()).error_response_owned(),
    }
}

async fn openapi(platform: web::Data<Platform>) -> HttpResponse {
    HttpResponse::Ok().json(&platform.openapi)
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(ErrorCode::NotFound, format!("no route for {} {}", req.method(), req.path())).error_response_owned()
}

impl ApiError {
    fn error_response_owned(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}

/// The request id: the caller's (or the gateway's) `X-Request-Id` when it is sane, otherwise a new UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn sane_request_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

async fn request_id_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| sane_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    // While shutting down, every response closes its connection: a keep-alive client (the gateway) then opens its
    // next request elsewhere instead of sending it on a connection that is about to be closed under it.
    if response.request().app_data::<web::Data<Platform>>().is_some_and(|p| p.draining.is_draining()) {
        response.response_mut().head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
    }
    Ok(response)
}

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The root span of every request: request id, trace id (continuing the caller's W3C trace when given),
/// route and status, named for OpenTelemetry.
pub struct AlmonerRootSpan;

impl RootSpanBuilder for AlmonerRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
        let route = request.match_pattern().unwrap_or_else(|| request.path().to_owned());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %format!("{} {}", request.method(), route),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.method = %request.method(),
            http.route = %route,
            http.target = %request.uri().path(),
            http.status_code = tracing::field::Empty,
            request_id = %request_id,
            trace_id = tracing::field::Empty,
            tenant_id = tracing::field::Empty,
        );
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(request.headers())));
        let _ = span.set_parent(parent);
        if let Some(trace_id) = span_trace_id(&span) {
            span.record("trace_id", trace_id);
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, actix_web::Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        span.record("http.status_code", status.as_u16());
        span.record("otel.status_code", if status.is_server_error() { "ERROR" } else { "OK" });
    }
}

fn span_trace_id(span: &Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    let c = IntCounterVec::new(
        Opts::new("http_requests_total", "HTTP requests by route and status"),
        &["method", "route", "status"],
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(c.clone()));
    c
});

static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    let h = HistogramVec::new(
        HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route")
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
        &["method", "route"],
    )
    .expect("valid metric");
    let _ = prometheus::register(Box::new(h.clone()));
    h
});

async fn metrics_middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let response = next.call(req).await?;
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    HTTP_REQUESTS.with_label_values(&[method.as_str(), route.as_str(), response.status().as_str()]).inc();
    HTTP_DURATION.with_label_values(&[method.as_str(), route.as_str()]).observe(started.elapsed().as_secs_f64());
    Ok(response)
}

/// Any error response that is not already a problem document (actix's own extractor and routing errors) becomes
/// one, so clients always get problem+json with a stable code.
async fn problem_fallback(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let response = next.call(req).await?;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if status.as_u16() < 400 || is_problem {
        return Ok(response.map_into_boxed_body());
    }
    let (code, detail) = match status.as_u16() {
        401 => (ErrorCode::Unauthorized, "authentication is required"),
        403 => (ErrorCode::Forbidden, "not allowed"),
        404 => (ErrorCode::NotFound, "not found"),
        405 => (ErrorCode::MethodNotAllowed, "this method is not allowed on this resource"),
        409 => (ErrorCode::Conflict, "the request conflicts with the current state"),
        413 => (ErrorCode::PayloadTooLarge, "the request body exceeds the size limit"),
        415 => (ErrorCode::UnsupportedMediaType, "the content type is not supported"),
        429 => (ErrorCode::RateLimited, "too many requests"),
        503 => (ErrorCode::ServiceUnavailable, "temporarily unavailable; retry shortly"),
        s if s < 500 => (ErrorCode::MalformedRequest, "the request could not be processed"),
        _ => (ErrorCode::Internal, "an unexpected error occurred; it has been logged"),
    };
    let (request, _) = response.into_parts();
    let body = problem_response(&ApiError::new(code, detail).problem(), &[]);
    Ok(ServiceResponse::new(request, body))
}

fn extractor_error(detail: String, status: actix_web::http::StatusCode) -> actix_web::Error {
    let code = match status.as_u16() {
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        _ => ErrorCode::MalformedRequest,
    };
    ApiError::new(code, detail).into()
}

/// The base `App` of every service: platform endpoints, middleware and problem+json error handling.
/// The service adds its own routes with `.configure(...)` and its state with `.app_data(...)`.
pub fn app(
    platform: Arc<Platform>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = platform.body_limit_bytes;
    App::new()
        .app_data(web::Data::from(platform))
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::JsonConfig::default().limit(limit).error_handler(|e, _| {
            let status = actix_web::ResponseError::status_code(&e);
            extractor_error(e.to_string(), status)
        }))
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::new(ErrorCode::NotFound, format!("invalid path: {e}")).into()),
        )
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            ApiError::validation(vec![crate::FieldError { field: "query".into(), message: e.to_string() }]).into()
        }))
        .app_data(web::FormConfig::default().limit(64 * 1024).error_handler(|e, _| {
            let status = actix_web::ResponseError::status_code(&e);
            extractor_error(e.to_string(), status)
        }))
        .route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics))
        .route("/openapi.json", web::get().to(openapi))
        .default_service(web::to(not_found))
        .wrap(from_fn(problem_fallback))
        .wrap(from_fn(metrics_middleware))
        .wrap(TracingLogger::<AlmonerRootSpan>::new())
        .wrap(from_fn(request_id_middleware))
}

/// Renders a problem without an `ApiError`, for code paths outside handlers.
pub fn problem(code: ErrorCode, detail: &str) -> HttpResponse {
    problem_response(&ApiError::new(code, detail).problem(), &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test;

    fn platform(readiness: Readiness) -> Arc<Platform> {
        Arc::new(Platform {
            service: "test",
            version: "0",
            readiness,
            draining: Draining::default(),
            openapi: utoipa::openapi::OpenApiBuilder::new().build(),
            body_limit_bytes: 1024,
        })
    }

    #[actix_web::test]
    async fn ready_names_the_failing_dependency() {
        let readiness = Readiness::new()
            .check("postgres", || async { Ok(()) })
            .check("rabbitmq", || async { Err("connection refused".to_owned()) });
        let app = test::init_service(app(platform(readiness))).await;
        let response = test::call_service(&app, test::TestRequest::get().uri("/ready").to_request()).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json");
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["code"], "not_ready");
        assert!(body["detail"].as_str().unwrap().contains("rabbitmq"));
        assert_eq!(body["checks"]["postgres"], "ok");
    }

    #[actix_web::test]
    async fn ready_is_503_once_draining_begins() {
        let platform = platform(Readiness::new().check("postgres", || async { Ok(()) }));
        let draining = platform.draining.clone();
        let app = test::init_service(app(platform)).await;
        let response = test::call_service(&app, test::TestRequest::get().uri("/ready").to_request()).await;
        assert_eq!(response.status(), 200);
        draining.begin();
        let response = test::call_service(&app, test::TestRequest::get().uri("/ready").to_request()).await;
        assert_eq!(response.status(), 503);
        let body: serde_json::Value = test::read_body_json(response).await;
        assert_eq!(body["code"], "not_ready");
        assert_eq!(body["detail"], "shutting down");
        let response = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
        assert_eq!(response.status(), 200, "liveness is unaffected");
        assert_eq!(
            response.response().head().connection_type(),
            actix_web::http::ConnectionType::Close,
            "connections close after each response while draining"
        );
    }

    #[actix_web::test]
    async fn request_id_is_kept_or_made_and_unknown_routes_are_problems() {
        let app = test::init_service(app(platform(Readiness::new()))).await;
        let request = test::TestRequest::get().uri("/nope").insert_header(("x-request-id", "abc-123")).to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers().get("x-request-id").unwrap(), "abc-123");
        let response = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers().get("x-request-id").unwrap().len(), 36);
        let response = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
        let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        assert!(body.contains("http_requests_total"), "{body}");
    }
}
