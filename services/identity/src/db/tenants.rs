use almoner_db::{Result, Transaction};
use almoner_events::identity::AccountingPeriodEnd;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: Uuid,
    pub name: String,
    /// Month (1-12) the tenant's fiscal year starts; April for most UK charities.
    pub fiscal_year_start_month: i16,
    /// The last day of the tenant's accounting period, from which Gift Aid's 4-year limit runs: the one set, or
    /// the day before the fiscal year starts.
    pub accounting_period_end: PeriodEnd,
    /// IANA time zone name, e.g. `Europe/London` (the default): local times and quiet hours follow it.
    pub time_zone: String,
    /// Increases with every change.
    pub revision: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A month and day on which an accounting period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodEnd {
    #[schema(minimum = 1, maximum = 12)]
    pub month: i16,
    /// 1 to the month's last day; 29 in February means its last day in every year.
    #[schema(minimum = 1, maximum = 31)]
    pub day: i16,
}

impl From<AccountingPeriodEnd> for PeriodEnd {
    fn from(end: AccountingPeriodEnd) -> Self {
        Self { month: i16::from(end.month), day: i16::from(end.day) }
    }
}

const COLUMNS: &str = "id, name, fiscal_year_start_month, accounting_period_end_month, accounting_period_end_day, \
    time_zone, revision, created_at, updated_at";

impl From<Row> for Tenant {
    fn from(row: Row) -> Self {
        let fiscal_year_start_month: i16 = row.get("fiscal_year_start_month");
        let month: Option<i16> = row.get("accounting_period_end_month");
        let day: Option<i16> = row.get("accounting_period_end_day");
        let accounting_period_end = match (month, day) {
            (Some(month), Some(day)) => PeriodEnd { month, day },
            _ => AccountingPeriodEnd::before_fiscal_year(u8::try_from(fiscal_year_start_month).unwrap_or(4)).into(),
        };
        Self {
            id: row.get("id"),
            name: row.get("name"),
            fiscal_year_start_month,
            accounting_period_end,
            time_zone: row.get("time_zone"),
            revision: row.get("revision"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        }
    }
}

impl Tenant {
    /// The state-carrying event for this tenant as it is now.
    pub fn updated_event(&self) -> almoner_events::identity::TenantUpdatedV1 {
        almoner_events::identity::TenantUpdatedV1 {
            tenant_id: self.id,
            revision: self.revision,
            name: self.name.clone(),
            fiscal_year_start_month: u8::try_from(self.fiscal_year_start_month).unwrap_or(4),
            accounting_period_end: AccountingPeriodEnd::new(
                u8::try_from(self.accounting_period_end.month).unwrap_or(0),
                u8::try_from(self.accounting_period_end.day).unwrap_or(0),
            ),
            time_zone: Some(self.time_zone.clone()),
            updated_at: self.updated_at,
        }
    }
}

/// Inserts the tenant of a transaction opened for its (new) id.
#[tracing::instrument(skip_all, fields(tenant_id = %id))]
pub async fn insert(tx: &Transaction, id: Uuid, name: &str) -> Result<Tenant> {
    let sql = format!("INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING {COLUMNS}");
    tx.query_one(&sql, &[&id, &name]).await.map(Tenant::from)
}

#[tracing::instrument(skip_all)]
pub async fn current(tx: &Transaction) -> Result<Option<Tenant>> {
    let sql = format!("SELECT {COLUMNS} FROM tenants");
    Ok(tx.query_opt(&sql, &[]).await?.map(Tenant::from))
}

/// The settings a change sets; `None` leaves one as it is.
#[derive(Debug, Default)]
pub struct TenantChange<'a> {
    pub name: Option<&'a str>,
    pub fiscal_year_start_month: Option<i16>,
    /// `Some(None)` goes back to the default (the day before the fiscal year starts).
    pub accounting_period_end: Option<Option<PeriodEnd>>,
    pub time_zone: Option<&'a str>,
}

/// Changes the given settings of the transaction's tenant and bumps its revision.
#[tracing::instrument(skip_all)]
pub async fn update(tx: &Transaction, change: &TenantChange<'_>) -> Result<Option<Tenant>> {
    let sql = format!(
        "UPDATE tenants SET name = COALESCE($1, name), \
         fiscal_year_start_month = COALESCE($2, fiscal_year_start_month), \
         accounting_period_end_month = CASE WHEN $3 THEN $4 ELSE accounting_period_end_month END, \
         accounting_period_end_day = CASE WHEN $3 THEN $5 ELSE accounting_period_end_day END, \
         time_zone = COALESCE($6, time_zone), \
         revision = revision + 1, updated_at = now() RETURNING {COLUMNS}"
    );
    let set_end = change.accounting_period_end.is_some();
    let end = change.accounting_period_end.flatten();
    let (end_month, end_day) = (end.map(|e| e.month), end.map(|e| e.day));
    Ok(tx
        .query_opt(
            &sql,
            &[&change.name, &change.fiscal_year_start_month, &set_end, &end_month, &end_day, &change.time_zone],
        )
        .await?
        .map(Tenant::from))
}
