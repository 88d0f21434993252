//! `/v1/gift-batches`: batch gift entry. Staff keying a stack of cheques or a bank statement create a batch with
//! the count and total they expect, key each gift into it as an entry, and process it once the entries' count and
//! total match: every entry then becomes a gift, all in one transaction, through the same checks and the same
//! writing as `POST /v1/gifts` (`app::new_gifts`), each gift carrying the batch's id.
//!
//! Until the batch is processed its entries are not gifts: no event, no rollup, no Gift Aid. An entry is validated
//! exactly as a gift is (`routes::gifts`' parsing), after the batch's defaults fill what it leaves out, and checked
//! again when the batch is processed, since its donor, funds or pledge may have changed meanwhile. Every change
//! locks the batch's row, so processing sees exactly the entries it checked and concurrent calls create the gifts
//! once. Batches publish no events of their own.

use super::conventions::{
    Claim, claim, conflict, iso_date, json_body, merge_patch, path_id, remember, replay_response,
};
use super::gifts::{AllocationInput, AllocationView, GiftInput, SoftCreditInput, SoftCreditView, parse_gift};
use super::schemas::{CurrencyCode, SettableGiftStatus};
use crate::app::new_gifts::{self, NewGiftRecord};
use crate::db::funds;
use crate::db::gift_batches::{self, StoredBatch, StoredEntry};
use crate::domain::gift_batch::{
    BatchDetails, BatchStatus, MAX_BATCH_ENTRIES, Tally, parse_expected_count, parse_expected_total,
};
use crate::domain::split::soft_credit_kind_name;
use crate::domain::{GiftDetails, optional_text, required_text};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use almoner_db::{Pool, Transaction};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal};
use almoner_types::Currency;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_gift_batch)
        .service(list_gift_batches)
        .service(get_gift_batch)
        .service(update_gift_batch)
        .service(delete_gift_batch)
        .service(create_gift_batch_entry)
        .service(list_gift_batch_entries)
        .service(get_gift_batch_entry)
        .service(update_gift_batch_entry)
        .service(delete_gift_batch_entry)
        .service(process_gift_batch);
}

/// A new gift batch.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiftBatchInput {
    /// Required: 1 to 200 characters once trimmed, e.g. `Cheques 2025-06-02`.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    /// Required: ISO 4217; every entry must be in it (an entry that leaves it out is).
    #[schema(required = true, value_type = CurrencyCode)]
    pub currency: Option<String>,
    /// Required: how many gifts the batch holds, 1 to 10000.
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 10000)]
    pub expected_count: Option<i64>,
    /// Required: what they add up to, in minor units, more than 0.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub expected_total_minor: Option<i64>,
    /// A fund of the tenant, not archived: an entry without `allocations` is allocated to it whole.
    pub default_fund_id: Option<Uuid>,
    /// An entry without a `payment_method` gets this one; at most 50 characters.
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub default_payment_method: Option<String>,
    /// An entry without a `gift_date` gets this one.
    #[schema(value_type = Option<String>, format = Date)]
    pub default_gift_date: Option<String>,
}

/// A change to an open batch (JSON merge patch): absent members stay, `null` clears a default. The currency never
/// changes; changed defaults apply to entries keyed afterwards.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiftBatchPatch {
    #[schema(nullable = false, value_type = Option<String>, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    #[schema(nullable = false, value_type = Option<i64>, minimum = 1, maximum = 10000)]
    pub expected_count: Option<i64>,
    #[schema(nullable = false, value_type = Option<i64>, minimum = 1)]
    pub expected_total_minor: Option<i64>,
    pub default_fund_id: Option<Uuid>,
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub default_payment_method: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub default_gift_date: Option<String>,
}

