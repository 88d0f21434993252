//! What a payment provider's event means for fundraising, read from the provider's own JSON: a payment to record
//! as a gift, a refund of one, or nothing fundraising keeps. No I/O here: the consumer (`worker::payments`) and the
//! application layer (`app::payments`) decide what to write.
//!
//! Stripe's objects are read as its API reference documents them: amounts are integers in minor units, currencies
//! lower case, times Unix seconds.

use almoner_types::{Currency, Email};
use chrono::{DateTime, NaiveDate};
use serde_json::Value;

/// A payment provider fundraising reads events from; its name is also the gifts' `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Stripe,
    PayPal,
    GoCardless,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::PayPal => "paypal",
            Self::GoCardless => "gocardless",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "stripe" => Some(Self::Stripe),
            "paypal" => Some(Self::PayPal),
            "gocardless" => Some(Self::GoCardless),
            _ => None,
        }
    }
}

/// Who paid, as far as the provider tells.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payer {
    /// The provider's customer id (Stripe `cus_...`).
    pub customer_id: Option<String>,
    pub email: Option<Email>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

/// A payment that succeeded: a gift once its donor is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    pub provider: Provider,
    /// The provider's id of the payment (Stripe's payment intent), the gift's `external_reference`: whichever
    /// events tell of it, one payment is one gift.
    pub reference: String,
    pub amount_minor: i64,
    pub currency: Currency,
    pub date: NaiveDate,
    pub payment_method: Option<String>,
    pub payer: Payer,
}

/// What the provider says is refunded of a payment, in all so far (Stripe's `amount_refunded` is cumulative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    pub provider: Provider,
    /// The refunded payment's reference.
    pub payment_reference: String,
    pub refunded_total_minor: i64,
    pub currency: Currency,
    pub date: NaiveDate,
}

/// What a provider event becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    Payment(ProviderPayment),
    Refund(ProviderRefund),
    /// Understood, and nothing for fundraising (another event type, an unpaid session): acknowledged.
    Ignored(String),
}

/// Why an event can never be applied: it goes to the dead-letter queue with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

fn unreadable(message: impl Into<String>) -> Unreadable {
    Unreadable(message.into())
}

fn text<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn required_text<'a>(object: &'a Value, field: &str) -> Result<&'a str, Unreadable> {
    text(object, field).ok_or_else(|| unreadable(format!("{field} is missing")))
}

fn amount(object: &Value, field: &str) -> Result<i64, Unreadable> {
    object
        .get(field)
        .and_then(Value::as_i64)
        .filter(|a| *a >= 0)
        .ok_or_else(|| unreadable(format!("{field} is not an amount in minor units")))
}

fn currency(object: &Value) -> Result<Currency, Unreadable> {
    Currency::parse(required_text(object, "currency")?).map_err(|e| unreadable(format!("currency {}", e.0)))
}

fn date(object: &Value, field: &str) -> Result<NaiveDate, Unreadable> {
    object
        .get(field)
        .and_then(Value::as_i64)
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .map(|t| t.date_naive())
        .ok_or_else(|| unreadable(format!("{field} is not a Unix time")))
}

/// A customer is an id, or an expanded object carrying it.
fn customer(object: &Value) -> Option<String> {
    match object.get("customer") {
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_owned()),
        Some(expanded @ Value::Object(_)) => text(expanded, "id").map(str::to_owned),
        _ => None,
    }
}

/// An email that does not parse is treated as no email: the payment is staged rather than refused.
fn email(candidates: &[Option<&str>]) -> Option<Email> {
    candidates.iter().flatten().find_map(|e| Email::parse(e).ok())
}

/// "Ann Marie Smith": first name "Ann Marie", last name "Smith". One word is a first name only.
pub fn split_name(name: &str) -> (Option<String>, Option<String>) {
    let words: Vec<&str> = name.split_whitespace().collect();
    match words.as_slice() {
        [] => (None, None),
        [only] => (Some((*only).to_owned()), None),
        [first @ .., last] => (Some(first.join(" ")), Some((*last).to_owned())),
    }
}

fn payer(customer_id: Option<String>, email: Option<Email>, name: Option<&str>) -> Payer {
    let (first_name, last_name) = name.map(split_name).unwrap_or((None, None));
    Payer { customer_id, email, first_name, last_name }
}

