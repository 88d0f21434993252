//! Turns a GoCardless event into a [`PaymentEvent`] by fetching what it names from GoCardless's API with the
//! tenant's access token: a payment with its mandate and customer, or a subscription with its mandate. The token
//! is read in a short transaction of its own; the fetches happen with no transaction open.
//!
//! GoCardless unreachable, slow, or answering 5xx or 429 is worth retrying; no connection, a refused token or a
//! resource that does not exist is not, until a person acts: those events are dead-lettered with the reason, to be
//! replayed once the connection is fixed.

use crate::app::connections::{ConnectionError, Connections};
use crate::domain::gocardless::{self as domain, Notice};
use crate::domain::payments::{Payer, PaymentEvent, Provider, Unreadable};
use crate::domain::provider_connection::Environment;
use crate::gocardless::{FetchError, GoCardlessApi};
use almoner_db::Pool;
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;

/// Why a GoCardless event could not be read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFailure {
    Retry(String),
    DeadLetter(String),
}

impl From<FetchError> for ReadFailure {
    fn from(error: FetchError) -> Self {
        match error {
            FetchError::Unavailable(_) => Self::Retry(error.to_string()),
            FetchError::TokenRefused(_) => Self::DeadLetter(format!(
                "{error}; fix the GoCardless connection (PUT /v1/providers/gocardless) and replay"
            )),
            FetchError::NotFound(_) | FetchError::Unusable(_) => Self::DeadLetter(error.to_string()),
        }
    }
}

fn unreadable(error: Unreadable) -> ReadFailure {
    ReadFailure::DeadLetter(format!("gocardless resource: {error}"))
}

/// Reads GoCardless events with each tenant's connection.
#[derive(Debug, Clone)]
pub struct GoCardlessReader {
    pub api: GoCardlessApi,
    pub connections: Connections,
}

struct Access<'a> {
    api: &'a GoCardlessApi,
    environment: Environment,
    token: SecretString,
}

impl Access<'_> {
    async fn get(&self, resource: &str, id: &str) -> Result<Value, ReadFailure> {
        Ok(self.api.get(self.environment, &self.token, resource, id).await?)
    }

    /// The customer of a mandate.
    async fn payer_of_mandate(&self, mandate: &str) -> Result<Payer, ReadFailure> {
        let mandate = self.get("mandates", mandate).await?;
        let customer_id = mandate
            .get("links")
            .and_then(|l| l.get("customer"))
            .and_then(Value::as_str)
            .ok_or_else(|| ReadFailure::DeadLetter("gocardless mandate: links.customer is missing".into()))?;
        let customer = self.get("customers", customer_id).await?;
        domain::payer(&customer).map_err(unreadable)
    }
}

impl GoCardlessReader {
    async fn access(&self, pool: &Pool, tenant_id: Uuid) -> Result<Access<'_>, ReadFailure> {
        let opened = async {
            let tx = pool.tenant_tx(tenant_id).await?;
            let opened = self.connections.open(&tx, tenant_id, Provider::GoCardless.as_str()).await?;
            tx.commit().await?;
            Ok::<_, ConnectionError>(opened)
        }
        .await;
        match opened {
            Ok(Some((environment, token))) => Ok(Access { api: &self.api, environment, token }),
            Ok(None) => Err(ReadFailure::DeadLetter(
                "no GoCardless connection for this tenant: PUT /v1/providers/gocardless, then replay".into(),
            )),
            Err(ConnectionError::Db(e)) => Err(ReadFailure::Retry(e.to_string())),
            Err(e) => Err(ReadFailure::DeadLetter(e.to_string())),
        }
    }

    /// What the event means, fetching what it names.
    #[tracing::instrument(skip_all, fields(%tenant_id))]
    pub async fn read(&self, pool: &Pool, tenant_id: Uuid, notice: Notice) -> Result<PaymentEvent, ReadFailure> {
        match notice {
            Notice::Ignored(why) => Ok(PaymentEvent::Ignored(why)),
            Notice::PaymentFailed { payment } => {
                Ok(PaymentEvent::PaymentFailed { provider: Provider::GoCardless, reference: payment })
            }
            Notice::MandateEnded { mandate, status } => {
                Ok(PaymentEvent::MandateEnded { provider: Provider::GoCardless, mandate, status })
            }
            Notice::PaymentCollected { payment } => {
                let access = self.access(pool, tenant_id).await?;
                let payment = access.get("payments", &payment).await?;
                if !domain::collected(&payment).map_err(unreadable)? {
                    return Ok(PaymentEvent::Ignored("the gocardless payment was not collected after all".into()));
                }
                let mandate =
                    payment.get("links").and_then(|l| l.get("mandate")).and_then(Value::as_str).ok_or_else(|| {
                        ReadFailure::DeadLetter("gocardless payment: links.mandate is missing".into())
                    })?;
                let payer = access.payer_of_mandate(mandate).await?;
                domain::payment(&payment, payer).map_err(unreadable)
            }
            Notice::PaymentChargedBack { payment, date } => {
                let access = self.access(pool, tenant_id).await?;
                let payment = access.get("payments", &payment).await?;
                Ok(PaymentEvent::Refund(domain::charge_back(&payment, date).map_err(unreadable)?))
            }
            Notice::Subscription { subscription, today } => {
                let access = self.access(pool, tenant_id).await?;
                let subscription = access.get("subscriptions", &subscription).await?;
                let customer_id = match subscription.get("links").and_then(|l| l.get("mandate")).and_then(Value::as_str)
                {
                    Some(mandate) => {
                        let mandate = access.get("mandates", mandate).await?;
                        mandate.get("links").and_then(|l| l.get("customer")).and_then(Value::as_str).map(str::to_owned)
                    }
                    None => None,
                };
                domain::subscription(&subscription, customer_id, today).map_err(unreadable)
            }
        }
    }
}