/// A gift batch as clients see it, with what its entries add up to now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GiftBatchView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change to the batch itself (not to its entries).
    pub revision: i64,
    pub name: String,
    pub currency: String,
    pub expected_count: i32,
    pub expected_total_minor: i64,
    pub default_fund_id: Option<Uuid>,
    pub default_payment_method: Option<String>,
    pub default_gift_date: Option<NaiveDate>,
    /// `open` or `processed`.
    pub status: String,
    /// How many entries the batch holds.
    pub entered_count: i64,
    /// What its entries add up to, in minor units.
    pub entered_total_minor: i64,
    /// `entered_count == expected_count`.
    pub count_matches: bool,
    /// `entered_total_minor == expected_total_minor`.
    pub total_matches: bool,
    pub processed_at: Option<DateTime<Utc>>,
    /// Who processed it: the subject of their token (a member of staff or an API key).
    pub processed_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredBatch> for GiftBatchView {
    fn from(b: StoredBatch) -> Self {
        let tally = tally(&b);
        Self {
            id: b.id,
            revision: b.revision,
            name: b.name,
            currency: b.currency,
            expected_count: b.expected_count,
            expected_total_minor: b.expected_total_minor,
            default_fund_id: b.default_fund_id,
            default_payment_method: b.default_payment_method,
            default_gift_date: b.default_gift_date,
            status: b.status.as_str().to_owned(),
            entered_count: b.entered_count,
            entered_total_minor: b.entered_total_minor,
            count_matches: tally.count_matches(),
            total_matches: tally.total_matches(),
            processed_at: b.processed_at,
            processed_by: b.processed_by,
            created_at: b.created_at,
            updated_at: b.updated_at,
        }
    }
}

fn tally(b: &StoredBatch) -> Tally {
    Tally {
        expected_count: i64::from(b.expected_count),
        expected_total_minor: b.expected_total_minor,
        entered_count: b.entered_count,
        entered_total_minor: b.entered_total_minor,
    }
}

/// A gift keyed into a batch: the fields of `POST /v1/gifts`, with the same rules, except that `currency`,
/// `gift_date`, `payment_method` and `allocations` may be left out: the batch's currency and defaults fill them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The document's shape of an entry; the handlers read it as a `GiftInput`.
pub struct GiftBatchEntryInput {
    /// Required: a donor of the same tenant.
    #[schema(required = true, value_type = Uuid)]
    pub donor_id: Option<Uuid>,
    /// Required: minor units (pence), more than 0.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub amount_minor: Option<i64>,
    /// The batch's currency (the default); any other is refused.
    #[schema(value_type = Option<CurrencyCode>)]
    pub currency: Option<String>,
    /// ISO date; required unless the batch has a `default_gift_date`.
    #[schema(value_type = Option<String>, format = Date)]
    pub gift_date: Option<String>,
    /// `pending`, `succeeded` (default) or `failed`.
    #[schema(value_type = Option<SettableGiftStatus>)]
    pub status: Option<String>,
    /// At most 50 characters; the batch's `default_payment_method` when absent or blank.
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub payment_method: Option<String>,
    /// `manual` (default, also for blank), `import`, ...: `a-z`, `0-9`, `_`, `-`, `.`, at most 50.
    #[schema(pattern = r"^\s*[a-z0-9_.-]{0,50}\s*$")]
    pub source: Option<String>,
    /// A free-text label, at most 100 characters.
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub fund: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub campaign: Option<String>,
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub notes: Option<String>,
    /// Unique per tenant and source among gifts, and among the batch's entries.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub external_reference: Option<String>,
    /// As a gift's. Absent: the whole amount to the batch's `default_fund_id` if it has one, else unallocated;
    /// `[]`: unallocated.
    pub allocations: Option<Vec<AllocationInput>>,
    pub soft_credits: Option<Vec<SoftCreditInput>>,
    pub pledge_id: Option<Uuid>,
    pub sponsored_event: Option<bool>,
}

/// A change to an entry of an open batch (JSON merge patch): absent members stay; `null` clears, and a cleared
/// `currency`, `gift_date`, `payment_method` or `allocations` takes the batch's default again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The document's shape of a patch; the handler merges it into a `GiftInput`.
pub struct GiftBatchEntryPatch {
    #[schema(nullable = false)]
    pub donor_id: Option<Uuid>,
    #[schema(nullable = false, minimum = 1)]
    pub amount_minor: Option<i64>,
    #[schema(value_type = Option<CurrencyCode>)]
    pub currency: Option<String>,
    #[schema(value_type = Option<String>, format = Date)]
    pub gift_date: Option<String>,
    #[schema(value_type = Option<SettableGiftStatus>)]
    pub status: Option<String>,
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub payment_method: Option<String>,
    #[schema(pattern = r"^\s*[a-z0-9_.-]{0,50}\s*$")]
    pub source: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub fund: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub campaign: Option<String>,
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub notes: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub external_reference: Option<String>,
    pub allocations: Option<Vec<AllocationInput>>,
    pub soft_credits: Option<Vec<SoftCreditInput>>,
    pub pledge_id: Option<Uuid>,
    pub sponsored_event: Option<bool>,
}

