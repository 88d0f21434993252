//! Per-endpoint rate limits on Redis: a fixed window per endpoint, one round trip per delivery. Not
//! `almoner_http::rate_limit`, which counts failures and checks separately (two round trips, and its refusal
//! speaks of failed attempts); the same fail-open rule holds: with Redis away, deliveries are accepted and a
//! warning logged, because refusing a provider's payments for want of a counter is worse than not counting.

use almoner_config::RedisSettings;
use almoner_http::{ApiError, ErrorCode};
use deadpool_redis::redis;
use secrecy::ExposeSecret;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone)]
pub struct EndpointRateLimiter {
    pool: deadpool_redis::Pool,
    prefix: String,
    max: u64,
    window: Duration,
}

impl EndpointRateLimiter {
    pub fn new(settings: &RedisSettings, prefix: &str, max: u64, window: Duration) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(settings.url.expose_secret())
            .builder()?
            .max_size(32)
            .wait_timeout(Some(Duration::from_millis(200)))
            .create_timeout(Some(Duration::from_millis(500)))
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()?;
        Ok(Self { pool, prefix: prefix.to_owned(), max, window })
    }

    /// For `/ready`.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Counts a delivery to `endpoint_id`; `429 rate_limited` with `Retry-After` once its window is full.
    pub async fn hit(&self, endpoint_id: Uuid) -> Result<(), ApiError> {
        let key = format!("{}:rl:endpoint:{endpoint_id}", self.prefix);
        let window = self.window.as_secs().max(1);
        let result: anyhow::Result<(u64, i64)> = async {
            let mut conn = self.pool.get().await?;
            let (count, ttl): (u64, i64) = redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(0)
                .arg("EX")
                .arg(window)
                .arg("NX")
                .ignore()
                .cmd("INCR")
                .arg(&key)
                .cmd("TTL")
                .arg(&key)
                .query_async(&mut conn)
                .await?;
            Ok((count, ttl))
        }
        .await;
        match result {
            Ok((count, ttl)) if count > self.max => {
                let retry_after = if ttl > 0 { ttl } else { i64::try_from(window).unwrap_or(1) };
                Err(ApiError::new(ErrorCode::RateLimited, "this endpoint received too many deliveries; retry later")
                    .with_header("retry-after", retry_after.to_string()))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; not limiting");
                Ok(())
            }
        }
    }
}
