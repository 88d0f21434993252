//! What a reply or a delivery status from Twilio means, without I/O.

/// What an inbound message asks for: its whole body, trimmed, in any case (as Twilio's own handling of the
/// standard keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT: never text this number again.
    Stop,
    /// START, YES, UNSTOP: texts may resume.
    Start,
    /// HELP, INFO: answer with the tenant's help text.
    Help,
}

impl Keyword {
    pub fn of(body: &str) -> Option<Self> {
        match body.trim().to_uppercase().as_str() {
            "STOP" | "STOPALL" | "UNSUBSCRIBE" | "CANCEL" | "END" | "QUIT" | "REVOKE" | "OPTOUT" => Some(Self::Stop),
            "START" | "YES" | "UNSTOP" => Some(Self::Start),
            "HELP" | "INFO" => Some(Self::Help),
            _ => None,
        }
    }
}

/// A job status's place in a message's life: a status is applied only when its rank is higher than the job's,
/// so a late `sent` never overwrites `delivered`, `undelivered` or `failed`.
pub fn rank(status: &str) -> Option<u8> {
    match status {
        "queued" | "accepted" | "scheduled" => Some(0),
        "sending" => Some(1),
        "sent" => Some(2),
        "delivered" | "undelivered" | "failed" => Some(3),
        _ => None,
    }
}

/// The job status a Twilio `MessageStatus` moves a job to, when it moves it at all.
pub fn job_status(provider: &str) -> Option<&'static str> {
    match provider {
        "sent" => Some("sent"),
        "delivered" => Some("delivered"),
        "undelivered" => Some("undelivered"),
        "failed" => Some("failed"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_whole_bodies_in_any_case() {
        for stop in ["STOP", "stop", " Stop ", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "optout"] {
            assert_eq!(Keyword::of(stop), Some(Keyword::Stop), "{stop}");
        }
        for start in ["START", "yes", "Unstop"] {
            assert_eq!(Keyword::of(start), Some(Keyword::Start), "{start}");
        }
        assert_eq!(Keyword::of("help"), Some(Keyword::Help));
        assert_eq!(Keyword::of("INFO"), Some(Keyword::Help));
        for other in ["STOP please", "please stop", "", "STOP!", "thanks"] {
            assert_eq!(Keyword::of(other), None, "{other}");
        }
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(rank("delivered") > rank("sent"));
        assert_eq!(rank("undelivered"), rank("failed"));
        assert!(rank("sent") > rank("sending"));
        assert_eq!(rank("read"), None);
        assert_eq!(job_status("delivered"), Some("delivered"));
        assert_eq!(job_status("queued"), None);
    }
}
