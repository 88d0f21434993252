//! GoCardless (`Webhook-Signature`, <https://developer.gocardless.com/getting-started/staying-up-to-date-with-webhooks>).
//!
//! GoCardless sends `Webhook-Signature: <hex>`, the lower-case hex HMAC-SHA256 of the raw body keyed by the
//! endpoint's webhook secret (its UTF-8 bytes), and compared as GoCardless's libraries do: the hex strings, in
//! constant time. A bad signature is answered `498 Invalid Token`. There is no signed timestamp. The body is
//! `{"events": [...], "meta": {...}}`, a batch: each element is one event, with its `id` (`EV...`) and
//! `{resource_type}.{action}` (e.g. `payments.confirmed`) as its type.

use crate::{Delivery, ProviderEvent, Refusal, json_object, same, usable};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const HEADER: &str = "webhook-signature";

pub fn verify(delivery: &Delivery<'_>, secrets: &[&str]) -> Result<Vec<ProviderEvent>, Refusal> {
    let given = delivery.header(HEADER).ok_or(Refusal::MissingHeader(HEADER))?;
    let matched = usable(secrets).any(|secret| same(signature(secret, delivery.body).as_bytes(), given.as_bytes()));
    if !matched {
        return Err(Refusal::BadSignature);
    }
    let body = json_object("GoCardless", delivery.body)?;
    let Some(serde_json::Value::Array(events)) = body.get("events") else {
        return Err(Refusal::BadBody("GoCardless", "no `events` array".into()));
    };
    if events.is_empty() {
        return Err(Refusal::BadBody("GoCardless", "`events` is empty".into()));
    }
    events.iter().enumerate().map(|(i, event)| parse_event(i, event)).collect()
}

fn parse_event(index: usize, event: &serde_json::Value) -> Result<ProviderEvent, Refusal> {
    let field = |name: &str| event.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    let bad = |what: &str| Refusal::BadBody("GoCardless", format!("event {index} has no `{what}`"));
    let event_id = field("id").ok_or_else(|| bad("id"))?;
    let resource_type = field("resource_type").ok_or_else(|| bad("resource_type"))?;
    let action = field("action").ok_or_else(|| bad("action"))?;
    Ok(ProviderEvent {
        event_id: event_id.to_owned(),
        event_type: Some(format!("{resource_type}.{action}")),
        body: event.clone(),
    })
}

/// The `Webhook-Signature` GoCardless sends with a body: lower-case hex HMAC-SHA256 keyed by the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Signatures made with Python's hmac (lower-case hex HMAC-SHA256 of the body) and accepted by gocardless_pro
    // 3.22.0's `webhooks.parse(BODY, secret, signature)`: see tests/official_signatures.py.
    const BODY: &[u8] = br#"{"events":[{"id":"EV0123ABC","created_at":"2026-12-05T10:00:00.000Z","resource_type":"payments","action":"confirmed","links":{"payment":"PM0123"},"details":{"origin":"gocardless","cause":"payment_confirmed"}},{"id":"EV0124DEF","created_at":"2026-12-05T10:00:01.000Z","resource_type":"mandates","action":"active","links":{"mandate":"MD0456"}}],"meta":{"webhook_id":"WB0001"}}"#;
    const SECRET_OLD: &str = "gc-old-secret-0123";
    const SECRET_NEW: &str = "gc-new-secret-4567";
    const SIGNED_OLD: &str = "b4c231a67112bcf7332fecd2d61d752b8cb4729261b04f16cff21408c74ecb66";
    const SIGNED_NEW: &str = "8d190b33c0dd91e65f486a55aadc500fe3feb9ec11472e5d3f2dd2ac90671a73";

    fn check(signature: &str, body: &[u8], secrets: &[&str]) -> Result<Vec<ProviderEvent>, Refusal> {
        let h =
            vec![("content-type".to_owned(), "application/json".to_owned()), (HEADER.to_owned(), signature.to_owned())];
        verify(&Delivery { url: "https://example.org/webhooks/gocardless/x", headers: &h, body }, secrets)
    }

    #[test]
    fn signs_as_gocardless_library_accepts() {
        assert_eq!(signature(SECRET_OLD, BODY), SIGNED_OLD);
        assert_eq!(signature(SECRET_NEW, BODY), SIGNED_NEW);
    }

    #[test]
    fn accepts_either_active_secret_and_returns_one_event_per_element() {
        let events = check(SIGNED_NEW, BODY, &[SECRET_NEW, SECRET_OLD]).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event_id, "EV0123ABC");
        assert_eq!(events[0].event_type.as_deref(), Some("payments.confirmed"));
        assert_eq!(events[0].body["links"]["payment"], "PM0123");
        assert_eq!(events[1].event_id, "EV0124DEF");
        assert_eq!(events[1].event_type.as_deref(), Some("mandates.active"));
        // Signed with the older secret, still active during a rotation.
        assert_eq!(check(SIGNED_OLD, BODY, &[SECRET_NEW, SECRET_OLD]).unwrap(), events);
    }

    #[test]
    fn refuses_a_tampered_body_a_wrong_secret_and_a_missing_header() {
        let tampered = String::from_utf8(BODY.to_vec()).unwrap().replace("confirmed", "failed");
        assert_eq!(check(SIGNED_NEW, tampered.as_bytes(), &[SECRET_NEW]), Err(Refusal::BadSignature));
        assert_eq!(check(SIGNED_NEW, BODY, &[SECRET_OLD]), Err(Refusal::BadSignature));
        assert_eq!(check(&SIGNED_NEW.to_uppercase(), BODY, &[SECRET_NEW]), Err(Refusal::BadSignature));
        assert_eq!(check("", BODY, &[SECRET_NEW]), Err(Refusal::BadSignature));
        let d = Delivery { url: "", headers: &[], body: BODY };
        assert_eq!(verify(&d, &[SECRET_NEW]), Err(Refusal::MissingHeader(HEADER)));
    }

    #[test]
    fn refuses_bodies_without_events() {
        for body in [
            &br#"{"events":[]}"#[..],
            br#"{"meta":{}}"#,
            br#"{"events":{}}"#,
            br#"[]"#,
            br#"{"events":[{"id":"EV1","resource_type":"payments"}]}"#,
        ] {
            let refusal = check(&signature(SECRET_NEW, body), body, &[SECRET_NEW]).unwrap_err();
            assert_eq!(refusal.reason(), "bad_body", "{}", String::from_utf8_lossy(body));
        }
    }
}
