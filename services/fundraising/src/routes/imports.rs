//! `/v1/imports`: historical data from a CSV of donors and gifts. `POST` reads the file (sent in the body, or
//! uploaded to the storage service first and named by `object_id`) and runs a dry run: what each row would do,
//! with totals, and nothing but the import itself written. See `docs/import.md`.

use super::conventions::{Claim, claim, json_body, path_id, remember, replay_response};
use crate::app::imports::{ImportError, Options, OptionsRequest, read};
use crate::db::imports as db;
use crate::domain::import::{self, RowIds};
use crate::importer::ImportRunner;
use crate::storage::{CallerToken, MaxImportBytes, READ_SCOPE, ReadError, StorageClient, StorageError};
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use almoner_db::Pool;
use almoner_http::body::larger_body;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldError, FieldErrors, Page, PageQuery, Paging, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Largest import body: what the gateway lets through (`client_max_body_size`).
pub const MAX_IMPORT_BYTES: usize = 10 * 1024 * 1024;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_import)
        .service(list_imports)
        .service(get_import)
        .service(import_outcomes)
        .service(commit_import);
}

/// An import: the file and how to read it. The file is given one of two ways: `csv` in the body (up to 10 MiB),
/// or `object_id` naming a CSV uploaded to the storage service first (larger files).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// The CSV, a header line first (UTF-8, comma-separated, `"` quoting). Required unless `object_id` is given.
    #[schema(value_type = String)]
    pub csv: Option<String>,
    /// Instead of `csv`: the id of a CSV uploaded to the storage service (`POST /api/storage/v1/uploads`,
    /// purpose `import`, then completed), read from there with the caller's token (which needs `storage:read`
    /// as well). The import keeps its own copy of the file, as for `csv`.
    #[schema(value_type = Option<Uuid>)]
    pub object_id: Option<String>,
    /// Required: the system the data comes from (`legacy_crm`); donors' external ids and gifts' references are
    /// this source's, and imported gifts get it as their `source`.
    #[schema(required = true, value_type = String, pattern = r"^\s*[a-z0-9_.-]{1,50}\s*$")]
    pub source: Option<String>,
    /// Header → field, for headers not recognised (or read differently); see docs/import.md for the fields.
    #[schema(value_type = Option<BTreeMap<String, ImportField>>)]
    pub mapping: Option<BTreeMap<String, String>>,
    /// Donor matching rules, tried in order. Default `["external_id", "name_email", "name_postcode"]`: not
    /// `email` alone, which would make one donor of a couple sharing an address.
    #[schema(value_type = Option<Vec<DonorMatchRule>>)]
    pub donor_match: Option<Vec<String>>,
    /// Gift duplicate detection (default `reference`).
    #[schema(value_type = Option<GiftMatchRule>)]
    pub gift_match: Option<String>,
    /// With `donor_amount_date`: how many days apart still count as the same gift (default 0, at most 31).
    #[schema(minimum = 0, maximum = 31)]
    pub gift_match_days: Option<u32>,
    /// Fields taken out of a column by a pattern.
    pub patterns: Option<ImportPatterns>,
    /// Whether a `fund` value that is neither the code nor the name of a fund creates one (default `false`: the
    /// row is refused, `error: fund: no fund has the code or name ...`).
    pub create_missing_funds: Option<bool>,
}

/// Fields taken out of a column by a pattern rather than read whole.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportPatterns {
    /// For a row with a negative amount and no `refund_of` value: the reference of the gift it refunds, the first
    /// capture group of `pattern` in `column`, e.g. `{"column": "Notes", "pattern": "Refund of (.+)"}`.
    pub refund_of: Option<ColumnPattern>,
}

/// A column of the file and a pattern whose first capture group is taken from it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ColumnPattern {
    /// The column's header, as in the file (any column, including one that also holds a field, such as notes).
    #[schema(min_length = 1)]
    pub column: String,
    /// A regular expression (Rust `regex` syntax, linear-time: no look-around or backreferences) with a capture
    /// group; it may match anywhere in the value. A bad pattern, or one without a group, is a `422` naming
    /// `patterns.refund_of.pattern`.
    #[schema(min_length = 2, max_length = 500, example = "Refund of (.+)")]
    pub pattern: String,
}

