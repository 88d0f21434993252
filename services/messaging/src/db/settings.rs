//! A tenant's SMS settings; no row means the defaults (the columns' own, see migrations 0001 and 0002).

use crate::domain::Country;
use almoner_db::{Result, Transaction};
use chrono::{DateTime, NaiveTime, Utc};
use tokio_postgres::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredSettings {
    pub default_country: Country,
    pub opt_out_text: String,
    pub help_text: String,
    pub quiet_start: NaiveTime,
    pub quiet_end: NaiveTime,
    pub time_zone: String,
    pub budget_currency: String,
    pub daily_budget_micros: i64,
    pub monthly_budget_micros: i64,
    pub daily_segment_limit: Option<i32>,
    pub monthly_segment_limit: Option<i32>,
    pub price_per_segment_micros: i64,
    /// The tenant's own base for short links; `None`: the installation's.
    pub links_base_url: Option<String>,
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    pub paused_by: Option<String>,
    pub revision: i64,
    pub updated_at: DateTime<Utc>,
}

/// What staff set (the time zone is identity's, the kill switch has its own calls).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsFields {
    pub default_country: Country,
    pub opt_out_text: String,
    pub help_text: String,
    pub quiet_start: NaiveTime,
    pub quiet_end: NaiveTime,
    pub daily_budget_micros: i64,
    pub monthly_budget_micros: i64,
    pub daily_segment_limit: Option<i32>,
    pub monthly_segment_limit: Option<i32>,
    pub price_per_segment_micros: i64,
    pub links_base_url: Option<String>,
}

impl StoredSettings {
    pub fn fields(&self) -> SettingsFields {
        SettingsFields {
            default_country: self.default_country,
            opt_out_text: self.opt_out_text.clone(),
            help_text: self.help_text.clone(),
            quiet_start: self.quiet_start,
            quiet_end: self.quiet_end,
            daily_budget_micros: self.daily_budget_micros,
            monthly_budget_micros: self.monthly_budget_micros,
            daily_segment_limit: self.daily_segment_limit,
            monthly_segment_limit: self.monthly_segment_limit,
            price_per_segment_micros: self.price_per_segment_micros,
            links_base_url: self.links_base_url.clone(),
        }
    }
}

const COLUMNS: &str = "default_country, opt_out_text, help_text, quiet_start, quiet_end, time_zone, budget_currency, \
     daily_budget_micros, monthly_budget_micros, daily_segment_limit, monthly_segment_limit, price_per_segment_micros, \
     links_base_url, paused, paused_at, paused_by, revision, updated_at";

fn stored(row: &Row) -> StoredSettings {
    StoredSettings {
        default_country: Country::parse(row.get::<_, &str>("default_country")).unwrap_or(Country::Gb),
        opt_out_text: row.get("opt_out_text"),
        help_text: row.get("help_text"),
        quiet_start: row.get("quiet_start"),
        quiet_end: row.get("quiet_end"),
        time_zone: row.get("time_zone"),
        budget_currency: row.get("budget_currency"),
        daily_budget_micros: row.get("daily_budget_micros"),
        monthly_budget_micros: row.get("monthly_budget_micros"),
        daily_segment_limit: row.get("daily_segment_limit"),
        monthly_segment_limit: row.get("monthly_segment_limit"),
        price_per_segment_micros: row.get("price_per_segment_micros"),
        links_base_url: row.get("links_base_url"),
        paused: row.get("paused"),
        paused_at: row.get("paused_at"),
        paused_by: row.get("paused_by"),
        revision: row.get("revision"),
        updated_at: row.get("updated_at"),
    }
}

/// The tenant's settings. A tenant without a row gets one with the defaults (the columns' own) at revision 1, so
/// that the defaults live in one place, the migration.
#[tracing::instrument(skip_all)]
pub async fn get(tx: &Transaction) -> Result<StoredSettings> {
    if let Some(row) = tx.query_opt(&format!("SELECT {COLUMNS} FROM settings"), &[]).await? {
        return Ok(stored(&row));
    }
    tx.execute("INSERT INTO settings DEFAULT VALUES ON CONFLICT (tenant_id) DO NOTHING", &[]).await?;
    Ok(stored(&tx.query_one(&format!("SELECT {COLUMNS} FROM settings"), &[]).await?))
}

/// Locks the tenant's settings row (made with the defaults if need be) until the transaction ends.
#[tracing::instrument(skip_all)]
pub async fn lock(tx: &Transaction) -> Result<StoredSettings> {
    tx.execute("INSERT INTO settings DEFAULT VALUES ON CONFLICT (tenant_id) DO NOTHING", &[]).await?;
    Ok(stored(&tx.query_one(&format!("SELECT {COLUMNS} FROM settings FOR UPDATE"), &[]).await?))
}

/// Stores what staff set, at the next revision.
#[tracing::instrument(skip_all)]
pub async fn put(tx: &Transaction, f: &SettingsFields) -> Result<StoredSettings> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE settings SET default_country = $1, opt_out_text = $2, help_text = $3, quiet_start = $4, \
                 quiet_end = $5, daily_budget_micros = $6, monthly_budget_micros = $7, daily_segment_limit = $8, \
                 monthly_segment_limit = $9, price_per_segment_micros = $10, links_base_url = $11, \
                 revision = revision + 1, updated_at = now() RETURNING {COLUMNS}"
            ),
            &[
                &f.default_country.as_str(),
                &f.opt_out_text,
                &f.help_text,
                &f.quiet_start,
                &f.quiet_end,
                &f.daily_budget_micros,
                &f.monthly_budget_micros,
                &f.daily_segment_limit,
                &f.monthly_segment_limit,
                &f.price_per_segment_micros,
                &f.links_base_url,
            ],
        )
        .await?;
    Ok(stored(&row))
}

/// Turns the kill switch on or off (at the next revision); who did it is kept while it is on.
#[tracing::instrument(skip_all, fields(paused))]
pub async fn set_paused(tx: &Transaction, paused: bool, by: &str) -> Result<StoredSettings> {
    let row = tx
        .query_one(
            &format!(
                "UPDATE settings SET paused = $1, paused_at = CASE WHEN $1 THEN now() END, \
                 paused_by = CASE WHEN $1 THEN $2 END, revision = revision + 1, updated_at = now() \
                 RETURNING {COLUMNS}"
            ),
            &[&paused, &by],
        )
        .await?;
    Ok(stored(&row))
}

/// Keeps identity's time zone for the tenant, when `revision` is newer than the one held; whether it changed.
#[tracing::instrument(skip_all, fields(revision))]
pub async fn apply_identity(tx: &Transaction, revision: i64, time_zone: &str) -> Result<bool> {
    tx.execute("INSERT INTO settings DEFAULT VALUES ON CONFLICT (tenant_id) DO NOTHING", &[]).await?;
    Ok(tx
        .execute(
            "UPDATE settings SET time_zone = $2, identity_revision = $1 WHERE identity_revision < $1",
            &[&revision, &time_zone],
        )
        .await?
        > 0)
}
