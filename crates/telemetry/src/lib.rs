//! Logs and traces for every Almoner process.
//!
//! One call, [`init`], installs: JSON logs (one object per line, with the fields of every enclosing span, so the
//! request id and trace id of the request or message being handled appear on each line); an OpenTelemetry tracer
//! that exports spans over OTLP/HTTP when an endpoint is configured; and the W3C trace-context propagator used to
//! carry a trace across HTTP and AMQP. This crate owns process-wide telemetry state and nothing else.

use almoner_config::{LogFormat, TelemetrySettings};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Keeps the tracer alive; dropping it flushes and shuts down span export.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.force_flush();
        let _ = self.provider.shutdown();
    }
}

/// Builds the tracer provider: OTLP/HTTP export when an endpoint is set, otherwise spans still get real ids
/// (so trace ids appear in logs and propagate) but go nowhere.
pub fn tracer_provider(service: &str, settings: &TelemetrySettings) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_owned())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(settings.sample_ratio)));
    let mut builder = SdkTracerProvider::builder().with_resource(resource).with_sampler(sampler);
    if let Some(endpoint) = &settings.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// The tracing layers every process uses, exposed so tests can install the same stack.
pub fn otel_layer<S>(provider: &SdkTracerProvider, service: &str) -> impl Layer<S> + use<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(service.to_owned()))
}

/// Installs logs, tracing and propagation for the process. Call once, first thing in `main`.
pub fn init(service: &'static str, settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(service, settings)?;
    opentelemetry::global::set_tracer_provider(provider.clone());
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|e| anyhow::anyhow!("telemetry.log_level {:?} is not a valid filter: {e}", settings.log_level))?;
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .with_target(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
    };
    Registry::default()
        .with(filter)
        .with(fmt)
        .with(otel_layer(&provider, service))
        .try_init()
        .map_err(|e| anyhow::anyhow!("telemetry already initialised: {e}"))?;
    Ok(TelemetryGuard { provider })
}

/// The current span's trace id as 32 hex digits, when there is a valid one.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = tracing::Span::current().context();
    let span_context = cx.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Adds `traceparent`/`tracestate` for the current span to an outgoing HTTP request's headers.
pub fn inject_http(headers: &mut reqwest::header::HeaderMap) {
    struct HeaderInjector<'a>(&'a mut reqwest::header::HeaderMap);
    impl Injector for HeaderInjector<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(key.as_bytes()),
                reqwest::header::HeaderValue::from_str(&value),
            ) {
                self.0.insert(name, value);
            }
        }
    }
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// Makes `span` a child of the trace described by a W3C `traceparent` string (e.g. from a stored event).
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    struct One<'a>(&'a str);
    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == "traceparent").then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec!["traceparent"]
        }
    }
    let cx = TraceContextPropagator::new().extract(&One(traceparent));
    let _ = span.set_parent(cx);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_through_a_span() {
        let provider = tracer_provider("test", &TelemetrySettings::default()).unwrap();
        let subscriber = Registry::default().with(otel_layer(&provider, "test"));
        tracing::subscriber::with_default(subscriber, || {
            let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
            let span = tracing::info_span!("handle");
            set_parent_from_traceparent(&span, incoming);
            let _entered = span.enter();
            assert_eq!(current_trace_id().as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
            let mut headers = reqwest::header::HeaderMap::new();
            inject_http(&mut headers);
            let out = headers.get("traceparent").unwrap().to_str().unwrap();
            assert!(out.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{out}");
            assert!(!out.contains("00f067aa0ba902b7"), "a child span has its own id: {out}");
        });
    }

    #[test]
    fn no_span_means_no_traceparent() {
        let mut headers = reqwest::header::HeaderMap::new();
        inject_http(&mut headers);
        assert!(headers.get("traceparent").is_none());
        assert_eq!(current_trace_id(), None);
    }
}
