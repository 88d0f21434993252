//! Who is asking: staff (a key or a staff member, by the `storage:read`/`storage:write` scopes, reaching every file
//! of their tenant) or a chat widget member (by `storage:member` alone, reaching only the files they created and
//! those staff shared with them). Which scopes make which is the routes' (`routes::access`); this is what each may
//! reach.

use std::fmt;
use uuid::Uuid;

/// Longest member identifier, in characters (identity's limit on what the host site signs).
pub const MAX_IDENTIFIER_CHARS: usize = 200;

/// A chat widget member as their token names them: `member:<identifier>` (1-200 characters, no control characters,
/// taken exactly as identity issued it) or `visitor:<uuid>` (written in lower case with hyphens, as identity does).
/// A file is shared with one of these, and a member's token must carry one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemberSubject(String);

impl MemberSubject {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const EXPECTED: &str = "must be member:<identifier> (1-200 characters, no control characters) or \
                                visitor:<uuid>";
        if let Some(identifier) = raw.strip_prefix("member:") {
            let chars = identifier.chars().count();
            if chars == 0 || chars > MAX_IDENTIFIER_CHARS || identifier.chars().any(char::is_control) {
                return Err(EXPECTED);
            }
            return Ok(Self(raw.to_owned()));
        }
        if let Some(id) = raw.strip_prefix("visitor:") {
            // The hyphenated form only (not braced, URN or bare hex), in either case.
            if id.len() != 36 {
                return Err(EXPECTED);
            }
            let id = Uuid::try_parse(id).map_err(|_| EXPECTED)?;
            return Ok(Self(format!("visitor:{}", id.hyphenated())));
        }
        Err(EXPECTED)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The caller of a file operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Staff or a key: every file of the tenant, within their scopes. The token's subject is recorded as the owner
    /// of what they create.
    Staff { subject: String },
    /// A chat widget member: their own files and those shared with them, and uploads under the member limits.
    Member(MemberSubject),
}

impl Caller {
    /// The subject that owns what this caller creates.
    pub fn subject(&self) -> &str {
        match self {
            Self::Staff { subject } => subject,
            Self::Member(member) => member.as_str(),
        }
    }

    /// The member whose files alone this caller reaches; `None` for staff, who reach the whole tenant.
    pub fn member(&self) -> Option<&MemberSubject> {
        match self {
            Self::Staff { .. } => None,
            Self::Member(member) => Some(member),
        }
    }

    /// Whether this caller may learn who owns an object owned by `owner`: staff always; a member only of their own
    /// (a file shared with them may be another member's, whose identifier is not theirs to see).
    pub fn may_see_owner(&self, owner: Option<&str>) -> bool {
        match self {
            Self::Staff { .. } => true,
            Self::Member(member) => owner == Some(member.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn members_and_visitors_are_subjects() {
        assert_eq!(MemberSubject::parse("member:alice@example.org").unwrap().as_str(), "member:alice@example.org");
        assert_eq!(MemberSubject::parse("member: a b ").unwrap().as_str(), "member: a b ", "taken exactly");
        let max = format!("member:{}", "é".repeat(200));
        assert_eq!(MemberSubject::parse(&max).unwrap().as_str(), max);
        assert_eq!(
            MemberSubject::parse("visitor:6F9619FF-8B86-4011-B42D-00C04FC964FF").unwrap().as_str(),
            "visitor:6f9619ff-8b86-4011-b42d-00c04fc964ff"
        );
        for bad in [
            "",
            "member:",
            "member",
            "alice",
            "staff:6f9619ff-8b86-4011-b42d-00c04fc964ff",
            "api_key:x",
            "Member:alice",
            "member:a\u{0}b",
            "member:a\nb",
            "member:a\u{85}b",
            "visitor:",
            "visitor:alice",
            "visitor:6f9619ff8b864011b42d00c04fc964ff",
            "visitor:{6f9619ff-8b86-4011-b42d-00c04fc964ff}",
        ] {
            assert!(MemberSubject::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MemberSubject::parse(&format!("member:{}", "a".repeat(201))).is_err());
    }

    #[test]
    fn a_member_sees_only_their_own_ownership() {
        let alice = Caller::Member(MemberSubject::parse("member:alice").unwrap());
        assert!(alice.may_see_owner(Some("member:alice")));
        assert!(!alice.may_see_owner(Some("member:bob")));
        assert!(!alice.may_see_owner(Some("staff:1")));
        let staff = Caller::Staff { subject: "staff:1".to_owned() };
        assert!(staff.may_see_owner(Some("member:bob")) && staff.member().is_none());
        assert_eq!(alice.subject(), "member:alice");
    }

    proptest! {
        #[test]
        fn a_parsed_subject_parses_to_itself(raw in "(member|visitor):.{0,210}") {
            if let Ok(subject) = MemberSubject::parse(&raw) {
                prop_assert_eq!(MemberSubject::parse(subject.as_str()), Ok(subject.clone()));
                prop_assert!(!subject.as_str().chars().any(char::is_control));
            }
        }
    }
}
