//! `/v1/contact-imports`: contacts from a CSV file. `POST` runs a dry run (what each row would do, with totals,
//! and nothing written but the import itself); `POST .../commit` writes it, a chunk at a time, in the background.

use super::actor;
use crate::db::{contacts, do_not_contact, imports as db, settings};
use crate::domain::import::{self, Field, FileError, Options, Outcome, ReadRow};
use crate::domain::{Country, Tags, optional_text};
use crate::importer::ImportCommitter;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use almoner_db::Pool;
use almoner_http::body::{json_body, larger_body};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::idempotency::{Claim, claim, remember, replay_response};
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal, path_id};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Largest request body: the file in `csv` (at most 10 MiB itself), escaped as JSON, and the options.
pub const MAX_REQUEST_BYTES: usize = 11 * 1024 * 1024;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_import).service(list_imports).service(get_import).service(import_rows).service(commit_import);
}

/// A contact import: the file and how to read it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactImportRequest {
    /// Required: the CSV, a header line first (UTF-8, comma-separated, `"` quoting), at most 10 MiB and 200,000
    /// rows. A column for the number is required (`Phone`, `Mobile`, `Mobile number`...); `First name`, `Last
    /// name`/`Surname`, `Email`, `Tags` (separated by `;` or `|`), `Consent source` and `Consent date` are read
    /// too; other columns are ignored unless mapped.
    #[schema(required = true, value_type = String, min_length = 1)]
    pub csv: Option<String>,
    /// Required: where these people agreed to be texted (`gala sign-up sheet 2025`), for rows without their own.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200)]
    pub consent_source: Option<String>,
    /// When they agreed, for rows without their own: RFC 3339 or an ISO date.
    #[schema(value_type = Option<String>, example = "2025-04-06")]
    pub consented_at: Option<String>,
    /// `GB` or `AU`: whose local forms (`07...`, `04...`) the numbers are in. Default: the tenant's setting.
    #[schema(value_type = Option<String>, pattern = r"^\s*(?i:gb|uk|au)\s*$")]
    pub default_country: Option<String>,
    /// Header → field, for headers not recognised (or read otherwise): `phone`, `first_name`, `last_name`,
    /// `email`, `tags`, `consent_source`, `consented_at`, `attribute:<key>` or `ignore`.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub mapping: Option<BTreeMap<String, String>>,
    /// Tags given to every contact of the file.
    #[schema(value_type = Option<Vec<String>>, max_items = 50)]
    pub tags: Option<Vec<String>>,
    /// Whether a row whose number is already a contact updates it (its non-empty fields, tags added, attributes
    /// merged; consent already recorded is kept). Default `true`; `false` leaves existing contacts as they are.
    pub update_existing: Option<bool>,
}

/// An import and its progress.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactImportView {
    pub id: Uuid,
    /// `dry_run`, `committing` or `committed`.
    #[schema(pattern = "^(dry_run|committing|committed)$")]
    pub status: String,
    /// Data rows in the file (blank lines are not rows).
    pub rows_total: i32,
    /// Rows the commit has written so far.
    pub rows_done: i32,
    /// Rows by outcome: `create`, `update`, `unchanged`, `duplicate_in_file`, `invalid`, `invalid_number`,
    /// `do_not_contact`. The dry run's until the commit ends, then the commit's.
    #[schema(value_type = BTreeMap<String, i64>)]
    pub summary: Value,
    /// How the file was read: `default_country`, `mapping`, `tags`, `consent_source`, `consented_at`,
    /// `update_existing`, and the columns it ignored (`ignored_columns`).
    #[schema(value_type = Object)]
    pub options: Value,
    /// Who ran it.
    pub created_by: String,
    /// Every row's outcome: `GET` it.
    pub rows_href: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<db::StoredImport> for ContactImportView {
    fn from(i: db::StoredImport) -> Self {
        Self {
            rows_href: format!("/v1/contact-imports/{}/rows", i.id),
            id: i.id,
            status: i.status,
            rows_total: i.rows_total,
            rows_done: i.rows_done,
            summary: i.summary,
            options: i.options,
            created_by: i.created_by,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// One row of the file and what it does.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactImportRowView {
    /// The line of the file (the header is line 1).
    pub line: i32,
    #[schema(pattern = "^(create|update|unchanged|duplicate_in_file|invalid|invalid_number|do_not_contact)$")]
    pub outcome: String,
    /// The number in E.164, or as written when it could not be read.
    pub phone: Option<String>,
    /// Why, in words: the field at fault, the line with the same number, the contact updated.
    pub detail: Option<String>,
    /// The contact written, once committed.
    pub contact_id: Option<Uuid>,
}

fn file_error(e: FileError) -> ApiError {
    let field = match e {
        FileError::UnknownColumn(_) | FileError::TwoColumns(..) => "mapping",
        _ => "csv",
    };
    let message = e.to_string();
    ApiError::validation(vec![FieldError { field: field.into(), message }])
}

/// Reads a file and decides every row against the tenant, writing nothing but the import: the dry run.
#[utoipa::path(tag = "contact imports", security(("bearer" = ["messaging:write"])),
    request_body = ContactImportRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The dry run", body = ContactImportView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 413, description = "payload_too_large: over 10 MiB", body = almoner_http::Problem),
        (status = 415, body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (`csv` for a file without a number \
            column, `mapping` for a column it names that is not in the file)", body = almoner_http::Problem),
    ))]