/// An entry of a batch: a gift's fields as keyed, the batch's defaults applied.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GiftBatchEntryView {
    pub id: Uuid,
    pub batch_id: Uuid,
    /// The order of entry: 1 for the first, one more than the last entry's for each next (an entry removed from
    /// the middle leaves a gap).
    pub position: i32,
    pub donor_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub payment_method: Option<String>,
    pub source: String,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub notes: Option<String>,
    pub external_reference: Option<String>,
    /// In fund id order; empty when unallocated.
    pub allocations: Vec<AllocationView>,
    /// In donor id order.
    pub soft_credits: Vec<SoftCreditView>,
    pub pledge_id: Option<Uuid>,
    pub sponsored_event: bool,
    /// The gift the entry became (`/v1/gifts/{id}`), once the batch is processed; null until then.
    pub gift_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredEntry> for GiftBatchEntryView {
    fn from(e: StoredEntry) -> Self {
        Self {
            id: e.id,
            batch_id: e.batch_id,
            position: e.position,
            donor_id: e.donor_id,
            amount_minor: e.amount_minor,
            currency: e.currency,
            gift_date: e.gift_date,
            status: e.status,
            payment_method: e.payment_method,
            source: e.source,
            fund: e.fund,
            campaign: e.campaign,
            notes: e.notes,
            external_reference: e.external_reference,
            allocations: e
                .allocations
                .into_iter()
                .map(|a| AllocationView { fund_id: a.fund_id, amount_minor: a.amount_minor })
                .collect(),
            soft_credits: e
                .soft_credits
                .into_iter()
                .map(|c| SoftCreditView {
                    donor_id: c.donor_id,
                    amount_minor: c.amount_minor,
                    kind: soft_credit_kind_name(c.kind).to_owned(),
                })
                .collect(),
            pledge_id: e.pledge_id,
            sponsored_event: e.sponsored_event,
            gift_id: e.gift_id,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// The batch's details from what a client sent, naming every bad field.
fn parse_batch(input: &GiftBatchPatch, errors: &mut FieldErrors) -> Option<BatchDetails> {
    let name = errors.required("name", input.name.as_deref()).and_then(|n| errors.parse("name", required_text(n, 200)));
    let expected_count = errors
        .required("expected_count", input.expected_count)
        .and_then(|c| errors.parse("expected_count", parse_expected_count(c)));
    let expected_total_minor = errors
        .required("expected_total_minor", input.expected_total_minor)
        .and_then(|t| errors.parse("expected_total_minor", parse_expected_total(t)));
    let default_payment_method =
        errors.parse("default_payment_method", optional_text(input.default_payment_method.as_deref(), 50)).flatten();
    let default_gift_date = match input.default_gift_date.as_deref() {
        None => None,
        Some(d) => errors.parse("default_gift_date", iso_date(d)),
    };
    Some(BatchDetails {
        name: name?,
        expected_count: expected_count?,
        expected_total_minor: expected_total_minor?,
        default_fund_id: input.default_fund_id,
        default_payment_method,
        default_gift_date,
    })
}

/// A default fund must be one of the tenant's, not archived.
async fn check_default_fund(tx: &Transaction, fund_id: Option<Uuid>) -> Result<(), ApiError> {
    let Some(fund_id) = fund_id else { return Ok(()) };
    let message = match funds::get(tx, fund_id).await? {
        None => "no such fund",
        Some(fund) if fund.archived => "the fund is archived; it takes no new gifts",
        Some(_) => return Ok(()),
    };
    Err(ApiError::validation(vec![FieldError { field: "default_fund_id".into(), message: message.into() }]))
}

/// Locks an open batch for a change, or says why it cannot change.
async fn lock_open(tx: &Transaction, id: Uuid, what: &str) -> Result<StoredBatch, ApiError> {
    let batch = gift_batches::lock(tx, id).await?.ok_or_else(|| ApiError::not_found("gift batch"))?;
    if batch.status == BatchStatus::Processed {
        return Err(ApiError::new(ErrorCode::Conflict, format!("the batch is processed; {what}")));
    }
    Ok(batch)
}

/// Creates an `open` batch at revision 1, with no entries.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:write"])),
    request_body = GiftBatchInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new batch", body = GiftBatchView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (an unknown or archived fund names \
            default_fund_id)", body = almoner_http::Problem),
    ))]
