//! Builds and runs the fundraising application: HTTP server and outbox relay.

use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::intake::GiftIntake;
use crate::openapi::ApiDoc;
use actix_web::dev::Server;
use actix_web::{HttpServer, web};
use almoner_db::Pool;
use almoner_db::relay::RelayLink;
use almoner_http::{Platform, Readiness, TokenVerifier};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

/// A running fundraising service: its HTTP server and background tasks.
pub struct Application {
    port: u16,
    server: Server,
    shutdown: CancellationToken,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Migrates (unless disabled), binds the listener and starts the outbox relay.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.database.run_migrations {
            almoner_db::migrate(&settings.database, SCHEMA, MIGRATIONS).await.context("migrating the database")?;
        }
        let pool = Pool::new(&settings.database, SCHEMA).context("creating the database pool")?;
        let shutdown = CancellationToken::new();

        // The broker may be down at start: the service still serves (and says it is not ready) while the relay
        // connects in the background; events wait in the outbox meanwhile.
        let link = RelayLink::default();
        let mut background = vec![tokio::spawn(link.clone().run_relay(
            settings.amqp.clone(),
            pool.clone(),
            "fundraising outbox relay".to_owned(),
            shutdown.clone(),
        ))];
        // Commits imports in the background, resuming any a stopped replica left unfinished.
        let runner = crate::importer::ImportRunner::default();
        background.push(tokio::spawn(runner.clone().run(pool.clone(), shutdown.clone())));

        let jwks_url = settings.auth.jwks_url.clone().context("auth.jwks_url must be set")?;
        let verifier = TokenVerifier::from_jwks_url(
            &settings.auth.issuer,
            Duration::from_secs(settings.auth.leeway_secs),
            Duration::from_secs(settings.auth.jwks_cache_secs),
            jwks_url,
        );
        let readiness = {
            let pool = pool.clone();
            let link = link.clone();
            Readiness::new()
                .check("postgres", move || {
                    let pool = pool.clone();
                    async move { pool.ping().await.map_err(|e| e.to_string()) }
                })
                .check("rabbitmq", move || {
                    let link = link.clone();
                    async move { link.check().await }
                })
        };
        let platform = Arc::new(Platform {
            service: "fundraising",
            version: env!("CARGO_PKG_VERSION"),
            readiness,
            openapi: ApiDoc::openapi(),
            body_limit_bytes: settings.server.body_limit_bytes,
        });
        let runner = web::Data::new(runner);
        let intake =
            web::Data::new(GiftIntake::start(pool.clone(), settings.intake.writers, settings.intake.max_batch));
        let pool = web::Data::new(pool);
        let verifier = web::Data::new(verifier);

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| format!("binding {}:{}", settings.server.host, settings.server.port))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            almoner_http::app(platform.clone())
                .app_data(pool.clone())
                .app_data(intake.clone())
                .app_data(runner.clone())
                .app_data(verifier.clone())
                .configure(crate::routes::configure)
        })
        .listen(listener)?
        .shutdown_timeout(10);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(port, "fundraising listening");
        Ok(Self { port, server: server.run(), shutdown, background })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the background tasks (the server stops on SIGTERM/SIGINT by itself).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the server stops (SIGTERM or SIGINT), then stops background tasks.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        self.shutdown.cancel();
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        result.context("HTTP server failed")
    }
}