#[post("/v1/contact-imports", wrap = "from_fn(larger_body::<MAX_REQUEST_BYTES>)")]
#[tracing::instrument(skip_all, fields(import_id = tracing::field::Empty, rows = tracing::field::Empty))]
pub async fn create_import(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let input: ContactImportRequest = json_body(&req, &body)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let tenant_country = settings::get(&tx).await?.default_country;

    let mut errors = FieldErrors::new();
    let csv = errors.required("csv", input.csv.as_deref().filter(|c| !c.trim().is_empty()));
    if csv.is_some_and(|c| c.len() > import::MAX_FILE_BYTES) {
        errors.add("csv", "must be at most 10 MiB");
    }
    let consent_source = errors
        .required("consent_source", input.consent_source.as_deref())
        .and_then(|s| errors.parse("consent_source", optional_text(Some(s), 200)))
        .and_then(|s| {
            if s.is_none() {
                errors.add("consent_source", "must not be empty");
            }
            s
        });
    let consented_at = match input.consented_at.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        None => Some(None),
        Some(t) => errors.parse("consented_at", import::consent_time(t)).map(Some),
    };
    let country = match input.default_country.as_deref() {
        None => Some(tenant_country),
        Some(c) => errors.parse("default_country", Country::parse(c)),
    };
    let mut mapping = BTreeMap::new();
    for (header, field) in input.mapping.iter().flatten() {
        if let Some(field) = errors.parse(&format!("mapping.{header}"), Field::parse(field)) {
            mapping.insert(header.clone(), field);
        }
    }
    let tags = errors.parse("tags", Tags::parse(input.tags.as_deref().unwrap_or_default()));
    errors.finish()?;
    let (Some(csv), Some(consent_source), Some(consented_at), Some(country), Some(tags)) =
        (csv, consent_source, consented_at, country, tags)
    else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated import options missing")));
    };
    let options = Options {
        default_country: country,
        mapping,
        tags: tags.into_vec(),
        consent_source,
        consented_at,
        update_existing: input.update_existing.unwrap_or(true),
    };
    let file = import::read(csv, &options).map_err(file_error)?;

    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let phones: Vec<String> = file
        .rows
        .iter()
        .filter_map(|(_, r)| match r {
            ReadRow::Contact(c) => Some(c.phone.clone()),
            _ => None,
        })
        .collect();
    let existing = contacts::lock_by_phones(&tx, &phones).await?;
    let listed = do_not_contact::listed(&tx, &phones).await?;
    let mut seen = HashMap::new();
    let mut summary: BTreeMap<&'static str, i64> = Outcome::ALL.iter().map(|o| (o.as_str(), 0)).collect();
    let mut rows = Vec::with_capacity(file.rows.len());
    for (line, read) in &file.rows {
        let row = match read {
            ReadRow::Contact(data) => {
                let d = import::decide(data, *line, &mut seen, &existing, &listed, options.update_existing);
                db::ImportRow {
                    line: *line,
                    outcome: d.outcome,
                    phone: Some(data.phone.clone()),
                    detail: d.detail,
                    data: Some(serde_json::to_value(data).map_err(|e| ApiError::unexpected(e.into()))?),
                    contact_id: None,
                }
            }
            ReadRow::InvalidNumber { phone, reason } => db::ImportRow {
                line: *line,
                outcome: Outcome::InvalidNumber,
                phone: Some(phone.chars().take(40).collect()),
                detail: Some(reason.clone()),
                data: None,
                contact_id: None,
            },
            ReadRow::Invalid { phone, reason } => db::ImportRow {
                line: *line,
                outcome: Outcome::Invalid,
                phone: phone.clone(),
                detail: Some(reason.clone()),
                data: None,
                contact_id: None,
            },
        };
        *summary.entry(row.outcome.as_str()).or_default() += 1;
        rows.push(row);
    }
    let mut stored_options = serde_json::to_value(&options).map_err(|e| ApiError::unexpected(e.into()))?;
    stored_options["ignored_columns"] = json!(file.ignored_columns);
    let id = Uuid::now_v7();
    let span = tracing::Span::current();
    span.record("import_id", tracing::field::display(id));
    span.record("rows", rows.len());
    let stored = db::insert(&tx, id, &stored_options, &json!(summary), &actor(&principal), &rows).await?;
    let view = ContactImportView::from(stored);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/contact-imports/{id}"))).json(view))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ContactImportQuery {
    /// Only imports with this status: `dry_run`, `committing` or `committed`.
    #[param(pattern = r"^\s*(dry_run|committing|committed)\s*$")]
    pub status: Option<String>,
}

