//! `/v1/templates`: message templates with variables, and `/v1/templates/preview`, which renders a body or a saved
//! template (for a contact, or with sample values) with the tenant's opt-out line, and counts it as Twilio will:
//! encoding, characters, segments and cost.

use crate::db::contacts::{self, StoredContact};
use crate::db::{settings, templates};
use crate::domain::optional_text;
use crate::domain::segments;
use crate::domain::template::{Template, with_opt_out};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use almoner_db::Pool;
use almoner_http::body::{json_body, merge_patch};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    // The preview before `{id}`, so that its path is not read as a template's id.
    cfg.service(preview)
        .service(create_template)
        .service(list_templates)
        .service(get_template)
        .service(update_template)
        .service(delete_template);
}

/// A template as a client writes it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Required: 1 to 100 characters, unique per tenant whatever its case.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    /// Required: the message, at most 1,600 characters, with variables: `{{first_name}}`, `{{last_name}}`,
    /// `{{email}}`, `{{phone}}` or an attribute's key, each with an optional default after `|`
    /// (`{{first_name|friend}}`). The tenant's opt-out line is added when it is sent.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 1600, example = "Hi {{first_name|friend}}, thank you!",
        pattern = r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]
    pub body: Option<String>,
}

/// What may change of a template (JSON merge patch).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplatePatch {
    #[schema(value_type = String, required = false, min_length = 1, max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$")]
    pub name: Option<String>,
    #[schema(value_type = String, required = false, min_length = 1, max_length = 1600,
        pattern = r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]
    pub body: Option<String>,
}

/// A template as clients see it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TemplateView {
    pub id: Uuid,
    pub revision: i64,
    pub name: String,
    pub body: String,
    /// The variables the body uses, in name order.
    pub variables: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<templates::StoredTemplate> for TemplateView {
    fn from(t: templates::StoredTemplate) -> Self {
        let variables = Template::parse(&t.body).map(|p| p.variables().into_iter().collect()).unwrap_or_default();
        Self {
            id: t.id,
            revision: t.revision,
            name: t.name,
            body: t.body,
            variables,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

fn parse_template(name: Option<&str>, body: Option<&str>, errors: &mut FieldErrors) -> Option<(String, Template)> {
    let name = errors.required("name", name).and_then(|n| match errors.parse("name", optional_text(Some(n), 100)) {
        Some(Some(n)) => Some(n),
        Some(None) => {
            errors.add("name", "must not be empty");
            None
        }
        None => None,
    });
    let body = errors.required("body", body).and_then(|b| errors.parse("body", Template::parse(b)));
    Some((name?, body?))
}

fn name_conflict() -> ApiError {
    let message = "another template has this name";
    let mut error = ApiError::new(ErrorCode::Conflict, message);
    error.errors.push(FieldError { field: "name".into(), message: message.into() });
    error
}

/// Creates a template.
#[utoipa::path(tag = "templates", security(("bearer" = ["messaging:write"])),
    request_body = TemplateInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new template", body = TemplateView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict: the name is taken (naming `name`); or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`body`: an unclosed `{{`, a \
            variable that is no name)", body = almoner_http::Problem),
    ))]
#[post("/v1/templates")]
#[tracing::instrument(skip_all, fields(template_id = tracing::field::Empty))]
pub async fn create_template(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let input: TemplateInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let parsed = parse_template(input.name.as_deref(), input.body.as_deref(), &mut errors);
    errors.finish()?;
    let (name, template) = parsed.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated template missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    if templates::name_taken(&tx, &name, None).await? {
        return Err(name_conflict());
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("template_id", tracing::field::display(id));
    let view = TemplateView::from(templates::insert(&tx, id, &name, template.source()).await?);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/templates/{id}"))).json(view))
}

/// Reads one template.
#[utoipa::path(tag = "templates", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TemplateView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/templates/{id}")]
#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn get_template(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "template")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = templates::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("template"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(TemplateView::from(found)))
}

/// Lists templates, newest first.
#[utoipa::path(tag = "templates", security(("bearer" = ["messaging:read"])),
    params(PageQuery),
    responses((status = 200, body = Page<TemplateView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/templates")]
#[tracing::instrument(skip_all)]
pub async fn list_templates(
    principal: Principal,
    pool: web::Data<Pool>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = templates::list(&tx, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |t| t.id).map(TemplateView::from)))
}

/// Changes a template (JSON merge patch). A patch that changes nothing leaves the revision as it is.
#[utoipa::path(tag = "templates", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = TemplatePatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The template after the change", body = TemplateView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the name is taken (naming `name`)", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/templates/{id}")]
#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn update_template(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "template")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = templates::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("template"))?;
    let now = TemplatePatch { name: Some(current.name.clone()), body: Some(current.body.clone()) };
    let patched: TemplatePatch = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let parsed = parse_template(patched.name.as_deref(), patched.body.as_deref(), &mut errors);
    errors.finish()?;
    let (name, template) = parsed.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated template missing")))?;
    if name == current.name && template.source() == current.body {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(TemplateView::from(current)));
    }
    if templates::name_taken(&tx, &name, Some(id)).await? {
        return Err(name_conflict());
    }
    let updated = templates::update(&tx, id, &name, template.source()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(TemplateView::from(updated)))
}

