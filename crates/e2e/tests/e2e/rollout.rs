//! A rolling restart of every service under a steady load, as Kubernetes rolls a release out: two replicas of each
//! service behind a balancer that follows their `/ready` (the Service), the nginx gateway in front, and each service
//! restarted one replica at a time (`maxSurge: 1`, `maxUnavailable: 0`: a new replica ready before an old one is
//! stopped, which then drains and exits). Meanwhile a load generator sends gifts, reads, Stripe webhooks, token
//! requests and inbox reads through the gateway, and an inbox keeps a live stream open.
//!
//! Every request is sent once: a transport error or a status other than the expected is a failed request, never
//! retried away. At the end: no request failed, and every event was published exactly once (a test queue bound to
//! every fundraising and webhook event sees each id once) and applied once (rollup's inbox holds every
//! fundraising event, its totals equal a direct sum over fundraising's gifts; fundraising's holds every webhook
//! event, each payment one gift).

use crate::deployment::Rollout;
use crate::faults::disagreement;
use crate::stack::{Options, Stack};
use almoner_bus::{ConsumerSpec, Handler, Outcome, Received};
use almoner_webhook_verify::stripe;
use chrono::{Days, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Requests per second the load generator aims at, over this many clients.
const RATE: f64 = 60.0;
const CLIENTS: usize = 12;
/// Load before the first restart and after the last.
const STEADY: Duration = Duration::from_secs(3);
/// Longer than any answer should take: a request still unanswered then has failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// From the end of the load until every event must have been applied.
const CONVERGENCE: Duration = Duration::from_secs(60);
const DONORS: usize = 20;
/// Stripe customers paying through webhooks (each becomes one donor).
const PAYERS: usize = 4;
const STRIPE_SECRET: &str = "whsec_rolloutTestSigningSecret8d2e";

/// What the load generator sends, by share of the requests (out of 20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// `POST /api/fundraising/v1/gifts` with an `Idempotency-Key` of its own: 8.
    Gift,
    /// `GET /api/fundraising/v1/donors/{id}`: 3.
    Donor,
    /// `GET /api/rollup/v1/donors/{id}`: 3.
    Totals,
    /// A signed Stripe `payment_intent.succeeded` to `/webhooks/stripe/{endpoint}`: 2.
    Webhook,
    /// `POST /api/identity/v1/oauth/token` (client credentials): 2.
    Token,
    /// `GET /api/messaging/v1/conversations/summary`: 1.
    Inbox,
    /// `GET /api/storage/v1/policy`: 1.
    Storage,
}

fn kind(n: usize) -> Kind {
    match n % 20 {
        0..8 => Kind::Gift,
        8..11 => Kind::Donor,
        11..14 => Kind::Totals,
        14..16 => Kind::Webhook,
        16..18 => Kind::Token,
        18 => Kind::Inbox,
        _ => Kind::Storage,
    }
}

/// One request: what, when, how long, and why it failed if it did.
struct Sample {
    kind: Kind,
    sent: Instant,
    took: Duration,
    failure: Option<String>,
}

struct Load {
    client: reqwest::Client,
    base: String,
    token: String,
    api_key: String,
    donors: Vec<String>,
    webhook_path: String,
    next: AtomicUsize,
    stop: AtomicBool,
}

