//! `/v1/settings`: the tenant's SMS settings; `/v1/spend`, what it has spent against its budgets; and `/v1/pause`
//! and `/v1/resume`, its kill switch.
//!
//! The kill switch stops sending at once: while it is on, nothing new is queued and the sender makes no call to
//! the provider; turning it off lets queued messages go again.

use super::actor;
use crate::db::campaigns;
use crate::db::settings::{self, SettingsFields, StoredSettings};
use crate::domain::campaign::spend_windows;
use crate::domain::schedule::parse_time;
use crate::domain::schedule::zone;
use crate::domain::template::parse_opt_out;
use crate::domain::{Country, optional_text};
use crate::metrics::BudgetUse;
use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use almoner_db::Pool;
use almoner_http::body::merge_patch;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_settings).service(update_settings).service(get_spend).service(pause).service(resume);
}

/// What may change of the settings (JSON merge patch). A `null` limit in segments removes it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// `GB` or `AU`: whose local number forms (`07...`, `04...`) contacts and imports are read in.
    #[schema(value_type = String, required = false, pattern = r"^\s*(?i:gb|uk|au)\s*$")]
    pub default_country: Option<String>,
    /// The line added to the end of every message, on a line of its own: 1 to 100 characters, naming `STOP`.
    #[schema(value_type = String, required = false, min_length = 1, max_length = 100,
        pattern = r"^([^\u0000-\u001f\u007f-\u009f]*[^A-Za-z0-9\u0000-\u001f\u007f-\u009f])?STOP([^A-Za-z0-9\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*)?$")]
    pub opt_out_text: Option<String>,
    /// The answer to a reply of HELP or INFO: 1 to 300 characters.
    #[schema(value_type = String, required = false, min_length = 1, max_length = 300,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$")]
    pub help_text: Option<String>,
    /// When quiet hours start, local time (`21:00`): nothing is sent from then until `quiet_end`.
    #[schema(value_type = String, required = false, pattern = r"^\s*([01][0-9]|2[0-3]):[0-5][0-9]\s*$")]
    pub quiet_start: Option<String>,
    /// When quiet hours end, local time (`09:00`). The same as `quiet_start`: no quiet hours.
    #[schema(value_type = String, required = false, pattern = r"^\s*([01][0-9]|2[0-3]):[0-5][0-9]\s*$")]
    pub quiet_end: Option<String>,
    /// The most spent in a day (the tenant's time zone), in millionths of the budget's currency.
    #[schema(value_type = i64, required = false, minimum = 0)]
    pub daily_budget_micros: Option<i64>,
    /// The most spent in a calendar month, in millionths.
    #[schema(value_type = i64, required = false, minimum = 0)]
    pub monthly_budget_micros: Option<i64>,
    /// The most segments sent in a day; `null` for no limit beyond the budget.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub daily_segment_limit: Option<i64>,
    /// The most segments sent in a calendar month; `null` for no limit beyond the budget.
    #[schema(minimum = 0, maximum = 2147483647)]
    pub monthly_segment_limit: Option<i64>,
    /// What one segment costs, in millionths: your provider's price for your numbers (Twilio's UK price, for
    /// example). Spend and budgets are counted with it.
    #[schema(value_type = i64, required = false, minimum = 0, maximum = 10000000)]
    pub price_per_segment_micros: Option<i64>,
    /// The tenant's own address for short links, pointed at the gateway (`https://go.charity.example`): its
    /// messages carry `<links_base_url>/l/<code>`. `null` (or blank): the installation's (`sms.links_base_url`).
    #[schema(max_length = 200, pattern = r"^\s*(https?://[^/?#\s]+/?\s*)?$")]
    pub links_base_url: Option<String>,
}

/// A tenant's short-link base: `http(s)://host[:port]`, at most 200 characters, without a path (links are
/// `<base>/l/<code>`); a trailing `/` is dropped.
fn parse_links_base(raw: &str) -> Result<String, &'static str> {
    let base = raw.trim().trim_end_matches('/');
    let rest = base.strip_prefix("https://").or_else(|| base.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && base.len() <= 200
                && !host.contains(['/', '?', '#'])
                && !host.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(base.to_owned())
        }
        _ => Err("must be an http(s) address without a path, such as https://go.charity.example"),
    }
}

