//! `/v1/campaigns`: a message to an audience. A draft names its template, audience and sender; queueing it makes
//! one send job per contact, in one transaction, after the gates: the kill switch (`409 tenant_paused`), the
//! do-not-contact list (those contacts get no job), the budgets (`409 budget_exceeded` when the campaign's
//! estimated cost or segments, with what is spent and queued already, would pass a daily or monthly limit) and
//! quiet hours (a job due inside them is due at their end instead). Then pause, resume or cancel it.

use super::templates::contact_value;
use crate::db::segments as saved_segments;
use crate::db::{campaigns, settings, templates};
use crate::domain::campaign::{Audience, CampaignStatus, spend_windows};
use crate::domain::schedule::{QuietHours, zone};
use crate::domain::segment_filter::SegmentFilter;
use crate::domain::template::{Template, with_opt_out};
use crate::domain::{SmsNumber, optional_text};
use crate::domain::{links, segments};
use crate::worker::sender::SenderWake;

/// Where short links point (`sms.links_base_url`); `None`: URLs are sent as written.
pub struct LinkBase(pub Option<String>);
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use almoner_db::Pool;
use almoner_http::body::{json_body, merge_patch};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_campaign)
        .service(list_campaigns)
        .service(get_campaign)
        .service(update_campaign)
        .service(delete_campaign)
        .service(queue_campaign)
        .service(pause_campaign)
        .service(resume_campaign)
        .service(cancel_campaign)
        .service(campaign_report);
}

/// A campaign as a client writes it (a draft). On `PATCH` every field is optional.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// Required: 1 to 200 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    /// Required: the template whose body is sent (as it is when the campaign is queued).
    #[schema(required = true, value_type = Uuid)]
    pub template_id: Option<String>,
    /// Contacts with any of these tags; none (or absent), and no `segment_id`, for every contact.
    #[schema(value_type = Option<Vec<String>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// The contacts a saved segment matches when the campaign is queued (`/v1/segments`); not with `tags`.
    #[schema(value_type = Option<Uuid>)]
    pub segment_id: Option<String>,
    /// Required: who the message comes from: an E.164 number of yours, a Twilio messaging service (`MG` and 32
    /// hex digits), or an alphanumeric sender ID (1 to 11 letters, digits and spaces, with a letter; UK and AU
    /// allow them, and AU requires it to identify the charity).
    #[schema(required = true, value_type = String, min_length = 1, max_length = 40, example = "+447700900000")]
    pub sender: Option<String>,
    /// The earliest time to send (RFC 3339); absent: as soon as it is queued.
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub send_at: Option<String>,
}

