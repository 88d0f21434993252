use almoner_types::ParseError;
use std::collections::BTreeSet;

/// Every scope an API key or a staff role can hold, and so every scope a token issued to one can carry. A service
/// checks the scope of each endpoint; an API key holds a subset.
///
/// [`MEMBER_SCOPE`] is deliberately not here: it is given only to tokens `POST /v1/widget/token` issues, each
/// bound to one member (or visitor) and one web origin. An API key or a staff role holding it would act as any
/// member of the tenant, from anywhere, so it can never be granted, asked for or stored for one.
pub const ALL_SCOPES: &[&str] = &[
    "identity:read",
    "identity:admin",
    "fundraising:read",
    "fundraising:write",
    "messaging:read",
    "messaging:write",
    "messaging:admin",
    "storage:read",
    "storage:write",
    "storage:admin",
    "rollup:read",
    "rollup:admin",
    "webhooks:admin",
];

/// The scope of a chat widget member's (or visitor's) token: their own conversations, and nothing else.
pub const MEMBER_SCOPE: &str = "conversations:member";

/// The scope that lets a member's token (forwarded by messaging) upload their attachments to storage and read
/// their own files and those staff shared with them: storage's member limits apply.
pub const MEMBER_STORAGE_SCOPE: &str = "storage:member";

/// One known scope.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(&'static str);

impl Scope {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        ALL_SCOPES
            .iter()
            .find(|known| **known == s.trim())
            .map(|k| Scope(k))
            .ok_or_else(|| ParseError::new(format!("unknown scope {s:?}; known scopes: {}", ALL_SCOPES.join(", "))))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// A non-empty, deduplicated, ordered set of scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    pub fn all() -> Self {
        Self(ALL_SCOPES.iter().map(|s| Scope(s)).collect())
    }

    /// Parses a list; every unknown entry is reported with its index.
    pub fn parse_list(items: &[String]) -> Result<Self, Vec<(usize, ParseError)>> {
        let mut set = BTreeSet::new();
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match Scope::parse(item) {
                Ok(s) => {
                    set.insert(s);
                }
                Err(e) => errors.push((i, e)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        if set.is_empty() {
            return Err(vec![(0, ParseError::new("at least one scope is required"))]);
        }
        Ok(Self(set))
    }

    /// Parses OAuth2's space-separated form.
    pub fn parse_space_separated(s: &str) -> Result<Self, ParseError> {
        let items: Vec<String> = s.split_whitespace().map(str::to_owned).collect();
        Self::parse_list(&items).map_err(|mut e| e.remove(0).1)
    }

    /// Scopes stored for a key; unknown ones (a scope since withdrawn) are dropped.
    pub fn from_stored(items: &[String]) -> Self {
        Self(items.iter().filter_map(|s| Scope::parse(s).ok()).collect())
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.0 == scope)
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.to_owned()).collect()
    }

    pub fn to_space_separated(&self) -> String {
        self.to_vec().join(" ")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_dedupes() {
        let set = ScopeSet::parse_list(&["fundraising:read".into(), "identity:read".into(), "fundraising:read".into()])
            .unwrap();
        assert_eq!(set.to_space_separated(), "fundraising:read identity:read");
        assert!(set.is_subset(&ScopeSet::all()));
        assert!(!ScopeSet::all().is_subset(&set));
    }

    #[test]
    fn reports_each_unknown_scope() {
        let errors = ScopeSet::parse_list(&["identity:read".into(), "root".into(), "x".into()]).unwrap_err();
        assert_eq!(errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
        assert!(ScopeSet::parse_list(&[]).is_err());
        assert!(ScopeSet::parse_space_separated("identity:read  bogus").is_err());
    }

    #[test]
    fn the_member_scope_cannot_be_granted() {
        assert!(!ALL_SCOPES.contains(&MEMBER_SCOPE));
        assert!(!ALL_SCOPES.contains(&MEMBER_STORAGE_SCOPE));
        assert!(Scope::parse(MEMBER_STORAGE_SCOPE).is_err());
        assert!(Scope::parse(MEMBER_SCOPE).is_err());
        assert!(ScopeSet::parse_list(&[MEMBER_SCOPE.to_owned()]).is_err());
        assert!(ScopeSet::from_stored(&[MEMBER_SCOPE.to_owned()]).is_empty());
        for role in crate::domain::Role::ALL {
            assert!(!role.scopes().contains(&MEMBER_SCOPE), "{role:?}");
        }
    }
}
