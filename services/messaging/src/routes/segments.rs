//! `/v1/segments`: saved filters over contacts (tags, attributes, SMS consent, the linked donor's giving), each
//! counted live when read, and `/v1/segments/count`, which counts a filter as it is being written. A campaign whose
//! audience is a segment texts the contacts it matches when the campaign is queued.

use super::actor;
use crate::db::segments::{self, Counts, SegmentFields, StoredSegment};
use crate::domain::optional_text;
use crate::domain::segment_filter::SegmentFilter;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use almoner_db::{Pool, Transaction};
use almoner_http::body::{json_body, merge_patch};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    // The count before `{id}`, so that its path is not read as a segment's id.
    cfg.service(count_filter)
        .service(create_segment)
        .service(list_segments)
        .service(get_segment)
        .service(update_segment)
        .service(delete_segment);
}

/// A segment as a client writes it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    /// Required: 1 to 100 characters, unique per tenant whatever its case.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub description: Option<String>,
    /// Who is in it; `{}` (or absent) is every contact.
    #[schema(value_type = Option<SegmentFilter>)]
    pub filter: Option<Value>,
}

/// What may change of a segment (JSON merge patch; `filter` merges key by key, `null` removes a condition).
#[derive(ToSchema)]
#[allow(dead_code)] // The document's shape of a patch; a patch is read as a `SegmentInput` merged onto the segment.
pub struct SegmentPatch {
    #[schema(value_type = String, required = false, min_length = 1, max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$")]
    name: Option<String>,
    #[schema(max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    description: Option<String>,
    filter: Option<SegmentFilterPatch>,
}

/// A segment's filter as a merge patch changes it: each condition given replaces the segment's, and `null`
/// removes it.
#[derive(ToSchema)]
#[allow(dead_code)] // The document's shape of a patch's filter; it is merged onto the stored filter as JSON.
pub struct SegmentFilterPatch {
    #[schema(max_items = 50)]
    tags_any: Option<Vec<String>>,
    #[schema(max_items = 50)]
    tags_all: Option<Vec<String>>,
    #[schema(max_items = 50)]
    tags_none: Option<Vec<String>>,
    #[schema(max_items = 20)]
    attributes: Option<Vec<crate::domain::segment_filter::AttributeCondition>>,
    sms_consent: Option<bool>,
    donor: Option<crate::domain::segment_filter::DonorCondition>,
}

/// How many contacts a filter matches, counted when asked.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CountsView {
    /// Every contact the filter matches.
    pub contacts: i64,
    /// Those whose number is not on the do-not-contact list: who a campaign to it would text.
    pub reachable: i64,
    /// Reachable contacts who consented to be texted.
    pub reachable_with_consent: i64,
    pub counted_at: DateTime<Utc>,
}

impl From<Counts> for CountsView {
    fn from(c: Counts) -> Self {
        Self {
            contacts: c.contacts,
            reachable: c.reachable,
            reachable_with_consent: c.reachable_with_consent,
            counted_at: Utc::now(),
        }
    }
}

/// A segment as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SegmentView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = SegmentFilter)]
    pub filter: Value,
    /// Counted live; absent from lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountsView>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl SegmentView {
    fn new(s: StoredSegment, counts: Option<Counts>) -> Self {
        Self {
            id: s.id,
            revision: s.revision,
            name: s.name,
            description: s.description,
            filter: s.filter,
            counts: counts.map(CountsView::from),
            created_by: s.created_by,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Reads a segment's fields, naming each that is wrong; with its filter parsed.
fn parse_segment(input: &SegmentInput, errors: &mut FieldErrors) -> Option<(SegmentFields, SegmentFilter)> {
    let name = errors.required("name", input.name.as_deref()).and_then(|n| {
        match errors.parse("name", optional_text(Some(n), 100)) {
            Some(Some(n)) => Some(n),
            Some(None) => {
                errors.add("name", "must not be empty");
                None
            }
            None => None,
        }
    });
    let description = errors.parse("description", optional_text(input.description.as_deref(), 500));
    let filter = parse_filter(input.filter.as_ref(), errors);
    let filter = filter?;
    Some((SegmentFields { name: name?, description: description?, filter: filter.to_value() }, filter))
}

fn parse_filter(input: Option<&Value>, errors: &mut FieldErrors) -> Option<SegmentFilter> {
    match input {
        None | Some(Value::Null) => Some(SegmentFilter::default()),
        Some(f) => errors.parse("filter", SegmentFilter::parse(f)),
    }
}

fn name_conflict() -> ApiError {
    let message = "another segment has this name";
    let mut error = ApiError::new(ErrorCode::Conflict, message);
    error.errors.push(FieldError { field: "name".into(), message: message.into() });
    error
}

/// A stored segment's filter, as it was normalised when saved.
fn stored_filter(segment: &StoredSegment) -> Result<SegmentFilter, ApiError> {
    SegmentFilter::parse(&segment.filter)
        .map_err(|e| ApiError::unexpected(anyhow::anyhow!("segment {}'s stored filter: {e}", segment.id)))
}

async fn with_counts(tx: &Transaction, segment: StoredSegment) -> Result<SegmentView, ApiError> {
    let counts = segments::count(tx, &stored_filter(&segment)?).await?;
    Ok(SegmentView::new(segment, Some(counts)))
}

/// Creates a segment.
#[utoipa::path(tag = "segments", security(("bearer" = ["messaging:write"])),
    request_body = SegmentInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new segment, counted", body = SegmentView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict: the name is taken (naming `name`); or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`filter`: what in it is wrong)",
            body = almoner_http::Problem),
    ))]
