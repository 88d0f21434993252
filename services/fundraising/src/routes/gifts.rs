//! `/v1/gifts`: record, read, search, change, delete and refund gifts.
//!
//! A refund is recorded as a gift of its own with a negative amount and `refund_of` set; once a gift's refunds
//! add up to its amount its status becomes `refunded`. Every change writes `fundraising.gift.upserted.v1` (or
//! `.deleted.v1`) with the gift's next revision to the outbox in the same transaction.

use super::conventions::{
    Claim, claim, conflict, decode_date_cursor, emit, iso_date, json_body, key_and_hash, merge_patch, page_limit,
    paginate, path_id, remember, replay_response,
};
use super::pledges::settle_pledges;
use crate::db::gifts::{self, GiftFilter, NewGift, StoredGift, status_name};
use crate::db::{donors, funds, pledges};
use crate::domain::pledge::{PledgeStatus, pledge_status_name};
use crate::domain::split::{
    AllocationRequest, RefundablePart, SoftCreditRequest, allocation_refund, parse_allocations, parse_soft_credits,
    soft_credit_kind_name, soft_credit_refund,
};
use crate::domain::{
    GiftDetails, GiftStatus, Refund, RefundError, SourceName, optional_text, parse_settable_status,
    status_after_refunds,
};
use crate::intake::{GiftIntake, Recorded, Submission};
use actix_web::{HttpRequest, HttpResponse, web};
use almoner_db::{Pool, Transaction};
use almoner_events::fundraising::{FundAllocation, Gift, GiftDeletedV1, GiftUpsertedV1, Pledge, SoftCredit};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Principal};
use almoner_types::Currency;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/v1/gifts")
            .route("", web::post().to(create_gift))
            .route("", web::get().to(list_gifts))
            .route("/{id}", web::get().to(get_gift))
            .route("/{id}", web::patch().to(update_gift))
            .route("/{id}", web::delete().to(delete_gift))
            .route("/{id}/refunds", web::post().to(refund_gift)),
    );
}

/// A gift as sent by clients. On `PATCH` every member is optional and `null` clears it (JSON merge patch).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiftInput {
    /// Required: a donor of the same tenant.
    pub donor_id: Option<Uuid>,
    /// Required: minor units (pence), more than 0.
    pub amount_minor: Option<i64>,
    /// Required: ISO 4217, e.g. `GBP`.
    pub currency: Option<String>,
    /// Required: ISO date, e.g. `2025-04-06`.
    pub gift_date: Option<String>,
    /// `pending`, `succeeded` (default) or `failed`; `refunded` follows from refunds.
    pub status: Option<String>,
    pub payment_method: Option<String>,
    /// Where the gift came from: `manual` (default), `import`, `stripe`, ...
    pub source: Option<String>,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub notes: Option<String>,
    /// The gift's id in its source; unique per tenant and source.
    pub external_reference: Option<String>,
    /// How the amount is split across funds: each fund once, not archived, more than 0, adding up to
    /// `amount_minor` exactly. Absent or empty: unallocated. (`fund` is a free-text label; fund totals use these.)
    pub allocations: Option<Vec<AllocationInput>>,
    /// Other donors credited with (part of) the gift: each once, not the paying donor, more than 0 and at most
    /// `amount_minor`.
    pub soft_credits: Option<Vec<SoftCreditInput>>,
    /// An open pledge of the same donor and currency that the gift pays (part of).
    pub pledge_id: Option<Uuid>,
    /// Sponsorship of a sponsored event (default `false`): marked "Yes" on HMRC's Gift Aid schedule.
    pub sponsored_event: Option<bool>,
}

/// Part of a gift given to one fund.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationInput {
    /// Required: a fund of the same tenant.
    pub fund_id: Option<Uuid>,
    /// Required: minor units, more than 0.
    pub amount_minor: Option<i64>,
}

