//! Gift intake with group commit: `POST /v1/gifts` requests that arrive together are written together.
//!
//! A request is parsed and validated in its handler, then handed to a small pool of writers. A writer takes
//! whatever has queued up (at most `max_batch`) and writes each tenant's share in one transaction: one statement
//! looks for every `Idempotency-Key`, one checks every donor, one every external reference, one inserts the gifts,
//! one writes their event to the outbox, one stores the keys with their responses, one commit. Every request is
//! answered only after the transaction holding its gift has committed, so a 201 still means the gift and its
//! event are durable.
//! Under a light load a batch is one request and nothing waits; under load the database's cost per gift falls
//! with the batch size.
//!
//! Gifts written together are announced together: one `fundraising.gift.batch_upserted.v1` carries them all (a
//! gift written alone gets its own `fundraising.gift.upserted.v1`), which the contract makes equivalent to one
//! upserted event per gift. So the relay, the broker and every consumer (rollup, messaging) handle one message per
//! transaction rather than one per gift. The batch's event carries the trace context of its first request.
//!
//! A request that fails its checks (unknown donor, reference taken, key reused) gets its error and its claimed
//! key is released, while the others commit. If the batch's transaction itself fails, each request is written
//! again on its own ([`create_one`]), so one request's problem never becomes another's.
//!
//! A job, not a route: it answers with an [`IntakeError`], which `routes::gifts` turns into problem+json.

use crate::PRODUCER;
use crate::app::FieldProblem;
use crate::app::gift_view::GiftView;
use crate::app::links::{LinkError, check_links, gather_links};
use crate::app::new_gifts::{self, GiftEvents, NewGiftRecord, NewGiftsError, Refusal};
use crate::app::pledges::{SettleError, settle_pledges};
use crate::db::{donors, gifts};
use crate::domain::GiftDetails;
use almoner_db::{DbError, GroupCommit, IdempotencyOutcome, Pool, idempotency, outbox};
use almoner_events::Envelope;
use almoner_events::fundraising::GiftUpsertedV1;
use std::collections::HashSet;
use uuid::Uuid;

/// Why a gift was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The gift's donor is not one of the tenant's.
    #[error("no such donor")]
    UnknownDonor,
    #[error("another gift from this source already has this reference")]
    ReferenceTaken,
    #[error("this Idempotency-Key was used with a different request body")]
    KeyReused,
    /// The writers have stopped: the service is going down.
    #[error("the service is shutting down; try again")]
    ShuttingDown,
    /// Allocations, soft credits or the pledge name what the gift cannot be linked to.
    #[error("{}", crate::app::describe(.0))]
    InvalidLinks(Vec<FieldProblem>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<LinkError> for IntakeError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::Invalid(problems) => Self::InvalidLinks(problems),
            LinkError::Db(e) => Self::Db(e),
            LinkError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<Refusal> for IntakeError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::UnknownDonor => Self::UnknownDonor,
            Refusal::ReferenceTaken => Self::ReferenceTaken,
            Refusal::InvalidLinks(problems) => Self::InvalidLinks(problems),
        }
    }
}

