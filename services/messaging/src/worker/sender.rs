//! The sender: takes due send jobs and hands them to Twilio, each once.
//!
//! A job goes `queued` → `sending` (committed before the call) → `sent` with the provider's sid (or `blocked`,
//! `failed`, or back to `queued` to try again). Jobs are taken a batch at a time in the tenant's transaction,
//! which locks the tenant's settings row (so two senders take turns per tenant and budgets hold) and the queue
//! rows with `FOR UPDATE SKIP LOCKED` (so no two senders take one job). A job whose number went on the
//! do-not-contact list since it was queued is `blocked`, not sent. Before every call the tenant's kill switch is
//! read again if the sender's view of it is older than `sms.kill_switch_check_ms`: a pause stops calls within
//! that time, and the jobs taken but not sent go back to the queue.
//!
//! **Pace, shared.** Each sender number's pace (`sms.messages_per_second`) is kept in the database
//! (`sender_pace`), and a batch reserves its slots there in the transaction that takes it, under the tenant's
//! settings lock: every replica's sender draws from one pace per number, so adding replicas never sends faster
//! than Twilio allows a number. **Concurrent calls.** Up to `sms.concurrency` calls are in flight at once, each
//! starting at its slot: a provider taking 200 ms per call still sees the configured pace.
//!
//! A job left `sending` by a sender that died between committing and recording the answer keeps its leased queue
//! row; when the lease runs out it is taken again and looked up at Twilio before anything is sent.

use crate::db::{do_not_contact, provider, settings};
use crate::domain::campaign::spend_windows;
use crate::domain::schedule::zone;
use crate::metrics::{self, BudgetUse, SendResult};
use crate::twilio::{Account, SendOutcome, TwilioClient};
use almoner_db::{Pool, Transaction};
use almoner_secret_box::SecretBox;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Attempts before a job the provider keeps refusing to take (5xx, 429, unreachable) fails.
pub const MAX_ATTEMPTS: i32 = 6;

/// Wakes the sender when jobs are queued. Cheap to clone.
#[derive(Clone, Default)]
pub struct SenderWake(Arc<Notify>);

impl SenderWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// What the sender needs to run.
pub struct Sender {
    pub pool: Pool,
    pub client: TwilioClient,
    pub sealer: Option<SecretBox>,
    pub batch_size: i64,
    pub messages_per_second: u32,
    /// Calls to the provider in flight at once.
    pub concurrency: usize,
    pub kill_switch_check: Duration,
    /// How long a taken job's queue row stays out of reach (its lease): after that, a job still `sending` is
    /// taken again and looked up at Twilio.
    pub sending_timeout: Duration,
    pub wake: SenderWake,
}

/// A job taken for sending.
#[derive(Debug, Clone)]
struct Taken {
    id: Uuid,
    campaign_id: Uuid,
    phone: String,
    body: String,
    sender: String,
    attempts: i32,
    /// What Twilio bills it as, counted when it is accepted.
    segments: i32,
    /// Left `sending` by a sender that stopped before recording Twilio's answer: looked up before anything else.
    stale: bool,
    /// When its call may start: its sender number's next slot, reserved when it was taken; `None` without pacing.
    slot: Option<DateTime<Utc>>,
}

/// The sender's view of a tenant's kill switch during a batch, read again when older than the check interval.
struct KillSwitchView {
    tenant_id: Uuid,
    check: Duration,
    /// When it was last read, and what it said.
    last: tokio::sync::Mutex<(Instant, bool)>,
}

impl KillSwitchView {
    async fn paused(&self, pool: &Pool) -> almoner_db::Result<bool> {
        let mut last = self.last.lock().await;
        if last.0.elapsed() >= self.check {
            let tx = pool.tenant_tx(self.tenant_id).await?;
            let paused = tx.query_opt("SELECT paused FROM settings", &[]).await?.is_some_and(|r| r.get::<_, bool>(0));
            tx.commit().await?;
            *last = (Instant::now(), paused);
        }
        Ok(last.1)
    }
}

