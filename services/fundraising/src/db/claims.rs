//! Gift Aid claims: gathering eligible gifts, the claim's lifecycle, and its gifts and exclusions.

use crate::db::gift_aid::{DONOR_FACT_COLUMNS, declarations_of_donors, donor_facts, gift_facts};
use crate::domain::gift_aid::{DeclarationOnFile, DonorFacts, GiftFacts};
use crate::domain::hmrc::{self, ScheduleDonor};
use almoner_db::{Result, Transaction};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

/// A claim as stored, with its totals.
#[derive(Debug, Clone)]
pub struct StoredClaim {
    pub id: Uuid,
    pub revision: i64,
    pub status: String,
    pub up_to: NaiveDate,
    pub hmrc_reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub answered_on: Option<NaiveDate>,
    pub gifts: i64,
    pub amount_minor: i64,
    pub rejected: i64,
    pub rejected_amount_minor: i64,
    pub exclusions: i64,
}

const CLAIM: &str = "SELECT c.id, c.revision, c.status, c.up_to, c.hmrc_reference, c.created_at, c.submitted_at, \
    c.answered_on, \
    (SELECT count(*) FROM gift_aid_claim_gifts g WHERE g.claim_id = c.id AND g.state = 'included') AS gifts, \
    (SELECT COALESCE(sum(amount_minor), 0)::bigint FROM gift_aid_claim_gifts g \
      WHERE g.claim_id = c.id AND g.state = 'included') AS amount_minor, \
    (SELECT count(*) FROM gift_aid_claim_gifts g WHERE g.claim_id = c.id AND g.state = 'rejected') AS rejected, \
    (SELECT COALESCE(sum(amount_minor), 0)::bigint FROM gift_aid_claim_gifts g \
      WHERE g.claim_id = c.id AND g.state = 'rejected') AS rejected_amount_minor, \
    (SELECT count(*) FROM gift_aid_claim_exclusions x WHERE x.claim_id = c.id) AS exclusions \
    FROM gift_aid_claims c";

fn claim(row: &Row) -> StoredClaim {
    StoredClaim {
        id: row.get("id"),
        revision: row.get("revision"),
        status: row.get("status"),
        up_to: row.get("up_to"),
        hmrc_reference: row.get("hmrc_reference"),
        created_at: row.get("created_at"),
        submitted_at: row.get("submitted_at"),
        answered_on: row.get("answered_on"),
        gifts: row.get("gifts"),
        amount_minor: row.get("amount_minor"),
        rejected: row.get("rejected"),
        rejected_amount_minor: row.get("rejected_amount_minor"),
        exclusions: row.get("exclusions"),
    }
}

/// Serialises claim gathering within a tenant, so two claims cannot both take a gift (the unique index would
/// refuse the second anyway; this makes it wait and gather what is left instead).
#[tracing::instrument(skip_all)]
pub async fn lock_gathering(tx: &Transaction, tenant_id: Uuid) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&format!("fundraising:gift_aid_claims:{tenant_id}")],
    )
    .await?;
    Ok(())
}

/// A gift that could go into a claim, with what eligibility is judged on.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub gift: GiftFacts,
}

/// The gifts a claim could take, with what their eligibility is judged on.
pub struct Candidates {
    pub gifts: Vec<Candidate>,
    pub donors: HashMap<Uuid, DonorFacts>,
    pub declarations: HashMap<Uuid, Vec<DeclarationOnFile>>,
}

