//! Gift Aid declarations, settings and the facts eligibility is judged on.

use crate::domain::gift_aid::{
    Declaration, DeclarationMethod, DeclarationOnFile, DonorFacts, EndReason, GiftAidSettings, GiftFacts,
};
use almoner_db::{Result, Transaction};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

/// A declaration as stored.
#[derive(Debug, Clone)]
pub struct StoredDeclaration {
    pub id: Uuid,
    pub donor_id: Uuid,
    pub revision: i64,
    pub declaration: Declaration,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, donor_id, revision, method, declared_on, start_date, end_date, end_reason, \
    declaration_text, confirmation_sent_on, cancelled_on, created_at, updated_at";

fn stored(row: &Row) -> StoredDeclaration {
    let method: String = row.get("method");
    let end_reason: Option<String> = row.get("end_reason");
    StoredDeclaration {
        id: row.get("id"),
        donor_id: row.get("donor_id"),
        revision: row.get("revision"),
        declaration: Declaration {
            method: DeclarationMethod::parse(&method).unwrap_or(DeclarationMethod::Written),
            declared_on: row.get("declared_on"),
            start_date: row.get("start_date"),
            end_date: row.get("end_date"),
            end_reason: end_reason.and_then(|r| EndReason::parse(&r).ok()),
            declaration_text: row.get("declaration_text"),
            confirmation_sent_on: row.get("confirmation_sent_on"),
            cancelled_on: row.get("cancelled_on"),
        },
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

#[tracing::instrument(skip_all, fields(declaration_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, donor_id: Uuid, d: &Declaration) -> Result<StoredDeclaration> {
    let sql = format!(
        "INSERT INTO gift_aid_declarations (id, donor_id, method, declared_on, start_date, end_date, end_reason, \
         declaration_text, confirmation_sent_on, cancelled_on) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &id,
                &donor_id,
                &d.method.as_str(),
                &d.declared_on,
                &d.start_date,
                &d.end_date,
                &d.end_reason.map(EndReason::as_str),
                &d.declaration_text,
                &d.confirmation_sent_on,
                &d.cancelled_on,
            ],
        )
        .await?;
    Ok(stored(&row))
}

#[tracing::instrument(skip_all, fields(declaration_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredDeclaration>> {
    let sql = format!("SELECT {COLUMNS} FROM gift_aid_declarations WHERE id = $1");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// Reads a declaration and locks it until the transaction ends.
#[tracing::instrument(skip_all, fields(declaration_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredDeclaration>> {
    let sql = format!("SELECT {COLUMNS} FROM gift_aid_declarations WHERE id = $1 FOR UPDATE");
    Ok(tx.query_opt(&sql, &[&id]).await?.as_ref().map(stored))
}

/// Replaces a declaration's state (its donor stays) and moves it to the next revision.
#[tracing::instrument(skip_all, fields(declaration_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, d: &Declaration) -> Result<StoredDeclaration> {
    let sql = format!(
        "UPDATE gift_aid_declarations SET method = $2, declared_on = $3, start_date = $4, end_date = $5, \
         end_reason = $6, declaration_text = $7, confirmation_sent_on = $8, cancelled_on = $9, \
         revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &id,
                &d.method.as_str(),
                &d.declared_on,
                &d.start_date,
                &d.end_date,
                &d.end_reason.map(EndReason::as_str),
                &d.declaration_text,
                &d.confirmation_sent_on,
                &d.cancelled_on,
            ],
        )
        .await?;
    Ok(stored(&row))
}

/// A donor's declarations, newest first.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn of_donor(tx: &Transaction, donor_id: Uuid) -> Result<Vec<StoredDeclaration>> {
    let sql =
        format!("SELECT {COLUMNS} FROM gift_aid_declarations WHERE donor_id = $1 ORDER BY declared_on DESC, id DESC");
    Ok(tx.query(&sql, &[&donor_id]).await?.iter().map(stored).collect())
}

/// The tenant's settings, or the defaults; the accounting period end is the one learned from identity.
#[tracing::instrument(skip_all)]
pub async fn settings(tx: &Transaction) -> Result<GiftAidSettings> {
    let mut settings =
        match tx.query_opt("SELECT agent_sources, aggregate_up_to_minor FROM gift_aid_settings", &[]).await? {
            Some(row) => GiftAidSettings {
                agent_sources: row.get(0),
                aggregate_up_to_minor: row.get(1),
                ..GiftAidSettings::default()
            },
            None => GiftAidSettings::default(),
        };
    if let Some(end) = crate::db::tenants::accounting_period_end(tx).await? {
        settings.accounting_period_end = end;
    }
    Ok(settings)
}

