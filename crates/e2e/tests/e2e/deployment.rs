//! A service as Kubernetes runs it: a Deployment's replicas behind a Service (a [`ServiceBalancer`] whose endpoints
//! follow each replica's `/ready`), restarted one replica at a time as a rollout with `maxSurge: 1` and
//! `maxUnavailable: 0` does.

use almoner_service::Application;
use almoner_testkit::balancer::{Probe, ServiceBalancer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Starts one replica of the service (its settings are captured), as a pod of the Deployment's template; panics if
/// it cannot.
pub type StartReplica = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Application> + Send>> + Send + Sync>;

/// How long a new replica may take to be ready, and an old one to exit after its shutdown began.
const READY_WITHIN: Duration = Duration::from_secs(30);
const EXIT_WITHIN: Duration = Duration::from_secs(30);

/// A service's replicas and its balancer.
pub struct Deployment {
    pub name: &'static str,
    pub balancer: ServiceBalancer,
    start: StartReplica,
    replicas: Vec<Replica>,
}

struct Replica {
    addr: SocketAddr,
    stop: CancellationToken,
    run: JoinHandle<Result<(), String>>,
}

/// What a rolling restart took.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub service: &'static str,
    /// From the first new replica's start until the last one is ready (`kubectl rollout status` returns then).
    pub until_ready: Duration,
    /// Until the last old replica has exited too.
    pub until_old_exited: Duration,
    /// Each new replica's start (migrations checked, connections made, listening) and then its wait until the
    /// balancer found it ready.
    pub starts: Vec<(Duration, Duration)>,
    /// Each old replica's shutdown, from its stop (SIGTERM) to its exit.
    pub shutdowns: Vec<Duration>,
}

impl Deployment {
    /// Starts `replicas` replicas behind `balancer` and returns once each is ready in it.
    pub async fn start(name: &'static str, balancer: ServiceBalancer, replicas: usize, start: StartReplica) -> Self {
        let mut deployment = Deployment { name, balancer, start, replicas: Vec::new() };
        for _ in 0..replicas {
            let (replica, _) = deployment.start_replica().await;
            deployment.replicas.push(replica);
        }
        deployment
    }

    /// The port the gateway routes the service to: its balancer's.
    pub fn port(&self) -> u16 {
        self.balancer.addr().port()
    }

    /// The probe every balancer of the stack uses: `/ready` every 200 ms, out after one failure.
    pub fn probe() -> Probe {
        Probe::default()
    }

    /// Starts a replica and waits until the balancer finds it ready; returns it and how long each took.
    async fn start_replica(&self) -> (Replica, (Duration, Duration)) {
        let began = Instant::now();
        let app = (self.start)().await;
        let started = began.elapsed();
        let addr = SocketAddr::from(([127, 0, 0, 1], app.port()));
        let stop = app.shutdown_token();
        let run = tokio::spawn(async move { app.run_until_stopped().await.map_err(|e| format!("{e:#}")) });
        self.balancer.add(addr);
        assert!(
            self.balancer.wait_ready(addr, READY_WITHIN).await,
            "a new replica of {} ({addr}) was not ready within {READY_WITHIN:?}",
            self.name
        );
        (Replica { addr, stop, run }, (started, began.elapsed() - started))
    }

    /// Replaces every replica, one at a time: a new one starts and becomes ready, then an old one is stopped as
    /// Kubernetes stops a pod (SIGTERM; the balancer learns it only from `/ready`), and the next new one starts
    /// while it drains. Returns once every old replica has exited, without an error, within its deadline.
    pub async fn rolling_restart(&mut self) -> Rollout {
        let began = Instant::now();
        let old = std::mem::take(&mut self.replicas);
        let (mut stopping, mut starts) = (Vec::new(), Vec::new());
        for replica in old {
            let (new, took) = self.start_replica().await;
            self.replicas.push(new);
            starts.push(took);
            replica.stop.cancel();
            let service = self.name;
            let stopped = Instant::now();
            stopping.push((
                replica.addr,
                tokio::spawn(async move {
                    match tokio::time::timeout(EXIT_WITHIN, replica.run).await {
                        Ok(Ok(Ok(()))) => stopped.elapsed(),
                        Ok(Ok(Err(e))) => panic!("a replica of {service} stopped with an error: {e}"),
                        Ok(Err(e)) => panic!("a replica of {service} failed: {e}"),
                        Err(_) => panic!("a replica of {service} did not exit within {EXIT_WITHIN:?}"),
                    }
                }),
            ));
        }
        let until_ready = began.elapsed();
        let mut shutdowns = Vec::new();
        for (addr, exited) in stopping {
            shutdowns.push(exited.await.expect("the old replica's shutdown was watched"));
            // The pod is gone: its endpoint too.
            self.balancer.remove(addr);
        }
        Rollout { service: self.name, until_ready, until_old_exited: began.elapsed(), starts, shutdowns }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.replicas.iter().for_each(|r| r.stop.cancel());
    }
}
