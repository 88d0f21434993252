//! The gateway's hardening, through the real nginx (rendered from `gateway/nginx.conf.template`) in front of the
//! real services: what it refuses (`/metrics`, oversized bodies, bursts), its aggregated `/ready`, and the
//! headers it adds (security headers always, CORS only for allowed origins).

use crate::stack::Stack;
use almoner_testkit::gateway::Gateway;
use reqwest::{Method, Response};
use serde_json::{Value, json};
use std::time::Duration;

const SERVICES: [&str; 4] = ["identity", "fundraising", "rollup", "storage"];

/// Asserts a problem+json answer from the gateway with this status and code, and returns its body.
async fn problem(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "{:?}", response.headers());
    assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("https://almoner.org/problems/{code}"), "{body}");
    for field in ["title", "detail", "request_id"] {
        assert!(body[field].as_str().is_some_and(|v| !v.is_empty()), "{field} in {body}");
    }
    body
}

/// A CSV of `bytes` bytes or a little more: a header fundraising does not recognise, then filler rows.
fn csv_of(bytes: usize) -> String {
    let row = "filler,filler,filler,filler,filler,filler,filler,filler,filler,filler,filler,filler\n";
    let mut csv = String::with_capacity(bytes + row.len());
    csv.push_str("colour,shape\n");
    while csv.len() < bytes {
        csv.push_str(row);
    }
    csv
}

#[tokio::test]
async fn every_services_metrics_is_refused_at_the_gateway() {
    let stack = Stack::start().await;
    // The services do serve /metrics: it is the gateway that refuses it, however the path is spelt.
    for (service, port) in &stack.upstreams {
        let direct = stack.client.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
        assert_eq!(direct.status(), 200, "{service} serves /metrics directly");
        for path in [
            format!("/api/{service}/metrics"),
            format!("/api/{service}/metrics/"),
            format!("/api/{service}/metrics?format=prometheus"),
            format!("/api/{service}//metrics"),
            format!("/api/{service}/v1/../metrics"),
            format!("/api/{service}/%6detrics"),
        ] {
            let response = stack.client.get(stack.gateway.url(&path)).send().await.unwrap();
            problem(response, 404, "not_found").await;
        }
    }
    assert_eq!(SERVICES.len(), stack.upstreams.len(), "every routed service was tried");
    stack.clean_up().await;
}

