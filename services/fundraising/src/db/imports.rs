//! Imports: the stored file and options, the outcome of each row, and what matching needs to know of the tenant.

use crate::domain::import::{
    DeclarationIndex, DonorIndex, FundIndex, GiftIndex, KnownDonor, KnownFund, KnownGift, NewFund,
};
use almoner_db::{Filters, Result, Transaction};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

/// An import as stored, without its file.
#[derive(Debug, Clone)]
pub struct StoredImport {
    pub id: Uuid,
    pub status: String,
    pub options: serde_json::Value,
    pub rows_total: i32,
    pub rows_done: i32,
    pub summary: serde_json::Value,
    pub error: Option<String>,
    /// The object in the storage service the file was read from, when the client named one.
    pub object_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, status, options, rows_total, rows_done, summary, error, object_id, created_at, updated_at";

fn stored(row: &Row) -> StoredImport {
    StoredImport {
        id: row.get("id"),
        status: row.get("status"),
        options: row.get("options"),
        rows_total: row.get("rows_total"),
        rows_done: row.get("rows_done"),
        summary: row.get("summary"),
        error: row.get("error"),
        object_id: row.get("object_id"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// One row's outcome: (line, kind, text).
pub type OutcomeRow = (i32, &'static str, String);

#[tracing::instrument(skip_all, fields(import_id = %id, rows = outcomes.len()))]
pub async fn insert(
    tx: &Transaction,
    id: Uuid,
    options: &serde_json::Value,
    content: &[u8],
    object_id: Option<Uuid>,
    summary: &serde_json::Value,
    outcomes: &[OutcomeRow],
) -> Result<StoredImport> {
    let rows_total = i32::try_from(outcomes.len()).unwrap_or(i32::MAX);
    let sql = format!(
        "INSERT INTO imports (id, options, content, object_id, rows_total, summary) VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING {COLUMNS}"
    );
    let row = tx.query_one(&sql, &[&id, options, &content, &object_id, &rows_total, summary]).await?;
    replace_outcomes(tx, id, outcomes).await?;
    Ok(stored(&row))
}

/// Stores (or replaces) the outcomes of these lines.
#[tracing::instrument(skip_all, fields(import_id = %id, rows = outcomes.len()))]
pub async fn replace_outcomes(tx: &Transaction, id: Uuid, outcomes: &[OutcomeRow]) -> Result<()> {
    let lines: Vec<i32> = outcomes.iter().map(|o| o.0).collect();
    let kinds: Vec<&str> = outcomes.iter().map(|o| o.1).collect();
    let texts: Vec<&str> = outcomes.iter().map(|o| o.2.as_str()).collect();
    tx.execute(
        "INSERT INTO import_outcomes (import_id, line, kind, outcome) \
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[]) \
         ON CONFLICT (tenant_id, import_id, line) DO UPDATE SET kind = EXCLUDED.kind, outcome = EXCLUDED.outcome",
        &[&id, &lines, &kinds, &texts],
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredImport>> {
    Ok(tx.query_opt(&format!("SELECT {COLUMNS} FROM imports WHERE id = $1"), &[&id]).await?.as_ref().map(stored))
}

/// One page of the tenant's imports, newest first, strictly after the cursor's id; only `status` ones if given.
#[tracing::instrument(skip_all)]
pub async fn list(
    tx: &Transaction,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredImport>> {
    let mut filters = Filters::new();
    filters.add_some("status = {}", &status).add_some("id < {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM imports {} ORDER BY id DESC LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(stored).collect())
}

/// Locks the import row until the transaction ends and returns its status.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<String>> {
    Ok(tx.query_opt("SELECT status FROM imports WHERE id = $1 FOR UPDATE", &[&id]).await?.map(|row| row.get(0)))
}

/// Every outcome in line order, as `line,outcome` CSV rows are built from.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn outcomes(tx: &Transaction, id: Uuid) -> Result<Vec<(i32, String)>> {
    Ok(tx
        .query("SELECT line, outcome FROM import_outcomes WHERE import_id = $1 ORDER BY line", &[&id])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}

/// Every donor of the tenant as matching sees it, with its id in `source`.
#[tracing::instrument(skip_all)]
pub async fn donor_index(tx: &Transaction, source: &str) -> Result<DonorIndex> {
    let rows = tx
        .query(
            "SELECT d.id, x.external_id, d.first_name, d.last_name, d.email, d.address_postcode, d.phone \
             FROM donors d LEFT JOIN donor_external_ids x ON x.donor_id = d.id AND x.source = $1 \
             ORDER BY d.id",
            &[&source],
        )
        .await?;
    let mut index = DonorIndex::default();
    for row in &rows {
        index.add(&KnownDonor {
            id: row.get("id"),
            external_id: row.get("external_id"),
            first_name: row.get("first_name"),
            last_name: row.get("last_name"),
            email: row.get("email"),
            postcode: row.get("address_postcode"),
            phone: row.get("phone"),
        });
    }
    Ok(index)
}

/// Every live gift and refund entry of the tenant as duplicate detection sees it; references are those of
/// `source`.
#[tracing::instrument(skip_all)]
pub async fn gift_index(tx: &Transaction, source: &str) -> Result<GiftIndex> {
    let rows = tx
        .query(
            "SELECT id, donor_id, CASE WHEN source = $1 THEN external_reference END AS reference, \
                    abs(amount_minor) AS amount_minor, gift_date, refund_of, status \
             FROM gifts WHERE deleted_at IS NULL ORDER BY id",
            &[&source],
        )
        .await?;
    let mut index = GiftIndex::default();
    for row in &rows {
        index.add(&KnownGift {
            id: row.get("id"),
            donor_id: row.get("donor_id"),
            reference: row.get("reference"),
            amount_minor: row.get("amount_minor"),
            date: row.get("gift_date"),
            refund_of: row.get("refund_of"),
            status: crate::db::gifts::status_of(row.get("status")),
        });
    }
    Ok(index)
}

/// The spans of the tenant's Gift Aid declarations in force (cancelled ones are void), by donor.
#[tracing::instrument(skip_all)]
pub async fn declaration_index(tx: &Transaction) -> Result<DeclarationIndex> {
    let mut index = DeclarationIndex::default();
    for row in tx
        .query("SELECT donor_id, start_date, end_date FROM gift_aid_declarations WHERE cancelled_on IS NULL", &[])
        .await?
    {
        index.add(row.get(0), row.get(1), row.get(2));
    }
    Ok(index)
}

/// Every fund of the tenant, for the `fund` column.
#[tracing::instrument(skip_all)]
pub async fn fund_index(tx: &Transaction) -> Result<FundIndex> {
    let mut index = FundIndex::default();
    for row in tx.query("SELECT id, code, name, archived FROM funds ORDER BY id", &[]).await? {
        index.add(&KnownFund {
            id: row.get("id"),
            code: row.get("code"),
            name: row.get("name"),
            archived: row.get("archived"),
        });
    }
    Ok(index)
}

/// Creates the funds an import chunk's gifts are the first to need, unrestricted, and returns those it created
/// (a fund a resumed commit wrote before is skipped, by id or by code).
#[tracing::instrument(skip_all, fields(funds = new.len()))]
pub async fn insert_funds(tx: &Transaction, new: &[&NewFund]) -> Result<Vec<almoner_events::fundraising::Fund>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = new.iter().map(|f| f.id).collect();
    let codes: Vec<&str> = new.iter().map(|f| f.code.as_str()).collect();
    let names: Vec<&str> = new.iter().map(|f| f.name.as_str()).collect();
    let mut created = Vec::new();
    for row in tx
        .query(
            "INSERT INTO funds (id, code, name, restricted) SELECT i, c, n, false FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(i, c, n) \
             ON CONFLICT DO NOTHING \
             RETURNING id, tenant_id, revision, code, name, restricted, archived, created_at, updated_at",
            &[&ids, &codes, &names],
        )
        .await?
    {
        created.push(almoner_events::fundraising::Fund {
            id: row.get("id"),
            tenant_id: row.get("tenant_id"),
            revision: row.get("revision"),
            code: row.get("code"),
            name: row.get("name"),
            restricted: row.get("restricted"),
            archived: row.get("archived"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        });
    }
    Ok(created)
}

/// Creates the donors of an import chunk (with their id in `source`) and returns them as stored.
#[tracing::instrument(skip_all, fields(donors = new.len()))]
pub async fn insert_donors(
    tx: &Transaction,
    source: &str,
    new: &[(Uuid, &crate::domain::import::DonorRow)],
) -> Result<Vec<almoner_events::fundraising::Donor>> {
    if new.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&crate::domain::import::DonorRow) -> Option<&str>| -> Vec<Option<&str>> {
        new.iter().map(|(_, d)| f(d)).collect()
    };
    let ids: Vec<Uuid> = new.iter().map(|n| n.0).collect();
    let last_names: Vec<&str> = new.iter().map(|(_, d)| d.last_name.as_str()).collect();
    // The inserted rows come back from the INSERT itself: reading them again by id would leave the plan to the
    // statistics, which know nothing yet of a tenant whose donors are all being imported now.
    let sql = format!(
        "INSERT INTO donors AS d (id, title, first_name, last_name, email, phone, address_line1, address_line2, \
         address_town, address_county, address_postcode, address_country) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
                              $8::text[], $9::text[], $10::text[], $11::text[], $12::text[]) \
         RETURNING {}",
        crate::db::donors::RETURNED_COLUMNS
    );
    let rows = tx
        .query(
            &sql,
            &[
                &ids,
                &column(|d| d.title.as_deref()),
                &column(|d| d.first_name.as_deref()),
                &last_names,
                &column(|d| d.email.as_deref()),
                &column(|d| d.phone.as_deref()),
                &column(|d| d.address_line1.as_deref()),
                &column(|d| d.address_line2.as_deref()),
                &column(|d| d.town.as_deref()),
                &column(|d| d.county.as_deref()),
                &column(|d| d.postcode.as_deref()),
                &column(|d| d.country.as_deref()),
            ],
        )
        .await?;
    let with_ids: HashMap<Uuid, &str> =
        new.iter().filter_map(|(id, d)| d.external_id.as_deref().map(|x| (*id, x))).collect();
    let donors = rows
        .iter()
        .map(|row| {
            let mut donor = crate::db::donors::donor(row);
            if let Some(external_id) = with_ids.get(&donor.id) {
                donor.external_ids.insert(source.to_owned(), (*external_id).to_owned());
            }
            donor
        })
        .collect();
    if !with_ids.is_empty() {
        let (donor_ids, external_ids): (Vec<Uuid>, Vec<&str>) = with_ids.into_iter().unzip();
        tx.execute(
            "INSERT INTO donor_external_ids (donor_id, source, external_id) \
             SELECT d, $2, x FROM unnest($1::uuid[], $3::text[]) AS t(d, x)",
            &[&donor_ids, &source, &external_ids],
        )
        .await?;
    }
    Ok(donors)
}

/// Queues a committed import for the importer.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn queue_commit(tx: &Transaction, id: Uuid, tenant_id: Uuid) -> Result<()> {
    tx.execute("UPDATE imports SET status = 'committing', updated_at = now() WHERE id = $1", &[&id]).await?;
    tx.execute("INSERT INTO pending_imports (import_id, tenant_id) VALUES ($1, $2)", &[&id, &tenant_id]).await?;
    Ok(())
}

/// Takes the lease on one pending import whose lease has run out (system transaction): (tenant, import, attempt).
#[tracing::instrument(skip_all)]
pub async fn lease_job(tx: &Transaction, lease: std::time::Duration) -> Result<Option<(Uuid, Uuid, i32)>> {
    Ok(tx
        .query_opt(
            "UPDATE pending_imports SET leased_until = now() + make_interval(secs => $1), attempts = attempts + 1 \
             WHERE import_id = (SELECT import_id FROM pending_imports WHERE leased_until < now() \
                                ORDER BY import_id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING tenant_id, import_id, attempts",
            &[&lease.as_secs_f64()],
        )
        .await?
        .map(|row| (row.get(0), row.get(1), row.get(2))))
}

/// The import's file, for the importer.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn content(tx: &Transaction, id: Uuid) -> Result<Option<Vec<u8>>> {
    Ok(tx.query_opt("SELECT content FROM imports WHERE id = $1", &[&id]).await?.map(|row| row.get(0)))
}

/// The order the commit writes the import's rows in, once its commit has begun (see `domain::import::write_order`).
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn write_order(tx: &Transaction, id: Uuid) -> Result<Option<Vec<i32>>> {
    Ok(tx.query_opt("SELECT write_order FROM imports WHERE id = $1", &[&id]).await?.and_then(|row| row.get(0)))
}

/// Stores the write order when the commit begins.
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn set_write_order(tx: &Transaction, id: Uuid, order: &[i32]) -> Result<()> {
    tx.execute("UPDATE imports SET write_order = $2 WHERE id = $1", &[&id, &order]).await?;
    Ok(())
}

/// Refreshes the statistics of the donor and gift tables when they know fewer than half the rows the import has
/// written so far (see migration 8): plans made without statistics read a whole tenant per foreign-key check.
#[tracing::instrument(skip_all, fields(donors_written, gifts_written))]
pub async fn analyze_outgrown(tx: &Transaction, donors_written: i64, gifts_written: i64) -> Result<()> {
    tx.execute("SELECT almoner_analyze_outgrown($1, $2)", &[&donors_written, &gifts_written]).await?;
    Ok(())
}

/// Records a chunk's progress and renews the lease, in the chunk's transaction.
#[tracing::instrument(skip_all, fields(import_id = %id, rows_done))]
pub async fn progress(tx: &Transaction, id: Uuid, rows_done: i32, lease: std::time::Duration) -> Result<()> {
    tx.execute("UPDATE imports SET rows_done = $2, updated_at = now() WHERE id = $1", &[&id, &rows_done]).await?;
    tx.execute(
        "UPDATE pending_imports SET leased_until = now() + make_interval(secs => $2) WHERE import_id = $1",
        &[&id, &lease.as_secs_f64()],
    )
    .await?;
    Ok(())
}

/// Ends an import (`committed` or `failed`), with its final summary, and takes it off the queue.
#[tracing::instrument(skip_all, fields(import_id = %id, status))]
pub async fn finish(tx: &Transaction, id: Uuid, status: &str, error: Option<&str>) -> Result<()> {
    tx.execute(
        "UPDATE imports SET status = $2, error = $3, updated_at = now(), \
           summary = (SELECT jsonb_object_agg(k.kind, COALESCE(c.n, 0)) \
                      FROM unnest(ARRAY['create_donor','match_donor','duplicate_gift','refund','error']) AS k(kind) \
                      LEFT JOIN (SELECT kind, count(*) AS n FROM import_outcomes WHERE import_id = $1 GROUP BY kind) c \
                        ON c.kind = k.kind) \
         WHERE id = $1",
        &[&id, &status, &error],
    )
    .await?;
    tx.execute("DELETE FROM pending_imports WHERE import_id = $1", &[&id]).await?;
    Ok(())
}
