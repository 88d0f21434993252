//! Builds and runs the identity application: HTTP server, outbox relay and signing-key refresh.

use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::signing::SigningKeys;
use actix_web::dev::Server;
use actix_web::{HttpServer, web};
use almoner_db::Pool;
use almoner_db::relay::RelayLink;
use almoner_http::rate_limit::{Limit, RateLimiter};
use almoner_http::{Platform, Readiness, TokenVerifier};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the token endpoint stamps into every token.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub issuer: String,
    pub ttl_secs: u64,
    /// Failed token requests tolerated per API key, and per client address, before `429`.
    pub failures_per_key: Limit,
    pub failures_per_ip: Limit,
}

/// A running identity: its HTTP server and background tasks.
pub struct Application {
    port: u16,
    server: Server,
    shutdown: CancellationToken,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    /// Migrates (unless disabled), loads keys, binds the listener and starts background work.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.database.run_migrations {
            almoner_db::migrate(&settings.database, SCHEMA, MIGRATIONS).await.context("migrating the database")?;
        }
        let pool = Pool::new(&settings.database, SCHEMA).context("creating the database pool")?;
        let ttl = Duration::from_secs(settings.tokens.ttl_secs);
        let keys = SigningKeys::load(pool.clone(), ttl).await.context("loading token signing keys")?;
        let shutdown = CancellationToken::new();
        let mut background = Vec::new();

        // The broker may be down at start: the service still serves (and says it is not ready) while the relay
        // connects in the background; events wait in the outbox meanwhile.
        let link = RelayLink::default();
        background.push(tokio::spawn(link.clone().run_relay(
            settings.amqp.clone(),
            pool.clone(),
            "identity outbox relay".to_owned(),
            shutdown.clone(),
        )));
        background.push(tokio::spawn(
            keys.clone().refresh_until(Duration::from_secs(settings.tokens.signing_key_refresh_secs), shutdown.clone()),
        ));

        let verifier = {
            let keys = keys.clone();
            TokenVerifier::with_loader(
                &settings.auth.issuer,
                Duration::from_secs(settings.auth.leeway_secs),
                Duration::from_secs(settings.tokens.signing_key_refresh_secs),
                move || {
                    let keys = keys.clone();
                    Box::pin(async move {
                        keys.reload().await?;
                        Ok(keys.jwks())
                    })
                },
            )
        };
        verifier.replace_keys(&keys.jwks());

        let limiter = match &settings.redis {
            Some(redis) => Some(RateLimiter::new(redis, &settings.tokens.rate_limit_prefix).context("redis settings")?),
            None => None,
        };
        let readiness = {
            let pool = pool.clone();
            let link = link.clone();
            let mut readiness = Readiness::new()
                .check("postgres", move || {
                    let pool = pool.clone();
                    async move { pool.ping().await.map_err(|e| e.to_string()) }
                })
                .check("rabbitmq", move || {
                    let link = link.clone();
                    async move { link.check().await }
                });
            if let Some(limiter) = limiter.clone() {
                readiness = readiness.check("redis", move || {
                    let limiter = limiter.clone();
                    async move { limiter.ping().await }
                });
            }
            readiness
        };
        let platform = Arc::new(Platform {
            service: "identity",
            version: env!("CARGO_PKG_VERSION"),
            readiness,
            openapi: crate::openapi::document(),
            body_limit_bytes: settings.server.body_limit_bytes,
        });
        let window = Duration::from_secs(settings.tokens.failure_window_secs);
        let policy = web::Data::new(TokenPolicy {
            issuer: settings.auth.issuer.clone(),
            ttl_secs: settings.tokens.ttl_secs,
            failures_per_key: Limit { max: settings.tokens.max_failures_per_key, window },
            failures_per_ip: Limit { max: settings.tokens.max_failures_per_ip, window },
        });
        let limiter = limiter.map(web::Data::new);
        let pool = web::Data::new(pool);
        let keys = web::Data::new(keys);
        let verifier = web::Data::new(verifier);

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| format!("binding {}:{}", settings.server.host, settings.server.port))?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            let app = almoner_http::app(platform.clone());
            let app = match &limiter {
                Some(limiter) => app.app_data(limiter.clone()),
                None => app,
            };
            app.app_data(pool.clone())
                .app_data(keys.clone())
                .app_data(verifier.clone())
                .app_data(policy.clone())
                .configure(|cfg| almoner_http::endpoints::configure(cfg, crate::routes::configure))
        })
        .listen(listener)?
        .shutdown_timeout(10);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        tracing::info!(port, "identity listening");
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
