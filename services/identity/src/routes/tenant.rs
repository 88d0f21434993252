//! `/v1/tenant`: the caller's own tenant and its settings.

use crate::db::tenants::{self, PeriodEnd, Tenant, TenantChange};
use crate::domain::{TenantName, TimeZone};
use actix_web::{HttpRequest, HttpResponse, get, patch, web};
use almoner_db::{Pool, outbox};
use almoner_events::Envelope;
use almoner_events::identity::AccountingPeriodEnd;
use almoner_http::body::json_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_tenant).service(update_tenant);
}

#[utoipa::path(tag = "tenants", security(("bearer" = ["identity:read"])),
    responses(
        (status = 200, description = "The tenant the token belongs to", body = Tenant),
        (status = 401, description = "No valid token", body = almoner_http::Problem),
        (status = 403, description = "Missing scope identity:read", body = almoner_http::Problem),
    ))]
#[get("/v1/tenant")]
#[tracing::instrument(skip_all)]
pub async fn get_tenant(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("identity:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let tenant = tenants::current(&tx).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(tenant))
}

/// Settings to change; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// 1 to 200 characters once trimmed, no control characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    pub name: Option<String>,
    /// 1 (January) to 12 (December).
    #[schema(minimum = 1, maximum = 12)]
    pub fiscal_year_start_month: Option<i64>,
    /// The last day of the accounting period, which Gift Aid's 4-year limit runs from; `null` goes back to the
    /// default, the day before the fiscal year starts.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<PeriodEnd>)]
    pub accounting_period_end: Option<Option<PeriodEndBody>>,
    /// An IANA time zone name such as `Europe/London` or `Australia/Sydney`, any case; not an offset or
    /// abbreviation (they ignore daylight saving).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)+$")]
    pub time_zone: Option<String>,
}

/// A month and day, as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodEndBody {
    pub month: Option<i64>,
    pub day: Option<i64>,
}

/// Tells a member sent as `null` (`Some(None)`) from one left out (`None`, through `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn period_end(body: &PeriodEndBody, errors: &mut FieldErrors) -> Option<PeriodEnd> {
    let month = errors.required("accounting_period_end.month", body.month);
    let day = errors.required("accounting_period_end.day", body.day);
    let month = month.and_then(|m| {
        let valid = u8::try_from(m).ok().filter(|m| (1..=12).contains(m));
        if valid.is_none() {
            errors.add("accounting_period_end.month", "must be 1 to 12");
        }
        valid
    });
    let (month, day) = (month?, day?);
    match u8::try_from(day).ok().and_then(|d| AccountingPeriodEnd::new(month, d)) {
        Some(end) => Some(end.into()),
        None => {
            errors.add("accounting_period_end.day", "must be a day of the month (29 February means its last day)");
            None
        }
    }
}

/// Changes the tenant's settings and publishes `identity.tenant.updated.v1` with the whole new state.
#[utoipa::path(tag = "tenants", security(("bearer" = ["identity:admin"])),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "The tenant after the change", body = Tenant),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[patch("/v1/tenant")]
#[tracing::instrument(skip_all)]
pub async fn update_tenant(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("identity:admin")?;
    let input: UpdateTenant = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let name = input.name.as_deref().and_then(|n| errors.parse("name", TenantName::parse(n)));
    let month = match input.fiscal_year_start_month {
        Some(m) if (1..=12).contains(&m) => i16::try_from(m).ok(),
        Some(_) => {
            errors.add("fiscal_year_start_month", "must be 1 to 12");
            None
        }
        None => None,
    };
    let accounting_period_end = match &input.accounting_period_end {
        None => None,
        Some(None) => Some(None),
        Some(Some(body)) => period_end(body, &mut errors).map(Some),
    };
    let time_zone = input.time_zone.as_deref().and_then(|z| errors.parse("time_zone", TimeZone::parse(z)));
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let change = TenantChange {
        time_zone: time_zone.as_ref().map(TimeZone::as_str),
        name: name.as_ref().map(TenantName::as_str),
        fiscal_year_start_month: month,
        accounting_period_end,
    };
    let tenant = tenants::update(&tx, &change).await?.ok_or_else(|| ApiError::not_found("tenant"))?;
    outbox::enqueue(&tx, &Envelope::new(tenant.id, "identity", tenant.updated_event())).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(tenant))
}
