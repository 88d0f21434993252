//! `/v1/gift-aid/claims`: gather eligible gifts into a claim, review it (its gifts, and the gifts left out with
//! their reasons), take gifts out, submit it, and record HMRC's answer. See `docs/gift-aid.md`.

use super::conventions::{Claim, claim, conflict, iso_date, json_body, path_id, remember, replay_response};
use super::gift_aid::Reason;
use crate::db::{claims as db, gift_aid};
use crate::domain::gift_aid::{assess, gift_aid_on};
use crate::domain::hmrc;
use crate::domain::optional_text;
use crate::storage::{self, CallerToken, NewObject, READ_SCOPE, StorageClient, StorageError, WRITE_SCOPE};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

/// The purpose a claim's schedule files are kept under in storage.
pub const CLAIM_FILE_PURPOSE: &str = "gift_aid_claim";

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_claim)
        .service(list_claims)
        .service(get_claim)
        .service(discard_claim)
        .service(claim_gifts)
        .service(remove_gift)
        .service(claim_exclusions)
        .service(submit_claim)
        .service(record_outcome)
        .service(export_claim)
        .service(claim_files)
        .service(download_file);
}

fn parse_date(field: &str, raw: Option<&str>, errors: &mut FieldErrors) -> Option<NaiveDate> {
    let raw = errors.required(field, raw)?;
    errors.parse(field, iso_date(raw))
}

/// A claim and its totals.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClaimView {
    pub id: Uuid,
    pub revision: i64,
    /// `draft`, `submitted`, `paid` or `partly_rejected`.
    pub status: String,
    /// Gifts dated on or before this day were gathered.
    pub up_to: NaiveDate,
    pub hmrc_reference: Option<String>,
    /// Gifts included (not rejected).
    pub gifts: i64,
    /// What is claimed on, in pence.
    pub amount_minor: i64,
    /// The Gift Aid claimed: 25p per £1 of `amount_minor`.
    pub gift_aid_minor: i64,
    /// Gifts HMRC rejected (back in the pool for a later claim).
    pub rejected: i64,
    pub rejected_amount_minor: i64,
    /// Gifts up to `up_to` that could not be claimed when it was gathered (see `/exclusions`).
    pub exclusions: i64,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub answered_on: Option<NaiveDate>,
}

