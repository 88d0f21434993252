use crate::domain::DonorDetails;
use almoner_db::{Filters, Result, Transaction};
use almoner_events::fundraising::{Address, CommunicationPreferences, Donor};
use std::collections::BTreeMap;
use tokio_postgres::Row;
use uuid::Uuid;

/// The donor's own columns, for `RETURNING` (with the external ids added by the caller, who wrote them).
macro_rules! own_columns {
    () => {
        "d.id, d.tenant_id, d.revision, d.title, d.first_name, d.last_name, d.email, d.phone, \
         d.address_line1, d.address_line2, d.address_town, d.address_county, d.address_postcode, d.address_country, \
         d.contact_by_email, d.contact_by_sms, d.contact_by_post, d.contact_by_phone, d.household_id, d.created_at, \
         d.updated_at"
    };
}

const COLUMNS: &str = concat!(
    own_columns!(),
    ", (SELECT COALESCE(jsonb_object_agg(e.source, e.external_id), '{}'::jsonb) \
       FROM donor_external_ids e WHERE e.donor_id = d.id) AS external_ids"
);

/// What an `INSERT INTO donors AS d ... RETURNING` gives [`donor`]: external ids empty.
pub const RETURNED_COLUMNS: &str = concat!(own_columns!(), ", '{}'::jsonb AS external_ids");

pub fn donor(row: &Row) -> Donor {
    let external_ids: serde_json::Value = row.get("external_ids");
    Donor {
        id: row.get("id"),
        tenant_id: row.get("tenant_id"),
        revision: row.get("revision"),
        title: row.get("title"),
        first_name: row.get("first_name"),
        last_name: row.get("last_name"),
        email: row.get("email"),
        phone: row.get("phone"),
        address: Address {
            line1: row.get("address_line1"),
            line2: row.get("address_line2"),
            town: row.get("address_town"),
            county: row.get("address_county"),
            postcode: row.get("address_postcode"),
            country: row.get("address_country"),
        },
        external_ids: serde_json::from_value::<BTreeMap<String, String>>(external_ids).unwrap_or_default(),
        communication_preferences: CommunicationPreferences {
            email: row.get("contact_by_email"),
            sms: row.get("contact_by_sms"),
            post: row.get("contact_by_post"),
            phone: row.get("contact_by_phone"),
        },
        household_id: row.get("household_id"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// The details as statement parameters: `$1` is the id, `$2` to `$17` the details.
struct Params<'a> {
    email: Option<&'a str>,
    phone: Option<&'a str>,
    country: Option<&'a str>,
    details: &'a DonorDetails,
}

impl<'a> Params<'a> {
    fn new(details: &'a DonorDetails) -> Self {
        Self {
            email: details.email.as_ref().map(|e| e.as_str()),
            phone: details.phone.as_ref().map(|p| p.as_str()),
            country: details.address.country.as_ref().map(|c| c.as_str()),
            details,
        }
    }

    fn with_id<'b>(&'b self, id: &'b Uuid) -> [&'b (dyn tokio_postgres::types::ToSql + Sync); 17] {
        let d = self.details;
        let p = &d.communication_preferences;
        [
            id,
            &d.title,
            &d.first_name,
            &d.last_name,
            &self.email,
            &self.phone,
            &d.address.line1,
            &d.address.line2,
            &d.address.town,
            &d.address.county,
            &d.address.postcode,
            &self.country,
            &p.email,
            &p.sms,
            &p.post,
            &p.phone,
            &d.household_id,
        ]
    }
}

/// Sources among `details.external_ids` whose id already belongs to another donor of the tenant.
#[tracing::instrument(skip_all)]
pub async fn clashing_sources(tx: &Transaction, donor_id: Uuid, details: &DonorDetails) -> Result<Vec<String>> {
    let (sources, ids) = details.external_ids.columns();
    if sources.is_empty() {
        return Ok(Vec::new());
    }
    Ok(tx
        .query(
            "SELECT e.source FROM donor_external_ids e \
             JOIN unnest($2::text[], $3::text[]) AS wanted (source, external_id) USING (source, external_id) \
             WHERE e.donor_id <> $1 ORDER BY e.source",
            &[&donor_id, &sources, &ids],
        )
        .await?
        .iter()
        .map(|row| row.get("source"))
        .collect())
}

async fn replace_external_ids(tx: &Transaction, donor_id: Uuid, details: &DonorDetails) -> Result<()> {
    tx.execute("DELETE FROM donor_external_ids WHERE donor_id = $1", &[&donor_id]).await?;
    let (sources, ids) = details.external_ids.columns();
    if !sources.is_empty() {
        tx.execute(
            "INSERT INTO donor_external_ids (donor_id, source, external_id) \
             SELECT $1, * FROM unnest($2::text[], $3::text[])",
            &[&donor_id, &sources, &ids],
        )
        .await?;
    }
    Ok(())
}

/// Inserts a donor for the transaction's tenant at revision 1.
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, details: &DonorDetails) -> Result<Donor> {
    let params = Params::new(details);
    let all = params.with_id(&id);
    tx.execute(
        "INSERT INTO donors (id, title, first_name, last_name, email, phone, address_line1, address_line2, \
         address_town, address_county, address_postcode, address_country, contact_by_email, contact_by_sms, \
         contact_by_post, contact_by_phone, household_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        &all,
    )
    .await?;
    replace_external_ids(tx, id, details).await?;
    get(tx, id).await?.ok_or_else(|| anyhow::anyhow!("inserted donor {id} is not visible").into())
}

