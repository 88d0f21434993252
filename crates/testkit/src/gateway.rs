//! The real nginx gateway for end-to-end tests: renders `gateway/nginx.conf.template` (the file production
//! uses) with test upstreams, runs nginx on a free loopback port from a private temporary prefix, and stops it
//! when dropped.
//!
//! ```ignore
//! let gateway = Gateway::start(&[("identity", app_port)]).await?;
//! let response = client.get(format!("{}/api/identity/v1/tenant", gateway.base_url)).send().await?;
//! ```
//!
//! nginx comes from `ALMONER_TEST_NGINX_BIN`, which `scripts/test` exports; without it `start` fails.

use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Services in the template that a test does not route point here: nothing listens on port 1, so the
/// gateway answers their paths with its own 502 problem.
const UNROUTED_UPSTREAM: &str = "127.0.0.1:1";

/// A running nginx gateway. Dropping it stops nginx and removes its directory.
#[derive(Debug)]
pub struct Gateway {
    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub base_url: String,
    pub port: u16,
    prefix: PathBuf,
    child: Child,
}

impl Gateway {
    /// Starts nginx in front of the given services, each `(service name, port on 127.0.0.1)`, e.g.
    /// `&[("identity", 41234)]`, and returns once it accepts connections.
    pub async fn start(upstreams: &[(&str, u16)]) -> anyhow::Result<Gateway> {
        let nginx = std::env::var("ALMONER_TEST_NGINX_BIN")
            .context("ALMONER_TEST_NGINX_BIN is not set: run the tests through scripts/test")?;
        let template_path = template_path();
        let template = std::fs::read_to_string(&template_path)
            .with_context(|| format!("reading the gateway template {}", template_path.display()))?;

        let mut last_error = None;
        // Another process may take the free port between our probe and nginx's bind: try a few ports.
        for _ in 0..5 {
            let port = free_port()?;
            match Self::start_on(&nginx, &template, upstreams, port).await {
                Ok(gateway) => return Ok(gateway),
                Err(error) if format!("{error:#}").contains("Address already in use") => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    async fn start_on(nginx: &str, template: &str, upstreams: &[(&str, u16)], port: u16) -> anyhow::Result<Gateway> {
        let prefix = std::env::temp_dir().join(format!("almoner-gateway-{}", uuid::Uuid::new_v4().simple()));
        let temp = prefix.join("temp");
        std::fs::create_dir_all(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let variables = template_variables(&prefix, port, upstreams);
        let config = render(template, &variables)?;
        let config_path = prefix.join("nginx.conf");
        std::fs::write(&config_path, config)?;

        let error_log = prefix.join("error.log");
        let child = Command::new(nginx)
            .arg("-p")
            .arg(&prefix)
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&config_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {nginx}"))?;
        // From here on, Drop stops nginx and removes the prefix, whatever happens next.
        let mut gateway = Gateway { base_url: format!("http://127.0.0.1:{port}"), port, prefix, child };

        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = gateway.child.try_wait()? {
                bail!("nginx exited ({status}) before accepting connections:\n{}", gateway.error_log());
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(gateway);
            }
            if Instant::now() > deadline {
                bail!("nginx did not accept connections on port {port} within 10 s:\n{}", gateway.error_log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `base_url` joined with a path that starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// The JSON access log so far, one request per line.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("access.log")).unwrap_or_default()
    }

    /// nginx's error log so far.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.prefix.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; a SIGKILLed master would leave them serving the port.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!("gateway error log ({}):\n{}", self.prefix.display(), self.error_log());
        }
        let _ = std::fs::remove_dir_all(&self.prefix);
    }
}

/// `gateway/nginx.conf.template` in this repository.
pub fn template_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../gateway/nginx.conf.template")
}

fn template_variables(prefix: &Path, port: u16, upstreams: &[(&str, u16)]) -> BTreeMap<String, String> {
    let path = |name: &str| prefix.join(name).display().to_string();
    let mut variables = BTreeMap::from([
        ("ALMONER_GATEWAY_LISTEN".to_owned(), format!("127.0.0.1:{port}")),
        ("ALMONER_GATEWAY_ACCESS_LOG".to_owned(), path("access.log")),
        ("ALMONER_GATEWAY_ERROR_LOG".to_owned(), path("error.log")),
        ("ALMONER_GATEWAY_PID_FILE".to_owned(), path("nginx.pid")),
        ("ALMONER_GATEWAY_TEMP_DIR".to_owned(), path("temp")),
    ]);
    for (service, port) in upstreams {
        variables.insert(upstream_variable(service), format!("127.0.0.1:{port}"));
    }
    variables
}

/// `webhook-ingest` -> `ALMONER_GATEWAY_WEBHOOK_INGEST_UPSTREAM`, as in scripts/lib/gateway.sh.
fn upstream_variable(service: &str) -> String {
    format!("ALMONER_GATEWAY_{}_UPSTREAM", service.replace('-', "_").to_uppercase())
}

/// Replaces each `${ALMONER_...}` placeholder with its value, like `envsubst` restricted to those names;
/// every other `$` (nginx's own variables) is left alone. Upstreams the template has but `variables` lacks
/// get [`UNROUTED_UPSTREAM`]; any other unknown placeholder, or a given variable the template does not use
/// (a misspelt service), is an error.
pub fn render(template: &str, variables: &BTreeMap<String, String>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len());
    let mut used = std::collections::BTreeSet::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len =
            after.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(after.len());
        let name = &after[..name_len];
        if name.starts_with("ALMONER_") && after[name_len..].starts_with('}') {
            let value = match variables.get(name) {
                Some(value) => value.as_str(),
                None if name.starts_with("ALMONER_GATEWAY_") && name.ends_with("_UPSTREAM") => UNROUTED_UPSTREAM,
                None => bail!("the gateway template uses ${{{name}}}, which the testkit does not set"),
            };
            out.push_str(value);
            used.insert(name);
            rest = &after[name_len + 1..];
        } else {
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    if let Some(unused) = variables.keys().find(|name| !used.contains(name.as_str())) {
        bail!("the gateway template has no ${{{unused}}} (is the service routed in gateway/nginx.conf.template?)");
    }
    Ok(out)
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// What the fake upstream received: the request line and the headers (names lower-cased).
    #[derive(Debug)]
    struct Received {
        request_line: String,
        headers: BTreeMap<String, String>,
    }

    /// A minimal HTTP/1.1 server with keep-alive that answers every request `200 {"ok":true}` and reports
    /// what it received.
    async fn fake_upstream() -> (u16, mpsc::UnboundedReceiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sender = sender.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    loop {
                        let mut request_line = String::new();
                        if read.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut headers = BTreeMap::new();
                        loop {
                            let mut line = String::new();
                            if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let line = line.trim_end();
                            if line.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = line.split_once(':') {
                                headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                            }
                        }
                        let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                        let mut body = vec![0; length];
                        if read.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let _ = sender.send(Received { request_line: request_line.trim_end().to_owned(), headers });
                        let response = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
                        if write.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, receiver)
    }

    async fn received(receiver: &mut mpsc::UnboundedReceiver<Received>) -> Received {
        tokio::time::timeout(Duration::from_secs(5), receiver.recv())
            .await
            .expect("the upstream got a request")
            .unwrap()
    }

    #[tokio::test]
    async fn the_gateway_strips_the_service_prefix_and_carries_a_request_id() {
        let (port, mut upstream) = fake_upstream().await;
        let gateway = Gateway::start(&[("identity", port)]).await.expect("gateway starts");
        let client = reqwest::Client::new();
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

        let response = client
            .get(gateway.url("/api/identity/v1/x?limit=2"))
            .header("traceparent", traceparent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let seen = received(&mut upstream).await;
        assert_eq!(seen.request_line, "GET /v1/x?limit=2 HTTP/1.1");
        let request_id = seen.headers.get("x-request-id").expect("a request id upstream").clone();
        assert_eq!(request_id.len(), 32, "nginx's generated id: {request_id}");
        assert_eq!(
            response.headers().get("x-request-id").unwrap().to_str().unwrap(),
            request_id,
            "the same id comes back"
        );
        assert_eq!(
            seen.headers.get("traceparent").map(String::as_str),
            Some(traceparent),
            "trace context passes untouched"
        );
        assert_eq!(seen.headers.get("connection").map(String::as_str), None, "keep-alive to the upstream");
        assert_eq!(response.text().await.unwrap(), "{\"ok\":true}");

        // A caller's own id is kept; one that does not look like an id is replaced.
        let response = client
            .post(gateway.url("/api/identity/v1/oauth/token"))
            .header("x-request-id", "caller-id-42")
            .body("a=b")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers().get("x-request-id").unwrap(), "caller-id-42");
        let seen = received(&mut upstream).await;
        assert_eq!(seen.request_line, "POST /v1/oauth/token HTTP/1.1");
        assert_eq!(seen.headers.get("x-request-id").map(String::as_str), Some("caller-id-42"));
        let response =
            client.get(gateway.url("/api/identity/v1/x")).header("x-request-id", "not an id {}").send().await.unwrap();
        assert_eq!(response.headers().get("x-request-id").unwrap().len(), 32);
        received(&mut upstream).await;

        let log = gateway.access_log();
        let line = log.lines().find(|line| line.contains("caller-id-42")).expect("the access log names the request id");
        assert!(line.contains("\"status\":200") && line.contains("\"upstream_response_time\":\""), "{line}");
    }

    #[tokio::test]
    async fn health_ready_and_jwks_map_to_the_service() {
        let (port, mut upstream) = fake_upstream().await;
        let gateway = Gateway::start(&[("identity", port)]).await.expect("gateway starts");
        for (path, upstream_path) in [
            ("/health/identity", "/health"),
            ("/ready/identity", "/ready"),
            ("/.well-known/jwks.json", "/.well-known/jwks.json"),
        ] {
            let response = reqwest::get(gateway.url(path)).await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(received(&mut upstream).await.request_line, format!("GET {upstream_path} HTTP/1.1"));
        }
    }

    async fn assert_problem(response: reqwest::Response, status: u16, code: &str) {
        assert_eq!(response.status(), status);
        assert_eq!(response.headers().get("content-type").unwrap(), "application/problem+json");
        let request_id =
            response.headers().get("x-request-id").expect("errors carry a request id").to_str().unwrap().to_owned();
        let body = response.text().await.unwrap();
        assert!(
            body.contains(&format!("\"code\":\"{code}\"")) && body.contains(&format!("\"status\":{status}")),
            "{body}"
        );
        assert!(body.contains(&request_id), "{body}");
    }

    #[tokio::test]
    async fn the_gateways_own_errors_are_problems() {
        let down = free_port().unwrap();
        let gateway = Gateway::start(&[("identity", down)]).await.expect("gateway starts");
        let client = reqwest::Client::new();
        assert_problem(
            client.get(gateway.url("/api/identity/v1/x")).send().await.unwrap(),
            502,
            "upstream_unavailable",
        )
        .await;
        assert_problem(client.get(gateway.url("/nowhere")).send().await.unwrap(), 404, "not_found").await;
        let too_large = vec![b'x'; 10 * 1024 * 1024 + 1];
        assert_problem(
            client.post(gateway.url("/api/identity/v1/x")).body(too_large).send().await.unwrap(),
            413,
            "payload_too_large",
        )
        .await;
        assert_eq!(reqwest::get(gateway.url("/health")).await.unwrap().status(), 200, "the gateway's own liveness");
    }

    #[test]
    fn rendering_replaces_only_the_gateways_placeholders() {
        let variables = BTreeMap::from([("ALMONER_GATEWAY_LISTEN".to_owned(), "8080".to_owned())]);
        let rendered = render(
            "listen ${ALMONER_GATEWAY_LISTEN}; $host ${host} ${ALMONER_GATEWAY_*} ${ALMONER_GATEWAY_X_UPSTREAM}",
            &variables,
        )
        .unwrap();
        assert_eq!(rendered, "listen 8080; $host ${host} ${ALMONER_GATEWAY_*} 127.0.0.1:1");
        assert!(render("${ALMONER_GATEWAY_NEW}", &BTreeMap::new()).is_err(), "an unknown placeholder");
        assert!(render("none", &variables).is_err(), "a variable the template lacks");
    }

    #[test]
    fn the_real_template_renders_completely() {
        let template = std::fs::read_to_string(template_path()).unwrap();
        let rendered =
            render(&template, &template_variables(Path::new("/tmp/x"), 1234, &[("identity", 4321)])).unwrap();
        assert!(rendered.contains("server 127.0.0.1:4321;"));
        assert!(
            !rendered.lines().filter(|line| !line.trim_start().starts_with('#')).any(|line| line.contains("${")),
            "{rendered}"
        );
    }
}
