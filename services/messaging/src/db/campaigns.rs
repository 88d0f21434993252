//! Campaigns, their send jobs and the queue the sender reads.

use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct StoredCampaign {
    pub id: Uuid,
    pub revision: i64,
    pub name: String,
    pub template_id: Uuid,
    pub audience: Value,
    pub sender: String,
    pub status: String,
    pub send_at: Option<DateTime<Utc>>,
    pub body: Option<String>,
    pub queue_summary: Value,
    pub queued_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, revision, name, template_id, audience, sender, status, send_at, body, queue_summary, \
     queued_at, completed_at, created_at, updated_at";

fn stored(row: &Row) -> StoredCampaign {
    StoredCampaign {
        id: row.get("id"),
        revision: row.get("revision"),
        name: row.get("name"),
        template_id: row.get("template_id"),
        audience: row.get("audience"),
        sender: row.get("sender"),
        status: row.get("status"),
        send_at: row.get("send_at"),
        body: row.get("body"),
        queue_summary: row.get("queue_summary"),
        queued_at: row.get("queued_at"),
        completed_at: row.get("completed_at"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    }
}

/// What a client sets of a draft.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignFields {
    pub name: String,
    pub template_id: Uuid,
    pub audience: Value,
    pub sender: String,
    pub send_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, f: &CampaignFields) -> Result<StoredCampaign> {
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO campaigns (id, name, template_id, audience, sender, send_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 RETURNING {COLUMNS}"
            ),
            &[&id, &f.name, &f.template_id, &f.audience, &f.sender, &f.send_at],
        )
        .await?;
    Ok(stored(&row))
}

#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn get(tx: &Transaction, id: Uuid) -> Result<Option<StoredCampaign>> {
    Ok(tx.query_opt(&format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1"), &[&id]).await?.as_ref().map(stored))
}

#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn lock(tx: &Transaction, id: Uuid) -> Result<Option<StoredCampaign>> {
    Ok(tx
        .query_opt(&format!("SELECT {COLUMNS} FROM campaigns WHERE id = $1 FOR UPDATE"), &[&id])
        .await?
        .as_ref()
        .map(stored))
}

/// One page, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(tx: &Transaction, after: Option<Uuid>, limit: i64) -> Result<Vec<StoredCampaign>> {
    let rows = match after {
        None => tx.query(&format!("SELECT {COLUMNS} FROM campaigns ORDER BY id DESC LIMIT $1"), &[&limit]).await?,
        Some(after) => {
            tx.query(
                &format!("SELECT {COLUMNS} FROM campaigns WHERE id < $1 ORDER BY id DESC LIMIT $2"),
                &[&after, &limit],
            )
            .await?
        }
    };
    Ok(rows.iter().map(stored).collect())
}

#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn update(tx: &Transaction, id: Uuid, f: &CampaignFields) -> Result<StoredCampaign> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE campaigns SET name = $2, template_id = $3, audience = $4, sender = $5, send_at = $6, \
                 revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &f.name, &f.template_id, &f.audience, &f.sender, &f.send_at],
        )
        .await?;
    Ok(stored(&row))
}

#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn delete_draft(tx: &Transaction, id: Uuid) -> Result<bool> {
    Ok(tx.execute("DELETE FROM campaigns WHERE id = $1 AND status = 'draft'", &[&id]).await? > 0)
}

/// Moves a campaign to `status` (at the next revision).
#[tracing::instrument(skip_all, fields(campaign_id = %id, status))]
pub async fn set_status(tx: &Transaction, id: Uuid, status: &str) -> Result<StoredCampaign> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE campaigns SET status = $2, revision = revision + 1, updated_at = now(), \
                 completed_at = CASE WHEN $2 IN ('completed', 'cancelled') THEN now() ELSE completed_at END \
                 WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &status],
        )
        .await?;
    Ok(stored(&row))
}

/// Records a campaign as queued: its status, the body it was queued with, what queueing found.
#[tracing::instrument(skip_all, fields(campaign_id = %id, status))]
pub async fn mark_queued(
    tx: &Transaction,
    id: Uuid,
    status: &str,
    body: &str,
    summary: &Value,
) -> Result<StoredCampaign> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE campaigns SET status = $2, body = $3, queue_summary = $4, queued_at = now(), \
                 revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
            ),
            &[&id, &status, &body, summary],
        )
        .await?;
    Ok(stored(&row))
}

