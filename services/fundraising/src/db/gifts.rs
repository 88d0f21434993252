use crate::domain::split::soft_credit_kind_name;
use crate::domain::{GiftDetails, GiftStatus};
use almoner_db::{Filters, Result, Transaction};
use almoner_events::fundraising::{FundAllocation, Gift, SoftCredit};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

/// A gift as stored: the state its events carry, plus what stays inside fundraising.
#[derive(Debug, Clone)]
pub struct StoredGift {
    pub gift: Gift,
    pub notes: Option<String>,
    /// Not in the event contract: only the Gift Aid schedule uses it.
    pub sponsored_event: bool,
    /// The gift batch it was processed from; not in the event contract either.
    pub batch_id: Option<Uuid>,
}

/// A gift's own columns, without its parts.
macro_rules! own_columns {
    () => {
        "id, tenant_id, donor_id, revision, amount_minor, currency, gift_date, status, payment_method, source, fund, \
         campaign, notes, external_reference, refund_of, pledge_id, sponsored_event, batch_id, created_at, updated_at"
    };
}

/// What a new gift's insert returns: its own columns, and no parts yet (the insert writes them next, and fills
/// them in from the details). Reading them back cost two subqueries per row, a tenth of an import's gift insert.
const NEW_COLUMNS: &str = concat!(own_columns!(), ", '[]'::jsonb AS allocations, '[]'::jsonb AS soft_credits");

const COLUMNS: &str = concat!(
    own_columns!(),
    ", \
    (SELECT COALESCE(jsonb_agg(jsonb_build_object('fund_id', a.fund_id, 'amount_minor', a.amount_minor) \
                               ORDER BY a.fund_id), '[]'::jsonb) \
       FROM gift_allocations a WHERE a.gift_id = gifts.id) AS allocations, \
    (SELECT COALESCE(jsonb_agg(jsonb_build_object('donor_id', s.donor_id, 'amount_minor', s.amount_minor, \
                                                  'kind', s.kind) ORDER BY s.donor_id), '[]'::jsonb) \
       FROM gift_soft_credits s WHERE s.gift_id = gifts.id) AS soft_credits"
);

pub fn status_name(status: GiftStatus) -> &'static str {
    match status {
        GiftStatus::Pending => "pending",
        GiftStatus::Succeeded => "succeeded",
        GiftStatus::Failed => "failed",
        GiftStatus::Refunded => "refunded",
    }
}

pub fn status_of(name: &str) -> GiftStatus {
    match name {
        "pending" => GiftStatus::Pending,
        "failed" => GiftStatus::Failed,
        "refunded" => GiftStatus::Refunded,
        _ => GiftStatus::Succeeded,
    }
}

fn stored(row: &Row) -> StoredGift {
    let status: String = row.get("status");
    let allocations: serde_json::Value = row.get("allocations");
    let soft_credits: serde_json::Value = row.get("soft_credits");
    StoredGift {
        gift: Gift {
            id: row.get("id"),
            tenant_id: row.get("tenant_id"),
            donor_id: row.get("donor_id"),
            revision: row.get("revision"),
            amount_minor: row.get("amount_minor"),
            currency: row.get("currency"),
            gift_date: row.get("gift_date"),
            status: status_of(&status),
            payment_method: row.get("payment_method"),
            source: row.get("source"),
            fund: row.get("fund"),
            campaign: row.get("campaign"),
            external_reference: row.get("external_reference"),
            refund_of: row.get("refund_of"),
            allocations: serde_json::from_value(allocations).unwrap_or_default(),
            soft_credits: serde_json::from_value(soft_credits).unwrap_or_default(),
            pledge_id: row.get("pledge_id"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        },
        notes: row.get("notes"),
        sponsored_event: row.get("sponsored_event"),
        batch_id: row.get("batch_id"),
    }
}

/// A gift row to insert: a gift, or a refund entry (negative amount, `refund_of` set).
pub struct NewGift<'a> {
    pub id: Uuid,
    pub details: &'a GiftDetails,
    /// Negative for a refund entry.
    pub amount_minor: i64,
    pub refund_of: Option<Uuid>,
}

