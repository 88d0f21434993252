//! Tenant-scoped transactions and the row-level-security convention they rely on.
//!
//! Every query a request makes runs in a [`Transaction`] opened with [`Pool::tenant_tx`](crate::Pool::tenant_tx),
//! which sets `app.tenant_id` for that transaction only (`set_config(..., true)`, the same as `SET LOCAL`).
//! Each tenant table carries a policy comparing its `tenant_id` with that setting, so a query that forgets its
//! `WHERE tenant_id = ...` still sees one tenant's rows, and an insert for another tenant is refused.
//!
//! A tenant table is declared in a service migration like this ([`RLS_EXAMPLE`]):
//!
//! ```sql
//! CREATE TABLE api_keys (
//!     id        uuid PRIMARY KEY,
//!     tenant_id uuid NOT NULL DEFAULT almoner_current_tenant(),
//!     ...
//! );
//! ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
//! ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
//! CREATE POLICY tenant_isolation ON api_keys
//!     USING (tenant_id = (SELECT almoner_current_tenant()))
//!     WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
//! ```
//!
//! The `(SELECT ...)` makes the tenant an initplan: its value is unknown when the statement is planned, so the
//! planner estimates the table's average tenant instead of evaluating the function and finding a new tenant absent
//! from its statistics (one row, hence quadratic plans for a charity importing its history). Tables declared
//! before this convention are rewritten to it by `almoner_tenant_policies_as_initplans()` (platform migration 2),
//! which each service calls in a migration of its own.
//!
//! `almoner_current_tenant()` is created in every service schema by the platform migrations; it is
//! `NULLIF(current_setting('app.tenant_id', true), '')::uuid`. The `true` makes an unset setting read as NULL
//! instead of raising an error, and `NULLIF` covers a setting that was set earlier in the session and then reset
//! to the empty string at the end of its transaction. Either way the comparison is NULL and no row matches:
//! forgetting the tenant shows nothing rather than failing or, worse, showing everything.
//!
//! RLS is bypassed by superusers and, without `FORCE`, by the table's owner. Services therefore connect as their
//! own non-superuser, non-owner role; only migrations run as the owner.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::anyhow;
use deadpool_postgres::Object;
use tokio::sync::Notify;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::error::{DbError, Result};

/// The statements a service migration needs to put a table under tenant isolation; replace `{table}`.
pub const RLS_EXAMPLE: &str = "\
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON {table}
    USING (tenant_id = (SELECT almoner_current_tenant()))
    WITH CHECK (tenant_id = (SELECT almoner_current_tenant()));
";

const SET_TENANT: &str = "SELECT set_config('app.tenant_id', $1, true)";

/// Whose rows a transaction may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One tenant's rows, enforced by row-level security.
    Tenant(Uuid),
    /// No tenant: platform tables only (outbox, inbox); tenant tables look empty.
    System,
}

/// Transaction isolation level. Read committed is the default; a serializable transaction may fail with
/// [`DbError::SerializationFailure`] and should then be retried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Isolation {
    #[default]
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    fn begin_statement(self) -> &'static str {
        match self {
            Self::ReadCommitted => "BEGIN",
            Self::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Self::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
        }
    }
}

/// An open transaction on a pooled connection.
///
/// It owns its connection, so it can be passed around and kept across `.await`s freely. Statements go through
/// the connection's prepared-statement cache. End it with [`commit`](Self::commit); dropping it rolls back
/// (in the background) before the connection returns to the pool.
pub struct Transaction {
    client: Option<Object>,
    scope: Scope,
    schema: Arc<str>,
    /// Set by [`outbox::enqueue`](crate::outbox::enqueue); a successful commit then wakes the relay.
    wrote_outbox: AtomicBool,
    outbox_wake: Arc<Notify>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("scope", &self.scope).field("schema", &self.schema).finish()
    }
}

impl Transaction {
    #[tracing::instrument(name = "db.begin", skip_all, fields(db.schema = %schema, tenant_id = tracing::field::Empty))]
    pub(crate) async fn begin(
        client: Object,
        scope: Scope,
        isolation: Isolation,
        schema: Arc<str>,
        outbox_wake: Arc<Notify>,
    ) -> Result<Self> {
        // Owned by the transaction from here on, so an error below still rolls back before the connection is reused.
        let transaction =
            Self { client: Some(client), scope, schema, wrote_outbox: AtomicBool::new(false), outbox_wake };
        let client = transaction.client();
        match scope {
            Scope::System => client.batch_execute(isolation.begin_statement()).await?,
            Scope::Tenant(tenant_id) => {
                tracing::Span::current().record("tenant_id", tracing::field::display(tenant_id));
                let set_tenant = client.prepare_cached(SET_TENANT).await?;
                let tenant_id = tenant_id.to_string();
                let params: [&(dyn ToSql + Sync); 1] = [&tenant_id];
                // Pipelined: the driver sends requests in the order their futures are first polled, so both go out
                // before either answer is awaited and BEGIN still precedes the setting. One round trip instead of two.
                let (begun, set) = futures::join!(
                    client.batch_execute(isolation.begin_statement()),
                    client.execute(&set_tenant, &params)
                );
                begun?;
                set?;
            }
        }
        Ok(transaction)
    }

