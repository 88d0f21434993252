//! Donors and their gifts as fundraising last described them; the link from contacts to donors; SMS consent kept
//! in step between a linked contact and its donor.
//!
//! **Link.** An unlinked contact is linked to the one live donor with its number; when no donor has the number, to
//! the one live donor with its email (case-insensitive). Two donors with the number (or, failing a number, the
//! email) link neither: a wrong link would text, or stop texting, the wrong person. A link stays when either side
//! later changes its number; it goes when the donor is deleted.
//!
//! **Consent.** A contact consents when `consented_at` is set; a donor when fundraising's
//! `communication_preferences.sms` is true. When a linked pair disagree, the side that changed last wins: the
//! contact's `consent_changed_at` (kept by a trigger, whatever wrote the row) against the donor's
//! `sms_changed_at`. A newer contact is sent to fundraising as `messaging.contact.consent_changed.v1` (and the
//! mirror takes its value at once, so it is sent once); a newer donor is written onto the contact. A consent taken
//! from the donor records `fundraising donor record` as its source; a withdrawal keeps the source it had.

use almoner_db::{Result, Transaction, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::{Donor, Gift, GiftStatus};
use almoner_events::messaging::ContactConsentChangedV1;
use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// Where a consent taken from a donor's record says it came from.
pub const FROM_DONOR_RECORD: &str = "fundraising donor record";

/// Applies donors' states, each only when newer than the revision held (a deleted donor's tombstone included).
/// Returns the ids whose row changed.
#[tracing::instrument(skip_all, fields(donors = donors.len()))]
pub async fn upsert(tx: &Transaction, donors: &[&Donor]) -> Result<Vec<Uuid>> {
    let ids: Vec<Uuid> = donors.iter().map(|d| d.id).collect();
    let revisions: Vec<i64> = donors.iter().map(|d| d.revision).collect();
    let phones: Vec<Option<&str>> = donors.iter().map(|d| d.phone.as_deref()).collect();
    let emails: Vec<Option<String>> =
        donors.iter().map(|d| d.email.as_ref().map(|e| e.trim().to_lowercase())).collect();
    let first: Vec<Option<&str>> = donors.iter().map(|d| d.first_name.as_deref()).collect();
    let last: Vec<&str> = donors.iter().map(|d| d.last_name.as_str()).collect();
    let sms: Vec<bool> = donors.iter().map(|d| d.communication_preferences.sms).collect();
    let at: Vec<DateTime<Utc>> = donors.iter().map(|d| d.updated_at).collect();
    // `donors.*` in SET is the row before the change: the consent time moves only when the consent does.
    let rows = tx
        .query(
            "INSERT INTO donors AS d (donor_id, revision, phone, email, first_name, last_name, sms_consent, \
                                     sms_changed_at) \
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], \
                                  $7::bool[], $8::timestamptz[]) \
             ON CONFLICT (tenant_id, donor_id) DO UPDATE SET revision = EXCLUDED.revision, deleted = false, \
                 phone = EXCLUDED.phone, email = EXCLUDED.email, first_name = EXCLUDED.first_name, \
                 last_name = EXCLUDED.last_name, sms_consent = EXCLUDED.sms_consent, \
                 sms_changed_at = CASE WHEN d.sms_consent = EXCLUDED.sms_consent THEN d.sms_changed_at \
                                       ELSE EXCLUDED.sms_changed_at END, \
                 updated_at = now() \
             WHERE d.revision < EXCLUDED.revision RETURNING donor_id",
            &[&ids, &revisions, &phones, &emails, &first, &last, &sms, &at],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records a donor's deletion at `revision` (unless a newer state is held) and unlinks its contacts. Returns
/// whether anything changed.
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn delete(tx: &Transaction, donor_id: Uuid, revision: i64, at: DateTime<Utc>) -> Result<bool> {
    let changed = tx
        .execute(
            "INSERT INTO donors AS d (donor_id, revision, deleted, last_name, sms_changed_at) \
             VALUES ($1, $2, true, NULL, $3) \
             ON CONFLICT (tenant_id, donor_id) DO UPDATE SET revision = EXCLUDED.revision, deleted = true, \
                 phone = NULL, email = NULL, first_name = NULL, last_name = NULL, sms_consent = false, \
                 updated_at = now() \
             WHERE d.revision < EXCLUDED.revision",
            &[&donor_id, &revision, &at],
        )
        .await?
        > 0;
    if changed {
        tx.execute(
            "UPDATE contacts SET donor_id = NULL, donor_link = NULL, revision = revision + 1, updated_at = now() \
             WHERE donor_id = $1",
            &[&donor_id],
        )
        .await?;
    }
    Ok(changed)
}

/// Applies gifts' states, each only when newer than the revision held.
#[tracing::instrument(skip_all, fields(gifts = gifts.len()))]
pub async fn upsert_gifts(tx: &Transaction, gifts: &[&Gift]) -> Result<u64> {
    let ids: Vec<Uuid> = gifts.iter().map(|g| g.id).collect();
    let donors: Vec<Uuid> = gifts.iter().map(|g| g.donor_id).collect();
    let revisions: Vec<i64> = gifts.iter().map(|g| g.revision).collect();
    let amounts: Vec<i64> = gifts.iter().map(|g| g.amount_minor).collect();
    let dates: Vec<NaiveDate> = gifts.iter().map(|g| g.gift_date).collect();
    let statuses: Vec<&str> = gifts.iter().map(|g| gift_status(g.status)).collect();
    tx.execute(
        "INSERT INTO donor_gifts AS g (gift_id, donor_id, revision, amount_minor, gift_date, status) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::bigint[], $5::date[], $6::text[]) \
         ON CONFLICT (tenant_id, gift_id) DO UPDATE SET donor_id = EXCLUDED.donor_id, revision = EXCLUDED.revision, \
             deleted = false, amount_minor = EXCLUDED.amount_minor, gift_date = EXCLUDED.gift_date, \
             status = EXCLUDED.status \
         WHERE g.revision < EXCLUDED.revision",
        &[&ids, &donors, &revisions, &amounts, &dates, &statuses],
    )
    .await
}

/// Records a gift's deletion at `revision` (unless a newer state is held).
#[tracing::instrument(skip_all, fields(gift_id = %gift_id))]
pub async fn delete_gift(tx: &Transaction, gift_id: Uuid, donor_id: Uuid, revision: i64) -> Result<bool> {
    Ok(tx
        .execute(
            "INSERT INTO donor_gifts AS g (gift_id, donor_id, revision, deleted, amount_minor, gift_date, status) \
             VALUES ($1, $2, $3, true, 0, DATE '1970-01-01', 'failed') \
             ON CONFLICT (tenant_id, gift_id) DO UPDATE SET revision = EXCLUDED.revision, deleted = true \
             WHERE g.revision < EXCLUDED.revision",
            &[&gift_id, &donor_id, &revision],
        )
        .await?
        > 0)
}

fn gift_status(status: GiftStatus) -> &'static str {
    match status {
        GiftStatus::Pending => "pending",
        GiftStatus::Succeeded => "succeeded",
        GiftStatus::Failed => "failed",
        GiftStatus::Refunded => "refunded",
    }
}

/// Which rows [`reconcile`] looks at: these contacts, and the contacts of (or matching) these donors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub contacts: &'a [Uuid],
    pub donors: &'a [Uuid],
}

impl<'a> Scope<'a> {
    pub fn contacts(ids: &'a [Uuid]) -> Self {
        Self { contacts: ids, donors: &[] }
    }

    pub fn donors(ids: &'a [Uuid]) -> Self {
        Self { contacts: &[], donors: ids }
    }
}

/// What [`reconcile`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Contacts newly linked to a donor.
    pub linked: u64,
    /// Contacts whose consent was taken from their donor.
    pub from_donor: u64,
    /// Donors sent a contact's consent.
    pub to_donor: u64,
}