impl From<db::StoredClaim> for ClaimView {
    fn from(c: db::StoredClaim) -> Self {
        Self {
            id: c.id,
            revision: c.revision,
            status: c.status,
            up_to: c.up_to,
            hmrc_reference: c.hmrc_reference,
            gifts: c.gifts,
            amount_minor: c.amount_minor,
            gift_aid_minor: gift_aid_on(c.amount_minor),
            rejected: c.rejected,
            rejected_amount_minor: c.rejected_amount_minor,
            exclusions: c.exclusions,
            created_at: c.created_at,
            submitted_at: c.submitted_at,
            answered_on: c.answered_on,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClaim {
    /// Required: gather eligible gifts dated on or before this day (ISO date).
    #[schema(required = true, value_type = String, format = Date)]
    pub up_to: Option<String>,
}

/// Gathers every eligible gift not yet claimed, dated up to `up_to`, into a new draft claim; the gifts left out
/// are recorded with their reasons.
#[utoipa::path(tag = "gift aid", security(("bearer" = ["fundraising:write"])),
    request_body = NewClaim,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses((status = 201, body = ClaimView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[post("/v1/gift-aid/claims")]
#[tracing::instrument(skip_all, fields(claim_id = tracing::field::Empty))]
pub async fn create_claim(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: NewClaim = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let today = Utc::now().date_naive();
    let up_to = parse_date("up_to", input.up_to.as_deref(), &mut errors);
    if up_to.is_some_and(|d| d > today) {
        errors.add("up_to", "must not be in the future");
    }
    errors.finish()?;
    let up_to = up_to.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated up_to missing")))?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    db::lock_gathering(&tx, tenant_id).await?;
    let settings = gift_aid::settings(&tx).await?;
    let db::Candidates { gifts: candidates, donors, declarations } = db::candidates(&tx, up_to).await?;
    let mut included = Vec::new();
    let mut excluded = Vec::new();
    let no_declarations = Vec::new();
    for candidate in candidates {
        let donor = donors.get(&candidate.donor_id).cloned().unwrap_or_default();
        let on_file = declarations.get(&candidate.donor_id).unwrap_or(&no_declarations);
        match assess(&candidate.gift, &donor, on_file, &settings, today) {
            Ok(claimable) => included.push(db::Included {
                gift_id: candidate.gift_id,
                declaration_id: claimable.declaration_id,
                amount_minor: claimable.amount_minor,
                donor: claimable.donor,
            }),
            Err(reasons) => excluded.push((
                candidate.gift_id,
                serde_json::to_value(reasons.iter().map(Reason::from).collect::<Vec<_>>())
                    .map_err(|e| ApiError::unexpected(e.into()))?,
            )),
        }
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("claim_id", tracing::field::display(id));
    db::insert(&tx, id, up_to, &included, &excluded).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("claim vanished")))?;
    let view = ClaimView::from(stored);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    tracing::info!(gifts = view.gifts, exclusions = view.exclusions, "gathered a Gift Aid claim");
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/gift-aid/claims/{id}"))).json(view))
}

/// Claims, newest first.
#[utoipa::path(tag = "gift aid", security(("bearer" = ["fundraising:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<ClaimView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/gift-aid/claims")]
#[tracing::instrument(skip_all)]
pub async fn list_claims(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let rows = db::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(rows, limit, |c| c.id).map(ClaimView::from)))
}

/// One claim with its totals.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = ClaimView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/gift-aid/claims/{id}")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn get_claim(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "claim")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ClaimView::from(stored)))
}

/// Locks the claim and checks it is a draft (a submitted claim's gifts can never change).
async fn lock_draft(tx: &almoner_db::Transaction, id: Uuid) -> Result<(), ApiError> {
    match db::lock(tx, id).await?.as_deref() {
        None => Err(ApiError::not_found("claim")),
        Some("draft") => Ok(()),
        Some(status) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the claim is {status}: only a draft can change; its gifts stay claimed"),
        )),
    }
}

/// Discards a draft claim: its gifts go back to the pool.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:write"])), params(("id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "the claim is no longer a draft", body = almoner_http::Problem)))]
#[delete("/v1/gift-aid/claims/{id}")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn discard_claim(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "claim")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    lock_draft(&tx, id).await?;
    db::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// One page of a claim's rows (gifts or exclusions) in gift date order: checks the scope, the claim and the
/// paging parameters, then fetches one row more than the page holds with `fetch` to tell whether there is a next
/// page. The cursor is `date|id`.
async fn claim_page<T, F>(
    principal: &Principal,
    pool: &Pool,
    id: &str,
    page: &PageQuery,
    fetch: F,
    position: impl Fn(&T) -> (NaiveDate, Uuid),
) -> Result<Page<T>, ApiError>
where
    F: for<'a> AsyncFn(&'a almoner_db::Transaction, Uuid, Option<(NaiveDate, Uuid)>, i64) -> almoner_db::Result<Vec<T>>,
{
    principal.require("fundraising:read")?;
    let id = path_id(id, "claim")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<(NaiveDate, Uuid)>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
    let rows = fetch(&tx, id, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(Page::from_rows(rows, limit, position))
}

/// One gift of a claim.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClaimGiftView {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub gift_date: NaiveDate,
    /// What is claimed on (the gift less refunds at gathering).
    pub amount_minor: i64,
    pub gift_aid_minor: i64,
    pub declaration_id: Uuid,
    /// `included` or `rejected` (by HMRC).
    pub state: String,
    pub rejection: Option<String>,
}

