//! PayPal (<https://developer.paypal.com/api/rest/webhooks/rest/#link-verifysignature>): deliveries verified by
//! PayPal's own `POST /v1/notifications/verify-webhook-signature`
//! (<https://developer.paypal.com/docs/api/webhooks/v1/#verify-webhook-signature_post>).
//!
//! PayPal signs each delivery with its private key and sends `PAYPAL-AUTH-ALGO`, `PAYPAL-CERT-URL`,
//! `PAYPAL-TRANSMISSION-ID`, `PAYPAL-TRANSMISSION-SIG` and `PAYPAL-TRANSMISSION-TIME`. The [`Verifier`] posts those,
//! the endpoint's `webhook_id` and the body as `webhook_event` to PayPal under an OAuth2 client-credentials token
//! (`POST /v1/oauth2/token`, cached until shortly before it expires), and accepts the delivery only when PayPal
//! answers `"verification_status": "SUCCESS"`. The body is sent byte for byte as it arrived, not re-serialised:
//! PayPal checks it against the signature, and a re-ordered or re-formatted copy is a different event.
//!
//! The body is one event: `id` (`WH-...`) and `event_type`.
//!
//! PayPal's offline check is the option: a verifier made [`Verifier::with_certificate_check`] downloads the signing
//! certificate from `PAYPAL-CERT-URL` and checks the signature itself ([`certificate`]), asking PayPal nothing per
//! delivery and needing only the endpoint's `webhook_id`.

pub mod certificate;

use crate::{Delivery, ProviderEvent, Refusal, json_object};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// PayPal's live API.
pub const LIVE: &str = "https://api-m.paypal.com";
/// PayPal's sandbox API.
pub const SANDBOX: &str = "https://api-m.sandbox.paypal.com";

/// The headers PayPal signs a delivery with, lower case, in the order they are looked for.
const AUTH_ALGO: &str = "paypal-auth-algo";
const CERT_URL: &str = "paypal-cert-url";
const TRANSMISSION_ID: &str = "paypal-transmission-id";
const TRANSMISSION_SIG: &str = "paypal-transmission-sig";
const TRANSMISSION_TIME: &str = "paypal-transmission-time";

/// How long before its stated expiry a token stops being used, so that a request never carries one that expires
/// in flight.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// One endpoint's PayPal REST app and the id of its webhook in that app.
#[derive(Clone, PartialEq, Eq)]
pub struct PayPalCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// The webhook's id in the PayPal app (not an event id): PayPal checks the delivery was signed for it.
    pub webhook_id: String,
}

impl std::fmt::Debug for PayPalCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayPalCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("webhook_id", &self.webhook_id)
            .finish()
    }
}

/// Asks PayPal whether deliveries are genuine. Hold one for the service's life: it keeps the HTTP connection pool
/// and each app's OAuth2 token.
#[derive(Debug)]
pub struct Verifier {
    http: reqwest::Client,
    base_url: String,
    /// Access tokens by client id.
    tokens: Mutex<HashMap<String, Token>>,
    /// Present when deliveries are checked against PayPal's certificate instead of by the verify endpoint.
    certificate: Option<certificate::CertificateCheck>,
}

#[derive(Debug, Clone)]
struct Token {
    access_token: String,
    use_until: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

#[derive(Serialize)]
struct VerifyRequest<'a> {
    auth_algo: &'a str,
    cert_url: &'a str,
    transmission_id: &'a str,
    transmission_sig: &'a str,
    transmission_time: &'a str,
    webhook_id: &'a str,
    webhook_event: &'a RawValue,
}

#[derive(Deserialize)]
struct VerifyResponse {
    verification_status: String,
}

/// What one call to the verify endpoint came to.
enum Answer {
    Verified(bool),
    /// PayPal did not accept the access token (expired early or revoked).
    TokenRefused,
}

