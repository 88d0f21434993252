//! `/v1/donors`: create, read, search, change and delete donors.
//!
//! Every change moves the donor to its next `revision` and writes `fundraising.donor.upserted.v1` (or
//! `.deleted.v1`) with the whole donor to the outbox in the same transaction.

use super::conventions::{Claim, claim, conflict, emit, json_body, merge_patch, path_id, remember, replay_response};
use crate::db::donors::{self, DonorFilter};
use crate::db::households;
use crate::domain::{Address, DonorDetails, ExternalIds, optional_text, required_text};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use almoner_db::Pool;
use almoner_events::fundraising::{CommunicationPreferences, Donor, DonorDeletedV1, DonorUpsertedV1};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldErrors, Page, PageQuery, Paging, Principal};
use almoner_types::{Email, PhoneE164, Postcode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    // `/v1/donors/matches` before `/v1/donors/{id}`, so that another method on it is a 405, not a donor lookup.
    cfg.service(match_donors)
        .service(create_donor)
        .service(list_donors)
        .service(get_donor)
        .service(update_donor)
        .service(delete_donor);
}

/// A donor as sent by clients to create one. Text is trimmed; blank optional text is the same as absent.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonorInput {
    /// At most 50 characters, no control characters, e.g. `Dr`.
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub title: Option<String>,
    /// At most 200 characters, no control characters.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub first_name: Option<String>,
    /// Required: 1 to 200 characters once trimmed, no control characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub last_name: Option<String>,
    /// An address that can be delivered to (see `almoner_types::Email`: one `@`, no spaces or commas, a domain
    /// of letters, digits and `-` in at least two labels); the domain is stored lower-cased.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// E.164 (`+447700900123`, or `00` for `+`), or a UK number starting with 0 (`07700 900123`); spaces,
    /// `-`, `.` and brackets are ignored. Stored as E.164.
    #[schema(
        pattern = r"^\s*(?:[ ().-]*(?:\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}|0[ ().-]*[1-9](?:[ ().-]*[0-9]){5,12})[ ().-]*)?\s*$"
    )]
    pub phone: Option<String>,
    pub address: Option<AddressBody>,
    #[schema(value_type = Option<super::schemas::ExternalIds>)]
    pub external_ids: Option<BTreeMap<String, String>>,
    pub communication_preferences: Option<PreferencesInput>,
    /// A household of the same tenant.
    pub household_id: Option<Uuid>,
}

/// A change to a donor (JSON merge patch, RFC 7396): absent members stay, `null` clears, and `address`,
/// `external_ids` and `communication_preferences` merge member by member. The rules are those of
/// [`DonorInput`]; `last_name` cannot be cleared.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The document's shape of a patch; the handler merges it into [`DonorInput`].
pub struct DonorPatch {
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    title: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    first_name: Option<String>,
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    last_name: Option<String>,
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    #[schema(
        pattern = r"^\s*(?:[ ().-]*(?:\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}|0[ ().-]*0[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}|0[ ().-]*[1-9](?:[ ().-]*[0-9]){5,12})[ ().-]*)?\s*$"
    )]
    phone: Option<String>,
    address: Option<AddressBody>,
    #[schema(value_type = Option<super::schemas::ExternalIdsPatch>)]
    external_ids: Option<BTreeMap<String, Option<String>>>,
    communication_preferences: Option<PreferencesInput>,
    /// A household of the same tenant; `null` takes the donor out of its household.
    household_id: Option<Uuid>,
}

/// A postal address; text is trimmed, blank is absent. With country `GB` or none, `postcode` must be a UK
/// postcode and is normalised (`SW1A 1AA`); with another country it is kept as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressBody {
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub line1: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub line2: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub town: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub county: Option<String>,
    #[schema(max_length = 20, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub postcode: Option<String>,
    /// ISO 3166-1 alpha-2 in any case, e.g. `GB`; stored upper-case.
    #[schema(pattern = r"^\s*(?:[A-Za-z]{2})?\s*$")]
    pub country: Option<String>,
}

/// How the donor agreed to be contacted; an absent channel is `false`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    pub email: Option<bool>,
    pub sms: Option<bool>,
    pub post: Option<bool>,
    pub phone: Option<bool>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct PreferencesView {
    pub email: bool,
    pub sms: bool,
    pub post: bool,
    pub phone: bool,
}

