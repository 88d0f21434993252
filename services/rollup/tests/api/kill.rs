//! The real rollup binary killed with SIGKILL (twice) in the middle of a stream of fundraising's events and started
//! again: nothing it had not committed may be lost, nothing it had committed may count twice. The deliveries it
//! held unacknowledged come back from the broker, its open transactions are rolled back by PostgreSQL, and the
//! inbox together with the revision guard must make the replay harmless.

use crate::helpers::{CountedGift, GiftSpec, date, donor_event, expected_totals, stored_totals};
use crate::process::{RollupProcess, processed};
use almoner_bus::{OutgoingMessage, Publisher};
use almoner_events::fundraising::GiftStatus;
use almoner_testkit::auth::TestIssuer;
use almoner_testkit::db::TestDatabase;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rollup::db::totals::{StoredFiscalYear, StoredTotals};
use rollup::domain::FiscalYearStart;
use rollup::worker::{PROJECTION_QUEUE, projection_spec};
use std::collections::HashSet;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

const DONORS: usize = 40;
const GIFTS: usize = 720;
/// Deliveries of an event already published (same event id), as an at-least-once relay produces.
const REDELIVERIES: usize = 60;
/// Published before the first process is killed; the rest is published while no rollup runs.
const FIRST_PART: usize = 1_200;
/// Each process but the last is killed once this many events are committed: the first while the stream is still
/// being published, the second while it works through the backlog (and the first one's unacknowledged deliveries).
const KILL_AFTER: [i64; 2] = [200, 900];
const STATUSES: [GiftStatus; 4] =
    [GiftStatus::Pending, GiftStatus::Succeeded, GiftStatus::Failed, GiftStatus::Refunded];

/// A gift's final state and whether it ends deleted.
type Final = (GiftSpec, bool);

/// What the test publishes, in order, and what it must end as.
struct Stream {
    messages: Vec<OutgoingMessage>,
    distinct_events: usize,
    finals: Vec<Final>,
}

/// Gifts (and refund entries) that each go through one to four revisions (other amounts, statuses, dates,
/// currencies, sometimes another donor), some ending deleted; the events of different gifts interleave, those of
/// one gift keep their revision order, and some deliveries are repeated.
fn stream(tenant: Uuid) -> Stream {
    let mut rng = StdRng::seed_from_u64(0x5160_4b11);
    let donors: Vec<Uuid> = (0..DONORS).map(|_| Uuid::new_v4()).collect();
    let base = date("2022-01-01");
    let mut per_gift: Vec<Vec<OutgoingMessage>> = Vec::new();
    let mut finals: Vec<Final> = Vec::new();
    for g in 0..GIFTS {
        // Every fifth gift is a refund entry of the gift before it (negative, succeeded unless a later revision
        // says otherwise), as fundraising records refunds.
        let refund_of = (g % 5 == 4).then(|| finals[g - 1].0.id);
        let mut spec = GiftSpec::new(tenant, donors[rng.random_range(0..DONORS)], 1, "2022-01-01");
        spec.refund_of = refund_of;
        let mut events = Vec::new();
        for revision in 1..=rng.random_range(1..=4i64) {
            spec.revision = revision;
            let amount = rng.random_range(100..50_000i64);
            spec.amount_minor = if refund_of.is_some() { -amount } else { amount };
            spec.status = if refund_of.is_some() && revision == 1 {
                GiftStatus::Succeeded
            } else {
                STATUSES[rng.random_range(0..STATUSES.len())]
            };
            spec.currency = if rng.random_bool(0.15) { "EUR" } else { "GBP" };
            spec.date = base + chrono::Days::new(rng.random_range(0..1_200));
            if revision > 1 && rng.random_bool(0.2) {
                spec.donor = donors[rng.random_range(0..DONORS)];
            }
            events.push(OutgoingMessage::from_envelope(&spec.event(), None).unwrap());
        }
        let deleted = rng.random_bool(0.15);
        if deleted {
            events.push(OutgoingMessage::from_envelope(&spec.deleted(spec.revision + 1), None).unwrap());
        }
        per_gift.push(events);
        finals.push((spec, deleted));
    }

    // Interleave: a shuffled list of gift indexes, one entry per event of that gift, each taking the gift's next.
    let mut order: Vec<usize> =
        per_gift.iter().enumerate().flat_map(|(g, e)| std::iter::repeat_n(g, e.len())).collect();
    order.shuffle(&mut rng);
    let mut next = vec![0usize; GIFTS];
    let mut messages: Vec<OutgoingMessage> = donors
        .iter()
        .enumerate()
        .map(|(i, d)| OutgoingMessage::from_envelope(&donor_event(tenant, *d, 1, "Donor", &format!("{i}")), None))
        .collect::<Result<_, _>>()
        .unwrap();
    for g in order {
        messages.push(per_gift[g][next[g]].clone());
        next[g] += 1;
    }
    let distinct_events = messages.len();
    for _ in 0..REDELIVERIES {
        let from = rng.random_range(0..messages.len());
        let to = rng.random_range(from + 1..=messages.len());
        let again = messages[from].clone();
        messages.insert(to, again);
    }
    Stream { messages, distinct_events, finals }
}

