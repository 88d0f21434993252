//! `/v1/contacts`: the people a charity may text, one per number.
//!
//! A number is read as E.164, or in the tenant's local form (`default_country` of `/v1/settings`), and must be a
//! mobile one where the country is known (UK, Australia). A contact whose number is on the do-not-contact list is
//! kept, and shown as such (`do_not_contact: true`); it is never texted.

use super::actor;
use crate::db::contacts::{self, ContactFields, ContactFilter, StoredContact};
use crate::db::donors::{self, Scope};
use crate::db::settings;
use crate::domain::contact::{Attributes, Tags};
use crate::domain::import::consent_time;
use crate::domain::{Country, SmsNumber, optional_text};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use almoner_db::{Pool, Transaction};
use almoner_http::body::{json_body, merge_patch};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use almoner_types::Email;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_contact)
        .service(list_contacts)
        .service(get_contact)
        .service(update_contact)
        .service(delete_contact);
}

/// A contact as a client writes it. On `PATCH` (a JSON merge patch) every field is optional; `attributes` merge
/// key by key (`null` removes one).
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// Required: a mobile number, E.164 (`+447700900123`) or in the tenant's local form (`07700 900123`).
    #[schema(required = true, value_type = String, min_length = 1, max_length = 40, example = "07700 900123",
        pattern = r"^[+0-9 ().-]*[0-9][+0-9 ().-]*$")]
    pub phone: Option<String>,
    #[schema(value_type = Option<String>, max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub first_name: Option<String>,
    #[schema(value_type = Option<String>, max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub last_name: Option<String>,
    #[schema(value_type = Option<String>, format = "email", max_length = 254)]
    pub email: Option<String>,
    /// Up to 50 keys (`a-z`, digits, `_`, starting with a letter), each a string (at most 500 characters), a number
    /// or a boolean: what templates and segments use.
    #[schema(value_type = Option<std::collections::BTreeMap<String, AttributeValue>>)]
    pub attributes: Option<Value>,
    /// Up to 50 tags, each 1 to 50 characters; kept in lower case.
    #[schema(value_type = Option<Vec<String>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// Where the person agreed to be texted (`website sign-up`, `paper form at the gala`).
    #[schema(value_type = Option<String>, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub consent_source: Option<String>,
    /// When they agreed: RFC 3339, or an ISO date.
    #[schema(value_type = Option<String>, example = "2025-04-06T10:00:00Z")]
    pub consented_at: Option<String>,
}

/// What may change of a contact (JSON merge patch): any field of [`ContactInput`]; `attributes` merge key by key
/// (`null` removes one); the number cannot be removed.
#[derive(ToSchema)]
#[allow(dead_code)] // The document's shape of a patch; a patch is read as a `ContactInput` merged onto the contact.
pub struct ContactPatch {
    #[schema(value_type = String, required = false, min_length = 1, max_length = 40,
        pattern = r"^[+0-9 ().-]*[0-9][+0-9 ().-]*$")]
    phone: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    first_name: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    last_name: Option<String>,
    #[schema(format = "email", max_length = 254)]
    email: Option<String>,
    /// Keys to set (a string, number or boolean) or remove (`null`).
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Value>,
    #[schema(max_items = 50)]
    tags: Option<Vec<String>>,
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    consent_source: Option<String>,
    consented_at: Option<String>,
}

/// An attribute's value: a string of at most 500 characters, a number or a boolean.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Describes the accepted values in the OpenAPI document; checked by `Attributes::parse`.
pub enum AttributeValue {
    Text(String),
    Number(f64),
    Flag(bool),
}