impl From<NewGiftsError> for IntakeError {
    fn from(error: NewGiftsError) -> Self {
        match error {
            NewGiftsError::Db(e) => Self::Db(e),
            NewGiftsError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<SettleError> for IntakeError {
    fn from(error: SettleError) -> Self {
        match error {
            SettleError::Db(e) => Self::Db(e),
            SettleError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

/// A failure of the whole batch's transaction, which then falls back to one transaction per gift.
fn batch_failure(error: impl Into<IntakeError>) -> DbError {
    match error.into() {
        IntakeError::Db(e) => e,
        other => DbError::Unexpected(anyhow::Error::new(other)),
    }
}

/// A validated gift to record.
#[derive(Debug)]
pub struct Submission {
    pub tenant_id: Uuid,
    pub details: GiftDetails,
    /// The `Idempotency-Key` and the request's hash.
    pub idempotency: Option<(String, Vec<u8>)>,
    /// The request's trace context, carried by the gift's event.
    pub traceparent: Option<String>,
}

/// What became of a submission.
#[derive(Debug)]
pub enum Recorded {
    Created(GiftView),
    /// The key was used before with the same request: its stored response.
    Replay {
        status: u16,
        body: serde_json::Value,
    },
}

type Reply = Result<Recorded, IntakeError>;

/// Hands submissions to the writers. Cheap to clone.
#[derive(Clone)]
pub struct GiftIntake {
    queue: GroupCommit<Submission, Reply>,
}

impl GiftIntake {
    /// Starts `writers` writers taking up to `max_batch` submissions each; they stop when every clone of the
    /// intake is dropped and the queue is empty.
    pub fn start(pool: Pool, writers: usize, max_batch: usize) -> Self {
        let queue = GroupCommit::start("fundraising_intake", writers, max_batch, move |batch: Vec<Submission>| {
            let pool = pool.clone();
            async move { write_batch(&pool, batch).await }
        });
        Self { queue }
    }

    /// Records the gift; returns once it is committed (or refused).
    pub async fn submit(&self, submission: Submission) -> Reply {
        self.queue.submit(submission).await.unwrap_or(Err(IntakeError::ShuttingDown))
    }
}

/// Writes a batch, per tenant; each submission's result, in order.
async fn write_batch(pool: &Pool, batch: Vec<Submission>) -> Vec<Reply> {
    almoner_db::group_commit::per_group(
        &batch,
        |s| s.tenant_id,
        |tenant_id, group| async move { write_tenant(pool, tenant_id, &group).await },
    )
    .await
}

/// Writes one tenant's submissions together, falling back to one at a time when that fails; results in order.
async fn write_tenant(pool: &Pool, tenant_id: Uuid, group: &[&Submission]) -> Vec<Reply> {
    // A key sent twice in one batch: the later request waits for the earlier one's commit and then replays it.
    let mut keys = HashSet::new();
    let (together, later): (Vec<usize>, Vec<usize>) = (0..group.len()).partition(|i| match &group[*i].idempotency {
        Some((key, _)) => keys.insert(key.clone()),
        None => true,
    });
    let mut results: Vec<Option<Reply>> = group.iter().map(|_| None).collect();
    let submissions: Vec<&Submission> = together.iter().map(|i| group[*i]).collect();
    let written = if submissions.len() > 1 {
        match write_group(pool, tenant_id, &submissions).await {
            Ok(written) => Some(written),
            Err(error) => {
                tracing::warn!(%error, gifts = submissions.len(), "a batch of gifts failed; writing them one by one");
                None
            }
        }
    } else {
        None
    };
    match written {
        Some(written) => {
            for (index, result) in together.iter().zip(written) {
                results[*index] = Some(result);
            }
        }
        None => {
            for index in &together {
                results[*index] = Some(create_one(pool, group[*index]).await);
            }
        }
    }
    for index in later {
        results[index] = Some(create_one(pool, group[index]).await);
    }
    results.into_iter().map(|r| r.expect("every submission has a result")).collect()
}

fn event(submission: &Submission, stored: &gifts::StoredGift) -> Envelope<GiftUpsertedV1> {
    Envelope::new(submission.tenant_id, PRODUCER, GiftUpsertedV1 { gift: stored.gift.clone() })
        .with_traceparent(submission.traceparent.clone())
}

/// Records one gift at revision 1 in a transaction of its own.
#[tracing::instrument(skip_all, fields(gift_id = tracing::field::Empty))]
pub async fn create_one(pool: &Pool, submission: &Submission) -> Reply {
    let details = &submission.details;
    let tx = pool.tenant_tx(submission.tenant_id).await?;
    // Pipelined: the key's claim and both checks go out together. The claim is looked at first, so a replay
    // answers as before even if the donor has since gone.
    let (claimed, donor_exists, reference_taken_already) =
        futures::join!(claim(&tx, submission.idempotency.as_ref()), donors::exists(&tx, details.donor_id), async {
            match &details.external_reference {
                Some(reference) => gifts::reference_taken(&tx, details.source.as_str(), reference, None).await,
                None => Ok(false),
            }
        });
    let key = match claimed? {
        Claimed::Proceed(key) => key,
        Claimed::Replay { status, body } => {
            tx.commit().await?;
            return Ok(Recorded::Replay { status, body });
        }
    };
    if !donor_exists? {
        return Err(IntakeError::UnknownDonor);
    }
    if reference_taken_already? {
        return Err(IntakeError::ReferenceTaken);
    }
    check_links(details, None, &gather_links(&tx, &[details]).await?)?;
    let id = Uuid::now_v7();
    tracing::Span::current().record("gift_id", tracing::field::display(id));
    let stored =
        gifts::insert(&tx, &gifts::NewGift { id, details, amount_minor: details.amount_minor, refund_of: None })
            .await?;
    let view = GiftView::from(stored.clone());
    let envelope = event(submission, &stored);
    let response = match &key {
        Some(_) => Some(serde_json::to_value(&view).map_err(anyhow::Error::from)?),
        None => None,
    };
    // Pipelined as well: the event and the remembered response.
    let (emitted, remembered) = futures::join!(outbox::enqueue(&tx, &envelope), async {
        match (&key, &response) {
            (Some(key), Some(body)) => idempotency::complete(&tx, key, 201, body).await,
            _ => Ok(()),
        }
    });
    emitted?;
    remembered?;
    if let Some(pledge_id) = details.pledge_id {
        settle_pledges(&tx, submission.tenant_id, &[pledge_id], submission.traceparent.clone()).await?;
    }
    tx.commit().await?;
    Ok(Recorded::Created(view))
}

/// Several submissions of one tenant (distinct keys) in one transaction; each one's result, in order. `Err` only
/// when the transaction failed as a whole.
#[tracing::instrument(skip_all, fields(gifts = submissions.len()))]
async fn write_group(pool: &Pool, tenant_id: Uuid, submissions: &[&Submission]) -> Result<Vec<Reply>, DbError> {
    let mut results: Vec<Option<Reply>> = submissions.iter().map(|_| None).collect();
    let tx = pool.tenant_tx(tenant_id).await?;

    // Keys: those already stored (answered, expired, or claimed by a committed transaction) are looked at one by
    // one, in key order (replay, reuse, expiry; `begin` claims the ones to write again). The others were absent a
    // moment ago: they are stored with their responses at the end, in one statement, rather than claimed now and
    // answered later, which wrote every key's row twice. A concurrent request that takes one of them first makes
    // that statement wait for its commit and then report it; the batch then rolls back and its gifts go one at a
    // time, through `begin`, which replays or refuses the duplicate.
    let mut keyed: Vec<(usize, &str, &[u8])> = submissions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.idempotency.as_ref().map(|(key, hash)| (i, key.as_str(), hash.as_slice())))
        .collect();
    if !keyed.is_empty() {
        let names: Vec<&str> = keyed.iter().map(|(_, key, _)| *key).collect();
        let present: HashSet<String> = idempotency::present_many(&tx, &names).await?.into_iter().collect();
        keyed.retain(|(_, key, _)| present.contains(*key));
        keyed.sort_unstable_by_key(|(_, key, _)| *key);
    }
    let mut claimed: HashSet<String> = HashSet::new();
    for (index, key, hash) in keyed {
        match idempotency::begin(&tx, key, hash).await? {
            IdempotencyOutcome::New => {
                claimed.insert(key.to_owned());
            }
            IdempotencyOutcome::Replay { status, body } => results[index] = Some(Ok(Recorded::Replay { status, body })),
            IdempotencyOutcome::Mismatch => results[index] = Some(Err(IntakeError::KeyReused)),
        }
    }

    // Donors, references and links (pledges locked, in id order), for every submission still going: the checks
    // processing a gift batch makes too.
    let open = |results: &[Option<Reply>]| -> Vec<usize> {
        (0..submissions.len()).filter(|i| results[*i].is_none()).collect()
    };
    let checking = open(&results);
    let details: Vec<&GiftDetails> = checking.iter().map(|i| &submissions[*i].details).collect();
    let refused = new_gifts::refusals(&tx, &details).await.map_err(batch_failure)?;
    for (index, refusal) in checking.into_iter().zip(refused) {
        if let Some(refusal) = refusal {
            results[index] = Some(Err(refusal.into()));
        }
    }

    // Keys claimed for requests that failed go back, so their retries can claim them.
    let release: Vec<&str> = submissions
        .iter()
        .zip(&results)
        .filter(|(_, result)| matches!(result, Some(Err(_))))
        .filter_map(|(s, _)| s.idempotency.as_ref().map(|(key, _)| key.as_str()))
        .filter(|key| claimed.contains(*key))
        .collect();
    if !release.is_empty() {
        idempotency::release_many(&tx, &release).await?;
    }

    let going = open(&results);
    if !going.is_empty() {
        let new: Vec<NewGiftRecord> = going
            .iter()
            .map(|i| NewGiftRecord {
                id: Uuid::now_v7(),
                details: &submissions[*i].details,
                traceparent: submissions[*i].traceparent.clone(),
            })
            .collect();
        let stored =
            new_gifts::record(&tx, tenant_id, &new, None, GiftEvents::Together).await.map_err(batch_failure)?;
        // Keys `begin` claimed take their response; absent ones are stored with it.
        let mut completed = Vec::new();
        let mut answered = Vec::new();
        let mut views = Vec::with_capacity(going.len());
        for (index, gift) in going.iter().zip(stored) {
            let view = GiftView::from(gift);
            if let Some((key, hash)) = &submissions[*index].idempotency {
                let body = serde_json::to_value(&view).map_err(|e| anyhow::anyhow!(e))?;
                if claimed.contains(key) {
                    completed.push((key.as_str(), 201, body));
                } else {
                    answered.push((key.as_str(), hash.as_slice(), 201, body));
                }
            }
            views.push((*index, view));
        }
        if !completed.is_empty() {
            idempotency::complete_many(&tx, &completed).await?;
        }
        if !answered.is_empty() && !idempotency::insert_answered_many(&tx, &answered).await? {
            return Err(DbError::Unexpected(anyhow::anyhow!(
                "a concurrent request took one of the batch's Idempotency-Keys"
            )));
        }
        tx.commit().await?;
        for (index, view) in views {
            results[index] = Some(Ok(Recorded::Created(view)));
        }
    } else {
        tx.commit().await?;
    }
    Ok(results.into_iter().map(|r| r.expect("every submission has a result")).collect())
}

/// What to do with a gift after claiming its `Idempotency-Key`.
enum Claimed {
    /// Record it; the key (if any) takes its response.
    Proceed(Option<String>),
    /// The same request was answered before: its stored response.
    Replay { status: u16, body: serde_json::Value },
}

/// Claims the submission's key in the tenant transaction, or refuses a key reused with another body.
async fn claim(tx: &almoner_db::Transaction, key: Option<&(String, Vec<u8>)>) -> Result<Claimed, IntakeError> {
    let Some((key, hash)) = key else { return Ok(Claimed::Proceed(None)) };
    match idempotency::begin(tx, key, hash).await? {
        IdempotencyOutcome::New => Ok(Claimed::Proceed(Some(key.clone()))),
        IdempotencyOutcome::Mismatch => Err(IntakeError::KeyReused),
        IdempotencyOutcome::Replay { status, body } => Ok(Claimed::Replay { status, body }),
    }
}