/// A campaign as clients see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignView {
    pub id: Uuid,
    pub revision: i64,
    pub name: String,
    pub template_id: Uuid,
    pub tags: Vec<String>,
    /// The segment the campaign goes to, when its audience is one.
    pub segment_id: Option<Uuid>,
    pub sender: String,
    /// `draft`, `scheduled`, `running`, `paused`, `completed` or `cancelled`.
    #[schema(pattern = "^(draft|scheduled|running|paused|completed|cancelled)$")]
    pub status: String,
    pub send_at: Option<DateTime<Utc>>,
    /// The template's body as queued.
    pub body: Option<String>,
    /// What queueing found: `jobs`, `do_not_contact` and `variables_missing` (contacts left out, and why),
    /// `too_long`, `segments` (SMS parts), `estimated_cost_micros`, `first_send_at`, and `audience_segment` (the
    /// segment's id, name, revision and filter as they were, when the audience is one).
    #[schema(value_type = Object)]
    pub queue_summary: Value,
    /// Jobs by status (`queued`, `sending`, `sent`, `delivered`, `undelivered`, `failed`, `blocked`,
    /// `cancelled`); with `GET /v1/campaigns/{id}` only.
    #[schema(value_type = Option<BTreeMap<String, i64>>)]
    pub jobs: Option<Value>,
    pub queued_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<campaigns::StoredCampaign> for CampaignView {
    fn from(c: campaigns::StoredCampaign) -> Self {
        let audience = serde_json::from_value::<Audience>(c.audience.clone()).unwrap_or_default();
        Self {
            id: c.id,
            revision: c.revision,
            name: c.name,
            template_id: c.template_id,
            tags: audience.tags,
            segment_id: audience.segment_id,
            sender: c.sender,
            status: c.status,
            send_at: c.send_at,
            body: c.body,
            queue_summary: c.queue_summary,
            jobs: None,
            queued_at: c.queued_at,
            completed_at: c.completed_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Reads a sender: an E.164 number, a messaging service SID or an alphanumeric sender ID.
fn parse_sender(input: &str) -> Result<String, almoner_types::ParseError> {
    let s = input.trim();
    if s.starts_with('+') {
        return SmsNumber::from_e164(s).map(String::from);
    }
    if s.len() == 34 && s.starts_with("MG") && s[2..].chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(s.to_owned());
    }
    let alphanumeric = (1..=11).contains(&s.chars().count())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && s.chars().any(|c| c.is_ascii_alphabetic());
    if alphanumeric {
        return Ok(s.to_owned());
    }
    Err(almoner_types::ParseError::new(
        "must be an E.164 number (+447700900000), a messaging service (MG and 32 hex digits) or a sender ID of 1 to \
         11 letters, digits and spaces",
    ))
}

fn parse_campaign(input: &CampaignInput, errors: &mut FieldErrors) -> Option<campaigns::CampaignFields> {
    let name = errors.required("name", input.name.as_deref()).and_then(|n| {
        match errors.parse("name", optional_text(Some(n), 200)) {
            Some(Some(n)) => Some(n),
            Some(None) => {
                errors.add("name", "must not be empty");
                None
            }
            None => None,
        }
    });
    let template_id = errors
        .required("template_id", input.template_id.as_deref())
        .and_then(|t| errors.parse("template_id", Uuid::parse_str(t.trim())));
    let tags = input.tags.as_deref().unwrap_or_default();
    let audience = match input.segment_id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => errors.parse("tags", Audience::parse(tags)),
        Some(_) if !tags.is_empty() => {
            errors.add("segment_id", "a campaign goes to a segment or to tags, not both");
            None
        }
        Some(id) => errors.parse("segment_id", Uuid::parse_str(id)).map(Audience::segment),
    };
    let sender =
        errors.required("sender", input.sender.as_deref()).and_then(|s| errors.parse("sender", parse_sender(s)));
    let send_at = match input.send_at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(None),
        Some(t) => errors
            .parse("send_at", DateTime::parse_from_rfc3339(t).map_err(|_| "must be an RFC 3339 time"))
            .map(|t| Some(t.with_timezone(&Utc))),
    };
    Some(campaigns::CampaignFields {
        name: name?,
        template_id: template_id?,
        audience: serde_json::to_value(audience?).unwrap_or_else(|_| json!({})),
        sender: sender?,
        send_at: send_at?,
    })
}

/// A segment audience must name a segment of the tenant (unless it is the one the draft already had).
async fn check_segment(
    tx: &almoner_db::Transaction,
    fields: &campaigns::CampaignFields,
    current: Option<&campaigns::StoredCampaign>,
) -> Result<(), ApiError> {
    let Some(segment_id) = serde_json::from_value::<Audience>(fields.audience.clone()).ok().and_then(|a| a.segment_id)
    else {
        return Ok(());
    };
    let unchanged = current.is_some_and(|c| c.audience == fields.audience);
    if !unchanged && saved_segments::get(tx, segment_id).await?.is_none() {
        return Err(ApiError::validation(vec![FieldError {
            field: "segment_id".into(),
            message: "no such segment".into(),
        }]));
    }
    Ok(())
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::Conflict, message)
}

/// Creates a draft campaign.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:write"])),
    request_body = CampaignInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The draft", body = CampaignView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`template_id` of no template)",
            body = almoner_http::Problem),
    ))]