impl Sender {
    /// Sends due jobs until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let tenants = match self.due_tenants().await {
                Ok(t) => t,
                Err(error) => {
                    tracing::warn!(%error, "could not look for due messages");
                    Vec::new()
                }
            };
            let mut sent_any = false;
            for tenant_id in tenants {
                match self.send_batch(tenant_id, &shutdown).await {
                    Ok(n) => sent_any |= n > 0,
                    Err(error) => tracing::warn!(error = format!("{error:#}"), %tenant_id, "a send batch failed"),
                }
            }
            if !sent_any {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.wake.0.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }

    /// Tenants with takeable jobs due, the longest-waiting first: a loose scan of the queue's tenants (one index
    /// probe each), then each tenant's earliest takeable job, so the cost does not grow with the queue's length.
    async fn due_tenants(&self) -> almoner_db::Result<Vec<Uuid>> {
        let tx = self.pool.system_tx().await?;
        let rows = tx
            .query(
                "WITH RECURSIVE t(tenant_id) AS ( \
                   (SELECT tenant_id FROM send_queue WHERE NOT held ORDER BY tenant_id LIMIT 1) \
                   UNION ALL \
                   SELECT (SELECT q.tenant_id FROM send_queue q WHERE NOT q.held AND q.tenant_id > t.tenant_id \
                           ORDER BY q.tenant_id LIMIT 1) FROM t WHERE t.tenant_id IS NOT NULL) \
                 SELECT t.tenant_id FROM t CROSS JOIN LATERAL \
                   (SELECT q.send_at FROM send_queue q WHERE q.tenant_id = t.tenant_id AND NOT q.held \
                    ORDER BY q.send_at LIMIT 1) first \
                 WHERE t.tenant_id IS NOT NULL AND first.send_at <= now() ORDER BY first.send_at LIMIT 20",
                &[],
            )
            .await?;
        tx.commit().await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Takes, sends and records one batch of a tenant's due jobs; how many were handed to the provider.
    #[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, jobs = tracing::field::Empty))]
    async fn send_batch(&self, tenant_id: Uuid, shutdown: &CancellationToken) -> anyhow::Result<usize> {
        use futures::StreamExt;
        let Some((account, jobs)) = self.take(tenant_id).await? else { return Ok(0) };
        tracing::Span::current().record("jobs", jobs.len());
        let kill = KillSwitchView {
            tenant_id,
            check: self.kill_switch_check,
            last: tokio::sync::Mutex::new((Instant::now(), false)),
        };
        let mut campaigns: Vec<Uuid> = Vec::new();
        for job in &jobs {
            if !campaigns.contains(&job.campaign_id) {
                campaigns.push(job.campaign_id);
            }
        }
        // Each job's call starts at its slot, at most `concurrency` in flight; one the kill switch (or a stop)
        // catches before its call is not sent. `halt` ends every wait at once: on a stop, on a pause (a watcher
        // reads the switch every `kill_switch_check` while jobs wait for their slots), and when the batch is done.
        let halt = shutdown.child_token();
        let (kill, account, halt_ref) = (&kill, &account, &halt);
        let work = async {
            let outcomes: Vec<(Taken, anyhow::Result<Option<bool>>)> = futures::stream::iter(jobs)
                .map(|job| async move {
                    if let Some(wait) = job.slot.and_then(|slot| (slot - Utc::now()).to_std().ok()) {
                        tokio::select! {
                            () = halt_ref.cancelled() => {}
                            () = tokio::time::sleep(wait) => {}
                        }
                    }
                    let result = async {
                        if halt_ref.is_cancelled() || kill.paused(&self.pool).await? {
                            return Ok(None);
                        }
                        let outcome = self.client_send(account, &job).await;
                        let accepted = matches!(outcome, SendOutcome::Accepted { .. });
                        self.record(tenant_id, &job, outcome).await?;
                        Ok(Some(accepted))
                    }
                    .await;
                    (job, result)
                })
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
            halt_ref.cancel();
            outcomes
        };
        let watch = async {
            loop {
                tokio::select! {
                    () = halt_ref.cancelled() => return,
                    () = tokio::time::sleep(self.kill_switch_check) => {}
                }
                if kill.paused(&self.pool).await.unwrap_or(false) {
                    halt_ref.cancel();
                    return;
                }
            }
        };
        let (outcomes, ()) = tokio::join!(work, watch);
        let mut handed = 0;
        let mut unsent = Vec::new();
        let mut failure = None;
        for (job, result) in outcomes {
            match result {
                Ok(Some(accepted)) => handed += usize::from(accepted),
                Ok(None) => unsent.push(job),
                // Left `sending` with its leased queue row: looked up at the provider when the lease runs out.
                Err(error) => failure = Some(error),
            }
        }
        if !unsent.is_empty() {
            // Paused (or stopping): what was taken and not sent goes back to the queue, due at once.
            self.requeue(tenant_id, &unsent).await?;
            tracing::warn!(returned = unsent.len(), "sending stopped: the kill switch is on, or the sender stops");
        }
        self.complete(tenant_id, &campaigns).await?;
        match failure {
            Some(error) => Err(error),
            None => Ok(handed),
        }
    }

    async fn client_send(&self, account: &Account, job: &Taken) -> SendOutcome {
        if job.stale {
            match self.client.find(account, &job.phone, &job.body).await {
                Ok(Some(sid)) => {
                    tracing::info!(job_id = %job.id, "a job left sending was taken by Twilio: recorded, not sent again");
                    return SendOutcome::Accepted { sid };
                }
                Ok(None) => tracing::info!(job_id = %job.id, "a job left sending never reached Twilio: sending it"),
                // Unknown: not sent (it may have gone); looked up again after the lease.
                Err(reason) => return SendOutcome::Retry { reason },
            }
        }
        self.client.send(account, &job.sender, &job.phone, &job.body).await
    }

    /// Takes up to a batch of the tenant's due jobs of live campaigns: `sending`, off the queue, committed.
    async fn take(&self, tenant_id: Uuid) -> anyhow::Result<Option<(Account, Vec<Taken>)>> {
        let tx = self.pool.tenant_tx(tenant_id).await?;
        let current = settings::lock(&tx).await?;
        if current.paused {
            tx.commit().await?;
            return Ok(None);
        }
        let Some(stored) = provider::get(&tx).await? else {
            tx.commit().await?;
            tracing::debug!("no Twilio account: messages wait");
            return Ok(None);
        };
        let Some(sealer) = &self.sealer else {
            tx.commit().await?;
            tracing::warn!("sms.secrets_key is not set: no Twilio token can be opened, messages wait");
            return Ok(None);
        };
        let auth_token = sealer.open(tenant_id.as_bytes(), &stored.auth_token_sealed)?;
        let account = Account { sid: stored.account_sid, auth_token, status_callback_url: stored.status_callback_url };
        // Each taken job keeps its queue row, leased (due again after sending_timeout) until its outcome is
        // recorded: a sender that dies leaves the job to be found again.
        let lease = self.sending_timeout.as_secs_f64();
        // The due takeable rows in due order, straight off `send_queue_takeable_idx`; then which belong to a live
        // campaign (or are being sent): those are leased, the others held until their campaign resumes.
        let picked = tx
            .query(
                "WITH picked AS ( \
                   SELECT job_id FROM send_queue WHERE tenant_id = $1 AND NOT held AND send_at <= now() \
                   ORDER BY send_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 SELECT p.job_id, coalesce(c.status IN ('scheduled', 'running') OR j.status = 'sending', false) \
                 FROM picked p LEFT JOIN send_jobs j ON j.id = p.job_id \
                 LEFT JOIN campaigns c ON c.id = j.campaign_id",
                &[&tenant_id, &self.batch_size],
            )
            .await?;
        let (mut ids, mut held) = (Vec::new(), Vec::new());
        for row in &picked {
            let (id, live): (Uuid, bool) = (row.get(0), row.get(1));
            if live { ids.push(id) } else { held.push(id) }
        }
        if !held.is_empty() {
            tx.execute("UPDATE send_queue SET held = true WHERE job_id = ANY($1)", &[&held]).await?;
        }
        tx.execute(
            "UPDATE send_queue SET send_at = now() + make_interval(secs => $2) WHERE job_id = ANY($1)",
            &[&ids, &lease],
        )
        .await?;
        if ids.is_empty() {
            tx.commit().await?;
            return Ok(None);
        }
        // The budgets again, against what is spent and being sent (before this batch is marked): a budget
        // lowered after queueing still holds, whichever sender takes the jobs.
        let now = Utc::now();
        let tz = zone(&current.time_zone).unwrap_or(chrono_tz::Europe::London);
        let (day, month) = spend_windows(now, tz);
        let spent = spent_since(&tx, day, month).await?;
        // A number opted out since the campaign was queued is not texted.
        tx.execute(
            "UPDATE send_jobs SET status = 'blocked', error_message = 'the number is on the do-not-contact list', \
             updated_at = now() WHERE id = ANY($1) AND status = 'queued' \
             AND phone IN (SELECT phone FROM do_not_contact)",
            &[&ids],
        )
        .await?;
        // Jobs left `sending` by a sender that stopped: looked up at Twilio before anything is sent.
        let stale: Vec<Taken> = tx
            .query(
                "SELECT j.id, j.campaign_id, j.phone, j.body, c.sender, j.attempts, j.segments FROM send_jobs j \
                 JOIN campaigns c ON c.id = j.campaign_id WHERE j.id = ANY($1) AND j.status = 'sending'",
                &[&ids],
            )
            .await?
            .iter()
            .map(|r| Taken {
                id: r.get(0),
                campaign_id: r.get(1),
                phone: r.get(2),
                body: r.get(3),
                sender: r.get(4),
                attempts: r.get(5),
                segments: r.get(6),
                stale: true,
                slot: None,
            })
            .collect();
        // Rows of jobs that have their outcome (a cancelled campaign's, say) leave the queue.
        tx.execute(
            "DELETE FROM send_queue WHERE job_id = ANY($1) AND job_id IN \
             (SELECT id FROM send_jobs WHERE id = ANY($1) AND status NOT IN ('queued', 'sending'))",
            &[&ids],
        )
        .await?;
        let rows = tx
            .query(
                "UPDATE send_jobs j SET status = 'sending', sending_at = now(), attempts = j.attempts + 1, \
                 updated_at = now() FROM campaigns c WHERE j.id = ANY($1) AND j.status = 'queued' \
                 AND c.id = j.campaign_id RETURNING j.id, j.campaign_id, j.phone, j.body, c.sender, j.attempts, \
                 j.cost_micros, j.segments",
                &[&ids],
            )
            .await?;
        let mut jobs: Vec<(Taken, i64)> = rows
            .iter()
            .map(|r| {
                (
                    Taken {
                        id: r.get(0),
                        campaign_id: r.get(1),
                        phone: r.get(2),
                        body: r.get(3),
                        sender: r.get(4),
                        attempts: r.get(5),
                        segments: r.get(7),
                        stale: false,
                        slot: None,
                    },
                    r.get(6),
                )
            })
            .collect();
        let (mut day_total, mut month_total) = spent;
        let mut over = Vec::new();
        jobs.retain(|(job, cost)| {
            if day_total + cost > current.daily_budget_micros || month_total + cost > current.monthly_budget_micros {
                over.push(job.id);
                false
            } else {
                day_total += cost;
                month_total += cost;
                true
            }
        });
        metrics::observe_budget(
            tenant_id,
            now,
            tz,
            BudgetUse {
                day_spent_micros: day_total,
                daily_budget_micros: current.daily_budget_micros,
                month_spent_micros: month_total,
                monthly_budget_micros: current.monthly_budget_micros,
            },
        );
        if !over.is_empty() {
            // Due again when the next day starts in the tenant's zone.
            let tomorrow = spend_windows(day + chrono::Duration::hours(36), tz).0;
            requeue_at(&tx, tenant_id, &over, tomorrow).await?;
            metrics::metrics().budget_deferred.inc_by(over.len() as u64);
            tracing::warn!(jobs = over.len(), until = %tomorrow, "the budget is spent: jobs wait for the next day");
        }
        tx.execute(
            "UPDATE campaigns SET status = 'running', revision = revision + 1, updated_at = now() \
             WHERE status = 'scheduled' AND id IN (SELECT campaign_id FROM send_jobs WHERE id = ANY($1))",
            &[&ids],
        )
        .await?;
        let mut taken = stale;
        taken.extend(jobs.into_iter().map(|(job, _)| job));
        if taken.is_empty() {
            tx.commit().await?;
            return Ok(None);
        }
        self.reserve_slots(&tx, &mut taken).await?;
        tx.commit().await?;
        Ok(Some((account, taken)))
    }

    /// Gives each job its call's start: its sender number's next slots, reserved in `sender_pace` in the taking
    /// transaction (under the tenant's settings lock), so that every replica's sender shares one pace per number.
    async fn reserve_slots(&self, tx: &Transaction, jobs: &mut [Taken]) -> almoner_db::Result<()> {
        if self.messages_per_second == 0 {
            return Ok(());
        }
        let interval_us = 1_000_000 / i64::from(self.messages_per_second);
        let mut senders: Vec<String> = jobs.iter().map(|j| j.sender.clone()).collect();
        senders.sort();
        senders.dedup();
        for sender in senders {
            let n = i64::try_from(jobs.iter().filter(|j| j.sender == sender).count()).unwrap_or(i64::MAX);
            // The first slot is the number's next free one (or now); the number's next free one moves past the batch.
            let first: DateTime<Utc> = tx
                .query_one(
                    "INSERT INTO sender_pace AS p (sender, next_at) VALUES ($1, now() + make_interval(secs => $2::float8 / 1e6)) \
                     ON CONFLICT (tenant_id, sender) DO UPDATE \
                     SET next_at = greatest(p.next_at, now()) + make_interval(secs => $2::float8 / 1e6) \
                     RETURNING next_at - make_interval(secs => $2::float8 / 1e6)",
                    &[&sender, &((n * interval_us) as f64)],
                )
                .await?
                .get(0);
            let step = chrono::Duration::microseconds(interval_us);
            for (k, job) in jobs.iter_mut().filter(|j| j.sender == sender).enumerate() {
                job.slot = Some(first + step * i32::try_from(k).unwrap_or(i32::MAX));
            }
        }
        Ok(())
    }

    async fn requeue(&self, tenant_id: Uuid, jobs: &[Taken]) -> almoner_db::Result<()> {
        let tx = self.pool.tenant_tx(tenant_id).await?;
        let ids: Vec<Uuid> = jobs.iter().map(|j| j.id).collect();
        tx.execute("UPDATE send_jobs SET attempts = attempts - 1 WHERE id = ANY($1) AND status = 'sending'", &[&ids])
            .await?;
        requeue_at(&tx, tenant_id, &ids, Utc::now()).await?;
        tx.commit().await
    }

    /// Records what the provider said of one job.
    #[tracing::instrument(skip_all, fields(job_id = %job.id))]
    async fn record(&self, tenant_id: Uuid, job: &Taken, outcome: SendOutcome) -> almoner_db::Result<()> {
        let tx = self.pool.tenant_tx(tenant_id).await?;
        let result = match &outcome {
            SendOutcome::Accepted { .. } => SendResult::Accepted,
            SendOutcome::OptedOut => SendResult::OptedOut,
            SendOutcome::Refused { .. } => SendResult::Refused,
            SendOutcome::Retry { .. } if job.attempts >= MAX_ATTEMPTS => SendResult::GaveUp,
            SendOutcome::Retry { .. } => SendResult::Retried,
        };
        if !matches!(outcome, SendOutcome::Retry { .. }) || job.attempts >= MAX_ATTEMPTS {
            tx.execute("DELETE FROM send_queue WHERE job_id = $1", &[&job.id]).await?;
        }
        match outcome {
            SendOutcome::Accepted { sid } => {
                let sid = Some(sid).filter(|s| !s.is_empty());
                tx.execute(
                    "UPDATE send_jobs SET status = 'sent', provider_sid = $2, sent_at = now(), updated_at = now() \
                     WHERE id = $1 AND status = 'sending'",
                    &[&job.id, &sid],
                )
                .await?;
            }
            SendOutcome::OptedOut => {
                do_not_contact::add(&tx, &job.phone, "provider_opt_out", Some("Twilio error 21610"), "twilio").await?;
                tx.execute(
                    "UPDATE send_jobs SET status = 'blocked', error_code = '21610', \
                     error_message = 'Twilio: the number unsubscribed', updated_at = now() WHERE id = $1",
                    &[&job.id],
                )
                .await?;
                tracing::info!("Twilio reports the number opted out: put on the do-not-contact list");
            }
            SendOutcome::Refused { code, message } => {
                tx.execute(
                    "UPDATE send_jobs SET status = 'failed', error_code = $2, error_message = $3, updated_at = now() \
                     WHERE id = $1",
                    &[&job.id, &code, &message],
                )
                .await?;
                tracing::warn!(%code, %message, "Twilio refused a message");
            }
            SendOutcome::Retry { reason } if job.attempts >= MAX_ATTEMPTS => {
                tx.execute(
                    "UPDATE send_jobs SET status = 'failed', error_message = $2, updated_at = now() WHERE id = $1",
                    &[&job.id, &format!("gave up after {} attempts: {reason}", job.attempts)],
                )
                .await?;
                tracing::warn!(%reason, "gave up on a message");
            }
            SendOutcome::Retry { reason } => {
                let backoff = chrono::Duration::seconds(1 << job.attempts.clamp(0, 8));
                tx.execute("UPDATE send_jobs SET error_message = $2 WHERE id = $1", &[&job.id, &reason]).await?;
                requeue_at(&tx, tenant_id, &[job.id], Utc::now() + backoff).await?;
                tracing::info!(%reason, attempt = job.attempts, "a message will be tried again");
            }
        }
        tx.commit().await?;
        // Counted once recorded: a job whose outcome could not be recorded is looked up again, and counted then.
        metrics::sent(result, job.segments);
        Ok(())
    }

    /// Marks these campaigns completed when none of their jobs waits or is being sent.
    async fn complete(&self, tenant_id: Uuid, campaigns: &[Uuid]) -> almoner_db::Result<()> {
        if campaigns.is_empty() {
            return Ok(());
        }
        let tx = self.pool.tenant_tx(tenant_id).await?;
        tx.execute(
            "UPDATE campaigns c SET status = 'completed', completed_at = now(), revision = revision + 1, \
             updated_at = now() WHERE c.id = ANY($1) AND c.status = 'running' AND NOT EXISTS \
             (SELECT 1 FROM send_jobs j WHERE j.campaign_id = c.id AND j.status IN ('queued', 'sending'))",
            &[&campaigns],
        )
        .await?;
        tx.commit().await
    }
}

