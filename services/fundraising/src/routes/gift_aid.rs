//! Gift Aid: declarations (`/v1/donors/{id}/gift-aid-declarations`, `/v1/gift-aid-declarations/{id}`), a gift's
//! eligibility (`/v1/gifts/{id}/gift-aid`) and the tenant's settings (`/v1/gift-aid/settings`). The rules are in
//! `domain::gift_aid` and `docs/gift-aid.md`.

use super::conventions::{Claim, claim, iso_date, json_body, merge_patch, path_id, remember, replay_response};
use crate::db::{donors, gift_aid as db};
use crate::domain::gift_aid::{
    Declaration, DeclarationInput, GiftAidSettings, Ineligible, Standing, assess, gift_aid_on,
};
use crate::domain::optional_text;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, put, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_declaration)
        .service(list_declarations)
        .service(get_declaration)
        .service(update_declaration)
        .service(gift_eligibility)
        .service(get_settings)
        .service(put_settings);
}

/// A declaration as sent by clients; on `PATCH` every member is optional and `null` clears it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclarationBody {
    /// Required: `online`, `written` or `oral`.
    #[schema(required = true, value_type = super::schemas::DeclarationMethodName)]
    pub method: Option<String>,
    /// The day the donor made it (ISO date); default today.
    #[schema(value_type = Option<String>, format = Date)]
    pub declared_on: Option<String>,
    /// First gift date covered; default `declared_on`; at most 4 years before it.
    #[schema(value_type = Option<String>, format = Date)]
    pub start_date: Option<String>,
    /// Last gift date covered, once it has ended.
    #[schema(value_type = Option<String>, format = Date)]
    pub end_date: Option<String>,
    /// With `end_date`: `donor_request`, `insufficient_tax`, `deceased`, `superseded` or `other`.
    #[schema(value_type = Option<super::schemas::EndReasonName>)]
    pub end_reason: Option<String>,
    /// Required: the wording the donor agreed to, as shown: 1 to 4000 characters once trimmed, no control
    /// characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 4000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub declaration_text: Option<String>,
    /// Oral declarations: the day the written record was sent; the donor may cancel for 30 days after it.
    #[schema(value_type = Option<String>, format = Date)]
    pub confirmation_sent_on: Option<String>,
    /// Oral declarations: the day the donor cancelled within those 30 days; voids it from the start.
    #[schema(value_type = Option<String>, format = Date)]
    pub cancelled_on: Option<String>,
}

/// A change to a declaration (JSON merge patch, RFC 7396): absent members stay, `null` clears. The rules are
/// those of [`DeclarationBody`]; `method` and `declaration_text` cannot be cleared.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The document's shape of a patch; the handler merges it into [`DeclarationBody`].
pub struct DeclarationPatch {
    #[schema(nullable = false, value_type = Option<super::schemas::DeclarationMethodName>)]
    pub method: Option<String>,
    /// The day the donor made it (ISO date); default today.
    #[schema(value_type = Option<String>, format = Date)]
    pub declared_on: Option<String>,
    /// First gift date covered; default `declared_on`; at most 4 years before it.
    #[schema(value_type = Option<String>, format = Date)]
    pub start_date: Option<String>,
    /// Last gift date covered, once it has ended.
    #[schema(value_type = Option<String>, format = Date)]
    pub end_date: Option<String>,
    /// With `end_date`: `donor_request`, `insufficient_tax`, `deceased`, `superseded` or `other`.
    #[schema(value_type = Option<super::schemas::EndReasonName>)]
    pub end_reason: Option<String>,
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub declaration_text: Option<String>,
    /// Oral declarations: the day the written record was sent; the donor may cancel for 30 days after it.
    #[schema(value_type = Option<String>, format = Date)]
    pub confirmation_sent_on: Option<String>,
    /// Oral declarations: the day the donor cancelled within those 30 days; voids it from the start.
    #[schema(value_type = Option<String>, format = Date)]
    pub cancelled_on: Option<String>,
}