/// Every live gift dated on or before `up_to` that is not a refund entry and not in a claim already, oldest
/// first, with its donor's facts and declarations.
#[tracing::instrument(skip_all)]
pub async fn candidates(tx: &Transaction, up_to: NaiveDate) -> Result<Candidates> {
    let rows = tx
        .query(
            "SELECT g.id, g.donor_id, g.gift_date, g.amount_minor, g.currency, g.status, g.source, \
                    g.gift_aid_claimed_by_platform AS claimed_by_platform, false AS is_refund, COALESCE(r.refunded, 0)::bigint AS refunded \
             FROM gifts g \
             LEFT JOIN (SELECT refund_of, sum(amount_minor) AS refunded FROM gifts \
                        WHERE refund_of IS NOT NULL AND deleted_at IS NULL GROUP BY refund_of) r ON r.refund_of = g.id \
             WHERE g.deleted_at IS NULL AND g.refund_of IS NULL AND g.gift_date <= $1 \
               AND NOT EXISTS (SELECT 1 FROM gift_aid_claim_gifts c WHERE c.gift_id = g.id AND c.state = 'included') \
             ORDER BY g.gift_date, g.id",
            &[&up_to],
        )
        .await?;
    let candidates: Vec<Candidate> = rows
        .iter()
        .map(|row| Candidate { gift_id: row.get("id"), donor_id: row.get("donor_id"), gift: gift_facts(row, None) })
        .collect();
    let mut donor_ids: Vec<Uuid> = candidates.iter().map(|c| c.donor_id).collect();
    donor_ids.sort_unstable();
    donor_ids.dedup();
    let donors = tx
        .query(&format!("SELECT d.id, {DONOR_FACT_COLUMNS} FROM donors d WHERE d.id = ANY($1)"), &[&donor_ids])
        .await?
        .iter()
        .map(|row| (row.get("id"), donor_facts(row)))
        .collect();
    let declarations = declarations_of_donors(tx, &donor_ids).await?;
    Ok(Candidates { gifts: candidates, donors, declarations })
}

/// A gift going into a claim, with its donor as the schedule will show them.
pub struct Included {
    pub gift_id: Uuid,
    pub declaration_id: Uuid,
    pub amount_minor: i64,
    pub donor: ScheduleDonor,
}

#[tracing::instrument(skip_all, fields(claim_id = %id, gifts = included.len(), excluded = excluded.len()))]
pub async fn insert(
    tx: &Transaction,
    id: Uuid,
    up_to: NaiveDate,
    included: &[Included],
    excluded: &[(Uuid, serde_json::Value)],
) -> Result<()> {
    tx.execute("INSERT INTO gift_aid_claims (id, up_to) VALUES ($1, $2)", &[&id, &up_to]).await?;
    let gifts: Vec<Uuid> = included.iter().map(|i| i.gift_id).collect();
    let declarations: Vec<Uuid> = included.iter().map(|i| i.declaration_id).collect();
    let amounts: Vec<i64> = included.iter().map(|i| i.amount_minor).collect();
    let titles: Vec<Option<&str>> = included.iter().map(|i| i.donor.title.as_deref()).collect();
    let first_names: Vec<&str> = included.iter().map(|i| i.donor.first_name.as_str()).collect();
    let last_names: Vec<&str> = included.iter().map(|i| i.donor.last_name.as_str()).collect();
    let houses: Vec<&str> = included.iter().map(|i| i.donor.house.as_str()).collect();
    let postcodes: Vec<Option<&str>> = included.iter().map(|i| i.donor.postcode.as_deref()).collect();
    tx.execute(
        "INSERT INTO gift_aid_claim_gifts (claim_id, gift_id, declaration_id, amount_minor, donor_title, \
             donor_first_name, donor_last_name, donor_house, donor_postcode) \
         SELECT $1, * FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[])",
        &[&id, &gifts, &declarations, &amounts, &titles, &first_names, &last_names, &houses, &postcodes],
    )
    .await?;
    let excluded_ids: Vec<Uuid> = excluded.iter().map(|e| e.0).collect();
    let reasons: Vec<&serde_json::Value> = excluded.iter().map(|e| &e.1).collect();
    tx.execute(
        "INSERT INTO gift_aid_claim_exclusions (claim_id, gift_id, reasons) \
         SELECT $1, * FROM unnest($2::uuid[], $3::jsonb[])",
        &[&id, &excluded_ids, &reasons],
    )
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredClaim>> {
    Ok(tx.query_opt(&format!("{CLAIM} WHERE c.id = $1"), &[&id]).await?.as_ref().map(claim))
}

/// Locks the claim row until the transaction ends and returns its status.
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<String>> {
    Ok(tx.query_opt("SELECT status FROM gift_aid_claims WHERE id = $1 FOR UPDATE", &[&id]).await?.map(|row| row.get(0)))
}

/// Claims, newest first, after the cursor's claim.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<StoredClaim>> {
    let mut filters = almoner_db::Filters::new();
    filters.add_some("c.id < {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("{CLAIM}{} ORDER BY c.id DESC LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(claim).collect())
}