/// A contact as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContactView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    /// E.164.
    pub phone: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: Value,
    pub tags: Vec<String>,
    pub consent_source: Option<String>,
    pub consented_at: Option<DateTime<Utc>>,
    /// The person consented to be texted: `consented_at` is set. Kept in step with the linked donor's SMS
    /// preference, whichever changed last.
    pub sms_consent: bool,
    /// When consent was last withdrawn (a STOP reply, a staff edit, the donor's record).
    pub consent_withdrawn_at: Option<DateTime<Utc>>,
    /// The fundraising donor this contact is, when linked: the one donor with its number, or failing that with
    /// its email.
    pub donor_id: Option<Uuid>,
    /// How the link was made: `phone` or `email`.
    #[schema(pattern = "^(phone|email)$")]
    pub donor_link: Option<String>,
    /// The number is on the do-not-contact list: it is never texted.
    pub do_not_contact: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredContact> for ContactView {
    fn from(c: StoredContact) -> Self {
        Self {
            id: c.id,
            revision: c.revision,
            phone: c.phone,
            first_name: c.first_name,
            last_name: c.last_name,
            email: c.email,
            attributes: c.attributes,
            tags: c.tags,
            consent_source: c.consent_source,
            sms_consent: c.consented_at.is_some(),
            consented_at: c.consented_at,
            consent_withdrawn_at: c.consent_withdrawn_at,
            donor_id: c.donor_id,
            donor_link: c.donor_link,
            do_not_contact: c.do_not_contact,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// Reads a contact's fields, naming each that is wrong.
fn parse_contact(input: &ContactInput, country: Country, errors: &mut FieldErrors) -> Option<ContactFields> {
    let phone = errors
        .required("phone", input.phone.as_deref())
        .and_then(|p| errors.parse("phone", SmsNumber::parse(p, country)));
    let first_name = errors.parse("first_name", optional_text(input.first_name.as_deref(), 100));
    let last_name = errors.parse("last_name", optional_text(input.last_name.as_deref(), 100));
    let email = match input.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        None => Some(None),
        Some(e) => errors.parse("email", Email::parse(e)).map(|e| Some(e.to_string())),
    };
    let attributes = match &input.attributes {
        None => Some(Attributes::default()),
        Some(a) => errors.parse("attributes", Attributes::parse(a)),
    };
    let tags = errors.parse("tags", Tags::parse(input.tags.as_deref().unwrap_or_default()));
    let consent_source = errors.parse("consent_source", optional_text(input.consent_source.as_deref(), 200));
    let consented_at = match input.consented_at.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Some(None),
        Some(t) => errors.parse("consented_at", consent_time(t)).map(Some),
    };
    Some(ContactFields {
        phone: phone?.to_string(),
        first_name: first_name?,
        last_name: last_name?,
        email: email?,
        attributes: attributes?.to_value(),
        tags: tags?.into_vec(),
        consent_source: consent_source?,
        consented_at: consented_at?,
    })
}

fn phone_conflict() -> ApiError {
    let message = "another contact has this number";
    let mut error = ApiError::new(ErrorCode::Conflict, message);
    error.errors.push(FieldError { field: "phone".into(), message: message.into() });
    error
}

/// The contact after linking it to its donor and bringing their SMS consent into step.
async fn reconciled(tx: &Transaction, tenant_id: Uuid, id: Uuid) -> Result<StoredContact, ApiError> {
    donors::reconcile(tx, tenant_id, Scope::contacts(&[id])).await?;
    contacts::get(tx, id).await?.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("contact {id} vanished")))
}

async fn country(tx: &Transaction) -> Result<Country, ApiError> {
    Ok(settings::get(tx).await?.default_country)
}

/// Creates a contact at revision 1.
#[utoipa::path(tag = "contacts", security(("bearer" = ["messaging:write"])),
    request_body = ContactInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new contact", body = ContactView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict: another contact has the number (naming `phone`); or \
            idempotency_key_reused", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/contacts")]
#[tracing::instrument(skip_all, fields(contact_id = tracing::field::Empty))]
pub async fn create_contact(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let input: ContactInput = json_body(&req, &body)?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let mut errors = FieldErrors::new();
    let fields = parse_contact(&input, country(&tx).await?, &mut errors);
    errors.finish()?;
    let fields = fields.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated contact fields missing")))?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    if contacts::phone_taken(&tx, &fields.phone, None).await? {
        return Err(phone_conflict());
    }
    let id = Uuid::now_v7();
    tracing::Span::current().record("contact_id", tracing::field::display(id));
    contacts::insert(&tx, id, &fields).await?;
    let view = ContactView::from(reconciled(&tx, principal.tenant_id.as_uuid(), id).await?);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/contacts/{id}"))).json(view))
}

