//! Standard Webhooks (<https://www.standardwebhooks.com>, "Verifying webhook authenticity").
//!
//! The sender signs `{webhook-id}.{webhook-timestamp}.{body}` with HMAC-SHA256 under the secret's key (the base64
//! after `whsec_`) and sends `webhook-signature: v1,<base64> [v1,<base64> ...]`; any `v1` signature may match, and
//! the timestamp must be within the tolerance. The event id is `webhook-id`; the type is the body's `type`, if any.

use crate::{Delivery, ProviderEvent, Refusal, Settings, fresh, json_object, same, usable};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub fn verify(
    delivery: &Delivery<'_>,
    secrets: &[&str],
    now: DateTime<Utc>,
    settings: &Settings,
) -> Result<Vec<ProviderEvent>, Refusal> {
    let id = delivery.header("webhook-id").ok_or(Refusal::MissingHeader("webhook-id"))?;
    let timestamp = delivery.header("webhook-timestamp").ok_or(Refusal::MissingHeader("webhook-timestamp"))?;
    let signatures = delivery.header("webhook-signature").ok_or(Refusal::MissingHeader("webhook-signature"))?;
    let seconds: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::MalformedHeader("webhook-timestamp", "not Unix seconds".into()))?;
    let given: Vec<Vec<u8>> =
        signatures.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|s| STANDARD.decode(s).ok()).collect();
    if given.is_empty() {
        return Err(Refusal::MalformedHeader("webhook-signature", "no v1 signature".into()));
    }
    let matched = usable(secrets).filter_map(key).filter(|key| !key.is_empty()).any(|key| {
        let expected = sign(&key, id, timestamp.trim(), delivery.body);
        given.iter().any(|g| same(&expected, g))
    });
    if !matched {
        return Err(Refusal::BadSignature);
    }
    // After the signature: a stale timestamp on a forged request says nothing worth telling.
    if !fresh(seconds, now, settings) {
        return Err(Refusal::StaleTimestamp);
    }
    let body = json_object("Standard Webhooks", delivery.body)?;
    let event_type = body.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    Ok(vec![ProviderEvent { event_id: id.to_owned(), event_type, body }])
}

/// The HMAC key of a `whsec_<base64>` secret (a secret without the prefix is read as the base64 alone).
fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_").unwrap_or(secret)).ok()
}

/// The raw `v1` signature of a message.
pub fn sign(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // The example of the Standard Webhooks reference libraries' tests: secret, id, timestamp, payload and the
    // signature they compute for it.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: &str = "1614265330";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(signature: &str) -> Vec<(String, String)> {
        vec![
            ("webhook-id".into(), ID.into()),
            ("webhook-timestamp".into(), TIMESTAMP.into()),
            ("webhook-signature".into(), signature.into()),
        ]
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    #[test]
    fn accepts_the_reference_signature_among_others_and_with_a_rotated_secret() {
        let h = headers(&format!("v1,bm90IGl0 {SIGNATURE}"));
        let d = Delivery { url: "https://example.org/webhooks/standard/x", headers: &h, body: BODY };
        let events = verify(&d, &["whsec_b2xkIHNlY3JldA==", SECRET], at(1_614_265_330), &Settings::default()).unwrap();
        assert_eq!(events[0].event_id, ID);
        assert_eq!(events[0].event_type, None);
    }

    #[test]
    fn refuses_tampering_wrong_secrets_stale_timestamps_and_missing_headers() {
        let h = headers(SIGNATURE);
        let now = at(1_614_265_330);
        let s = Settings::default();
        let tampered = Delivery { url: "", headers: &h, body: br#"{"test": 2432232315}"# };
        assert_eq!(verify(&tampered, &[SECRET], now, &s), Err(Refusal::BadSignature));
        let d = Delivery { url: "", headers: &h, body: BODY };
        assert_eq!(verify(&d, &["whsec_b2xkIHNlY3JldA=="], now, &s), Err(Refusal::BadSignature));
        assert_eq!(verify(&d, &[SECRET], at(1_614_265_330 + 301), &s), Err(Refusal::StaleTimestamp));
        assert_eq!(verify(&d, &[SECRET], at(1_614_265_330 - 301), &s), Err(Refusal::StaleTimestamp));
        assert!(verify(&d, &[SECRET], at(1_614_265_330 + 300), &s).is_ok());
        let missing = Delivery { url: "", headers: &h[..2], body: BODY };
        assert_eq!(verify(&missing, &[SECRET], now, &s), Err(Refusal::MissingHeader("webhook-signature")));
    }
}