/// A donor credited with (part of) the gift without having paid it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SoftCreditInput {
    /// Required: a donor of the same tenant, not the one who paid.
    pub donor_id: Option<Uuid>,
    /// Required: minor units, more than 0 and at most the gift's amount.
    pub amount_minor: Option<i64>,
    /// Required: `matched`, `in_memory`, `in_honour` or `solicitor`.
    pub kind: Option<String>,
}

/// Part of a gift given to one fund (negative on a refund entry).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AllocationView {
    pub fund_id: Uuid,
    pub amount_minor: i64,
}

/// A donor credited with (part of) the gift (negative on a refund entry).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SoftCreditView {
    pub donor_id: Uuid,
    pub amount_minor: i64,
    /// `matched`, `in_memory`, `in_honour` or `solicitor`.
    pub kind: String,
}

/// A gift, or a refund entry (negative amount, `refund_of` set), as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GiftView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    pub donor_id: Uuid,
    /// Minor units; negative for a refund entry.
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    /// `pending`, `succeeded`, `failed` or `refunded`.
    pub status: String,
    pub payment_method: Option<String>,
    pub source: String,
    pub fund: Option<String>,
    pub campaign: Option<String>,
    pub notes: Option<String>,
    pub external_reference: Option<String>,
    /// For a refund entry: the gift it refunds.
    pub refund_of: Option<Uuid>,
    /// In fund id order; empty when unallocated. A refund entry carries its share of each (negative).
    pub allocations: Vec<AllocationView>,
    /// In donor id order. A refund entry carries its share of each (negative).
    pub soft_credits: Vec<SoftCreditView>,
    /// The pledge the gift pays; a refund entry names its gift's.
    pub pledge_id: Option<Uuid>,
    /// Sponsorship of a sponsored event.
    pub sponsored_event: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredGift> for GiftView {
    fn from(s: StoredGift) -> Self {
        let g = s.gift;
        Self {
            id: g.id,
            revision: g.revision,
            donor_id: g.donor_id,
            amount_minor: g.amount_minor,
            currency: g.currency,
            gift_date: g.gift_date,
            status: status_name(g.status).to_owned(),
            payment_method: g.payment_method,
            source: g.source,
            fund: g.fund,
            campaign: g.campaign,
            notes: s.notes,
            external_reference: g.external_reference,
            refund_of: g.refund_of,
            allocations: g
                .allocations
                .into_iter()
                .map(|a| AllocationView { fund_id: a.fund_id, amount_minor: a.amount_minor })
                .collect(),
            soft_credits: g
                .soft_credits
                .into_iter()
                .map(|c| SoftCreditView {
                    donor_id: c.donor_id,
                    amount_minor: c.amount_minor,
                    kind: soft_credit_kind_name(c.kind).to_owned(),
                })
                .collect(),
            pledge_id: g.pledge_id,
            sponsored_event: s.sponsored_event,
            created_at: g.created_at,
            updated_at: g.updated_at,
        }
    }
}

fn as_input(s: &StoredGift) -> GiftInput {
    let g = &s.gift;
    GiftInput {
        donor_id: Some(g.donor_id),
        amount_minor: Some(g.amount_minor),
        currency: Some(g.currency.clone()),
        gift_date: Some(g.gift_date.to_string()),
        status: Some(status_name(g.status).to_owned()),
        payment_method: g.payment_method.clone(),
        source: Some(g.source.clone()),
        fund: g.fund.clone(),
        campaign: g.campaign.clone(),
        notes: s.notes.clone(),
        external_reference: g.external_reference.clone(),
        allocations: Some(
            g.allocations
                .iter()
                .map(|a| AllocationInput { fund_id: Some(a.fund_id), amount_minor: Some(a.amount_minor) })
                .collect(),
        ),
        soft_credits: Some(
            g.soft_credits
                .iter()
                .map(|c| SoftCreditInput {
                    donor_id: Some(c.donor_id),
                    amount_minor: Some(c.amount_minor),
                    kind: Some(soft_credit_kind_name(c.kind).to_owned()),
                })
                .collect(),
        ),
        pledge_id: g.pledge_id,
        sponsored_event: Some(s.sponsored_event),
    }
}

