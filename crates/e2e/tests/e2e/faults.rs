//! Faults under load: whatever goes wrong between the services and the broker, once it is over rollup's totals
//! equal a direct sum over fundraising's gifts, exactly, with every event applied once.

use crate::stack::{Options, Stack};
use chrono::{Days, NaiveDate, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

const DONORS: usize = 50;
const GIFTS: usize = 2_000;
/// Requests in flight at once.
const CONCURRENCY: usize = 16;
/// The broker goes away once this many gifts are recorded...
const CUT_AFTER: usize = 600;
/// ...and comes back this much later.
const OUTAGE: Duration = Duration::from_millis(1_500);
/// From the last write until rollup must have caught up.
const CONVERGENCE: Duration = Duration::from_secs(60);

/// Per donor and currency: total, gift count, largest and smallest gift.
pub type Totals = Vec<(Uuid, String, i64, i64, Option<i64>, Option<i64>)>;

/// What rollup's counting rules give, computed straight from fundraising's table: succeeded and refunded rows that
/// are not deleted count as money (refund entries are negative rows), positive rows that are not refund entries
/// count as gifts.
pub const EXPECTED_TOTALS: &str = "
    SELECT donor_id, currency, sum(amount_minor)::bigint,
           count(*) FILTER (WHERE refund_of IS NULL AND amount_minor > 0),
           max(amount_minor) FILTER (WHERE refund_of IS NULL AND amount_minor > 0),
           min(amount_minor) FILTER (WHERE refund_of IS NULL AND amount_minor > 0)
    FROM fundraising.gifts
    WHERE deleted_at IS NULL AND status IN ('succeeded', 'refunded')
    GROUP BY donor_id, currency
    ORDER BY donor_id, currency";

pub const ROLLUP_TOTALS: &str = "
    SELECT donor_id, currency, lifetime_total, lifetime_count, largest_gift, smallest_gift
    FROM rollup.donor_totals
    ORDER BY donor_id, currency";

/// Gifts whose ledger row in rollup is missing, extra, at another revision or deleted differently.
pub const LEDGER_DIFFERENCES: &str = "
    SELECT count(*)
    FROM fundraising.gifts f
    FULL JOIN rollup.gifts r ON r.gift_id = f.id
    WHERE f.id IS NULL OR r.gift_id IS NULL OR r.revision <> f.revision OR r.deleted <> (f.deleted_at IS NOT NULL)";

/// Event ids rollup recorded (once each: the inbox's primary key) against those it should have: every event
/// fundraising wrote to its outbox, and identity's tenant events (rollup is bound to them too).
const INBOX: &str = "
    SELECT (SELECT count(*) FROM fundraising.outbox WHERE published_at IS NULL),
           (SELECT count(*) FROM fundraising.outbox o
            WHERE NOT EXISTS (SELECT 1 FROM rollup.processed_events p
                              WHERE p.consumer = 'rollup.projection' AND p.event_id = o.id)),
           (SELECT count(*) FROM rollup.processed_events WHERE consumer = 'rollup.projection'),
           (SELECT count(*) FROM fundraising.outbox)
             + (SELECT count(*) FROM identity.outbox WHERE event_type LIKE 'identity.tenant.%')";

/// A deterministic spread of numbers per gift, so the run is the same every time.
pub fn mix(i: usize) -> u64 {
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Records fundraising's side of one gift's life and asserts every response; `recorded` counts gifts posted.
struct Writer {
    client: reqwest::Client,
    base: String,
    token: String,
    donors: Vec<String>,
    today: NaiveDate,
    recorded: AtomicUsize,
}

impl Writer {
    async fn send(&self, request: reqwest::RequestBuilder, expected: u16, what: &str) -> Value {
        let response = request.bearer_auth(&self.token).send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = response.status().as_u16();
        let body = if status == 204 { Value::Null } else { response.json().await.unwrap_or(Value::Null) };
        assert_eq!(status, expected, "{what}: {body}");
        body
    }

    async fn post_gift(&self, i: usize, body: Value) -> String {
        let request = self
            .client
            .post(format!("{}/v1/gifts", self.base))
            .header("idempotency-key", format!("fault-gift-{i}"))
            .json(&body);
        let gift = self.send(request, 201, &format!("POST gift {i}")).await;
        self.recorded.fetch_add(1, Ordering::SeqCst);
        gift["id"].as_str().expect("gift id").to_owned()
    }

    async fn refund(&self, i: usize, n: usize, gift: &str, amount: i64) -> Value {
        let request = self
            .client
            .post(format!("{}/v1/gifts/{gift}/refunds", self.base))
            .header("idempotency-key", format!("fault-refund-{i}-{n}"))
            .json(&json!({"amount_minor": amount, "date": self.today, "reason": "fault test"}));
        self.send(request, 201, &format!("refund {n} of gift {i}")).await
    }

    async fn patch(&self, i: usize, gift: &str, body: Value) {
        let request = self
            .client
            .patch(format!("{}/v1/gifts/{gift}", self.base))
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
        self.send(request, 200, &format!("PATCH gift {i}")).await;
    }

    async fn delete(&self, what: &str, gift: &str) {
        self.send(self.client.delete(format!("{}/v1/gifts/{gift}", self.base)), 204, what).await;
    }

    /// Gift `i`: an amount, currency, date and donor of its own, and one of eight lives, or (for most gifts: every
    /// follow-up is another request to sign-check, which a debug build pays dearly for) simply recorded.
    async fn gift_life(&self, i: usize) {
        let h = mix(i);
        let donor = &self.donors[(h % DONORS as u64) as usize];
        let amount = 100 + ((h >> 8) % 49_900) as i64;
        let currency = if (h >> 24).is_multiple_of(8) { "EUR" } else { "GBP" };
        let date = self.today - Days::new((h >> 32) % 1_000);
        let kind = i % 40;
        let status = match kind {
            2 => "pending",
            6 => "failed",
            _ => "succeeded",
        };
        let body = json!({"donor_id": donor, "amount_minor": amount, "currency": currency, "gift_date": date,
                          "status": status, "fund": "general"});
        let gift = self.post_gift(i, body).await;
        match kind {
            // Partly refunded.
            0 => {
                self.refund(i, 1, &gift, amount / 3).await;
            }
            // Refunded in two parts: the gift becomes `refunded`.
            1 => {
                self.refund(i, 1, &gift, amount / 2).await;
                let recorded = self.refund(i, 2, &gift, amount - amount / 2).await;
                assert_eq!(recorded["gift"]["status"], "refunded", "gift {i}");
            }
            // Pending, then taken.
            2 => self.patch(i, &gift, json!({"status": "succeeded"})).await,
            // Taken, then failed.
            3 => self.patch(i, &gift, json!({"status": "failed"})).await,
            // Corrected: another amount, and moved to another donor.
            4 => {
                let other = &self.donors[((h >> 40) % DONORS as u64) as usize];
                self.patch(i, &gift, json!({"amount_minor": amount + 250, "donor_id": other})).await;
            }
            // Refunded in full, then the refund deleted as entered in error: the gift is `succeeded` again.
            5 => {
                let recorded = self.refund(i, 1, &gift, amount).await;
                assert_eq!(recorded["gift"]["status"], "refunded", "gift {i}");
                let refund = recorded["refund"]["id"].as_str().expect("refund id").to_owned();
                self.delete(&format!("DELETE refund of gift {i}"), &refund).await;
            }
            // Entered in error.
            7 => self.delete(&format!("DELETE gift {i}"), &gift).await,
            _ => {}
        }
    }
}

/// What the test's admin connection reads, compared; `None` once rollup agrees with fundraising in every respect.
pub async fn disagreement(admin: &tokio_postgres::Client) -> Option<String> {
    let totals = |rows: Vec<tokio_postgres::Row>| -> Totals {
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))).collect()
    };
    let inbox = admin.query_one(INBOX, &[]).await.unwrap();
    let (unpublished, unprocessed, processed, published): (i64, i64, i64, i64) =
        (inbox.get(0), inbox.get(1), inbox.get(2), inbox.get(3));
    if unpublished > 0 || unprocessed > 0 || processed != published {
        return Some(format!(
            "{unpublished} events not yet published, {unprocessed} not processed; rollup processed {processed} \
             event ids, {published} were published"
        ));
    }
    let ledger: i64 = admin.query_one(LEDGER_DIFFERENCES, &[]).await.unwrap().get(0);
    if ledger > 0 {
        return Some(format!("{ledger} gifts differ between fundraising and rollup's ledger"));
    }
    let expected = totals(admin.query(EXPECTED_TOTALS, &[]).await.unwrap());
    let stored = totals(admin.query(ROLLUP_TOTALS, &[]).await.unwrap());
    if expected != stored {
        let differing: Vec<_> = expected.iter().filter(|row| !stored.contains(row)).take(5).collect();
        return Some(format!(
            "totals differ: {} rows expected, {} stored; expected rows missing or different: {differing:?}",
            expected.len(),
            stored.len()
        ));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_restarted_while_2000_gifts_are_being_posted() {
    let stack = Stack::start_with(Options { proxied_amqp: true, ..Options::default() }).await;
    let proxies = stack.broker_proxies.as_ref().expect("proxied broker connections");
    let token = stack.admin_token().await;
    let admin = stack.db.admin_client().await;

    let mut donors = Vec::new();
    for i in 0..DONORS {
        let response = stack
            .client
            .post(format!("{}/v1/donors", stack.fundraising_url))
            .bearer_auth(&token)
            .json(&json!({"first_name": "Donor", "last_name": format!("Number {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "POST donor {i}");
        let donor: Value = response.json().await.unwrap();
        donors.push(donor["id"].as_str().expect("donor id").to_owned());
    }

    let writer = Arc::new(Writer {
        client: stack.client.clone(),
        base: stack.fundraising_url.clone(),
        token,
        donors: donors.clone(),
        today: Utc::now().date_naive(),
        recorded: AtomicUsize::new(0),
    });
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (writer, next) = (writer.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= GIFTS {
                        return;
                    }
                    writer.gift_life(i).await;
                }
            })
        })
        .collect();

    // The broker is shared by every test, so it cannot really be restarted here: cutting every connection
    // fundraising's relay and rollup's consumer have to it (and refusing new ones) for the outage is what they
    // would see of a restart. Writes go on meanwhile: fundraising only needs PostgreSQL to record a gift.
    let connections_before = (proxies.fundraising.connections(), proxies.rollup.connections());
    while writer.recorded.load(Ordering::SeqCst) < CUT_AFTER {
        // A writer that failed has panicked: stop here and let its panic be the failure.
        if workers.iter().any(|w| w.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::join!(proxies.fundraising.cut(), proxies.rollup.cut());
    let recorded_at_cut = writer.recorded.load(Ordering::SeqCst);
    tokio::time::sleep(OUTAGE).await;
    proxies.fundraising.restore();
    proxies.rollup.restore();
    let recorded_at_restore = writer.recorded.load(Ordering::SeqCst);

    for worker in workers {
        worker.await.expect("every write got the status it should");
    }
    let written = started.elapsed();
    assert_eq!(writer.recorded.load(Ordering::SeqCst), GIFTS);
    assert!(recorded_at_cut < GIFTS, "the broker went away only after the stream");

    let last_write = Instant::now();
    loop {
        let Some(why) = disagreement(&admin).await else { break };
        assert!(last_write.elapsed() < CONVERGENCE, "rollup did not converge within {CONVERGENCE:?}: {why}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let converged = last_write.elapsed();
    eprintln!(
        "{GIFTS} gifts written in {written:?} (broker cut at {recorded_at_cut}, back at {recorded_at_restore}); \
         rollup converged {converged:?} after the last write"
    );

    // Both services really lost the broker and came back through the proxies.
    assert!(proxies.fundraising.connections() > connections_before.0, "fundraising never reconnected");
    assert!(proxies.rollup.connections() > connections_before.1, "rollup never reconnected");
    let fundraising_gifts: i64 = admin.query_one("SELECT count(*) FROM fundraising.gifts", &[]).await.unwrap().get(0);
    let rollup_gifts: i64 = admin.query_one("SELECT count(*) FROM rollup.gifts", &[]).await.unwrap().get(0);
    assert_eq!(rollup_gifts, fundraising_gifts, "rollup's ledger holds each gift once");
    let dead = almoner_bus::dead_letters::list(&stack.amqp, rollup::worker::PROJECTION_QUEUE, 10).await.unwrap();
    assert!(dead.is_empty(), "dead-lettered: {dead:?}");

    // And the API says the same as the table, for every donor.
    let mut expected: BTreeMap<String, Vec<(String, i64, i64)>> = BTreeMap::new();
    for row in admin.query(EXPECTED_TOTALS, &[]).await.unwrap() {
        let donor: Uuid = row.get(0);
        expected.entry(donor.to_string()).or_default().push((row.get(1), row.get(2), row.get(3)));
    }
    let token = stack.admin_token().await;
    for donor in &donors {
        let response = stack
            .client
            .get(format!("{}/api/rollup/v1/donors/{donor}", stack.gateway.base_url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET rollup donor {donor}");
        let body: Value = response.json().await.unwrap();
        let mut shown: Vec<(String, i64, i64)> = body["currencies"]
            .as_array()
            .expect("currencies")
            .iter()
            .map(|c| {
                (
                    c["currency"].as_str().unwrap().to_owned(),
                    c["lifetime_total_minor"].as_i64().unwrap(),
                    c["lifetime_count"].as_i64().unwrap(),
                )
            })
            .collect();
        shown.sort();
        assert_eq!(shown, expected.remove(donor).unwrap_or_default(), "donor {donor}");
    }

    stack.clean_up().await;
}