/// A field a mapping can give a header.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Describes the accepted strings in the OpenAPI document; parsed by `import::Field`.
pub enum ImportField {
    DonorExternalId,
    Title,
    FirstName,
    LastName,
    Email,
    Phone,
    AddressLine1,
    AddressLine2,
    Town,
    County,
    Postcode,
    Country,
    GiftReference,
    Amount,
    Currency,
    GiftDate,
    Status,
    PaymentMethod,
    Fund,
    Campaign,
    Notes,
    RefundOf,
    GiftAidDeclaration,
    GiftAidDeclarationDate,
    GiftAidDeclarationMethod,
}

/// A donor matching rule: `external_id` (the donor's id in the source), `email`, `name_email` (first + last name
/// and email), `name_postcode`, `name_phone`. Names compare trimmed, with inner whitespace collapsed and case
/// folded; emails without case; postcodes without spaces or case.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Describes the accepted strings in the OpenAPI document; parsed by `import::DonorRule`.
pub enum DonorMatchRule {
    ExternalId,
    Email,
    NameEmail,
    NamePostcode,
    NamePhone,
}

/// How a gift already recorded is recognised: `reference` (the same reference from the same source) or
/// `donor_amount_date` (the same donor and amount, within `gift_match_days`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Describes the accepted strings in the OpenAPI document; parsed by `app::imports::Options`.
pub enum GiftMatchRule {
    Reference,
    DonorAmountDate,
}