/// Parses a whole gift, naming every bad field. `current` is the status the gift has now, which may be kept
/// even when clients could not set it (`refunded`).
fn parse_gift(input: GiftInput, current: Option<GiftStatus>) -> Result<GiftDetails, ApiError> {
    let mut errors = FieldErrors::new();
    let donor_id = errors.required("donor_id", input.donor_id);
    let amount_minor = match errors.required("amount_minor", input.amount_minor) {
        Some(a) if a > 0 => Some(a),
        Some(_) => {
            errors.add("amount_minor", "must be more than 0 (record refunds with POST /v1/gifts/{id}/refunds)");
            None
        }
        None => None,
    };
    let currency =
        errors.required("currency", input.currency).and_then(|c| errors.parse("currency", Currency::parse(&c)));
    let gift_date = errors.required("gift_date", input.gift_date).and_then(|d| errors.parse("gift_date", iso_date(&d)));
    let status = match input.status.as_deref() {
        None => Some(GiftStatus::Succeeded),
        Some(s) if current.is_some_and(|c| status_name(c) == s.trim()) => current,
        Some(s) => errors.parse("status", parse_settable_status(s)),
    };
    let source = match input.source.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => errors.parse("source", SourceName::parse(s)),
        None => SourceName::parse("manual").ok(),
    };
    let payment_method = errors.parse("payment_method", optional_text(input.payment_method.as_deref(), 50)).flatten();
    let fund = errors.parse("fund", optional_text(input.fund.as_deref(), 100)).flatten();
    let campaign = errors.parse("campaign", optional_text(input.campaign.as_deref(), 100)).flatten();
    let notes = errors.parse("notes", optional_text(input.notes.as_deref(), 2000)).flatten();
    let external_reference =
        errors.parse("external_reference", optional_text(input.external_reference.as_deref(), 200)).flatten();
    let requested: Vec<AllocationRequest> = input
        .allocations
        .unwrap_or_default()
        .into_iter()
        .map(|a| AllocationRequest { fund_id: a.fund_id, amount_minor: a.amount_minor })
        .collect();
    let allocations = match parse_allocations(amount_minor, &requested) {
        Ok(parsed) => parsed,
        Err(problems) => {
            for (field, message) in problems {
                errors.add(field, message);
            }
            Vec::new()
        }
    };
    let requested: Vec<SoftCreditRequest> = input
        .soft_credits
        .unwrap_or_default()
        .into_iter()
        .map(|c| SoftCreditRequest { donor_id: c.donor_id, amount_minor: c.amount_minor, kind: c.kind })
        .collect();
    let soft_credits = match parse_soft_credits(amount_minor, donor_id, &requested) {
        Ok(parsed) => parsed,
        Err(problems) => {
            for (field, message) in problems {
                errors.add(field, message);
            }
            Vec::new()
        }
    };
    errors.finish()?;
    let (Some(donor_id), Some(amount_minor), Some(currency), Some(gift_date), Some(status), Some(source)) =
        (donor_id, amount_minor, currency, gift_date, status, source)
    else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated gift fields missing")));
    };
    Ok(GiftDetails {
        donor_id,
        amount_minor,
        currency,
        gift_date,
        status,
        payment_method,
        source,
        fund,
        campaign,
        notes,
        external_reference,
        allocations,
        soft_credits,
        pledge_id: input.pledge_id,
        sponsored_event: input.sponsored_event.unwrap_or(false),
    })
}