#[tracing::instrument(skip_all, fields(gift_id = %new.id))]
pub async fn insert(tx: &Transaction, new: &NewGift<'_>) -> Result<StoredGift> {
    let d = new.details;
    let sql = format!(
        "INSERT INTO gifts (id, donor_id, amount_minor, currency, gift_date, status, payment_method, source, fund, \
         campaign, notes, external_reference, refund_of, pledge_id, sponsored_event) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {NEW_COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &new.id,
                &d.donor_id,
                &new.amount_minor,
                &d.currency.code(),
                &d.gift_date,
                &status_name(d.status),
                &d.payment_method,
                &d.source.as_str(),
                &d.fund,
                &d.campaign,
                &d.notes,
                &d.external_reference,
                &new.refund_of,
                &d.pledge_id,
                &d.sponsored_event,
            ],
        )
        .await?;
    let mut gift = stored(&row);
    write_parts(tx, &[(new.id, d)]).await?;
    // The row was returned before its parts were written.
    fill_parts(&mut gift, d);
    Ok(gift)
}

fn fill_parts(stored: &mut StoredGift, d: &GiftDetails) {
    let d = d.clone().normalised();
    stored.gift.allocations = d.allocations;
    stored.gift.soft_credits = d.soft_credits;
}

/// Writes the allocations and soft credits of these gifts (which have none yet), in two statements.
async fn write_parts(tx: &Transaction, gifts: &[(Uuid, &GiftDetails)]) -> Result<()> {
    let allocations: Vec<(Uuid, &FundAllocation)> =
        gifts.iter().flat_map(|(id, d)| d.allocations.iter().map(move |a| (*id, a))).collect();
    if !allocations.is_empty() {
        let ids: Vec<Uuid> = allocations.iter().map(|a| a.0).collect();
        let funds: Vec<Uuid> = allocations.iter().map(|a| a.1.fund_id).collect();
        let amounts: Vec<i64> = allocations.iter().map(|a| a.1.amount_minor).collect();
        tx.execute(
            "INSERT INTO gift_allocations (gift_id, fund_id, amount_minor) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[])",
            &[&ids, &funds, &amounts],
        )
        .await?;
    }
    let credits: Vec<(Uuid, &SoftCredit)> =
        gifts.iter().flat_map(|(id, d)| d.soft_credits.iter().map(move |c| (*id, c))).collect();
    if !credits.is_empty() {
        let ids: Vec<Uuid> = credits.iter().map(|c| c.0).collect();
        let donors: Vec<Uuid> = credits.iter().map(|c| c.1.donor_id).collect();
        let amounts: Vec<i64> = credits.iter().map(|c| c.1.amount_minor).collect();
        let kinds: Vec<&str> = credits.iter().map(|c| soft_credit_kind_name(c.1.kind)).collect();
        tx.execute(
            "INSERT INTO gift_soft_credits (gift_id, donor_id, amount_minor, kind) \
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[])",
            &[&ids, &donors, &amounts, &kinds],
        )
        .await?;
    }
    Ok(())
}

/// What a gift's live refund entries have taken back of each of its allocations (by fund) and soft credits (by
/// donor), as positive amounts.
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn refunded_parts(tx: &Transaction, id: Uuid) -> Result<(HashMap<Uuid, i64>, HashMap<Uuid, i64>)> {
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
    let (allocations, credits) = futures::join!(
        tx.query(
            "SELECT a.fund_id, (-sum(a.amount_minor))::bigint FROM gift_allocations a \
             JOIN gifts r ON r.id = a.gift_id WHERE r.refund_of = $1 AND r.deleted_at IS NULL GROUP BY a.fund_id",
            &params,
        ),
        tx.query(
            "SELECT s.donor_id, (-sum(s.amount_minor))::bigint FROM gift_soft_credits s \
             JOIN gifts r ON r.id = s.gift_id WHERE r.refund_of = $1 AND r.deleted_at IS NULL GROUP BY s.donor_id",
            &params,
        )
    );
    let pairs = |rows: Vec<Row>| rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    Ok((pairs(allocations?), pairs(credits?)))
}