/// Replaces a donor's details and moves it to the next revision.
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, details: &DonorDetails) -> Result<Donor> {
    let params = Params::new(details);
    let all = params.with_id(&id);
    tx.execute(
        "UPDATE donors SET title = $2, first_name = $3, last_name = $4, email = $5, phone = $6, \
         address_line1 = $7, address_line2 = $8, address_town = $9, address_county = $10, address_postcode = $11, \
         address_country = $12, contact_by_email = $13, contact_by_sms = $14, contact_by_post = $15, \
         contact_by_phone = $16, household_id = $17, revision = revision + 1, updated_at = now() WHERE id = $1",
        &all,
    )
    .await?;
    replace_external_ids(tx, id, details).await?;
    get(tx, id).await?.ok_or_else(|| anyhow::anyhow!("updated donor {id} is not visible").into())
}

/// Sets whether the donor may be texted, moving it to its next revision.
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn set_sms_consent(tx: &Transaction, id: Uuid, sms: bool) -> Result<Donor> {
    tx.execute(
        "UPDATE donors SET contact_by_sms = $2, revision = revision + 1, updated_at = now() WHERE id = $1",
        &[&id, &sms],
    )
    .await?;
    get(tx, id).await?.ok_or_else(|| anyhow::anyhow!("updated donor {id} is not visible").into())
}

#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<Donor>> {
    let sql = format!("SELECT {COLUMNS} FROM donors d WHERE d.id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(donor))
}

/// Donors that may be the one gift entry is about to create: those with this email (lower-case), and those whose
/// last name starts with `last_name_prefix` (lower-case, LIKE-escaped) and who have this postcode (without spaces,
/// in capitals) or this phone (E.164). Each is then compared by the import's rules (`prompt_matches`).
#[tracing::instrument(skip_all)]
pub async fn match_candidates(
    tx: &Transaction,
    email: Option<&str>,
    last_name_prefix: Option<&str>,
    postcode_key: Option<&str>,
    phone: Option<&str>,
    limit: i64,
) -> Result<Vec<Donor>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM donors d WHERE ($1::text IS NOT NULL AND lower(d.email) = $1) \
         OR ($2::text IS NOT NULL AND lower(d.last_name) LIKE $2 \
             AND (($3::text IS NOT NULL AND upper(regexp_replace(d.address_postcode, '\\s', '', 'g')) = $3) \
                  OR ($4::text IS NOT NULL AND d.phone = $4))) \
         ORDER BY d.id DESC LIMIT $5"
    );
    Ok(tx.query(&sql, &[&email, &last_name_prefix, &postcode_key, &phone, &limit]).await?.iter().map(donor).collect())
}

