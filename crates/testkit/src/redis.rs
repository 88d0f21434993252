//! Redis for tests: the shared server from `ALMONER_TEST_REDIS_URL`; tests isolate themselves by key prefix.

use almoner_config::RedisSettings;

pub fn redis_settings() -> RedisSettings {
    RedisSettings { url: crate::required_env("ALMONER_TEST_REDIS_URL").into() }
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("test:{}", uuid::Uuid::new_v4().simple())
}