/// The tenant's SMS settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SettingsView {
    /// `GB` or `AU`.
    #[schema(value_type = String, pattern = "^(GB|AU)$")]
    pub default_country: Country,
    pub opt_out_text: String,
    pub help_text: String,
    /// `HH:MM`, local time.
    pub quiet_start: String,
    /// `HH:MM`, local time.
    pub quiet_end: String,
    /// The tenant's IANA time zone, identity's (`PATCH /api/identity/v1/tenant`): quiet hours and days are in it.
    pub time_zone: String,
    /// The currency of the budgets and prices (`USD`, as Twilio bills).
    pub budget_currency: String,
    pub daily_budget_micros: i64,
    pub monthly_budget_micros: i64,
    pub daily_segment_limit: Option<i32>,
    pub monthly_segment_limit: Option<i32>,
    pub price_per_segment_micros: i64,
    /// The tenant's own address for short links; `null`: the installation's.
    pub links_base_url: Option<String>,
    /// The kill switch: while `true`, nothing is sent or queued.
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    /// Who turned the kill switch on.
    pub paused_by: Option<String>,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredSettings> for SettingsView {
    fn from(s: StoredSettings) -> Self {
        Self {
            default_country: s.default_country,
            opt_out_text: s.opt_out_text,
            help_text: s.help_text,
            quiet_start: s.quiet_start.format("%H:%M").to_string(),
            quiet_end: s.quiet_end.format("%H:%M").to_string(),
            time_zone: s.time_zone,
            budget_currency: s.budget_currency,
            daily_budget_micros: s.daily_budget_micros,
            monthly_budget_micros: s.monthly_budget_micros,
            daily_segment_limit: s.daily_segment_limit,
            monthly_segment_limit: s.monthly_segment_limit,
            price_per_segment_micros: s.price_per_segment_micros,
            links_base_url: s.links_base_url,
            paused: s.paused,
            paused_at: s.paused_at,
            paused_by: s.paused_by,
            revision: s.revision,
            updated_at: s.updated_at,
        }
    }
}

/// The tenant's SMS settings (the defaults until it changes one).
#[utoipa::path(tag = "settings", security(("bearer" = ["messaging:read"])),
    responses((status = 200, body = SettingsView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem)))]
#[get("/v1/settings")]
#[tracing::instrument(skip_all)]
pub async fn get_settings(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = settings::get(&tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(stored)))
}

/// Spend in one budget window (a day or a calendar month in the tenant's zone) against its limits.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WindowSpend {
    /// When the window began (midnight, or the 1st at midnight, in the tenant's zone).
    pub starts_at: DateTime<Utc>,
    /// What messages handed to the provider in it cost, in millionths of `currency`.
    pub spent_micros: i64,
    pub segments: i64,
    pub budget_micros: i64,
    /// `null`: no limit beyond the budget.
    pub segment_limit: Option<i32>,
    /// What is left of the budget (never below 0), before what is queued.
    pub remaining_micros: i64,
}

/// The tenant's spend against its budgets, now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SpendView {
    pub currency: String,
    pub time_zone: String,
    pub day: WindowSpend,
    pub month: WindowSpend,
    /// Queued or being sent, not yet spent: a new campaign must fit its budget with these.
    pub queued_micros: i64,
    pub queued_segments: i64,
    pub counted_at: DateTime<Utc>,
}

/// What the tenant has spent today and this month against its budgets, and what is queued.
#[utoipa::path(tag = "settings", security(("bearer" = ["messaging:read"])),
    responses((status = 200, body = SpendView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem)))]
