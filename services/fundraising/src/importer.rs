//! The import commit job: writes a committed import's donors, gifts and refunds in chunks, each chunk in one
//! transaction together with its events and the import's progress, so a restarted service (or another replica,
//! once the lease runs out) resumes after the last committed chunk and nothing is written twice.
//!
//! Rows are decided again against the tenant as it is now, with the same rules as the dry run, and written grouped
//! by donor in an order stored when the commit begins (`import::write_order`); on a resume, the rows already
//! written are found again (as matches and duplicates) and skipped, the commit goes on along the stored order, and
//! the rows after them are decided exactly as an uninterrupted run would have.

use crate::PRODUCER;
use crate::app::imports::{Options, read};
use crate::app::refunds::{RecordRefundError, record_refund};
use crate::db::{gifts, imports as db};
use crate::domain::import::{self, Outcome, Row};
use crate::domain::{GiftDetails, GiftStatus, Refund, SourceName};
use almoner_db::{Pool, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::{DonorsUpsertedV1, FundAllocation, FundUpsertedV1, GiftsUpsertedV1};
use almoner_types::Currency;
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Rows written per transaction (and per chunk event). 5,000 rather than 2,000 took `scripts/bench/import` from
/// about 9.5 s to 6.1 s: fewer commits, outbox rows and recomputations; a chunk event is then about 2.5 MB.
pub const CHUNK_ROWS: usize = 5000;
/// How long a replica may work on an import without showing progress before another may take it over.
const LEASE: Duration = Duration::from_secs(120);
/// Attempts before an import that keeps failing is marked `failed`.
const MAX_ATTEMPTS: i32 = 5;

/// Wakes the importer when an import is committed. Cheap to clone.
#[derive(Clone, Default)]
pub struct ImportRunner {
    wake: Arc<Notify>,
}

impl ImportRunner {
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Works through committed imports until `shutdown`: woken by [`wake`](Self::wake), and every 5 s for
    /// imports another replica left behind.
    pub async fn run(self, pool: Pool, shutdown: CancellationToken) {
        loop {
            loop {
                if shutdown.is_cancelled() {
                    return;
                }
                let job = async {
                    let tx = pool.system_tx().await?;
                    let job = db::lease_job(&tx, LEASE).await?;
                    tx.commit().await?;
                    Ok::<_, almoner_db::DbError>(job)
                }
                .await;
                match job {
                    Ok(Some((tenant_id, id, attempt))) => work(&pool, tenant_id, id, attempt).await,
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "could not look for imports to commit");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, import_id = %id, attempt))]
async fn work(pool: &Pool, tenant_id: Uuid, id: Uuid, attempt: i32) {
    match commit_import(pool, tenant_id, id).await {
        Ok(rows) => tracing::info!(rows, "import committed"),
        Err(error) if attempt >= MAX_ATTEMPTS => {
            tracing::error!(error = format!("{error:#}"), "import failed for good");
            let message = format!("{error:#}");
            let failed = async {
                let tx = pool.tenant_tx(tenant_id).await?;
                db::finish(&tx, id, "failed", Some(&message.chars().take(2000).collect::<String>())).await?;
                tx.commit().await
            };
            if let Err(error) = failed.await {
                tracing::warn!(%error, "could not mark the import failed");
            }
        }
        // The lease runs out and this or another replica tries again from the last committed chunk.
        Err(error) => tracing::warn!(error = format!("{error:#}"), "import interrupted; it will be resumed"),
    }
}

/// Writes the import's remaining rows; returns how many rows it has.
async fn commit_import(pool: &Pool, tenant_id: Uuid, id: Uuid) -> anyhow::Result<usize> {
    let tx = pool.tenant_tx(tenant_id).await?;
    let stored = db::get(&tx, id).await?.context("the import is gone")?;
    let content = db::content(&tx, id).await?.context("the import has no file")?;
    tx.commit().await?;
    if stored.status != "committing" {
        return Ok(0);
    }
    let started = Instant::now();
    let mut timings = Timings::default();
    let options = Options::from_stored(&stored.options).context("stored import options")?;
    let text = String::from_utf8(content).context("the stored file is not UTF-8")?;
    let (_, rows) = read(&text, &options).context("reading the stored file")?;
    let total = rows.len();

    // With the outcomes the dry run stored: with the same ids, a row decided the same way has the same text, and
    // only rows decided otherwise (the tenant changed since, or a refund was refused) are rewritten.
    let tx = pool.tenant_tx(tenant_id).await?;
    let (donors, gifts_index, funds, declarations, reported, stored_order) = futures::try_join!(
        db::donor_index(&tx, options.source.as_str()),
        db::gift_index(&tx, options.source.as_str()),
        db::fund_index(&tx),
        db::declaration_index(&tx),
        db::outcomes(&tx, id),
        db::write_order(&tx, id)
    )?;
    let mut known = import::Known { donors, gifts: gifts_index, funds, declarations };
    tx.commit().await?;
    timings.read = started.elapsed();
    let reported: HashMap<i32, String> = reported.into_iter().collect();
    let ids = import::RowIds::new(id);
    let decided = import::decide(rows, &mut known, options.rules(), ids);
    let new_funds = known.funds.created();
    timings.decide = started.elapsed() - timings.read;
    let done = usize::try_from(stored.rows_done).unwrap_or(0).min(total);
    // Rows are written grouped by donor, in the order stored when the commit began: a resumed commit goes on
    // along the same order, whatever its rows are decided as now.
    let order: Vec<usize> = match stored_order {
        Some(order) => {
            let order: Vec<usize> = order.into_iter().filter_map(|i| usize::try_from(i).ok()).collect();
            let mut seen = vec![false; total];
            anyhow::ensure!(
                order.len() == total && order.iter().all(|&i| i < total && !std::mem::replace(&mut seen[i], true)),
                "the stored write order does not fit the import's {total} rows"
            );
            order
        }
        None if done == 0 => {
            let order = import::write_order(&decided);
            let stored: Vec<i32> = order.iter().map(|&i| i32::try_from(i).unwrap_or(i32::MAX)).collect();
            let tx = pool.tenant_tx(tenant_id).await?;
            db::set_write_order(&tx, id, &stored).await?;
            tx.commit().await?;
            order
        }
        // A commit begun before write orders were stored goes on in file order, as it began.
        None => (0..total).collect(),
    };
    let mut position = done;
    let mut written = Written::default();
    for positions in order[done..].chunks(CHUNK_ROWS) {
        let chunk: Vec<&(usize, Outcome, Option<Row>)> = positions.iter().map(|&i| &decided[i]).collect();
        let tx = pool.tenant_tx(tenant_id).await?;
        let mut outcomes =
            write_chunk(&tx, tenant_id, &options.source, &chunk, new_funds, &mut written, &mut timings).await?;
        let mark = Instant::now();
        outcomes.retain(|(line, _, text)| reported.get(line) != Some(text));
        db::replace_outcomes(&tx, id, &outcomes).await?;
        position += chunk.len();
        db::progress(&tx, id, i32::try_from(position).unwrap_or(i32::MAX), LEASE).await?;
        timings.outcomes += mark.elapsed();
        let mark = Instant::now();
        tx.commit().await?;
        timings.commit += mark.elapsed();
        tracing::debug!(rows_done = position, total, "import chunk committed");
    }
    let tx = pool.tenant_tx(tenant_id).await?;
    db::finish(&tx, id, "committed", None).await?;
    tx.commit().await?;
    timings.log(total, started.elapsed());
    Ok(total)
}

/// Donors and gifts this run of the commit has written so far, the current chunk's included.
#[derive(Default)]
struct Written {
    donors: usize,
    gifts: usize,
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Where a commit's time went, logged when it ends: the figures `scripts/bench/import` is explained by.
#[derive(Default)]
struct Timings {
    /// Reading the stored file, parsing it and loading the tenant's donor and gift indexes.
    read: Duration,
    /// Deciding every row again.
    decide: Duration,
    donors: Duration,
    gifts: Duration,
    refunds: Duration,
    /// Building and storing the chunk events.
    events: Duration,
    /// Outcomes and progress.
    outcomes: Duration,
    commit: Duration,
}

impl Timings {
    fn log(&self, rows: usize, total: Duration) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            rows,
            total_ms = ms(total),
            read_ms = ms(self.read),
            decide_ms = ms(self.decide),
            donors_ms = ms(self.donors),
            gifts_ms = ms(self.gifts),
            refunds_ms = ms(self.refunds),
            events_ms = ms(self.events),
            outcomes_ms = ms(self.outcomes),
            commit_ms = ms(self.commit),
            "import commit timings"
        );
    }
}

fn gift_details(row: &Row, donor_id: Uuid, source: &SourceName) -> anyhow::Result<GiftDetails> {
    let g = &row.gift;
    Ok(GiftDetails {
        donor_id,
        amount_minor: g.amount_minor,
        currency: Currency::parse(&g.currency).map_err(|e| anyhow::anyhow!("currency: {e}"))?,
        gift_date: g.date,
        status: match g.status {
            "pending" => GiftStatus::Pending,
            "failed" => GiftStatus::Failed,
            _ => GiftStatus::Succeeded,
        },
        payment_method: g.payment_method.clone(),
        source: source.clone(),
        fund: g.fund.clone(),
        campaign: g.campaign.clone(),
        notes: g.notes.clone(),
        external_reference: g.reference.clone(),
        // The whole gift to its fund, as a gift entered through the API with one allocation.
        allocations: g
            .fund_id
            .map(|fund_id| FundAllocation { fund_id, amount_minor: g.amount_minor })
            .into_iter()
            .collect(),
        soft_credits: Vec::new(),
        pledge_id: None,
        sponsored_event: false,
    })
}

/// Writes one chunk's donors, gifts and refunds with their events; each row's outcome as written.
async fn write_chunk(
    tx: &Transaction,
    tenant_id: Uuid,
    source: &SourceName,
    chunk: &[&(usize, Outcome, Option<Row>)],
    new_funds: &HashMap<Uuid, import::NewFund>,
    written: &mut Written,
    timings: &mut Timings,
) -> anyhow::Result<Vec<db::OutcomeRow>> {
    let mark = Instant::now();
    let new_donors: Vec<(Uuid, &import::DonorRow)> = chunk
        .iter()
        .copied()
        .filter_map(|(_, outcome, row)| match (outcome, row) {
            (Outcome::CreateDonor { donor_id, .. }, Some(row)) => Some((*donor_id, &row.donor)),
            _ => None,
        })
        .collect();
    let created = db::insert_donors(tx, source.as_str(), &new_donors).await?;
    let gifts_in_chunk = chunk.iter().filter(|(_, outcome, _)| outcome.creates_gift()).count();
    written.donors += created.len();
    written.gifts += gifts_in_chunk;
    // Before the chunk's gifts check their donors: with the new donors (this transaction's rows count).
    db::analyze_outgrown(tx, to_i64(written.donors), to_i64(written.gifts)).await?;
    // One event for the chunk's donors and one for its gifts, rather than one per row: a consumer applies a
    // chunk in one pass, and 50,000 rows make 50 events instead of 60,000.
    timings.donors += mark.elapsed();
    let mark = Instant::now();
    if !created.is_empty() {
        outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, DonorsUpsertedV1 { donors: created })).await?;
    }
    timings.events += mark.elapsed();
    let mark = Instant::now();

    // The funds the import creates, in the first chunk with a gift in each (funds a resumed commit wrote are found
    // again as known funds, and skipped here).
    let mut funds_needed: Vec<&import::NewFund> = chunk
        .iter()
        .filter(|(_, outcome, _)| outcome.creates_gift())
        .filter_map(|(_, _, row)| row.as_ref().and_then(|r| r.gift.fund_id).and_then(|id| new_funds.get(&id)))
        .collect();
    funds_needed.sort_by_key(|f| f.id);
    funds_needed.dedup_by_key(|f| f.id);
    for fund in db::insert_funds(tx, &funds_needed).await? {
        outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, FundUpsertedV1 { fund })).await?;
    }

    let mut details = Vec::new();
    for (_, outcome, row) in chunk.iter().copied() {
        let (Outcome::CreateDonor { donor_id, gift_id } | Outcome::MatchDonor { donor_id, gift_id, .. }, Some(row)) =
            (outcome, row)
        else {
            continue;
        };
        details.push((*gift_id, gift_details(row, *donor_id, source)?));
    }
    let new_gifts: Vec<(Uuid, &GiftDetails)> = details.iter().map(|(id, d)| (*id, d)).collect();
    // Every gift state the chunk writes: its new gifts, its refund entries and the gifts whose status they
    // change, published together once the chunk is written.
    let mut written_gifts = Vec::new();
    if !new_gifts.is_empty() {
        let stored = gifts::insert_many(tx, &new_gifts, None).await?;
        written_gifts.extend(stored.into_iter().map(|s| s.gift));
    }
    // Gift Aid declarations from the declaration columns, through the same code as POST
    // /v1/donors/{id}/gift-aid-declarations (which publishes no event for them either).
    let today = chrono::Utc::now().date_naive();
    for (_, outcome, row) in chunk.iter().copied() {
        let (Outcome::CreateDonor { donor_id, .. } | Outcome::MatchDonor { donor_id, .. }, Some(row)) = (outcome, row)
        else {
            continue;
        };
        let Some(import::DeclarationRow { date, method, id: Some(id) }) = &row.donor.gift_aid else { continue };
        let text = format!(
            "Imported from {}: the donor's {} Gift Aid declaration of {date}, as recorded there.",
            source.as_str(),
            method.as_str()
        );
        let input = crate::domain::gift_aid::DeclarationInput {
            method: Some(method.as_str()),
            declared_on: Some(*date),
            start_date: Some(*date),
            declaration_text: Some(&text),
            ..Default::default()
        };
        let declaration = crate::domain::gift_aid::Declaration::parse(input, today).map_err(|errors| {
            let fields: Vec<String> = errors.iter().map(|(f, e)| format!("{f}: {e}")).collect();
            anyhow::anyhow!("line {}: the imported declaration is refused: {}", row.line, fields.join("; "))
        })?;
        crate::db::gift_aid::insert(tx, *id, *donor_id, &declaration).await?;
    }
    timings.gifts += mark.elapsed();
    let mark = Instant::now();

    let mut outcomes = Vec::with_capacity(chunk.len());
    for (line, outcome, row) in chunk.iter().copied() {
        let line = i32::try_from(*line).unwrap_or(i32::MAX);
        let written = match (outcome, row) {
            (Outcome::Refund { gift_id, refund_id }, Some(row)) => {
                let refund =
                    Refund { amount_minor: row.gift.amount_minor, date: row.gift.date, reason: row.gift.notes.clone() };
                let recorded =
                    record_refund(tx, tenant_id, *gift_id, &refund, Some(*refund_id), Some(&mut written_gifts)).await;
                refund_outcome(outcome, recorded.map(|_| ()))
                    .with_context(|| format!("line {line}: recording the refund of gift {gift_id}"))?
            }
            _ => outcome.clone(),
        };
        outcomes.push((line, written.kind(), written.describe()));
    }
    timings.refunds += mark.elapsed();
    let mark = Instant::now();
    if !written_gifts.is_empty() {
        outbox::enqueue(tx, &Envelope::new(tenant_id, PRODUCER, GiftsUpsertedV1 { gifts: written_gifts })).await?;
    }
    timings.events += mark.elapsed();
    Ok(outcomes)
}

