//! A flood of signed Stripe webhooks through nginx while the broker goes away (every service loses it at once, as
//! in a restart) and fundraising is killed and started again: every event is stored once, every payment is one
//! gift, refunds net off, and rollup's totals equal a direct sum over fundraising's gifts.

use crate::faults::{disagreement, mix};
use crate::stack::{Options, Stack};
use almoner_webhook_verify::stripe;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Deliveries posted, from `ALMONER_FLOOD_WEBHOOKS`; 8,000 unless set. The issue asks for 20,000, and
/// `ALMONER_FLOOD_WEBHOOKS=20000` passes, but not within the 5-minute limit a test has: on 2 shared cores in a
/// debug build the stack accepts 90 to 180 webhooks/s through nginx, and 20,000 took 311 s in all (220 s to send,
/// 83 s until fundraising and rollup caught up). 8,000 takes about two minutes under the same load.
/// `scripts/bench/webhooks --flood` runs the full 20,000 against release builds, restarting the real broker.
const DEFAULT_WEBHOOKS: usize = 8_000;
const SECRET: &str = "whsec_floodTestSigningSecret9a8b7c6d5e";
/// Payers, each with a customer id and an email of its own: the first payment of each creates its donor, the
/// others are matched to it (by customer id once linked, or by email).
const DONORS: usize = 200;
/// Requests in flight at once.
const CONCURRENCY: usize = 32;
/// Every service loses the broker once this share of the deliveries is answered...
const CUT_AT: f64 = 0.2;
/// ...for this long.
const OUTAGE: Duration = Duration::from_secs(3);
/// fundraising is killed at this share, and started again this much later.
const KILL_AT: f64 = 0.5;
const KILLED_FOR: Duration = Duration::from_secs(2);
/// From the last delivery until fundraising and rollup must have caught up.
const CONVERGENCE: Duration = Duration::from_secs(150);

/// One delivery of the stream.
enum Delivery {
    /// A new payment: a payment intent of `amount` pence.
    Payment { event_id: String, amount: i64, body: Vec<u8> },
    /// A partial refund of an earlier payment.
    Refund { event_id: String, amount: i64, body: Vec<u8> },
    /// Delivery `of` posted again (signed anew, as Stripe retries).
    Again { of: usize },
}

fn stripe_event(id: &str, event_type: &str, created: i64, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": id, "object": "event", "type": event_type, "created": created,
        "livemode": false, "api_version": "2024-06-20", "data": {"object": object}}))
    .unwrap()
}

/// Per hundred deliveries: 94 payments, 2 partial refunds (of a payment thirty deliveries earlier, so most
/// are applied to a gift, and some parked until their payment is one) and 4 repeats of a delivery ten earlier
/// (often still in flight).
fn stream(n: usize, now: i64) -> Vec<Delivery> {
    let mut deliveries: Vec<Delivery> = Vec::with_capacity(n);
    for i in 0..n {
        let h = mix(i);
        let delivery = match i % 100 {
            12 | 24 | 62 | 74 => Delivery::Again { of: i - 10 },
            37 | 87 => {
                let paid = i - 30;
                let Delivery::Payment { amount: paid_amount, .. } = &deliveries[paid] else {
                    unreachable!("delivery {paid} is a payment")
                };
                let amount = paid_amount / 3;
                let event_id = format!("evt_flood_refund_{i}");
                let body = stripe_event(
                    &event_id,
                    "charge.refunded",
                    now,
                    json!({"id": format!("ch_flood_{paid}"), "object": "charge",
                           "payment_intent": format!("pi_flood_{paid}"), "amount": paid_amount,
                           "amount_refunded": amount, "currency": "gbp", "created": now, "refunded": false}),
                );
                Delivery::Refund { event_id, amount, body }
            }
            _ => {
                let donor = h as usize % DONORS;
                let amount = 300 + ((h >> 16) % 20_000) as i64;
                let event_id = format!("evt_flood_pay_{i}");
                let email = format!("flood-donor-{donor}@example.org");
                let body = stripe_event(
                    &event_id,
                    "payment_intent.succeeded",
                    now,
                    json!({"id": format!("pi_flood_{i}"), "object": "payment_intent", "amount": amount,
                           "amount_received": amount, "currency": "gbp", "created": now,
                           "customer": format!("cus_flood_{donor}"), "receipt_email": email,
                           "payment_method_types": ["card"],
                           "charges": {"data": [{"billing_details": {"name": format!("Flood Donor{donor}"),
                                                                      "email": email}}]}}),
                );
                Delivery::Payment { event_id, amount, body }
            }
        };
        deliveries.push(delivery);
    }
    deliveries
}

/// The body a delivery posts (a repeat posts its original's).
fn body_of(deliveries: &[Delivery], i: usize) -> &[u8] {
    match &deliveries[i] {
        Delivery::Payment { body, .. } | Delivery::Refund { body, .. } => body,
        Delivery::Again { of } => body_of(deliveries, *of),
    }
}