impl Verifier {
    /// A verifier talking to `base_url` ([`LIVE`], [`SANDBOX`] or a fake), with a 10 s timeout per request.
    pub fn new(base_url: impl Into<String>) -> Verifier {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with timeouts builds");
        Verifier::with_client(http, base_url)
    }

    /// A verifier using the caller's HTTP client (its timeouts, proxy and telemetry).
    pub fn with_client(http: reqwest::Client, base_url: impl Into<String>) -> Verifier {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Verifier { http, base_url, tokens: Mutex::new(HashMap::new()), certificate: None }
    }

    /// This verifier, checking deliveries against PayPal's signing certificate (the offline check) rather than
    /// asking the verify endpoint.
    pub fn with_certificate_check(mut self, check: certificate::CertificateCheck) -> Verifier {
        self.certificate = Some(check);
        self
    }

    /// Whether deliveries are checked against PayPal's certificate (else by the verify endpoint).
    pub fn checks_certificates(&self) -> bool {
        self.certificate.is_some()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Verifies a delivery with PayPal and returns its event. Refuses with [`Refusal::MissingHeader`] before asking
    /// PayPal when a signing header is absent, [`Refusal::BadSignature`] when PayPal answers `FAILURE` (or refuses
    /// the request as invalid), and [`Refusal::VerifierUnavailable`] when PayPal cannot be asked or answers with a
    /// server error, so that the service answers 503 and PayPal retries.
    pub async fn verify(
        &self,
        delivery: &Delivery<'_>,
        credentials: &PayPalCredentials,
    ) -> Result<Vec<ProviderEvent>, Refusal> {
        let header = |name: &'static str| header(delivery, name).ok_or(Refusal::MissingHeader(name));
        let auth_algo = header(AUTH_ALGO)?;
        let cert_url = header(CERT_URL)?;
        let transmission_id = header(TRANSMISSION_ID)?;
        let transmission_sig = header(TRANSMISSION_SIG)?;
        let transmission_time = header(TRANSMISSION_TIME)?;
        // PayPal is asked about the body exactly as it arrived, so it must at least be one JSON object.
        let body = json_object("PayPal", delivery.body)?;
        let raw: &RawValue =
            serde_json::from_slice(delivery.body).map_err(|e| Refusal::BadBody("PayPal", format!("not JSON: {e}")))?;
        if let Some(check) = &self.certificate {
            let signed = certificate::Signed {
                auth_algo,
                cert_url,
                transmission_id,
                transmission_sig,
                transmission_time,
                webhook_id: &credentials.webhook_id,
                body: delivery.body,
            };
            check.verify(&signed).await?;
            return event_of(body);
        }
        let request = VerifyRequest {
            auth_algo,
            cert_url,
            transmission_id,
            transmission_sig,
            transmission_time,
            webhook_id: &credentials.webhook_id,
            webhook_event: raw,
        };
        let verified = match self.ask(&request, credentials, false).await? {
            Answer::Verified(verified) => verified,
            Answer::TokenRefused => match self.ask(&request, credentials, true).await? {
                Answer::Verified(verified) => verified,
                Answer::TokenRefused => {
                    return Err(Refusal::VerifierUnavailable("PayPal refused a fresh access token".into()));
                }
            },
        };
        if !verified {
            return Err(Refusal::BadSignature);
        }
        event_of(body)
    }

    /// Posts the request to the verify endpoint, with the cached token unless `fresh_token`.
    async fn ask(
        &self,
        request: &VerifyRequest<'_>,
        credentials: &PayPalCredentials,
        fresh_token: bool,
    ) -> Result<Answer, Refusal> {
        if fresh_token {
            self.tokens.lock().expect("token cache").remove(&credentials.client_id);
        }
        let token = self.token(credentials).await?;
        let url = format!("{}/v1/notifications/verify-webhook-signature", self.base_url);
        let response = self
            .http
            .post(url)
            .bearer_auth(&token)
            .json(request)
            .send()
            .await
            .map_err(|e| unavailable("the verify endpoint", e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Ok(Answer::TokenRefused);
        }
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Refusal::VerifierUnavailable(format!("the verify endpoint answered {status}")));
        }
        if status == reqwest::StatusCode::BAD_REQUEST || status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
            // PayPal validates the headers' values (patterns and lengths) and the webhook id: what it refuses as
            // an invalid request was not signed by PayPal for this webhook.
            return Ok(Answer::Verified(false));
        }
        if !status.is_success() {
            // 403, 404 and the like say the app or the base URL is misconfigured, not that the delivery is forged.
            return Err(Refusal::VerifierUnavailable(format!("the verify endpoint answered {status}")));
        }
        let answer: VerifyResponse =
            response.json().await.map_err(|e| unavailable("the verify endpoint's answer", e))?;
        match answer.verification_status.as_str() {
            "SUCCESS" => Ok(Answer::Verified(true)),
            "FAILURE" => Ok(Answer::Verified(false)),
            other => Err(Refusal::VerifierUnavailable(format!("the verify endpoint answered `{other}`"))),
        }
    }

    /// The app's access token: the cached one while it is good, else a new one.
    async fn token(&self, credentials: &PayPalCredentials) -> Result<String, Refusal> {
        let now = Instant::now();
        if let Some(token) = self.tokens.lock().expect("token cache").get(&credentials.client_id)
            && token.use_until > now
        {
            return Ok(token.access_token.clone());
        }
        let response = self
            .http
            .post(format!("{}/v1/oauth2/token", self.base_url))
            .basic_auth(&credentials.client_id, Some(&credentials.client_secret))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| unavailable("the token endpoint", e))?;
        let status = response.status();
        if !status.is_success() {
            // Wrong credentials are the endpoint's configuration, not the delivery: PayPal retries until fixed.
            return Err(Refusal::VerifierUnavailable(format!("the token endpoint answered {status}")));
        }
        let token: TokenResponse = response.json().await.map_err(|e| unavailable("the token endpoint's answer", e))?;
        let lifetime = Duration::from_secs(token.expires_in).saturating_sub(TOKEN_MARGIN);
        let cached = Token { access_token: token.access_token, use_until: now + lifetime };
        self.tokens.lock().expect("token cache").insert(credentials.client_id.clone(), cached.clone());
        Ok(cached.access_token)
    }
}