/// Links the scope's unlinked contacts to their donors, then brings each linked pair's SMS consent into step (see
/// the module's description). Run in the transaction that changed the contacts or donors.
#[tracing::instrument(skip_all, fields(contacts = scope.contacts.len(), donors = scope.donors.len()))]
pub async fn reconcile(tx: &Transaction, tenant_id: Uuid, scope: Scope<'_>) -> Result<Reconciled> {
    let mut done = Reconciled::default();
    if scope.contacts.is_empty() && scope.donors.is_empty() {
        return Ok(done);
    }
    done.linked = tx
        .execute(
            "WITH scoped AS (SELECT phone, email FROM donors WHERE donor_id = ANY($2) AND NOT deleted), \
             candidates AS ( \
                 SELECT c.id, c.phone, lower(c.email) AS email FROM contacts c \
                 WHERE c.donor_id IS NULL AND (c.id = ANY($1) \
                     OR c.phone IN (SELECT phone FROM scoped WHERE phone IS NOT NULL) \
                     OR lower(c.email) IN (SELECT email FROM scoped WHERE email IS NOT NULL))), \
             by_phone AS ( \
                 SELECT k.id, count(*) AS n, min(d.donor_id::text)::uuid AS donor_id \
                 FROM candidates k JOIN donors d ON d.phone = k.phone AND NOT d.deleted GROUP BY k.id), \
             by_email AS ( \
                 SELECT k.id, min(d.donor_id::text)::uuid AS donor_id \
                 FROM candidates k JOIN donors d ON d.email = k.email AND NOT d.deleted \
                 WHERE k.email IS NOT NULL AND k.id NOT IN (SELECT id FROM by_phone) \
                 GROUP BY k.id HAVING count(*) = 1), \
             matched AS (SELECT id, donor_id, 'phone' AS how FROM by_phone WHERE n = 1 \
                         UNION ALL SELECT id, donor_id, 'email' FROM by_email) \
             UPDATE contacts c SET donor_id = m.donor_id, donor_link = m.how, revision = c.revision + 1, \
                 updated_at = now() \
             FROM matched m WHERE c.id = m.id AND c.donor_id IS NULL",
            &[&scope.contacts, &scope.donors],
        )
        .await?;

    // Pairs that disagree, the most recent contact change first: a donor linked to several contacts follows
    // the latest, once.
    let rows = tx
        .query(
            "SELECT c.id, c.donor_id, c.phone, c.consented_at IS NOT NULL AS contact_consent, c.consent_changed_at, \
                    d.sms_consent, d.sms_changed_at \
             FROM contacts c JOIN donors d ON d.donor_id = c.donor_id AND NOT d.deleted \
             WHERE (c.id = ANY($1) OR c.donor_id = ANY($2)) AND (c.consented_at IS NOT NULL) <> d.sms_consent \
             ORDER BY c.consent_changed_at DESC NULLS LAST, c.id \
             FOR UPDATE OF c, d",
            &[&scope.contacts, &scope.donors],
        )
        .await?;
    let mut settled: Vec<Uuid> = Vec::new();
    for row in rows {
        let (contact_id, donor_id, phone): (Uuid, Uuid, String) = (row.get(0), row.get(1), row.get(2));
        let contact_consent: bool = row.get(3);
        let contact_at: Option<DateTime<Utc>> = row.get(4);
        let donor_consent: bool = row.get(5);
        let donor_at: DateTime<Utc> = row.get(6);
        if settled.contains(&donor_id) {
            // Its mirror row changed above; the next reconcile compares this contact with it afresh.
            continue;
        }
        match contact_at {
            Some(contact_at) if contact_at > donor_at => {
                settled.push(donor_id);
                tx.execute(
                    "UPDATE donors SET sms_consent = $2, sms_changed_at = $3, updated_at = now() WHERE donor_id = $1",
                    &[&donor_id, &contact_consent, &contact_at],
                )
                .await?;
                let event = ContactConsentChangedV1 {
                    contact_id,
                    donor_id,
                    phone,
                    sms_consent: contact_consent,
                    changed_at: contact_at,
                };
                outbox::enqueue(tx, &Envelope::new(tenant_id, crate::PRODUCER, event)).await?;
                done.to_donor += 1;
            }
            _ => {
                let source = donor_consent.then_some(FROM_DONOR_RECORD);
                tx.execute(
                    "UPDATE contacts SET consented_at = CASE WHEN $2::bool THEN $3::timestamptz END, \
                         consent_source = CASE WHEN $2::bool THEN $4::text ELSE consent_source END, \
                         revision = revision + 1, updated_at = now() WHERE id = $1",
                    &[&contact_id, &donor_consent, &donor_at, &source],
                )
                .await?;
                done.from_donor += 1;
            }
        }
    }
    if done != Reconciled::default() {
        tracing::info!(
            linked = done.linked,
            from_donor = done.from_donor,
            to_donor = done.to_donor,
            "contacts and donors reconciled"
        );
    }
    Ok(done)
}
