//! A tenant's file policy: which content types, how large one file may be, and how much in all; and the narrower
//! limits on what the chat widget's members upload.

use super::FileKind;
use std::collections::BTreeSet;

/// Largest file a member may upload until the tenant sets its own member limit (never above the tenant's own
/// largest file).
pub const MEMBER_MAX_SIZE_BYTES: i64 = 10 * 1024 * 1024;

/// What members may upload until the tenant sets its own list (never beyond the tenant's allowed types): pictures,
/// PDF and plain text.
pub const MEMBER_KINDS: [FileKind; 6] =
    [FileKind::Png, FileKind::Jpeg, FileKind::Gif, FileKind::Webp, FileKind::Pdf, FileKind::PlainText];

/// The policy in force for one tenant: its own settings where it has them, the service's defaults elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub allowed: BTreeSet<FileKind>,
    pub max_size_bytes: i64,
    pub quota_bytes: i64,
    /// What members' uploads must also meet: always within `allowed` and `max_size_bytes`.
    pub member: MemberLimits,
}

/// The limits on members' uploads, on top of the tenant's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLimits {
    pub allowed: BTreeSet<FileKind>,
    pub max_size_bytes: i64,
}

impl MemberLimits {
    /// The member limits in force under a tenant's `allowed` types and largest file: the tenant's own member
    /// limits (or the defaults), cut down to what the tenant allows anyone.
    pub fn within(
        own_allowed: Option<BTreeSet<FileKind>>,
        own_max: Option<i64>,
        allowed: &BTreeSet<FileKind>,
        max_size_bytes: i64,
    ) -> Self {
        let wanted = own_allowed.unwrap_or_else(|| MEMBER_KINDS.into_iter().collect());
        Self {
            allowed: wanted.intersection(allowed).copied().collect(),
            max_size_bytes: own_max.unwrap_or(MEMBER_MAX_SIZE_BYTES).min(max_size_bytes),
        }
    }

    pub fn allowed_list(&self) -> String {
        list(&self.allowed)
    }
}

/// Whose limits a file is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploader {
    Staff,
    Member,
}

/// Why a file is refused before anything is uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TypeNotAllowed(FileKind),
    TooLarge {
        size: i64,
        max: i64,
    },
    /// The tenant allows the type, but not from members.
    TypeNotAllowedForMembers(FileKind),
    /// Within the tenant's largest file, but over the members' one.
    TooLargeForMembers {
        size: i64,
        max: i64,
    },
}

impl Policy {
    /// Checks a file's declared type and size (the tenant's policy first, then, for a member, the member limits);
    /// the quota is checked where the usage is, in the database.
    pub fn admit(&self, kind: FileKind, size: i64, uploader: Uploader) -> Result<(), Refusal> {
        if !self.allowed.contains(&kind) {
            return Err(Refusal::TypeNotAllowed(kind));
        }
        if size > self.max_size_bytes {
            return Err(Refusal::TooLarge { size, max: self.max_size_bytes });
        }
        if uploader == Uploader::Member {
            if !self.member.allowed.contains(&kind) {
                return Err(Refusal::TypeNotAllowedForMembers(kind));
            }
            if size > self.member.max_size_bytes {
                return Err(Refusal::TooLargeForMembers { size, max: self.member.max_size_bytes });
            }
        }
        Ok(())
    }

    pub fn allowed_list(&self) -> String {
        list(&self.allowed)
    }
}

fn list(kinds: &BTreeSet<FileKind>) -> String {
    kinds.iter().map(|k| k.mime()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[FileKind], max: i64, member: MemberLimits) -> Policy {
        Policy { allowed: allowed.iter().copied().collect(), max_size_bytes: max, quota_bytes: 1000, member }
    }

    #[test]
    fn admits_an_allowed_type_up_to_the_largest_size() {
        let all: BTreeSet<FileKind> = [FileKind::Csv, FileKind::Png].into();
        let policy = policy(&[FileKind::Csv, FileKind::Png], 100, MemberLimits::within(None, None, &all, 100));
        assert_eq!(policy.admit(FileKind::Csv, 100, Uploader::Staff), Ok(()));
        assert_eq!(policy.admit(FileKind::Csv, 101, Uploader::Staff), Err(Refusal::TooLarge { size: 101, max: 100 }));
        assert_eq!(policy.admit(FileKind::Pdf, 1, Uploader::Staff), Err(Refusal::TypeNotAllowed(FileKind::Pdf)));
    }

    #[test]
    fn members_meet_the_member_limits_too() {
        let all: BTreeSet<FileKind> = FileKind::ALL.into_iter().collect();
        let limits = MemberLimits::within(None, Some(50), &all, 100);
        let policy = policy(&FileKind::ALL, 100, limits);
        assert_eq!(policy.admit(FileKind::Png, 50, Uploader::Member), Ok(()));
        assert_eq!(
            policy.admit(FileKind::Png, 51, Uploader::Member),
            Err(Refusal::TooLargeForMembers { size: 51, max: 50 })
        );
        assert_eq!(policy.admit(FileKind::Png, 51, Uploader::Staff), Ok(()));
        assert_eq!(
            policy.admit(FileKind::Csv, 1, Uploader::Member),
            Err(Refusal::TypeNotAllowedForMembers(FileKind::Csv))
        );
        assert_eq!(
            policy.admit(FileKind::Png, 101, Uploader::Member),
            Err(Refusal::TooLarge { size: 101, max: 100 }),
            "the tenant's own limit is named first"
        );
    }

    #[test]
    fn member_limits_never_exceed_the_tenants_own() {
        let tenant: BTreeSet<FileKind> = [FileKind::Png, FileKind::Csv].into();
        let limits = MemberLimits::within(None, None, &tenant, 1024);
        assert_eq!(limits.allowed, [FileKind::Png].into(), "the defaults the tenant allows");
        assert_eq!(limits.max_size_bytes, 1024, "the default, cut to the tenant's largest file");
        let all: BTreeSet<FileKind> = FileKind::ALL.into_iter().collect();
        let defaults = MemberLimits::within(None, None, &all, 25 << 20);
        assert_eq!(defaults.max_size_bytes, MEMBER_MAX_SIZE_BYTES);
        assert_eq!(
            defaults.allowed_list(),
            "application/pdf, image/png, image/jpeg, image/gif, image/webp, text/plain"
        );
        let own = MemberLimits::within(Some([FileKind::Csv].into()), Some(7), &all, 100);
        assert_eq!((own.allowed, own.max_size_bytes), ([FileKind::Csv].into(), 7));
    }
}