/// The delivery's one event, once verified.
fn event_of(body: serde_json::Value) -> Result<Vec<ProviderEvent>, Refusal> {
    let event_id = match body.get("id").and_then(|v| v.as_str()) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => return Err(Refusal::BadBody("PayPal", "no `id`".into())),
    };
    let event_type = body.get("event_type").and_then(|t| t.as_str()).map(str::to_owned);
    Ok(vec![ProviderEvent { event_id, event_type, body }])
}

/// The first value of a header, its name compared without regard to case.
fn header<'a>(delivery: &Delivery<'a>, name: &str) -> Option<&'a str> {
    delivery.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn unavailable(what: &str, error: reqwest::Error) -> Refusal {
    // Without the URL: it carries nothing secret, but the base URL is configuration, not news.
    Refusal::VerifierUnavailable(format!("{what}: {}", error.without_url()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use almoner_testkit::fake_paypal::{FakePayPal, Transmission};

    const WEBHOOK_ID: &str = "1JE4291016473214C";
    // Keys in an order serde_json would not write them in, and a number in a form it would not write: PayPal must
    // be asked about these bytes, not a re-serialised copy.
    const BODY: &str = r#"{"id":"WH-2WR32451HC0233532-67976317FL4543714","event_version":"1.0","create_time":"2026-12-05T21:00:00.000Z","resource_type":"capture","event_type":"PAYMENT.CAPTURE.COMPLETED","summary":"Payment completed for GBP 25.0 GBP","resource":{"id":"42311647XV020574X","amount":{"value":"25.00","currency_code":"GBP"},"rate":1.50E0}}"#;

    fn credentials() -> PayPalCredentials {
        PayPalCredentials {
            client_id: "app-client".into(),
            client_secret: "app-secret".into(),
            webhook_id: WEBHOOK_ID.into(),
        }
    }

    async fn paypal() -> (FakePayPal, Transmission) {
        let paypal = FakePayPal::start().await;
        paypal.add_app("app-client", "app-secret");
        let transmission = Transmission::of(WEBHOOK_ID, serde_json::from_str(BODY).unwrap());
        paypal.register(transmission.clone());
        (paypal, transmission)
    }

    fn delivery<'a>(headers: &'a [(String, String)], body: &'a str) -> Delivery<'a> {
        Delivery { url: "https://example.org/webhooks/paypal/x", headers, body: body.as_bytes() }
    }

    #[tokio::test]
    async fn accepts_a_genuine_transmission_and_asks_paypal_in_its_wire_format() {
        let (paypal, transmission) = paypal().await;
        let verifier = Verifier::new(paypal.base_url());
        let headers = transmission.headers();
        let events = verifier.verify(&delivery(&headers, BODY), &credentials()).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, "WH-2WR32451HC0233532-67976317FL4543714");
        assert_eq!(events[0].event_type.as_deref(), Some("PAYMENT.CAPTURE.COMPLETED"));
        assert_eq!(events[0].body["resource"]["amount"]["value"], "25.00");
        let asked = paypal.verify_requests();
        assert_eq!(asked.len(), 1);
        assert_eq!(asked[0]["transmission_id"], transmission.transmission_id.as_str());
        assert_eq!(asked[0]["webhook_id"], WEBHOOK_ID);
        assert_eq!(asked[0]["auth_algo"], "SHA256withRSA");
        assert_eq!(asked[0]["webhook_event"], transmission.event);
    }

    #[test]
    fn sends_the_body_byte_for_byte() {
        let raw: &RawValue = serde_json::from_str(BODY).unwrap();
        let request = VerifyRequest {
            auth_algo: "a",
            cert_url: "c",
            transmission_id: "i",
            transmission_sig: "s",
            transmission_time: "t",
            webhook_id: "w",
            webhook_event: raw,
        };
        assert!(serde_json::to_string(&request).unwrap().ends_with(&format!(r#""webhook_event":{BODY}}}"#)));
    }

    #[tokio::test]
    async fn reads_the_headers_in_any_case_and_caches_the_token() {
        let (paypal, transmission) = paypal().await;
        let verifier = Verifier::new(format!("{}/", paypal.base_url()));
        let shouted: Vec<(String, String)> =
            transmission.headers().into_iter().map(|(n, v)| (n.to_ascii_uppercase(), v)).collect();
        for _ in 0..3 {
            assert!(verifier.verify(&delivery(&shouted, BODY), &credentials()).await.is_ok());
        }
        assert_eq!(paypal.token_requests(), 1);
    }

    #[tokio::test]
    async fn gets_a_new_token_when_the_old_one_expires_or_is_refused() {
        let (paypal, transmission) = paypal().await;
        // Tokens that live less than the margin are used once each.
        paypal.set_token_lifetime(Duration::from_secs(30));
        let verifier = Verifier::new(paypal.base_url());
        let headers = transmission.headers();
        assert!(verifier.verify(&delivery(&headers, BODY), &credentials()).await.is_ok());
        assert!(verifier.verify(&delivery(&headers, BODY), &credentials()).await.is_ok());
        assert_eq!(paypal.token_requests(), 2);
        paypal.set_token_lifetime(Duration::from_secs(32_400));
        assert!(verifier.verify(&delivery(&headers, BODY), &credentials()).await.is_ok());
        paypal.revoke_tokens();
        assert!(verifier.verify(&delivery(&headers, BODY), &credentials()).await.is_ok());
        assert_eq!(paypal.token_requests(), 4);
    }

    #[tokio::test]
    async fn refuses_what_paypal_did_not_send() {
        let (paypal, transmission) = paypal().await;
        let verifier = Verifier::new(paypal.base_url());
        let headers = transmission.headers();
        // A tampered body.
        let tampered = BODY.replace("25.00", "2500.00");
        assert_eq!(verifier.verify(&delivery(&headers, &tampered), &credentials()).await, Err(Refusal::BadSignature));
        // Another signature.
        let mut forged = transmission.clone();
        forged.transmission_sig = "Zm9yZ2Vk".into();
        let forged_headers = forged.headers();
        assert_eq!(verifier.verify(&delivery(&forged_headers, BODY), &credentials()).await, Err(Refusal::BadSignature));
        // Signed for another webhook.
        let other = PayPalCredentials { webhook_id: "9XL90610J3647323C".into(), ..credentials() };
        assert_eq!(verifier.verify(&delivery(&headers, BODY), &other).await, Err(Refusal::BadSignature));
        // A header missing: refused before PayPal is asked; an empty one: PayPal refuses the request as invalid.
        let asked = paypal.verify_requests().len();
        let missing: Vec<_> = headers.iter().filter(|(n, _)| n != "paypal-transmission-sig").cloned().collect();
        assert_eq!(
            verifier.verify(&delivery(&missing, BODY), &credentials()).await,
            Err(Refusal::MissingHeader("paypal-transmission-sig"))
        );
        assert_eq!(paypal.verify_requests().len(), asked);
        let empty: Vec<_> = headers
            .iter()
            .map(|(n, v)| (n.clone(), if n == "paypal-cert-url" { String::new() } else { v.clone() }))
            .collect();
        assert_eq!(verifier.verify(&delivery(&empty, BODY), &credentials()).await, Err(Refusal::BadSignature));
        // Not JSON.
        let refusal = verifier.verify(&delivery(&headers, "id=WH-1"), &credentials()).await.unwrap_err();
        assert_eq!(refusal.reason(), "bad_body");
    }

    #[tokio::test]
    async fn is_unavailable_when_paypal_cannot_answer() {
        let (paypal, transmission) = paypal().await;
        let verifier = Verifier::new(paypal.base_url());
        let headers = transmission.headers();
        paypal.fail_next(1);
        let refusal = verifier.verify(&delivery(&headers, BODY), &credentials()).await.unwrap_err();
        assert_eq!(refusal.reason(), "verifier_unavailable", "{refusal}");
        assert!(verifier.verify(&delivery(&headers, BODY), &credentials()).await.is_ok());
        // Credentials PayPal does not know are the endpoint's configuration: PayPal is to retry.
        let wrong =
            PayPalCredentials { client_secret: "not-the-secret".into(), client_id: "other".into(), ..credentials() };
        let refusal = verifier.verify(&delivery(&headers, BODY), &wrong).await.unwrap_err();
        assert_eq!(refusal.reason(), "verifier_unavailable", "{refusal}");
        // A base URL with nothing PayPal-like behind it.
        let misplaced = Verifier::new(format!("{}/nowhere", paypal.base_url()));
        let refusal = misplaced.verify(&delivery(&headers, BODY), &credentials()).await.unwrap_err();
        assert_eq!(refusal.reason(), "verifier_unavailable", "{refusal}");
        // Nobody listening.
        let base_url = paypal.base_url().to_owned();
        drop(paypal);
        let closed = Verifier::new(base_url);
        let refusal = closed.verify(&delivery(&headers, BODY), &credentials()).await.unwrap_err();
        assert_eq!(refusal.reason(), "verifier_unavailable", "{refusal}");
    }

    #[test]
    fn its_future_can_be_spawned_and_its_debug_hides_the_secret() {
        fn send<T: Send>(_: &T) {}
        let verifier = Verifier::new(SANDBOX);
        let headers = Vec::new();
        let credentials = credentials();
        send(&verifier.verify(&delivery(&headers, BODY), &credentials));
        assert!(!format!("{credentials:?}").contains("app-secret"));
    }
}
