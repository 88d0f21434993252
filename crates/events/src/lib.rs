//! Event contracts and the envelope they travel in.
//!
//! Every event on the `almoner.events` exchange is an [`Envelope`] whose `type` is also its routing key,
//! `<service>.<entity>.<event>.v<N>`. Contracts are versioned: a breaking change is a new type with a new version,
//! and both are published until every consumer has moved. This crate is serde only; it knows nothing of transports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use uuid::Uuid;

pub mod fundraising;
pub mod identity;
pub mod messaging;
pub mod storage;
pub mod webhooks;

/// What every event carries, whatever its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<P = serde_json::Value> {
    /// Unique per event; consumers deduplicate on it.
    pub id: Uuid,
    /// The contract name, equal to the routing key, e.g. `identity.tenant.created.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub tenant_id: Uuid,
    /// The service that produced it.
    pub producer: String,
    /// W3C trace context of the operation that caused the event, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub payload: P,
}

/// A payload type bound to its contract name.
pub trait Event: Serialize + DeserializeOwned {
    /// `<service>.<entity>.<event>.v<N>`; also the routing key.
    const TYPE: &'static str;
}

impl<P: Event> Envelope<P> {
    pub fn new(tenant_id: Uuid, producer: &str, payload: P) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: P::TYPE.to_owned(),
            occurred_at: Utc::now(),
            tenant_id,
            producer: producer.to_owned(),
            traceparent: None,
            payload,
        }
    }

    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }
}

impl Envelope<serde_json::Value> {
    /// Reads the payload as the contract named by `P`, refusing an envelope of another type.
    pub fn decode<P: Event>(&self) -> Result<P, DecodeError> {
        if self.event_type != P::TYPE {
            return Err(DecodeError::WrongType { expected: P::TYPE, found: self.event_type.clone() });
        }
        serde_json::from_value(self.payload.clone()).map_err(DecodeError::Payload)
    }
}

#[derive(Debug)]
pub enum DecodeError {
    WrongType { expected: &'static str, found: String },
    Payload(serde_json::Error),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::WrongType { expected, found } => write!(f, "expected event {expected}, found {found}"),
            Self::Payload(e) => write!(f, "payload does not match its contract: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::TenantCreatedV1;

    #[test]
    fn envelope_round_trips_with_type_as_routing_key() {
        let tenant = Uuid::new_v4();
        let env = Envelope::new(
            tenant,
            "identity",
            TenantCreatedV1 { tenant_id: tenant, name: "Demo".into(), created_at: Utc::now() },
        );
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(json["type"], "identity.tenant.created.v1");
        assert!(json.get("traceparent").is_none());
        let generic: Envelope = serde_json::from_value(json).unwrap();
        let payload: TenantCreatedV1 = generic.decode().unwrap();
        assert_eq!(payload.name, "Demo");
    }

    #[test]
    fn decode_refuses_other_types() {
        let env: Envelope = Envelope {
            id: Uuid::new_v4(),
            event_type: "identity.api_key.revoked.v1".into(),
            occurred_at: Utc::now(),
            tenant_id: Uuid::new_v4(),
            producer: "identity".into(),
            traceparent: None,
            payload: serde_json::json!({}),
        };
        assert!(matches!(env.decode::<TenantCreatedV1>(), Err(DecodeError::WrongType { .. })));
    }
}
