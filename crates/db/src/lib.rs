//! PostgreSQL for Almoner services: the pool, migrations, tenant-scoped transactions, the transactional outbox and
//! its relay, the consumer inbox and `Idempotency-Key` storage.
//!
//! A service gets a [`Pool`] for its own schema, runs [`migrate()`] at start (platform tables first, then its own
//! migrations), does every request's work in [`Pool::tenant_tx`] so row-level security confines it to one tenant,
//! writes events with [`outbox::enqueue`] in the same transaction as the change, and runs an [`OutboxRelay`] to
//! publish them. This crate owns the platform tables (`outbox`, `processed_events`, `idempotency_keys`,
//! `almoner_migrations`) and nothing else: it holds no service SQL and knows no service's tables.
//!
//! ```ignore
//! let pool = almoner_db::Pool::new(&settings.database, "identity")?;
//! almoner_db::migrate(&settings.database, "identity", MIGRATIONS).await?;
//! let tx = pool.tenant_tx(tenant_id).await?;
//! tx.execute("INSERT INTO api_keys (id, tenant_id, name) VALUES ($1, $2, $3)", &[&id, &tenant_id, &name]).await?;
//! almoner_db::outbox::enqueue(&tx, &Envelope::new(tenant_id, "identity", ApiKeyCreatedV1 { .. })).await?;
//! tx.commit().await?;
//! ```

pub mod cleanup;
pub mod error;
pub mod filter;
pub mod group_commit;
pub mod idempotency;
pub mod inbox;
pub mod migrate;
pub mod outbox;
pub mod pool;
pub mod relay;
pub mod tenant;

pub use error::{DbError, Result};
pub use filter::Filters;
pub use group_commit::GroupCommit;
pub use idempotency::IdempotencyOutcome;
pub use migrate::{Migration, MigrationReport, migrate};
pub use pool::Pool;
pub use relay::{OutboxRelay, OutboxSink, RelayConfig};
pub use tenant::{Isolation, Scope, Transaction};
/// The shutdown signal [`OutboxRelay::run`] takes.
pub use tokio_util::sync::CancellationToken;