/// A claim's gifts, by gift date.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read"])), params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<ClaimGiftView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 422, body = almoner_http::Problem)))]
#[get("/v1/gift-aid/claims/{id}/gifts")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn claim_gifts(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = claim_page(&principal, &pool, &id, &page, db::gifts, |g| (g.gift_date, g.gift_id)).await?;
    Ok(HttpResponse::Ok().json(page.map(|g| ClaimGiftView {
        gift_id: g.gift_id,
        donor_id: g.donor_id,
        gift_date: g.gift_date,
        amount_minor: g.amount_minor,
        gift_aid_minor: gift_aid_on(g.amount_minor),
        declaration_id: g.declaration_id,
        state: g.state,
        rejection: g.rejection,
    })))
}

/// One gift left out of a claim.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExclusionView {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub gift_date: NaiveDate,
    pub amount_minor: i64,
    /// Every reason, as `GET /v1/gifts/{id}/gift-aid` gives them.
    #[schema(value_type = Vec<super::gift_aid::Reason>)]
    pub reasons: serde_json::Value,
}

/// The gifts up to the claim's date that could not be claimed when it was gathered, each with its reasons.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read"])), params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = Page<ExclusionView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 422, body = almoner_http::Problem)))]
#[get("/v1/gift-aid/claims/{id}/exclusions")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn claim_exclusions(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = claim_page(&principal, &pool, &id, &page, db::exclusions, |x| (x.gift_date, x.gift_id)).await?;
    Ok(HttpResponse::Ok().json(page.map(|x| ExclusionView {
        gift_id: x.gift_id,
        donor_id: x.donor_id,
        gift_date: x.gift_date,
        amount_minor: x.amount_minor,
        reasons: x.reasons,
    })))
}

/// Takes a gift out of a draft claim; it goes back to the pool.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:write"])), params(("id" = Uuid, Path), ("gift_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, description = "no such claim, or the gift is not in it", body = almoner_http::Problem),
        (status = 409, description = "the claim is no longer a draft", body = almoner_http::Problem)))]
#[delete("/v1/gift-aid/claims/{id}/gifts/{gift_id}")]
#[tracing::instrument(skip_all)]
pub async fn remove_gift(
    principal: Principal,
    pool: web::Data<Pool>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let (id, gift_id) = path.into_inner();
    let id = path_id(&id, "claim")?;
    let gift_id = path_id(&gift_id, "gift")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    lock_draft(&tx, id).await?;
    if !db::remove_gift(&tx, id, gift_id).await? {
        return Err(ApiError::not_found("gift in this claim"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// The reference HMRC's Charities Online gave the claim, if known: at most 100 characters once trimmed, no
    /// control characters.
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub hmrc_reference: Option<String>,
}

/// Marks a draft claim submitted: from now on its gifts can never be claimed again (unless HMRC rejects them).
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:write"])), params(("id" = Uuid, Path)), request_body = Submission,
    responses((status = 200, body = ClaimView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "not a draft, or no gifts in it", body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[post("/v1/gift-aid/claims/{id}/submit")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn submit_claim(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "claim")?;
    let input: Submission = if body.is_empty() { Submission::default() } else { json_body(&req, &body)? };
    let mut errors = FieldErrors::new();
    let reference = errors.parse("hmrc_reference", optional_text(input.hmrc_reference.as_deref(), 100)).flatten();
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    lock_draft(&tx, id).await?;
    let current = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
    if current.gifts == 0 {
        return Err(ApiError::new(ErrorCode::Conflict, "the claim has no gifts to submit"));
    }
    db::submit(&tx, id, reference.as_deref()).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ClaimView::from(stored)))
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    /// Required: the day HMRC answered (ISO date).
    #[schema(required = true, value_type = String, format = Date)]
    pub answered_on: Option<String>,
    /// The gifts HMRC rejected, each with its reason; empty or absent when it paid in full.
    pub rejected: Option<Vec<RejectedGift>>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectedGift {
    /// Required: one of the claim's gifts, each listed once.
    #[schema(required = true, value_type = Uuid)]
    pub gift_id: Option<Uuid>,
    /// Required: HMRC's reason, 1 to 500 characters once trimmed, no control characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub reason: Option<String>,
}

/// Records HMRC's answer to a submitted claim: `paid`, or `partly_rejected` with the rejected gifts, which go
/// back to the pool for a later claim.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:write"])), params(("id" = Uuid, Path)), request_body = Outcome,
    responses((status = 200, body = ClaimView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "the claim is not submitted", body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed; a rejected gift that is not in the claim is named",
            body = almoner_http::Problem)))]
#[post("/v1/gift-aid/claims/{id}/outcome")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn record_outcome(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "claim")?;
    let input: Outcome = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let answered_on = parse_date("answered_on", input.answered_on.as_deref(), &mut errors);
    let mut rejected = Vec::new();
    for (i, r) in input.rejected.unwrap_or_default().into_iter().enumerate() {
        let gift_id = errors.required(&format!("rejected[{i}].gift_id"), r.gift_id);
        let reason = errors.required(&format!("rejected[{i}].reason"), r.reason).and_then(|reason| {
            errors.parse(&format!("rejected[{i}].reason"), crate::domain::required_text(&reason, 500))
        });
        if let (Some(gift_id), Some(reason)) = (gift_id, reason) {
            if rejected.iter().any(|(g, _)| *g == gift_id) {
                errors.add(format!("rejected[{i}].gift_id"), "is listed twice");
            }
            rejected.push((gift_id, reason));
        }
    }
    errors.finish()?;
    let answered_on = answered_on.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated date missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    match db::lock(&tx, id).await?.as_deref() {
        None => return Err(ApiError::not_found("claim")),
        Some("submitted") => {}
        Some(status) => {
            return Err(conflict("status", format!("the claim is {status}; only a submitted claim gets an answer")));
        }
    }
    let missing = db::answer(&tx, id, answered_on, &rejected).await?;
    if !missing.is_empty() {
        let mut errors = FieldErrors::new();
        for (i, (gift_id, _)) in rejected.iter().enumerate() {
            if missing.contains(gift_id) {
                errors.add(format!("rejected[{i}].gift_id"), "is not a gift of this claim");
            }
        }
        errors.finish()?;
    }
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ClaimView::from(stored)))
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Required: `ods` (HMRC's Gift Aid schedule spreadsheet, for Charities Online) or `csv` (for people).
    #[schema(value_type = ScheduleFormat)]
    pub format: Option<String>,
}

