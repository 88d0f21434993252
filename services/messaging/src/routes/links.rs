//! `/l/{code}`: a short link. It redirects (`302`) to the URL it stands for and records the click with its time,
//! contact and user agent, flagged as a bot's when it is a link preview or a prefetch (`HEAD`, `Purpose:
//! prefetch`, a crawler's user agent): those are kept and not counted as people. No token: anyone holding the
//! message may follow it; the code (10 of 62 characters) is not guessable.

use crate::domain::links;
use actix_web::{HttpRequest, HttpResponse, route, web};
use almoner_db::Pool;
use almoner_http::ApiError;
use almoner_http::endpoints::ServiceConfig;
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(follow_link);
}

/// Follows a short link.
#[utoipa::path(tag = "links", security(()),
    params(("code" = String, Path, description = "10 letters and digits", pattern = "^[0-9A-Za-z]{10}$")),
    responses((status = 302, description = "To the link's URL (`Location`)"),
        (status = 404, description = "not_found: no such link", body = almoner_http::Problem)))]
#[route("/l/{code}", method = "GET", method = "HEAD")]
#[tracing::instrument(skip_all)]
pub async fn follow_link(
    req: HttpRequest,
    pool: web::Data<Pool>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let code = code.into_inner();
    if !links::is_code(&code) {
        return Err(ApiError::not_found("link"));
    }
    let tx = pool.system_tx().await?;
    let found = tx
        .query_opt("SELECT tenant_id, campaign_id, contact_id, url FROM short_links WHERE code = $1", &[&code])
        .await?;
    tx.commit().await?;
    let Some(row) = found else { return Err(ApiError::not_found("link")) };
    let (tenant_id, campaign_id, contact_id, url): (Uuid, Uuid, Uuid, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let user_agent = header("user-agent").map(|a| a.chars().take(500).collect::<String>());
    let purpose = header("sec-purpose").or_else(|| header("purpose"));
    let bot = links::is_bot(req.method().as_str(), user_agent.as_deref(), purpose);
    let tx = pool.tenant_tx(tenant_id).await?;
    tx.execute(
        "INSERT INTO link_clicks (id, code, campaign_id, contact_id, user_agent, bot) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&Uuid::now_v7(), &code, &campaign_id, &contact_id, &user_agent, &bot],
    )
    .await?;
    tx.commit().await?;
    tracing::info!(bot, "short link followed");
    Ok(HttpResponse::Found().insert_header(("location", url)).insert_header(("cache-control", "no-store")).finish())
}
