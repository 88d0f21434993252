//! Contacts: one per number per tenant.

use crate::domain::import::Existing;
use almoner_db::{Filters, Result, Transaction};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use tokio_postgres::Row;
use uuid::Uuid;

/// A contact as stored, with whether its number is on the do-not-contact list.
#[derive(Debug, Clone)]
pub struct StoredContact {
    pub id: Uuid,
    pub revision: i64,
    pub phone: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub attributes: Value,
    pub tags: Vec<String>,
    pub consent_source: Option<String>,
    pub consented_at: Option<DateTime<Utc>>,
    pub donor_id: Option<Uuid>,
    /// How the donor link was made: `phone` or `email`.
    pub donor_link: Option<String>,
    pub consent_withdrawn_at: Option<DateTime<Utc>>,
    pub do_not_contact: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a client (or an import) sets of a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactFields {
    pub phone: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub attributes: Value,
    pub tags: Vec<String>,
    pub consent_source: Option<String>,
    pub consented_at: Option<DateTime<Utc>>,
}

const SELECT: &str = "SELECT c.id, c.revision, c.phone, c.first_name, c.last_name, c.email, c.attributes, c.tags, \
     c.consent_source, c.consented_at, c.donor_id, c.donor_link, c.consent_withdrawn_at, c.created_at, c.updated_at, \
     EXISTS (SELECT 1 FROM do_not_contact d WHERE d.phone = c.phone) AS do_not_contact FROM contacts c";

fn stored(row: &Row) -> StoredContact {
    StoredContact {
        id: row.get("id"),
        revision: row.get("revision"),
        phone: row.get("phone"),
        first_name: row.get("first_name"),
        last_name: row.get("last_name"),
        email: row.get("email"),
        attributes: row.get("attributes"),
        tags: row.get("tags"),
        consent_source: row.get("consent_source"),
        consented_at: row.get("consented_at"),
        donor_id: row.get("donor_id"),
        donor_link: row.get("donor_link"),
        consent_withdrawn_at: row.get("consent_withdrawn_at"),
        do_not_contact: row.get("do_not_contact"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, f: &ContactFields) -> Result<StoredContact> {
    tx.execute(
        "INSERT INTO contacts (id, phone, first_name, last_name, email, attributes, tags, consent_source, consented_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&id, &f.phone, &f.first_name, &f.last_name, &f.email, &f.attributes, &f.tags, &f.consent_source, &f.consented_at],
    )
    .await?;
    get(tx, id).await?.ok_or_else(|| almoner_db::DbError::Unexpected(anyhow::anyhow!("contact {id} vanished")))
}

/// Whether another contact of the tenant has this number.
#[tracing::instrument(skip_all)]
pub async fn phone_taken(tx: &Transaction, phone: &str, except: Option<Uuid>) -> Result<bool> {
    Ok(tx
        .query_opt("SELECT 1 FROM contacts WHERE phone = $1 AND ($2::uuid IS NULL OR id <> $2)", &[&phone, &except])
        .await?
        .is_some())
}

#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredContact>> {
    Ok(tx.query_opt(&format!("{SELECT} WHERE c.id = $1"), &[&id]).await?.as_ref().map(stored))
}

/// Locks the contact until the transaction ends.
#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredContact>> {
    Ok(tx.query_opt(&format!("{SELECT} WHERE c.id = $1 FOR UPDATE OF c"), &[&id]).await?.as_ref().map(stored))
}

/// What a list is filtered by.
#[derive(Debug, Default)]
pub struct ContactFilter {
    pub tag: Option<String>,
    /// A number's digits, or the start of a first or last name or email, case-insensitive.
    pub search: Option<String>,
    pub do_not_contact: Option<bool>,
}

/// One page, newest first, strictly after the cursor's id.
#[tracing::instrument(skip_all)]
pub async fn list(
    tx: &Transaction,
    filter: &ContactFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<StoredContact>> {
    let prefix = filter.search.as_ref().map(|s| format!("{}%", escape_like(&s.to_lowercase())));
    let digits = filter.search.as_ref().map(|s| s.chars().filter(char::is_ascii_digit).collect::<String>());
    let digits = digits.filter(|d| d.len() >= 3).map(|d| format!("%{d}%"));
    let mut filters = Filters::new();
    filters.add_some("{} = ANY(c.tags)", &filter.tag).add_some("c.id < {}", &after);
    if let Some(prefix) = &prefix {
        let p = filters.param(prefix);
        let mut condition = format!(
            "lower(c.first_name) LIKE {p} OR lower(c.last_name) LIKE {p} OR lower(c.email) LIKE {p} \
             OR lower(coalesce(c.first_name, '') || ' ' || coalesce(c.last_name, '')) LIKE {p}"
        );
        if let Some(digits) = &digits {
            let d = filters.param(digits);
            condition.push_str(&format!(" OR c.phone LIKE {d}"));
        }
        filters.add_condition(condition);
    }
    match filter.do_not_contact {
        Some(true) => {
            filters.add_condition("EXISTS (SELECT 1 FROM do_not_contact d WHERE d.phone = c.phone)");
        }
        Some(false) => {
            filters.add_condition("NOT EXISTS (SELECT 1 FROM do_not_contact d WHERE d.phone = c.phone)");
        }
        None => {}
    }
    let limit = filters.param(&limit);
    let sql = format!("{SELECT}{} ORDER BY c.id DESC LIMIT {limit}", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(stored).collect())
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Replaces what a client sets and moves the contact to its next revision.
#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, f: &ContactFields) -> Result<StoredContact> {
    tx.execute(
        "UPDATE contacts SET phone = $2, first_name = $3, last_name = $4, email = $5, attributes = $6, tags = $7, \
         consent_source = $8, consented_at = $9, revision = revision + 1, updated_at = now() WHERE id = $1",
        &[
            &id,
            &f.phone,
            &f.first_name,
            &f.last_name,
            &f.email,
            &f.attributes,
            &f.tags,
            &f.consent_source,
            &f.consented_at,
        ],
    )
    .await?;
    get(tx, id).await?.ok_or_else(|| almoner_db::DbError::Unexpected(anyhow::anyhow!("contact {id} vanished")))
}

#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn delete(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.execute("DELETE FROM contacts WHERE id = $1", &[&id]).await? > 0)
}

/// The contacts having these numbers, locked until the transaction ends, by number.
#[tracing::instrument(skip_all, fields(numbers = phones.len()))]
pub async fn lock_by_phones(tx: &Transaction, phones: &[String]) -> Result<HashMap<String, Existing>> {
    let rows = tx
        .query(
            "SELECT id, phone, first_name, last_name, email, tags, attributes, consent_source, consented_at \
             FROM contacts WHERE phone = ANY($1) ORDER BY phone FOR UPDATE",
            &[&phones],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                row.get::<_, String>("phone"),
                Existing {
                    id: row.get("id"),
                    first_name: row.get("first_name"),
                    last_name: row.get("last_name"),
                    email: row.get("email"),
                    tags: row.get("tags"),
                    attributes: row.get("attributes"),
                    consent_source: row.get("consent_source"),
                    consented_at: row.get("consented_at"),
                },
            )
        })
        .collect())
}