#[post("/v1/campaigns")]
#[tracing::instrument(skip_all, fields(campaign_id = tracing::field::Empty))]
pub async fn create_campaign(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let input: CampaignInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let fields = parse_campaign(&input, &mut errors);
    errors.finish()?;
    let fields = fields.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated campaign missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if templates::get(&tx, fields.template_id).await?.is_none() {
        return Err(ApiError::validation(vec![FieldError {
            field: "template_id".into(),
            message: "no such template".into(),
        }]));
    }
    check_segment(&tx, &fields, None).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let id = Uuid::now_v7();
    tracing::Span::current().record("campaign_id", tracing::field::display(id));
    let view = CampaignView::from(campaigns::insert(&tx, id, &fields).await?);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/campaigns/{id}"))).json(view))
}

/// Reads one campaign, with its jobs by status.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CampaignView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/campaigns/{id}")]
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn get_campaign(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "campaign")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = campaigns::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    let counts = campaigns::job_counts(&tx, id).await?;
    tx.commit().await?;
    let mut view = CampaignView::from(found);
    let mut jobs: BTreeMap<String, i64> =
        ["queued", "sending", "sent", "delivered", "undelivered", "failed", "blocked", "cancelled"]
            .into_iter()
            .map(|s| (s.to_owned(), 0))
            .collect();
    for (status, n, _, _) in counts {
        jobs.insert(status, n);
    }
    view.jobs = Some(json!(jobs));
    Ok(HttpResponse::Ok().json(view))
}

/// Lists campaigns, newest first.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<CampaignView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/campaigns")]
#[tracing::instrument(skip_all)]
pub async fn list_campaigns(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = campaigns::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |c| c.id).map(CampaignView::from)))
}

/// Changes a draft (JSON merge patch). A queued campaign no longer changes: `409`.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = CampaignInput, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The draft after the change", body = CampaignView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the campaign is queued already", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/campaigns/{id}")]
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn update_campaign(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "campaign")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = campaigns::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    if current.status != CampaignStatus::Draft.as_str() {
        return Err(conflict(format!("the campaign is {}; only a draft changes", current.status)));
    }
    let view = CampaignView::from(current.clone());
    let now = CampaignInput {
        name: Some(view.name.clone()),
        template_id: Some(view.template_id.to_string()),
        tags: Some(view.tags.clone()),
        segment_id: view.segment_id.map(|s| s.to_string()),
        sender: Some(view.sender.clone()),
        send_at: view.send_at.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    };
    let patched: CampaignInput = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let fields = parse_campaign(&patched, &mut errors);
    errors.finish()?;
    let fields = fields.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated campaign missing")))?;
    if fields.template_id != current.template_id && templates::get(&tx, fields.template_id).await?.is_none() {
        return Err(ApiError::validation(vec![FieldError {
            field: "template_id".into(),
            message: "no such template".into(),
        }]));
    }
    check_segment(&tx, &fields, Some(&current)).await?;
    let updated = campaigns::update(&tx, id, &fields).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(CampaignView::from(updated)))
}

/// Deletes a draft. A queued campaign is cancelled instead (`POST .../cancel`): `409`.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the campaign is queued; cancel it", body = almoner_http::Problem)))]
#[delete("/v1/campaigns/{id}")]
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn delete_campaign(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "campaign")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = campaigns::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    if !campaigns::delete_draft(&tx, id).await? {
        return Err(conflict(format!("the campaign is {}; cancel it rather than delete it", current.status)));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Queues a draft: one send job per contact of its audience, after the gates (see the module's description).
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "Queued: `scheduled` or `running`, with `queue_summary`", body = CampaignView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "tenant_paused (the kill switch is on); budget_exceeded (the detail names the \
            limit, what is spent and queued, and what this campaign would add); conflict (not a draft, or its \
            template is gone)", body = almoner_http::Problem)))]
