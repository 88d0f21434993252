//! The transaction's tenant's chat widget settings (the column defaults when it has no row yet) and the reply mails
//! sent to its members.

use crate::domain::widget::{DEFAULT_ACCENT_COLOUR, DEFAULT_GREETING};
use almoner_db::{Result, Transaction};
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

/// A tenant's widget settings as stored, the secret still sealed.
#[derive(Debug, Clone)]
pub struct StoredWidget {
    pub secret_sealed: Option<Vec<u8>>,
    pub secret_rotated_at: Option<DateTime<Utc>>,
    pub allowed_origins: Vec<String>,
    pub identity_required: bool,
    pub greeting: String,
    pub accent_colour: String,
    pub notify_email_on_reply: bool,
    pub reply_mail_url: Option<String>,
    /// 0 until the settings are first changed.
    pub revision: i64,
    /// `None` until the settings are first changed.
    pub updated_at: Option<DateTime<Utc>>,
}

impl StoredWidget {
    /// A tenant's settings before it has changed any: the table's column defaults.
    pub fn defaults() -> Self {
        Self {
            secret_sealed: None,
            secret_rotated_at: None,
            allowed_origins: Vec::new(),
            identity_required: true,
            greeting: DEFAULT_GREETING.to_owned(),
            accent_colour: DEFAULT_ACCENT_COLOUR.to_owned(),
            notify_email_on_reply: true,
            reply_mail_url: None,
            revision: 0,
            updated_at: None,
        }
    }

    fn from_row(row: &Row) -> Self {
        Self {
            secret_sealed: row.get("secret_sealed"),
            secret_rotated_at: row.get("secret_rotated_at"),
            allowed_origins: row.get("allowed_origins"),
            identity_required: row.get("identity_required"),
            greeting: row.get("greeting"),
            accent_colour: row.get("accent_colour"),
            notify_email_on_reply: row.get("notify_email_on_reply"),
            reply_mail_url: row.get("reply_mail_url"),
            revision: row.get("revision"),
            updated_at: row.get("updated_at"),
        }
    }
}

const COLUMNS: &str = "w.secret_sealed, w.secret_rotated_at, w.allowed_origins, w.identity_required, w.greeting, \
    w.accent_colour, w.notify_email_on_reply, w.reply_mail_url, w.revision, w.updated_at";

/// The tenant's name and widget settings, or `None` when the transaction's tenant does not exist.
#[tracing::instrument(skip_all)]
pub async fn of_tenant(tx: &Transaction) -> Result<Option<(String, StoredWidget)>> {
    let sql = format!(
        "SELECT t.name, w.tenant_id IS NOT NULL AS stored, {COLUMNS} \
         FROM tenants t LEFT JOIN widget_settings w ON w.tenant_id = t.id"
    );
    Ok(tx.query_opt(&sql, &[]).await?.map(|row| {
        let settings = if row.get("stored") { StoredWidget::from_row(&row) } else { StoredWidget::defaults() };
        (row.get("name"), settings)
    }))
}

/// Settings a `PUT` replaces (everything but the secret).
#[derive(Debug)]
pub struct WidgetChange<'a> {
    pub allowed_origins: &'a [String],
    pub identity_required: bool,
    pub greeting: &'a str,
    pub accent_colour: &'a str,
    pub notify_email_on_reply: bool,
    pub reply_mail_url: Option<&'a str>,
}

/// Replaces the tenant's settings (the secret stays) and bumps the revision.
#[tracing::instrument(skip_all)]
pub async fn put(tx: &Transaction, change: &WidgetChange<'_>) -> Result<StoredWidget> {
    let sql = format!(
        "INSERT INTO widget_settings AS w (allowed_origins, identity_required, greeting, accent_colour, \
         notify_email_on_reply, reply_mail_url) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id) DO UPDATE SET allowed_origins = EXCLUDED.allowed_origins, \
         identity_required = EXCLUDED.identity_required, greeting = EXCLUDED.greeting, \
         accent_colour = EXCLUDED.accent_colour, notify_email_on_reply = EXCLUDED.notify_email_on_reply, \
         reply_mail_url = EXCLUDED.reply_mail_url, revision = w.revision + 1, updated_at = now() \
         RETURNING {COLUMNS}"
    );
    let row = tx
        .query_one(
            &sql,
            &[
                &change.allowed_origins,
                &change.identity_required,
                &change.greeting,
                &change.accent_colour,
                &change.notify_email_on_reply,
                &change.reply_mail_url,
            ],
        )
        .await?;
    Ok(StoredWidget::from_row(&row))
}

/// Stores a new sealed secret in place of the old one and bumps the revision.
#[tracing::instrument(skip_all)]
pub async fn replace_secret(tx: &Transaction, sealed: &[u8]) -> Result<StoredWidget> {
    let sql = format!(
        "INSERT INTO widget_settings AS w (secret_sealed, secret_rotated_at) VALUES ($1, now()) \
         ON CONFLICT (tenant_id) DO UPDATE SET secret_sealed = EXCLUDED.secret_sealed, \
         secret_rotated_at = EXCLUDED.secret_rotated_at, revision = w.revision + 1, updated_at = now() \
         RETURNING {COLUMNS}"
    );
    Ok(StoredWidget::from_row(&tx.query_one(&sql, &[&sealed]).await?))
}

/// Records the reply mail for a message: `true` the first time, `false` when one was mailed already. A concurrent
/// duplicate waits here until the first transaction ends.
#[tracing::instrument(skip_all, fields(%conversation_id, %message_id))]
pub async fn record_reply_mail(
    tx: &Transaction,
    conversation_id: Uuid,
    message_id: Uuid,
    event_id: Uuid,
) -> Result<bool> {
    let inserted = tx
        .execute(
            "INSERT INTO reply_mails (conversation_id, message_id, event_id) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, conversation_id, message_id) DO NOTHING",
            &[&conversation_id, &message_id, &event_id],
        )
        .await?;
    Ok(inserted == 1)
}