/// A declaration as clients see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeclarationView {
    pub id: Uuid,
    pub donor_id: Uuid,
    pub revision: i64,
    pub method: String,
    pub declared_on: NaiveDate,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub end_reason: Option<String>,
    pub declaration_text: String,
    pub confirmation_sent_on: Option<NaiveDate>,
    pub cancelled_on: Option<NaiveDate>,
    /// Oral declarations with their record sent: the last day the donor may cancel.
    pub cancellation_window_ends: Option<NaiveDate>,
    /// Today: `active`, `awaiting_confirmation` (oral, no record sent), `in_cancellation_window`, `cancelled`,
    /// `ended` (its end date has passed) or `not_started` (its start date is to come).
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl From<db::StoredDeclaration> for DeclarationView {
    fn from(s: db::StoredDeclaration) -> Self {
        let d = &s.declaration;
        let today = today();
        let state = if d.cancelled_on.is_some() {
            "cancelled"
        } else if d.end_date.is_some_and(|end| end < today) {
            "ended"
        } else if d.start_date > today {
            "not_started"
        } else {
            match d.standing(today, today) {
                Standing::AwaitingConfirmation => "awaiting_confirmation",
                Standing::InCancellationWindow { .. } => "in_cancellation_window",
                _ => "active",
            }
        };
        Self {
            id: s.id,
            donor_id: s.donor_id,
            revision: s.revision,
            method: d.method.as_str().to_owned(),
            declared_on: d.declared_on,
            start_date: d.start_date,
            end_date: d.end_date,
            end_reason: d.end_reason.map(|r| r.as_str().to_owned()),
            declaration_text: d.declaration_text.clone(),
            confirmation_sent_on: d.confirmation_sent_on,
            cancelled_on: d.cancelled_on,
            cancellation_window_ends: d.cancellation_window_ends(),
            state: state.to_owned(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

fn as_body(d: &Declaration) -> DeclarationBody {
    DeclarationBody {
        method: Some(d.method.as_str().to_owned()),
        declared_on: Some(d.declared_on.to_string()),
        start_date: Some(d.start_date.to_string()),
        end_date: d.end_date.map(|x| x.to_string()),
        end_reason: d.end_reason.map(|r| r.as_str().to_owned()),
        declaration_text: Some(d.declaration_text.clone()),
        confirmation_sent_on: d.confirmation_sent_on.map(|x| x.to_string()),
        cancelled_on: d.cancelled_on.map(|x| x.to_string()),
    }
}

/// Parses a whole declaration, naming every bad field.
fn parse_declaration(body: &DeclarationBody) -> Result<Declaration, ApiError> {
    let mut errors = FieldErrors::new();
    let mut date = |field: &str, value: &Option<String>| -> Option<NaiveDate> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty()).and_then(|v| errors.parse(field, iso_date(v)))
    };
    let input = DeclarationInput {
        method: body.method.as_deref(),
        declared_on: date("declared_on", &body.declared_on),
        start_date: date("start_date", &body.start_date),
        end_date: date("end_date", &body.end_date),
        end_reason: body.end_reason.as_deref(),
        declaration_text: body.declaration_text.as_deref(),
        confirmation_sent_on: date("confirmation_sent_on", &body.confirmation_sent_on),
        cancelled_on: date("cancelled_on", &body.cancelled_on),
    };
    let parsed = Declaration::parse(input, today());
    if let Err(problems) = &parsed {
        for (field, problem) in problems {
            errors.add(*field, problem.to_string());
        }
    }
    errors.finish()?;
    parsed.map_err(|_| ApiError::unexpected(anyhow::anyhow!("declaration refused without a field error")))
}

/// Records a Gift Aid declaration for a donor.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:write"])), request_body = DeclarationBody,
    params(("id" = Uuid, Path, description = "The donor"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses((status = 201, body = DeclarationView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, description = "no such donor", body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[post("/v1/donors/{id}/gift-aid-declarations")]
#[tracing::instrument(skip_all, fields(donor_id = %donor_id, declaration_id = tracing::field::Empty))]
pub async fn create_declaration(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    donor_id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let donor_id = path_id(&donor_id, "donor")?;
    let declaration = parse_declaration(&json_body(&req, &body)?)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    if !donors::exists(&tx, donor_id).await? {
        return Err(ApiError::not_found("donor"));
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("declaration_id", tracing::field::display(id));
    let view = DeclarationView::from(db::insert(&tx, id, donor_id, &declaration).await?);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/gift-aid-declarations/{id}"))).json(view))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeclarationList {
    pub data: Vec<DeclarationView>,
}

/// A donor's declarations, newest first.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read"])), params(("id" = Uuid, Path, description = "The donor")),
    responses((status = 200, body = DeclarationList), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/donors/{id}/gift-aid-declarations")]
#[tracing::instrument(skip_all, fields(donor_id = %donor_id))]
pub async fn list_declarations(
    principal: Principal,
    pool: web::Data<Pool>,
    donor_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let donor_id = path_id(&donor_id, "donor")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if !donors::exists(&tx, donor_id).await? {
        return Err(ApiError::not_found("donor"));
    }
    let data = db::of_donor(&tx, donor_id).await?.into_iter().map(DeclarationView::from).collect();
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(DeclarationList { data }))
}

/// Reads one declaration.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = DeclarationView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/gift-aid-declarations/{id}")]
#[tracing::instrument(skip_all, fields(declaration_id = %id))]
pub async fn get_declaration(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "declaration")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("declaration"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(DeclarationView::from(stored)))
}

/// Changes a declaration (JSON merge patch): end it (`end_date`, `end_reason`), record the written confirmation
/// of an oral one, or its cancellation within the window.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:write"])), params(("id" = Uuid, Path)),
    request_body(content = DeclarationPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, body = DeclarationView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON (or a JSON merge patch)", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/gift-aid-declarations/{id}")]
#[tracing::instrument(skip_all, fields(declaration_id = %id))]
pub async fn update_declaration(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "declaration")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = db::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("declaration"))?;
    let merged: DeclarationBody = merge_patch(&req, &body, &as_body(&current.declaration))?;
    let declaration = parse_declaration(&merged)?;
    if declaration == current.declaration {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(DeclarationView::from(current)));
    }
    let updated = db::update(&tx, id, &declaration).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(DeclarationView::from(updated)))
}

/// Why a gift cannot be claimed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    pub code: ReasonCode,
    /// For people: what is wrong, with the dates or values involved.
    pub detail: String,
}

