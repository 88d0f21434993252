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
    pub csv: Option<String>,
    /// Required: the system the data comes from (`legacy_crm`); donors' external ids and gifts' references are
    /// this source's, and imported gifts get it as their `source`.
    pub source: Option<String>,
    /// Header → field, for headers not recognised (or read differently); see docs/import.md for the fields.
    pub mapping: Option<BTreeMap<String, String>>,
    /// Donor matching rules, tried in order: `external_id`, `email`, `name_email`, `name_postcode`, `name_phone`.
    /// Default `["external_id", "email"]`.
    pub donor_match: Option<Vec<String>>,
    /// Gift duplicate detection: `reference` (default) or `donor_amount_date`.
    pub gift_match: Option<String>,
    /// With `donor_amount_date`: how many days apart still count as the same gift (default 0, at most 31).
    pub gift_match_days: Option<u32>,
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
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 413, body = almoner_http::Problem),
        (status = 422, description = "validation_failed: the options, or the headers (field `csv`)",
            body = almoner_http::Problem)))]
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
    let (layout, rows) = read(csv_text, &options.mapping)?;
    tracing::Span::current().record("rows", rows.len());

    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let (mut donors, mut gifts) = futures::try_join!(
        db::donor_index(&tx, options.source.as_str()),
        db::gift_index(&tx, options.source.as_str())
    )?;
    let id = Uuid::now_v7();
    tracing::Span::current().record("import_id", tracing::field::display(id));
    let decided =
        import::decide(rows, &mut donors, &mut gifts, &options.donor_rules, options.gift_rule, RowIds::new(id));
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