impl Load {
    /// Sends request `n` once and says how it went.
    async fn send(&self, n: usize) -> Sample {
        let kind = kind(n);
        let donor = &self.donors[n % DONORS];
        let request = match kind {
            Kind::Gift => {
                let date = Utc::now().date_naive() - Days::new((n % 700) as u64);
                self.client
                    .post(format!("{}/api/fundraising/v1/gifts", self.base))
                    .bearer_auth(&self.token)
                    .header("idempotency-key", format!("rollout-gift-{n}"))
                    .json(&json!({"donor_id": donor, "amount_minor": 100 + (n % 9_000) as i64,
                                  "currency": "GBP", "gift_date": date, "fund": "general"}))
            }
            Kind::Donor => {
                self.client.get(format!("{}/api/fundraising/v1/donors/{donor}", self.base)).bearer_auth(&self.token)
            }
            Kind::Totals => {
                self.client.get(format!("{}/api/rollup/v1/donors/{donor}", self.base)).bearer_auth(&self.token)
            }
            Kind::Webhook => {
                let body = payment_intent(n);
                let signature = stripe::signature_header(STRIPE_SECRET, Utc::now().timestamp(), &body);
                self.client
                    .post(format!("{}{}", self.base, self.webhook_path))
                    .header("content-type", "application/json")
                    .header("stripe-signature", signature)
                    .body(body)
            }
            Kind::Token => self
                .client
                .post(format!("{}/api/identity/v1/oauth/token", self.base))
                .form(&[("grant_type", "client_credentials"), ("client_secret", self.api_key.as_str())]),
            Kind::Inbox => self
                .client
                .get(format!("{}/api/messaging/v1/conversations/summary", self.base))
                .bearer_auth(&self.token),
            Kind::Storage => self.client.get(format!("{}/api/storage/v1/policy", self.base)).bearer_auth(&self.token),
        };
        let expected = match kind {
            Kind::Gift => 201,
            _ => 200,
        };
        let sent = Instant::now();
        let failure = match request.timeout(REQUEST_TIMEOUT).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // The whole body is part of the answer: a connection closed under it is a failure too.
                match response.bytes().await {
                    Ok(body) if status == expected => match kind {
                        Kind::Webhook => webhook_accepted(&body),
                        _ => None,
                    },
                    Ok(body) => Some(format!("{status} {}", String::from_utf8_lossy(&body))),
                    Err(e) => Some(format!("{status}, then the body failed: {e:?}")),
                }
            }
            Err(e) => Some(format!("{e:?}")),
        };
        Sample { kind, sent, took: sent.elapsed(), failure: failure.map(|f| format!("{kind:?} #{n}: {f}")) }
    }

    /// One client: a request every `CLIENTS / RATE` seconds (later when answers are slower) until stopped.
    async fn client(self: Arc<Self>) -> Vec<Sample> {
        let mut samples = Vec::new();
        let mut pace = tokio::time::interval(Duration::from_secs_f64(CLIENTS as f64 / RATE));
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            pace.tick().await;
            if self.stop.load(Ordering::SeqCst) {
                return samples;
            }
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            samples.push(self.send(n).await);
        }
    }
}

/// A new payment, for request `n`, by one of the [`PAYERS`].
fn payment_intent(n: usize) -> Vec<u8> {
    let created = Utc::now().timestamp();
    let payer = n % PAYERS;
    serde_json::to_vec(&json!({"id": format!("evt_rollout_{n}"), "object": "event", "type": "payment_intent.succeeded",
        "created": created, "livemode": false, "api_version": "2024-06-20",
        "data": {"object": {"id": format!("pi_rollout_{n}"), "object": "payment_intent", "amount": 1_000 + n as i64,
            "amount_received": 1_000 + n as i64, "currency": "gbp", "created": created,
            "customer": format!("cus_rollout_{payer}"), "receipt_email": format!("payer{payer}@example.org"),
            "payment_method_types": ["card"],
            "charges": {"data": [{"billing_details": {"name": format!("Payer Number{payer}"),
                                                       "email": format!("payer{payer}@example.org")}}]}}}}))
    .unwrap()
}

/// A new event is received once: anything else is a failure.
fn webhook_accepted(body: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    (answer != json!({"received": 1, "duplicates": 0})).then(|| format!("200 but {answer}"))
}

