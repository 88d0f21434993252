//! A Kubernetes Service in miniature, for tests of rolling restarts: a layer-4 balancer like kube-proxy in front of
//! a service's replicas, whose endpoints follow each replica's readiness probe as the kubelet's does.
//!
//! ```ignore
//! let balancer = ServiceBalancer::start(Probe::default()).await;
//! balancer.add(replica_a);                 // a pod joins the endpoints: routed once its probe passes
//! balancer.wait_ready(replica_a, Duration::from_secs(15)).await;
//! // clients (the gateway) connect to balancer.addr(); each connection goes to a ready replica, round robin,
//! // and stays with it for its whole life, as a connection tracked by kube-proxy does.
//! balancer.remove(replica_a);              // the pod is gone; its open connections are left as they are
//! ```
//!
//! What it does not do is what the replica must: it learns that a replica is shutting down only when the replica's
//! `/ready` says so (Kubernetes removes a terminating pod from the endpoints at once; this is stricter), and a
//! connection already open to a replica keeps going there until one side closes it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The readiness probe, as in a container's `readinessProbe` (`httpGet`): a new connection per check, healthy for a
/// status from 200 to 399.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub path: &'static str,
    pub period: Duration,
    pub timeout: Duration,
    /// Failed checks in a row that take a ready endpoint out (one success puts it back).
    pub failure_threshold: u32,
}

impl Default for Probe {
    /// `/ready` every 200 ms, 1 s to answer, out after one failure: quick, for tests that cannot wait the manifests'
    /// 5 s periods.
    fn default() -> Self {
        Probe {
            path: "/ready",
            period: Duration::from_millis(200),
            timeout: Duration::from_secs(1),
            failure_threshold: 1,
        }
    }
}

/// Forwards connections from `127.0.0.1:<port>` to ready endpoints until dropped.
#[derive(Debug)]
pub struct ServiceBalancer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    probe: Probe,
    endpoints: Mutex<Vec<Endpoint>>,
    next: AtomicUsize,
    /// Connections accepted while no endpoint was ready (closed at once, as kube-proxy rejects them).
    unrouted: AtomicU64,
    /// Connections to a chosen endpoint that could not be opened.
    unreachable: AtomicU64,
}

#[derive(Debug)]
struct Endpoint {
    addr: SocketAddr,
    ready: Arc<AtomicBool>,
    forwarded: Arc<AtomicU64>,
    prober: JoinHandle<()>,
}