/// Deletes a template. Campaigns keep the text they were queued with.
#[utoipa::path(tag = "templates", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[delete("/v1/templates/{id}")]
#[tracing::instrument(skip_all, fields(template_id = %id))]
pub async fn delete_template(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "template")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if !templates::delete(&tx, id).await? {
        return Err(ApiError::not_found("template"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What to preview: a body as it is being written, or a saved template; for a contact, or with sample values.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The text to preview, as [`TemplateInput::body`]. Exactly one of `body` and `template_id`.
    #[schema(value_type = Option<String>, min_length = 1, max_length = 1600,
        pattern = r"^[^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u0009\u000b\u000c\u000e-\u001f\u007f-\u009f]*$")]
    pub body: Option<String>,
    /// A saved template to preview instead.
    #[schema(value_type = Option<Uuid>)]
    pub template_id: Option<String>,
    /// Render for this contact: a variable it has no value for, and that has no default, is a `422
    /// template_variable_missing` naming it.
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<String>,
    /// Sample values for variables, without a contact (`{"first_name": "Ada"}`). A variable with neither a value
    /// nor a default stays as written (`{{level}}`) and is listed in `unfilled_variables`.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub variables: Option<BTreeMap<String, String>>,
}

/// A message as it would be sent, and what it costs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreviewView {
    /// The whole message: the rendered text, then the tenant's opt-out line.
    pub text: String,
    /// `GSM-7` or `UCS-2`.
    #[schema(pattern = "^(GSM-7|UCS-2)$")]
    pub encoding: String,
    /// Characters (Unicode scalar values).
    pub characters: usize,
    /// What the segments hold: GSM-7 septets (an extension character `^ { } \ [ ~ ] | €` counts two) or UCS-2
    /// code units (an emoji counts two).
    pub units: usize,
    pub segments: usize,
    /// 160 or 153 (GSM-7), 70 or 67 (UCS-2), as applies to this message.
    pub units_per_segment: usize,
    /// The characters that make it UCS-2, each once: replace them to send as GSM-7.
    pub non_gsm_characters: Vec<String>,
    /// Over Twilio's 1,600-character limit: it could not be sent.
    pub over_limit: bool,
    /// `segments` times the tenant's price per segment, in millionths of `currency`.
    pub cost_micros: i64,
    pub currency: String,
    /// Variables without a value (sample previews only), left as written.
    pub unfilled_variables: Vec<String>,
}

/// A contact's value of a template variable.
pub fn contact_value(contact: &StoredContact, name: &str) -> Option<String> {
    match name {
        "first_name" => contact.first_name.clone(),
        "last_name" => contact.last_name.clone(),
        "email" => contact.email.clone(),
        "phone" => Some(contact.phone.clone()),
        key => contact.attributes.get(key).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }),
    }
}

/// Renders and counts a message.
#[utoipa::path(tag = "templates", security(("bearer" = ["messaging:read"])),
    request_body = PreviewRequest,
    responses((status = 200, body = PreviewView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 404, description = "not_found: the template or contact", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field; or template_variable_missing, naming \
            each variable the contact has no value for (`variables.<name>`)", body = almoner_http::Problem)))]
#[post("/v1/templates/preview")]
#[tracing::instrument(skip_all)]
pub async fn preview(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let input: PreviewRequest = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let template_id = input.template_id.as_deref().and_then(|t| errors.parse("template_id", Uuid::parse_str(t.trim())));
    let contact_id = input.contact_id.as_deref().and_then(|c| errors.parse("contact_id", Uuid::parse_str(c.trim())));
    let inline = match (&input.body, &input.template_id) {
        (Some(b), None) => errors.parse("body", Template::parse(b)),
        (None, Some(_)) => None,
        _ => {
            errors.add("body", "give exactly one of body and template_id");
            None
        }
    };
    if contact_id.is_some() && input.variables.is_some() {
        errors.add("variables", "give sample variables or a contact, not both");
    }
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let template = match (inline, template_id) {
        (Some(t), _) => t,
        (None, Some(id)) => {
            let stored = templates::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("template"))?;
            Template::parse(&stored.body).map_err(|e| ApiError::unexpected(anyhow::anyhow!("stored template: {e}")))?
        }
        (None, None) => return Err(ApiError::unexpected(anyhow::anyhow!("validated preview missing"))),
    };
    let contact = match contact_id {
        Some(id) => Some(contacts::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?),
        None => None,
    };
    let settings = settings::get(&tx).await?;
    tx.commit().await?;

    let mut unfilled = Vec::new();
    let rendered = match &contact {
        Some(c) => template.render(|name| contact_value(c, name)).map_err(|missing| {
            let mut error = ApiError::new(ErrorCode::TemplateVariableMissing, missing.to_string());
            for name in missing.0 {
                error.errors.push(FieldError {
                    field: format!("variables.{name}"),
                    message: "the contact has no value for it, and it has no default".into(),
                });
            }
            error
        })?,
        None => {
            let samples = input.variables.unwrap_or_default();
            match template.render(|name| samples.get(name).cloned()) {
                Ok(text) => text,
                Err(missing) => {
                    unfilled = missing.0.clone();
                    template
                        .render(|name| samples.get(name).cloned().or_else(|| Some(format!("{{{{{name}}}}}"))))
                        .unwrap_or_default()
                }
            }
        }
    };
    let text = with_opt_out(&rendered, &settings.opt_out_text);
    let count = segments::count(&text);
    let segments = i64::try_from(count.segments).unwrap_or(i64::MAX);
    Ok(HttpResponse::Ok().json(PreviewView {
        encoding: count.encoding.as_str().to_owned(),
        characters: count.characters,
        units: count.units,
        segments: count.segments,
        units_per_segment: count.units_per_segment,
        non_gsm_characters: segments::non_gsm_characters(&text).into_iter().map(String::from).collect(),
        over_limit: segments::over_limit(&text),
        cost_micros: segments.saturating_mul(settings.price_per_segment_micros),
        currency: settings.budget_currency,
        unfilled_variables: unfilled,
        text,
    }))
}
