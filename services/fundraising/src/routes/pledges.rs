//! `/v1/pledges`: record, read, list, cancel and reopen pledges.
//!
//! A pledge is a promise, not money: it never counts as a gift. Gifts name the pledge they pay (`pledge_id`);
//! once they reach its amount it is `fulfilled`, and `open` again if a refund takes it below. Those moves happen
//! in the transaction of the gift or refund that causes them (`app::pledges::settle_pledges`). Every change writes
//! `fundraising.pledge.upserted.v1` with the pledge's next revision to the outbox in the same transaction.

use super::conventions::{Claim, claim, emit, iso_date, json_body, merge_patch, path_id, remember, replay_response};
use crate::db::pledges::{self, StoredPledge};
use crate::db::{donors, funds};
use crate::domain::pledge::{
    PledgeDetails, PledgeStatus, check_instalments, frequency_name, outstanding, parse_frequency,
    parse_requested_pledge_status, pledge_status_name, schedule, status_after_payments,
};
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use almoner_db::Pool;
use almoner_events::fundraising::PledgeUpsertedV1;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal};
use almoner_types::Currency;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_pledge).service(list_pledges).service(get_pledge).service(update_pledge);
}

/// A new pledge.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PledgeInput {
    /// Required: a donor of the same tenant.
    #[schema(required = true, value_type = Uuid)]
    pub donor_id: Option<Uuid>,
    /// Required: the whole promise in minor units, at least 1 per instalment.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub amount_minor: Option<i64>,
    /// Required: ISO 4217; the gifts paying the pledge must be in it.
    #[schema(required = true, value_type = super::schemas::CurrencyCode)]
    pub currency: Option<String>,
    /// Required: `once`, `monthly`, `quarterly` or `annually`.
    #[schema(required = true, value_type = super::schemas::PledgeFrequencyName)]
    pub frequency: Option<String>,
    /// 1 (the default) for `once`; 1 to 600 otherwise.
    #[schema(minimum = 1, maximum = 600)]
    pub instalments: Option<i64>,
    /// Required: ISO date the first instalment is due.
    #[schema(required = true, value_type = String, format = Date)]
    pub start_date: Option<String>,
    /// A fund of the same tenant, not archived: what the donor means the money for.
    pub fund_id: Option<Uuid>,
}

/// What a client may change of a pledge: its status, to cancel it or reopen a cancelled one.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PledgePatch {
    /// `cancelled`, or `open` to reopen a cancelled pledge (it is `fulfilled` straight away if already paid).
    pub status: Option<String>,
}

/// One instalment of a pledge's schedule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstalmentView {
    /// From 1.
    pub number: i32,
    pub due_date: NaiveDate,
    pub amount_minor: i64,
    /// What is paid so far reaches the end of this instalment (instalments are covered in order).
    pub covered: bool,
    /// Not covered, due before today, and the pledge is open.
    pub overdue: bool,
}

/// A pledge as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PledgeView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    pub donor_id: Uuid,
    pub amount_minor: i64,
    pub currency: String,
    /// `once`, `monthly`, `quarterly` or `annually`.
    pub frequency: String,
    pub instalments: i32,
    pub start_date: NaiveDate,
    /// `open`, `fulfilled` or `cancelled`.
    pub status: String,
    pub fund_id: Option<Uuid>,
    /// The gifts paying the pledge that count as money (`succeeded`, `refunded`), net of their refunds.
    pub paid_minor: i64,
    /// What is unpaid of an open pledge; 0 once fulfilled or cancelled.
    pub outstanding_minor: i64,
    /// Each instalment as of today.
    pub schedule: Vec<InstalmentView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredPledge> for PledgeView {
    fn from(s: StoredPledge) -> Self {
        let p = s.pledge;
        let today = Utc::now().date_naive();
        let schedule =
            schedule(p.amount_minor, p.frequency, p.instalments, p.start_date, s.paid_minor, p.status, today)
                .into_iter()
                .map(|i| InstalmentView {
                    number: i.number,
                    due_date: i.due_date,
                    amount_minor: i.amount_minor,
                    covered: i.covered,
                    overdue: i.overdue,
                })
                .collect();
        Self {
            id: p.id,
            revision: p.revision,
            donor_id: p.donor_id,
            amount_minor: p.amount_minor,
            currency: p.currency,
            frequency: frequency_name(p.frequency).to_owned(),
            instalments: p.instalments,
            start_date: p.start_date,
            status: pledge_status_name(p.status).to_owned(),
            fund_id: p.fund_id,
            paid_minor: s.paid_minor,
            outstanding_minor: outstanding(p.status, p.amount_minor, s.paid_minor),
            schedule,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

fn parse_pledge(input: PledgeInput) -> Result<PledgeDetails, ApiError> {
    let mut errors = FieldErrors::new();
    let donor_id = errors.required("donor_id", input.donor_id);
    let amount_minor = match errors.required("amount_minor", input.amount_minor) {
        Some(a) if a > 0 => Some(a),
        Some(_) => {
            errors.add("amount_minor", "must be more than 0");
            None
        }
        None => None,
    };
    let currency =
        errors.required("currency", input.currency).and_then(|c| errors.parse("currency", Currency::parse(&c)));
    let frequency =
        errors.required("frequency", input.frequency).and_then(|f| errors.parse("frequency", parse_frequency(&f)));
    let instalments =
        frequency.and_then(|f| errors.parse("instalments", check_instalments(f, input.instalments.unwrap_or(1))));
    if let (Some(amount), Some(count)) = (amount_minor, instalments)
        && amount < i64::from(count)
    {
        errors.add("amount_minor", "must be at least 1 per instalment");
    }
    let start_date =
        errors.required("start_date", input.start_date).and_then(|d| errors.parse("start_date", iso_date(&d)));
    errors.finish()?;
    let (Some(donor_id), Some(amount_minor), Some(currency), Some(frequency), Some(instalments), Some(start_date)) =
        (donor_id, amount_minor, currency, frequency, instalments, start_date)
    else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated pledge fields missing")));
    };
    Ok(PledgeDetails { donor_id, amount_minor, currency, frequency, instalments, start_date, fund_id: input.fund_id })
}

/// Records a pledge, `open`, at revision 1.
#[utoipa::path(tag = "pledges", security(("bearer" = ["fundraising:write"])),
    request_body = PledgeInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new pledge", body = PledgeView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (an unknown donor names donor_id, an \
            unknown or archived fund fund_id)", body = almoner_http::Problem),
    ))]