/// The file formats of a schedule.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleFormat {
    /// HMRC's layout, for Charities Online: sheet `R68GAD_V1_00_0`, at most 1,000 rows and 250 KB a file.
    Ods,
    /// The same columns with a header row, for people.
    Csv,
}

/// A schedule file kept in the storage service.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileView {
    pub id: Uuid,
    /// Files exported together (the parts of one schedule) share it.
    pub export_id: Uuid,
    #[schema(value_type = ScheduleFormat)]
    pub format: String,
    /// 1 to `parts`: HMRC takes at most 1,000 rows and 250 KB a file.
    #[schema(minimum = 1)]
    pub part: i32,
    #[schema(minimum = 1)]
    pub parts: i32,
    #[schema(minimum = 1, maximum = 1000)]
    pub rows: i32,
    /// The object in the storage service holding the file (`/api/storage/v1/objects/{object_id}`); null for a
    /// file exported before files were kept there, until it is first downloaded with `storage:write`.
    pub object_id: Option<Uuid>,
    /// The file's size in bytes.
    pub size_bytes: i64,
    /// The same as `size_bytes`, by its former name.
    #[schema(deprecated)]
    pub bytes: i64,
    /// Hex SHA-256 of the content, as fundraising wrote it (storage's own hash of the object is the same).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    /// Where to download it (relative to the service): a redirect to a one-minute link to the file in storage.
    pub href: String,
}