impl From<&Ineligible> for Reason {
    fn from(reason: &Ineligible) -> Self {
        Self { code: ReasonCode::from(reason), detail: reason.detail() }
    }
}

/// The stable code of a reason a gift cannot be claimed (`docs/gift-aid.md` explains each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    NoDeclaration,
    OralDeclarationNotConfirmed,
    InCancellationWindow,
    NoUkAddress,
    NoHouseNameOrNumber,
    NoUkPostcode,
    NoFirstName,
    NoLastName,
    OutOfTime,
    AgentClaimsGiftAid,
    ClaimedByPlatform,
    NotGbp,
    NotSucceeded,
    RefundEntry,
    FullyRefunded,
    AlreadyClaimed,
}

impl From<&Ineligible> for ReasonCode {
    fn from(reason: &Ineligible) -> Self {
        match reason {
            Ineligible::NoDeclaration => Self::NoDeclaration,
            Ineligible::OralDeclarationNotConfirmed => Self::OralDeclarationNotConfirmed,
            Ineligible::InCancellationWindow { .. } => Self::InCancellationWindow,
            Ineligible::NoUkAddress => Self::NoUkAddress,
            Ineligible::NoHouseNameOrNumber => Self::NoHouseNameOrNumber,
            Ineligible::NoUkPostcode => Self::NoUkPostcode,
            Ineligible::NoFirstName => Self::NoFirstName,
            Ineligible::NoLastName => Self::NoLastName,
            Ineligible::OutOfTime { .. } => Self::OutOfTime,
            Ineligible::AgentClaims { .. } => Self::AgentClaimsGiftAid,
            Ineligible::ClaimedByPlatform => Self::ClaimedByPlatform,
            Ineligible::NotGbp { .. } => Self::NotGbp,
            Ineligible::NotSucceeded { .. } => Self::NotSucceeded,
            Ineligible::RefundEntry => Self::RefundEntry,
            Ineligible::FullyRefunded => Self::FullyRefunded,
            Ineligible::AlreadyClaimed { .. } => Self::AlreadyClaimed,
        }
    }
}

/// Whether a gift can be claimed today, and why not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Eligibility {
    pub gift_id: Uuid,
    pub donor_id: Uuid,
    pub eligible: bool,
    /// What would be claimed on: the gift less its refunds, in pence.
    pub claimable_amount_minor: Option<i64>,
    /// The Gift Aid HMRC would pay on it: 25p per £1.
    pub gift_aid_minor: Option<i64>,
    pub declaration_id: Option<Uuid>,
    /// Empty when eligible; otherwise every reason that applies.
    pub reasons: Vec<Reason>,
}

/// A gift's Gift Aid eligibility today.
#[utoipa::path(tag = "gift aid",
    security(("bearer" = ["fundraising:read"])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Eligibility), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/gifts/{id}/gift-aid")]
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn gift_eligibility(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let gift_id = path_id(&id, "gift")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let db::Facts { donor_id, gift, donor, declarations } =
        db::facts(&tx, gift_id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    let settings = db::settings(&tx).await?;
    tx.commit().await?;
    let view = match assess(&gift, &donor, &declarations, &settings, today()) {
        Ok(claimable) => Eligibility {
            gift_id,
            donor_id,
            eligible: true,
            claimable_amount_minor: Some(claimable.amount_minor),
            gift_aid_minor: Some(gift_aid_on(claimable.amount_minor)),
            declaration_id: Some(claimable.declaration_id),
            reasons: Vec::new(),
        },
        Err(reasons) => Eligibility {
            gift_id,
            donor_id,
            eligible: false,
            claimable_amount_minor: None,
            gift_aid_minor: None,
            declaration_id: None,
            reasons: reasons.iter().map(Reason::from).collect(),
        },
    };
    Ok(HttpResponse::Ok().json(view))
}

/// The tenant's Gift Aid settings.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// Required: gift sources whose platform claims Gift Aid itself (their gifts are never in the charity's
    /// claims), each 1 to 50 characters, compared without regard to case; default `["justgiving"]`.
    #[schema(required = true, value_type = Vec<super::schemas::AgentSource>, max_items = 50)]
    pub agent_sources: Option<Vec<String>>,
    /// Donations up to this many pence are aggregated in the HMRC schedule: 0 (none) to 2000 (£20, HMRC's
    /// limit, the default).
    #[schema(minimum = 0, maximum = 2000)]
    pub aggregate_up_to_minor: Option<i64>,
}