/// The staff inbox's live stream, held open throughout: each time a replica's shutdown ends it, it is opened again
/// at once (through the gateway, so on a replica still serving). Returns the streams opened and the failures: an
/// opening not answered 200, or a stream broken rather than ended.
async fn inbox_stream(
    client: reqwest::Client,
    url: String,
    token: String,
    stop: CancellationToken,
) -> (usize, Vec<String>) {
    let (mut opened, mut failures) = (0, Vec::new());
    while !stop.is_cancelled() {
        let response = tokio::select! {
            () = stop.cancelled() => break,
            response = client.get(&url).bearer_auth(&token).send() => response,
        };
        let mut response = match response {
            Ok(response) if response.status() == 200 => response,
            Ok(response) => {
                failures.push(format!("stream opening answered {}", response.status()));
                continue;
            }
            Err(e) => {
                failures.push(format!("stream opening failed: {e:?}"));
                continue;
            }
        };
        opened += 1;
        loop {
            let chunk = tokio::select! {
                () = stop.cancelled() => return (opened, failures),
                chunk = response.chunk() => chunk,
            };
            match chunk {
                Ok(Some(_)) => {}
                // Ended by the replica's shutdown: open it again.
                Ok(None) => break,
                Err(e) => {
                    failures.push(format!("stream broken: {e:?}"));
                    break;
                }
            }
        }
    }
    (opened, failures)
}

/// Counts every delivery of every event id on a queue of the test's own, bound to all fundraising and webhook
/// events: a double publication shows as a count of two.
struct Publications(Arc<Mutex<HashMap<Uuid, usize>>>);

impl Handler for Publications {
    async fn handle(&self, message: &Received) -> Outcome {
        // A delivery the broker gives again (this observer's own channel failing) is not a second publication.
        if message.redelivered {
            self.0.lock().unwrap().entry(message.event_id()).or_insert(1);
        } else {
            *self.0.lock().unwrap().entry(message.event_id()).or_insert(0) += 1;
        }
        Outcome::Ack
    }
}

fn observer_spec() -> ConsumerSpec {
    ConsumerSpec::new("e2e.rollout_observer", ["fundraising.#", "webhook.#"])
}

/// The nearest-rank percentile `p` (0 to 100) of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1].as_secs_f64() * 1000.0
}

