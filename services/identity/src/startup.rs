//! What the identity service has: its schema, outbox relay, signing keys (refreshed from the database), a token
//! verifier that reads those keys directly, the optional Redis rate limiter, the mail relay for sign-in links and
//! reply mails, the chat widget's member tokens and secret sealer, the reply mail consumer and its routes. How a
//! service is built and stopped is `almoner_service`'s.

use crate::configuration::Settings;
use crate::db::{MIGRATIONS, SCHEMA};
use crate::mailer::Mailer;
use crate::openapi::ApiDoc;
use crate::routes::oauth::TokenPolicy;
use crate::routes::sign_in::LinkLimits;
use crate::sign_in::SignIn;
use crate::signing::SigningKeys;
use crate::widget::MemberTokens;
use crate::worker::reply_mail::{self, ReplyMailHandler};
use almoner_http::TokenVerifier;
use almoner_http::rate_limit::{Limit, RateLimiter};
use almoner_service::{Application, ServiceBuilder};
use anyhow::Context;
use std::time::Duration;
use utoipa::OpenApi;

/// Builds and starts identity (migrating first unless disabled).
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let mut service = ServiceBuilder::new("identity", env!("CARGO_PKG_VERSION"), &settings);
    let pool = service.postgres(SCHEMA, MIGRATIONS).await?;
    service.outbox_relay(&pool);

    let refresh = Duration::from_secs(settings.tokens.signing_key_refresh_secs);
    // A retired key stays published until the longest-lived token it signed has expired.
    let longest_ttl = settings.tokens.ttl_secs.max(settings.widget.token_ttl_secs);
    let keys = SigningKeys::load(pool.clone(), Duration::from_secs(longest_ttl))
        .await
        .context("loading token signing keys")?;
    service.background("signing key refresh", {
        let keys = keys.clone();
        move |shutdown| keys.refresh_until(refresh, shutdown)
    });
    // identity verifies its own tokens (API key management needs them) from the keys it holds, not over HTTP.
    let verifier = {
        let keys = keys.clone();
        TokenVerifier::with_loader(
            &settings.auth.issuer,
            Duration::from_secs(settings.auth.leeway_secs),
            refresh,
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
    service.data(verifier);

    if let Some(redis) = &settings.redis {
        let limiter = RateLimiter::new(redis, &settings.tokens.rate_limit_prefix).context("redis settings")?;
        let checked = limiter.clone();
        service.check("redis", move || {
            let limiter = checked.clone();
            async move { limiter.ping().await }
        });
        service.data(limiter);
    }
    let window = Duration::from_secs(settings.tokens.failure_window_secs);
    service.data(TokenPolicy {
        issuer: settings.auth.issuer.clone(),
        ttl_secs: settings.tokens.ttl_secs,
        failures_per_key: Limit { max: settings.tokens.max_failures_per_key, window },
        failures_per_ip: Limit { max: settings.tokens.max_failures_per_ip, window },
    });
    let mailer = match &settings.mail {
        Some(mail) => Some(Mailer::new(mail).context("mail settings")?),
        None => {
            tracing::warn!(
                "no mail relay is configured (mail.*): sign-in links can only be printed by `identity sign-in-link`"
            );
            None
        }
    };
    let link_window = Duration::from_secs(settings.sign_in.link_window_secs);
    service.data(LinkLimits {
        per_address: Limit { max: settings.sign_in.max_links_per_address, window: link_window },
        per_ip: Limit { max: settings.sign_in.max_links_per_ip, window: link_window },
    });
    let sealer = match &settings.widget.secrets_key {
        Some(key) => Some(almoner_secret_box::SecretBox::from_base64(key).context("widget.secrets_key")?),
        None => {
            tracing::warn!(
                "widget.secrets_key is not set: no chat widget secret can be made or checked, so only anonymous \
                 visitors of widgets that do not require identity get tokens"
            );
            None
        }
    };
    service.data(MemberTokens {
        keys: keys.clone(),
        sealer,
        issuer: settings.auth.issuer.clone(),
        ttl_secs: settings.widget.token_ttl_secs,
        failures_per_client: Limit {
            max: settings.widget.max_failures_per_client,
            window: Duration::from_secs(settings.widget.failure_window_secs),
        },
    });
    service.consumer(reply_mail::spec(), ReplyMailHandler::new(pool.clone(), mailer.clone())).await;
    service.data(SignIn {
        pool: pool.clone(),
        keys: keys.clone(),
        mailer,
        settings: settings.sign_in.clone(),
        issuer: settings.auth.issuer.clone(),
        access_ttl_secs: settings.tokens.ttl_secs,
    });
    service.data(keys);
    service.data(pool);
    service.endpoints(ApiDoc::openapi(), crate::routes::configure);
    service.start()
}