#[tracing::instrument(skip_all)]
pub async fn put_settings(tx: &Transaction, settings: &GiftAidSettings) -> Result<()> {
    tx.execute(
        "INSERT INTO gift_aid_settings (agent_sources, aggregate_up_to_minor) VALUES ($1, $2) \
         ON CONFLICT (tenant_id) DO UPDATE SET agent_sources = EXCLUDED.agent_sources, \
         aggregate_up_to_minor = EXCLUDED.aggregate_up_to_minor, updated_at = now()",
        &[&settings.agent_sources, &settings.aggregate_up_to_minor],
    )
    .await?;
    Ok(())
}

/// What eligibility is judged on for one gift.
#[derive(Debug, Clone)]
pub struct Facts {
    pub donor_id: Uuid,
    pub gift: GiftFacts,
    pub donor: DonorFacts,
    pub declarations: Vec<DeclarationOnFile>,
}

/// A gift's facts from a row with `gift_date`, `amount_minor`, `currency`, `status`, `source`,
/// `claimed_by_platform`, `is_refund` and `refunded` (the sum of its refund entries).
pub fn gift_facts(row: &Row, claimed_in: Option<Uuid>) -> GiftFacts {
    let status: String = row.get("status");
    GiftFacts {
        gift_date: row.get::<_, NaiveDate>("gift_date"),
        amount_minor: row.get("amount_minor"),
        currency: row.get("currency"),
        status: match status.as_str() {
            "succeeded" => "succeeded",
            "refunded" => "refunded",
            "pending" => "pending",
            _ => "failed",
        },
        source: row.get("source"),
        claimed_by_platform: row.get("claimed_by_platform"),
        is_refund_entry: row.get("is_refund"),
        refunded_minor: row.get("refunded"),
        claimed_in,
    }
}

/// The donor columns [`donor_facts`] reads, for a query with the donor as `d`.
pub const DONOR_FACT_COLUMNS: &str =
    "d.title, d.first_name, d.last_name, d.address_line1, d.address_postcode, d.address_country";

/// A donor's facts from a row with [`DONOR_FACT_COLUMNS`].
pub fn donor_facts(row: &Row) -> DonorFacts {
    let country: Option<String> = row.get("address_country");
    let uk_country = country.as_deref().is_none_or(|c| c == "GB");
    let line1: Option<String> = row.get("address_line1");
    let postcode: Option<String> = row.get("address_postcode");
    // A UK address's postcode is stored validated and normalised; an address with neither line nor postcode is
    // no address.
    let has_address = line1.is_some() || postcode.is_some();
    DonorFacts {
        title: row.get("title"),
        first_name: row.get("first_name"),
        last_name: row.get("last_name"),
        is_uk: uk_country && has_address,
        overseas: !uk_country && has_address,
        uk_postcode: postcode.filter(|_| uk_country),
        address_line1: line1,
    }
}

/// The declarations of these donors, by donor.
#[tracing::instrument(skip_all, fields(donors = donor_ids.len()))]
pub async fn declarations_of_donors(
    tx: &Transaction,
    donor_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<DeclarationOnFile>>> {
    let sql = format!("SELECT {COLUMNS} FROM gift_aid_declarations WHERE donor_id = ANY($1)");
    let mut by_donor: HashMap<Uuid, Vec<DeclarationOnFile>> = HashMap::new();
    for row in tx.query(&sql, &[&donor_ids]).await? {
        let d = stored(&row);
        by_donor.entry(d.donor_id).or_default().push(DeclarationOnFile { id: d.id, declaration: d.declaration });
    }
    Ok(by_donor)
}

/// What eligibility is judged on for one live gift: the gift with its refunds and claim, its donor's address and
/// the donor's declarations. `None` when there is no such gift.
#[tracing::instrument(skip_all, fields(gift_id = %gift_id))]
pub async fn facts(tx: &Transaction, gift_id: Uuid) -> Result<Option<Facts>> {
    let Some(row) = tx
        .query_opt(
            "SELECT g.donor_id, g.gift_date, g.amount_minor, g.currency, g.status, g.source, \
                    g.gift_aid_claimed_by_platform AS claimed_by_platform, g.refund_of IS NOT NULL AS is_refund, \
                    COALESCE((SELECT sum(r.amount_minor) FROM gifts r \
                              WHERE r.refund_of = g.id AND r.deleted_at IS NULL), 0)::bigint AS refunded, \
                    (SELECT c.claim_id FROM gift_aid_claim_gifts c \
                     WHERE c.gift_id = g.id AND c.state = 'included') AS claimed_in, \
                    d.title, d.first_name, d.last_name, d.address_line1, d.address_postcode, d.address_country \
             FROM gifts g JOIN donors d ON d.id = g.donor_id \
             WHERE g.id = $1 AND g.deleted_at IS NULL",
            &[&gift_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let donor_id: Uuid = row.get("donor_id");
    let gift = gift_facts(&row, row.get("claimed_in"));
    let donor = donor_facts(&row);
    let declarations = declarations_of_donors(tx, &[donor_id]).await?.remove(&donor_id).unwrap_or_default();
    Ok(Some(Facts { donor_id, gift, donor, declarations }))
}