#[post("/v1/campaigns/{id}/queue")]
#[tracing::instrument(skip_all, fields(campaign_id = %id, jobs = tracing::field::Empty))]
pub async fn queue_campaign(
    principal: Principal,
    pool: web::Data<Pool>,
    wake: web::Data<SenderWake>,
    link_base: web::Data<LinkBase>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "campaign")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    // The tenant's settings row, locked: queueings of one tenant take turns, so two cannot both fit a budget
    // that holds only one.
    let settings = settings::lock(&tx).await?;
    if settings.paused {
        return Err(ApiError::new(ErrorCode::TenantPaused, "the kill switch is on: resume sending to queue campaigns"));
    }
    let campaign = campaigns::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    if campaign.status != CampaignStatus::Draft.as_str() {
        return Err(conflict(format!("the campaign is {}; only a draft is queued, once", campaign.status)));
    }
    let stored = templates::get(&tx, campaign.template_id)
        .await?
        .ok_or_else(|| conflict("the campaign's template was deleted: choose another"))?;
    let template =
        Template::parse(&stored.body).map_err(|e| ApiError::unexpected(anyhow::anyhow!("stored template: {e}")))?;
    let audience: Audience = serde_json::from_value(campaign.audience.clone()).unwrap_or_default();
    let (contacts, segment) = match audience.segment_id {
        None => (crate::db::contacts::audience(&tx, &audience.tags).await?, None),
        Some(segment_id) => {
            let segment = saved_segments::get(&tx, segment_id)
                .await?
                .ok_or_else(|| conflict("the campaign's segment was deleted: choose another audience"))?;
            let filter = SegmentFilter::parse(&segment.filter)
                .map_err(|e| ApiError::unexpected(anyhow::anyhow!("segment {segment_id}'s stored filter: {e}")))?;
            let found = crate::db::contacts::matching(&tx, &filter).await?;
            (
                found,
                Some(
                    json!({"id": segment.id, "name": segment.name, "revision": segment.revision, "filter": segment.filter}),
                ),
            )
        }
    };

    let zone = zone(&settings.time_zone).unwrap_or(chrono_tz::Europe::London);
    let now = Utc::now();
    let start = campaign.send_at.filter(|t| *t > now).unwrap_or(now);
    let send_at = QuietHours { start: settings.quiet_start, end: settings.quiet_end }.next_allowed(start, zone);
    let (mut do_not_contact, mut variables_missing, mut too_long) = (0i64, 0i64, 0i64);
    let mut jobs = Vec::with_capacity(contacts.len());
    let mut new_links = Vec::new();
    let (mut total_segments, mut total_cost) = (0i64, 0i64);
    for contact in &contacts {
        if contact.do_not_contact {
            do_not_contact += 1;
            continue;
        }
        let Ok(text) = template.render(|name| contact_value(contact, name)) else {
            variables_missing += 1;
            continue;
        };
        let job_id = Uuid::now_v7();
        // Each URL becomes a short link of this job, so that a click names its contact.
        let text = match settings.links_base_url.as_ref().or(link_base.0.as_ref()) {
            Some(base) => links::shorten(&text, |url| {
                let code = links::new_code();
                let short = format!("{}/l/{code}", base.trim_end_matches('/'));
                new_links.push(campaigns::NewLink { code, job_id, contact_id: contact.id, url: url.to_owned() });
                short
            }),
            None => text,
        };
        let body = with_opt_out(&text, &settings.opt_out_text);
        if segments::over_limit(&body) {
            too_long += 1;
            continue;
        }
        let count = segments::count(&body);
        let segments = i64::try_from(count.segments).unwrap_or(i64::MAX);
        let cost = segments.saturating_mul(settings.price_per_segment_micros);
        total_segments += segments;
        total_cost += cost;
        jobs.push(campaigns::NewJob {
            id: job_id,
            contact_id: contact.id,
            phone: contact.phone.clone(),
            body,
            segments: i32::try_from(segments).unwrap_or(i32::MAX),
            cost_micros: cost,
            send_at,
        });
    }

    // Budgets: what is spent in the day and month, what is queued and not yet sent, and this campaign.
    let (day, month) = spend_windows(now, zone);
    let spend = campaigns::spend(&tx, day, month).await?;
    crate::metrics::observe_budget(
        tenant_id,
        now,
        zone,
        crate::metrics::BudgetUse {
            day_spent_micros: spend.day_micros,
            daily_budget_micros: settings.daily_budget_micros,
            month_spent_micros: spend.month_micros,
            monthly_budget_micros: settings.monthly_budget_micros,
        },
    );
    let mut over = Vec::new();
    let daily = spend.day_micros + spend.outstanding_micros + total_cost;
    if daily > settings.daily_budget_micros {
        over.push(format!(
            "the daily budget of {} (spent {}, queued {}, this campaign {})",
            money(settings.daily_budget_micros, &settings.budget_currency),
            money(spend.day_micros, &settings.budget_currency),
            money(spend.outstanding_micros, &settings.budget_currency),
            money(total_cost, &settings.budget_currency)
        ));
    }
    if spend.month_micros + spend.outstanding_micros + total_cost > settings.monthly_budget_micros {
        over.push(format!(
            "the monthly budget of {} (spent {}, queued {}, this campaign {})",
            money(settings.monthly_budget_micros, &settings.budget_currency),
            money(spend.month_micros, &settings.budget_currency),
            money(spend.outstanding_micros, &settings.budget_currency),
            money(total_cost, &settings.budget_currency)
        ));
    }
    if let Some(limit) = settings.daily_segment_limit
        && spend.day_segments + spend.outstanding_segments + total_segments > i64::from(limit)
    {
        over.push(format!("the daily limit of {limit} segments (this campaign {total_segments})"));
    }
    if let Some(limit) = settings.monthly_segment_limit
        && spend.month_segments + spend.outstanding_segments + total_segments > i64::from(limit)
    {
        over.push(format!("the monthly limit of {limit} segments (this campaign {total_segments})"));
    }
    if !over.is_empty() {
        return Err(ApiError::new(ErrorCode::BudgetExceeded, format!("queueing it would pass {}", over.join("; "))));
    }

    let written = campaigns::insert_jobs(&tx, tenant_id, id, &jobs).await?;
    campaigns::insert_links(&tx, tenant_id, id, &new_links).await?;
    tracing::Span::current().record("jobs", written);
    let status = if send_at > now { CampaignStatus::Scheduled } else { CampaignStatus::Running };
    let summary = json!({
        "jobs": written,
        "do_not_contact": do_not_contact,
        "variables_missing": variables_missing,
        "too_long": too_long,
        "segments": total_segments,
        "estimated_cost_micros": total_cost,
        "first_send_at": send_at,
        // The segment as it was when its contacts were chosen, when the audience is one.
        "audience_segment": segment,
    });
    let queued = campaigns::mark_queued(&tx, id, status.as_str(), template.source(), &summary).await?;
    tx.commit().await?;
    tracing::info!(jobs = written, status = status.as_str(), "campaign queued");
    wake.wake();
    Ok(HttpResponse::Ok().json(CampaignView::from(queued)))
}

