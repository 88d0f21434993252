//! Message templates: text with variables (`{{first_name}}`, `{{first_name|friend}}` with a default), checked when
//! saved and rendered for one contact. A variable is a contact's `first_name`, `last_name`, `email` or `phone`, or
//! one of its attributes by key.

use almoner_types::ParseError;
use std::collections::BTreeSet;

/// The longest template body, before variables are filled in: Twilio's limit on a message.
pub const MAX_TEMPLATE_CHARACTERS: usize = 1600;
/// The longest default value of a variable.
pub const MAX_DEFAULT_CHARACTERS: usize = 100;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Variable { name: String, default: Option<String> },
}

/// A template's body, read into text and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What a template needs of a contact that the contact lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no value for {}", .0.iter().map(|v| format!("{{{{{v}}}}}")).collect::<Vec<_>>().join(", "))]
pub struct MissingVariables(pub Vec<String>);

impl Template {
    /// Reads a body: each `{{` must close with `}}` on a name (`a-z`, digits, `_`, starting with a letter), with an
    /// optional default after `|`. A lone `{` or `}` is text.
    pub fn parse(body: &str) -> Result<Self, ParseError> {
        if body.trim().is_empty() {
            return Err(ParseError::new("must not be empty"));
        }
        if body.chars().count() > MAX_TEMPLATE_CHARACTERS {
            return Err(ParseError::new(format!("must be at most {MAX_TEMPLATE_CHARACTERS} characters")));
        }
        if body.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
            return Err(ParseError::new("must not contain control characters other than line breaks"));
        }
        let mut parts = Vec::new();
        let mut rest = body;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(ParseError::new(format!(
                    "a {{{{ at character {} is not closed with }}}}",
                    body[..body.len() - rest.len() + open].chars().count() + 1
                )));
            };
            let inside = &after[..close];
            if inside.contains("{{") {
                return Err(ParseError::new("a variable must not contain {{"));
            }
            let (name, default) = match inside.split_once('|') {
                Some((name, default)) => (name.trim(), Some(default.trim().to_owned())),
                None => (inside.trim(), None),
            };
            check_name(name)?;
            if let Some(default) = &default
                && default.chars().count() > MAX_DEFAULT_CHARACTERS
            {
                return Err(ParseError::new(format!(
                    "the default of {{{{{name}}}}} must be at most {MAX_DEFAULT_CHARACTERS} characters"
                )));
            }
            parts.push(Part::Variable { name: name.to_owned(), default });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { source: body.to_owned(), parts })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the template uses, each once, in name order.
    pub fn variables(&self) -> BTreeSet<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Variable { name, .. } => Some(name.clone()),
                Part::Text(_) => None,
            })
            .collect()
    }

    /// The text for one contact: `value(name)` gives a variable's value (`None` or blank when the contact has
    /// none); a variable without a value takes its default, and one without a default is missing.
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> Result<String, MissingVariables> {
        let mut out = String::with_capacity(self.source.len());
        let mut missing = BTreeSet::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Variable { name, default } => {
                    match value(name).filter(|v| !v.trim().is_empty()).or_else(|| default.clone()) {
                        Some(v) => out.push_str(&v),
                        None => {
                            missing.insert(name.clone());
                        }
                    }
                }
            }
        }
        if missing.is_empty() { Ok(out) } else { Err(MissingVariables(missing.into_iter().collect())) }
    }
}

fn check_name(name: &str) -> Result<(), ParseError> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 50;
    if ok {
        Ok(())
    } else {
        Err(ParseError::new(format!(
            "{{{{{name}}}}} is not a variable: use first_name, last_name, email, phone or an attribute's key \
             (a-z, 0-9 and _, starting with a letter)"
        )))
    }
}

/// The whole message: the rendered text, then the tenant's opt-out line on a line of its own.
pub fn with_opt_out(text: &str, opt_out: &str) -> String {
    format!("{}\n{}", text.trim_end(), opt_out.trim())
}

/// Checks a tenant's opt-out line: 1 to 100 characters without control characters, naming the STOP keyword as a
/// word of its own (PECR and the Spam Act require a working opt-out in every message, and STOP is the one Twilio
/// and carriers honour everywhere). Runs of spaces become one.
pub fn parse_opt_out(input: &str) -> Result<String, ParseError> {
    if input.chars().any(char::is_control) {
        return Err(ParseError::new("must not contain control characters"));
    }
    let trimmed = input.trim();
    if trimmed.is_empty() || input.chars().count() > 100 {
        return Err(ParseError::new("must be 1 to 100 characters"));
    }
    if !trimmed.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "STOP") {
        return Err(ParseError::new(
            "must tell the reader to reply STOP (in capitals), e.g. \"Reply STOP to opt out\"",
        ));
    }
    Ok(trimmed.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(name: &str) -> Option<String> {
        match name {
            "first_name" => Some("Ada".into()),
            "last_name" => Some("  ".into()),
            "branch" => Some("York".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_filled_from_the_contact_or_their_defaults() {
        let t = Template::parse("Hi {{first_name}} {{ last_name | }}, {{ city | friend }} of {{branch}}!").unwrap();
        assert_eq!(t.render(contact).unwrap(), "Hi Ada , friend of York!");
        assert_eq!(t.variables().into_iter().collect::<Vec<_>>(), ["branch", "city", "first_name", "last_name"]);
    }

    #[test]
    fn a_variable_without_a_value_or_default_is_missing_by_name() {
        let t = Template::parse("{{first_name}}, your {{level}} card for {{email}} and {{level}}").unwrap();
        let missing = t.render(contact).unwrap_err();
        assert_eq!(missing.0, ["email", "level"]);
        assert_eq!(missing.to_string(), "no value for {{email}}, {{level}}");
    }

    #[test]
    fn bad_bodies_are_refused_with_where_and_why() {
        assert!(Template::parse("Hi {{first_name").unwrap_err().to_string().contains("character 4"));
        assert!(Template::parse("Hi {{First Name}}").unwrap_err().to_string().contains("not a variable"));
        assert!(Template::parse("Hi {{}}").is_err());
        assert!(Template::parse("{{a {{b}} }}").is_err());
        assert!(Template::parse("   ").is_err());
        assert!(Template::parse(&"a".repeat(1601)).is_err());
        assert!(Template::parse("tab\there").is_err());
        assert!(Template::parse(&format!("{{{{x|{}}}}}", "d".repeat(101))).is_err());
        // Single braces are text, and line breaks are allowed.
        let t = Template::parse("Give {gladly}\nthanks }").unwrap();
        assert_eq!(t.render(|_| None).unwrap(), "Give {gladly}\nthanks }");
    }

    #[test]
    fn the_opt_out_line_goes_on_a_line_of_its_own_and_must_name_stop() {
        assert_eq!(with_opt_out("Thank you!  \n", "Reply STOP to opt out"), "Thank you!\nReply STOP to opt out");
        assert_eq!(parse_opt_out("  Reply   STOP to end ").unwrap(), "Reply STOP to end");
        assert!(parse_opt_out("Reply stop to end").is_err());
        assert!(parse_opt_out("Reply STOPPING").is_err());
        assert!(parse_opt_out("Reply 0STOP").is_err());
        assert_eq!(parse_opt_out("Répondez STOP").unwrap(), "Répondez STOP");
        assert!(parse_opt_out("Reply\tSTOP").is_err());
        assert!(parse_opt_out("").is_err());
        assert!(parse_opt_out(&format!("STOP {}", "x".repeat(100))).is_err());
    }
}