/// A donor as clients see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DonorView {
    pub id: Uuid,
    /// Starts at 1 and grows by one with every change.
    pub revision: i64,
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: AddressBody,
    pub external_ids: BTreeMap<String, String>,
    pub communication_preferences: PreferencesView,
    /// The household the donor belongs to, if any.
    pub household_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Donor> for DonorView {
    fn from(d: Donor) -> Self {
        let p = d.communication_preferences;
        Self {
            id: d.id,
            revision: d.revision,
            title: d.title,
            first_name: d.first_name,
            last_name: d.last_name,
            email: d.email,
            phone: d.phone,
            address: AddressBody {
                line1: d.address.line1,
                line2: d.address.line2,
                town: d.address.town,
                county: d.address.county,
                postcode: d.address.postcode,
                country: d.address.country,
            },
            external_ids: d.external_ids,
            communication_preferences: PreferencesView { email: p.email, sms: p.sms, post: p.post, phone: p.phone },
            household_id: d.household_id,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// The donor's current state in input form, for applying a patch to.
fn as_input(d: &Donor) -> DonorInput {
    let p = d.communication_preferences;
    DonorInput {
        title: d.title.clone(),
        first_name: d.first_name.clone(),
        last_name: Some(d.last_name.clone()),
        email: d.email.clone(),
        phone: d.phone.clone(),
        address: Some(AddressBody {
            line1: d.address.line1.clone(),
            line2: d.address.line2.clone(),
            town: d.address.town.clone(),
            county: d.address.county.clone(),
            postcode: d.address.postcode.clone(),
            country: d.address.country.clone(),
        }),
        external_ids: Some(d.external_ids.clone()),
        communication_preferences: Some(PreferencesInput {
            email: Some(p.email),
            sms: Some(p.sms),
            post: Some(p.post),
            phone: Some(p.phone),
        }),
        household_id: d.household_id,
    }
}

/// Parses a whole donor, naming every bad field.
fn parse_donor(input: DonorInput) -> Result<DonorDetails, ApiError> {
    let mut errors = FieldErrors::new();
    let title = errors.parse("title", optional_text(input.title.as_deref(), 50)).flatten();
    let first_name = errors.parse("first_name", optional_text(input.first_name.as_deref(), 200)).flatten();
    let last_name =
        errors.required("last_name", input.last_name).and_then(|n| errors.parse("last_name", required_text(&n, 200)));
    let email = match input.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => errors.parse("email", Email::parse(e)),
        None => None,
    };
    let phone = match input.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        Some(p) => errors.parse("phone", PhoneE164::parse(p)),
        None => None,
    };
    let a = input.address.unwrap_or_default();
    let address = match Address::parse(
        a.line1.as_deref(),
        a.line2.as_deref(),
        a.town.as_deref(),
        a.county.as_deref(),
        a.postcode.as_deref(),
        a.country.as_deref(),
    ) {
        Ok(address) => Some(address),
        Err(problems) => {
            for (field, e) in problems {
                errors.add(format!("address.{field}"), e.to_string());
            }
            None
        }
    };
    let external_ids = match ExternalIds::parse(&input.external_ids.unwrap_or_default()) {
        Ok(ids) => Some(ids),
        Err(problems) => {
            for (source, e) in problems {
                errors.add(format!("external_ids.{source}"), e.to_string());
            }
            None
        }
    };
    let p = input.communication_preferences.unwrap_or_default();
    errors.finish()?;
    let (Some(last_name), Some(address), Some(external_ids)) = (last_name, address, external_ids) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated donor fields missing")));
    };
    Ok(DonorDetails {
        title,
        first_name,
        last_name,
        email,
        phone,
        address,
        external_ids,
        communication_preferences: CommunicationPreferences {
            email: p.email.unwrap_or(false),
            sms: p.sms.unwrap_or(false),
            post: p.post.unwrap_or(false),
            phone: p.phone.unwrap_or(false),
        },
        household_id: input.household_id,
    })
}

/// Refuses external ids that another donor of the tenant already holds, naming each source.
async fn check_external_ids(tx: &almoner_db::Transaction, id: Uuid, details: &DonorDetails) -> Result<(), ApiError> {
    let clashes = donors::clashing_sources(tx, id, details).await?;
    if let Some(first) = clashes.first() {
        let mut error = conflict(format!("external_ids.{first}"), "this source's id already belongs to another donor");
        for source in &clashes[1..] {
            error.errors.push(almoner_http::FieldError {
                field: format!("external_ids.{source}"),
                message: "this source's id already belongs to another donor".into(),
            });
        }
        return Err(error);
    }
    Ok(())
}

/// The household must exist in the caller's tenant.
async fn check_household(tx: &almoner_db::Transaction, details: &DonorDetails) -> Result<(), ApiError> {
    match details.household_id {
        Some(household_id) if !households::exists(tx, household_id).await? => {
            Err(ApiError::validation(vec![almoner_http::FieldError {
                field: "household_id".into(),
                message: "no such household".into(),
            }]))
        }
        _ => Ok(()),
    }
}