fn expected(finals: &[Final]) -> (Vec<StoredTotals>, Vec<StoredFiscalYear>) {
    let gifts: Vec<CountedGift> = finals
        .iter()
        .map(|(g, deleted)| CountedGift {
            id: g.id,
            donor: g.donor,
            currency: g.currency,
            amount_minor: g.amount_minor,
            date: g.date,
            status: g.status,
            is_refund: g.refund_of.is_some(),
            deleted: *deleted,
            household: None,
            allocations: Vec::new(),
            soft_credits: Vec::new(),
            pledge: None,
        })
        .collect();
    expected_totals(&gifts, FiscalYearStart::APRIL)
}

async fn publish(publisher: &Publisher, messages: &[OutgoingMessage]) {
    for batch in messages.chunks(100) {
        publisher.publish_batch(batch).await.expect("published");
    }
}

/// Publishes at a steady pace (50 messages every 10 ms), so a consumer is still receiving the stream when it dies.
async fn publish_paced(publisher: &Publisher, messages: &[OutgoingMessage]) {
    for batch in messages.chunks(50) {
        publisher.publish_batch(batch).await.expect("published");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollup_killed_mid_stream_and_restarted_counts_every_event_exactly_once() {
    almoner_testkit::telemetry::init();
    let started = Instant::now();
    let db = TestDatabase::create().await;
    let amqp = almoner_testkit::broker::amqp_settings();
    let issuer = TestIssuer::start().await;
    let settings = db.database_settings();
    // Migrated here so the test can read rollup's tables from the start; each process then finds nothing to do.
    almoner_db::migrate(&settings, rollup::db::SCHEMA, rollup::db::MIGRATIONS).await.unwrap();
    let pool = almoner_db::Pool::new(&settings, rollup::db::SCHEMA).unwrap();
    let admin = db.admin_client().await;
    // As the service does at start: the queue exists before anything is published, so nothing is unroutable.
    almoner_bus::topology::declare_consumer(&amqp, &projection_spec()).await.unwrap();
    let publisher = std::sync::Arc::new(Publisher::connect(&amqp, "rollup kill test").await.unwrap());

    let tenant = Uuid::new_v4();
    let stream = stream(tenant);
    let distinct: HashSet<Uuid> = stream.messages.iter().map(|m| m.message_id).collect();
    assert_eq!(distinct.len(), stream.distinct_events);
    assert!(stream.messages.len() > 1_900, "{} messages", stream.messages.len());
    let (first_part, second_part) = stream.messages.split_at(FIRST_PART);

    let mut rollup = RollupProcess::spawn(&db, &amqp, &issuer);
    let mut first_publish = Some(tokio::spawn({
        let (publisher, first_part) = (publisher.clone(), first_part.to_vec());
        async move { publish_paced(&publisher, &first_part).await }
    }));
    let mut kills = Vec::new();
    for (round, kill_after) in KILL_AFTER.into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let done = processed(&admin).await;
            if done >= kill_after {
                break;
            }
            rollup.assert_running();
            assert!(Instant::now() < deadline, "rollup processed only {done} events");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(rollup); // SIGKILL
        let at_kill = processed(&admin).await;
        let published = if round == 0 { first_part.len() } else { stream.messages.len() };
        assert!(at_kill < published as i64 - 100, "killed after the stream, not in it: {at_kill} events processed");
        kills.push(at_kill);
        if let Some(first_publish) = first_publish.take() {
            first_publish.await.expect("the first part is published");
            // Published while no rollup runs: the durable queue keeps them.
            publish(&publisher, second_part).await;
        }
        rollup = RollupProcess::spawn(&db, &amqp, &issuer);
    }

    let want = expected(&stream.finals);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let done = processed(&admin).await;
        if done == stream.distinct_events as i64 && stored_totals(&pool, tenant).await == want {
            break;
        }
        rollup.assert_running();
        if Instant::now() >= deadline {
            let got = stored_totals(&pool, tenant).await;
            assert_eq!(done, stream.distinct_events as i64, "events processed");
            assert_eq!(got.0, want.0, "donor totals");
            assert_eq!(got.1, want.1, "fiscal-year totals");
            panic!("rollup did not converge in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "killed with {kills:?} processed, of {} deliveries; all {} distinct applied {:?} after the start",
        stream.messages.len(),
        stream.distinct_events,
        started.elapsed()
    );

    // Exactly once: one inbox row per distinct event id published, none other; every gift at its final revision.
    let ids: Vec<Uuid> = distinct.into_iter().collect();
    let unknown: i64 = admin
        .query_one(
            "SELECT count(*) FROM rollup.processed_events WHERE consumer = $1 AND NOT event_id = ANY($2)",
            &[&PROJECTION_QUEUE, &ids],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(unknown, 0, "processed events that were never published");
    assert_eq!(processed(&admin).await, stream.distinct_events as i64);
    let ledger: Vec<(Uuid, i64, bool)> = admin
        .query("SELECT gift_id, revision, deleted FROM rollup.gifts ORDER BY gift_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut finals: Vec<(Uuid, i64, bool)> = stream
        .finals
        .iter()
        .map(|(g, deleted)| (g.id, if *deleted { g.revision + 1 } else { g.revision }, *deleted))
        .collect();
    finals.sort();
    assert_eq!(ledger, finals, "the ledger holds each gift once, at its final revision");
    let dead = almoner_bus::dead_letters::list(&amqp, PROJECTION_QUEUE, 10).await.unwrap();
    assert!(dead.is_empty(), "dead-lettered: {dead:?}");

    drop(rollup);
    drop(publisher);
    let _ = almoner_bus::topology::delete_consumer(&amqp, &projection_spec()).await;
    let _ = almoner_bus::topology::delete_exchanges(&amqp).await;
}
