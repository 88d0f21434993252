//! Chat widget conversations: who a member token names, a conversation's status, what a message may say, who it
//! may be assigned to.

use almoner_types::ParseError;
use uuid::Uuid;

/// The scope identity puts in a widget member's token, and nowhere else.
pub const MEMBER_SCOPE: &str = "conversations:member";

/// Longest message, in characters.
pub const MAX_BODY_CHARS: usize = 4000;
/// Most attachments on one message.
pub const MAX_ATTACHMENTS: usize = 10;
/// Characters of the newest message kept on its conversation for lists.
pub const PREVIEW_CHARS: usize = 140;

/// The member a widget token speaks for, read from its subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubject {
    /// `member:<identifier>` or `visitor:<uuid>`, as in the token.
    pub subject: String,
    /// What the host site signed (or the visitor's own id).
    pub identifier: String,
    /// Whether the host site's HMAC vouched for the identifier.
    pub verified: bool,
}

impl MemberSubject {
    pub fn parse(subject: &str) -> Result<Self, ParseError> {
        let not_member = || ParseError::new("is not a widget member");
        let (kind, identifier) = subject.split_once(':').ok_or_else(not_member)?;
        let verified = match kind {
            "member" => true,
            "visitor" => false,
            _ => return Err(not_member()),
        };
        if identifier.is_empty() || identifier.chars().count() > 200 || identifier.chars().any(char::is_control) {
            return Err(not_member());
        }
        if !verified && Uuid::try_parse(identifier).is_err() {
            return Err(not_member());
        }
        Ok(Self { subject: subject.to_owned(), identifier: identifier.to_owned(), verified })
    }
}

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationStatus {
    /// Waiting for staff.
    Open,
    /// Waiting for the member (or for something outside the conversation).
    Pending,
    /// Done; a new message from the member opens it again.
    Resolved,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 3] = [Self::Open, Self::Pending, Self::Resolved];

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ParseError::new("must be one of open, pending, resolved"))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Resolved => "resolved",
        }
    }
}

/// A staff member a conversation can be assigned to: `staff:<uuid>`, as staff tokens name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignee(String);

impl Assignee {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let id = s.strip_prefix("staff:").ok_or_else(|| ParseError::new("must be a staff member, staff:<id>"))?;
        let id = Uuid::try_parse(id).map_err(|_| ParseError::new("must be a staff member, staff:<id>"))?;
        Ok(Self(format!("staff:{}", id.hyphenated())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message's text: at most [`MAX_BODY_CHARS`] characters, no control characters but line breaks and tabs,
/// trailing white space dropped. It may be empty only when the message carries files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(s: &str, has_attachments: bool) -> Result<Self, ParseError> {
        let text = s.trim_end().trim_start_matches(['\n', '\r']);
        if text.chars().count() > MAX_BODY_CHARS {
            return Err(ParseError::new(format!("must be at most {MAX_BODY_CHARS} characters")));
        }
        if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
            return Err(ParseError::new("must not contain control characters"));
        }
        if text.trim().is_empty() && !has_attachments {
            return Err(ParseError::new("must not be empty (unless the message carries files)"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first line-joined [`PREVIEW_CHARS`] characters, for conversation lists.
    pub fn preview(&self) -> String {
        let joined: String = self.0.split_whitespace().collect::<Vec<_>>().join(" ");
        if joined.chars().count() <= PREVIEW_CHARS {
            joined
        } else {
            let mut cut: String = joined.chars().take(PREVIEW_CHARS - 1).collect();
            cut.push('…');
            cut
        }
    }
}

/// A client's own id for a message it sends, so that a retry makes one message: 1 to 100 visible ASCII
/// characters.
pub fn parse_client_message_id(s: &str) -> Result<String, ParseError> {
    if s.is_empty() || s.len() > 100 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::new("must be 1 to 100 visible ASCII characters"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn member_and_visitor_subjects() {
        let member = MemberSubject::parse("member:user-42@site").unwrap();
        assert_eq!((member.identifier.as_str(), member.verified), ("user-42@site", true));
        let visitor_id = Uuid::new_v4().to_string();
        let visitor = MemberSubject::parse(&format!("visitor:{visitor_id}")).unwrap();
        assert_eq!((visitor.identifier.as_str(), visitor.verified), (visitor_id.as_str(), false));
        for bad in ["staff:1", "api_key:x", "member:", "member", "visitor:not-a-uuid", "member:a\u{0}b"] {
            assert!(MemberSubject::parse(bad).is_err(), "{bad:?}");
        }
        assert!(MemberSubject::parse(&format!("member:{}", "x".repeat(201))).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for status in ConversationStatus::ALL {
            assert_eq!(ConversationStatus::parse(status.as_str()).unwrap(), status);
        }
        assert!(ConversationStatus::parse("closed").is_err());
        assert!(ConversationStatus::parse("Open").is_err());
    }

    #[test]
    fn assignees_are_staff_ids() {
        let id = Uuid::new_v4();
        assert_eq!(Assignee::parse(&format!("staff:{}", id.simple())).unwrap().as_str(), format!("staff:{id}"));
        for bad in ["", "staff:", "staff:x", "api_key:1", &id.to_string()] {
            assert!(Assignee::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bodies() {
        assert_eq!(MessageBody::parse("  hello\n\n", false).unwrap().as_str(), "  hello");
        assert_eq!(MessageBody::parse("line one\nline two", false).unwrap().preview(), "line one line two");
        assert!(MessageBody::parse("   ", false).is_err());
        assert_eq!(MessageBody::parse("", true).unwrap().as_str(), "");
        assert!(MessageBody::parse("a\u{7}b", false).is_err());
        assert!(MessageBody::parse(&"é".repeat(MAX_BODY_CHARS), false).is_ok());
        assert!(MessageBody::parse(&"é".repeat(MAX_BODY_CHARS + 1), false).is_err());
        let long = MessageBody::parse(&"word ".repeat(100), false).unwrap().preview();
        assert_eq!(long.chars().count(), PREVIEW_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn client_message_ids() {
        assert!(parse_client_message_id("0b6e-1").is_ok());
        for bad in ["", "has space", "ü", &"x".repeat(101)] {
            assert!(parse_client_message_id(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(s in "\\PC{0,300}", files in any::<bool>()) {
            let _ = MemberSubject::parse(&s);
            let _ = Assignee::parse(&s);
            let _ = parse_client_message_id(&s);
            if let Ok(body) = MessageBody::parse(&s, files) {
                prop_assert!(body.preview().chars().count() <= PREVIEW_CHARS);
            }
        }
    }
}