async fn count(admin: &tokio_postgres::Client, sql: &str) -> i64 {
    admin.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_of_every_service_under_load_fails_no_request_and_loses_or_duplicates_no_event() {
    let mut stack = Stack::start_with(Options {
        replicated: true,
        webhook_ingest: true,
        messaging: true,
        webhook_rate_limit_per_minute: Some(1_000_000),
        // One client address sends the whole load: production's per-address limit is lifted.
        gateway_settings: &[("ALMONER_GATEWAY_API_RATE", "100000r/s"), ("ALMONER_GATEWAY_API_BURST", "100000")],
        ..Options::default()
    })
    .await;
    let base = stack.gateway.base_url.clone();
    let token = stack.admin_token().await;
    let admin = stack.db.admin_client().await;

    let published = Arc::new(Mutex::new(HashMap::new()));
    let observing = CancellationToken::new();
    almoner_bus::topology::declare_consumer(&stack.amqp, &observer_spec()).await.expect("the observer's queue");
    tokio::spawn(almoner_bus::consumer::run(
        stack.amqp.clone(),
        observer_spec(),
        Publications(published.clone()),
        observing.clone(),
    ));

    let mut donors = Vec::new();
    for i in 0..DONORS {
        let response = stack
            .client
            .post(format!("{base}/api/fundraising/v1/donors"))
            .bearer_auth(&token)
            .json(&json!({"first_name": "Donor", "last_name": format!("Number {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "POST donor {i}");
        let donor: Value = response.json().await.unwrap();
        donors.push(donor["id"].as_str().expect("donor id").to_owned());
    }
    let response = stack
        .client
        .post(format!("{base}/api/webhook-ingest/v1/endpoints"))
        .bearer_auth(&token)
        .json(&json!({"provider": "stripe", "name": "rollout", "secret": STRIPE_SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "the Stripe endpoint");
    let endpoint: Value = response.json().await.unwrap();
    let webhook_path = endpoint["path"].as_str().expect("the delivery path").to_owned();
    // Rollup knows every donor before the reads of their totals start.
    let known_by = Instant::now() + Duration::from_secs(20);
    while count(&admin, "SELECT count(*) FROM rollup.donors").await < DONORS as i64 {
        assert!(Instant::now() < known_by, "rollup did not learn the donors");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let load = Arc::new(Load {
        client: reqwest::Client::new(),
        base: base.clone(),
        token: token.clone(),
        api_key: stack.admin.api_key.clone(),
        donors,
        webhook_path,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS).map(|_| tokio::spawn(load.clone().client())).collect();
    let streaming = CancellationToken::new();
    let stream = tokio::spawn(inbox_stream(
        reqwest::Client::new(),
        format!("{base}/api/messaging/v1/conversations/stream"),
        token.clone(),
        streaming.clone(),
    ));
    tokio::time::sleep(STEADY).await;

    let rollout_began = Instant::now();
    let mut rollouts: Vec<Rollout> = Vec::new();
    for deployment in stack.deployments.iter_mut() {
        rollouts.push(deployment.rolling_restart().await);
    }
    let rollout_took = rollout_began.elapsed();
    tokio::time::sleep(STEADY).await;
    load.stop.store(true, Ordering::SeqCst);
    let mut samples = Vec::new();
    for client in clients {
        samples.extend(client.await.expect("a load client"));
    }
    let load_took = started.elapsed();
    streaming.cancel();
    let (streams_opened, stream_failures) = stream.await.expect("the inbox stream");

    // Requests.
    let failures: Vec<&String> = samples.iter().filter_map(|s| s.failure.as_ref()).collect();
    let during: Vec<&Sample> =
        samples.iter().filter(|s| s.sent >= rollout_began && s.sent < rollout_began + rollout_took).collect();
    let mut latencies: Vec<Duration> = during.iter().map(|s| s.took).collect();
    latencies.sort();
    let mut by_kind: HashMap<Kind, usize> = HashMap::new();
    samples.iter().for_each(|s| *by_kind.entry(s.kind).or_default() += 1);
    let mut by_kind: Vec<_> = by_kind.into_iter().collect();
    by_kind.sort();

    // Events: every one published, applied, and seen once.
    let last_write = Instant::now();
    loop {
        let Some(why) = disagreement(&admin).await else { break };
        assert!(last_write.elapsed() < CONVERGENCE, "rollup did not converge within {CONVERGENCE:?}: {why}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let webhooks_sent = samples.iter().filter(|s| s.kind == Kind::Webhook && s.failure.is_none()).count() as i64;
    loop {
        let unpublished = count(&admin, "SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL").await;
        let unprocessed = count(
            &admin,
            "SELECT count(*) FROM ingest.outbox o WHERE NOT EXISTS (SELECT 1 FROM fundraising.processed_events p
             WHERE p.consumer = 'fundraising.payments' AND p.event_id = o.id)",
        )
        .await;
        let stripe_gifts = count(&admin, "SELECT count(*) FROM fundraising.gifts WHERE source = 'stripe'").await;
        if unpublished == 0 && unprocessed == 0 && stripe_gifts == webhooks_sent {
            break;
        }
        assert!(
            last_write.elapsed() < CONVERGENCE,
            "webhooks: {unpublished} unpublished, {unprocessed} not processed by fundraising, {stripe_gifts} gifts \
             from {webhooks_sent} payments"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Fundraising may still be relaying the last webhook gifts to rollup: converge again.
    loop {
        let Some(why) = disagreement(&admin).await else { break };
        assert!(last_write.elapsed() < CONVERGENCE, "rollup did not converge within {CONVERGENCE:?}: {why}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converged = last_write.elapsed();
    let outbox_ids: Vec<Uuid> = admin
        .query("SELECT id FROM fundraising.outbox UNION ALL SELECT id FROM ingest.outbox", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let seen_by = Instant::now() + Duration::from_secs(20);
    let (missing, doubled) = loop {
        let seen = published.lock().unwrap().clone();
        let missing = outbox_ids.iter().filter(|id| !seen.contains_key(id)).count();
        let doubled: Vec<(Uuid, usize)> = seen.iter().filter(|(_, n)| **n > 1).map(|(id, n)| (*id, *n)).collect();
        if missing == 0 || Instant::now() > seen_by {
            break (missing, doubled);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let gifts = count(&admin, "SELECT count(*) FROM fundraising.gifts").await;
    let processed =
        count(&admin, "SELECT count(*) FROM rollup.processed_events WHERE consumer = 'rollup.projection'").await;

    let failed = failures.len();
    println!(
        "rolling restart of {} services ({} replicas each) under load: {} requests in {:.1} s ({:.0}/s; {}), {failed} \
         failed; during the rollout ({:.1} s): {} requests, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        rollouts.len(),
        crate::stack::REPLICAS,
        samples.len(),
        load_took.as_secs_f64(),
        samples.len() as f64 / load_took.as_secs_f64(),
        by_kind.iter().map(|(k, n)| format!("{k:?} {n}")).collect::<Vec<_>>().join(", "),
        rollout_took.as_secs_f64(),
        during.len(),
        percentile_ms(&latencies, 50),
        percentile_ms(&latencies, 99),
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    for r in &rollouts {
        let seconds = |d: &Duration| format!("{:.1} s", d.as_secs_f64());
        let starts: Vec<String> = r.starts.iter().map(|(s, w)| format!("{} + {}", seconds(s), seconds(w))).collect();
        let shutdowns: Vec<String> = r.shutdowns.iter().map(seconds).collect();
        println!(
            "  {}: new replicas ready in {:.1} s (each started + found ready in {}), old ones exited by {:.1} s (each \
             shut down in {})",
            r.service,
            r.until_ready.as_secs_f64(),
            starts.join(", "),
            r.until_old_exited.as_secs_f64(),
            shutdowns.join(", ")
        );
    }
    println!(
        "events: {} published (fundraising and webhook-ingest), {missing} not seen, {} seen twice; rollup applied \
         {processed} once each, converged {:.1} s after the load; {gifts} gifts ({webhooks_sent} from webhooks); the \
         inbox stream was opened {streams_opened} times, {} failures",
        outbox_ids.len(),
        doubled.len(),
        converged.as_secs_f64(),
        stream_failures.len()
    );

    assert!(failures.is_empty(), "{failed} requests failed; the first: {:#?}", &failures[..failed.min(10)]);
    assert!(stream_failures.is_empty(), "the inbox stream failed: {stream_failures:?}");
    assert_eq!(missing, 0, "events never published");
    if !doubled.is_empty() {
        let ids: Vec<Uuid> = doubled.iter().map(|(id, _)| *id).collect();
        let rows = admin
            .query(
                "SELECT id, event_type, attempts, last_error, published_at - created_at FROM fundraising.outbox
                 WHERE id = ANY($1) UNION ALL
                 SELECT id, event_type, attempts, last_error, published_at - created_at FROM ingest.outbox
                 WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .unwrap();
        let rows: Vec<String> = rows
            .iter()
            .map(|r| {
                let (id, kind, attempts, error): (Uuid, String, i32, Option<String>) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                format!("{id} {kind}: {attempts} failed attempts, last error {error:?}")
            })
            .collect();
        panic!("events published more than once: {doubled:?}: {rows:#?}");
    }
    assert!(streams_opened > 1, "the inbox stream was never moved by messaging's restart");
    let dead = almoner_bus::dead_letters::list(&stack.amqp, rollup::worker::PROJECTION_QUEUE, 10).await.unwrap();
    assert!(dead.is_empty(), "dead-lettered in rollup: {dead:?}");

    observing.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = almoner_bus::topology::delete_consumer(&stack.amqp, &observer_spec()).await;
    stack.clean_up().await;
}
