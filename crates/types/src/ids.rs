use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
            pub fn parse(s: &str) -> Result<Self, crate::ParseError> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| crate::ParseError::new("must be a UUID"))
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// One charity using Almoner; every row of every service belongs to exactly one.
    TenantId
);
id_type!(
    /// An API key; also the OAuth2 `client_id`.
    ApiKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_and_display() {
        let id = TenantId::generate();
        assert_eq!(TenantId::parse(&id.to_string()).unwrap(), id);
        assert!(TenantId::parse("not-a-uuid").is_err());
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    }
}