impl FileView {
    fn new(claim_id: Uuid, f: db::StoredFile) -> Self {
        Self {
            id: f.id,
            export_id: f.export_id,
            format: f.format,
            part: f.part,
            parts: f.parts,
            rows: f.rows,
            object_id: f.object_id,
            size_bytes: f.bytes,
            bytes: f.bytes,
            sha256: storage::hex(&f.sha256),
            created_at: f.created_at,
            href: format!("/v1/gift-aid/claims/{claim_id}/files/{}", f.id),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    pub data: Vec<FileView>,
}

/// What storage keeps a schedule file as: its content type and name.
fn file_kind(format: &str) -> (&'static str, &'static str) {
    match format {
        "ods" => ("application/vnd.oasis.opendocument.spreadsheet", "ods"),
        _ => ("text/csv", "csv"),
    }
}

fn file_name(claim_id: Uuid, part: i32, parts: i32, format: &str) -> String {
    format!("gift-aid-claim-{claim_id}-part-{part}-of-{parts}.{}", file_kind(format).1)
}

/// A `403` naming the storage scope the caller's token lacks, before any work that would need it.
fn require_storage(principal: &Principal, scope: &str, why: &str) -> Result<(), ApiError> {
    if principal.has_scope(scope) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("this requires the scope {scope} as well: {why}")))
    }
}

/// Writes the claim's HMRC schedule (small donations aggregated as the tenant's settings say, at most 1,000 rows a
/// file) and keeps every file in the storage service (purpose `gift_aid_claim`, owner reference the claim's id),
/// with the caller's token: it needs `storage:write` as well. Each export is kept.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:write", "storage:write"])), params(("id" = Uuid, Path)), request_body = ExportRequest,
    responses((status = 201, body = FileList), (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden: the token lacks fundraising:write or storage:write",
            body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the claim has no gifts; quota_exceeded: storage's quota",
            body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service or the database cannot be reached; retry shortly",
            body = almoner_http::Problem)))]
#[post("/v1/gift-aid/claims/{id}/exports")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn export_claim(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    storage: web::Data<StorageClient>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    // storage checks the token itself; asking first spares writing a schedule that could not be kept.
    require_storage(&principal, WRITE_SCOPE, "the schedule's files are kept in the storage service")?;
    let token = CallerToken::of(&req)?;
    let id = path_id(&id, "claim")?;
    let input: ExportRequest = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let format = match errors.required("format", input.format.as_deref()) {
        Some(f @ ("ods" | "csv")) => Some(f.to_owned()),
        Some(_) => {
            errors.add("format", "must be ods or csv");
            None
        }
        None => None,
    };
    errors.finish()?;
    let format = format.unwrap_or_default();
    let tenant_id = principal.tenant_id.as_uuid();
    let rows = {
        let tx = pool.tenant_tx(tenant_id).await?;
        db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
        let settings = gift_aid::settings(&tx).await?;
        let rows = hmrc::rows(db::schedule_donations(&tx, id).await?, settings.aggregate_up_to_minor);
        tx.commit().await?;
        rows
    };
    if rows.is_empty() {
        return Err(ApiError::new(ErrorCode::Conflict, "the claim has no gifts to export"));
    }
    // HMRC takes ODS files of at most 1,000 rows and under 250 KB; the CSV (for people) is split the same way.
    let parts: Vec<(&[hmrc::Row], Vec<u8>)> = match format.as_str() {
        "ods" => hmrc::ods_files(&rows, hmrc::MAX_ROWS_PER_FILE, hmrc::MAX_FILE_BYTES)
            .map_err(|e| ApiError::unexpected(anyhow::Error::new(e).context("writing the ODS schedule")))?,
        _ => hmrc::split(&rows).into_iter().map(|part| (part, hmrc::csv(part))).collect(),
    };

    // Each file goes to storage first, with no transaction open; then the claim records them all at once.
    let count = i32::try_from(parts.len()).unwrap_or(i32::MAX);
    let (content_type, _) = file_kind(&format);
    let owner = id.to_string();
    let mut kept: Vec<KeptPart> = Vec::with_capacity(parts.len());
    for (index, (rows, content)) in parts.into_iter().enumerate() {
        let part = i32::try_from(index + 1).unwrap_or(i32::MAX);
        let sha256 = Sha256::digest(&content).to_vec();
        let filename = file_name(id, part, count, &format);
        let file =
            NewObject { filename: &filename, content_type, purpose: CLAIM_FILE_PURPOSE, owner_reference: &owner };
        match storage.store(&token, &file, content).await {
            Ok(object) => kept.push(KeptPart {
                part,
                rows: i32::try_from(rows.len()).unwrap_or(i32::MAX),
                object_id: object.id,
                size_bytes: object.size_bytes,
                sha256,
            }),
            Err(e) => {
                delete_parts(&storage, &token, &kept).await;
                return Err(e.problem(WRITE_SCOPE));
            }
        }
    }
    let export_id = Uuid::now_v7();
    let recorded = async {
        let tx = pool.tenant_tx(tenant_id).await?;
        // Discarded meanwhile (a draft without files can be): nothing to record the files on.
        db::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
        let mut views = Vec::with_capacity(kept.len());
        for k in &kept {
            let new = db::NewFile {
                format: &format,
                part: k.part,
                parts: count,
                rows: k.rows,
                object_id: k.object_id,
                size_bytes: k.size_bytes,
                sha256: &k.sha256,
            };
            views.push(FileView::new(id, db::record_file(&tx, id, export_id, &new).await?));
        }
        tx.commit().await?;
        Ok::<_, ApiError>(views)
    }
    .await;
    match recorded {
        Ok(data) => {
            tracing::info!(files = data.len(), %export_id, "exported a Gift Aid schedule to storage");
            Ok(HttpResponse::Created().json(FileList { data }))
        }
        Err(error) => {
            delete_parts(&storage, &token, &kept).await;
            Err(error)
        }
    }
}

