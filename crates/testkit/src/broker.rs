//! The test broker: RabbitMQ at `ALMONER_TEST_AMQP_URL`, shared by every test through a unique namespace each.
//!
//! A namespace prefixes every exchange and queue name (`t1a2b3c4d.almoner.events`), so tests run in parallel
//! against one broker without seeing each other's messages. Tests delete what they declared with
//! `almoner_bus::topology::{delete_consumer, delete_exchanges}` (quorum queues are not auto-deleted).

use almoner_config::AmqpSettings;
use secrecy::{ExposeSecret, SecretString};
use std::net::{SocketAddr, ToSocketAddrs};

const URL_VAR: &str = "ALMONER_TEST_AMQP_URL";

/// Settings for the test broker with a fresh namespace (`t` + 12 hex digits) and a prefetch of 16.
///
/// Panics when `ALMONER_TEST_AMQP_URL` is unset: these tests need the broker `scripts/test` provides.
pub fn amqp_settings() -> AmqpSettings {
    let url = crate::required_env(URL_VAR);
    let id = uuid::Uuid::new_v4().simple().to_string();
    AmqpSettings { url: SecretString::from(url), namespace: format!("t{}", &id[..12]), prefetch: 16 }
}

/// The broker's socket address, e.g. to put a [`crate::proxy::TcpProxy`] in front of it.
pub fn broker_addr(settings: &AmqpSettings) -> SocketAddr {
    let (_, host_port, _) = split(settings.url.expose_secret());
    let default_port = if settings.url.expose_secret().starts_with("amqps://") { 5671 } else { 5672 };
    let target = if has_port(host_port) { host_port.to_owned() } else { format!("{host_port}:{default_port}") };
    target
        .to_socket_addrs()
        .unwrap_or_else(|e| panic!("cannot resolve the broker address {target}: {e}"))
        .next()
        .unwrap_or_else(|| panic!("the broker address {target} resolves to nothing"))
}

/// The same settings (credentials, vhost, namespace) reaching the broker through `addr` instead.
pub fn through(settings: &AmqpSettings, addr: SocketAddr) -> AmqpSettings {
    let (prefix, _, rest) = split(settings.url.expose_secret());
    AmqpSettings { url: SecretString::from(format!("{prefix}{addr}{rest}")), ..settings.clone() }
}

/// `amqp://user:pass@host:port/vhost?q` -> (`amqp://user:pass@`, `host:port`, `/vhost?q`).
fn split(url: &str) -> (&str, &str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..].find(['/', '?']).map_or(url.len(), |i| after_scheme + i);
    let host_start = url[after_scheme..authority_end].rfind('@').map_or(after_scheme, |i| after_scheme + i + 1);
    (&url[..host_start], &url[host_start..authority_end], &url[authority_end..])
}

fn has_port(host_port: &str) -> bool {
    match host_port.rfind(':') {
        Some(i) => !host_port[i..].contains(']'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> AmqpSettings {
        AmqpSettings { url: SecretString::from(url.to_owned()), namespace: "t1".into(), prefetch: 1 }
    }

    #[test]
    fn rewrites_only_the_address() {
        let s = settings("amqp://guest:guest@127.0.0.1:5672/%2f");
        assert_eq!(broker_addr(&s), "127.0.0.1:5672".parse().unwrap());
        let proxied = through(&s, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(proxied.url.expose_secret(), "amqp://guest:guest@127.0.0.1:40000/%2f");
        assert_eq!(proxied.namespace, "t1");
        assert_eq!(broker_addr(&settings("amqp://127.0.0.1")), "127.0.0.1:5672".parse().unwrap());
        assert_eq!(broker_addr(&settings("amqp://[::1]:5673/v")), "[::1]:5673".parse().unwrap());
    }
}