#[get("/v1/spend")]
#[tracing::instrument(skip_all)]
pub async fn get_spend(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = settings::get(&tx).await?;
    let now = Utc::now();
    let zone = zone(&stored.time_zone).unwrap_or(chrono_tz::Europe::London);
    let (day, month) = spend_windows(now, zone);
    let spent = campaigns::spend(&tx, day, month).await?;
    tx.commit().await?;
    crate::metrics::observe_budget(
        principal.tenant_id.as_uuid(),
        now,
        zone,
        BudgetUse {
            day_spent_micros: spent.day_micros,
            daily_budget_micros: stored.daily_budget_micros,
            month_spent_micros: spent.month_micros,
            monthly_budget_micros: stored.monthly_budget_micros,
        },
    );
    let window = |starts_at, spent_micros: i64, segments, budget_micros: i64, segment_limit| WindowSpend {
        starts_at,
        spent_micros,
        segments,
        budget_micros,
        segment_limit,
        remaining_micros: (budget_micros - spent_micros).max(0),
    };
    Ok(HttpResponse::Ok().json(SpendView {
        currency: stored.budget_currency.clone(),
        time_zone: stored.time_zone.clone(),
        day: window(day, spent.day_micros, spent.day_segments, stored.daily_budget_micros, stored.daily_segment_limit),
        month: window(
            month,
            spent.month_micros,
            spent.month_segments,
            stored.monthly_budget_micros,
            stored.monthly_segment_limit,
        ),
        queued_micros: spent.outstanding_micros,
        queued_segments: spent.outstanding_segments,
        counted_at: now,
    }))
}

fn non_negative(errors: &mut FieldErrors, field: &str, value: Option<i64>, max: i64) -> Option<i64> {
    match value {
        Some(v) if (0..=max).contains(&v) => Some(v),
        Some(_) => {
            errors.add(field, format!("must be 0 to {max}"));
            None
        }
        None => {
            errors.add(field, "must not be removed");
            None
        }
    }
}

fn segment_limit(errors: &mut FieldErrors, field: &str, value: Option<i64>) -> Option<Option<i32>> {
    match value {
        None => Some(None),
        Some(v) => match i32::try_from(v) {
            Ok(v) if v >= 0 => Some(Some(v)),
            _ => {
                errors.add(field, "must be 0 to 2147483647, or null for none");
                None
            }
        },
    }
}

/// Changes the tenant's SMS settings (JSON merge patch).
#[utoipa::path(tag = "settings", security(("bearer" = ["messaging:write"])),
    request_body(content = SettingsPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The settings after the change", body = SettingsView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/settings")]
