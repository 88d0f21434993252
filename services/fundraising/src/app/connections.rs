//! Tenants' connections to payment providers' APIs: storing an access token sealed, reading what may be shown of
//! it, and opening it for the consumer that fetches a provider's resources. The key is `intake.providers_secrets_key`;
//! without it no connection can be stored or used.

use crate::db::providers::{self as db, StoredConnection};
use crate::domain::provider_connection::{AccessToken, Environment};
use crate::domain::sealed::SealedBox;
use almoner_db::{DbError, Transaction};
use secrecy::SecretString;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// `intake.providers_secrets_key` is not set.
    #[error("provider connections are not enabled: intake.providers_secrets_key is not set")]
    NotEnabled,
    /// The stored token does not open with the key (the key changed, or the row was copied).
    #[error("the stored access token does not open: was intake.providers_secrets_key changed?")]
    Unopenable,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Seals and opens the tenants' provider tokens. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Connections {
    sealed: Option<SealedBox>,
}

impl Connections {
    pub fn new(sealed: Option<SealedBox>) -> Self {
        Self { sealed }
    }

    fn sealed(&self) -> Result<&SealedBox, ConnectionError> {
        self.sealed.as_ref().ok_or(ConnectionError::NotEnabled)
    }

    /// Stores (or replaces) the tenant's token for `provider`; `true` with it when it is new.
    pub async fn put(
        &self,
        tx: &Transaction,
        tenant_id: Uuid,
        provider: &str,
        token: &AccessToken,
        environment: Environment,
    ) -> Result<(StoredConnection, bool), ConnectionError> {
        let sealed = self.sealed()?.seal(tenant_id, provider, token.expose());
        Ok(db::put(tx, provider, environment.as_str(), &sealed, &token.last4()).await?)
    }

    /// The tenant's token for `provider` and its environment; `None` when none is stored.
    pub async fn open(
        &self,
        tx: &Transaction,
        tenant_id: Uuid,
        provider: &str,
    ) -> Result<Option<(Environment, SecretString)>, ConnectionError> {
        let sealed_box = self.sealed()?;
        let Some(stored) = db::get(tx, provider).await? else { return Ok(None) };
        let token =
            sealed_box.open(tenant_id, provider, &stored.sealed_token).map_err(|_| ConnectionError::Unopenable)?;
        let environment = Environment::parse(&stored.environment).map_err(|_| ConnectionError::Unopenable)?;
        Ok(Some((environment, token)))
    }
}
