//! [`ServiceBuilder`] turns a list of what a service has into a running [`Application`], and the application's
//! graceful shutdown.
//!
//! Shutdown runs in stages, within `server.shutdown_deadline_secs` in all:
//! 1. `/ready` answers 503 at once; the service keeps serving for `server.shutdown_drain_secs` so that the gateway
//!    and Kubernetes stop routing to it first.
//! 2. The listener closes and requests in flight finish; at the same time consumers stop taking deliveries and
//!    settle the ones they hold (acknowledged, or back to the queue), and background jobs stop.
//! 3. Then the outbox relay, last, publishes what those requests and consumers wrote, and stops.
//!
//! Anything still running at the deadline is abandoned: an unacknowledged delivery comes back from the broker, an
//! unpublished outbox row is published after the next start, a leased job is resumed. Nothing is lost.

use actix_web::dev::{Server, ServerHandle};
use actix_web::{HttpServer, web};
use almoner_bus::consumer::Handler;
use almoner_bus::{ConsumerSpec, Publisher};
use almoner_config::{AmqpSettings, AuthSettings, DatabaseSettings, ServerSettings};
use almoner_db::relay::RelayLink;
use almoner_db::{Migration, Pool};
use almoner_http::{Draining, Platform, Readiness, TokenVerifier};
use anyhow::Context;
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ServiceSettings;

type Configure = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// How long a consumer's queue declaration may take at start before the consumer is left to declare it itself.
const DECLARE_TIMEOUT: Duration = Duration::from_secs(10);

/// A background task and its name, for the shutdown log.
struct Task {
    name: String,
    handle: JoinHandle<()>,
}

/// Collects what a service has, then [`start`](Self::start)s it.
///
/// ```ignore
/// let mut service = ServiceBuilder::new("fundraising", env!("CARGO_PKG_VERSION"), &settings);
/// let pool = service.postgres(SCHEMA, MIGRATIONS).await?;
/// service.outbox_relay(&pool);
/// service.jwks_verifier()?;
/// service.data(pool);
/// service.endpoints(ApiDoc::openapi(), crate::routes::configure);
/// service.start()
/// ```
pub struct ServiceBuilder {
    name: &'static str,
    version: &'static str,
    server: ServerSettings,
    database: DatabaseSettings,
    amqp: AmqpSettings,
    auth: AuthSettings,
    readiness: Readiness,
    rabbitmq_checked: bool,
    app_data: Vec<Configure>,
    routes: Option<Configure>,
    openapi: Option<utoipa::openapi::OpenApi>,
    /// Cancelled when shutdown begins: consumers and jobs.
    work_token: CancellationToken,
    work: Vec<Task>,
    /// Cancelled once requests and work have stopped: the outbox relay.
    last_token: CancellationToken,
    last: Vec<Task>,
}