/// Creates a donor at revision 1.
#[utoipa::path(tag = "donors", security(("bearer" = ["fundraising:write"])),
    request_body = DonorInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new donor", body = DonorView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict (an external id is taken) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem),
    ))]
#[post("/v1/donors")]
#[tracing::instrument(skip_all, fields(donor_id = tracing::field::Empty))]
pub async fn create_donor(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let details = parse_donor(json_body(&req, &body)?)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let id = Uuid::now_v7();
    tracing::Span::current().record("donor_id", tracing::field::display(id));
    check_household(&tx, &details).await?;
    check_external_ids(&tx, id, &details).await?;
    let donor = donors::insert(&tx, id, &details).await?;
    emit(&tx, tenant_id, DonorUpsertedV1 { donor: donor.clone() }).await?;
    let view = DonorView::from(donor);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/donors/{id}"))).json(view))
}

/// Reads one donor.
#[utoipa::path(tag = "donors", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DonorView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/donors/{id}")]
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn get_donor(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "donor")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let donor = donors::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("donor"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(DonorView::from(donor)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DonorQuery {
    /// Case-insensitive prefix of the first name, the last name, or the full name ("ann sm").
    pub q: Option<String>,
    /// Exact email address (case-insensitive); one that cannot be an address (the rule donors are stored with)
    /// is a `422`.
    pub email: Option<String>,
    /// A postcode, in any case or spacing.
    pub postcode: Option<String>,
    /// `source:id`, e.g. `legacy_crm:D-1001`.
    pub external_id: Option<String>,
}

/// Lists or searches donors, newest first; every filter given must match.
#[utoipa::path(tag = "donors", security(("bearer" = ["fundraising:read"])),
    params(DonorQuery, PageQuery),
    responses((status = 200, body = Page<DonorView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/donors")]
#[tracing::instrument(skip_all)]
pub async fn list_donors(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<DonorQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let query = query.into_inner();
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let external_id = match query.external_id.as_deref() {
        Some(raw) => match raw.split_once(':') {
            Some((source, id)) if !source.is_empty() && !id.is_empty() => Some((source.to_owned(), id.to_owned())),
            _ => {
                errors.add("external_id", "must be source:id, e.g. legacy_crm:D-1001");
                None
            }
        },
        None => None,
    };
    // The same rule as every email Almoner takes: an address that could never be stored is a mistake to name.
    let email = match query.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
        Some(e) => errors.parse("email", Email::parse(e)).map(String::from),
        None => None,
    };
    errors.finish()?;
    let filter = DonorFilter {
        name_prefix: query
            .q
            .as_deref()
            .map(|q| q.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
            .filter(|q| !q.is_empty())
            .map(|q| crate::db::like_prefix(&q)),
        email,
        // A UK postcode matches however it is written; any other postal code as written.
        postcode: query.postcode.as_deref().map(str::trim).filter(|p| !p.is_empty()).map(|p| {
            match Postcode::parse(p) {
                Ok(p) => String::from(p),
                Err(_) => p.to_owned(),
            }
        }),
        external_id,
    };
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = donors::list(&tx, &filter, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |d| d.id).map(DonorView::from)))
}

/// Changes some of a donor's fields (JSON merge patch): absent members stay, `null` clears. A patch that changes
/// nothing leaves the revision as it is.
#[utoipa::path(tag = "donors", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = DonorPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The donor after the change", body = DonorView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "an external id is taken", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/donors/{id}")]
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn update_donor(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "donor")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = donors::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("donor"))?;
    let details = parse_donor(merge_patch(&req, &body, &as_input(&current))?)?;
    // Compare in stored form: re-parsing the current donor yields its details exactly.
    let unchanged = parse_donor(as_input(&current)).is_ok_and(|now| now == details);
    if unchanged {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(DonorView::from(current)));
    }
    if details.household_id != current.household_id {
        check_household(&tx, &details).await?;
    }
    check_external_ids(&tx, id, &details).await?;
    let donor = donors::update(&tx, id, &details).await?;
    emit(&tx, tenant_id, DonorUpsertedV1 { donor: donor.clone() }).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(DonorView::from(donor)))
}