fn money(micros: i64, currency: &str) -> String {
    format!("{} {:.2}", currency, micros as f64 / 1_000_000.0)
}

/// Pauses a scheduled or running campaign: its jobs wait until it is resumed.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "Paused", body = CampaignView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the campaign is not scheduled or running", body = almoner_http::Problem)))]
#[post("/v1/campaigns/{id}/pause")]
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn pause_campaign(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    transition(principal, pool, id, &[CampaignStatus::Scheduled, CampaignStatus::Running], CampaignStatus::Paused).await
}

/// Resumes a paused campaign.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "Running again", body = CampaignView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the campaign is not paused", body = almoner_http::Problem)))]
#[post("/v1/campaigns/{id}/resume")]
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn resume_campaign(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    transition(principal, pool, id, &[CampaignStatus::Paused], CampaignStatus::Running).await
}

/// Cancels a queued campaign: its jobs not yet sent are cancelled and never go.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "Cancelled", body = CampaignView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: a draft (delete it), or completed or cancelled already",
            body = almoner_http::Problem)))]
#[post("/v1/campaigns/{id}/cancel")]
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn cancel_campaign(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    transition(
        principal,
        pool,
        id,
        &[CampaignStatus::Scheduled, CampaignStatus::Running, CampaignStatus::Paused],
        CampaignStatus::Cancelled,
    )
    .await
}