/// What the database knows of the funds, soft-credited donors and pledges some gifts name, for
/// [`check_links`]. Gathering it locks the pledges (in id order) until the transaction ends.
#[derive(Debug, Default)]
pub struct Links {
    /// Fund id to whether it is archived.
    funds: HashMap<Uuid, bool>,
    donors: HashSet<Uuid>,
    pledges: HashMap<Uuid, Pledge>,
}

/// Reads (and for pledges, locks) everything these gifts link to, in at most three statements.
pub async fn gather_links(tx: &Transaction, details: &[&GiftDetails]) -> Result<Links, ApiError> {
    let fund_ids: Vec<Uuid> = details.iter().flat_map(|d| d.allocations.iter().map(|a| a.fund_id)).collect();
    let donor_ids: Vec<Uuid> = details.iter().flat_map(|d| d.soft_credits.iter().map(|c| c.donor_id)).collect();
    let pledge_ids: Vec<Uuid> = details.iter().filter_map(|d| d.pledge_id).collect();
    let mut links = Links::default();
    if !fund_ids.is_empty() {
        links.funds.extend(funds::archived_flags(tx, &fund_ids).await?);
    }
    if !donor_ids.is_empty() {
        links.donors.extend(donors::existing(tx, &donor_ids).await?);
    }
    links.pledges.extend(pledges::lock_many(tx, &pledge_ids).await?.into_iter().map(|p| (p.id, p)));
    Ok(links)
}

/// Refuses a gift whose allocations name an unknown or archived fund, whose soft credits name an unknown donor,
/// or whose pledge is unknown, another donor's, in another currency or not open. `current` is the gift before a
/// change: the funds and pledge it already had are kept even when since archived or fulfilled.
pub fn check_links(details: &GiftDetails, current: Option<&Gift>, links: &Links) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    for (i, allocation) in details.allocations.iter().enumerate() {
        let field = format!("allocations[{i}].fund_id");
        let kept = current.is_some_and(|g| g.allocations.iter().any(|a| a.fund_id == allocation.fund_id));
        match links.funds.get(&allocation.fund_id) {
            None => problems.push(FieldError { field, message: "no such fund".into() }),
            Some(true) if !kept => {
                problems.push(FieldError { field, message: "the fund is archived; it takes no new gifts".into() })
            }
            Some(_) => {}
        }
    }
    for (i, credit) in details.soft_credits.iter().enumerate() {
        if !links.donors.contains(&credit.donor_id) {
            problems.push(FieldError { field: format!("soft_credits[{i}].donor_id"), message: "no such donor".into() });
        }
    }
    if let Some(pledge_id) = details.pledge_id {
        let field = "pledge_id".to_owned();
        let kept = current.is_some_and(|g| g.pledge_id == Some(pledge_id));
        match links.pledges.get(&pledge_id) {
            None => problems.push(FieldError { field, message: "no such pledge".into() }),
            Some(p) if p.donor_id != details.donor_id => {
                problems.push(FieldError { field, message: "the pledge is another donor's".into() })
            }
            Some(p) if p.currency != details.currency.code() => problems.push(FieldError {
                field,
                message: format!("the pledge is in {}, not in the gift's currency", p.currency),
            }),
            Some(p) if p.status != PledgeStatus::Open && !kept => problems.push(FieldError {
                field,
                message: format!("the pledge is {}; only an open pledge takes gifts", pledge_status_name(p.status)),
            }),
            Some(_) => {}
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(ApiError::validation(problems)) }
}

/// The donor must exist in the caller's tenant (another tenant's donor does not, as far as it can tell).
async fn check_donor(tx: &Transaction, donor_id: Uuid) -> Result<(), ApiError> {
    if donors::exists(tx, donor_id).await? {
        Ok(())
    } else {
        Err(ApiError::validation(vec![almoner_http::FieldError {
            field: "donor_id".into(),
            message: "no such donor".into(),
        }]))
    }
}