#[post("/v1/segments")]
#[tracing::instrument(skip_all, fields(segment_id = tracing::field::Empty))]
pub async fn create_segment(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let input: SegmentInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let parsed = parse_segment(&input, &mut errors);
    errors.finish()?;
    let (fields, _) = parsed.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated segment missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    if segments::name_taken(&tx, &fields.name, None).await? {
        return Err(name_conflict());
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("segment_id", tracing::field::display(id));
    let view = with_counts(&tx, segments::insert(&tx, id, &fields, &actor(&principal)).await?).await?;
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/segments/{id}"))).json(view))
}

/// Reads one segment, counted now.
#[utoipa::path(tag = "segments", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = SegmentView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/segments/{id}")]
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn get_segment(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "segment")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = segments::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("segment"))?;
    let view = with_counts(&tx, found).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Lists segments, newest first, without counts (read one to count it).
#[utoipa::path(tag = "segments", security(("bearer" = ["messaging:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<SegmentView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/segments")]
#[tracing::instrument(skip_all)]
pub async fn list_segments(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = segments::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |s| s.id).map(|s| SegmentView::new(s, None))))
}

/// Changes a segment (JSON merge patch). A patch that changes nothing leaves the revision as it is. Campaigns
/// already queued keep the contacts they were queued for.
#[utoipa::path(tag = "segments", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = SegmentPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The segment after the change, counted", body = SegmentView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the name is taken (naming `name`)", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/segments/{id}")]
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn update_segment(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "segment")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = segments::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("segment"))?;
    let now = SegmentInput {
        name: Some(current.name.clone()),
        description: current.description.clone(),
        filter: Some(current.filter.clone()),
    };
    let patched: SegmentInput = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let parsed = parse_segment(&patched, &mut errors);
    errors.finish()?;
    let (fields, _) = parsed.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated segment missing")))?;
    let unchanged = SegmentFields {
        name: current.name.clone(),
        description: current.description.clone(),
        filter: current.filter.clone(),
    };
    if fields == unchanged {
        let view = with_counts(&tx, current).await?;
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(view));
    }
    if segments::name_taken(&tx, &fields.name, Some(id)).await? {
        return Err(name_conflict());
    }
    let view = with_counts(&tx, segments::update(&tx, id, &fields).await?).await?;
    tracing::info!(by = %actor(&principal), "segment changed");
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Deletes a segment no draft campaign is addressed to.
#[utoipa::path(tag = "segments", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: a draft campaign is addressed to it (the message names them)",
            body = almoner_http::Problem)))]
#[delete("/v1/segments/{id}")]
#[tracing::instrument(skip_all, fields(segment_id = %id))]
pub async fn delete_segment(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "segment")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if segments::lock(&tx, id).await?.is_none() {
        return Err(ApiError::not_found("segment"));
    }
    let drafts = segments::drafts_using(&tx, id).await?;
    if !drafts.is_empty() {
        let names: Vec<String> = drafts.iter().map(Uuid::to_string).collect();
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("draft campaigns are addressed to this segment: {}", names.join(", ")),
        ));
    }
    segments::delete(&tx, id).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A filter to count, as it is being written.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountRequest {
    /// `{}` (or absent) counts every contact.
    #[schema(value_type = Option<SegmentFilter>)]
    pub filter: Option<Value>,
}

/// Counts the contacts a filter matches, without saving it.
#[utoipa::path(tag = "segments", security(("bearer" = ["messaging:read"])),
    request_body = CountRequest,
    responses((status = 200, body = CountsView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming `filter`", body = almoner_http::Problem)))]
#[post("/v1/segments/count")]
#[tracing::instrument(skip_all)]
pub async fn count_filter(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let input: CountRequest = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let filter = parse_filter(input.filter.as_ref(), &mut errors);
    errors.finish()?;
    let filter = filter.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated filter missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let counts = segments::count(&tx, &filter).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(CountsView::from(counts)))
}
