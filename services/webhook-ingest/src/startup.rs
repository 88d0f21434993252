//! What webhook-ingest has: its schema and outbox relay, the Redis rate limiter, the sealed-secret box, a token
//! verifier for the admin API, the outbox gauges and its routes. How a service is built and stopped is
//! `almoner_service`'s.

use crate::configuration::{PayPalCheck, Settings, WebhookSettings};
use crate::db::{MIGRATIONS, SCHEMA};
use crate::openapi::ApiDoc;
use crate::rate_limit::EndpointRateLimiter;
use crate::receive::Receiver;
use almoner_secret_box::SecretBox;
use almoner_service::{Application, ServiceBuilder};
use anyhow::Context;
use std::time::Duration;
use utoipa::OpenApi;

/// How often the publish backlog and dead-letter gauges are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

/// Builds and starts webhook-ingest (migrating first unless disabled).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let mut service = ServiceBuilder::new("webhook-ingest", env!("CARGO_PKG_VERSION"), &settings);
    let pool = service.postgres(SCHEMA, MIGRATIONS).await?;
    service.outbox_relay(&pool);

    let w = &settings.webhooks;
    let limiter = EndpointRateLimiter::new(
        &settings.redis,
        &w.rate_limit_prefix,
        w.rate_limit_per_endpoint,
        Duration::from_secs(w.rate_limit_window_secs),
    )
    .context("redis settings")?;
    let checked = limiter.clone();
    service.check("redis", move || {
        let limiter = checked.clone();
        async move { limiter.ping().await }
    });
    service.data(limiter);

    let secret_box = SecretBox::from_base64(&w.secrets_key).context("webhooks.secrets_key")?;
    let verify = almoner_webhook_verify::Settings { tolerance: Duration::from_secs(w.signature_tolerance_secs) };
    service.data(Receiver::new(
        pool.clone(),
        secret_box,
        verify,
        &w.public_base_url,
        w.body_limit_bytes,
        paypal_verifier(w)?,
        crate::receive::StoreSettings { writers: w.store_writers, max_batch: w.store_max_batch },
    ));

    crate::metrics::metrics();
    service.background("outbox gauges", {
        let pool = pool.clone();
        move |shutdown| async move {
            loop {
                if let Err(e) = crate::metrics::refresh_outbox_gauges(&pool).await {
                    tracing::debug!(error = %e, "could not refresh the outbox gauges");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(GAUGE_INTERVAL) => {}
                }
            }
        }
    });

    service.jwks_verifier()?;
    service.data(pool);
    service.endpoints(ApiDoc::openapi(), crate::routes::configure);
    service.start()
}

/// PayPal's verifier as configured: by the verify endpoint, or offline against PayPal's certificate.
fn paypal_verifier(w: &WebhookSettings) -> anyhow::Result<almoner_webhook_verify::paypal::Verifier> {
    use almoner_webhook_verify::paypal::certificate::{CertUrls, CertificateCheck};
    let verifier = almoner_webhook_verify::paypal::Verifier::new(&w.paypal_base_url);
    if w.paypal_check == PayPalCheck::VerifyEndpoint {
        return Ok(verifier);
    }
    let roots = match &w.paypal_trust_roots {
        Some(path) => CertificateCheck::roots_from_pem_file(path).context("webhooks.paypal_trust_roots")?,
        None => CertificateCheck::system_roots().context("webhooks.paypal_check = certificate")?,
    };
    let urls = if w.paypal_cert_url_prefixes.is_empty() {
        CertUrls::PayPal
    } else {
        CertUrls::Prefixes(w.paypal_cert_url_prefixes.clone())
    };
    tracing::info!(roots = roots.len(), "PayPal deliveries are checked against PayPal's signing certificate");
    Ok(verifier.with_certificate_check(CertificateCheck::new(&roots, urls)))
}