async fn check_reference(tx: &Transaction, details: &GiftDetails, except: Option<Uuid>) -> Result<(), ApiError> {
    if let Some(reference) = &details.external_reference
        && gifts::reference_taken(tx, details.source.as_str(), reference, except).await?
    {
        return Err(conflict("external_reference", "another gift from this source already has this reference"));
    }
    Ok(())
}

async fn emit_upserted(tx: &Transaction, tenant_id: Uuid, stored: &StoredGift) -> Result<(), ApiError> {
    emit(tx, tenant_id, GiftUpsertedV1 { gift: stored.gift.clone() }).await
}

/// Records a gift at revision 1.
#[utoipa::path(post, path = "/v1/gifts", tag = "gifts", security(("bearer" = ["fundraising:write"])),
    request_body = GiftInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new gift", body = GiftView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict (external_reference taken) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (an unknown donor names donor_id)",
            body = almoner_http::Problem),
    ))]
#[tracing::instrument(skip_all, fields(gift_id = tracing::field::Empty))]
pub async fn create_gift(
    req: HttpRequest,
    principal: Principal,
    intake: web::Data<GiftIntake>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let details = parse_gift(json_body(&req, &body)?, None)?;
    let submission = Submission {
        tenant_id: principal.tenant_id.as_uuid(),
        details,
        idempotency: key_and_hash(&req, &body)?,
        // Written with the event by a writer task: the request's trace must travel with it explicitly.
        traceparent: almoner_bus::propagation::current_trace_context().0,
    };
    match intake.submit(submission).await? {
        Recorded::Created(view) => {
            tracing::Span::current().record("gift_id", tracing::field::display(view.id));
            Ok(HttpResponse::Created().insert_header(("location", format!("/v1/gifts/{}", view.id))).json(view))
        }
        Recorded::Replay { status, body } => Ok(replay_response(status, body)),
    }
}

