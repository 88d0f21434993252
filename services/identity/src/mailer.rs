//! Outgoing mail: plain-text UTF-8 messages (sign-in links) handed to an SMTP relay. It owns the relay settings and
//! the connection pool; it must not decide what a message says or whom to write to: callers do.

use almoner_config::Problems;
use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTls {
    /// Plain TCP: only for a relay on the same host or a local test sink, as nothing is encrypted.
    #[default]
    None,
    /// Plain TCP upgraded with `STARTTLS`, which must succeed (submission, usually port 587).
    Starttls,
    /// TLS from the first byte (implicit TLS, usually port 465).
    Tls,
}

/// The SMTP relay (`mail.*`).
#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    #[serde(default = "default_host")]
    pub host: String,
    /// Not derived from `tls`: a relay on 587 or 465 says so here.
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: MailTls,
    /// Relay credentials, sent with `AUTH PLAIN` or `AUTH LOGIN`; both or neither.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    /// The `From` of every message, with or without a display name.
    #[serde(default = "default_from")]
    pub from: String,
    /// Limit on each exchange with the relay, connecting included.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_host() -> String {
    "127.0.0.1".to_owned()
}
fn default_port() -> u16 {
    1025
}
fn default_from() -> String {
    "Almoner <no-reply@localhost>".to_owned()
}
fn default_timeout() -> u64 {
    10
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            host: default_host(),
            port: default_port(),
            tls: MailTls::default(),
            username: None,
            password: None,
            from: default_from(),
            timeout_secs: default_timeout(),
        }
    }
}

impl MailSettings {
    pub fn validate(&self, problems: &mut Problems) {
        problems.check(!self.host.trim().is_empty(), "mail.host", "must not be empty");
        problems.check(self.port != 0, "mail.port", "must not be 0");
        if let Err(e) = self.from.parse::<Mailbox>() {
            problems.add("mail.from", format!("must be an address such as `Almoner <no-reply@example.org>`: {e}"));
        }
        problems.check(
            self.username.is_some() == self.password.is_some(),
            "mail.username",
            "mail.username and mail.password go together: set both or neither",
        );
        problems.check((1..=300).contains(&self.timeout_secs), "mail.timeout_secs", "must be 1 to 300");
    }
}