/// The tenant's contact imports, newest first.
#[utoipa::path(tag = "contact imports", security(("bearer" = ["messaging:read"])),
    params(ContactImportQuery, PageQuery),
    responses((status = 200, body = Page<ContactImportView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `status`, `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/contact-imports")]
#[tracing::instrument(skip_all)]
pub async fn list_imports(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<ContactImportQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let status = query.status.as_deref().map(str::trim);
    if let Some(status) = status
        && !["dry_run", "committing", "committed"].contains(&status)
    {
        errors.add("status", "must be dry_run, committing or committed");
    }
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = db::list(&tx, status, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |i| i.id).map(ContactImportView::from)))
}

/// An import and its progress.
#[utoipa::path(tag = "contact imports", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ContactImportView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/contact-imports/{id}")]
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn get_import(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "contact import")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact import"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ContactImportView::from(stored)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RowQuery {
    /// Only rows with this outcome.
    #[param(pattern = r"^\s*(create|update|unchanged|duplicate_in_file|invalid|invalid_number|do_not_contact)\s*$")]
    pub outcome: Option<String>,
}

/// The import's rows in line order, a page at a time, optionally of one outcome.
#[utoipa::path(tag = "contact imports", security(("bearer" = ["messaging:read"])),
    params(("id" = Uuid, Path), RowQuery, PageQuery),
    responses((status = 200, body = Page<ContactImportRowView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `outcome`, `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/contact-imports/{id}/rows")]
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn import_rows(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    query: web::Query<RowQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:read")?;
    let id = path_id(&id, "contact import")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<i64>(&mut errors);
    let outcome = match query.outcome.as_deref() {
        None => None,
        Some(o) => {
            let parsed = Outcome::parse(o);
            if parsed.is_none() {
                errors.add(
                    "outcome",
                    "must be create, update, unchanged, duplicate_in_file, invalid, invalid_number or do_not_contact",
                );
            }
            parsed
        }
    };
    errors.finish()?;
    let after = after.map(|line| i32::try_from(line).unwrap_or(i32::MAX));
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact import"))?;
    let found = db::rows(&tx, id, outcome, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |r| i64::from(r.line)).map(|r| ContactImportRowView {
        line: r.line,
        outcome: r.outcome.as_str().to_owned(),
        phone: r.phone,
        detail: r.detail,
        contact_id: r.contact_id,
    })))
}

/// Commits a dry run: the committer writes its rows in chunks (deciding each again against the tenant as it is
/// then), moving `rows_done` towards `rows_total`; poll `GET /v1/contact-imports/{id}` until `committed`.
#[utoipa::path(tag = "contact imports", security(("bearer" = ["messaging:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 202, description = "Queued", body = ContactImportView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the import is committing or committed already",
            body = almoner_http::Problem)))]
#[post("/v1/contact-imports/{id}/commit")]
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn commit_import(
    principal: Principal,
    pool: web::Data<Pool>,
    committer: web::Data<ImportCommitter>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("messaging:write")?;
    let id = path_id(&id, "contact import")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let stored = db::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact import"))?;
    if stored.status != "dry_run" {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!("the import is {}; only a dry run can be committed, once", stored.status),
        ));
    }
    db::queue_commit(&tx, id, tenant_id).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("contact import"))?;
    tx.commit().await?;
    committer.wake();
    Ok(HttpResponse::Accepted().json(ContactImportView::from(stored)))
}