impl ServiceBalancer {
    /// Listens on an ephemeral loopback port, with no endpoint yet.
    pub async fn start(probe: Probe) -> ServiceBalancer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the balancer's listener");
        let addr = listener.local_addr().expect("the balancer's address");
        let state = Arc::new(State {
            probe,
            endpoints: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
            unrouted: AtomicU64::new(0),
            unreachable: AtomicU64::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        ServiceBalancer { addr, state, accept }
    }

    /// Where clients connect (the Service's cluster address).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds an endpoint, not ready until its first probe passes.
    pub fn add(&self, addr: SocketAddr) {
        let ready = Arc::new(AtomicBool::new(false));
        let prober = tokio::spawn(probe_loop(addr, self.state.probe, ready.clone()));
        let endpoint = Endpoint { addr, ready, forwarded: Arc::new(AtomicU64::new(0)), prober };
        self.state.endpoints.lock().expect("endpoints lock").push(endpoint);
    }

    /// Removes an endpoint: no new connection goes there; those open stay open.
    pub fn remove(&self, addr: SocketAddr) {
        let mut endpoints = self.state.endpoints.lock().expect("endpoints lock");
        if let Some(at) = endpoints.iter().position(|e| e.addr == addr) {
            endpoints.remove(at).prober.abort();
        }
    }

    /// Whether the endpoint is in the balancer and its probe passes.
    pub fn is_ready(&self, addr: SocketAddr) -> bool {
        let endpoints = self.state.endpoints.lock().expect("endpoints lock");
        endpoints.iter().any(|e| e.addr == addr && e.ready.load(Ordering::SeqCst))
    }

    /// Waits until the endpoint is ready (its probe passed); false if it is not within `timeout`.
    pub async fn wait_ready(&self, addr: SocketAddr, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.is_ready(addr) {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Connections forwarded to this endpoint so far.
    pub fn forwarded(&self, addr: SocketAddr) -> u64 {
        let endpoints = self.state.endpoints.lock().expect("endpoints lock");
        endpoints.iter().find(|e| e.addr == addr).map_or(0, |e| e.forwarded.load(Ordering::SeqCst))
    }

    /// Connections closed unforwarded: no endpoint was ready, or the chosen one refused the connection.
    pub fn dropped(&self) -> u64 {
        self.state.unrouted.load(Ordering::SeqCst) + self.state.unreachable.load(Ordering::SeqCst)
    }
}

impl Drop for ServiceBalancer {
    fn drop(&mut self) {
        self.accept.abort();
        if let Ok(endpoints) = self.state.endpoints.lock() {
            endpoints.iter().for_each(|e| e.prober.abort());
        }
    }
}

/// Picks the next ready endpoint, round robin.
fn choose(state: &State) -> Option<(SocketAddr, Arc<AtomicU64>)> {
    let endpoints = state.endpoints.lock().expect("endpoints lock");
    let ready: Vec<&Endpoint> = endpoints.iter().filter(|e| e.ready.load(Ordering::SeqCst)).collect();
    if ready.is_empty() {
        return None;
    }
    let chosen = ready[state.next.fetch_add(1, Ordering::SeqCst) % ready.len()];
    Some((chosen.addr, chosen.forwarded.clone()))
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Some((upstream, forwarded)) = choose(&state) else {
            state.unrouted.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                state.unreachable.fetch_add(1, Ordering::SeqCst);
                return;
            };
            forwarded.fetch_add(1, Ordering::SeqCst);
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            // Each side's close (or half-close) is passed on to the other, so a replica closing a keep-alive
            // connection closes the client's too.
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
    }
}

async fn probe_loop(addr: SocketAddr, probe: Probe, ready: Arc<AtomicBool>) {
    let mut failures = 0;
    loop {
        let passed = tokio::time::timeout(probe.timeout, check(addr, probe.path)).await.unwrap_or(false);
        if passed {
            failures = 0;
            ready.store(true, Ordering::SeqCst);
        } else {
            failures += 1;
            if failures >= probe.failure_threshold {
                ready.store(false, Ordering::SeqCst);
            }
        }
        tokio::time::sleep(probe.period).await;
    }
}

/// One `GET` on a connection of its own, as the kubelet sends it; true for a status from 200 to 399.
async fn check(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr).await else { return false };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kube-probe\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    // "HTTP/1.1 200 OK"
    let status = String::from_utf8_lossy(&head).split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
    status.is_some_and(|s| (200..400).contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server answering every request on its connection with `status`, until the flag changes it.
    async fn server(status: Arc<AtomicUsize>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let status = status.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            return;
                        }
                        let code = status.load(Ordering::SeqCst);
                        let answer =
                            format!("HTTP/1.1 {code} X\r\ncontent-length: 2\r\nx-port: {}\r\n\r\nok", addr.port());
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    /// The port of the replica that answered one request on a new connection through the balancer.
    async fn answered_by(balancer: &ServiceBalancer) -> Option<u16> {
        let mut stream = TcpStream::connect(balancer.addr()).await.ok()?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.ok()?;
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        text.lines().find_map(|l| l.strip_prefix("x-port: ")).and_then(|p| p.trim().parse().ok())
    }

    #[tokio::test]
    async fn routes_new_connections_to_ready_endpoints_only() {
        let (a_status, b_status) = (Arc::new(AtomicUsize::new(200)), Arc::new(AtomicUsize::new(503)));
        let (a, b) = (server(a_status.clone()).await, server(b_status.clone()).await);
        let probe = Probe { period: Duration::from_millis(20), ..Probe::default() };
        let balancer = ServiceBalancer::start(probe).await;
        assert_eq!(answered_by(&balancer).await, None, "no endpoint: the connection is closed");
        balancer.add(a);
        balancer.add(b);
        assert!(balancer.wait_ready(a, Duration::from_secs(5)).await);
        for _ in 0..4 {
            assert_eq!(answered_by(&balancer).await, Some(a.port()), "b is not ready");
        }

        b_status.store(200, Ordering::SeqCst);
        assert!(balancer.wait_ready(b, Duration::from_secs(5)).await);
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(answered_by(&balancer).await.unwrap());
        }
        assert!(seen.contains(&a.port()) && seen.contains(&b.port()), "round robin: {seen:?}");

        a_status.store(503, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!balancer.is_ready(a));
        for _ in 0..4 {
            assert_eq!(answered_by(&balancer).await, Some(b.port()), "a failed its probe");
        }
        balancer.remove(b);
        assert_eq!(answered_by(&balancer).await, None);
        assert!(balancer.dropped() >= 2);
        assert!(balancer.forwarded(a) >= 4);
    }
}