/// What the deliveries post, answered one by one: `received` adds up the answers' `received` counts.
struct Sender {
    client: reqwest::Client,
    url: String,
    deliveries: Vec<Delivery>,
    next: AtomicUsize,
    answered: AtomicUsize,
    received: AtomicUsize,
}

impl Sender {
    /// Posts deliveries until none is left; returns each one's time to its answer. Panics on anything but 200.
    async fn run(&self) -> Vec<Duration> {
        let mut took = Vec::new();
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= self.deliveries.len() {
                return took;
            }
            let body = body_of(&self.deliveries, i).to_vec();
            let started = Instant::now();
            let signature = stripe::signature_header(SECRET, chrono::Utc::now().timestamp(), &body);
            let response = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("delivery {i}: {e}"));
            let status = response.status();
            let answer: Value = response.json().await.unwrap_or(Value::Null);
            took.push(started.elapsed());
            assert_eq!(status, 200, "delivery {i}: {answer}");
            let (received, duplicates) = (answer["received"].as_u64(), answer["duplicates"].as_u64());
            assert_eq!(received.zip(duplicates).map(|(r, d)| r + d), Some(1), "delivery {i}: {answer}");
            // An event and its repeat may be in flight together: either may be the one stored (`received`), the
            // other is then the duplicate. Once per event in all is checked by adding them up.
            self.received.fetch_add(received.unwrap_or(0) as usize, Ordering::SeqCst);
            self.answered.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Waits until `count` deliveries are answered, or a sender stopped (it panicked: its panic is the failure).
    async fn wait_answered(&self, count: usize, senders: &[tokio::task::JoinHandle<Vec<Duration>>]) {
        while self.answered.load(Ordering::SeqCst) < count && !senders.iter().any(|s| s.is_finished()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Where fundraising stands against what was sent; `None` once every event is handled and every payment and
/// refund is a gift, once.
async fn fundraising_behind(
    admin: &tokio_postgres::Client,
    events: i64,
    payments: i64,
    refunds: i64,
) -> Option<String> {
    let row = admin
        .query_one(
            "SELECT (SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL),
                    (SELECT count(*) FROM fundraising.provider_events WHERE provider = 'stripe'),
                    (SELECT count(*) FROM fundraising.gifts WHERE source = 'stripe' AND refund_of IS NULL),
                    (SELECT count(*) FROM fundraising.gifts WHERE source = 'stripe' AND refund_of IS NOT NULL),
                    (SELECT count(*) FROM fundraising.payment_staging)",
            &[],
        )
        .await
        .unwrap();
    let (unpublished, handled, gifts, refund_gifts, staged): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(staged, 0, "no payment of a known payer is staged");
    assert!(gifts <= payments && refund_gifts <= refunds, "more gifts ({gifts}, {refund_gifts}) than sent");
    (unpublished > 0 || handled < events || gifts < payments || refund_gifts < refunds).then(|| {
        format!(
            "webhook-ingest: {unpublished} events not yet published; fundraising: {handled} of {events} events \
             handled, {gifts} of {payments} payments and {refund_gifts} of {refunds} refunds recorded"
        )
    })
}

fn percentile_ms(sorted: &[Duration], p: usize) -> f64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_flood_while_rabbitmq_restarts_and_fundraising_is_killed() {
    let n: usize = std::env::var("ALMONER_FLOOD_WEBHOOKS")
        .ok()
        .map(|v| v.parse().expect("ALMONER_FLOOD_WEBHOOKS is a number"))
        .unwrap_or(DEFAULT_WEBHOOKS);
    assert!(n >= 200, "ALMONER_FLOOD_WEBHOOKS must be at least 200");
    let mut stack = Stack::start_with(Options {
        proxied_amqp: true,
        webhook_ingest: true,
        webhook_rate_limit_per_minute: Some(10_000_000),
        ..Options::default()
    })
    .await;
    let token = stack.admin_token().await;
    let admin = stack.db.admin_client().await;
    let response = stack
        .client
        .post(stack.gateway.url("/api/webhook-ingest/v1/endpoints"))
        .bearer_auth(&token)
        .json(&json!({"provider": "stripe", "name": "Stripe flood", "secret": SECRET}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let endpoint: Value = response.json().await.unwrap();
    let path = endpoint["path"].as_str().expect("the delivery path");

    let deliveries = stream(n, chrono::Utc::now().timestamp());
    let (mut payments, mut refunds, mut expected_total) = (0i64, 0i64, 0i64);
    for delivery in &deliveries {
        match delivery {
            Delivery::Payment { amount, .. } => (payments, expected_total) = (payments + 1, expected_total + amount),
            Delivery::Refund { amount, .. } => (refunds, expected_total) = (refunds + 1, expected_total - amount),
            Delivery::Again { .. } => {}
        }
    }
    let events = payments + refunds;
    let mut event_ids: Vec<String> = deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Payment { event_id, .. } | Delivery::Refund { event_id, .. } => Some(event_id.clone()),
            Delivery::Again { .. } => None,
        })
        .collect();
    event_ids.sort_unstable();

    let sender = Arc::new(Sender {
        client: stack.client.clone(),
        url: stack.gateway.url(path),
        deliveries,
        next: AtomicUsize::new(0),
        answered: AtomicUsize::new(0),
        received: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let senders: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let sender = sender.clone();
            tokio::spawn(async move { sender.run().await })
        })
        .collect();

    // The broker is shared by every test, so it cannot really be restarted here: cutting every connection the
    // services have to it (webhook-ingest's relay, fundraising's consumer and relay, rollup's consumer) at once,
    // and refusing new ones for the outage, is what they would see of a restart.
    let proxies = stack.broker_proxies.as_ref().expect("proxied broker connections");
    let relay_connections =
        |stack: &Stack| stack.broker_proxies.as_ref().and_then(|p| p.webhook_ingest.as_ref()).map(|p| p.connections());
    let connections_before = relay_connections(&stack).expect("webhook-ingest's connection is proxied");
    sender.wait_answered((n as f64 * CUT_AT) as usize, &senders).await;
    proxies.cut_all().await;
    let cut_at = sender.answered.load(Ordering::SeqCst);
    tokio::time::sleep(OUTAGE).await;
    proxies.restore_all();
    let restored_at = sender.answered.load(Ordering::SeqCst);

    sender.wait_answered((n as f64 * KILL_AT) as usize, &senders).await;
    stack.kill_fundraising().await;
    let killed_at = sender.answered.load(Ordering::SeqCst);
    tokio::time::sleep(KILLED_FOR).await;
    stack.restart_fundraising().await;
    let restarted_at = sender.answered.load(Ordering::SeqCst);

    let mut took = Vec::with_capacity(n);
    for s in senders {
        took.extend(s.await.expect("every delivery is answered 200"));
    }
    let sent_in = started.elapsed();
    assert!(restarted_at < n, "fundraising was restarted only after the stream ({restarted_at} answered)");
    assert_eq!(took.len(), n);
    assert_eq!(sender.received.load(Ordering::SeqCst), event_ids.len(), "answers count each event as new once");

    // Every event is stored, once.
    let mut stored: Vec<String> = admin
        .query("SELECT event_id FROM ingest.received_events WHERE provider = 'stripe'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), event_ids.len(), "events stored");
    // The database's collation need not sort as Rust does.
    stored.sort_unstable();
    assert!(stored == event_ids, "the stored events are exactly those sent");

    let last_delivery = Instant::now();
    loop {
        let why = match fundraising_behind(&admin, events, payments, refunds).await {
            Some(why) => Some(why),
            None => disagreement(&admin).await,
        };
        let Some(why) = why else { break };
        assert!(last_delivery.elapsed() < CONVERGENCE, "not converged within {CONVERGENCE:?}: {why}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let converged = last_delivery.elapsed();

    // Each payment is exactly one gift, and the money is what was sent.
    let repeated = admin
        .query(
            "SELECT external_reference, count(*) FROM fundraising.gifts
             WHERE source = 'stripe' AND refund_of IS NULL GROUP BY 1 HAVING count(*) > 1",
            &[],
        )
        .await
        .unwrap();
    assert!(repeated.is_empty(), "{} payments are more than one gift", repeated.len());
    let row = admin
        .query_one(
            "SELECT count(DISTINCT external_reference), sum(amount_minor)::bigint, count(DISTINCT donor_id)
             FROM fundraising.gifts WHERE source = 'stripe' AND deleted_at IS NULL",
            &[],
        )
        .await
        .unwrap();
    let (references, total, donors): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(references, payments, "one gift per payment");
    assert_eq!(total, expected_total, "gifts net of refunds total what was sent");
    assert_eq!(donors, DONORS as i64, "each payer is one donor");
    let rollup_total: i64 =
        admin.query_one("SELECT sum(lifetime_total)::bigint FROM rollup.donor_totals", &[]).await.unwrap().get(0);
    assert_eq!(rollup_total, expected_total, "rollup's totals add up to what was sent");
    let dead = almoner_bus::dead_letters::list(&stack.amqp, fundraising::worker::payments::QUEUE, 10).await.unwrap();
    assert!(dead.is_empty(), "dead-lettered: {dead:?}");
    let connections_after = relay_connections(&stack).unwrap_or(0);
    assert!(connections_after > connections_before, "webhook-ingest never reconnected to the broker");

    took.sort_unstable();
    eprintln!(
        "{n} webhooks ({events} events: {payments} payments, {refunds} refunds; {} repeats) through nginx in \
         {:.1} s: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; broker cut at {cut_at} answered, back at \
         {restored_at}; fundraising killed at {killed_at}, back at {restarted_at}; fundraising and rollup \
         converged {:.1} s after the last delivery",
        n as i64 - events,
        sent_in.as_secs_f64(),
        n as f64 / sent_in.as_secs_f64(),
        percentile_ms(&took, 50),
        percentile_ms(&took, 99),
        took.last().unwrap().as_secs_f64() * 1000.0,
        converged.as_secs_f64()
    );
    stack.clean_up().await;
}