/// Reads one gift or refund entry.
#[utoipa::path(get, path = "/v1/gifts/{id}", tag = "gifts", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = GiftView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn get_gift(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "gift")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let gift = gifts::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftView::from(gift)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GiftQuery {
    pub donor_id: Option<String>,
    /// Gifts dated on or after this ISO date.
    pub from: Option<String>,
    /// Gifts dated on or before this ISO date.
    pub to: Option<String>,
    /// `pending`, `succeeded`, `failed` or `refunded`.
    pub status: Option<String>,
    pub fund: Option<String>,
    pub source: Option<String>,
    /// 1 to 500, default 50.
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GiftPage {
    pub data: Vec<GiftView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Lists gifts and refund entries, latest gift date first; every filter given must match.
#[utoipa::path(get, path = "/v1/gifts", tag = "gifts", security(("bearer" = ["fundraising:read"])),
    params(GiftQuery),
    responses((status = 200, body = GiftPage), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[tracing::instrument(skip_all)]
pub async fn list_gifts(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<GiftQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let query = query.into_inner();
    let mut errors = FieldErrors::new();
    let limit = page_limit(&mut errors, query.limit.as_deref());
    let after = query.cursor.as_deref().and_then(|c| errors.parse("cursor", decode_date_cursor(c)));
    let donor_id = query
        .donor_id
        .as_deref()
        .and_then(|d| errors.parse("donor_id", Uuid::try_parse(d.trim()).map_err(|_| "must be a UUID")));
    let from = query.from.as_deref().and_then(|d| errors.parse("from", iso_date(d)));
    let to = query.to.as_deref().and_then(|d| errors.parse("to", iso_date(d)));
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        errors.add("to", "must not be before from");
    }
    let status = match query.status.as_deref().map(str::trim) {
        None => None,
        Some(s) => match [GiftStatus::Pending, GiftStatus::Succeeded, GiftStatus::Failed, GiftStatus::Refunded]
            .into_iter()
            .map(status_name)
            .find(|name| *name == s)
        {
            Some(name) => Some(name),
            None => {
                errors.add("status", "must be one of pending, succeeded, failed, refunded");
                None
            }
        },
    };
    errors.finish()?;
    let filter = GiftFilter { donor_id, from, to, status, fund: query.fund, source: query.source };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = gifts::list(&tx, &filter, after, limit + 1).await?;
    tx.commit().await?;
    let (found, next_cursor) = paginate(found, limit, |g| format!("{}|{}", g.gift.gift_date, g.gift.id));
    Ok(HttpResponse::Ok().json(GiftPage { data: found.into_iter().map(GiftView::from).collect(), next_cursor }))
}

/// Changes some of a gift's fields (JSON merge patch): absent members stay, `null` clears. A refund entry cannot be
/// changed (delete it and record it again), nor can a refunded gift's donor, amount or currency.
#[utoipa::path(patch, path = "/v1/gifts/{id}", tag = "gifts", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = GiftInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The gift after the change", body = GiftView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "a refund entry, a refunded gift's amount, or a taken external_reference",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn update_gift(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = gifts::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    if current.gift.refund_of.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a refund entry cannot be changed; delete it and record it again",
        ));
    }
    let status = Some(current.gift.status);
    let details = parse_gift(merge_patch(&req, &body, &as_input(&current))?, status)?;
    let before = parse_gift(as_input(&current), status).ok();
    if before == Some(details.clone().normalised()) {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(GiftView::from(current)));
    }
    let g = &current.gift;
    // Refunds net off money that was received: once a gift has them, what it records must not change under them.
    // Its refund entries carry their shares of its allocations, soft credits and pledge, so those stay too.
    let normalised = details.clone().normalised();
    let money_changed = details.donor_id != g.donor_id
        || details.amount_minor != g.amount_minor
        || details.currency.code() != g.currency
        || details.status != g.status
        || normalised.allocations != g.allocations
        || normalised.soft_credits != g.soft_credits
        || details.pledge_id != g.pledge_id;
    if money_changed && gifts::refunded_total(&tx, id).await? > 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a gift with refunds keeps its donor, amount, currency, status, allocations, soft credits and pledge; \
             delete the refunds first",
        ));
    }
    if details.donor_id != g.donor_id {
        check_donor(&tx, details.donor_id).await?;
    }
    // Both pledges at once, in id order: the one it paid and the one it pays now.
    let touched: Vec<Uuid> = g.pledge_id.into_iter().chain(details.pledge_id).collect();
    let mut ordered = touched.clone();
    ordered.sort_unstable();
    ordered.dedup();
    pledges::lock_many(&tx, &ordered).await?;
    check_links(&details, Some(g), &gather_links(&tx, &[&details]).await?)?;
    check_reference(&tx, &details, Some(id)).await?;
    let stored = gifts::update(&tx, id, &details, details.amount_minor).await?;
    emit_upserted(&tx, tenant_id, &stored).await?;
    settle_pledges(&tx, tenant_id, &touched, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftView::from(stored)))
}