/// Reads a donor and locks it until the transaction ends, so concurrent changes apply one revision at a time.
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<Donor>> {
    let sql = format!("SELECT {COLUMNS} FROM donors d WHERE d.id = $1 FOR UPDATE OF d");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(donor))
}

/// Which of these donors exist in the transaction's tenant.
#[tracing::instrument(skip_all, fields(donors = ids.len()))]
pub async fn existing(tx: &Transaction, ids: &[Uuid]) -> Result<Vec<Uuid>> {
    Ok(tx.query("SELECT id FROM donors WHERE id = ANY($1)", &[&ids]).await?.iter().map(|r| r.get(0)).collect())
}

/// Whether the donor exists (in the transaction's tenant).
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn exists(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.query_one("SELECT EXISTS (SELECT 1 FROM donors WHERE id = $1)", &[&id]).await?.get(0))
}

/// Whether the donor has gifts that are not deleted.
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn has_gifts(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx
        .query_one("SELECT EXISTS (SELECT 1 FROM gifts WHERE donor_id = $1 AND deleted_at IS NULL)", &[&id])
        .await?
        .get(0))
}

/// Whether the donor is soft-credited on a live gift, or has pledges: what keeps it from being deleted besides
/// its own gifts.
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn credited_or_pledged(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM gift_soft_credits s JOIN gifts g ON g.id = s.gift_id \
                            WHERE s.donor_id = $1 AND g.deleted_at IS NULL) \
                 OR EXISTS (SELECT 1 FROM pledges WHERE donor_id = $1)",
            &[&id],
        )
        .await?
        .get(0))
}

/// Deletes a donor with no live gifts, and the tombstones of its deleted gifts (their deletion was announced, and
/// ids are never reused). Returns the revision the donor had.
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn delete(tx: &Transaction, id: Uuid) -> Result<Option<i64>> {
    tx.execute("DELETE FROM gifts WHERE donor_id = $1 AND deleted_at IS NOT NULL", &[&id]).await?;
    Ok(tx.query_opt("DELETE FROM donors WHERE id = $1 RETURNING revision", &[&id]).await?.map(|row| row.get(0)))
}

/// What a donor search may filter on; every filter given must match.
#[derive(Debug, Default)]
pub struct DonorFilter {
    /// A `LIKE` prefix pattern, lower case (see [`super::like_prefix`]).
    pub name_prefix: Option<String>,
    pub email: Option<String>,
    pub postcode: Option<String>,
    pub external_id: Option<(String, String)>,
}

/// One page, newest first, strictly after the cursor's donor.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, filter: &DonorFilter, after: Option<Uuid>, limit: i64) -> Result<Vec<Donor>> {
    let mut filters = Filters::new();
    filters.add_some("d.id < {}", &after);
    if let Some(prefix) = &filter.name_prefix {
        filters.add(
            "lower(d.first_name) LIKE {} OR lower(d.last_name) LIKE {} \
             OR lower(coalesce(d.first_name, '') || ' ' || d.last_name) LIKE {}",
            prefix,
        );
    }
    filters.add_some("lower(d.email) = lower({})", &filter.email).add_some("d.address_postcode = {}", &filter.postcode);
    if let Some((source, external_id)) = &filter.external_id {
        let (source, external_id) = (filters.param(source), filters.param(external_id));
        filters.add_condition(format!(
            "EXISTS (SELECT 1 FROM donor_external_ids x \
             WHERE x.donor_id = d.id AND x.source = {source} AND x.external_id = {external_id})"
        ));
    }
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM donors d{} ORDER BY d.id DESC LIMIT {limit}", filters.where_clause());
    let rows = tx.query(&sql, filters.params()).await?;
    Ok(rows.iter().map(donor).collect())
}

/// Every donor of the transaction's tenant in id order, a batch at a time (for `fundraising replay`).
#[tracing::instrument(skip_all)]
pub async fn batch_after(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<Donor>> {
    let mut filters = Filters::new();
    filters.add_some("d.id > {}", &after);
    let limit = filters.param(&limit);
    let sql = format!("SELECT {COLUMNS} FROM donors d{} ORDER BY d.id LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(donor).collect())
}
