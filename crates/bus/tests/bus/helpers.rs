use almoner_bus::{ConsumerSpec, Handler, Outcome, OutgoingMessage, Publisher, Received, consumer, topology};
use almoner_config::AmqpSettings;
use almoner_events::Envelope;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use almoner_testkit::{broker, proxy};

/// How long a test waits for something that should happen within milliseconds.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A namespace on the test broker; deletes the queues and exchanges it created when dropped.
pub struct TestBus {
    pub settings: AmqpSettings,
    specs: std::sync::Mutex<Vec<ConsumerSpec>>,
    consumers: CancellationToken,
}

impl TestBus {
    pub fn new() -> Self {
        Self { settings: broker::amqp_settings(), specs: Default::default(), consumers: CancellationToken::new() }
    }

    /// A spec with short retry delays (100 ms, 200 ms) and 3 deliveries, declared on the broker.
    pub async fn spec(&self, queue: &str, bindings: &[&str]) -> ConsumerSpec {
        let mut spec = ConsumerSpec::new(queue, bindings.iter().copied());
        spec.prefetch = 8;
        spec.max_deliveries = 3;
        spec.retry_delays = vec![Duration::from_millis(100), Duration::from_millis(200)];
        self.declare(&spec).await;
        spec
    }

    pub async fn declare(&self, spec: &ConsumerSpec) {
        self.specs.lock().unwrap().push(spec.clone());
        topology::declare_consumer(&self.settings, spec).await.expect("declare the consumer topology");
    }

    pub async fn publisher(&self) -> Publisher {
        Publisher::connect(&self.settings, "bus-tests").await.expect("connect the publisher")
    }

    /// Runs a consumer until the returned handle is stopped (or the bus dropped).
    pub fn consume<H: Handler>(&self, settings: &AmqpSettings, spec: &ConsumerSpec, handler: H) -> RunningConsumer {
        let token = self.consumers.child_token();
        let task = tokio::spawn(consumer::run(settings.clone(), spec.clone(), handler, token.clone()));
        RunningConsumer { token, task }
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        self.consumers.cancel();
        let settings = self.settings.clone();
        let specs = std::mem::take(&mut *self.specs.lock().unwrap());
        // Quorum queues outlive their connections: delete them, on a runtime of our own since Drop is not async.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                for spec in &specs {
                    let _ = topology::delete_consumer(&settings, spec).await;
                }
                let _ = topology::delete_exchanges(&settings).await;
            });
        });
        let _ = cleanup.join();
    }
}

pub struct RunningConsumer {
    token: CancellationToken,
    task: JoinHandle<Result<(), almoner_bus::BusError>>,
}

impl RunningConsumer {
    /// Stops gracefully and checks the consumer ended without error.
    pub async fn stop(self) {
        self.token.cancel();
        let ended = tokio::time::timeout(PATIENCE, self.task).await.expect("consumer stops in time");
        ended.expect("consumer task did not panic").expect("consumer ended cleanly");
    }

    /// Kills the consumer like a crashed process: no graceful shutdown, the connection just goes away.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// An envelope of `event_type` with a small payload.
pub fn envelope(event_type: &str) -> Envelope {
    Envelope {
        id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        occurred_at: chrono::Utc::now(),
        tenant_id: Uuid::new_v4(),
        producer: "bus-tests".to_owned(),
        traceparent: None,
        payload: serde_json::json!({ "name": "Demo", "revision": 1 }),
    }
}

pub fn message(envelope: &Envelope) -> OutgoingMessage {
    OutgoingMessage::from_envelope(envelope, None).unwrap()
}

/// A handler that reports every delivery on a channel and answers what `decide` says.
pub struct Recorder {
    deliveries: mpsc::UnboundedSender<Received>,
    decide: Arc<dyn Fn(&Received) -> Outcome + Send + Sync>,
    pause: Duration,
}

impl Recorder {
    pub fn new(
        decide: impl Fn(&Received) -> Outcome + Send + Sync + 'static,
    ) -> (Self, mpsc::UnboundedReceiver<Received>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { deliveries: tx, decide: Arc::new(decide), pause: Duration::ZERO }, rx)
    }

    pub fn acking() -> (Self, mpsc::UnboundedReceiver<Received>) {
        Self::new(|_| Outcome::Ack)
    }

    /// Takes `pause` per message before answering, to keep deliveries in flight.
    pub fn slow(mut self, pause: Duration) -> Self {
        self.pause = pause;
        self
    }
}

impl Handler for Recorder {
    async fn handle(&self, message: &Received) -> Outcome {
        tokio::time::sleep(self.pause).await;
        let outcome = (self.decide)(message);
        let _ = self.deliveries.send(message.clone());
        outcome
    }
}

/// The next delivery, or a panic after [`PATIENCE`].
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(PATIENCE, rx.recv()).await.expect("a delivery in time").expect("handler alive")
}

/// Asserts nothing more is delivered for `quiet`.
pub async fn nothing_more(rx: &mut mpsc::UnboundedReceiver<Received>, quiet: Duration) {
    if let Ok(Some(extra)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("unexpected delivery: attempt {} of {}", extra.attempt, extra.event_id());
    }
}

/// Polls `check` until it returns true, or panics after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
