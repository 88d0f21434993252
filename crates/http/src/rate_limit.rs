//! Fixed-window counters in Redis, for refusing abuse (e.g. guessing API keys) with `429 rate_limited`.
//!
//! Limiting fails open: when Redis is unreachable requests are served and a warning is logged, because refusing
//! every client for want of a counter is worse than briefly not counting. `/ready` still reports Redis.

use crate::problem::{ApiError, ErrorCode};
use almoner_config::RedisSettings;
use deadpool_redis::redis;
use secrecy::ExposeSecret;
use std::time::Duration;

/// Counters under one key prefix (per service, or per test).
#[derive(Clone)]
pub struct RateLimiter {
    pool: deadpool_redis::Pool,
    prefix: String,
}

/// How many events a window allows.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl RateLimiter {
    pub fn new(settings: &RedisSettings, prefix: &str) -> anyhow::Result<Self> {
        let pool = deadpool_redis::Config::from_url(settings.url.expose_secret())
            .builder()?
            .max_size(16)
            .wait_timeout(Some(Duration::from_millis(500)))
            .create_timeout(Some(Duration::from_millis(500)))
            .runtime(deadpool_redis::Runtime::Tokio1)
            .build()?;
        Ok(Self { pool, prefix: prefix.to_owned() })
    }

    fn key(&self, name: &str) -> String {
        format!("{}:rl:{name}", self.prefix)
    }

    /// For `/ready`.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        redis::cmd("PING").query_async::<String>(&mut conn).await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Counts one event against each key, each in its own window starting at its first event.
    pub async fn hit(&self, keys: &[(&str, Limit)]) {
        let result: anyhow::Result<()> = async {
            let mut conn = self.pool.get().await?;
            let mut pipe = redis::pipe();
            for (name, limit) in keys {
                let key = self.key(name);
                pipe.cmd("SET").arg(&key).arg(0).arg("EX").arg(limit.window.as_secs().max(1)).arg("NX").ignore();
                pipe.cmd("INCR").arg(&key).ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
            Ok(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "rate limiter unavailable; not counting");
        }
    }

    /// Refuses with `429 rate_limited` (and `Retry-After`) when any key is at its limit.
    pub async fn check(&self, keys: &[(&str, Limit)]) -> Result<(), ApiError> {
        let result: anyhow::Result<Vec<(Option<u64>, i64)>> = async {
            let mut conn = self.pool.get().await?;
            let mut pipe = redis::pipe();
            for (name, _) in keys {
                let key = self.key(name);
                pipe.cmd("GET").arg(&key);
                pipe.cmd("TTL").arg(&key);
            }
            let values: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
            Ok(values
                .chunks(2)
                .map(|pair| {
                    let count = redis::from_redis_value::<Option<u64>>(pair[0].clone()).unwrap_or(None);
                    let ttl = redis::from_redis_value::<i64>(pair[1].clone()).unwrap_or(-1);
                    (count, ttl)
                })
                .collect())
        }
        .await;
        let counts = match result {
            Ok(counts) => counts,
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; not limiting");
                return Ok(());
            }
        };
        for ((name, limit), (count, ttl)) in keys.iter().zip(counts) {
            if count.unwrap_or(0) >= limit.max {
                tracing::info!(key = %name, "rate limited");
                let retry_after = if ttl > 0 { ttl } else { i64::try_from(limit.window.as_secs()).unwrap_or(60) };
                return Err(ApiError::new(ErrorCode::RateLimited, "too many failed attempts; retry later")
                    .with_header("retry-after", retry_after.to_string()));
            }
        }
        Ok(())
    }
}
