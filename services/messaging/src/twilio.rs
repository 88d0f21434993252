//! Twilio's Messages API, as the sender calls it: `POST /2010-04-01/Accounts/{sid}/Messages.json`, form-encoded,
//! HTTP Basic auth with the account SID and auth token. Answers are read as Twilio documents them: `201` with the
//! message resource (`sid`), or an error JSON `{"code", "message", "status"}`.

use serde::Deserialize;
use std::time::Duration;

/// A tenant's account, its token opened.
#[derive(Clone)]
pub struct Account {
    pub sid: String,
    pub auth_token: String,
    pub status_callback_url: Option<String>,
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Twilio took it: its message sid.
    Accepted { sid: String },
    /// Twilio refused the number as opted out (error 21610): it goes on the do-not-contact list.
    OptedOut,
    /// Twilio refused it for good (a bad number, a bad sender...): its code and message.
    Refused { code: String, message: String },
    /// Try again later: Twilio was down, slow, limiting (429) or unreachable.
    Retry { reason: String },
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct Problem {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base_url: String,
}

#[derive(Deserialize)]
struct Listed {
    messages: Vec<ListedMessage>,
}

#[derive(Deserialize)]
struct ListedMessage {
    sid: String,
    body: Option<String>,
}

impl TwilioClient {
    /// Looks a message up among the account's latest to `to` (`GET .../Messages.json?To=&PageSize=`): the sid of
    /// one with this body, if Twilio has it. For a job whose sender died between marking it and recording the
    /// answer: whether Twilio took it decides between recording it and sending it.
    #[tracing::instrument(skip_all, fields(to = %to))]
    pub async fn find(&self, account: &Account, to: &str, body: &str) -> Result<Option<String>, String> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, account.sid);
        let url = reqwest::Url::parse_with_params(&url, &[("To", to), ("PageSize", "50")])
            .map_err(|e| format!("Twilio's list URL: {e}"))?;
        let response = self
            .http
            .get(url)
            .basic_auth(&account.sid, Some(&account.auth_token))
            .send()
            .await
            .map_err(|e| format!("listing Twilio's messages: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("listing Twilio's messages: {}", response.status()));
        }
        let listed: Listed = response.json().await.map_err(|e| format!("reading Twilio's list: {e}"))?;
        Ok(listed.messages.into_iter().find(|m| m.body.as_deref() == Some(body)).map(|m| m.sid))
    }

    pub fn new(base_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { http, base_url: base_url.trim_end_matches('/').to_owned() })
    }

    /// Sends one message.
    #[tracing::instrument(skip_all, fields(to = %to))]
    pub async fn send(&self, account: &Account, from: &str, to: &str, body: &str) -> SendOutcome {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, account.sid);
        let mut form: Vec<(&str, &str)> = vec![("To", to), ("Body", body)];
        if from.starts_with("MG") && from.len() == 34 {
            form.push(("MessagingServiceSid", from));
        } else {
            form.push(("From", from));
        }
        if let Some(callback) = &account.status_callback_url {
            form.push(("StatusCallback", callback));
        }
        let response =
            match self.http.post(&url).basic_auth(&account.sid, Some(&account.auth_token)).form(&form).send().await {
                Ok(r) => r,
                Err(e) => return SendOutcome::Retry { reason: format!("calling Twilio: {e}") },
            };
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if status.is_success() {
            return match serde_json::from_str::<Created>(&text) {
                Ok(created) => SendOutcome::Accepted { sid: created.sid },
                // Twilio took it but its answer cannot be read: not sent again; recorded without a sid.
                Err(_) => SendOutcome::Accepted { sid: String::new() },
            };
        }
        let problem: Option<Problem> = serde_json::from_str(&text).ok();
        let code = problem.as_ref().and_then(|p| p.code);
        let message = problem.and_then(|p| p.message).unwrap_or_else(|| text.chars().take(200).collect());
        // Down, limiting, or refusing the account (a changed token): the messages wait rather than fail.
        if status.is_server_error() || matches!(status.as_u16(), 401 | 403 | 429) {
            return SendOutcome::Retry { reason: format!("Twilio answered {status}: {message}") };
        }
        if code == Some(21610) {
            return SendOutcome::OptedOut;
        }
        SendOutcome::Refused { code: code.map_or_else(|| status.as_u16().to_string(), |c| c.to_string()), message }
    }
}
