//! Staff roles, each a fixed set of the scopes the services enforce: a role is what a token carries, so a person
//! is refused by the service itself, whatever the page shows.

use super::scope::ALL_SCOPES;
use almoner_types::ParseError;

/// What a member of staff may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, staff and tenant settings included.
    Admin,
    /// Donors, gifts, Gift Aid, imports and their files; reads totals.
    Fundraiser,
    /// Messages and conversations; reads donors and totals.
    Messenger,
    /// Reads everything, changes nothing.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Fundraiser, Role::Messenger, Role::Viewer];

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == raw.trim())
            .ok_or_else(|| ParseError::new("must be one of admin, fundraiser, messenger, viewer"))
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Fundraiser => "fundraiser",
            Role::Messenger => "messenger",
            Role::Viewer => "viewer",
        }
    }

    /// The scopes a token of this role carries.
    pub fn scopes(self) -> Vec<&'static str> {
        let reads = ALL_SCOPES.iter().copied().filter(|s| s.ends_with(":read"));
        match self {
            Role::Admin => ALL_SCOPES.to_vec(),
            Role::Viewer => reads.collect(),
            Role::Fundraiser => reads.chain(["fundraising:write", "storage:write"]).collect(),
            Role::Messenger => reads.chain(["messaging:write", "storage:write"]).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_a_role_names_exists() {
        for role in Role::ALL {
            for scope in role.scopes() {
                assert!(ALL_SCOPES.contains(&scope), "{} names {scope}", role.as_str());
            }
            assert_eq!(Role::parse(role.as_str()).unwrap(), role);
        }
        assert!(Role::parse("owner").is_err());
    }

    #[test]
    fn only_admins_administer_and_viewers_write_nothing() {
        for role in Role::ALL {
            let admin = role.scopes().iter().any(|s| s.ends_with(":admin"));
            assert_eq!(admin, role == Role::Admin, "{}", role.as_str());
        }
        assert!(Role::Viewer.scopes().iter().all(|s| s.ends_with(":read")));
        assert!(Role::Fundraiser.scopes().contains(&"fundraising:write"));
        assert!(!Role::Messenger.scopes().contains(&"fundraising:write"));
        assert!(!Role::Fundraiser.scopes().contains(&"messaging:write"));
    }
}