/// A refund row's outcome once its refund was recorded, or why it could not be. A refund the gift refused (too
/// much, not a succeeded gift) or a gift gone since the rows were decided is the row's error, and nothing was
/// written for it; anything else (the database, a bug) fails the chunk, its whole cause chain kept for the log.
fn refund_outcome(decided: &Outcome, recorded: Result<(), RecordRefundError>) -> anyhow::Result<Outcome> {
    match recorded {
        Ok(()) => Ok(decided.clone()),
        Err(error @ (RecordRefundError::Refused(_) | RecordRefundError::GiftNotFound)) => {
            Ok(Outcome::Error(import::RowError { field: "amount", reason: error.to_string() }))
        }
        Err(error @ (RecordRefundError::Db(_) | RecordRefundError::Unexpected(_))) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RefundError;

    fn refund() -> Outcome {
        Outcome::Refund { gift_id: Uuid::now_v7(), refund_id: Uuid::now_v7() }
    }

    #[test]
    fn a_recorded_refund_keeps_its_decided_outcome() {
        let decided = refund();
        assert_eq!(refund_outcome(&decided, Ok(())).unwrap(), decided);
    }

    #[test]
    fn a_refused_refund_is_the_rows_error() {
        let too_much = RecordRefundError::Refused(RefundError::TooMuch { remaining: 500 });
        let Outcome::Error(error) = refund_outcome(&refund(), Err(too_much)).unwrap() else { panic!("a row error") };
        assert_eq!(
            (error.field, error.reason.as_str()),
            ("amount", "must be at most 500, the amount not yet refunded")
        );
        let pending = RecordRefundError::Refused(RefundError::NotRefundable("pending"));
        let described = refund_outcome(&refund(), Err(pending)).unwrap().describe();
        assert_eq!(described, "error: amount: only a succeeded gift can be refunded; this one is pending");
        let gone = refund_outcome(&refund(), Err(RecordRefundError::GiftNotFound)).unwrap();
        assert_eq!(gone.describe(), "error: amount: gift not found");
    }

    #[test]
    fn an_unexpected_failure_stops_the_chunk_with_its_whole_cause() {
        let cause = anyhow::anyhow!("connection reset by peer").context("inserting the refund entry");
        let error = refund_outcome(&refund(), Err(RecordRefundError::Unexpected(cause))).unwrap_err();
        assert_eq!(format!("{error:#}"), "inserting the refund entry: connection reset by peer");
        let busy = RecordRefundError::Db(almoner_db::DbError::PoolTimeout);
        assert!(refund_outcome(&refund(), Err(busy)).is_err(), "a busy database is no reason to refuse a row");
    }
}
