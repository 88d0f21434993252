//! The contact import committer: writes a committed import's rows a chunk at a time, each chunk in one
//! transaction together with the rows' outcomes and the import's progress (`rows_done`). A stopped service (or
//! another replica) resumes after the last committed chunk, and no row is written twice.
//!
//! A committer takes an import by locking its queue row (`FOR UPDATE SKIP LOCKED`) in the chunk's own tenant
//! transaction, so two replicas never write the same chunk, and a committer that dies mid-chunk leaves nothing
//! behind but a rolled-back transaction. Each row is decided again against the tenant as it is then: a number put
//! on the do-not-contact list after the dry run is still kept out.

use crate::db::contacts::{self, ContactFields};
use crate::db::donors::{self, Scope};
use crate::db::{do_not_contact, imports as db};
use crate::domain::import::{self, Options, Outcome, RowData};
use almoner_db::{Pool, Transaction};
use anyhow::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Rows written per transaction.
pub const CHUNK_ROWS: i64 = 1000;

/// Wakes the committer when an import is committed. Cheap to clone.
#[derive(Clone, Default)]
pub struct ImportCommitter {
    wake: Arc<Notify>,
}

impl ImportCommitter {
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Works through committed imports until `shutdown`: woken by [`wake`](Self::wake), and every 2 s for work
    /// another replica left behind.
    pub async fn run(self, pool: Pool, shutdown: CancellationToken) {
        loop {
            loop {
                if shutdown.is_cancelled() {
                    return;
                }
                match step(&pool).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => {
                        tracing::warn!(error = format!("{error:#}"), "contact import chunk failed; trying again");
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }
}

/// Commits one chunk of one pending import; whether there was one to commit.
pub async fn step(pool: &Pool) -> anyhow::Result<bool> {
    let candidates = {
        let tx = pool.system_tx().await?;
        let found = db::pending(&tx, 10).await?;
        tx.commit().await?;
        found
    };
    for (tenant_id, id) in candidates {
        let tx = pool.tenant_tx(tenant_id).await?;
        if !db::take_pending(&tx, id).await? {
            tx.rollback().await?;
            continue;
        }
        commit_chunk(&tx, id).await.with_context(|| format!("committing contact import {id}"))?;
        tx.commit().await?;
        return Ok(true);
    }
    Ok(false)
}

#[tracing::instrument(skip_all, fields(import_id = %id))]
async fn commit_chunk(tx: &Transaction, id: Uuid) -> anyhow::Result<()> {
    let stored = db::lock(tx, id).await?.context("the import is gone")?;
    let options: Options = serde_json::from_value(stored.options.clone()).context("reading the import's options")?;
    let rows = db::next_rows(tx, id, stored.rows_done, CHUNK_ROWS).await?;
    let mut again: Vec<(i32, RowData)> = Vec::new();
    for row in &rows {
        if row.outcome.is_decided_again()
            && let Some(data) = &row.data
        {
            again.push((row.line, serde_json::from_value(data.clone()).context("reading a row")?));
        }
    }
    let phones: Vec<String> = again.iter().map(|(_, r)| r.phone.clone()).collect();
    let existing = contacts::lock_by_phones(tx, &phones).await?;
    let listed = do_not_contact::listed(tx, &phones).await?;
    let mut seen = HashMap::new();
    let mut decided: Vec<db::ImportRow> = Vec::new();
    let mut new: Vec<(Uuid, ContactFields)> = Vec::new();
    for (line, row) in &again {
        let decision = import::decide(row, *line, &mut seen, &existing, &listed, options.update_existing);
        let mut contact_id = None;
        match decision.outcome {
            Outcome::Create => {
                let contact_id_new = Uuid::now_v7();
                contact_id = Some(contact_id_new);
                new.push((
                    contact_id_new,
                    ContactFields {
                        phone: row.phone.clone(),
                        first_name: row.first_name.clone(),
                        last_name: row.last_name.clone(),
                        email: row.email.clone(),
                        attributes: row.attributes.clone(),
                        tags: row.tags.clone(),
                        consent_source: Some(row.consent_source.clone()),
                        consented_at: row.consented_at,
                    },
                ));
            }
            Outcome::Update => {
                let current = &existing[&row.phone];
                contacts::update_from_import(tx, &current.updated_by(row)).await?;
                contact_id = Some(current.id);
            }
            Outcome::Unchanged => contact_id = existing.get(&row.phone).map(|c| c.id),
            _ => {}
        }
        decided.push(db::ImportRow {
            line: *line,
            outcome: decision.outcome,
            phone: Some(row.phone.clone()),
            detail: decision.detail,
            data: None,
            contact_id,
        });
    }
    let written = contacts::insert_many(tx, &new).await?;
    for row in decided.iter_mut().filter(|r| r.outcome == Outcome::Create) {
        let phone = row.phone.as_deref().unwrap_or_default();
        if !written.contains_key(phone) {
            // Another writer gave a contact this number between our lock and our insert.
            row.outcome = Outcome::Unchanged;
            row.contact_id = None;
            row.detail = Some("the number became a contact while the import ran".into());
        }
    }
    // The chunk's new and changed contacts linked to their donors, consent in step.
    let touched: Vec<Uuid> = decided
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Create | Outcome::Update))
        .filter_map(|r| r.contact_id)
        .collect();
    let tenant_id = tx.tenant_id().context("a contact import chunk runs in its tenant's transaction")?;
    donors::reconcile(tx, tenant_id, Scope::contacts(&touched)).await?;
    db::record_rows(tx, id, &decided).await?;
    let done = stored.rows_done + i32::try_from(rows.len()).unwrap_or(i32::MAX);
    db::progress(tx, id, done, done >= stored.rows_total).await?;
    tracing::info!(rows_done = done, rows_total = stored.rows_total, "contact import chunk committed");
    Ok(())
}