#[post("/v1/gift-batches")]
#[tracing::instrument(skip_all, fields(batch_id = tracing::field::Empty))]
pub async fn create_gift_batch(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: GiftBatchInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let currency = errors
        .required("currency", input.currency.as_deref())
        .and_then(|c| errors.parse("currency", Currency::parse(c)));
    let details = parse_batch(
        &GiftBatchPatch {
            name: input.name,
            expected_count: input.expected_count,
            expected_total_minor: input.expected_total_minor,
            default_fund_id: input.default_fund_id,
            default_payment_method: input.default_payment_method,
            default_gift_date: input.default_gift_date,
        },
        &mut errors,
    );
    errors.finish()?;
    let (Some(currency), Some(details)) = (currency, details) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated batch fields missing")));
    };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    check_default_fund(&tx, details.default_fund_id).await?;
    let id = Uuid::now_v7();
    tracing::Span::current().record("batch_id", tracing::field::display(id));
    let view = GiftBatchView::from(gift_batches::insert(&tx, id, currency.code(), &details).await?);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/gift-batches/{id}"))).json(view))
}

/// Reads one batch, with what its entries add up to now.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GiftBatchView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/gift-batches/{id}")]
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn get_gift_batch(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "gift batch")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let batch = gift_batches::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift batch"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftBatchView::from(batch)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GiftBatchQuery {
    /// Only batches with this status: `open` or `processed`.
    #[param(pattern = r"^\s*(open|processed)\s*$")]
    pub status: Option<String>,
}

/// Lists batches, newest first.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:read"])),
    params(GiftBatchQuery, PageQuery),
    responses((status = 200, body = Page<GiftBatchView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/gift-batches")]
#[tracing::instrument(skip_all)]
pub async fn list_gift_batches(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<GiftBatchQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let status = query.status.as_deref().and_then(|s| errors.parse("status", BatchStatus::parse(s)));
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = gift_batches::list(&tx, status, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |b| b.id).map(GiftBatchView::from)))
}

/// Changes an open batch's name, expected count and total, or defaults (JSON merge patch). Entries already keyed
/// keep what they were given.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = GiftBatchPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The batch after the change", body = GiftBatchView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the batch is processed", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/gift-batches/{id}")]
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn update_gift_batch(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift batch")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = lock_open(&tx, id, "it can no longer change").await?;
    let now = GiftBatchPatch {
        name: Some(current.name.clone()),
        expected_count: Some(i64::from(current.expected_count)),
        expected_total_minor: Some(current.expected_total_minor),
        default_fund_id: current.default_fund_id,
        default_payment_method: current.default_payment_method.clone(),
        default_gift_date: current.default_gift_date.map(|d| d.to_string()),
    };
    let patched: GiftBatchPatch = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let details = parse_batch(&patched, &mut errors);
    errors.finish()?;
    let details = details.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated batch fields missing")))?;
    let unchanged = BatchDetails {
        name: current.name.clone(),
        expected_count: current.expected_count,
        expected_total_minor: current.expected_total_minor,
        default_fund_id: current.default_fund_id,
        default_payment_method: current.default_payment_method.clone(),
        default_gift_date: current.default_gift_date,
    };
    if details == unchanged {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(GiftBatchView::from(current)));
    }
    // A default fund since archived may stay; a new one must take gifts.
    if details.default_fund_id != current.default_fund_id {
        check_default_fund(&tx, details.default_fund_id).await?;
    }
    let stored = gift_batches::update(&tx, id, &details).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftBatchView::from(stored)))
}