/// Deletes a gift entered in error, or a refund entry (its gift's status follows). A gift with refunds cannot be
/// deleted until they are.
#[utoipa::path(delete, path = "/v1/gifts/{id}", tag = "gifts", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "The gift has refunds", body = almoner_http::Problem)))]
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn delete_gift(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = gifts::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    // Lock the refunded gift before changing its refunds, in the same order as recording a refund does.
    let original = match current.gift.refund_of {
        Some(original) => gifts::lock(&tx, original).await?,
        None => None,
    };
    if current.gift.refund_of.is_none() && gifts::refunded_total(&tx, id).await? != 0 {
        return Err(ApiError::new(ErrorCode::Conflict, "the gift has refunds; delete them first"));
    }
    let (deleted, deleted_at) = gifts::delete(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    emit(
        &tx,
        tenant_id,
        GiftDeletedV1 {
            gift_id: id,
            donor_id: deleted.gift.donor_id,
            tenant_id,
            revision: deleted.gift.revision,
            deleted_at,
        },
    )
    .await?;
    if let Some(original) = original {
        let refunded = gifts::refunded_total(&tx, original.gift.id).await?;
        let status = status_after_refunds(original.gift.status, original.gift.amount_minor, refunded);
        if status != original.gift.status {
            let stored = gifts::set_status(&tx, original.gift.id, status).await?;
            emit_upserted(&tx, tenant_id, &stored).await?;
        }
    }
    // What the deleted gift (or refund entry) paid towards its pledge is gone.
    if let Some(pledge_id) = deleted.gift.pledge_id {
        settle_pledges(&tx, tenant_id, &[pledge_id], None).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    /// Required: minor units going back, more than 0 and at most what is not yet refunded.
    pub amount_minor: Option<i64>,
    /// Required: ISO date of the refund.
    pub date: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundRecorded {
    /// The refund entry: a gift with a negative amount and `refund_of` set.
    pub refund: GiftView,
    /// The refunded gift, `refunded` once its refunds add up to its amount.
    pub gift: GiftView,
}

fn parse_refund(input: RefundInput) -> Result<Refund, ApiError> {
    let mut errors = FieldErrors::new();
    let amount_minor = match errors.required("amount_minor", input.amount_minor) {
        Some(a) if a > 0 => Some(a),
        Some(_) => {
            errors.add("amount_minor", "must be more than 0");
            None
        }
        None => None,
    };
    let date = errors.required("date", input.date).and_then(|d| errors.parse("date", iso_date(&d)));
    let reason = errors.parse("reason", optional_text(input.reason.as_deref(), 2000)).flatten();
    errors.finish()?;
    let (Some(amount_minor), Some(date)) = (amount_minor, date) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated refund fields missing")));
    };
    Ok(Refund { amount_minor, date, reason })
}

/// Records a (partial or full) refund of a succeeded gift.
#[utoipa::path(post, path = "/v1/gifts/{id}/refunds", tag = "gifts", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = RefundInput,
    responses(
        (status = 201, description = "The refund entry and the refunded gift", body = RefundRecorded),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "not refundable (pending, failed, a refund entry) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed; amount_minor beyond what is left to refund",
            body = almoner_http::Problem),
    ))]
#[tracing::instrument(skip_all, fields(gift_id = %id, refund_id = tracing::field::Empty))]
pub async fn refund_gift(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift")?;
    let refund = parse_refund(json_body(&req, &body)?)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let (entry, gift) = record_refund(&tx, tenant_id, id, &refund, None, None).await?;
    let refund_id = entry.gift.id;
    let recorded = RefundRecorded { refund: GiftView::from(entry), gift: GiftView::from(gift) };
    remember(&tx, &key, 201, &recorded).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/gifts/{refund_id}"))).json(recorded))
}

