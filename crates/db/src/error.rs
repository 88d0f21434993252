//! What can go wrong talking to PostgreSQL, sorted by what a caller should do about it.
//!
//! Services map [`DbError`] onto their problem+json codes: a unique violation is usually `409 conflict`,
//! a serialization failure or an exhausted pool is `503` (or a retry), everything else is an unexpected `500`.

use tokio_postgres::error::SqlState;

/// A database failure, classified so callers can answer `409`, `422` or `503` without looking at SQLSTATEs.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A unique or primary-key constraint rejected the write (SQLSTATE 23505).
    #[error("unique constraint {} was violated", .constraint.as_deref().unwrap_or("(unnamed)"))]
    UniqueViolation { constraint: Option<String> },
    /// A foreign key rejected the write (SQLSTATE 23503).
    #[error("foreign key {} was violated", .constraint.as_deref().unwrap_or("(unnamed)"))]
    ForeignKeyViolation { constraint: Option<String> },
    /// A `CHECK` constraint rejected the write (SQLSTATE 23514).
    #[error("check constraint {} was violated", .constraint.as_deref().unwrap_or("(unnamed)"))]
    CheckViolation { constraint: Option<String> },
    /// The transaction lost a serialization race or a deadlock (SQLSTATE 40001 / 40P01); retrying it may succeed.
    #[error("the transaction conflicted with a concurrent one and may be retried")]
    SerializationFailure,
    /// No pooled connection became free within the acquire timeout.
    #[error("timed out waiting for a database connection")]
    PoolTimeout,
    /// PostgreSQL could not be reached, or the connection was lost.
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug, a schema mismatch, a failed migration. The cause chain is for the log only.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl DbError {
    /// Whether running the same transaction again could succeed (a lost race, a busy pool, a lost connection).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::SerializationFailure | Self::PoolTimeout | Self::Unavailable(_))
    }

    fn classify(error: &tokio_postgres::Error) -> Option<Self> {
        if let Some(db) = error.as_db_error() {
            let constraint = db.constraint().map(str::to_owned);
            let code = db.code();
            return if *code == SqlState::UNIQUE_VIOLATION {
                Some(Self::UniqueViolation { constraint })
            } else if *code == SqlState::FOREIGN_KEY_VIOLATION {
                Some(Self::ForeignKeyViolation { constraint })
            } else if *code == SqlState::CHECK_VIOLATION {
                Some(Self::CheckViolation { constraint })
            } else if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
                Some(Self::SerializationFailure)
            } else if code.code().starts_with("57") || code.code().starts_with("08") {
                // Operator intervention (a restart, failover or terminated backend) and connection exceptions:
                // the server is going away, not the request being wrong.
                Some(Self::Unavailable(anyhow::anyhow!("{}: {}", code.code(), db.message())))
            } else {
                None
            };
        }
        None
    }
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        if let Some(classified) = Self::classify(&error) {
            return classified;
        }
        if error.is_closed() || (error.as_db_error().is_none() && is_connection_error(&error)) {
            return Self::Unavailable(error.into());
        }
        Self::Unexpected(error.into())
    }
}

/// `.context()` wraps a driver error in `anyhow`; the classification still looks through the chain so a
/// unique violation stays a unique violation after a caller added context.
impl From<anyhow::Error> for DbError {
    fn from(error: anyhow::Error) -> Self {
        if let Some(classified) =
            error.chain().find_map(|cause| cause.downcast_ref::<tokio_postgres::Error>()).and_then(Self::classify)
        {
            return classified;
        }
        if let Some(pool) = error.chain().find_map(|cause| cause.downcast_ref::<deadpool_postgres::PoolError>())
            && matches!(pool, deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait))
        {
            return Self::PoolTimeout;
        }
        Self::Unexpected(error)
    }
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match error {
            // A wait timeout means the pool is exhausted; a create timeout means PostgreSQL did not answer in time.
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => Self::PoolTimeout,
            PoolError::Timeout(_) | PoolError::Backend(_) => Self::Unavailable(error.into()),
            other => Self::Unexpected(other.into()),
        }
    }
}

fn is_connection_error(error: &tokio_postgres::Error) -> bool {
    // The driver does not expose its error kind; an I/O source or a closed connection is a lost server.
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// `Result` with [`DbError`].
pub type Result<T, E = DbError> = std::result::Result<T, E>;
