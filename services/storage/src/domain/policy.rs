//! A tenant's file policy: which content types, how large one file may be, and how much in all.

use super::FileKind;
use std::collections::BTreeSet;

/// The policy in force for one tenant: its own settings where it has them, the service's defaults elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub allowed: BTreeSet<FileKind>,
    pub max_size_bytes: i64,
    pub quota_bytes: i64,
}

/// Why a file is refused before anything is uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TypeNotAllowed(FileKind),
    TooLarge { size: i64, max: i64 },
}

impl Policy {
    /// Checks a file's declared type and size; the quota is checked where the usage is, in the database.
    pub fn admit(&self, kind: FileKind, size: i64) -> Result<(), Refusal> {
        if !self.allowed.contains(&kind) {
            return Err(Refusal::TypeNotAllowed(kind));
        }
        if size > self.max_size_bytes {
            return Err(Refusal::TooLarge { size, max: self.max_size_bytes });
        }
        Ok(())
    }

    pub fn allowed_list(&self) -> String {
        self.allowed.iter().map(|k| k.mime()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_an_allowed_type_up_to_the_largest_size() {
        let policy = Policy { allowed: [FileKind::Csv].into(), max_size_bytes: 100, quota_bytes: 1000 };
        assert_eq!(policy.admit(FileKind::Csv, 100), Ok(()));
        assert_eq!(policy.admit(FileKind::Csv, 101), Err(Refusal::TooLarge { size: 101, max: 100 }));
        assert_eq!(policy.admit(FileKind::Png, 1), Err(Refusal::TypeNotAllowed(FileKind::Png)));
    }
}
