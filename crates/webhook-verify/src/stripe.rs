//! Stripe (`Stripe-Signature`, <https://docs.stripe.com/webhooks#verify-manually>).
//!
//! Stripe sends `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...][,v0=<hex>]` and signs `{t}.{body}`
//! with HMAC-SHA256 keyed by the endpoint secret exactly as shown (`whsec_...`, its UTF-8 bytes, not decoded). Any
//! `v1` may match (Stripe sends one per active secret while a secret is rolled); `v0` and other schemes are
//! ignored. As in Stripe's libraries, the timestamp is checked after the signature and only for age: a delivery is
//! stale when `t` is more than the tolerance before now. The body is one event: `id` (`evt_...`) and `type`.

use crate::{Delivery, ProviderEvent, Refusal, Settings, json_object, same, usable};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const HEADER: &str = "stripe-signature";

pub fn verify(
    delivery: &Delivery<'_>,
    secrets: &[&str],
    now: DateTime<Utc>,
    settings: &Settings,
) -> Result<Vec<ProviderEvent>, Refusal> {
    let header = delivery.header(HEADER).ok_or(Refusal::MissingHeader(HEADER))?;
    let (timestamp, given) = parse_header(header)?;
    let matched = usable(secrets).any(|secret| {
        let expected = hex::encode(sign(secret, timestamp, delivery.body));
        given.iter().any(|g| same(expected.as_bytes(), g.as_bytes()))
    });
    if !matched {
        return Err(Refusal::BadSignature);
    }
    // Stripe's libraries refuse only old timestamps (`t < now - tolerance`); a clock a little ahead is no replay.
    let tolerance = i64::try_from(settings.tolerance.as_secs()).unwrap_or(i64::MAX);
    if timestamp < now.timestamp().saturating_sub(tolerance) {
        return Err(Refusal::StaleTimestamp);
    }
    let body = json_object("Stripe", delivery.body)?;
    let event_id = match body.get("id").and_then(|v| v.as_str()) {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => return Err(Refusal::BadBody("Stripe", "no `id`".into())),
    };
    let event_type = body.get("type").and_then(|t| t.as_str()).map(str::to_owned);
    Ok(vec![ProviderEvent { event_id, event_type, body }])
}