/// Inserts many new gifts (not refund entries) in one statement, all from `batch_id` when processing a gift batch;
/// returns them in no particular order.
#[tracing::instrument(skip_all, fields(gifts = new.len()))]
pub async fn insert_many(
    tx: &Transaction,
    new: &[(Uuid, &GiftDetails)],
    batch_id: Option<Uuid>,
) -> Result<Vec<StoredGift>> {
    let ids: Vec<Uuid> = new.iter().map(|n| n.0).collect();
    let donors: Vec<Uuid> = new.iter().map(|n| n.1.donor_id).collect();
    let amounts: Vec<i64> = new.iter().map(|n| n.1.amount_minor).collect();
    let currencies: Vec<&str> = new.iter().map(|n| n.1.currency.code()).collect();
    let dates: Vec<NaiveDate> = new.iter().map(|n| n.1.gift_date).collect();
    let statuses: Vec<&str> = new.iter().map(|n| status_name(n.1.status)).collect();
    let methods: Vec<Option<&str>> = new.iter().map(|n| n.1.payment_method.as_deref()).collect();
    let sources: Vec<&str> = new.iter().map(|n| n.1.source.as_str()).collect();
    let funds: Vec<Option<&str>> = new.iter().map(|n| n.1.fund.as_deref()).collect();
    let campaigns: Vec<Option<&str>> = new.iter().map(|n| n.1.campaign.as_deref()).collect();
    let notes: Vec<Option<&str>> = new.iter().map(|n| n.1.notes.as_deref()).collect();
    let references: Vec<Option<&str>> = new.iter().map(|n| n.1.external_reference.as_deref()).collect();
    let pledges: Vec<Option<Uuid>> = new.iter().map(|n| n.1.pledge_id).collect();
    let sponsored: Vec<bool> = new.iter().map(|n| n.1.sponsored_event).collect();
    let sql = format!(
        "INSERT INTO gifts (id, donor_id, amount_minor, currency, gift_date, status, payment_method, source, fund, \
         campaign, notes, external_reference, pledge_id, sponsored_event, batch_id) \
         SELECT *, $15::uuid FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::date[], $6::text[], \
                              $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::uuid[], \
                              $14::boolean[]) \
         RETURNING {NEW_COLUMNS}"
    );
    let rows = tx
        .query(
            &sql,
            &[
                &ids,
                &donors,
                &amounts,
                &currencies,
                &dates,
                &statuses,
                &methods,
                &sources,
                &funds,
                &campaigns,
                &notes,
                &references,
                &pledges,
                &sponsored,
                &batch_id,
            ],
        )
        .await?;
    write_parts(tx, new).await?;
    let details: HashMap<Uuid, &GiftDetails> = new.iter().map(|(id, d)| (*id, *d)).collect();
    Ok(rows
        .iter()
        .map(|row| {
            let mut gift = stored(row);
            if let Some(d) = details.get(&gift.gift.id) {
                fill_parts(&mut gift, d);
            }
            gift
        })
        .collect())
}

/// Which of these (source, external reference) pairs a live gift already carries.
#[tracing::instrument(skip_all, fields(pairs = pairs.len()))]
pub async fn references_taken(tx: &Transaction, pairs: &[(&str, &str)]) -> Result<Vec<(String, String)>> {
    let (sources, references): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
    Ok(tx
        .query(
            "SELECT g.source, g.external_reference FROM gifts g \
             JOIN unnest($1::text[], $2::text[]) AS p(source, reference) \
               ON g.source = p.source AND g.external_reference = p.reference \
             WHERE g.deleted_at IS NULL",
            &[&sources, &references],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Replaces a gift's details (not its amount's sign or `refund_of`) and moves it to the next revision.
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, d: &GiftDetails, amount_minor: i64) -> Result<StoredGift> {
    tx.execute("DELETE FROM gift_allocations WHERE gift_id = $1", &[&id]).await?;
    tx.execute("DELETE FROM gift_soft_credits WHERE gift_id = $1", &[&id]).await?;
    write_parts(tx, &[(id, d)]).await?;
    let sql = format!(
        "UPDATE gifts SET donor_id = $2, amount_minor = $3, currency = $4, gift_date = $5, status = $6, \
         payment_method = $7, source = $8, fund = $9, campaign = $10, notes = $11, external_reference = $12, \
         pledge_id = $13, sponsored_event = $14, revision = revision + 1, updated_at = now() \
         WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &id,
                &d.donor_id,
                &amount_minor,
                &d.currency.code(),
                &d.gift_date,
                &status_name(d.status),
                &d.payment_method,
                &d.source.as_str(),
                &d.fund,
                &d.campaign,
                &d.notes,
                &d.external_reference,
                &d.pledge_id,
                &d.sponsored_event,
            ],
        )
        .await?;
    Ok(stored(&row))
}

/// Sets a gift's status, moving it to the next revision.
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn set_status(tx: &Transaction, id: Uuid, status: GiftStatus) -> Result<StoredGift> {
    let sql = format!(
        "UPDATE gifts SET status = $2, revision = revision + 1, updated_at = now() \
         WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}"
    );
    Ok(stored(&tx.query_one(&sql, &[&id, &status_name(status)]).await?))
}