/// Reads a Stripe event (`{"id", "type", "created", "data": {"object": ...}}`).
pub fn stripe(event: &Value) -> Result<PaymentEvent, Unreadable> {
    let event_type = required_text(event, "type")?;
    let object = event
        .get("data")
        .and_then(|d| d.get("object"))
        .filter(|o| o.is_object())
        .ok_or_else(|| unreadable("data.object is missing"))?;
    match event_type {
        "payment_intent.succeeded" => stripe_payment_intent(object).map(PaymentEvent::Payment),
        "checkout.session.completed" => stripe_checkout_session(object),
        "charge.refunded" => stripe_charge_refunded(object, event).map(PaymentEvent::Refund),
        other => Ok(PaymentEvent::Ignored(format!("stripe {other} is not mapped"))),
    }
}

fn stripe_payment_intent(pi: &Value) -> Result<ProviderPayment, Unreadable> {
    // A payment intent carries no name; its charge's billing details (listed on older API versions, or when
    // expanded) do.
    let charge = pi
        .get("latest_charge")
        .filter(|c| c.is_object())
        .or_else(|| pi.get("charges").and_then(|c| c.get("data")).and_then(|d| d.get(0)));
    let billing = charge.and_then(|c| c.get("billing_details"));
    let name = billing.and_then(|b| text(b, "name")).or_else(|| pi.get("shipping").and_then(|s| text(s, "name")));
    let email = email(&[text(pi, "receipt_email"), billing.and_then(|b| text(b, "email"))]);
    Ok(ProviderPayment {
        provider: Provider::Stripe,
        reference: required_text(pi, "id")?.to_owned(),
        amount_minor: positive(amount(pi, "amount_received")?, "amount_received")?,
        currency: currency(pi)?,
        date: date(pi, "created")?,
        payment_method: pi
            .get("payment_method_types")
            .and_then(|t| t.get(0))
            .and_then(Value::as_str)
            .map(str::to_owned),
        payer: payer(customer(pi), email, name),
    })
}

fn positive(amount: i64, field: &str) -> Result<i64, Unreadable> {
    if amount > 0 { Ok(amount) } else { Err(unreadable(format!("{field} must be more than 0 for a payment"))) }
}

fn stripe_checkout_session(session: &Value) -> Result<PaymentEvent, Unreadable> {
    let mode = required_text(session, "mode")?;
    if mode != "payment" {
        return Ok(PaymentEvent::Ignored(format!("stripe checkout session in {mode} mode is not mapped")));
    }
    if text(session, "payment_status") != Some("paid") {
        return Ok(PaymentEvent::Ignored("stripe checkout session is not paid".into()));
    }
    // Keyed on its payment intent, so the intent's own event and this one make one gift.
    let reference = match session.get("payment_intent") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_owned(),
        Some(expanded @ Value::Object(_)) => required_text(expanded, "id")?.to_owned(),
        _ => return Err(unreadable("payment_intent is missing from a paid session")),
    };
    let details = session.get("customer_details");
    let email = email(&[details.and_then(|d| text(d, "email")), text(session, "customer_email")]);
    let name = details.and_then(|d| text(d, "name"));
    Ok(PaymentEvent::Payment(ProviderPayment {
        provider: Provider::Stripe,
        reference,
        amount_minor: positive(amount(session, "amount_total")?, "amount_total")?,
        currency: currency(session)?,
        date: date(session, "created")?,
        payment_method: session
            .get("payment_method_types")
            .and_then(|t| t.get(0))
            .and_then(Value::as_str)
            .map(str::to_owned),
        payer: payer(customer(session), email, name),
    }))
}