/// An import and where it stands.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportView {
    pub id: Uuid,
    /// `dry_run`, `committing`, `committed` or `failed`.
    pub status: String,
    pub rows_total: i32,
    pub rows_done: i32,
    /// Rows by outcome: `create_donor`, `match_donor`, `duplicate_gift`, `refund`, `error`.
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    pub error: Option<String>,
    /// The object in the storage service the file was read from, when the import named one (`object_id`).
    pub object_id: Option<Uuid>,
    /// Every row's outcome, as CSV (`line,outcome`).
    pub outcomes_href: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<db::StoredImport> for ImportView {
    fn from(i: db::StoredImport) -> Self {
        Self {
            outcomes_href: format!("/v1/imports/{}/outcomes", i.id),
            id: i.id,
            status: i.status,
            rows_total: i.rows_total,
            rows_done: i.rows_done,
            summary: i.summary,
            options: i.options,
            error: i.error,
            object_id: i.object_id,
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// Where the import's file comes from.
enum FileSource {
    Body(String),
    Object(Uuid),
}

/// A `422` naming `object_id`.
fn bad_object(message: impl Into<String>) -> ApiError {
    ApiError::validation(vec![FieldError { field: "object_id".to_owned(), message: message.into() }])
}

/// Reads the CSV the client uploaded to storage as `object_id`, with the caller's token: streamed into one buffer
/// (at most `storage.max_import_bytes`), its length and SHA-256 checked against storage's. An object storage
/// does not have for this tenant, one that is not a CSV or not UTF-8, or one too large is the import's `422`
/// naming `object_id`; an upload not yet completed is `409 upload_missing`.
async fn read_uploaded_csv(
    storage: &StorageClient,
    max: MaxImportBytes,
    token: &CallerToken,
    object_id: Uuid,
) -> Result<String, ApiError> {
    let content = storage.content(token, object_id).await.map_err(|e| match e {
        StorageError::NotFound => {
            bad_object("the storage service has no such object for this tenant: upload the CSV there first")
        }
        StorageError::UploadMissing => {
            let mut error = ApiError::new(
                ErrorCode::UploadMissing,
                "the object's upload has not been completed: send its file with the upload link, then complete it \
                 (POST /api/storage/v1/uploads/{id}/complete)",
            );
            error.errors.push(FieldError {
                field: "object_id".to_owned(),
                message: "is an upload that has not been completed".to_owned(),
            });
            error
        }
        other => other.problem(READ_SCOPE),
    })?;
    let essence = content.content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !matches!(essence.as_str(), "text/csv" | "text/plain") {
        return Err(bad_object(format!("is a {essence} file; an import reads a CSV (text/csv)")));
    }
    let max = u64::try_from(max.0).unwrap_or(0);
    let bytes = content.read_all(max).await.map_err(|e| match e {
        ReadError::TooLarge { max } => bad_object(format!(
            "the file is larger than the {max} bytes an import reads (fundraising's storage.max_import_bytes)"
        )),
        ReadError::Storage(e) => e.problem(READ_SCOPE),
    })?;
    String::from_utf8(bytes).map_err(|e| {
        bad_object(format!(
            "is not UTF-8 text: byte {} is not UTF-8 (save the CSV as UTF-8)",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads a CSV of donors and gifts and reports, row by row, what importing it would do. Nothing is written but
/// the import (its file, options and outcomes), for the commit. The file is `csv`, or the CSV uploaded to the
/// storage service as `object_id` (the caller's token then needs `storage:read` as well): a file larger than the
/// 10 MiB a request body may hold is imported that way.
#[utoipa::path(tag = "imports", security(("bearer" = ["fundraising:write"]), ("bearer" = ["fundraising:write", "storage:read"])),
    request_body = ImportRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses((status = 201, description = "the dry run", body = ImportView),
        (status = 400, description = "malformed_request: the body is not JSON", body = almoner_http::Problem),
        (status = 401, body = almoner_http::Problem),
        (status = 403, description = "forbidden: the token lacks fundraising:write, or storage:read for an \
            object_id", body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused; upload_missing: the object_id's upload has not been \
            completed", body = almoner_http::Problem),
        (status = 413, description = "payload_too_large: over 10 MiB", body = almoner_http::Problem),
        (status = 415, description = "unsupported_media_type: not application/json", body = almoner_http::Problem),
        (status = 422, description = "validation_failed: the options (e.g. `patterns.refund_of.pattern`), the \
            headers (field `csv`), or `object_id` (no such object for the tenant, not a CSV, not UTF-8, too large)",
            body = almoner_http::Problem),
        (status = 503, description = "service_unavailable: the storage service or the database cannot be reached; retry shortly",
            body = almoner_http::Problem)))]
#[post("/v1/imports", wrap = "from_fn(larger_body::<MAX_IMPORT_BYTES>)")]
#[tracing::instrument(skip_all, fields(import_id = tracing::field::Empty, rows = tracing::field::Empty, object_id = tracing::field::Empty))]
pub async fn create_import(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    storage: web::Data<StorageClient>,
    max_import: web::Data<MaxImportBytes>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let mut input: ImportRequest = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let file = match (input.csv.take(), input.object_id.take()) {
        (Some(_), Some(_)) => {
            errors.add("object_id", "give the file either as csv or as object_id, not both");
            None
        }
        (Some(csv), None) => Some(FileSource::Body(csv)),
        (None, Some(raw)) => errors
            .parse(
                "object_id",
                Uuid::parse_str(raw.trim())
                    .map_err(|_| "must be the id (a UUID) of the object the CSV was uploaded as"),
            )
            .map(FileSource::Object),
        (None, None) => {
            errors.add("csv", "is required (or object_id, naming a CSV uploaded to the storage service)");
            None
        }
    };
    let options = Options::parse(&OptionsRequest {
        source: input.source.clone(),
        mapping: input.mapping.clone(),
        donor_match: input.donor_match.clone(),
        gift_match: input.gift_match.clone(),
        gift_match_days: input.gift_match_days,
        create_missing_funds: input.create_missing_funds,
        refund_of_pattern: input
            .patterns
            .as_ref()
            .and_then(|p| p.refund_of.as_ref())
            .map(|p| (p.column.clone(), p.pattern.clone())),
    });
    let options = match options {
        Ok(options) => Some(options),
        Err(ImportError::InvalidOptions(problems)) => {
            problems.into_iter().for_each(|p| errors.add(p.field, p.message));
            None
        }
        Err(other) => return Err(other.into()),
    };
    errors.finish()?;
    let (Some(options), Some(file)) = (options, file) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated import options missing")));
    };
    let (csv_text, object_id) = match file {
        FileSource::Body(csv) => (csv, None),
        FileSource::Object(object_id) => {
            tracing::Span::current().record("object_id", tracing::field::display(object_id));
            if !principal.has_scope(READ_SCOPE) {
                return Err(ApiError::forbidden(format!(
                    "this requires the scope {READ_SCOPE} as well: the file is read from the storage service"
                )));
            }
            let token = CallerToken::of(&req)?;
            (read_uploaded_csv(&storage, **max_import, &token, object_id).await?, Some(object_id))
        }
    };
    let (layout, rows) = read(&csv_text, &options)?;
    tracing::Span::current().record("rows", rows.len());

    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let (donors, gifts, funds, declarations) = futures::try_join!(
        db::donor_index(&tx, options.source.as_str()),
        db::gift_index(&tx, options.source.as_str()),
        db::fund_index(&tx),
        db::declaration_index(&tx)
    )?;
    let mut known = import::Known { donors, gifts, funds, declarations };
    let id = Uuid::now_v7();
    tracing::Span::current().record("import_id", tracing::field::display(id));
    let decided = import::decide(rows, &mut known, options.rules(), RowIds::new(id));
    let mut summary: BTreeMap<&str, i64> =
        ["create_donor", "match_donor", "duplicate_gift", "refund", "error"].into_iter().map(|k| (k, 0)).collect();
    let outcomes: Vec<db::OutcomeRow> = decided
        .iter()
        .map(|(line, outcome, _)| {
            *summary.entry(outcome.kind()).or_default() += 1;
            (i32::try_from(*line).unwrap_or(i32::MAX), outcome.kind(), outcome.describe())
        })
        .collect();
    let options_json = options.to_stored(&layout);
    let summary = serde_json::to_value(&summary).map_err(|e| ApiError::unexpected(e.into()))?;
    let stored = db::insert(&tx, id, &options_json, csv_text.as_bytes(), object_id, &summary, &outcomes).await?;
    let view = ImportView::from(stored);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/imports/{id}"))).json(view))
}

/// An import's status, as `GET /v1/imports?status=` filters by it.
const STATUSES: [&str; 4] = ["dry_run", "committing", "committed", "failed"];

#[derive(Debug, Deserialize, IntoParams)]
pub struct ImportQuery {
    /// Only imports with this status: `dry_run`, `committing`, `committed` or `failed`.
    #[param(pattern = r"^\s*(dry_run|committing|committed|failed)\s*$")]
    pub status: Option<String>,
}

/// The tenant's imports, newest first: dry runs waiting for a decision, commits under way, and what each did.
#[utoipa::path(tag = "imports", security(("bearer" = ["fundraising:read"])),
    params(ImportQuery, PageQuery),
    responses((status = 200, body = Page<ImportView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: `status`, `limit` or `cursor`", body = almoner_http::Problem)))]
#[get("/v1/imports")]
#[tracing::instrument(skip_all)]
pub async fn list_imports(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<ImportQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let status = query.status.as_deref().map(str::trim);
    if let Some(status) = status
        && !STATUSES.contains(&status)
    {
        errors.add("status", "must be dry_run, committing, committed or failed");
    }
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = db::list(&tx, status, after, limit.fetch()).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(Page::from_rows(found, limit, |i| i.id).map(ImportView::from)))
}

/// An import and its progress.
#[utoipa::path(tag = "imports", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = ImportView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/imports/{id}")]
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn get_import(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "import")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("import"))?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(ImportView::from(stored)))
}

/// Every row's outcome as CSV: `line,outcome`.
#[utoipa::path(tag = "imports", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "line,outcome rows", content_type = "text/csv"),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem)))]
#[get("/v1/imports/{id}/outcomes")]
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn import_outcomes(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "import")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("import"))?;
    let rows = db::outcomes(&tx, id).await?;
    tx.commit().await?;
    let mut out = String::from("line,outcome\r\n");
    for (line, outcome) in rows {
        let quoted = if outcome.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", outcome.replace('"', "\"\""))
        } else {
            outcome
        };
        out.push_str(&format!("{line},{quoted}\r\n"));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("content-disposition", format!("attachment; filename=\"import-{id}-outcomes.csv\"")))
        .body(out))
}

/// Commits a dry run: a job writes its rows (again decided against the tenant as it is then) in chunks, recording
/// progress (`rows_done` of `rows_total`) as it goes; poll `GET /v1/imports/{id}` until `committed`.
#[utoipa::path(tag = "imports", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 202, description = "the job is queued", body = ImportView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "the import is not a dry run (committing or committed already)",
            body = almoner_http::Problem)))]
#[post("/v1/imports/{id}/commit")]
#[tracing::instrument(skip_all, fields(import_id = %id))]
pub async fn commit_import(
    principal: Principal,
    pool: web::Data<Pool>,
    runner: web::Data<ImportRunner>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "import")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let status = db::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("import"))?;
    if status != "dry_run" {
        return Err(ApiError::new(
            almoner_http::ErrorCode::Conflict,
            format!("the import is {status}; only a dry run can be committed, once"),
        ));
    }
    db::queue_commit(&tx, id, tenant_id).await?;
    let stored = db::get(&tx, id).await?.ok_or_else(|| ApiError::not_found("import"))?;
    tx.commit().await?;
    runner.wake();
    Ok(HttpResponse::Accepted().json(ImportView::from(stored)))
}