#[tokio::test]
async fn bodies_over_a_routes_limit_are_413_and_an_import_may_be_nearly_10_mib() {
    let stack = Stack::start().await;
    let token = stack.admin_token().await;
    let client = &stack.client;

    // 11 MiB to a route with the default 1 MiB limit: refused by nginx, whatever the route does.
    let eleven_mib = vec![b'x'; 11 * 1024 * 1024];
    let response = client
        .post(stack.gateway.url("/api/fundraising/v1/donors"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(eleven_mib.clone())
        .send()
        .await
        .unwrap();
    let body = problem(response, 413, "payload_too_large").await;
    assert!(body["detail"].as_str().unwrap().contains("1 MiB"), "{body}");
    // Just over 1 MiB is too much already.
    let response = client
        .post(stack.gateway.url("/api/identity/v1/oauth/token"))
        .body(vec![b'x'; 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    problem(response, 413, "payload_too_large").await;

    // A 9 MiB import reaches fundraising, which reads it: its header names no field it knows.
    let import = json!({"csv": csv_of(9 * 1024 * 1024), "source": "legacy_crm"}).to_string();
    assert!(import.len() > 9 * 1024 * 1024 && import.len() < 10 * 1024 * 1024);
    let response = client
        .post(stack.gateway.url("/api/fundraising/v1/imports"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(import)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 422, "{body}");
    assert_eq!(body["code"], "validation_failed", "{body}");
    assert_eq!(body["errors"][0]["field"], "csv", "fundraising read the whole file: {body}");

    // 11 MiB is over the import route's own limit.
    let response = client
        .post(stack.gateway.url("/api/fundraising/v1/imports"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(eleven_mib)
        .send()
        .await
        .unwrap();
    let body = problem(response, 413, "payload_too_large").await;
    assert!(body["detail"].as_str().unwrap().contains("10 MiB"), "{body}");
    stack.clean_up().await;
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_is_429_with_retry_after_and_probes_are_exempt() {
    let stack = Stack::start().await;
    let token = stack.admin_token().await;
    // One request a second per client, and two more at once.
    let gateway = Gateway::start_with(
        &stack.upstreams,
        &[("ALMONER_GATEWAY_API_RATE", "1r/s"), ("ALMONER_GATEWAY_API_BURST", "2")],
    )
    .await
    .expect("gateway starts");
    let donors = gateway.url("/api/fundraising/v1/donors");

    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..8 {
        let response = stack.client.get(&donors).bearer_auth(&token).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 && limited.is_none() {
            limited = Some(response);
        }
    }
    assert!(statuses.iter().filter(|s| **s == 200).count() >= 3, "the burst is served: {statuses:?}");
    let limited = limited.unwrap_or_else(|| panic!("no 429 in {statuses:?}"));
    let retry_after: u64 =
        limited.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    problem(limited, 429, "rate_limited").await;

    // Health and readiness are never limited, even for a client over its API limit.
    for path in ["/health", "/health/fundraising", "/ready/fundraising", "/ready"] {
        for _ in 0..5 {
            let response = stack.client.get(gateway.url(path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
        }
    }
    // The limit lifts after Retry-After.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let response = stack.client.get(&donors).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    stack.clean_up().await;
}

#[tokio::test]
async fn ready_is_200_when_every_service_is_and_503_names_the_one_that_is_not() {
    let stack = Stack::start().await;
    let response = stack.client.get(stack.gateway.url("/ready")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    for service in SERVICES {
        assert_eq!(body["services"][service], "ready", "{body}");
    }

    // rollup stopped: its upstream is a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let upstreams: Vec<_> =
        stack.upstreams.iter().map(|&(name, port)| (name, if name == "rollup" { closed } else { port })).collect();
    let gateway = Gateway::start(&upstreams).await.expect("gateway starts");
    let body = problem(stack.client.get(gateway.url("/ready")).send().await.unwrap(), 503, "not_ready").await;
    assert_eq!(body["not_ready"], json!(["rollup"]), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("rollup"), "{body}");
    assert_eq!(body["services"]["identity"], "ready", "{body}");
    // The per-service routes are as they were.
    assert_eq!(stack.client.get(gateway.url("/ready/identity")).send().await.unwrap().status(), 200);
    problem(stack.client.get(gateway.url("/ready/rollup")).send().await.unwrap(), 502, "upstream_unavailable").await;
    stack.clean_up().await;
}

fn assert_security_headers(response: &Response) {
    let headers = response.headers();
    assert_eq!(headers.get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{headers:?}");
    assert_eq!(headers.get("referrer-policy").map(|v| v.to_str().unwrap()), Some("no-referrer"), "{headers:?}");
    if let Some(server) = headers.get("server") {
        assert_eq!(server, "nginx", "no version in Server");
    }
}

fn cors_headers(response: &Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn security_headers_are_on_every_response_and_cors_only_for_allowed_origins() {
    let stack = Stack::start().await;
    let token = stack.admin_token().await;
    let client = &stack.client;
    let origin = "https://console.example.org";

    let ok = client.get(stack.gateway.url("/api/fundraising/v1/donors")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_security_headers(&ok);
    let not_found = client.get(stack.gateway.url("/api/nowhere")).send().await.unwrap();
    assert_eq!(not_found.status(), 404);
    assert_security_headers(&not_found);
    let service_error = client.get(stack.gateway.url("/api/fundraising/v1/donors")).send().await.unwrap();
    assert_eq!(service_error.status(), 401);
    assert_security_headers(&service_error);

    // CORS is off by default: no header for any origin, and a preflight is the service's business (not 204).
    let response =
        client.get(stack.gateway.url("/api/fundraising/v1/donors")).header("origin", origin).send().await.unwrap();
    assert_eq!(cors_headers(&response), Vec::<String>::new());
    assert!(response.headers().get("vary").is_none(), "{:?}", response.headers());
    let preflight = client
        .request(Method::OPTIONS, stack.gateway.url("/api/fundraising/v1/gifts"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_ne!(preflight.status(), 204);
    assert_eq!(cors_headers(&preflight), Vec::<String>::new());

    let gateway = Gateway::start_with(
        &stack.upstreams,
        &[("ALMONER_GATEWAY_CORS_ORIGINS", "https://widget.example.org https://console.example.org")],
    )
    .await
    .expect("gateway starts");
    let allowed = |response: &Response| {
        response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
    };
    let response =
        client.get(gateway.url("/api/fundraising/v1/donors")).bearer_auth(&token).header("origin", origin).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(allowed(&response).as_deref(), Some(origin));
    assert_eq!(response.headers().get("vary").unwrap(), "Origin");
    assert_security_headers(&response);
    // On errors too, so a browser lets the page read the problem.
    let response = client.get(gateway.url("/api/fundraising/v1/donors")).header("origin", origin).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(allowed(&response).as_deref(), Some(origin));

    let preflight = client
        .request(Method::OPTIONS, gateway.url("/api/fundraising/v1/gifts"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(allowed(&preflight).as_deref(), Some(origin));
    assert_security_headers(&preflight);
    assert_eq!(preflight.headers().get("vary").unwrap(), "Origin");
    assert!(preflight.headers().get("x-request-id").is_some(), "{:?}", preflight.headers());
    let methods = preflight.headers().get("access-control-allow-methods").unwrap().to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = preflight.headers().get("access-control-allow-headers").unwrap().to_str().unwrap().to_lowercase();
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(header), "{headers}");
    }

    // Not on the list, nor a prefix or part of an allowed origin: nothing.
    for other in ["https://evil.example.org", "https://console.example", "https://console.example.org.evil", "null"] {
        let response =
            client.get(gateway.url("/api/fundraising/v1/donors")).bearer_auth(&token).header("origin", other).send();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(cors_headers(&response), Vec::<String>::new(), "{other}");
        let preflight = client
            .request(Method::OPTIONS, gateway.url("/api/fundraising/v1/gifts"))
            .header("origin", other)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_ne!(preflight.status(), 204, "{other}");
        assert_eq!(cors_headers(&preflight), Vec::<String>::new(), "{other}");
    }
    stack.clean_up().await;
}

/// The console build scripts/test makes (`ALMONER_TEST_CONSOLE_DIST`, `console/dist`).
pub fn console_dist() -> std::path::PathBuf {
    match std::env::var("ALMONER_TEST_CONSOLE_DIST") {
        Ok(dist) if !dist.is_empty() => dist.into(),
        _ => panic!(
            "ALMONER_TEST_CONSOLE_DIST is not set: scripts/test builds the console (cd console && npm ci && npm run build) \
             and sets it to console/dist; set it yourself to run this test alone"
        ),
    }
}

#[tokio::test]
async fn the_built_console_is_served_at_the_root_under_its_content_security_policy() {
    let dist = console_dist();
    let index = std::fs::read_to_string(dist.join("index.html")).expect("console/dist/index.html: build the console");
    let gateway = Gateway::start(&[]).await.expect("gateway starts");
    let client = reqwest::Client::new();

    // Every route of the single-page app is its index.html, revalidated on each load, under the policy.
    for path in ["/", "/donors/123", "/sign-in/callback", "/gifts/new"] {
        let response = client.get(gateway.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers().get("content-type").unwrap(), "text/html", "{path}");
        assert_eq!(response.headers().get("cache-control").unwrap(), "no-cache", "{path}");
        let csp = response.headers().get("content-security-policy").expect("a CSP").to_str().unwrap().to_owned();
        for directive in ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(response.headers().get("x-frame-options").unwrap(), "DENY");
        assert_eq!(response.headers().get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(response.text().await.unwrap(), index, "{path}");
    }
    // Under script-src 'self' an inline script would not run: the build must have none.
    let mut rest = index.as_str();
    while let Some(at) = rest.find("<script") {
        let tag = &rest[at..at + rest[at..].find('>').expect("a closed tag")];
        assert!(tag.contains(" src="), "an inline script in index.html, refused by the CSP: {tag}");
        rest = &rest[at + tag.len()..];
    }

    // Each file index.html names is served with its type, cached for good, and compressed.
    let assets: Vec<&str> = index.split(['"', '\'']).filter(|part| part.starts_with("/assets/")).collect();
    assert!(assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")), "{index}");
    for asset in assets {
        let response = client.get(gateway.url(asset)).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let expected_type = if asset.ends_with(".js") { "text/javascript" } else { "text/css" };
        assert_eq!(response.headers().get("content-type").unwrap(), expected_type, "{asset}");
        assert_eq!(response.headers().get("cache-control").unwrap(), "public, max-age=31536000, immutable");
        assert_eq!(response.headers().get("content-encoding").unwrap(), "gzip", "{asset}");
    }

    // The API's unknown paths are still the gateway's problem, not the console.
    let response = client.get(gateway.url("/api/nope")).send().await.unwrap();
    assert!(response.headers().get("content-security-policy").is_none());
    problem(response, 404, "not_found").await;
    problem(client.get(gateway.url("/assets/gone-123.js")).send().await.unwrap(), 404, "not_found").await;
}
