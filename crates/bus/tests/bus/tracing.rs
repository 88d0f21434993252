use crate::helpers::{TestBus, envelope, message};
use almoner_bus::{Handler, Outcome, Received, propagation};
use opentelemetry::trace::{TraceContextExt, TraceId, TracerProvider as _};
use tokio::sync::mpsc;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

/// Reports the trace id of the span the handler runs in.
struct TraceIds(mpsc::UnboundedSender<(uuid::Uuid, TraceId)>);

impl Handler for TraceIds {
    async fn handle(&self, message: &Received) -> Outcome {
        let trace_id = tracing::Span::current().context().span().span_context().trace_id();
        let _ = self.0.send((message.event_id(), trace_id));
        Outcome::Ack
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_span_continues_the_publishers_trace() {
    // What almoner-telemetry's init does in a service: a tracer provider, the OpenTelemetry layer, the W3C propagator.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bus-tests")));
    tracing::subscriber::set_global_default(subscriber).expect("one subscriber per test process (nextest)");
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());

    let bus = TestBus::new();
    let spec = bus.spec("tests.tracing", &["test.#"]).await;
    let publisher = bus.publisher().await;

    // The producer's request span: its context goes into the message headers.
    let request = tracing::info_span!("POST /v1/tenants");
    let (in_header, publishing_trace) = {
        let _entered = request.enter();
        let (traceparent, tracestate) = propagation::current_trace_context();
        let mut outgoing = message(&envelope("test.tracing.header.v1"));
        outgoing.traceparent = traceparent;
        outgoing.tracestate = tracestate;
        (outgoing, tracing::Span::current().context().span().span_context().trace_id())
    };
    assert_ne!(publishing_trace, TraceId::INVALID);
    assert!(in_header.traceparent.as_deref().is_some_and(|t| t.contains(&publishing_trace.to_string())));
    publisher.publish(&in_header).await.unwrap();

    // An older producer that only filled the envelope's field: the consumer falls back to it.
    let other_request = tracing::info_span!("POST /v1/other");
    let (in_envelope, envelope_trace) = {
        let _entered = other_request.enter();
        let (traceparent, _) = propagation::current_trace_context();
        let event = envelope("test.tracing.envelope.v1");
        let event = almoner_events::Envelope { traceparent, ..event };
        (message(&event), tracing::Span::current().context().span().span_context().trace_id())
    };
    assert!(in_envelope.traceparent.is_some());
    let in_envelope = almoner_bus::OutgoingMessage { traceparent: None, ..in_envelope };
    publisher.publish(&in_envelope).await.unwrap();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = bus.consume(&bus.settings, &spec, TraceIds(tx));
    let mut seen = std::collections::HashMap::new();
    for _ in 0..2 {
        let (id, trace) = tokio::time::timeout(crate::helpers::PATIENCE, rx.recv()).await.unwrap().unwrap();
        seen.insert(id, trace);
    }
    assert_eq!(seen[&in_header.message_id], publishing_trace);
    assert_eq!(seen[&in_envelope.message_id], envelope_trace);
    assert_ne!(publishing_trace, envelope_trace);
    consumer.stop().await;
}