/// Deletes an open batch and its entries (no gift was made from them).
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the batch is processed", body = almoner_http::Problem)))]
#[delete("/v1/gift-batches/{id}")]
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn delete_gift_batch(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift batch")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    lock_open(&tx, id, "its gifts are recorded and it cannot be deleted").await?;
    gift_batches::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The batch's currency and defaults fill what the entry leaves out (a blank payment method is left out).
fn with_defaults(mut input: GiftInput, batch: &StoredBatch) -> GiftInput {
    if input.currency.is_none() {
        input.currency = Some(batch.currency.clone());
    }
    if input.gift_date.is_none() {
        input.gift_date = batch.default_gift_date.map(|d| d.to_string());
    }
    if input.payment_method.as_deref().is_none_or(|m| m.trim().is_empty()) {
        input.payment_method = batch.default_payment_method.clone();
    }
    if input.allocations.is_none()
        && let (Some(fund_id), Some(amount)) = (batch.default_fund_id, input.amount_minor)
        && amount > 0
    {
        input.allocations = Some(vec![AllocationInput { fund_id: Some(fund_id), amount_minor: Some(amount) }]);
    }
    input
}

/// An entry as the gift input it was parsed from (defaults included).
fn entry_input(e: &StoredEntry) -> GiftInput {
    GiftInput {
        donor_id: Some(e.donor_id),
        amount_minor: Some(e.amount_minor),
        currency: Some(e.currency.clone()),
        gift_date: Some(e.gift_date.to_string()),
        status: Some(e.status.clone()),
        payment_method: e.payment_method.clone(),
        source: Some(e.source.clone()),
        fund: e.fund.clone(),
        campaign: e.campaign.clone(),
        notes: e.notes.clone(),
        external_reference: e.external_reference.clone(),
        allocations: Some(
            e.allocations
                .iter()
                .map(|a| AllocationInput { fund_id: Some(a.fund_id), amount_minor: Some(a.amount_minor) })
                .collect(),
        ),
        soft_credits: Some(
            e.soft_credits
                .iter()
                .map(|c| SoftCreditInput {
                    donor_id: Some(c.donor_id),
                    amount_minor: Some(c.amount_minor),
                    kind: Some(soft_credit_kind_name(c.kind).to_owned()),
                })
                .collect(),
        ),
        pledge_id: e.pledge_id,
        sponsored_event: Some(e.sponsored_event),
    }
}

/// Parses an entry as `POST /v1/gifts` parses a gift, the batch's defaults applied first, and checks it as the
/// gift intake does (donor, reference, funds, soft credits, pledge), plus the batch's own rules: its currency, and
/// a reference once per batch.
async fn parse_entry(
    tx: &Transaction,
    batch: &StoredBatch,
    input: GiftInput,
    except: Option<Uuid>,
) -> Result<GiftDetails, ApiError> {
    let details = parse_gift(with_defaults(input, batch), None)?;
    if details.currency.code() != batch.currency {
        return Err(ApiError::validation(vec![FieldError {
            field: "currency".into(),
            message: format!("must be the batch's currency, {}", batch.currency),
        }]));
    }
    if let Some(refusal) = new_gifts::refusals(tx, &[&details]).await?.pop().flatten() {
        return Err(refusal.into());
    }
    if let Some(reference) = &details.external_reference
        && gift_batches::reference_entered(tx, batch.id, details.source.as_str(), reference, except).await?
    {
        return Err(conflict("external_reference", "another entry of this batch from this source has this reference"));
    }
    Ok(details)
}

/// Keys a gift into an open batch. It is not a gift until the batch is processed.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = GiftBatchEntryInput,
    responses(
        (status = 201, description = "The new entry", body = GiftBatchEntryView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict (the batch is processed or full, external_reference taken) or \
            idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field as for POST /v1/gifts (a currency other \
            than the batch's names currency)", body = almoner_http::Problem),
    ))]
#[post("/v1/gift-batches/{id}/entries")]
#[tracing::instrument(skip_all, fields(batch_id = %id, entry_id = tracing::field::Empty))]
pub async fn create_gift_batch_entry(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let batch_id = path_id(&id, "gift batch")?;
    let input: GiftInput = json_body(&req, &body)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let batch = lock_open(&tx, batch_id, "entries can no longer be added").await?;
    if batch.entered_count >= MAX_BATCH_ENTRIES {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a batch holds at most {MAX_BATCH_ENTRIES} entries; start another"),
        ));
    }
    let details = parse_entry(&tx, &batch, input, None).await?;
    let id = Uuid::now_v7();
    tracing::Span::current().record("entry_id", tracing::field::display(id));
    let view = GiftBatchEntryView::from(gift_batches::insert_entry(&tx, id, batch_id, &details).await?);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/v1/gift-batches/{batch_id}/entries/{id}")))
        .json(view))
}