#[tracing::instrument(skip_all)]
pub async fn update_settings(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = settings::lock(&tx).await?;
    let now = SettingsPatch {
        default_country: Some(current.default_country.as_str().to_owned()),
        opt_out_text: Some(current.opt_out_text.clone()),
        help_text: Some(current.help_text.clone()),
        quiet_start: Some(current.quiet_start.format("%H:%M").to_string()),
        quiet_end: Some(current.quiet_end.format("%H:%M").to_string()),
        daily_budget_micros: Some(current.daily_budget_micros),
        monthly_budget_micros: Some(current.monthly_budget_micros),
        daily_segment_limit: current.daily_segment_limit.map(i64::from),
        monthly_segment_limit: current.monthly_segment_limit.map(i64::from),
        price_per_segment_micros: Some(current.price_per_segment_micros),
        links_base_url: current.links_base_url.clone(),
    };
    let patched: SettingsPatch = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let country = errors
        .required("default_country", patched.default_country.as_deref())
        .and_then(|c| errors.parse("default_country", Country::parse(c)));
    let opt_out = errors
        .required("opt_out_text", patched.opt_out_text.as_deref())
        .and_then(|t| errors.parse("opt_out_text", parse_opt_out(t)));
    let help = errors.required("help_text", patched.help_text.as_deref()).and_then(|t| {
        match errors.parse("help_text", optional_text(Some(t), 300)) {
            Some(Some(t)) => Some(t),
            Some(None) => {
                errors.add("help_text", "must not be empty");
                None
            }
            None => None,
        }
    });
    let quiet_start = errors
        .required("quiet_start", patched.quiet_start.as_deref())
        .and_then(|t| errors.parse("quiet_start", parse_time(t)));
    let quiet_end = errors
        .required("quiet_end", patched.quiet_end.as_deref())
        .and_then(|t| errors.parse("quiet_end", parse_time(t)));
    let daily = non_negative(&mut errors, "daily_budget_micros", patched.daily_budget_micros, i64::MAX);
    let monthly = non_negative(&mut errors, "monthly_budget_micros", patched.monthly_budget_micros, i64::MAX);
    let price = non_negative(&mut errors, "price_per_segment_micros", patched.price_per_segment_micros, 10_000_000);
    let daily_segments = segment_limit(&mut errors, "daily_segment_limit", patched.daily_segment_limit);
    let monthly_segments = segment_limit(&mut errors, "monthly_segment_limit", patched.monthly_segment_limit);
    let links_base_url = match patched.links_base_url.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
        None => Some(None),
        Some(b) => errors.parse("links_base_url", parse_links_base(b)).map(Some),
    };
    errors.finish()?;
    let links_base_url =
        links_base_url.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated links_base_url missing")))?;
    let fields =
        match (country, opt_out, help, quiet_start, quiet_end, daily, monthly, price, daily_segments, monthly_segments)
        {
            (
                Some(default_country),
                Some(opt_out_text),
                Some(help_text),
                Some(quiet_start),
                Some(quiet_end),
                Some(daily_budget_micros),
                Some(monthly_budget_micros),
                Some(price_per_segment_micros),
                Some(daily_segment_limit),
                Some(monthly_segment_limit),
            ) => SettingsFields {
                default_country,
                opt_out_text,
                help_text,
                quiet_start,
                quiet_end,
                daily_budget_micros,
                monthly_budget_micros,
                daily_segment_limit,
                monthly_segment_limit,
                price_per_segment_micros,
                links_base_url,
            },
            _ => return Err(ApiError::unexpected(anyhow::anyhow!("validated settings missing"))),
        };
    if fields == current.fields() {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(SettingsView::from(current)));
    }
    let stored = settings::put(&tx, &fields).await?;
    tracing::info!(by = %actor(&principal), "SMS settings changed");
    let budgets_changed = (stored.daily_budget_micros, stored.monthly_budget_micros)
        != (current.daily_budget_micros, current.monthly_budget_micros);
    if budgets_changed {
        // The budget gauge follows a new budget at once, not only at the tenant's next send.
        let now = Utc::now();
        let zone = zone(&stored.time_zone).unwrap_or(chrono_tz::Europe::London);
        let (day, month) = spend_windows(now, zone);
        let spent = campaigns::spend(&tx, day, month).await?;
        crate::metrics::observe_budget(
            principal.tenant_id.as_uuid(),
            now,
            zone,
            BudgetUse {
                day_spent_micros: spent.day_micros,
                daily_budget_micros: stored.daily_budget_micros,
                month_spent_micros: spent.month_micros,
                monthly_budget_micros: stored.monthly_budget_micros,
            },
        );
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(stored)))
}

/// Turns the kill switch on: from now, nothing is queued and no message goes to the provider, until `resume`.
/// Turning it on again changes nothing.
#[utoipa::path(tag = "settings", security(("bearer" = ["messaging:write"])),
    responses((status = 200, description = "The settings, paused", body = SettingsView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem)))]
#[post("/v1/pause")]
#[tracing::instrument(skip_all)]
pub async fn pause(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    switch(principal, pool, true).await
}

/// Turns the kill switch off: queued messages go again.
#[utoipa::path(tag = "settings", security(("bearer" = ["messaging:write"])),
    responses((status = 200, description = "The settings, sending", body = SettingsView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem)))]
#[post("/v1/resume")]
#[tracing::instrument(skip_all)]
pub async fn resume(principal: Principal, pool: web::Data<Pool>) -> Result<HttpResponse, ApiError> {
    switch(principal, pool, false).await
}

async fn switch(principal: Principal, pool: web::Data<Pool>, paused: bool) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = settings::lock(&tx).await?;
    if current.paused == paused {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(SettingsView::from(current)));
    }
    let stored = settings::set_paused(&tx, paused, &actor(&principal)).await?;
    tracing::warn!(by = %actor(&principal), paused, "SMS kill switch turned {}", if paused { "on" } else { "off" });
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(SettingsView::from(stored)))
}