    /// The scope this transaction was opened with.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The tenant, for a tenant-scoped transaction.
    pub fn tenant_id(&self) -> Option<Uuid> {
        match self.scope {
            Scope::Tenant(tenant_id) => Some(tenant_id),
            Scope::System => None,
        }
    }

    /// The tenant, or an error naming `operation` for a system transaction.
    pub(crate) fn require_tenant(&self, operation: &str) -> Result<Uuid> {
        self.tenant_id().ok_or_else(|| DbError::Unexpected(anyhow!("{operation} needs a tenant-scoped transaction")))
    }

    /// The service schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Records that this transaction wrote outbox rows, so its commit wakes the relay.
    pub(crate) fn mark_outbox_written(&self) {
        self.wrote_outbox.store(true, Ordering::Relaxed);
    }

    /// The underlying connection, for what the helpers below do not cover (`copy_in`, `query_raw`, ...).
    /// Do not issue `COMMIT`, `ROLLBACK` or `SET` through it.
    pub fn client(&self) -> &deadpool_postgres::ClientWrapper {
        self.client.as_ref().expect("a transaction holds its connection until it ends")
    }

    /// Runs a statement (prepared once per connection) and returns the number of rows it affected.
    #[tracing::instrument(name = "db.query", skip_all, fields(db.query.text = sql))]
    pub async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }

    /// Runs a query (prepared once per connection) and returns its rows.
    #[tracing::instrument(name = "db.query", skip_all, fields(db.query.text = sql))]
    pub async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }

    /// Runs a query that must return exactly one row.
    #[tracing::instrument(name = "db.query", skip_all, fields(db.query.text = sql))]
    pub async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_one(&statement, params).await?)
    }

    /// Runs a query that returns at most one row.
    #[tracing::instrument(name = "db.query", skip_all, fields(db.query.text = sql))]
    pub async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let client = self.client();
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_opt(&statement, params).await?)
    }

    /// Commits. A serialization failure or a deferred constraint surfaces here as the matching [`DbError`].
    #[tracing::instrument(name = "db.commit", skip_all)]
    pub async fn commit(mut self) -> Result<()> {
        let mut guard = DiscardUnlessReleased(self.client.take());
        let client = guard.0.as_ref().expect("a transaction holds its connection until it ends");
        let result = client.batch_execute("COMMIT").await;
        // When the server answered, even with an error, it has ended the transaction and the connection can be
        // reused. Otherwise (connection lost, future dropped mid-way) the guard discards it.
        let server_answered = result.as_ref().err().is_none_or(|error| error.as_db_error().is_some());
        if server_answered {
            drop(guard.0.take());
        }
        result?;
        if self.wrote_outbox.load(Ordering::Relaxed) {
            self.outbox_wake.notify_one();
        }
        Ok(())
    }

    /// Rolls back now, waiting for the server; dropping the transaction does the same in the background.
    #[tracing::instrument(name = "db.rollback", skip_all)]
    pub async fn rollback(mut self) -> Result<()> {
        let client = self.client.take().expect("a transaction holds its connection until it ends");
        let guard = DiscardUnlessReleased(Some(client));
        guard.rollback().await
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let guard = DiscardUnlessReleased(Some(client));
        // The connection must not return to the pool inside an open transaction. Roll back on the runtime;
        // without one (or if the task never runs) the guard detaches the connection instead, which closes it
        // and makes the server roll back.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = guard.rollback().await {
                    tracing::debug!(%error, "rollback of an abandoned transaction failed; the connection is discarded");
                }
            });
        }
    }
}

/// Holds a connection whose transaction is not known to be over: released to the pool only after a successful
/// `ROLLBACK`, otherwise detached from the pool (and closed) when dropped.
struct DiscardUnlessReleased(Option<Object>);

impl DiscardUnlessReleased {
    async fn rollback(mut self) -> Result<()> {
        let client = self.0.as_ref().expect("present until released");
        client.batch_execute("ROLLBACK").await?;
        // Success: dropping the object returns it to the pool.
        drop(self.0.take());
        Ok(())
    }
}

impl Drop for DiscardUnlessReleased {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            drop(Object::take(client));
        }
    }
}