/// Rows of `select` (joined with `gifts g`) for the claim, in gift date order after `after`.
async fn page(
    tx: &Transaction,
    select: &str,
    claim_column: &str,
    claim_id: Uuid,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> Result<Vec<Row>> {
    let mut filters = almoner_db::Filters::new();
    filters.add(&format!("{claim_column} = {{}}"), &claim_id);
    let (after_date, after_id) = (after.map(|a| a.0), after.map(|a| a.1));
    if let (Some(date), Some(id)) = (&after_date, &after_id) {
        let (date, id) = (filters.param(date), filters.param(id));
        filters.add_condition(format!("(g.gift_date, g.id) > ({date}, {id})"));
    }
    let limit = filters.param(&limit);
    let sql = format!("{select}{} ORDER BY g.gift_date, g.id LIMIT {limit}", filters.where_clause());
    tx.query(&sql, filters.params()).await
}

/// One gift of a claim, with what it was claimed on.
#[derive(Debug, Clone)]
pub struct ClaimGift {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub gift_date: NaiveDate,
    pub amount_minor: i64,
    pub declaration_id: Uuid,
    pub state: String,
    pub rejection: Option<String>,
}

/// A claim's gifts (included and rejected) in gift date order, after the cursor `(gift_date, gift_id)`.
#[tracing::instrument(skip_all, fields(claim_id = %claim_id))]
pub async fn gifts(
    tx: &Transaction,
    claim_id: Uuid,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> Result<Vec<ClaimGift>> {
    Ok(page(
        tx,
        "SELECT c.gift_id, g.donor_id, g.gift_date, c.amount_minor, c.declaration_id, c.state, c.rejection \
         FROM gift_aid_claim_gifts c JOIN gifts g ON g.id = c.gift_id",
        "c.claim_id",
        claim_id,
        after,
        limit,
    )
    .await?
    .iter()
    .map(|row| ClaimGift {
        gift_id: row.get("gift_id"),
        donor_id: row.get("donor_id"),
        gift_date: row.get("gift_date"),
        amount_minor: row.get("amount_minor"),
        declaration_id: row.get("declaration_id"),
        state: row.get("state"),
        rejection: row.get("rejection"),
    })
    .collect())
}

/// One gift left out of a claim, and why.
#[derive(Debug, Clone)]
pub struct Exclusion {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub gift_date: NaiveDate,
    pub amount_minor: i64,
    pub reasons: serde_json::Value,
}

/// A claim's exclusions in gift date order, after the cursor `(gift_date, gift_id)`.
#[tracing::instrument(skip_all, fields(claim_id = %claim_id))]
pub async fn exclusions(
    tx: &Transaction,
    claim_id: Uuid,
    after: Option<(NaiveDate, Uuid)>,
    limit: i64,
) -> Result<Vec<Exclusion>> {
    Ok(page(
        tx,
        "SELECT x.gift_id, g.donor_id, g.gift_date, g.amount_minor, x.reasons \
         FROM gift_aid_claim_exclusions x JOIN gifts g ON g.id = x.gift_id",
        "x.claim_id",
        claim_id,
        after,
        limit,
    )
    .await?
    .iter()
    .map(|row| Exclusion {
        gift_id: row.get("gift_id"),
        donor_id: row.get("donor_id"),
        gift_date: row.get("gift_date"),
        amount_minor: row.get("amount_minor"),
        reasons: row.get("reasons"),
    })
    .collect())
}

/// Takes a gift out of a claim; `false` when it was not in it.
#[tracing::instrument(skip_all, fields(claim_id = %claim_id, gift_id = %gift_id))]
pub async fn remove_gift(tx: &Transaction, claim_id: Uuid, gift_id: Uuid) -> Result<bool> {
    Ok(tx
        .execute("DELETE FROM gift_aid_claim_gifts WHERE claim_id = $1 AND gift_id = $2", &[&claim_id, &gift_id])
        .await?
        == 1)
}

#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn delete(tx: &Transaction, id: Uuid) -> Result<()> {
    tx.execute("DELETE FROM gift_aid_claims WHERE id = $1", &[&id]).await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn submit(tx: &Transaction, id: Uuid, hmrc_reference: Option<&str>) -> Result<()> {
    tx.execute(
        "UPDATE gift_aid_claims SET status = 'submitted', submitted_at = now(), hmrc_reference = $2, \
         revision = revision + 1, updated_at = now() WHERE id = $1",
        &[&id, &hmrc_reference],
    )
    .await?;
    Ok(())
}

/// Records HMRC's answer: the rejected gifts (which must be in the claim) go back to the pool. Returns the ids of
/// `rejected` that were not included in the claim.
#[tracing::instrument(skip_all, fields(claim_id = %id, rejected = rejected.len()))]
pub async fn answer(
    tx: &Transaction,
    id: Uuid,
    answered_on: NaiveDate,
    rejected: &[(Uuid, String)],
) -> Result<Vec<Uuid>> {
    let gift_ids: Vec<Uuid> = rejected.iter().map(|r| r.0).collect();
    let reasons: Vec<&str> = rejected.iter().map(|r| r.1.as_str()).collect();
    let marked: Vec<Uuid> = tx
        .query(
            "UPDATE gift_aid_claim_gifts c SET state = 'rejected', rejection = r.reason \
             FROM unnest($2::uuid[], $3::text[]) AS r(gift_id, reason) \
             WHERE c.claim_id = $1 AND c.gift_id = r.gift_id AND c.state = 'included' RETURNING c.gift_id",
            &[&id, &gift_ids, &reasons],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let missing: Vec<Uuid> = gift_ids.iter().filter(|g| !marked.contains(g)).copied().collect();
    let status = if rejected.is_empty() { "paid" } else { "partly_rejected" };
    tx.execute(
        "UPDATE gift_aid_claims SET status = $2, answered_on = $3, revision = revision + 1, updated_at = now() \
         WHERE id = $1",
        &[&id, &status, &answered_on],
    )
    .await?;
    Ok(missing)
}

/// The included gifts of a claim as the HMRC schedule needs them: each donor as they were when the claim was
/// gathered. A claim gathered before donors were kept with it has no such record; its donors are read as they are
/// now, with HMRC's rules applied here.
#[tracing::instrument(skip_all, fields(claim_id = %claim_id))]
pub async fn schedule_donations(tx: &Transaction, claim_id: Uuid) -> Result<Vec<hmrc::Donation>> {
    use crate::domain::gift_aid::house_name_or_number;
    let sql = format!(
        "SELECT c.donor_title, c.donor_first_name, c.donor_last_name, c.donor_house, c.donor_postcode, \
                g.gift_date, c.amount_minor, g.sponsored_event, {DONOR_FACT_COLUMNS} \
         FROM gift_aid_claim_gifts c JOIN gifts g ON g.id = c.gift_id JOIN donors d ON d.id = g.donor_id \
         WHERE c.claim_id = $1 AND c.state = 'included' ORDER BY g.gift_date, g.id"
    );
    Ok(tx
        .query(&sql, &[&claim_id])
        .await?
        .iter()
        .map(|row| {
            let kept: Option<String> = row.get("donor_last_name");
            let donor = match kept {
                Some(last_name) => ScheduleDonor {
                    title: row.get("donor_title"),
                    first_name: row.get::<_, Option<String>>("donor_first_name").unwrap_or_default(),
                    last_name,
                    house: row.get::<_, Option<String>>("donor_house").unwrap_or_default(),
                    postcode: row.get("donor_postcode"),
                },
                None => {
                    let facts = donor_facts(row);
                    ScheduleDonor {
                        title: hmrc::title(facts.title.as_deref()),
                        first_name: facts.first_name.as_deref().map(hmrc::first_name).unwrap_or_default(),
                        last_name: hmrc::last_name(&facts.last_name),
                        house: facts
                            .address_line1
                            .as_deref()
                            .and_then(house_name_or_number)
                            .map(|h| hmrc::house(&h))
                            .unwrap_or_default(),
                        postcode: if facts.overseas {
                            None
                        } else {
                            Some(facts.uk_postcode.as_deref().and_then(hmrc::postcode).unwrap_or_default())
                        },
                    }
                }
            };
            hmrc::Donation {
                donor,
                date: row.get("gift_date"),
                amount_minor: row.get("amount_minor"),
                sponsored: row.get("sponsored_event"),
            }
        })
        .collect())
}

/// A schedule file's record: where its bytes are (an object in storage, or still `content` here for a file
/// exported before files moved to storage), its size and SHA-256.
#[derive(Debug, Clone)]
pub struct StoredFile {
    pub id: Uuid,
    pub export_id: Uuid,
    pub format: String,
    pub part: i32,
    pub parts: i32,
    pub rows: i32,
    /// The object in storage holding the bytes; `None` while they are still here.
    pub object_id: Option<Uuid>,
    pub bytes: i64,
    pub sha256: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

const FILE_COLUMNS: &str = "id, export_id, format, part, parts, rows, object_id, \
    COALESCE(size_bytes, octet_length(content)::bigint) AS bytes, sha256, created_at";

fn file(row: &Row) -> StoredFile {
    StoredFile {
        id: row.get("id"),
        export_id: row.get("export_id"),
        format: row.get("format"),
        part: row.get("part"),
        parts: row.get("parts"),
        rows: row.get("rows"),
        object_id: row.get("object_id"),
        bytes: row.get("bytes"),
        sha256: row.get("sha256"),
        created_at: row.get("created_at"),
    }
}

/// A file stored in storage, to record.
pub struct NewFile<'a> {
    pub format: &'a str,
    pub part: i32,
    pub parts: i32,
    pub rows: i32,
    pub object_id: Uuid,
    pub size_bytes: i64,
    /// The SHA-256 fundraising computed of the bytes it wrote (storage's own agreed).
    pub sha256: &'a [u8],
}

#[tracing::instrument(skip_all, fields(claim_id = %claim_id, export_id = %export_id, object_id = %new.object_id))]
pub async fn record_file(tx: &Transaction, claim_id: Uuid, export_id: Uuid, new: &NewFile<'_>) -> Result<StoredFile> {
    let sql = format!(
        "INSERT INTO gift_aid_claim_files \
         (id, claim_id, export_id, format, part, parts, rows, object_id, size_bytes, sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {FILE_COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &Uuid::now_v7(),
                &claim_id,
                &export_id,
                &new.format,
                &new.part,
                &new.parts,
                &new.rows,
                &new.object_id,
                &new.size_bytes,
                &new.sha256,
            ],
        )
        .await?;
    Ok(file(&row))
}

/// Every file exported from a claim, oldest first.
#[tracing::instrument(skip_all, fields(claim_id = %claim_id))]
pub async fn files(tx: &Transaction, claim_id: Uuid) -> Result<Vec<StoredFile>> {
    let sql = format!("SELECT {FILE_COLUMNS} FROM gift_aid_claim_files WHERE claim_id = $1 ORDER BY created_at, part");
    Ok(tx.query(&sql, &[&claim_id]).await?.iter().map(file).collect())
}

/// One file, with its bytes when they are still here rather than in storage.
#[tracing::instrument(skip_all, fields(file_id = %id))]
pub async fn file_content(tx: &Transaction, claim_id: Uuid, id: Uuid) -> Result<Option<(StoredFile, Option<Vec<u8>>)>> {
    let sql = format!("SELECT {FILE_COLUMNS}, content FROM gift_aid_claim_files WHERE claim_id = $1 AND id = $2");
    Ok(tx.query_opt(&sql, &[&claim_id, &id]).await?.map(|row| (file(&row), row.get("content"))))
}

/// Records that a file exported before files moved to storage is now the object `object_id`, and clears its bytes
/// here. Locks the row; `false` when it had already moved (another download got there first) and nothing changed.
#[tracing::instrument(skip_all, fields(file_id = %id, object_id = %object_id))]
pub async fn moved_to_storage(tx: &Transaction, id: Uuid, object_id: Uuid, size_bytes: i64) -> Result<bool> {
    let changed = tx
        .execute(
            "UPDATE gift_aid_claim_files SET object_id = $2, size_bytes = $3, content = NULL \
             WHERE id = $1 AND object_id IS NULL",
            &[&id, &object_id, &size_bytes],
        )
        .await?;
    Ok(changed == 1)
}
