//! Bringing existing conversations from another tool: an export (JSON) read conversation by conversation, each
//! either importable or refused with every problem named by its path (`messages[2].sent_at`). No I/O here.

use super::conversation::{ConversationStatus, MemberSubject, MessageBody};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Most conversations in one import.
pub const MAX_CONVERSATIONS: usize = 5_000;
/// Most messages in one conversation.
pub const MAX_MESSAGES: usize = 2_000;

/// One message as the export had it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedMessage {
    /// `member` or `staff`.
    pub author: &'static str,
    /// Who wrote it, as the export names them (a staff member's name); kept as `import:<name>`.
    pub author_name: Option<String>,
    /// The text, with the export's attachment URLs as lines at its end.
    pub body: MessageBody,
    pub sent_at: DateTime<Utc>,
}

/// One conversation, ready to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedConversation {
    /// The export's own id for it: importing it again finds it already there.
    pub external_id: String,
    pub member: MemberSubject,
    pub member_name: Option<String>,
    pub member_email: Option<String>,
    pub status: ConversationStatus,
    /// Oldest first.
    pub messages: Vec<ImportedMessage>,
}

/// What is wrong with one conversation: each problem with its path inside it.
pub type Problems = Vec<(String, String)>;

fn text(value: Option<&Value>, path: &str, max: usize, required: bool, problems: &mut Problems) -> Option<String> {
    match value {
        None | Some(Value::Null) => {
            if required {
                problems.push((path.to_owned(), "is required".to_owned()));
            }
            None
        }
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() && required {
                problems.push((path.to_owned(), "must not be empty".to_owned()));
                None
            } else if s.chars().count() > max || s.chars().any(char::is_control) {
                problems
                    .push((path.to_owned(), format!("must be at most {max} characters, without control characters")));
                None
            } else if s.is_empty() {
                None
            } else {
                Some(s.to_owned())
            }
        }
        Some(_) => {
            problems.push((path.to_owned(), "must be a string".to_owned()));
            None
        }
    }
}

/// An unknown key as a report names it: control characters escaped, at most 50 characters.
fn shown(key: &str) -> String {
    let escaped: String = key.chars().flat_map(char::escape_default).collect();
    escaped.chars().take(50).collect()
}

/// Reads one conversation of the export.
pub fn parse_conversation(value: &Value) -> Result<ImportedConversation, Problems> {
    let mut problems = Problems::new();
    let Some(object) = value.as_object() else {
        return Err(vec![(String::new(), "must be an object".to_owned())]);
    };
    for key in object.keys() {
        if !matches!(key.as_str(), "id" | "member" | "status" | "messages") {
            problems.push((shown(key), "is not a field of a conversation".to_owned()));
        }
    }
    let external_id = text(object.get("id"), "id", 200, true, &mut problems);
    let member = object.get("member").and_then(Value::as_object);
    if member.is_none() {
        problems.push(("member".to_owned(), "must be an object with the member's identifier".to_owned()));
    }
    let identifier = member.and_then(|m| text(m.get("identifier"), "member.identifier", 200, true, &mut problems));
    let subject = identifier.and_then(|id| match MemberSubject::parse(&format!("member:{id}")) {
        Ok(subject) => Some(subject),
        Err(e) => {
            problems.push(("member.identifier".to_owned(), e.to_string()));
            None
        }
    });
    let member_name = member.and_then(|m| text(m.get("name"), "member.name", 200, false, &mut problems));
    let member_email =
        member.and_then(|m| text(m.get("email"), "member.email", 254, false, &mut problems)).and_then(|e| {
            match almoner_types::Email::parse(&e) {
                Ok(email) => Some(email.as_str().to_owned()),
                Err(err) => {
                    problems.push(("member.email".to_owned(), err.to_string()));
                    None
                }
            }
        });
    let status = match text(object.get("status"), "status", 20, false, &mut problems) {
        None => Some(ConversationStatus::Resolved),
        Some(s) => match ConversationStatus::parse(&s) {
            Ok(status) => Some(status),
            Err(e) => {
                problems.push(("status".to_owned(), e.to_string()));
                None
            }
        },
    };
    let mut messages = Vec::new();
    match object.get("messages").and_then(Value::as_array) {
        None => problems.push(("messages".to_owned(), "must be a list of messages".to_owned())),
        Some(list) if list.is_empty() || list.len() > MAX_MESSAGES => {
            problems.push(("messages".to_owned(), format!("must hold 1 to {MAX_MESSAGES} messages")));
        }
        Some(list) => {
            for (i, message) in list.iter().enumerate() {
                if let Some(m) = parse_message(message, &format!("messages[{i}]"), &mut problems) {
                    messages.push(m);
                }
            }
        }
    }
    messages.sort_by_key(|m| m.sent_at);
    match (external_id, subject, status, problems.is_empty()) {
        (Some(external_id), Some(member), Some(status), true) => {
            Ok(ImportedConversation { external_id, member, member_name, member_email, status, messages })
        }
        _ => Err(problems),
    }
}

