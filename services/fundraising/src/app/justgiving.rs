//! Pulling donations from JustGiving, which has no webhooks for them: for each configured fundraising page,
//! read its donations (newest first, a result page at a time) until reaching donations already seen, and stage
//! each new one for a person to choose its donor. A pulled donation's gift is never claimed for Gift Aid by the
//! charity: JustGiving claims it itself.
//!
//! The fetch happens outside any database transaction; the page's pull lease (taken and given back in short
//! transactions) keeps two replicas, or the schedule and a manual pull, from pulling one page at once. A failure
//! (network, a 5xx, a 429, an answer that cannot be read, an unknown page or app id) is recorded on the page and
//! the next run tries again from the same place: nothing fetched by a failed pull is kept.
//!
//! Paging relies on JustGiving listing a page's donations newest first, as its page shows them, and on donation
//! ids growing: a pull stops after the first result page holding a donation at or below the highest id seen.

use crate::db::justgiving::{self as db, StoredPage};
use crate::db::payments as payments_db;
use crate::domain::justgiving::{DonationsPage, describe_errors, parse_donations};
use almoner_db::{DbError, Pool};
use chrono::Utc;
use std::time::Duration;
use uuid::Uuid;

/// Donations asked for per result page (the documentation's example page size).
pub const PAGE_SIZE: u32 = 50;
/// Result pages one pull reads at most (50 000 donations): a guard against an answer whose paging never ends,
/// not a limit a real page meets.
const MAX_PAGES: u32 = 1000;
/// How long a pull may hold its page before another may take it (a replica that died mid-pull).
const LEASE: Duration = Duration::from_secs(600);
/// Each request's limit.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Talks to JustGiving's API at a base URL (`https://api.justgiving.com`, or a fake in tests).
#[derive(Debug, Clone)]
pub struct JustGivingClient {
    http: reqwest::Client,
    base_url: String,
}

/// Why a fetch failed; each is recorded on the page as its `last_error`.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// JustGiving does not know the page (404).
    #[error("JustGiving does not know the page: {0}")]
    UnknownPage(String),
    /// JustGiving refused the request (another 4xx: the app id, most likely).
    #[error("JustGiving refused the request ({status}): {detail}")]
    Refused { status: u16, detail: String },
    /// Worth trying again later: no answer, a 5xx, a 429.
    #[error("JustGiving is unavailable: {0}")]
    Unavailable(String),
    #[error("JustGiving's answer cannot be read: {0}")]
    Unreadable(String),
}

impl JustGivingClient {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    /// One result page of a fundraising page's donations (`page_num` from 1).
    #[tracing::instrument(skip_all, fields(short_name = short_name, page_num))]
    pub async fn donations(&self, app_id: &str, short_name: &str, page_num: u32) -> Result<DonationsPage, FetchError> {
        // The short name is `[A-Za-z0-9_-]` with an optional `page/` (PageShortName), safe in a path as it is.
        let url = format!(
            "{}/{app_id}/v1/fundraising/pages/{short_name}/donations?pageSize={PAGE_SIZE}&pageNum={page_num}",
            self.base_url
        );
        let mut headers = reqwest::header::HeaderMap::new();
        almoner_telemetry::inject_http(&mut headers);
        let response = self
            .http
            .get(&url)
            .headers(headers)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Unavailable(format!("no answer: {e}")))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| FetchError::Unavailable(format!("answer cut short: {e}")))?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let detail = || json.as_ref().and_then(describe_errors).unwrap_or_else(|| status.to_string());
        if status.is_success() {
            let json = json.ok_or_else(|| FetchError::Unreadable("the body is not JSON".into()))?;
            return parse_donations(&json).map_err(|e| FetchError::Unreadable(e.0));
        }
        Err(match status.as_u16() {
            404 => FetchError::UnknownPage(detail()),
            429 => FetchError::Unavailable(format!("rate limited: {}", detail())),
            s if s >= 500 => FetchError::Unavailable(detail()),
            s => FetchError::Refused { status: s, detail: detail() },
        })
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub enum PullOutcome {
    Pulled {
        page: StoredPage,
        /// Result pages read.
        pages_read: u32,
        /// Donations read that were not seen before.
        new_donations: u32,
        /// Of them, staged now.
        staged: u32,
        /// Of them, not staged: not accepted (pending, cancelled...) or with a hidden amount.
        passed_over: u32,
    },
    /// The pull failed; the page records why.
    Failed { page: StoredPage, error: String },
    /// Another pull of the page is running.
    Busy,
    /// No such page.
    NotFound,
}

