//! Which caller a token makes. `storage:read` and `storage:write` make staff (a key or a staff member), who reach
//! every file of their tenant. `storage:member` without either makes a chat widget member (identity gives it to
//! widget member tokens only, never to a key or a staff role): messaging forwards the member's own token, and the
//! member reaches only the files they uploaded and those staff shared with them. Any other token is refused as
//! before (403 naming the scope).

use crate::domain::{Caller, MemberSubject};
use crate::routes::{MEMBER_SCOPE, READ_SCOPE, WRITE_SCOPE};
use almoner_http::{ApiError, Principal};

/// A token with `storage:member` and neither staff scope.
fn is_member(principal: &Principal) -> bool {
    principal.has_scope(MEMBER_SCOPE) && !principal.has_scope(READ_SCOPE) && !principal.has_scope(WRITE_SCOPE)
}

/// The caller of a route open to staff with `staff_scope` and to members.
fn staff_or_member(principal: &Principal, staff_scope: &str) -> Result<Caller, ApiError> {
    if principal.has_scope(staff_scope) {
        return Ok(Caller::Staff { subject: principal.subject.clone() });
    }
    if !is_member(principal) {
        return Err(ApiError::forbidden(format!("this requires the scope {staff_scope} or {MEMBER_SCOPE}")));
    }
    // identity issues storage:member to widget members only; a token saying otherwise is not one.
    let member = MemberSubject::parse(&principal.subject).map_err(|_| {
        ApiError::forbidden(format!(
            "{MEMBER_SCOPE} is for chat widget members (member:<identifier> or visitor:<uuid>)"
        ))
    })?;
    Ok(Caller::Member(member))
}

/// Reading files: staff with `storage:read`, or a member (their own and shared files only).
pub fn reader(principal: &Principal) -> Result<Caller, ApiError> {
    staff_or_member(principal, READ_SCOPE)
}

/// Uploading in two steps (`/v1/uploads`): staff with `storage:write`, or a member (under the member limits).
pub fn uploader(principal: &Principal) -> Result<Caller, ApiError> {
    staff_or_member(principal, WRITE_SCOPE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use almoner_types::TenantId;
    use uuid::Uuid;

    fn principal(subject: &str, scopes: &[&str]) -> Principal {
        Principal {
            tenant_id: TenantId::from(Uuid::new_v4()),
            subject: subject.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            token_id: Uuid::new_v4(),
            origin: None,
        }
    }

    #[test]
    fn staff_scopes_make_staff_and_storage_member_alone_a_member() {
        let staff = principal("staff:1", &["storage:read", "storage:member"]);
        assert_eq!(reader(&staff).unwrap(), Caller::Staff { subject: "staff:1".to_owned() });
        let alice = principal("member:alice", &["conversations:member", "storage:member"]);
        assert_eq!(reader(&alice).unwrap().member().map(MemberSubject::as_str), Some("member:alice"));
        assert_eq!(uploader(&alice).unwrap().member().map(MemberSubject::as_str), Some("member:alice"));
    }

    #[test]
    fn other_tokens_are_refused() {
        let refused = |p: &Principal| reader(p).unwrap_err().code;
        let forbidden = almoner_http::ErrorCode::Forbidden;
        assert_eq!(refused(&principal("member:alice", &["conversations:member"])), forbidden);
        assert_eq!(refused(&principal("api_key:1", &["storage:member"])), forbidden, "not a member's subject");
        assert_eq!(refused(&principal("member:alice", &["storage:member", "storage:write"])), forbidden);
        assert_eq!(uploader(&principal("api_key:1", &["storage:read"])).unwrap_err().code, forbidden);
    }
}
