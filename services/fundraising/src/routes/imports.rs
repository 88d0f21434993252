//! `/v1/imports`: historical data from a CSV of donors and gifts. `POST` reads the file and runs a dry run: what
//! each row would do, with totals, and nothing but the import itself written. See `docs/import.md`.

use super::conventions::{Claim, claim, json_body, path_id, remember, replay_response};
use crate::app::imports::{ImportError, Options, OptionsRequest, read};
use crate::db::imports as db;
use crate::domain::import::{self, RowIds};
use crate::importer::ImportRunner;
use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use almoner_db::Pool;
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, FieldErrors, Principal};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::rc::Rc;
use utoipa::ToSchema;
use uuid::Uuid;

/// Largest import body: what the gateway lets through (`client_max_body_size`).
pub const MAX_IMPORT_BYTES: usize = 10 * 1024 * 1024;

/// Lets `POST /v1/imports` read a body of up to [`MAX_IMPORT_BYTES`] where every other route keeps the service's
/// `server.body_limit_bytes`. Wrapped around that one route by its route macro: a route macro cannot carry
/// `app_data` itself, and a `/v1/imports` scope would swallow its paths' other methods (no 405). A larger body is
/// refused by the body extractor with 413, rendered as problem+json like every other.
async fn import_body_limit(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut data = Extensions::new();
    data.insert(web::PayloadConfig::new(MAX_IMPORT_BYTES));
    // Looked up before the app's own containers, so this limit wins over the service-wide one.
    req.add_data_container(Rc::new(data));
    next.call(req).await
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_import).service(get_import).service(import_outcomes).service(commit_import);
}

/// An import: the file and how to read it.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    /// Required: the CSV, a header line first (UTF-8, comma-separated, `"` quoting).
    #[schema(required = true, value_type = String)]
    pub csv: Option<String>,
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
            created_at: i.created_at,
            updated_at: i.updated_at,
        }
    }
}

/// Reads a CSV of donors and gifts and reports, row by row, what importing it would do. Nothing is written but
/// the import (its file, options and outcomes), for the commit.
#[utoipa::path(tag = "imports", security(("bearer" = ["fundraising:write"])),
    request_body = ImportRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses((status = 201, description = "the dry run", body = ImportView),
        (status = 400, description = "malformed_request: the body is not JSON", body = almoner_http::Problem),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "idempotency_key_reused", body = almoner_http::Problem),
        (status = 413, description = "payload_too_large: over 10 MiB", body = almoner_http::Problem),
        (status = 415, description = "unsupported_media_type: not application/json", body = almoner_http::Problem),
        (status = 422, description = "validation_failed: the options (e.g. `patterns.refund_of.pattern`), or the \
            headers (field `csv`)", body = almoner_http::Problem)))]
#[post("/v1/imports", wrap = "from_fn(import_body_limit)")]
#[tracing::instrument(skip_all, fields(import_id = tracing::field::Empty, rows = tracing::field::Empty))]
pub async fn create_import(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let input: ImportRequest = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let csv_text = errors.required("csv", input.csv.as_deref()).unwrap_or_default();
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
    let Some(options) = options else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated import options missing")));
    };
    let (layout, rows) = read(csv_text, &options)?;
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
    let stored = db::insert(&tx, id, &options_json, csv_text.as_bytes(), &summary, &outcomes).await?;
    let view = ImportView::from(stored);
    remember(&tx, &key, 201, &view).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/imports/{id}"))).json(view))
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