/// Records a refund of gift `id` as its own negative entry, moves the gift to `refunded` once its refunds add up
/// to it, and writes both events. Returns the refund entry and the gift as it is now. `refund_id` is the entry's
/// id when the caller decided it (imports). With `collect`, the entry's and the gift's new states are added to
/// it instead of being published one by one (an import publishes a chunk's gifts in one event).
pub async fn record_refund(
    tx: &Transaction,
    tenant_id: Uuid,
    id: Uuid,
    refund: &Refund,
    refund_id: Option<Uuid>,
    mut collect: Option<&mut Vec<Gift>>,
) -> Result<(StoredGift, StoredGift), ApiError> {
    let original = gifts::lock(tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    let g = &original.gift;
    let refunded = gifts::refunded_total(tx, id).await?;
    match refund.check(g.amount_minor, g.status, g.refund_of.is_some(), refunded) {
        Ok(()) => {}
        Err(e @ RefundError::TooMuch { .. }) => {
            return Err(ApiError::validation(vec![almoner_http::FieldError {
                field: "amount_minor".into(),
                message: e.to_string(),
            }]));
        }
        Err(e) => return Err(ApiError::new(ErrorCode::Conflict, e.to_string())),
    }
    let currency =
        Currency::parse(&g.currency).map_err(|e| ApiError::unexpected(anyhow::anyhow!("stored currency: {e}")))?;
    let source =
        SourceName::parse(&g.source).map_err(|e| ApiError::unexpected(anyhow::anyhow!("stored source: {e}")))?;
    let (allocations, soft_credits) = refund_shares(tx, g, refunded, refund.amount_minor).await?;
    let details = GiftDetails {
        donor_id: g.donor_id,
        amount_minor: refund.amount_minor,
        currency,
        gift_date: refund.date,
        status: GiftStatus::Succeeded,
        payment_method: g.payment_method.clone(),
        source,
        fund: g.fund.clone(),
        campaign: g.campaign.clone(),
        notes: refund.reason.clone(),
        external_reference: None,
        allocations,
        soft_credits,
        pledge_id: g.pledge_id,
        sponsored_event: original.sponsored_event,
    };
    let refund_id = refund_id.unwrap_or_else(Uuid::now_v7);
    tracing::Span::current().record("refund_id", tracing::field::display(refund_id));
    let entry = gifts::insert(
        tx,
        &NewGift { id: refund_id, details: &details, amount_minor: -refund.amount_minor, refund_of: Some(id) },
    )
    .await?;
    match collect.as_deref_mut() {
        Some(collected) => collected.push(entry.gift.clone()),
        None => emit_upserted(tx, tenant_id, &entry).await?,
    }
    let status = status_after_refunds(g.status, g.amount_minor, refunded + refund.amount_minor);
    let pledge_id = g.pledge_id;
    let gift = if status == g.status {
        original
    } else {
        let stored = gifts::set_status(tx, id, status).await?;
        match collect {
            Some(collected) => collected.push(stored.gift.clone()),
            None => emit_upserted(tx, tenant_id, &stored).await?,
        }
        stored
    };
    if let Some(pledge_id) = pledge_id {
        settle_pledges(tx, tenant_id, &[pledge_id], None).await?;
    }
    Ok((entry, gift))
}

/// The refund entry's (negative) share of each allocation and soft credit of gift `g`, of which `refunded`
/// (positive) had gone back before this refund of `amount`. Zero shares are left out.
async fn refund_shares(
    tx: &Transaction,
    g: &Gift,
    refunded: i64,
    amount: i64,
) -> Result<(Vec<FundAllocation>, Vec<SoftCredit>), ApiError> {
    if g.allocations.is_empty() && g.soft_credits.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let (taken_by_fund, taken_by_donor) = gifts::refunded_parts(tx, g.id).await?;
    let parts: Vec<RefundablePart> = g
        .allocations
        .iter()
        .map(|a| RefundablePart { whole: a.amount_minor, taken: taken_by_fund.get(&a.fund_id).copied().unwrap_or(0) })
        .collect();
    let allocations = g
        .allocations
        .iter()
        .zip(allocation_refund(&parts, amount))
        .filter(|(_, share)| *share != 0)
        .map(|(a, share)| FundAllocation { fund_id: a.fund_id, amount_minor: -share })
        .collect();
    let parts: Vec<RefundablePart> = g
        .soft_credits
        .iter()
        .map(|c| RefundablePart { whole: c.amount_minor, taken: taken_by_donor.get(&c.donor_id).copied().unwrap_or(0) })
        .collect();
    let soft_credits = g
        .soft_credits
        .iter()
        .zip(soft_credit_refund(&parts, g.amount_minor, refunded + amount))
        .filter(|(_, share)| *share != 0)
        .map(|(c, share)| SoftCredit { donor_id: c.donor_id, amount_minor: -share, kind: c.kind })
        .collect();
    Ok((allocations, soft_credits))
}