/// Writes an import's new contacts in one statement; a number another writer took meanwhile is left alone (the
/// row is then decided again). Returns the numbers written with their ids.
#[tracing::instrument(skip_all, fields(contacts = new.len()))]
pub async fn insert_many(tx: &Transaction, new: &[(Uuid, ContactFields)]) -> Result<HashMap<String, Uuid>> {
    let ids: Vec<Uuid> = new.iter().map(|(id, _)| *id).collect();
    let phones: Vec<&str> = new.iter().map(|(_, f)| f.phone.as_str()).collect();
    let first: Vec<Option<&str>> = new.iter().map(|(_, f)| f.first_name.as_deref()).collect();
    let last: Vec<Option<&str>> = new.iter().map(|(_, f)| f.last_name.as_deref()).collect();
    let email: Vec<Option<&str>> = new.iter().map(|(_, f)| f.email.as_deref()).collect();
    let attributes: Vec<&Value> = new.iter().map(|(_, f)| &f.attributes).collect();
    // Arrays of arrays cannot be unnested row by row, so tags travel as JSON.
    let tags: Vec<Value> = new.iter().map(|(_, f)| Value::from(f.tags.clone())).collect();
    let source: Vec<Option<&str>> = new.iter().map(|(_, f)| f.consent_source.as_deref()).collect();
    let at: Vec<Option<DateTime<Utc>>> = new.iter().map(|(_, f)| f.consented_at).collect();
    let rows = tx
        .query(
            "INSERT INTO contacts (id, phone, first_name, last_name, email, attributes, tags, consent_source, consented_at) \
             SELECT i, p, f, l, e, a, ARRAY(SELECT jsonb_array_elements_text(t)), s, c \
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[], \
                         $8::text[], $9::timestamptz[]) AS x(i, p, f, l, e, a, t, s, c) \
             ON CONFLICT (tenant_id, phone) DO NOTHING RETURNING phone, id",
            &[&ids, &phones, &first, &last, &email, &attributes, &tags, &source, &at],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Updates one contact from an import's merge of it.
#[tracing::instrument(skip_all, fields(contact_id = %c.id))]
pub async fn update_from_import(tx: &Transaction, c: &Existing) -> Result<()> {
    tx.execute(
        "UPDATE contacts SET first_name = $2, last_name = $3, email = $4, attributes = $5, tags = $6, \
         consent_source = $7, consented_at = $8, revision = revision + 1, updated_at = now() WHERE id = $1",
        &[&c.id, &c.first_name, &c.last_name, &c.email, &c.attributes, &c.tags, &c.consent_source, &c.consented_at],
    )
    .await?;
    Ok(())
}

/// The contacts of an audience: those with any of `tags`, or every contact when there are none; with whether
/// their number is listed.
#[tracing::instrument(skip_all, fields(tags = tags.len()))]
pub async fn audience(tx: &Transaction, tags: &[String]) -> Result<Vec<StoredContact>> {
    let rows = if tags.is_empty() {
        tx.query(&format!("{SELECT} ORDER BY c.id"), &[]).await?
    } else {
        tx.query(&format!("{SELECT} WHERE c.tags && $1 ORDER BY c.id"), &[&tags]).await?
    };
    Ok(rows.iter().map(stored).collect())
}

/// The contacts a segment's filter matches, now, with whether their number is listed.
#[tracing::instrument(skip_all)]
pub async fn matching(
    tx: &Transaction,
    filter: &crate::domain::segment_filter::SegmentFilter,
) -> Result<Vec<StoredContact>> {
    let mut filters = Filters::new();
    filter.conditions(&mut filters);
    let sql = format!("{SELECT}{} ORDER BY c.id", filters.where_clause());
    Ok(tx.query(&sql, filters.params()).await?.iter().map(stored).collect())
}