/// A job to write.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub id: Uuid,
    pub contact_id: Uuid,
    pub phone: String,
    pub body: String,
    pub segments: i32,
    pub cost_micros: i64,
    pub send_at: DateTime<Utc>,
}

/// Writes a campaign's jobs and puts them on the send queue, 5,000 rows per statement. A job that exists (one per
/// campaign and contact) is not written again.
#[tracing::instrument(skip_all, fields(campaign_id = %campaign_id, jobs = jobs.len()))]
pub async fn insert_jobs(tx: &Transaction, tenant_id: Uuid, campaign_id: Uuid, jobs: &[NewJob]) -> Result<u64> {
    let mut written = 0;
    for chunk in jobs.chunks(5000) {
        let ids: Vec<Uuid> = chunk.iter().map(|j| j.id).collect();
        let contacts: Vec<Uuid> = chunk.iter().map(|j| j.contact_id).collect();
        let phones: Vec<&str> = chunk.iter().map(|j| j.phone.as_str()).collect();
        let bodies: Vec<&str> = chunk.iter().map(|j| j.body.as_str()).collect();
        let segments: Vec<i32> = chunk.iter().map(|j| j.segments).collect();
        let costs: Vec<i64> = chunk.iter().map(|j| j.cost_micros).collect();
        let send_at: Vec<DateTime<Utc>> = chunk.iter().map(|j| j.send_at).collect();
        let inserted = tx
            .query(
                "INSERT INTO send_jobs (id, campaign_id, contact_id, phone, body, segments, cost_micros, send_at) \
                 SELECT i, $1, c, p, b, s, k, a FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], \
                   $6::int[], $7::bigint[], $8::timestamptz[]) AS x(i, c, p, b, s, k, a) \
                 ON CONFLICT (tenant_id, campaign_id, contact_id) DO NOTHING RETURNING id, send_at",
                &[&campaign_id, &ids, &contacts, &phones, &bodies, &segments, &costs, &send_at],
            )
            .await?;
        let queued_ids: Vec<Uuid> = inserted.iter().map(|r| r.get(0)).collect();
        let queued_at: Vec<DateTime<Utc>> = inserted.iter().map(|r| r.get(1)).collect();
        tx.execute(
            "INSERT INTO send_queue (job_id, tenant_id, send_at) SELECT j, $1, a FROM unnest($2::uuid[], \
             $3::timestamptz[]) AS x(j, a)",
            &[&tenant_id, &queued_ids, &queued_at],
        )
        .await?;
        written += inserted.len() as u64;
    }
    Ok(written)
}

/// The tenant's spend and outstanding (queued, not yet sent) cost: (spent since `day`, spent since `month`,
/// segments since `day`, segments since `month`, outstanding cost, outstanding segments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    pub day_micros: i64,
    pub month_micros: i64,
    pub day_segments: i64,
    pub month_segments: i64,
    pub outstanding_micros: i64,
    pub outstanding_segments: i64,
}

#[tracing::instrument(skip_all)]
pub async fn spend(tx: &Transaction, day: DateTime<Utc>, month: DateTime<Utc>) -> Result<Spend> {
    // Each part a range of one partial index (`send_jobs_sent_at_idx`, `send_jobs_outstanding_idx`).
    let row = tx
        .query_one(
            "SELECT \
               coalesce(sum(cost_micros) FILTER (WHERE sent_at >= $1), 0)::bigint, \
               coalesce(sum(cost_micros), 0)::bigint, \
               coalesce(sum(segments) FILTER (WHERE sent_at >= $1), 0)::bigint, \
               coalesce(sum(segments), 0)::bigint, \
               (SELECT coalesce(sum(cost_micros), 0)::bigint FROM send_jobs WHERE status IN ('queued', 'sending')), \
               (SELECT coalesce(sum(segments), 0)::bigint FROM send_jobs WHERE status IN ('queued', 'sending')) \
             FROM send_jobs WHERE sent_at >= $2 AND status IN ('sent', 'delivered', 'undelivered')",
            &[&day, &month],
        )
        .await?;
    Ok(Spend {
        day_micros: row.get(0),
        month_micros: row.get(1),
        day_segments: row.get(2),
        month_segments: row.get(3),
        outstanding_micros: row.get(4),
        outstanding_segments: row.get(5),
    })
}

