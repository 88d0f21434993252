//! Prometheus counters, registered once in `prometheus::default_registry()` (served by `almoner-http` at /metrics).

use prometheus::{IntCounter, IntCounterVec, Opts};
use std::sync::LazyLock;

pub(crate) struct BusMetrics {
    /// Messages the broker confirmed.
    pub published: IntCounter,
    /// Messages whose publish failed (connection lost, nack, timeout) and must be retried by the caller.
    pub publish_failures: IntCounter,
    /// Deliveries handled, by queue and outcome (`ack`, `retry`, `reject`, `dead_letter`, `error`).
    pub consumed: IntCounterVec,
    /// Messages a consumer moved to its dead-letter queue, by queue.
    pub dead_lettered: IntCounterVec,
}

pub(crate) static METRICS: LazyLock<BusMetrics> = LazyLock::new(|| BusMetrics {
    published: register(IntCounter::with_opts(Opts::new(
        "almoner_bus_published_total",
        "Messages published and confirmed by the broker",
    ))),
    publish_failures: register(IntCounter::with_opts(Opts::new(
        "almoner_bus_publish_failures_total",
        "Messages whose publish failed (connection lost, nack or timeout)",
    ))),
    consumed: register(IntCounterVec::new(
        Opts::new("almoner_bus_consumed_total", "Deliveries handled, by queue and outcome"),
        &["queue", "outcome"],
    )),
    dead_lettered: register(IntCounterVec::new(
        Opts::new("almoner_bus_dead_lettered_total", "Messages moved to a dead-letter queue, by queue"),
        &["queue"],
    )),
});

/// Registers `collector` in the default registry. A failure (a name clash) leaves the counter working but unexported,
/// which must not take the service down.
fn register<C: prometheus::core::Collector + Clone + 'static>(collector: prometheus::Result<C>) -> C {
    let collector = collector.expect("metric definitions are valid");
    if let Err(e) = prometheus::default_registry().register(Box::new(collector.clone())) {
        tracing::warn!(error = %e, "bus metric not registered");
    }
    collector
}
