//! Builds and runs the rollup application: HTTP server and the projection consumer.

use crate::clock::Clock;
use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::worker::batch::BatchingHandler;
use crate::worker::projection_spec;
use actix_web::dev::Server;
use actix_web::{HttpServer, web};
use almoner_bus::Publisher;
use almoner_db::Pool;
use almoner_http::{Platform, Readiness, TokenVerifier};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

/// A running rollup: its HTTP server and the projection consumer.
pub struct Application {
    port: u16,
    server: Server,
    shutdown: CancellationToken,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Migrates (unless disabled), declares the projection's queue, starts consuming and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::System).await
    }

    /// [`build`](Self::build) with "today" given by `clock` (tests pin it).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        if settings.database.run_migrations {
            almoner_db::migrate(&settings.database, SCHEMA, MIGRATIONS).await.context("migrating the database")?;
        }
        let pool = Pool::new(&settings.database, SCHEMA).context("creating the database pool")?;
        let shutdown = CancellationToken::new();
        let mut background = Vec::new();

        // Declare the queue and its bindings before anything else, so events published from now on are kept for
        // the consumer even while it is still connecting. If the broker is down, the consumer declares them itself
        // once it gets through.
        let mut spec = projection_spec();
        // Every delivery held at once can join one batch.
        spec.prefetch = u16::try_from(settings.projection.max_batch).unwrap_or(u16::MAX);
        match tokio::time::timeout(
            Duration::from_secs(10),
            almoner_bus::topology::declare_consumer(&settings.amqp, &spec),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot declare the projection queue yet; the consumer will"),
            Err(_) => tracing::warn!("declaring the projection queue timed out; the consumer will"),
        }
        {
            let (amqp, handler, shutdown) = (
                settings.amqp.clone(),
                BatchingHandler::start(pool.clone(), settings.projection.workers, settings.projection.max_batch),
                shutdown.clone(),
            );
            background.push(tokio::spawn(async move {
                if let Err(e) = almoner_bus::consumer::run(amqp, spec, handler, shutdown).await {
                    tracing::error!(error = %e, "the projection consumer stopped");
                }
            }));
        }

        // rollup runs no outbox relay (which purges platform rows elsewhere), so it purges its own handled event ids:
        // kept 30 days, far longer than any redelivery can be late.
        {
            let (pool, shutdown) = (pool.clone(), shutdown.clone());
            background.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    }
                    let retention = Duration::from_secs(30 * 24 * 3600);
                    if let Err(e) = almoner_db::cleanup::purge(&pool, retention, Some(retention)).await {
                        tracing::warn!(error = %e, "could not purge old handled event ids");
                    }
                }
            }));
        }

        let readiness = {
            let pool = pool.clone();
            let broker: Arc<OnceCell<Publisher>> = Arc::new(OnceCell::new());
            let amqp = settings.amqp.clone();
            Readiness::new()
                .check("postgres", move || {
                    let pool = pool.clone();
                    async move { pool.ping().await.map_err(|e| e.to_string()) }
                })
                .check("rabbitmq", move || {
                    let (broker, amqp) = (broker.clone(), amqp.clone());
                    async move {
                        let publisher = broker
                            .get_or_try_init(|| Publisher::connect(&amqp, "rollup readiness"))
                            .await
                            .map_err(|e| e.to_string())?;
                        publisher.ensure_connected().await.map_err(|e| e.to_string())
                    }
                })
        };
        let platform = Arc::new(Platform {
            service: "rollup",
            version: env!("CARGO_PKG_VERSION"),
            readiness,
            openapi: crate::openapi::document(),
            body_limit_bytes: settings.server.body_limit_bytes,
        });
        let jwks_url = settings.auth.jwks_url.clone().context("auth.jwks_url is required")?;
        let verifier = web::Data::new(TokenVerifier::from_jwks_url(
            &settings.auth.issuer,
            Duration::from_secs(settings.auth.leeway_secs),
            Duration::from_secs(settings.auth.jwks_cache_secs),
            jwks_url,
        ));
        let pool = web::Data::new(pool);
        let clock = web::Data::new(clock);

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| format!("binding {}:{}", settings.server.host, settings.server.port))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            almoner_http::app(platform.clone())
                .app_data(pool.clone())
                .app_data(verifier.clone())
                .app_data(clock.clone())
                .configure(|cfg| almoner_http::endpoints::configure(cfg, crate::routes::configure))
        })
        .listen(listener)?
        .shutdown_timeout(10);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(port, "rollup listening");
        Ok(Self { port, server: server.run(), shutdown, background })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the consumer (the server stops on SIGTERM/SIGINT by itself).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the server stops (SIGTERM or SIGINT), then stops the consumer, letting handlers in flight
    /// finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        result.context("HTTP server failed")
    }
}