/// The timestamp and the `v1` signatures of a `Stripe-Signature` header: comma-separated `key=value` items, in
/// any order; the first `t` counts.
fn parse_header(header: &str) -> Result<(i64, Vec<&str>), Refusal> {
    let items = header.split(',').filter_map(|item| item.split_once('='));
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for (key, value) in items {
        match key {
            "t" if timestamp.is_none() => timestamp = Some(value),
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| Refusal::MalformedHeader(HEADER, "no `t` timestamp".into()))?;
    let timestamp: i64 =
        timestamp.parse().map_err(|_| Refusal::MalformedHeader(HEADER, "`t` is not Unix seconds".into()))?;
    if signatures.is_empty() {
        return Err(Refusal::MalformedHeader(HEADER, "no `v1` signature".into()));
    }
    Ok((timestamp, signatures))
}

/// The raw `v1` signature of a body sent at `timestamp`. The libraries sign the timestamp as they parsed it
/// (`t=0123` is signed as `123`), so it is formatted here from the number, not copied from the header.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// A `Stripe-Signature` header value as Stripe would send it, for tests of code that receives Stripe webhooks.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(sign(secret, timestamp, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    // Made by stripe-python 16.1.0, `WebhookSignature.generate_signature_header(BODY, secret, T)`, and checked with
    // its `verify_header`: see tests/official_signatures.py.
    const BODY: &[u8] = br#"{"id":"evt_1QmXyZ2eZvKYlo2C","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_3QmXyZ","amount":2500}}}"#;
    const T: i64 = 1_733_400_000;
    const SECRET_OLD: &str = "whsec_old0123456789abcdefABCDEF";
    const SECRET_NEW: &str = "whsec_new9876543210fedcbaFEDCBA";
    const SIGNED_OLD: &str = "t=1733400000,v1=7c03a1ddfa44aa58e2fbfc7f483ae5f3af274f4f444b4fa102c0ce6ade52b370";
    const SIGNED_NEW: &str = "t=1733400000,v1=61db038626986c0ed8c0084d1d21ffbc8ee2c4580bf3cb4bd333ac01c8e7f758";

    fn headers(value: &str) -> Vec<(String, String)> {
        vec![("content-type".into(), "application/json".into()), (HEADER.into(), value.into())]
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    fn check(header: &str, body: &[u8], secrets: &[&str], now: i64) -> Result<Vec<ProviderEvent>, Refusal> {
        let h = headers(header);
        let d = Delivery { url: "https://example.org/webhooks/stripe/x", headers: &h, body };
        verify(&d, secrets, at(now), &Settings::default())
    }

    #[test]
    fn signs_as_the_official_library() {
        assert_eq!(signature_header(SECRET_OLD, T, BODY), SIGNED_OLD);
        assert_eq!(signature_header(SECRET_NEW, T, BODY), SIGNED_NEW);
    }

    #[test]
    fn accepts_the_official_signature_with_either_active_secret() {
        let events = check(SIGNED_NEW, BODY, &[SECRET_NEW, SECRET_OLD], T).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, "evt_1QmXyZ2eZvKYlo2C");
        assert_eq!(events[0].event_type.as_deref(), Some("payment_intent.succeeded"));
        assert_eq!(events[0].body["data"]["object"]["amount"], 2500);
        // Signed with the older secret, which is still active during the roll.
        assert!(check(SIGNED_OLD, BODY, &[SECRET_NEW, SECRET_OLD], T).is_ok());
    }

    #[test]
    fn accepts_any_v1_among_several_and_ignores_v0_and_unknown_items() {
        let new = SIGNED_NEW.split_once(",v1=").unwrap().1;
        let old = SIGNED_OLD.split_once(",v1=").unwrap().1;
        let header = format!("v0={old},t={T},v1={},scheme=x,v1={new}", "0".repeat(64));
        assert!(check(&header, BODY, &[SECRET_NEW], T).is_ok());
        // A v0 signature that would match does not count.
        let only_v0 = format!("t={T},v0={new},v1={}", "0".repeat(64));
        assert_eq!(check(&only_v0, BODY, &[SECRET_NEW], T), Err(Refusal::BadSignature));
    }

    #[test]
    fn refuses_a_tampered_body_and_a_wrong_secret() {
        let tampered = String::from_utf8(BODY.to_vec()).unwrap().replace("2500", "25000");
        assert_eq!(check(SIGNED_NEW, tampered.as_bytes(), &[SECRET_NEW], T), Err(Refusal::BadSignature));
        assert_eq!(check(SIGNED_NEW, BODY, &[SECRET_OLD], T), Err(Refusal::BadSignature));
        assert_eq!(check(SIGNED_NEW, BODY, &[], T), Err(Refusal::BadSignature));
        // The secret is the whole string, prefix included.
        assert_eq!(check(SIGNED_NEW, BODY, &["new9876543210fedcbaFEDCBA"], T), Err(Refusal::BadSignature));
        // Stripe's libraries compare lower-case hex; an upper-case copy is not what Stripe sends.
        let upper = format!("t={T},v1={}", SIGNED_NEW.split_once(",v1=").unwrap().1.to_uppercase());
        assert_eq!(check(&upper, BODY, &[SECRET_NEW], T), Err(Refusal::BadSignature));
    }

    #[test]
    fn refuses_timestamps_older_than_the_tolerance_only() {
        assert!(check(SIGNED_NEW, BODY, &[SECRET_NEW], T + 300).is_ok());
        assert_eq!(check(SIGNED_NEW, BODY, &[SECRET_NEW], T + 301), Err(Refusal::StaleTimestamp));
        // As in Stripe's libraries, a timestamp ahead of this clock is not stale.
        assert!(check(SIGNED_NEW, BODY, &[SECRET_NEW], T - 3600).is_ok());
        // A forged header with an old timestamp is a bad signature first.
        assert_eq!(check(SIGNED_NEW, BODY, &[SECRET_OLD], T + 301), Err(Refusal::BadSignature));
    }

    #[test]
    fn refuses_missing_and_malformed_headers_and_bodies_that_are_not_events() {
        let d = Delivery { url: "", headers: &[], body: BODY };
        assert_eq!(verify(&d, &[SECRET_NEW], at(T), &Settings::default()), Err(Refusal::MissingHeader(HEADER)));
        for header in ["", "v1=abc", "t=soon,v1=abc", &format!("t={T}"), &format!("t={T},v0=abc")] {
            assert!(
                matches!(check(header, BODY, &[SECRET_NEW], T), Err(Refusal::MalformedHeader(HEADER, _))),
                "{header}"
            );
        }
        for body in [&b"[]"[..], b"not json", br#"{"type":"x"}"#] {
            let header = signature_header(SECRET_NEW, T, body);
            assert_eq!(check(&header, body, &[SECRET_NEW], T).unwrap_err().reason(), "bad_body");
        }
    }
}