/// Lists a batch's entries in the order they were keyed.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<GiftBatchEntryView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 422, body = almoner_http::Problem)))]
#[get("/v1/gift-batches/{id}/entries")]
#[tracing::instrument(skip_all, fields(batch_id = %id))]
pub async fn list_gift_batch_entries(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let batch_id = path_id(&id, "gift batch")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<i64>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    gift_batches::get(&tx, batch_id).await?.ok_or_else(|| ApiError::not_found("gift batch"))?;
    let found = gift_batches::entries(&tx, batch_id, after, Some(limit.fetch())).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |e| i64::from(e.position)).map(GiftBatchEntryView::from)))
}

/// Reads one entry of a batch.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path), ("entry_id" = Uuid, Path)),
    responses((status = 200, body = GiftBatchEntryView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/gift-batches/{id}/entries/{entry_id}")]
#[tracing::instrument(skip_all, fields(batch_id = %path.0, entry_id = %path.1))]
pub async fn get_gift_batch_entry(
    principal: Principal,
    pool: web::Data<Pool>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let (batch_id, entry_id) = (path_id(&path.0, "gift batch")?, path_id(&path.1, "gift batch entry")?);
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let entry = gift_batches::get_entry(&tx, batch_id, entry_id)
        .await?
        .ok_or_else(|| ApiError::not_found("gift batch entry"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftBatchEntryView::from(entry)))
}

/// Changes an entry of an open batch (JSON merge patch), validated again as a whole.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path), ("entry_id" = Uuid, Path)),
    request_body(content = GiftBatchEntryPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The entry after the change", body = GiftBatchEntryView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the batch is processed, or external_reference taken",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/gift-batches/{id}/entries/{entry_id}")]
#[tracing::instrument(skip_all, fields(batch_id = %path.0, entry_id = %path.1))]
pub async fn update_gift_batch_entry(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let (batch_id, entry_id) = (path_id(&path.0, "gift batch")?, path_id(&path.1, "gift batch entry")?);
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let batch = lock_open(&tx, batch_id, "its entries can no longer change").await?;
    let entry = gift_batches::get_entry(&tx, batch_id, entry_id)
        .await?
        .ok_or_else(|| ApiError::not_found("gift batch entry"))?;
    let mut current = entry_input(&entry);
    // An entry allocated whole to the default fund is one that left its allocations out: it follows a new amount.
    if let (Some(fund_id), [only]) = (batch.default_fund_id, entry.allocations.as_slice())
        && only.fund_id == fund_id
    {
        current.allocations = None;
    }
    let details = parse_entry(&tx, &batch, merge_patch(&req, &body, &current)?, Some(entry_id)).await?;
    let stored = gift_batches::update_entry(&tx, entry_id, &details).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftBatchEntryView::from(stored)))
}

/// Removes an entry from an open batch.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path), ("entry_id" = Uuid, Path)),
    responses((status = 204, description = "Removed"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the batch is processed", body = almoner_http::Problem)))]
#[delete("/v1/gift-batches/{id}/entries/{entry_id}")]
#[tracing::instrument(skip_all, fields(batch_id = %path.0, entry_id = %path.1))]
pub async fn delete_gift_batch_entry(
    principal: Principal,
    pool: web::Data<Pool>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let (batch_id, entry_id) = (path_id(&path.0, "gift batch")?, path_id(&path.1, "gift batch entry")?);
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    lock_open(&tx, batch_id, "its entries can no longer change").await?;
    if !gift_batches::delete_entry(&tx, batch_id, entry_id).await? {
        return Err(ApiError::not_found("gift batch entry"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Why an entry cannot become a gift, as the fields of `errors[]`: `entries.<entry id>.<field>`.
fn entry_problems(entry_id: Uuid, error: ApiError, problems: &mut Vec<FieldError>) {
    let fields = if error.errors.is_empty() {
        vec![FieldError { field: String::new(), message: error.detail }]
    } else {
        error.errors
    };
    for f in fields {
        let field =
            if f.field.is_empty() { format!("entries.{entry_id}") } else { format!("entries.{entry_id}.{}", f.field) };
        problems.push(FieldError { field, message: f.message });
    }
}

/// Turns every entry into a gift, in one transaction, once the entries' count and total are those expected: each
/// gift is written and published (`fundraising.gift.upserted.v1`) exactly as `POST /v1/gifts` writes one, with
/// `batch_id` set; each entry records its `gift_id`; the batch becomes `processed`.
#[utoipa::path(tag = "gift batches", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 200, description = "The batch, processed", body = GiftBatchView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "batch_totals_mismatch (detail: expected and entered count and total), \
            batch_entries_invalid (errors[] names entries.<entry id>.<field>), conflict (already processed) or \
            idempotency_key_reused", body = almoner_http::Problem),
    ))]
#[post("/v1/gift-batches/{id}/process")]
#[tracing::instrument(skip_all, fields(batch_id = %id, gifts = tracing::field::Empty))]
pub async fn process_gift_batch(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let batch_id = path_id(&id, "gift batch")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    // No body: the key alone names the request.
    let key = match claim(&tx, &req, b"").await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let batch = lock_open(&tx, batch_id, "its gifts are already recorded").await?;
    if let Some(detail) = tally(&batch).mismatch(&batch.currency) {
        return Err(ApiError::new(ErrorCode::BatchTotalsMismatch, detail));
    }
    let entries = gift_batches::entries(&tx, batch_id, None, None).await?;
    // Checked again as gifts: what an entry names may have changed since it was keyed.
    let mut problems = Vec::new();
    let mut parsed: Vec<(Uuid, GiftDetails)> = Vec::with_capacity(entries.len());
    for entry in &entries {
        match parse_gift(entry_input(entry), None) {
            Ok(details) => parsed.push((entry.id, details)),
            Err(error) => entry_problems(entry.id, error, &mut problems),
        }
    }
    let details: Vec<&GiftDetails> = parsed.iter().map(|(_, d)| d).collect();
    for ((entry_id, _), refusal) in parsed.iter().zip(new_gifts::refusals(&tx, &details).await?) {
        if let Some(refusal) = refusal {
            entry_problems(*entry_id, refusal.into(), &mut problems);
        }
    }
    if !problems.is_empty() {
        let mut error = ApiError::new(
            ErrorCode::BatchEntriesInvalid,
            format!("{} of the batch's entries cannot become gifts; change or remove them", {
                let mut ids: Vec<&str> = problems.iter().filter_map(|p| p.field.split('.').nth(1)).collect();
                ids.dedup();
                ids.len()
            }),
        );
        error.errors = problems;
        return Err(error);
    }
    let traceparent = almoner_bus::propagation::current_trace_context().0;
    let new: Vec<NewGiftRecord> = parsed
        .iter()
        .map(|(_, details)| NewGiftRecord { id: Uuid::now_v7(), details, traceparent: traceparent.clone() })
        .collect();
    let stored = new_gifts::record(&tx, tenant_id, &new, Some(batch_id), new_gifts::GiftEvents::EachGift).await?;
    tracing::Span::current().record("gifts", stored.len());
    let pairs: Vec<(Uuid, Uuid)> =
        parsed.iter().zip(&stored).map(|((entry_id, _), g)| (*entry_id, g.gift.id)).collect();
    gift_batches::set_gift_ids(&tx, &pairs).await?;
    let view = GiftBatchView::from(gift_batches::mark_processed(&tx, batch_id, &principal.subject).await?);
    remember(&tx, &key, 200, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}