/// Spend of sent messages since the day's and the month's start, counting those being sent. Each part is a range
/// of one index (`send_jobs_sent_at_idx`, `send_jobs_sending_idx`), not a scan of the tenant's jobs.
async fn spent_since(tx: &Transaction, day: DateTime<Utc>, month: DateTime<Utc>) -> almoner_db::Result<(i64, i64)> {
    let row = tx
        .query_one(
            "SELECT \
               coalesce((SELECT sum(cost_micros) FROM send_jobs WHERE sent_at >= $1 \
                         AND status IN ('sent', 'delivered', 'undelivered')), 0)::bigint \
             + coalesce((SELECT sum(cost_micros) FROM send_jobs WHERE status = 'sending' AND sending_at >= $1), 0)::bigint, \
               coalesce((SELECT sum(cost_micros) FROM send_jobs WHERE sent_at >= $2 \
                         AND status IN ('sent', 'delivered', 'undelivered')), 0)::bigint \
             + coalesce((SELECT sum(cost_micros) FROM send_jobs WHERE status = 'sending' AND sending_at >= $2), 0)::bigint",
            &[&day, &month],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Puts jobs back on the queue, `queued`, due at `at`.
async fn requeue_at(tx: &Transaction, tenant_id: Uuid, ids: &[Uuid], at: DateTime<Utc>) -> almoner_db::Result<()> {
    tx.execute(
        "UPDATE send_jobs SET status = 'queued', send_at = $2, updated_at = now() WHERE id = ANY($1)",
        &[&ids, &at],
    )
    .await?;
    tx.execute(
        "INSERT INTO send_queue (job_id, tenant_id, send_at) SELECT j, $2, $3 FROM unnest($1::uuid[]) AS x(j) \
         ON CONFLICT (job_id) DO UPDATE SET send_at = EXCLUDED.send_at",
        &[&ids, &tenant_id, &at],
    )
    .await?;
    Ok(())
}
