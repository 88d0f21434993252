//! The ledger: the latest state of each gift, donor and tenant setting, written under a revision guard so that
//! an older or equal revision changes nothing (duplicates and reordering are harmless).
//!
//! Locks: a handler takes, in this order, the tenant lock (shared; `rebuild` and a fiscal-year change take it
//! exclusively), the gift's lock, then the affected donors' locks in id order. Holding a donor's lock until commit
//! means a recomputation reads every committed change to that donor's gifts, and the fixed order rules out
//! deadlocks.

use crate::domain::FiscalYearStart;
use crate::domain::giving::GiftStatus;
use almoner_db::{Result, Transaction};
use chrono::NaiveDate;
use uuid::Uuid;

/// A gift as fundraising last described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiftRecord {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub revision: i64,
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    pub status: GiftStatus,
    pub refund_of: Option<Uuid>,
}

#[tracing::instrument(skip_all)]
pub async fn lock_tenant_shared(tx: &Transaction, tenant_id: Uuid) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))",
        &[&format!("rollup:tenant:{tenant_id}")],
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn lock_tenant_exclusive(tx: &Transaction, tenant_id: Uuid) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&format!("rollup:tenant:{tenant_id}")])
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn lock_gift(tx: &Transaction, gift_id: Uuid) -> Result<()> {
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", &[&format!("rollup:gift:{gift_id}")]).await?;
    Ok(())
}

/// Locks the gifts in id order (duplicates removed), in one statement.
#[tracing::instrument(skip_all, fields(gifts = gifts.len()))]
pub async fn lock_gifts(tx: &Transaction, gifts: &[Uuid]) -> Result<()> {
    lock_in_order(tx, "gift", gifts).await
}

/// Locks the donors in id order (duplicates removed), in one statement.
#[tracing::instrument(skip_all, fields(donors = donors.len()))]
pub async fn lock_donors(tx: &Transaction, donors: &[Uuid]) -> Result<()> {
    lock_in_order(tx, "donor", donors).await
}

/// Takes `rollup:<kind>:<id>` advisory locks in id order: the function scan yields the array's elements in order,
/// and the lock call is evaluated once per element as they come.
async fn lock_in_order(tx: &Transaction, kind: &str, ids: &[Uuid]) -> Result<()> {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    let keys: Vec<String> = sorted.iter().map(|id| format!("rollup:{kind}:{id}")).collect();
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) FROM unnest($1::text[]) AS key", &[&keys])
        .await?;
    Ok(())
}

/// Records that the tenant has ledger rows, so `rebuild` visits it.
#[tracing::instrument(skip_all)]
pub async fn register_tenant(tx: &Transaction, tenant_id: Uuid) -> Result<()> {
    tx.execute("INSERT INTO ledger_tenants (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING", &[&tenant_id]).await?;
    Ok(())
}