/// A schedule file stored in storage, not yet recorded by the claim.
struct KeptPart {
    part: i32,
    rows: i32,
    object_id: Uuid,
    size_bytes: i64,
    /// What fundraising computed of the bytes it wrote (storage's answer agreed).
    sha256: Vec<u8>,
}

/// Deletes the files of an export that cannot be recorded, so none is left in storage without its claim knowing.
async fn delete_parts(storage: &StorageClient, token: &CallerToken, kept: &[KeptPart]) {
    for k in kept {
        storage.delete_quietly(token, k.object_id).await;
    }
}

/// Every file exported from the claim, oldest first.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = FileList), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/gift-aid/claims/{id}/files")]
#[tracing::instrument(skip_all, fields(claim_id = %id))]
pub async fn claim_files(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "claim")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("claim"))?;
    let data = db::files(&tx, id).await?.into_iter().map(|f| FileView::new(id, f)).collect();
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(FileList { data }))
}

/// Downloads one file: a redirect (`302`) to a one-minute link to it in the storage service, asked for with the
/// caller's token (`storage:read` as well). A file exported before files were kept in storage is moved there the
/// first time a caller with `storage:write` downloads it, then redirected to likewise; for a caller without
/// `storage:write` its bytes are sent as they are.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read", "storage:read"])), params(("id" = Uuid, Path), ("file_id" = Uuid, Path)),
    responses(
        (status = 302, description = "`Location` is a one-minute download link to the file in storage",
            headers(("location" = String))),
        (status = 200, description = "a file exported before files were kept in storage, for a caller without \
            storage:write (ODS or CSV)", content_type = "application/octet-stream"),
        (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden: the token lacks fundraising:read or storage:read",
            body = almoner_http::Problem),
        (status = 404, description = "no such claim or file, or its object is no longer in storage",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service or the database cannot be reached; retry shortly",
            body = almoner_http::Problem)))]