async fn transition(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    from: &[CampaignStatus],
    to: CampaignStatus,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "campaign")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = campaigns::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    if !from.iter().any(|s| s.as_str() == current.status) {
        return Err(conflict(format!("the campaign is {}; it cannot become {}", current.status, to.as_str())));
    }
    match to {
        CampaignStatus::Cancelled => {
            campaigns::cancel_jobs(&tx, id).await?;
        }
        CampaignStatus::Paused => {
            campaigns::hold_jobs(&tx, id, true).await?;
        }
        CampaignStatus::Running => {
            campaigns::hold_jobs(&tx, id, false).await?;
        }
        _ => {}
    }
    let updated = campaigns::set_status(&tx, id, to.as_str()).await?;
    tx.commit().await?;
    tracing::info!(status = to.as_str(), "campaign {}", to.as_str());
    Ok(HttpResponse::Ok().json(CampaignView::from(updated)))
}

/// A campaign's outcome.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CampaignReport {
    pub campaign_id: Uuid,
    #[schema(pattern = "^(draft|scheduled|running|paused|completed|cancelled)$")]
    pub status: String,
    /// Jobs made when it was queued.
    pub queued: i64,
    /// Handed to the provider (sent, delivered, undelivered, or failed after it took them).
    pub sent: i64,
    pub delivered: i64,
    pub undelivered: i64,
    pub failed: i64,
    /// Not sent: the number opted out between queueing and its turn.
    pub blocked: i64,
    pub cancelled: i64,
    /// Still waiting or being sent.
    pub pending: i64,
    /// Segments of the messages handed to the provider, and what they cost (millionths of `currency`).
    pub segments: i64,
    pub spend_micros: i64,
    pub currency: String,
    /// Recipients who replied STOP (or whom Twilio reported unsubscribed) since it was queued.
    pub opt_outs: i64,
    /// Clicks on its short links by people, by link-preview bots and prefetches (not counted as people), and the
    /// contacts who clicked.
    pub human_clicks: i64,
    pub bot_clicks: i64,
    pub contacts_who_clicked: i64,
}

/// A campaign's counts: queued, sent, delivered, failed, undelivered; segments and spend; opt-outs; human clicks.
#[utoipa::path(tag = "campaigns", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CampaignReport), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/campaigns/{id}/report")]
#[tracing::instrument(skip_all, fields(campaign_id = %id))]
pub async fn campaign_report(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "campaign")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let campaign = campaigns::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("campaign"))?;
    let counts = campaigns::job_counts(&tx, id).await?;
    let (human_clicks, bot_clicks, contacts_who_clicked, opt_outs) =
        campaigns::engagement(&tx, id, campaign.queued_at).await?;
    let currency = settings::get(&tx).await?.budget_currency;
    tx.commit().await?;
    let of = |status: &str| counts.iter().find(|c| c.0 == status).map_or(0, |c| c.1);
    let handed: Vec<&(String, i64, i64, i64)> =
        counts.iter().filter(|c| matches!(c.0.as_str(), "sent" | "delivered" | "undelivered")).collect();
    Ok(HttpResponse::Ok().json(CampaignReport {
        campaign_id: id,
        status: campaign.status,
        queued: counts.iter().map(|c| c.1).sum(),
        sent: handed.iter().map(|c| c.1).sum(),
        delivered: of("delivered"),
        undelivered: of("undelivered"),
        failed: of("failed"),
        blocked: of("blocked"),
        cancelled: of("cancelled"),
        pending: of("queued") + of("sending"),
        segments: handed.iter().map(|c| c.2).sum(),
        spend_micros: handed.iter().map(|c| c.3).sum(),
        currency,
        opt_outs,
        human_clicks,
        bot_clicks,
        contacts_who_clicked,
    }))
}