/// Every tenant with ledger rows (a system transaction: the table is not tenant-scoped).
#[tracing::instrument(skip_all)]
pub async fn tenants(tx: &Transaction) -> Result<Vec<Uuid>> {
    Ok(tx
        .query("SELECT tenant_id FROM ledger_tenants ORDER BY tenant_id", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The donor a stored gift currently belongs to, if the gift is known.
#[tracing::instrument(skip_all)]
pub async fn stored_gift_donor(tx: &Transaction, gift_id: Uuid) -> Result<Option<Uuid>> {
    Ok(tx.query_opt("SELECT donor_id FROM gifts WHERE gift_id = $1", &[&gift_id]).await?.map(|r| r.get(0)))
}

/// The donors the ledger's stored versions of these gifts belong to (gifts it does not know are skipped).
#[tracing::instrument(skip_all, fields(gifts = gift_ids.len()))]
pub async fn stored_gifts_donors(tx: &Transaction, gift_ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(tx
        .query("SELECT DISTINCT donor_id FROM gifts WHERE gift_id = ANY($1)", &[&gift_ids])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// [`upsert_gift`] for many gifts in one statement; each gift id at most once. Returns how many rows changed.
#[tracing::instrument(skip_all, fields(gifts = gifts.len()))]
pub async fn upsert_gifts(tx: &Transaction, tenant_id: Uuid, gifts: &[&GiftRecord]) -> Result<u64> {
    let ids: Vec<Uuid> = gifts.iter().map(|g| g.gift_id).collect();
    let donors: Vec<Uuid> = gifts.iter().map(|g| g.donor_id).collect();
    let revisions: Vec<i64> = gifts.iter().map(|g| g.revision).collect();
    let amounts: Vec<i64> = gifts.iter().map(|g| g.amount_minor).collect();
    let currencies: Vec<&str> = gifts.iter().map(|g| g.currency.as_str()).collect();
    let dates: Vec<NaiveDate> = gifts.iter().map(|g| g.gift_date).collect();
    let statuses: Vec<&str> = gifts.iter().map(|g| g.status.as_str()).collect();
    let refund_of: Vec<Option<Uuid>> = gifts.iter().map(|g| g.refund_of).collect();
    tx.execute(
        "INSERT INTO gifts AS stored
             (tenant_id, gift_id, donor_id, revision, amount_minor, currency, gift_date, status, refund_of, deleted)
         SELECT $1, g.*, false
         FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[], $7::date[], $8::text[],
                     $9::uuid[]) AS g
         ON CONFLICT (tenant_id, gift_id) DO UPDATE SET
             donor_id = EXCLUDED.donor_id, revision = EXCLUDED.revision, amount_minor = EXCLUDED.amount_minor,
             currency = EXCLUDED.currency, gift_date = EXCLUDED.gift_date, status = EXCLUDED.status,
             refund_of = EXCLUDED.refund_of, deleted = false
         WHERE stored.revision < EXCLUDED.revision",
        &[&tenant_id, &ids, &donors, &revisions, &amounts, &currencies, &dates, &statuses, &refund_of],
    )
    .await
}

/// A gift deletion: (gift id, donor id, revision).
pub type GiftDeletion = (Uuid, Uuid, i64);

/// [`delete_gift`] for many gifts in one statement; each gift id at most once. Returns how many rows changed.
#[tracing::instrument(skip_all, fields(gifts = deletions.len()))]
pub async fn delete_gifts(tx: &Transaction, tenant_id: Uuid, deletions: &[GiftDeletion]) -> Result<u64> {
    let ids: Vec<Uuid> = deletions.iter().map(|d| d.0).collect();
    let donors: Vec<Uuid> = deletions.iter().map(|d| d.1).collect();
    let revisions: Vec<i64> = deletions.iter().map(|d| d.2).collect();
    tx.execute(
        "INSERT INTO gifts AS stored (tenant_id, gift_id, donor_id, revision, deleted)
         SELECT $1, d.*, true FROM unnest($2::uuid[], $3::uuid[], $4::bigint[]) AS d
         ON CONFLICT (tenant_id, gift_id) DO UPDATE SET revision = EXCLUDED.revision, deleted = true
         WHERE stored.revision < EXCLUDED.revision",
        &[&tenant_id, &ids, &donors, &revisions],
    )
    .await
}

/// Stores the gift unless the ledger holds the same or a newer revision; `true` when it changed the ledger.
#[tracing::instrument(skip_all, fields(gift_id = %gift.gift_id, revision = gift.revision))]
pub async fn upsert_gift(tx: &Transaction, tenant_id: Uuid, gift: &GiftRecord) -> Result<bool> {
    let changed = tx
        .execute(
            "INSERT INTO gifts AS stored
                 (tenant_id, gift_id, donor_id, revision, amount_minor, currency, gift_date, status, refund_of, deleted)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false)
             ON CONFLICT (tenant_id, gift_id) DO UPDATE SET
                 donor_id = EXCLUDED.donor_id, revision = EXCLUDED.revision, amount_minor = EXCLUDED.amount_minor,
                 currency = EXCLUDED.currency, gift_date = EXCLUDED.gift_date, status = EXCLUDED.status,
                 refund_of = EXCLUDED.refund_of, deleted = false
             WHERE stored.revision < EXCLUDED.revision",
            &[
                &tenant_id,
                &gift.gift_id,
                &gift.donor_id,
                &gift.revision,
                &gift.amount_minor,
                &gift.currency,
                &gift.gift_date,
                &gift.status.as_str(),
                &gift.refund_of,
            ],
        )
        .await?;
    Ok(changed == 1)
}

/// Marks the gift deleted at `revision` (keeping its details), or leaves a tombstone when it is not known yet so
/// an older upsert arriving later cannot bring it back. `true` when it changed the ledger.
#[tracing::instrument(skip_all, fields(gift_id = %gift_id, revision))]
pub async fn delete_gift(
    tx: &Transaction,
    tenant_id: Uuid,
    gift_id: Uuid,
    donor_id: Uuid,
    revision: i64,
) -> Result<bool> {
    let changed = tx
        .execute(
            "INSERT INTO gifts AS stored (tenant_id, gift_id, donor_id, revision, deleted)
             VALUES ($1, $2, $3, $4, true)
             ON CONFLICT (tenant_id, gift_id) DO UPDATE SET revision = EXCLUDED.revision, deleted = true
             WHERE stored.revision < EXCLUDED.revision",
            &[&tenant_id, &gift_id, &donor_id, &revision],
        )
        .await?;
    Ok(changed == 1)
}

#[tracing::instrument(skip_all, fields(donor_id = %donor_id, revision))]
pub async fn upsert_donor(
    tx: &Transaction,
    tenant_id: Uuid,
    donor_id: Uuid,
    revision: i64,
    display_name: &str,
) -> Result<bool> {
    let changed = tx
        .execute(
            "INSERT INTO donors AS stored (tenant_id, donor_id, revision, display_name, deleted)
             VALUES ($1, $2, $3, $4, false)
             ON CONFLICT (tenant_id, donor_id) DO UPDATE SET
                 revision = EXCLUDED.revision, display_name = EXCLUDED.display_name, deleted = false
             WHERE stored.revision < EXCLUDED.revision",
            &[&tenant_id, &donor_id, &revision, &display_name],
        )
        .await?;
    Ok(changed == 1)
}

#[tracing::instrument(skip_all, fields(donor_id = %donor_id, revision))]
pub async fn delete_donor(tx: &Transaction, tenant_id: Uuid, donor_id: Uuid, revision: i64) -> Result<bool> {
    let changed = tx
        .execute(
            "INSERT INTO donors AS stored (tenant_id, donor_id, revision, deleted)
             VALUES ($1, $2, $3, true)
             ON CONFLICT (tenant_id, donor_id) DO UPDATE SET revision = EXCLUDED.revision, deleted = true
             WHERE stored.revision < EXCLUDED.revision",
            &[&tenant_id, &donor_id, &revision],
        )
        .await?;
    Ok(changed == 1)
}

#[tracing::instrument(skip_all, fields(revision))]
pub async fn upsert_tenant_settings(
    tx: &Transaction,
    tenant_id: Uuid,
    revision: i64,
    fiscal_year_start: FiscalYearStart,
) -> Result<bool> {
    let month = i16::from(fiscal_year_start.month());
    let changed = tx
        .execute(
            "INSERT INTO tenant_settings AS stored (tenant_id, revision, fiscal_year_start_month) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id) DO UPDATE SET
                 revision = EXCLUDED.revision, fiscal_year_start_month = EXCLUDED.fiscal_year_start_month
             WHERE stored.revision < EXCLUDED.revision",
            &[&tenant_id, &revision, &month],
        )
        .await?;
    Ok(changed == 1)
}

/// The tenant's fiscal year start, April when it has not been told.
#[tracing::instrument(skip_all)]
pub async fn fiscal_year_start(tx: &Transaction) -> Result<FiscalYearStart> {
    let month: Option<i16> =
        tx.query_opt("SELECT fiscal_year_start_month FROM tenant_settings", &[]).await?.map(|r| r.get(0));
    Ok(month.and_then(|m| u8::try_from(m).ok()).and_then(FiscalYearStart::new).unwrap_or_default())
}
