//! The test process's telemetry: the same W3C propagator and OpenTelemetry layer as a service, so trace ids are
//! real and cross HTTP and AMQP inside tests. Logs are printed only with `TEST_LOG=1`.

use std::sync::Once;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

static INIT: Once = Once::new();

/// Installs the global subscriber once per test binary.
pub fn init() {
    INIT.call_once(|| {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
        let settings = almoner_config::TelemetrySettings::default();
        let provider = almoner_telemetry::tracer_provider("test", &settings).expect("tracer provider");
        let fmt = std::env::var_os("TEST_LOG").map(|_| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        });
        let _ =
            tracing_subscriber::registry().with(fmt).with(almoner_telemetry::otel_layer(&provider, "test")).try_init();
        // Keep the provider alive for the whole test binary.
        std::mem::forget(provider);
    });
}