#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredGift>> {
    let sql = format!("SELECT {COLUMNS} FROM gifts WHERE id = $1 AND deleted_at IS NULL");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// Reads a live gift and locks it until the transaction ends: changes, refunds and deletion of one gift apply
/// one at a time, so revisions and refund totals stay consistent.
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredGift>> {
    let sql = format!("SELECT {COLUMNS} FROM gifts WHERE id = $1 AND deleted_at IS NULL FOR UPDATE");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// What the live refund entries of a gift have given back, as a positive total.
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn refunded_total(tx: &Transaction, id: Uuid) -> Result<i64> {
    Ok(tx
        .query_one(
            "SELECT COALESCE(-sum(amount_minor), 0)::bigint FROM gifts WHERE refund_of = $1 AND deleted_at IS NULL",
            &[&id],
        )
        .await?
        .get(0))
}

/// Marks a gift deleted and moves it to the next revision; returns its final state and the deletion time.
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn delete(tx: &Transaction, id: Uuid) -> Result<Option<(StoredGift, DateTime<Utc>)>> {
    let sql = format!(
        "UPDATE gifts SET deleted_at = now(), revision = revision + 1, updated_at = now() \
         WHERE id = $1 AND deleted_at IS NULL RETURNING {COLUMNS}, deleted_at"
    );
    Ok(tx.query_opt(&sql, &[&id]).await?.map(|row| (stored(&row), row.get("deleted_at"))))
}

/// Whether another live gift of the same source already carries this external reference.
#[tracing::instrument(skip_all)]
pub async fn reference_taken(tx: &Transaction, source: &str, reference: &str, except: Option<Uuid>) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM gifts WHERE source = $1 AND external_reference = $2 \
             AND deleted_at IS NULL AND ($3::uuid IS NULL OR id <> $3))",
            &[&source, &reference, &except],
        )
        .await?
        .get(0))
}

/// What a gift search may filter on; every filter given must match.
#[derive(Debug, Default)]
pub struct GiftFilter {
    pub donor_id: Option<Uuid>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub status: Option<&'static str>,
    pub fund: Option<String>,
    pub source: Option<String>,
    pub batch_id: Option<Uuid>,
}

/// One page, newest gift date first, strictly after the cursor position.
#[tracing::instrument(skip_all)]
pub async fn list(
    tx: &Transaction,
    filter: &GiftFilter,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> Result<Vec<StoredGift>> {
    let mut filters = Filters::new();
    filters.add_condition("deleted_at IS NULL");
    let after_date = after.map(|a| a.0);
    let after_id = after.map(|a| a.1);
    if let (Some(date), Some(id)) = (&after_date, &after_id) {
        let (date, id) = (filters.param(date), filters.param(id));
        filters.add_condition(format!("(gift_date, id) < ({date}, {id})"));
    }
    filters
        .add_some("donor_id = {}", &filter.donor_id)
        .add_some("gift_date >= {}", &filter.from)
        .add_some("gift_date <= {}", &filter.to)
        .add_some("status = {}", &filter.status)
        .add_some("fund = {}", &filter.fund)
        .add_some("source = {}", &filter.source)
        .add_some("batch_id = {}", &filter.batch_id);
    let limit = filters.param(&limit);
    let sql =
        format!("SELECT {COLUMNS} FROM gifts{} ORDER BY gift_date DESC, id DESC LIMIT {limit}", filters.where_clause());
    let rows = tx.query(&sql, filters.params()).await?;
    Ok(rows.iter().map(stored).collect())
}

/// Every live gift of the transaction's tenant dated on or after `since`, in id order, a batch at a time
/// (for `fundraising replay`).
#[tracing::instrument(skip_all)]
pub async fn batch_after(
    tx: &Transaction,
    since: Option<NaiveDate>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredGift>> {
    let mut filters = Filters::new();
    filters.add_condition("deleted_at IS NULL");
    filters.add_some("gift_date >= {}", &since).add_some("id > {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM gifts{} ORDER BY id LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(stored).collect())
}

/// Marks a gift as one whose Gift Aid the platform it came through claims (JustGiving): no claim takes it.
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn mark_gift_aid_claimed_by_platform(tx: &Transaction, id: Uuid) -> Result<()> {
    tx.execute("UPDATE gifts SET gift_aid_claimed_by_platform = true WHERE id = $1", &[&id]).await?;
    Ok(())
}