/// Reads one contact.
#[utoipa::path(tag = "contacts", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ContactView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/contacts/{id}")]
#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn get_contact(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "contact")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let contact = contacts::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ContactView::from(contact)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ContactQuery {
    /// Only contacts with this tag (compared in lower case).
    #[param(max_length = 50)]
    pub tag: Option<String>,
    /// The start of a first or last name, full name or email, or 3 or more digits of the number.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// `true`: only contacts whose number is on the do-not-contact list; `false`: only the others.
    #[param(pattern = r"^\s*(true|false)\s*$")]
    pub do_not_contact: Option<String>,
}

/// Lists contacts, newest first.
#[utoipa::path(tag = "contacts", security(("bearer" = ["messaging:read"])),
    params(ContactQuery, PageQuery),
    responses((status = 200, body = Page<ContactView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `tag`, `q`, `do_not_contact`, `limit` or `cursor`",
            body = almoner_http::Problem)))]
#[get("/v1/contacts")]
#[tracing::instrument(skip_all)]
pub async fn list_contacts(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<ContactQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let tag = match query.tag.as_deref() {
        None => None,
        Some(t) => errors.parse("tag", Tags::parse_one(t)),
    };
    let search = errors.parse("q", optional_text(query.q.as_deref(), 100)).flatten();
    let do_not_contact = match query.do_not_contact.as_deref().map(str::trim) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            errors.add("do_not_contact", "must be true or false");
            None
        }
    };
    errors.finish()?;
    let filter = ContactFilter { tag, search, do_not_contact };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = contacts::list(&tx, &filter, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |c| c.id).map(ContactView::from)))
}

/// Changes a contact (JSON merge patch). A patch that changes nothing leaves the revision as it is.
#[utoipa::path(tag = "contacts", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = ContactPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The contact after the change", body = ContactView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: another contact has the number (naming `phone`)",
            body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/contacts/{id}")]
#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn update_contact(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "contact")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let current = contacts::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact"))?;
    let now = ContactInput {
        phone: Some(current.phone.clone()),
        first_name: current.first_name.clone(),
        last_name: current.last_name.clone(),
        email: current.email.clone(),
        attributes: Some(current.attributes.clone()),
        tags: Some(current.tags.clone()),
        consent_source: current.consent_source.clone(),
        consented_at: current.consented_at.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    };
    let patched: ContactInput = merge_patch(&req, &body, &now)?;
    let mut errors = FieldErrors::new();
    let fields = parse_contact(&patched, country(&tx).await?, &mut errors);
    errors.finish()?;
    let fields = fields.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated contact fields missing")))?;
    let unchanged = ContactFields {
        phone: current.phone.clone(),
        first_name: current.first_name.clone(),
        last_name: current.last_name.clone(),
        email: current.email.clone(),
        attributes: current.attributes.clone(),
        tags: current.tags.clone(),
        consent_source: current.consent_source.clone(),
        consented_at: current.consented_at,
    };
    if fields == unchanged {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(ContactView::from(current)));
    }
    if fields.phone != current.phone && contacts::phone_taken(&tx, &fields.phone, Some(id)).await? {
        return Err(phone_conflict());
    }
    contacts::update(&tx, id, &fields).await?;
    let contact = reconciled(&tx, principal.tenant_id.as_uuid(), id).await?;
    tracing::info!(by = %actor(&principal), "contact changed");
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ContactView::from(contact)))
}

/// Deletes a contact. Its number stays on the do-not-contact list if it is there.
#[utoipa::path(tag = "contacts", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[delete("/v1/contacts/{id}")]
#[tracing::instrument(skip_all, fields(contact_id = %id))]
pub async fn delete_contact(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "contact")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    if !contacts::delete(&tx, id).await? {
        return Err(ApiError::not_found("contact"));
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
