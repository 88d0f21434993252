//! W3C trace context in AMQP headers.
//!
//! A trace crosses the broker in the `traceparent` / `tracestate` message headers. Producers capture the context of
//! the operation that caused an event ([`current_trace_context`]) and store it with the outbox row; the publisher
//! copies it into the headers; the consumer extracts it ([`extract`]) and makes it the parent of its `consume` span.
//! The propagator is the process-wide one from `opentelemetry::global`, installed by `almoner-telemetry`.

use lapin::types::{AMQPValue, FieldTable, LongString};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Writes propagation fields into AMQP headers as long strings.
pub struct HeaderInjector<'a>(pub &'a mut FieldTable);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let Ok(key) = lapin::types::ShortString::try_new(key.to_ascii_lowercase()) {
            self.0.insert(key, AMQPValue::LongString(LongString::from(value)));
        }
    }
}

/// Reads propagation fields from AMQP headers; only string values count.
pub struct HeaderExtractor<'a>(pub &'a FieldTable);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        header_str(self.0, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.inner().keys().map(|k| k.as_str()).collect()
    }
}

/// A string header value (long or short string), if present and UTF-8.
pub(crate) fn header_str<'a>(headers: &'a FieldTable, key: &str) -> Option<&'a str> {
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}

/// Injects the current tracing span's context into `headers` with the global propagator.
pub fn inject_current(headers: &mut FieldTable) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// The `(traceparent, tracestate)` of the current tracing span, for storing with an outbox row.
/// `(None, None)` when no OpenTelemetry layer or propagator is installed.
pub fn current_trace_context() -> (Option<String>, Option<String>) {
    let mut headers = FieldTable::default();
    inject_current(&mut headers);
    let traceparent = header_str(&headers, TRACEPARENT).map(str::to_owned);
    let tracestate = header_str(&headers, TRACESTATE).filter(|s| !s.is_empty()).map(str::to_owned);
    (traceparent, tracestate)
}

/// The remote context carried by a message: its `traceparent` header, else `fallback_traceparent` (the envelope's
/// field), else an empty context (the consumer span then starts a new trace).
pub fn extract(headers: Option<&FieldTable>, fallback_traceparent: Option<&str>) -> Context {
    let propagate = |table: &FieldTable| {
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(table)))
    };
    if let Some(headers) = headers {
        let context = propagate(headers);
        if context.span().span_context().is_valid() {
            return context;
        }
    }
    if let Some(traceparent) = fallback_traceparent {
        let mut table = FieldTable::default();
        table.insert(TRACEPARENT.into(), AMQPValue::LongString(traceparent.into()));
        return propagate(&table);
    }
    Context::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceId;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn install_propagator() {
        opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    }

    #[test]
    fn header_wins_over_the_envelope_field_and_the_field_is_a_fallback() {
        install_propagator();
        let mut headers = FieldTable::default();
        headers.insert(TRACEPARENT.into(), AMQPValue::LongString(PARENT.into()));
        let other = "00-11111111111111111111111111111111-00f067aa0ba902b7-01";

        let from_header = extract(Some(&headers), Some(other));
        assert_eq!(
            from_header.span().span_context().trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );

        let from_field = extract(Some(&FieldTable::default()), Some(other));
        assert_eq!(
            from_field.span().span_context().trace_id(),
            TraceId::from_hex("11111111111111111111111111111111").unwrap()
        );
        assert!(from_field.span().span_context().is_remote());

        assert!(!extract(None, Some("garbage")).span().span_context().is_valid());
        assert!(!extract(None, None).span().span_context().is_valid());
    }

    #[test]
    fn injector_writes_long_string_headers_the_extractor_reads() {
        let mut headers = FieldTable::default();
        HeaderInjector(&mut headers).set("TraceParent", PARENT.to_owned());
        assert_eq!(HeaderExtractor(&headers).get(TRACEPARENT), Some(PARENT));
        assert_eq!(HeaderExtractor(&headers).keys(), vec![TRACEPARENT]);
    }
}