/// A campaign's jobs by status, with their segments and cost.
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn job_counts(tx: &Transaction, id: Uuid) -> Result<Vec<(String, i64, i64, i64)>> {
    Ok(tx
        .query(
            "SELECT status, count(*), coalesce(sum(segments), 0)::bigint, coalesce(sum(cost_micros), 0)::bigint \
             FROM send_jobs WHERE campaign_id = $1 GROUP BY status ORDER BY status",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Cancels a campaign's jobs not yet sent, and takes them off the send queue; how many.
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn cancel_jobs(tx: &Transaction, id: Uuid) -> Result<u64> {
    let rows = tx
        .query(
            "UPDATE send_jobs SET status = 'cancelled', updated_at = now() WHERE campaign_id = $1 AND status = 'queued' \
             RETURNING id",
            &[&id],
        )
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    tx.execute("DELETE FROM send_queue WHERE job_id = ANY($1)", &[&ids]).await?;
    Ok(ids.len() as u64)
}

/// Holds a campaign's queued jobs in the queue (it is paused), or releases them (it resumes). A job being sent
/// keeps its lease either way.
#[tracing::instrument(skip_all, fields(campaign_id = %id, held))]
pub async fn hold_jobs(tx: &Transaction, id: Uuid, held: bool) -> Result<u64> {
    tx.execute(
        "UPDATE send_queue SET held = $2 WHERE held <> $2 AND job_id IN \
         (SELECT id FROM send_jobs WHERE campaign_id = $1 AND status = 'queued')",
        &[&id, &held],
    )
    .await
}

/// A short link to write: the code, its job and contact, the URL it stands for.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub code: String,
    pub job_id: Uuid,
    pub contact_id: Uuid,
    pub url: String,
}

/// Writes a campaign's short links.
#[tracing::instrument(skip_all, fields(campaign_id = %campaign_id, links = links.len()))]
pub async fn insert_links(tx: &Transaction, tenant_id: Uuid, campaign_id: Uuid, links: &[NewLink]) -> Result<()> {
    for chunk in links.chunks(5000) {
        let codes: Vec<&str> = chunk.iter().map(|l| l.code.as_str()).collect();
        let jobs: Vec<Uuid> = chunk.iter().map(|l| l.job_id).collect();
        let contacts: Vec<Uuid> = chunk.iter().map(|l| l.contact_id).collect();
        let urls: Vec<&str> = chunk.iter().map(|l| l.url.as_str()).collect();
        tx.execute(
            "INSERT INTO short_links (code, tenant_id, campaign_id, job_id, contact_id, url) \
             SELECT c, $1, $2, j, k, u FROM unnest($3::text[], $4::uuid[], $5::uuid[], $6::text[]) AS x(c, j, k, u)",
            &[&tenant_id, &campaign_id, &codes, &jobs, &contacts, &urls],
        )
        .await?;
    }
    Ok(())
}

/// A campaign's report: (human clicks, bot clicks, contacts who clicked, opt-outs by reply since it was queued).
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn engagement(tx: &Transaction, id: Uuid, since: Option<DateTime<Utc>>) -> Result<(i64, i64, i64, i64)> {
    let clicks = tx
        .query_one(
            "SELECT count(*) FILTER (WHERE NOT bot), count(*) FILTER (WHERE bot), \
                    count(DISTINCT contact_id) FILTER (WHERE NOT bot) FROM link_clicks WHERE campaign_id = $1",
            &[&id],
        )
        .await?;
    let opt_outs: i64 = match since {
        None => 0,
        Some(since) => tx
            .query_one(
                "SELECT count(*) FROM do_not_contact d WHERE d.reason IN ('stop_keyword', 'provider_opt_out') \
                 AND d.added_at >= $2 AND d.phone IN (SELECT phone FROM send_jobs WHERE campaign_id = $1)",
                &[&id, &since],
            )
            .await?
            .get(0),
    };
    Ok((clicks.get(0), clicks.get(1), clicks.get(2), opt_outs))
}