#[post("/v1/pledges")]
#[tracing::instrument(skip_all, fields(pledge_id = tracing::field::Empty))]
pub async fn create_pledge(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let details = parse_pledge(json_body(&req, &body)?)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let mut problems = Vec::new();
    if !donors::exists(&tx, details.donor_id).await? {
        problems.push(FieldError { field: "donor_id".into(), message: "no such donor".into() });
    }
    if let Some(fund_id) = details.fund_id {
        match funds::get(&tx, fund_id).await? {
            None => problems.push(FieldError { field: "fund_id".into(), message: "no such fund".into() }),
            Some(fund) if fund.archived => {
                problems.push(FieldError { field: "fund_id".into(), message: "the fund is archived".into() })
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::validation(problems));
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("pledge_id", tracing::field::display(id));
    let stored = pledges::insert(&tx, id, &details).await?;
    emit(&tx, tenant_id, PledgeUpsertedV1 { pledge: stored.pledge.clone() }).await?;
    let view = PledgeView::from(stored);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/pledges/{id}"))).json(view))
}

/// Reads one pledge: what is paid, what is outstanding, and its schedule as of today.
#[utoipa::path(tag = "pledges", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = PledgeView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/pledges/{id}")]
#[tracing::instrument(skip_all, fields(pledge_id = %id))]
pub async fn get_pledge(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "pledge")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let pledge = pledges::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("pledge"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(PledgeView::from(pledge)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PledgeQuery {
    /// Only this donor's pledges.
    pub donor_id: Option<String>,
}

/// Lists pledges, newest first.
#[utoipa::path(tag = "pledges", security(("bearer" = ["fundraising:read"])),
    params(PledgeQuery, PageQuery),
    responses((status = 200, body = Page<PledgeView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/pledges")]
#[tracing::instrument(skip_all)]
pub async fn list_pledges(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<PledgeQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let donor_id = query
        .donor_id
        .as_deref()
        .and_then(|d| errors.parse("donor_id", Uuid::try_parse(d.trim()).map_err(|_| "must be a UUID")));
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = pledges::list(&tx, donor_id, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |p| p.pledge.id).map(PledgeView::from)))
}

/// Cancels an open pledge, or reopens a cancelled one (JSON merge patch of `status`).
#[utoipa::path(tag = "pledges", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = PledgePatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The pledge after the change", body = PledgeView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "a fulfilled pledge cannot be cancelled or reopened", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/pledges/{id}")]
#[tracing::instrument(skip_all, fields(pledge_id = %id))]
pub async fn update_pledge(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "pledge")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    pledges::lock_many(&tx, &[id]).await?.pop().ok_or_else(|| ApiError::not_found("pledge"))?;
    let current = pledges::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("pledge"))?;
    let now = PledgePatch { status: Some(pledge_status_name(current.pledge.status).to_owned()) };
    let patched = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let wanted = match errors.required("status", patched.status) {
        Some(s) if s.trim() == pledge_status_name(current.pledge.status) => Some(current.pledge.status),
        Some(s) => errors.parse("status", parse_requested_pledge_status(&s)),
        None => None,
    };
    errors.finish()?;
    let wanted = wanted.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated pledge status missing")))?;
    if wanted == current.pledge.status {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(PledgeView::from(current)));
    }
    let status = match (current.pledge.status, wanted) {
        (PledgeStatus::Fulfilled, _) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "the pledge is fulfilled: it is open again only if a refund takes what is paid below its amount",
            ));
        }
        // Reopened: fulfilled at once if its gifts already reach the amount.
        (PledgeStatus::Cancelled, PledgeStatus::Open) => {
            status_after_payments(PledgeStatus::Open, current.pledge.amount_minor, current.paid_minor)
        }
        (_, wanted) => wanted,
    };
    let stored = pledges::set_status(&tx, id, status).await?;
    emit(&tx, tenant_id, PledgeUpsertedV1 { pledge: stored.pledge.clone() }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(PledgeView::from(stored)))
}