#[get("/v1/gift-aid/claims/{id}/files/{file_id}")]
#[tracing::instrument(skip_all, fields(claim_id = tracing::field::Empty, file_id = tracing::field::Empty))]
pub async fn download_file(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    storage: web::Data<StorageClient>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let (id, file_id) = path.into_inner();
    let id = path_id(&id, "claim")?;
    let file_id = path_id(&file_id, "file")?;
    let span = tracing::Span::current();
    span.record("claim_id", tracing::field::display(id));
    span.record("file_id", tracing::field::display(file_id));
    let tenant_id = principal.tenant_id.as_uuid();
    let (file, content) = {
        let tx = pool.tenant_tx(tenant_id).await?;
        let found = db::file_content(&tx, id, file_id).await?.ok_or_else(|| ApiError::not_found("file"))?;
        tx.commit().await?;
        found
    };
    let object_id = match (file.object_id, content) {
        (Some(object_id), _) => object_id,
        // Exported before files were kept in storage: moved there by a caller who may store files; served as it
        // is to any other, so that nobody loses a file they could download before.
        (None, Some(content)) => {
            // Moving it needs storage:write, and redirecting to it afterwards storage:read.
            if !(principal.has_scope(WRITE_SCOPE) && principal.has_scope(READ_SCOPE)) {
                return Ok(serve_bytes(id, &file, content));
            }
            let token = CallerToken::of(&req)?;
            match move_to_storage(&pool, &storage, &token, tenant_id, id, &file, &content).await {
                Ok(object_id) => object_id,
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "could not move a claim file to storage; serving it as it is");
                    return Ok(serve_bytes(id, &file, content));
                }
            }
        }
        (None, None) => {
            return Err(ApiError::unexpected(anyhow::anyhow!("claim file {file_id} has neither object nor bytes")));
        }
    };
    require_storage(&principal, READ_SCOPE, "the file is kept in the storage service")?;
    let token = CallerToken::of(&req)?;
    let link = storage.link(&token, object_id).await.map_err(|e| match e {
        StorageError::NotFound => ApiError::not_found("the file's object in storage (it was deleted there)"),
        other => other.problem(READ_SCOPE),
    })?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, link.url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A file's bytes as they are, for a file still held here.
fn serve_bytes(claim_id: Uuid, file: &db::StoredFile, content: Vec<u8>) -> HttpResponse {
    let content_type = match file.format.as_str() {
        "ods" => "application/vnd.oasis.opendocument.spreadsheet",
        _ => "text/csv; charset=utf-8",
    };
    let name = file_name(claim_id, file.part, file.parts, &file.format);
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")))
        .body(content)
}

/// Moves a file exported before files were kept in storage: stores its bytes (checked against the SHA-256 recorded
/// when it was exported), then records the object and clears the bytes in one transaction. When another download
/// moved it first, the copy just stored is deleted and the recorded one used.
async fn move_to_storage(
    pool: &Pool,
    storage: &StorageClient,
    token: &CallerToken,
    tenant_id: Uuid,
    claim_id: Uuid,
    file: &db::StoredFile,
    content: &[u8],
) -> anyhow::Result<Uuid> {
    let sha256 = Sha256::digest(content);
    anyhow::ensure!(
        sha256.as_slice() == file.sha256.as_slice(),
        "the stored bytes' SHA-256 {} is not the {} recorded at export",
        storage::hex(&sha256),
        storage::hex(&file.sha256)
    );
    let (content_type, _) = file_kind(&file.format);
    let filename = file_name(claim_id, file.part, file.parts, &file.format);
    let owner = claim_id.to_string();
    let new = NewObject { filename: &filename, content_type, purpose: CLAIM_FILE_PURPOSE, owner_reference: &owner };
    let object = storage.store(token, &new, content.to_vec()).await?;
    let recorded = async {
        let tx = pool.tenant_tx(tenant_id).await?;
        let moved = db::moved_to_storage(&tx, file.id, object.id, object.size_bytes).await?;
        let current = db::file_content(&tx, claim_id, file.id).await?.and_then(|(f, _)| f.object_id);
        tx.commit().await?;
        Ok::<_, almoner_db::DbError>((moved, current))
    }
    .await;
    match recorded {
        Ok((true, _)) => {
            tracing::info!(object_id = %object.id, "moved a claim file to storage");
            Ok(object.id)
        }
        Ok((false, Some(current))) => {
            storage.delete_quietly(token, object.id).await;
            Ok(current)
        }
        Ok((false, None)) => {
            storage.delete_quietly(token, object.id).await;
            anyhow::bail!("the file vanished while it was moved")
        }
        Err(e) => {
            storage.delete_quietly(token, object.id).await;
            Err(anyhow::Error::new(e).context("recording the moved file"))
        }
    }
}