/// Sends mail through the configured relay. Cheap to clone: clones share one pool of relay connections.
#[derive(Debug, Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// Builds the transport; nothing is connected until the first message. Call it inside the Tokio runtime (and
    /// drop the last clone there too): the connection pool starts and stops a task of its own.
    pub fn new(settings: &MailSettings) -> anyhow::Result<Mailer> {
        let from: Mailbox = settings.from.parse().with_context(|| format!("mail.from {:?}", settings.from))?;
        let builder = match settings.tls {
            MailTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
            MailTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                .with_context(|| format!("STARTTLS settings for mail relay {}", settings.host))?,
            MailTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .with_context(|| format!("TLS settings for mail relay {}", settings.host))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(Duration::from_secs(settings.timeout_secs)));
        if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose_secret().to_owned()));
        }
        Ok(Mailer { transport: builder.build(), from })
    }

    /// Sends one plain-text UTF-8 message to `to` (an address, with or without a display name).
    #[tracing::instrument(skip_all)]
    pub async fn send(&self, to: &str, subject: &str, text: &str) -> anyhow::Result<()> {
        let to: Mailbox = to.parse().context("recipient address")?;
        // Relays often add a Message-ID, but not all, and spam filters count its absence against a message.
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), self.from.email.domain());
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id))
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_owned())
            .context("build the message")?;
        self.transport.send(message).await.context("hand the message to the mail relay")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use almoner_testkit::smtp::SmtpSink;

    fn settings_for(sink: &SmtpSink) -> MailSettings {
        MailSettings { port: sink.port(), ..MailSettings::default() }
    }

    fn problems_of(settings: &MailSettings) -> String {
        let mut problems = Problems::default();
        settings.validate(&mut problems);
        match problems.into_result() {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn mailer_sends_plain_utf8_text_that_arrives_as_written() {
        let sink = SmtpSink::start().await;
        let mailer = Mailer::new(&settings_for(&sink)).unwrap();
        let link = "https://almoner.example/staff/sign-in?token=dGhpcyBpcyBhIHRva2Vu==&next=%2Fdonors%3Fpage%3D2&x=y";
        let text = format!(
            "Hello Zoë,\n\nOpen this link within 15 minutes to sign in to Almoner; it works once and only for you, \
             so please do not forward it to anyone else:\n{link}\n\n.\n-- \nAlmoner"
        );
        mailer.send("Zoë Smith <zoe@example.org>", "Sign in to Almoner, Zoë", &text).await.unwrap();

        let mail = sink.wait_for("zoe@example.org", Duration::from_secs(10)).await;
        assert_eq!(mail.from, "no-reply@localhost");
        assert_eq!(mail.to, ["zoe@example.org"]);
        assert_eq!(mail.subject(), "Sign in to Almoner, Zoë");
        assert_eq!(mail.body_text(), text);
        // The text went through a transfer encoding (lettre picks quoted-printable here) and came back whole.
        let encoding = mail.header("Content-Transfer-Encoding").unwrap();
        assert!(matches!(encoding.as_str(), "quoted-printable" | "base64"), "{encoding}");
        assert!(mail.header("Content-Type").unwrap().to_ascii_lowercase().contains("charset=utf-8"));
        assert!(mail.header("Message-ID").unwrap().ends_with("@localhost>"));
        assert_eq!(mail.authenticated_as, None);
    }

    #[tokio::test]
    async fn mailer_authenticates_when_given_credentials() {
        let sink = SmtpSink::start().await;
        let settings = MailSettings {
            username: Some("almoner".into()),
            password: Some(SecretString::from("relay-secret")),
            from: "Almoner Staff <staff@almoner.example>".into(),
            ..settings_for(&sink)
        };
        let mailer = Mailer::new(&settings).unwrap();
        mailer.send("ops@example.org", "Hello", "Plain ASCII.").await.unwrap();

        let mail = sink.wait_for("ops@example.org", Duration::from_secs(10)).await;
        assert_eq!(mail.authenticated_as.as_deref(), Some("almoner"));
        assert_eq!(mail.from, "staff@almoner.example");
        assert_eq!(mail.body_text(), "Plain ASCII.");
    }

    #[tokio::test]
    async fn mailer_refuses_a_malformed_recipient_and_reports_an_unreachable_relay() {
        let sink = SmtpSink::start().await;
        let mailer = Mailer::new(&settings_for(&sink)).unwrap();
        let err = mailer.send("not an address", "Hello", "text").await.unwrap_err();
        assert!(format!("{err:#}").contains("recipient address"), "{err:#}");

        let port = sink.port();
        drop(sink);
        let mailer = Mailer::new(&MailSettings { port, timeout_secs: 2, ..MailSettings::default() }).unwrap();
        let err = mailer.send("zoe@example.org", "Hello", "text").await.unwrap_err();
        assert!(format!("{err:#}").contains("mail relay"), "{err:#}");
    }

    #[tokio::test]
    async fn mailer_settings_defaults_are_valid_and_bad_values_are_named() {
        let defaults: MailSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(defaults.host, "127.0.0.1");
        assert_eq!(defaults.port, 1025);
        assert_eq!(defaults.tls, MailTls::None);
        assert_eq!(defaults.from, "Almoner <no-reply@localhost>");
        assert_eq!(defaults.timeout_secs, 10);
        assert_eq!(problems_of(&defaults), "");
        assert!(Mailer::new(&defaults).is_ok());

        let tls: MailSettings = serde_json::from_str(r#"{"tls": "starttls", "port": 587}"#).unwrap();
        assert_eq!(tls.tls, MailTls::Starttls);
        assert!(Mailer::new(&tls).is_ok());
        let tls: MailSettings = serde_json::from_str(r#"{"tls": "tls", "port": 465}"#).unwrap();
        assert!(Mailer::new(&tls).is_ok());

        let bad = MailSettings {
            host: " ".into(),
            port: 0,
            from: "Almoner <not an address>".into(),
            username: Some("almoner".into()),
            timeout_secs: 0,
            ..MailSettings::default()
        };
        let problems = problems_of(&bad);
        for key in ["mail.host", "mail.port", "mail.from", "mail.username", "mail.timeout_secs"] {
            assert!(problems.contains(key), "{key} missing from: {problems}");
        }
        let password_only = MailSettings { password: Some(SecretString::from("x")), ..MailSettings::default() };
        assert!(problems_of(&password_only).contains("mail.username"));
    }
}