fn stripe_charge_refunded(charge: &Value, event: &Value) -> Result<ProviderRefund, Unreadable> {
    let payment_reference = match charge.get("payment_intent") {
        Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_owned(),
        Some(expanded @ Value::Object(_)) => required_text(expanded, "id")?.to_owned(),
        _ => return Err(unreadable("payment_intent is missing: a charge without one was never a gift")),
    };
    Ok(ProviderRefund {
        provider: Provider::Stripe,
        payment_reference,
        refunded_total_minor: positive(amount(charge, "amount_refunded")?, "amount_refunded")?,
        currency: currency(charge)?,
        // When the refund happened: the event's time, not the charge's.
        date: date(event, "created").or_else(|_| date(charge, "created"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(event_type: &str, object: Value) -> Value {
        json!({"id": "evt_1", "object": "event", "type": event_type, "created": 1_750_000_000,
               "data": {"object": object}})
    }

    #[test]
    fn a_succeeded_payment_intent_is_a_payment_in_minor_units_dated_when_created() {
        let pi = json!({"id": "pi_1", "object": "payment_intent", "amount": 2500, "amount_received": 2000,
            "currency": "gbp", "created": 1_743_897_600, "customer": "cus_1", "receipt_email": "ann@example.org",
            "payment_method_types": ["card"],
            "charges": {"data": [{"billing_details": {"name": "Ann Marie Smith", "email": null}}]}});
        let PaymentEvent::Payment(p) = stripe(&event("payment_intent.succeeded", pi)).unwrap() else { panic!() };
        assert_eq!((p.reference.as_str(), p.amount_minor, p.currency.code()), ("pi_1", 2000, "GBP"));
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2025, 4, 6).unwrap());
        assert_eq!(p.payment_method.as_deref(), Some("card"));
        assert_eq!(p.payer.customer_id.as_deref(), Some("cus_1"));
        assert_eq!(p.payer.email.unwrap().as_str(), "ann@example.org");
        assert_eq!((p.payer.first_name.as_deref(), p.payer.last_name.as_deref()), (Some("Ann Marie"), Some("Smith")));
    }

    #[test]
    fn a_paid_checkout_session_is_its_payment_intents_payment_and_others_are_ignored() {
        let session = json!({"id": "cs_1", "mode": "payment", "payment_status": "paid", "payment_intent": "pi_1",
            "amount_total": 1000, "currency": "eur", "created": 1_750_000_000, "customer": null,
            "customer_details": {"email": "bo@example.org", "name": "Bo"}});
        let PaymentEvent::Payment(p) = stripe(&event("checkout.session.completed", session.clone())).unwrap() else {
            panic!()
        };
        assert_eq!((p.reference.as_str(), p.amount_minor, p.currency.code()), ("pi_1", 1000, "EUR"));
        assert_eq!((p.payer.first_name.as_deref(), p.payer.last_name), (Some("Bo"), None));
        let mut unpaid = session.clone();
        unpaid["payment_status"] = json!("unpaid");
        assert!(matches!(stripe(&event("checkout.session.completed", unpaid)), Ok(PaymentEvent::Ignored(_))));
        let mut subscription = session;
        subscription["mode"] = json!("subscription");
        assert!(matches!(stripe(&event("checkout.session.completed", subscription)), Ok(PaymentEvent::Ignored(_))));
        assert!(matches!(stripe(&event("customer.created", json!({}))), Ok(PaymentEvent::Ignored(_))));
    }

    #[test]
    fn a_refunded_charge_says_what_is_refunded_in_all() {
        let charge = json!({"id": "ch_1", "payment_intent": "pi_1", "amount": 2000, "amount_refunded": 500,
            "currency": "gbp", "created": 1_700_000_000});
        let PaymentEvent::Refund(r) = stripe(&event("charge.refunded", charge)).unwrap() else { panic!() };
        assert_eq!((r.payment_reference.as_str(), r.refunded_total_minor), ("pi_1", 500));
        assert_eq!(r.date, NaiveDate::from_ymd_opt(2025, 6, 15).unwrap());
    }

    #[test]
    fn what_cannot_be_read_says_why() {
        assert_eq!(stripe(&json!({"type": "payment_intent.succeeded"})).unwrap_err().0, "data.object is missing");
        let bad = json!({"id": "pi_1", "amount_received": "20", "currency": "gbp", "created": 1});
        assert!(stripe(&event("payment_intent.succeeded", bad)).unwrap_err().0.contains("amount_received"));
        let odd = json!({"id": "pi_1", "amount_received": 20, "currency": "xyz", "created": 1});
        assert!(stripe(&event("payment_intent.succeeded", odd)).unwrap_err().0.contains("currency"));
    }

    #[test]
    fn names_split_on_the_last_word() {
        assert_eq!(split_name(" Ann  Smith "), (Some("Ann".into()), Some("Smith".into())));
        assert_eq!(split_name("Cher"), (Some("Cher".into()), None));
        assert_eq!(split_name(" "), (None, None));
    }
}