/// Reads the tenant's Gift Aid settings.
#[utoipa::path(tag = "gift aid", security(("bearer" = ["fundraising:read"])),
    responses((status = 200, body = SettingsView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem)))]
#[get("/v1/gift-aid/settings")]
#[tracing::instrument(skip_all)]
pub async fn get_settings(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let settings = db::settings(&tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(settings)))
}

/// The tenant's Gift Aid settings as they apply: the ones set here, and the accounting period end learned from
/// identity's tenant settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    pub agent_sources: Vec<String>,
    #[schema(minimum = 0, maximum = 2000)]
    pub aggregate_up_to_minor: i64,
    /// Read-only here (identity's `PATCH /v1/tenant` sets it): the last day of the charity's accounting period; a
    /// gift can be claimed only within 4 years of the end of the period it was received in.
    pub accounting_period_end: PeriodEndView,
}

/// A month and day; 29 February means the last day of February.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PeriodEndView {
    #[schema(minimum = 1, maximum = 12)]
    pub month: u8,
    #[schema(minimum = 1, maximum = 31)]
    pub day: u8,
}

impl From<GiftAidSettings> for SettingsView {
    fn from(s: GiftAidSettings) -> Self {
        Self {
            agent_sources: s.agent_sources,
            aggregate_up_to_minor: s.aggregate_up_to_minor,
            accounting_period_end: PeriodEndView {
                month: s.accounting_period_end.month,
                day: s.accounting_period_end.day,
            },
        }
    }
}

/// Replaces the tenant's Gift Aid settings.
#[utoipa::path(tag = "gift aid", security(("bearer" = ["fundraising:write"])),
    request_body = SettingsBody,
    responses((status = 200, body = SettingsView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 415, description = "the body is not JSON", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[put("/v1/gift-aid/settings")]
#[tracing::instrument(skip_all)]
pub async fn put_settings(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: SettingsBody = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let raw = errors.required("agent_sources", input.agent_sources).unwrap_or_default();
    if raw.len() > 50 {
        errors.add("agent_sources", "must have at most 50 entries");
    }
    let mut agent_sources = Vec::new();
    for (i, source) in raw.iter().enumerate() {
        match optional_text(Some(source), 50) {
            Ok(Some(s)) => agent_sources.push(s.to_ascii_lowercase()),
            Ok(None) => errors.add(format!("agent_sources[{i}]"), "must not be empty"),
            Err(e) => errors.add(format!("agent_sources[{i}]"), e.to_string()),
        }
    }
    let aggregate_up_to_minor = match input.aggregate_up_to_minor {
        None => GiftAidSettings::default().aggregate_up_to_minor,
        Some(n) if (0..=2000).contains(&n) => n,
        Some(_) => {
            errors.add("aggregate_up_to_minor", "must be 0 to 2000 (HMRC aggregates donations of £20 or less)");
            0
        }
    };
    errors.finish()?;
    agent_sources.sort();
    agent_sources.dedup();
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let settings = GiftAidSettings { agent_sources, aggregate_up_to_minor, ..db::settings(&tx).await? };
    db::put_settings(&tx, &settings).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(settings)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn every_reason_code_is_the_domains_code() {
        let day = NaiveDate::MIN;
        let all = [
            Ineligible::NoDeclaration,
            Ineligible::OralDeclarationNotConfirmed,
            Ineligible::InCancellationWindow { closes: day },
            Ineligible::NoUkAddress,
            Ineligible::NoHouseNameOrNumber,
            Ineligible::NoUkPostcode,
            Ineligible::NoFirstName,
            Ineligible::NoLastName,
            Ineligible::OutOfTime { period_end: day, deadline: day },
            Ineligible::AgentClaims { source: "x".into() },
            Ineligible::ClaimedByPlatform,
            Ineligible::NotGbp { currency: "EUR".into() },
            Ineligible::NotSucceeded { status: "pending".into() },
            Ineligible::RefundEntry,
            Ineligible::FullyRefunded,
            Ineligible::AlreadyClaimed { claim_id: Uuid::nil() },
        ];
        for reason in &all {
            assert_eq!(serde_json::to_value(ReasonCode::from(reason)).unwrap(), reason.code());
        }
    }
}