/// Deletes a donor who has no gifts (delete or move the gifts first).
#[utoipa::path(tag = "donors", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "The donor has gifts", body = almoner_http::Problem)))]
#[delete("/v1/donors/{id}")]
#[tracing::instrument(skip_all, fields(donor_id = %id))]
pub async fn delete_donor(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "donor")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    donors::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("donor"))?;
    if donors::has_gifts(&tx, id).await? {
        return Err(ApiError::new(ErrorCode::Conflict, "the donor has gifts; delete or move them first"));
    }
    if donors::credited_or_pledged(&tx, id).await? {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "the donor has pledges or is soft-credited on gifts; remove those first",
        ));
    }
    let revision = donors::delete(&tx, id).await?.ok_or_else(|| ApiError::not_found("donor"))?;
    emit(&tx, tenant_id, DonorDeletedV1 { donor_id: id, tenant_id, revision: revision + 1, deleted_at: Utc::now() })
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Who a donor about to be created might already be.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchInput {
    #[schema(max_length = 200)]
    pub first_name: Option<String>,
    /// Needed, with `postcode` or `phone`, for the name rules.
    #[schema(max_length = 200)]
    pub last_name: Option<String>,
    /// Compared without case.
    #[schema(max_length = 320)]
    pub email: Option<String>,
    /// In any case or spacing.
    #[schema(max_length = 20)]
    pub postcode: Option<String>,
    /// A UK or international number, as donors' phones are written.
    #[schema(max_length = 40)]
    pub phone: Option<String>,
}

/// One likely match and the rules that found it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DonorMatch {
    pub donor: DonorView,
    /// Strongest first: `email`, `name_postcode`, `name_phone`.
    pub matched_by: Vec<String>,
}

/// The likely matches, best first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DonorMatches {
    pub data: Vec<DonorMatch>,
}

/// At most this many matches are returned.
const MAX_MATCHES: usize = 20;

/// Donors who may be the one about to be created, by the import's matching rules (the same email; the same name
/// and postcode; the same name and phone), for gift entry's duplicate prompt. Most rules matched first, then
/// newest. Reads only: nothing is created.
#[utoipa::path(tag = "donors", security(("bearer" = ["fundraising:read"])),
    request_body = MatchInput,
    responses(
        (status = 200, description = "Likely matches, best first (at most 20); empty when none", body = DonorMatches),
        (status = 422, description = "validation_failed: a field that cannot be what it names, or nothing to match \
            by (an email, or a last name with a postcode or phone)", body = almoner_http::Problem),
    ))]
#[post("/v1/donors/matches")]
#[tracing::instrument(skip_all)]
pub async fn match_donors(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    use crate::domain::import::{KnownDonor, MatchProbe, PROMPT_RULES, folded, postcode_key, prompt_matches};
    principal.require("fundraising:read")?;
    let input: MatchInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let text = |v: Option<String>| v.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let email = match text(input.email) {
        Some(e) => errors.parse("email", Email::parse(&e)).map(|e| String::from(e).to_lowercase()),
        None => None,
    };
    let phone = match text(input.phone) {
        Some(p) => errors.parse("phone", almoner_types::PhoneE164::parse(&p)).map(String::from),
        None => None,
    };
    let probe = MatchProbe {
        first_name: text(input.first_name),
        last_name: text(input.last_name),
        email,
        postcode: text(input.postcode),
        phone,
    };
    if errors.is_empty()
        && probe.email.is_none()
        && (probe.last_name.is_none() || (probe.postcode.is_none() && probe.phone.is_none()))
    {
        errors.add("email", "give an email, or a last name with a postcode or a phone, to match by");
    }
    errors.finish()?;
    let last_name_prefix =
        probe.last_name.as_deref().and_then(|last| folded(last).split(' ').next().map(crate::db::like_prefix));
    let postcode = probe.postcode.as_deref().map(postcode_key);
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let candidates = donors::match_candidates(
        &tx,
        probe.email.as_deref(),
        last_name_prefix.as_deref(),
        postcode.as_deref(),
        probe.phone.as_deref(),
        200,
    )
    .await?;
    tx.commit().await?;
    let mut matches: Vec<((usize, std::cmp::Reverse<usize>), DonorMatch)> = candidates
        .into_iter()
        .filter_map(|d| {
            let known = KnownDonor {
                id: d.id,
                external_id: None,
                first_name: d.first_name.clone(),
                last_name: d.last_name.clone(),
                email: d.email.clone(),
                postcode: d.address.postcode.clone(),
                phone: d.phone.clone(),
            };
            let rules = prompt_matches(&known, &probe);
            // More rules first; between as many, the one whose strongest rule is stronger.
            let first = rules.first().and_then(|r| PROMPT_RULES.iter().position(|p| p == r)).unwrap_or(0);
            let strength = (rules.len(), std::cmp::Reverse(first));
            (!rules.is_empty()).then(|| {
                (
                    strength,
                    DonorMatch {
                        donor: DonorView::from(d),
                        matched_by: rules.iter().map(|r| r.name().to_owned()).collect(),
                    },
                )
            })
        })
        .collect();
    // Candidates come newest first; a stable sort keeps that order among equally strong matches.
    matches.sort_by_key(|(strength, _)| std::cmp::Reverse(*strength));
    let data = matches.into_iter().take(MAX_MATCHES).map(|(_, m)| m).collect();
    Ok(HttpResponse::Ok().json(DonorMatches { data }))
}