impl ServiceBuilder {
    pub fn new(name: &'static str, version: &'static str, settings: &impl ServiceSettings) -> Self {
        Self {
            name,
            version,
            server: settings.server().clone(),
            database: settings.database().clone(),
            amqp: settings.amqp().clone(),
            auth: settings.auth().clone(),
            readiness: Readiness::new(),
            rabbitmq_checked: false,
            app_data: Vec::new(),
            routes: None,
            openapi: None,
            work_token: CancellationToken::new(),
            work: Vec::new(),
            last_token: CancellationToken::new(),
            last: Vec::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The service's PostgreSQL schema: migrated first (unless `database.run_migrations` is false), then a pool of
    /// its own role's connections, checked by `/ready` as `postgres`.
    pub async fn postgres(&mut self, schema: &'static str, migrations: &[Migration]) -> anyhow::Result<Pool> {
        if self.database.run_migrations {
            almoner_db::migrate(&self.database, schema, migrations).await.context("migrating the database")?;
        }
        let pool = Pool::new(&self.database, schema).context("creating the database pool")?;
        let checked = pool.clone();
        self.check("postgres", move || {
            let pool = checked.clone();
            async move { pool.ping().await.map_err(|e| e.to_string()) }
        });
        if !self.database.run_migrations {
            // Another process migrates (Kubernetes' migration Job, Compose's *-migrate): until it has applied
            // every migration this binary knows, the replica is not ready, so a rollout never sends traffic to
            // new code on the old schema. Once up to date it stays so (migrations only go forward).
            let checked = pool.clone();
            let migrations = migrations.to_vec();
            let current = Arc::new(AtomicBool::new(false));
            self.check("schema", move || {
                let (pool, migrations, current) = (checked.clone(), migrations.clone(), current.clone());
                async move {
                    if current.load(Ordering::Relaxed) {
                        return Ok(());
                    }
                    match almoner_db::migrate::missing(&pool, &migrations).await {
                        Ok(missing) if missing.is_empty() => {
                            current.store(true, Ordering::Relaxed);
                            Ok(())
                        }
                        Ok(missing) => Err(format!("waiting for migrations: {}", missing.join(", "))),
                        Err(error) => Err(error.to_string()),
                    }
                }
            });
        }
        Ok(pool)
    }

    /// The outbox relay of `pool`'s schema, stopped last at shutdown so it publishes what requests and consumers
    /// wrote. The broker may be down at start: the service still serves (and says it is not ready, `rabbitmq`)
    /// while the relay connects in the background; events wait in the outbox meanwhile.
    pub fn outbox_relay(&mut self, pool: &Pool) {
        let link = RelayLink::default();
        let task = link.clone().run_relay(
            self.amqp.clone(),
            pool.clone(),
            format!("{} outbox relay", self.name),
            self.last_token.clone(),
        );
        self.last.push(Task { name: "outbox relay".to_owned(), handle: tokio::spawn(task) });
        self.check("rabbitmq", move || {
            let link = link.clone();
            async move { link.check().await }
        });
        self.rabbitmq_checked = true;
    }

    /// Consumes `spec`'s queue with `handler`. The queue and its bindings are declared now, so events published
    /// from here on are kept for it even while it connects; if the broker is down, the consumer declares them
    /// once it gets through. At shutdown it stops taking deliveries and settles those it holds.
    pub async fn consumer<H: Handler>(&mut self, spec: ConsumerSpec, handler: H) {
        match tokio::time::timeout(DECLARE_TIMEOUT, almoner_bus::topology::declare_consumer(&self.amqp, &spec)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(queue = %spec.queue, error = %e, "cannot declare the queue yet; the consumer will")
            }
            Err(_) => tracing::warn!(queue = %spec.queue, "declaring the queue timed out; the consumer will"),
        }
        let name = format!("consumer of {}", spec.queue);
        let (amqp, shutdown) = (self.amqp.clone(), self.work_token.clone());
        self.background(name, move |_| async move {
            if let Err(e) = almoner_bus::consumer::run(amqp, spec, handler, shutdown).await {
                tracing::error!(error = %e, "a consumer stopped");
            }
        });
        if !self.rabbitmq_checked {
            self.rabbitmq_checked = true;
            let broker: Arc<OnceCell<Publisher>> = Arc::new(OnceCell::new());
            let (amqp, name) = (self.amqp.clone(), format!("{} readiness", self.name));
            self.check("rabbitmq", move || {
                let (broker, amqp, name) = (broker.clone(), amqp.clone(), name.clone());
                async move {
                    let publisher =
                        broker.get_or_try_init(|| Publisher::connect(&amqp, &name)).await.map_err(|e| e.to_string())?;
                    publisher.ensure_connected().await.map_err(|e| e.to_string())
                }
            });
        }
    }

    /// A background task (a job runner, a periodic clean-up), started now. It gets the token cancelled when
    /// shutdown begins and must return soon after.
    pub fn background<F, Fut>(&mut self, name: impl Into<String>, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(task(self.work_token.clone()));
        self.work.push(Task { name: name.into(), handle });
    }

    /// A dependency `/ready` checks by name (`postgres`, `rabbitmq`, `redis`, `s3`).
    pub fn check<F, Fut>(&mut self, name: &'static str, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.readiness = std::mem::take(&mut self.readiness).check(name, check);
    }

    /// Verifies bearer tokens against identity's JWKS (`auth.jwks_url`), for every route.
    pub fn jwks_verifier(&mut self) -> anyhow::Result<()> {
        let url = self.auth.jwks_url.clone().context("auth.jwks_url must be set: tokens are verified against it")?;
        let verifier = TokenVerifier::from_jwks_url(
            &self.auth.issuer,
            Duration::from_secs(self.auth.leeway_secs),
            Duration::from_secs(self.auth.jwks_cache_secs),
            url,
        );
        self.data(verifier);
        Ok(())
    }

    /// State the routes read as `web::Data<T>`; returns the shared handle.
    pub fn data<T: Send + Sync + 'static>(&mut self, value: T) -> web::Data<T> {
        let data = web::Data::new(value);
        self.app_data(data.clone());
        data
    }