/// Pulls one page of the tenant now.
#[tracing::instrument(skip_all, fields(tenant_id = %tenant_id, page_id = %page_id))]
pub async fn pull_page(
    pool: &Pool,
    client: &JustGivingClient,
    tenant_id: Uuid,
    page_id: Uuid,
) -> Result<PullOutcome, DbError> {
    let (page, app_id) = {
        let tx = pool.tenant_tx(tenant_id).await?;
        let until = Utc::now() + LEASE;
        let Some(page) = db::take_lease(&tx, page_id, until).await? else {
            let exists = db::get_page(&tx, page_id).await?.is_some();
            tx.commit().await?;
            return Ok(if exists { PullOutcome::Busy } else { PullOutcome::NotFound });
        };
        let app_id = db::app_id(&tx).await?.map(|(id, _)| id);
        tx.commit().await?;
        (page, app_id)
    };
    let fetched = match app_id {
        Some(app_id) => fetch_new(client, &app_id, &page).await,
        None => Err("no JustGiving app id is set (PUT /v1/justgiving/settings)".to_owned()),
    };
    let tx = pool.tenant_tx(tenant_id).await?;
    let outcome = match fetched {
        Err(error) => {
            tracing::warn!(short_name = %page.short_name, %error, "JustGiving pull failed; trying again next run");
            match db::record_failure(&tx, page_id, &error).await? {
                Some(page) => PullOutcome::Failed { page, error },
                None => PullOutcome::NotFound,
            }
        }
        Ok((new, pages_read)) => {
            let (mut staged, mut passed_over) = (0, 0);
            for donation in &new {
                let payment = donation.payment().filter(|_| donation.accepted);
                let Some(payment) = payment else {
                    passed_over += 1;
                    continue;
                };
                let provider = payment.provider.as_str();
                payments_db::lock_reference(&tx, provider, &payment.reference).await?;
                if payments_db::payment_recorded(&tx, provider, &payment.reference).await? {
                    continue;
                }
                if db::stage_donation(&tx, &payment, donation, &page).await? {
                    staged += 1;
                }
            }
            let highest = new.iter().map(|d| d.id).max();
            let recorded = db::record_success(
                &tx,
                page_id,
                highest,
                i32::try_from(pages_read).unwrap_or(i32::MAX),
                i64::from(staged),
            )
            .await?;
            tracing::info!(short_name = %page.short_name, new = new.len(), staged, passed_over, pages_read,
                "JustGiving page pulled");
            match recorded {
                Some(page) => PullOutcome::Pulled {
                    page,
                    pages_read,
                    new_donations: u32::try_from(new.len()).unwrap_or(u32::MAX),
                    staged,
                    passed_over,
                },
                None => PullOutcome::NotFound,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// The page's donations newer than the highest seen, and how many result pages were read.
async fn fetch_new(
    client: &JustGivingClient,
    app_id: &str,
    page: &StoredPage,
) -> Result<(Vec<crate::domain::justgiving::Donation>, u32), String> {
    let mut new = Vec::new();
    let mut page_num = 1;
    loop {
        let result = client.donations(app_id, &page.short_name, page_num).await.map_err(|e| e.to_string())?;
        let reached_seen = page.highest_donation_id.is_some_and(|seen| result.donations.iter().any(|d| d.id <= seen));
        let empty = result.donations.is_empty();
        new.extend(result.donations.into_iter().filter(|d| page.highest_donation_id.is_none_or(|seen| d.id > seen)));
        if reached_seen || empty || page_num >= result.total_pages {
            return Ok((new, page_num));
        }
        if page_num >= MAX_PAGES {
            return Err(format!("more than {MAX_PAGES} result pages: stopped"));
        }
        page_num += 1;
    }
}

/// Pulls every page of every tenant once; returns how many donations were staged.
#[tracing::instrument(skip_all)]
pub async fn pull_all(pool: &Pool, client: &JustGivingClient) -> Result<u32, DbError> {
    let tenants = {
        let tx = pool.system_tx().await?;
        let tenants = crate::db::tenants::known(&tx).await?;
        tx.commit().await?;
        tenants
    };
    let mut staged = 0;
    for tenant_id in tenants {
        let pages = {
            let tx = pool.tenant_tx(tenant_id).await?;
            let pages = db::page_ids(&tx).await?;
            tx.commit().await?;
            pages
        };
        for page_id in pages {
            if let PullOutcome::Pulled { staged: n, .. } = pull_page(pool, client, tenant_id, page_id).await? {
                staged += n;
            }
        }
    }
    Ok(staged)
}

/// Runs [`pull_all`] every `every` until shutdown.
pub async fn run_pull_job(
    pool: Pool,
    client: JustGivingClient,
    every: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = pull_all(&pool, &client) => match result {
                Ok(0) => {}
                Ok(staged) => tracing::info!(staged, "JustGiving donations staged"),
                Err(error) => tracing::warn!(%error, "could not pull from JustGiving; trying again later"),
            },
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
