//! What a file is to the service, with no I/O: its content type and how its bytes prove it
//! ([`content_type`]), the names and labels a client gives it, where it is kept, the tenant's policy, and who may
//! reach it ([`access`]).

pub mod access;
pub mod content_type;
pub mod policy;

pub use access::{Caller, MemberSubject};
pub use content_type::FileKind;
pub use policy::Policy;

use std::fmt;
use uuid::Uuid;

/// The name a client gives a file: metadata only, shown back and offered as the download's file name, never part
/// of where the file is stored. Control characters and path separators are refused rather than cleaned, so what is
/// shown is what was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filename(String);

impl Filename {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty");
        }
        if name.chars().count() > 255 {
            return Err("must be at most 255 characters");
        }
        if name.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
            return Err("must not hold control characters or path separators");
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `Content-Disposition` value offering the file under its name: an ASCII fallback and the UTF-8 name
    /// (RFC 6266 and 8187).
    pub fn content_disposition(&self) -> String {
        let ascii: String =
            self.0.chars().map(|c| if c.is_ascii() && c != '"' && c != '%' && c != ';' { c } else { '_' }).collect();
        let mut encoded = String::new();
        for b in self.0.bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
        format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
    }
}

/// What a file is for: a lower-case label such as `import`, `gift_aid_claim`, `conversation_attachment`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purpose(String);

impl Purpose {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let p = raw.trim();
        let mut bytes = p.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
        if !first_ok || p.len() > 40 || !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
            return Err("must be 1-40 characters: lower-case letters, digits and `_`, starting with a letter");
        }
        Ok(Self(p.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a file belongs to, in the uploader's terms (a claim id, a conversation id): printable, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerReference(String);

impl OwnerReference {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let r = raw.trim();
        if r.is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control) {
            return Err("must be 1-200 printable characters");
        }
        Ok(Self(r.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an object's bytes are kept in the bucket: under its tenant's prefix, named by its id alone, so no
/// client-supplied text ever reaches a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(tenant_id: Uuid, object_id: Uuid) -> Self {
        Self(format!("tenants/{tenant_id}/objects/{object_id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn filenames_keep_what_was_sent_but_no_path() {
        assert_eq!(Filename::parse(" Gift Aid 2025.ods ").unwrap().as_str(), "Gift Aid 2025.ods");
        assert!(Filename::parse("../../etc/passwd").is_err());
        assert!(Filename::parse("a\\b").is_err());
        assert!(Filename::parse("a\nb").is_err());
        assert!(Filename::parse("").is_err());
    }

    #[test]
    fn content_disposition_is_ascii_with_the_utf8_name_beside() {
        let name = Filename::parse("Zoë \"q\".csv").unwrap();
        assert_eq!(
            name.content_disposition(),
            "attachment; filename=\"Zo_ _q_.csv\"; filename*=UTF-8''Zo%C3%AB%20%22q%22.csv"
        );
    }

    #[test]
    fn purposes_are_labels() {
        assert!(Purpose::parse("gift_aid_claim").is_ok());
        assert!(Purpose::parse("Import").is_err());
        assert!(Purpose::parse("_x").is_err());
        assert!(Purpose::parse("a-b").is_err());
    }

    #[test]
    fn keys_hold_ids_only() {
        let (t, o) = (Uuid::nil(), Uuid::max());
        assert_eq!(
            ObjectKey::new(t, o).as_str(),
            "tenants/00000000-0000-0000-0000-000000000000/objects/ffffffff-ffff-ffff-ffff-ffffffffffff"
        );
    }

    proptest! {
        #[test]
        fn a_parsed_filename_never_holds_a_separator(raw in ".{0,300}") {
            if let Ok(name) = Filename::parse(&raw) {
                prop_assert!(!name.as_str().contains('/') && !name.as_str().contains('\\'));
                prop_assert!(name.content_disposition().is_ascii());
            }
        }
    }
}