    /// Anything a route extracts from app data as it is (a `web::Data`, an extractor's config).
    pub fn app_data<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.app_data.push(Arc::new(move |config: &mut web::ServiceConfig| {
            config.app_data(value.clone());
        }));
    }

    /// The service's own routes, each registered with its OpenAPI operation (`utoipa-actix-web`), so none is served
    /// undocumented or documented unserved; `base` holds the document's info, tags and security schemes. The
    /// document (served at `/openapi.json`) is built once here; a known path asked with another method answers 405
    /// with `Allow`.
    pub fn endpoints(&mut self, base: utoipa::openapi::OpenApi, endpoints: almoner_http::endpoints::Endpoints) {
        let document = Arc::new(almoner_http::endpoints::openapi(base, endpoints));
        self.openapi = Some(document.as_ref().clone());
        self.routes = Some(Arc::new(move |config: &mut web::ServiceConfig| {
            almoner_http::endpoints::configure(config, endpoints, &document)
        }));
    }

    /// Binds the listener (`server.port` 0 picks a free port) and starts serving.
    pub fn start(self) -> anyhow::Result<Application> {
        let draining = Draining::default();
        let platform = Arc::new(Platform {
            service: self.name,
            version: self.version,
            readiness: self.readiness,
            draining: draining.clone(),
            openapi: self.openapi.unwrap_or_else(|| utoipa::openapi::OpenApiBuilder::new().build()),
            body_limit_bytes: self.server.body_limit_bytes,
        });
        let configure: Vec<Configure> = self.app_data.into_iter().chain(self.routes).collect();
        let listener = TcpListener::bind((self.server.host.as_str(), self.server.port))
            .with_context(|| format!("binding {}:{}", self.server.host, self.server.port))?;
        let port = listener.local_addr()?.port();
        let deadline = Duration::from_secs(self.server.shutdown_deadline_secs);
        let mut server = HttpServer::new(move || {
            configure.iter().fold(almoner_http::app(platform.clone()), |app, configure| {
                let configure = configure.clone();
                app.configure(move |config| configure(config))
            })
        })
        .listen(listener)?
        // The application decides when to stop (see `run_until_stopped`), not actix on its own.
        .disable_signals()
        .shutdown_timeout(deadline.as_secs());
        if self.server.workers > 0 {
            server = server.workers(self.server.workers);
        }
        let server = server.run();
        tracing::info!(port, service = self.name, "listening");
        Ok(Application {
            name: self.name,
            port,
            handle: server.handle(),
            server,
            draining,
            stop: CancellationToken::new(),
            work_token: self.work_token,
            work: self.work,
            last_token: self.last_token,
            last: self.last,
            deadline,
            drain: Duration::from_secs(self.server.shutdown_drain_secs),
        })
    }
}

/// A running service: its HTTP server and background tasks, until it is stopped.
pub struct Application {
    name: &'static str,
    port: u16,
    server: Server,
    handle: ServerHandle,
    draining: Draining,
    stop: CancellationToken,
    work_token: CancellationToken,
    work: Vec<Task>,
    last_token: CancellationToken,
    last: Vec<Task>,
    deadline: Duration,
    drain: Duration,
}

impl Application {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cancelling this token shuts the application down gracefully, as SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Shuts down gracefully on SIGTERM or SIGINT (Ctrl-C). `serve` calls it; tests use the token instead.
    pub fn stop_on_signals(&self) {
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let signal = wait_for_signal().await;
            tracing::info!(signal, "stop requested");
            stop.cancel();
        });
    }

    /// Serves until stopped, then shuts down in stages within the deadline (see the module documentation).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            name,
            server,
            handle,
            draining,
            stop,
            work_token,
            work,
            last_token,
            last,
            deadline,
            drain,
            ..
        } = self;
        let mut server = std::pin::pin!(server);
        let ended_alone = tokio::select! {
            result = &mut server => Some(result),
            () = stop.cancelled() => None,
        };
        let started = Instant::now();
        let ends_at = tokio::time::Instant::now() + deadline;
        draining.begin();
        if let Some(result) = ended_alone {
            // The server failed by itself: stop everything else as for a shutdown, and report why.
            work_token.cancel();
            join(work, ends_at).await;
            last_token.cancel();
            join(last, ends_at).await;
            return result.context("the HTTP server stopped");
        }
        tracing::info!(service = name, deadline_secs = deadline.as_secs(), "shutting down");
        if !drain.is_zero() {
            // Still serving, while /ready says 503, so that routing stops before the listener closes.
            tokio::time::sleep_until(tokio::time::Instant::now() + drain).await;
        }
        work_token.cancel();
        let requests = async {
            let stopping = handle.stop(true);
            match tokio::time::timeout_at(ends_at, async { tokio::join!(stopping, &mut server).1 }).await {
                Ok(result) => result.context("the HTTP server failed while stopping"),
                Err(_) => {
                    tracing::warn!("requests still running at the shutdown deadline were abandoned");
                    Ok(())
                }
            }
        };
        let (result, ()) = tokio::join!(requests, join(work, ends_at));
        last_token.cancel();
        join(last, ends_at).await;
        tracing::info!(service = name, elapsed_ms = started.elapsed().as_millis() as u64, "stopped");
        result
    }
}

/// Waits for each task until `ends_at`; those still running then are aborted, named in the log.
async fn join(tasks: Vec<Task>, ends_at: tokio::time::Instant) {
    futures::future::join_all(tasks.into_iter().map(|task| async move {
        let abort = task.handle.abort_handle();
        match tokio::time::timeout_at(ends_at, task.handle).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_panic() => tracing::error!(task = %task.name, "a background task panicked"),
            Ok(Err(_)) => {}
            Err(_) => {
                tracing::warn!(task = %task.name, "still running at the shutdown deadline; abandoned");
                abort.abort();
            }
        }
    }))
    .await;
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