fn parse_message(value: &Value, path: &str, problems: &mut Problems) -> Option<ImportedMessage> {
    let Some(object) = value.as_object() else {
        problems.push((path.to_owned(), "must be an object".to_owned()));
        return None;
    };
    let before = problems.len();
    for key in object.keys() {
        if !matches!(key.as_str(), "author" | "author_name" | "body" | "sent_at" | "attachment_urls") {
            problems.push((format!("{path}.{}", shown(key)), "is not a field of a message".to_owned()));
        }
    }
    let author = match object.get("author").and_then(Value::as_str) {
        Some("member") => Some("member"),
        Some("staff") => Some("staff"),
        _ => {
            problems.push((format!("{path}.author"), "must be member or staff".to_owned()));
            None
        }
    };
    let author_name = text(object.get("author_name"), &format!("{path}.author_name"), 200, false, problems);
    let sent_at = match object.get("sent_at").and_then(Value::as_str).map(DateTime::parse_from_rfc3339) {
        Some(Ok(at)) => Some(at.with_timezone(&Utc)),
        _ => {
            problems
                .push((format!("{path}.sent_at"), "must be an RFC 3339 time, such as 2025-03-01T10:15:00Z".to_owned()));
            None
        }
    };
    let mut urls = Vec::new();
    match object.get("attachment_urls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (j, url) in list.iter().enumerate() {
                match url.as_str().filter(|u| {
                    (u.starts_with("https://") || u.starts_with("http://"))
                        && u.len() <= 2000
                        && !u.contains(char::is_whitespace)
                }) {
                    Some(u) => urls.push(u.to_owned()),
                    None => {
                        problems.push((format!("{path}.attachment_urls[{j}]"), "must be an http(s) URL".to_owned()))
                    }
                }
            }
        }
        Some(_) => problems.push((format!("{path}.attachment_urls"), "must be a list of URLs".to_owned())),
    }
    let raw = match object.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            problems.push((format!("{path}.body"), "must be a string".to_owned()));
            String::new()
        }
    };
    let with_links = if urls.is_empty() {
        raw
    } else {
        let links: Vec<String> = urls.iter().map(|u| format!("Attachment: {u}")).collect();
        if raw.trim().is_empty() { links.join("\n") } else { format!("{}\n\n{}", raw.trim_end(), links.join("\n")) }
    };
    let body = match MessageBody::parse(&with_links, false) {
        Ok(body) => Some(body),
        Err(e) => {
            problems.push((format!("{path}.body"), e.to_string()));
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(ImportedMessage { author: author?, author_name, body: body?, sent_at: sent_at? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conversation() -> Value {
        json!({
            "id": "chatwoot-17",
            "member": {"identifier": "user-9", "name": "Ann", "email": "Ann@Example.org"},
            "status": "open",
            "messages": [
                {"author": "staff", "author_name": "Sam", "body": "Hello Ann", "sent_at": "2025-03-01T10:16:00Z"},
                {"author": "member", "body": "Hi", "sent_at": "2025-03-01T10:15:00+00:00",
                 "attachment_urls": ["https://files.example/a.png"]},
            ],
        })
    }

    #[test]
    fn a_conversation_is_read_in_time_order_with_its_links() {
        let c = parse_conversation(&conversation()).unwrap();
        assert_eq!(c.external_id, "chatwoot-17");
        assert_eq!(c.member.subject, "member:user-9");
        assert_eq!(c.member_email.as_deref(), Some("Ann@example.org"));
        assert_eq!(c.status, ConversationStatus::Open);
        assert_eq!(c.messages[0].author, "member");
        assert_eq!(c.messages[0].body.as_str(), "Hi\n\nAttachment: https://files.example/a.png");
        assert_eq!(c.messages[1].author_name.as_deref(), Some("Sam"));
    }

    #[test]
    fn every_problem_is_named_by_its_path() {
        let mut bad = conversation();
        bad["member"]["identifier"] = json!("");
        bad["status"] = json!("closed");
        bad["messages"][0]["sent_at"] = json!("yesterday");
        bad["messages"][1]["author"] = json!("bot");
        bad["messages"][1]["attachment_urls"] = json!(["ftp://x"]);
        bad["extra"] = json!(1);
        bad["a\u{0}b"] = json!(1);
        let problems = parse_conversation(&bad).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        for path in [
            "member.identifier",
            "status",
            "messages[0].sent_at",
            "messages[1].author",
            "messages[1].attachment_urls[0]",
            "extra",
            "a\\u{0}b",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
        assert!(parse_conversation(&json!("x")).is_err());
        assert!(parse_conversation(&json!({"id": "a", "member": {"identifier": "b"}, "messages": []})).is_err());
    }

    #[test]
    fn the_status_defaults_to_resolved_and_a_file_may_stand_alone() {
        let c = parse_conversation(&json!({
            "id": "a", "member": {"identifier": "b"},
            "messages": [{"author": "member", "sent_at": "2025-01-01T00:00:00Z", "attachment_urls": ["https://x.example/f.pdf"]}],
        }))
        .unwrap();
        assert_eq!(c.status, ConversationStatus::Resolved);
        assert_eq!(c.messages[0].body.as_str(), "Attachment: https://x.example/f.pdf");
    }
}
