//! What a payment provider's event means for fundraising, read from the provider's own JSON: a payment to record
//! as a gift, a refund of one, or nothing fundraising keeps. No I/O here: the consumer (`worker::payments`) and the
//! application layer (`app::payments`) decide what to write.
//!
//! Stripe's objects are read as its API reference documents them: amounts are integers in minor units, currencies
//! lower case, times Unix seconds.

use almoner_events::fundraising::{RecurringInterval, RecurringStatus};
use almoner_types::{Currency, Email, Money};
use chrono::{DateTime, NaiveDate};
use serde_json::Value;

/// A payment provider fundraising reads events from; its name is also the gifts' `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Stripe,
    PayPal,
    GoCardless,
    /// Pulled from JustGiving's API (`app::justgiving`), never a webhook.
    JustGiving,
}

impl Provider {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stripe => "stripe",
            Self::PayPal => "paypal",
            Self::GoCardless => "gocardless",
            Self::JustGiving => "justgiving",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "stripe" => Some(Self::Stripe),
            "paypal" => Some(Self::PayPal),
            "gocardless" => Some(Self::GoCardless),
            "justgiving" => Some(Self::JustGiving),
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

/// A recurring agreement as the provider describes it now (a Stripe subscription).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAgreement {
    pub provider: Provider,
    /// The provider's id of the subscription or mandate.
    pub reference: String,
    pub customer_id: Option<String>,
    pub amount_minor: i64,
    pub currency: Currency,
    pub interval: RecurringInterval,
    pub status: RecurringStatus,
    pub next_expected_date: Option<NaiveDate>,
    /// The mandate it is paid through (GoCardless): when the mandate ends, so does the agreement.
    pub mandate: Option<String>,
}

/// A recurring agreement as far as the provider tells now (a PayPal subscription: its plan is not in the event).
/// What it leaves out is kept from the agreement as known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementChange {
    pub provider: Provider,
    pub reference: String,
    pub status: RecurringStatus,
    pub amount: Option<Money>,
    pub interval: Option<RecurringInterval>,
    pub next_expected_date: Option<NaiveDate>,
    /// The subscriber: their donor (matched, never staged) is the agreement's.
    pub payer: Payer,
}

/// What a provider event becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentEvent {
    Payment(ProviderPayment),
    /// A payment of a recurring agreement (the provider's subscription `agreement`).
    RecurringPayment {
        payment: ProviderPayment,
        agreement: String,
    },
    Refund(ProviderRefund),
    Agreement(ProviderAgreement),
    AgreementChanged(AgreementChange),
    /// A subscription was signed up for by this payer (a Stripe checkout session in subscription mode): it tells
    /// whose the agreement is.
    AgreementStarted {
        agreement: String,
        payer: Payer,
    },
    /// The provider's payment failed or was cancelled: its gift, if it is one, failed.
    PaymentFailed {
        provider: Provider,
        reference: String,
    },
    /// A mandate ended (GoCardless): the agreements paid through it are `status` (cancelled or lapsed).
    MandateEnded {
        provider: Provider,
        mandate: String,
        status: RecurringStatus,
    },
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
        "invoice.paid" => stripe_invoice_paid(object),
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            stripe_subscription(object, event_type == "customer.subscription.deleted")
        }
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
    if mode == "subscription" {
        let agreement = id_of(session, "subscription")?.ok_or_else(|| unreadable("subscription is missing"))?;
        let details = session.get("customer_details");
        let email = email(&[details.and_then(|d| text(d, "email")), text(session, "customer_email")]);
        let name = details.and_then(|d| text(d, "name"));
        return Ok(PaymentEvent::AgreementStarted { agreement, payer: payer(customer(session), email, name) });
    }
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

/// Reads a PayPal webhook event (`{"id": "WH-...", "event_type", "resource"}`). Amounts are decimal strings in
/// major units, converted exactly; times are RFC 3339.
pub fn paypal(event: &Value) -> Result<PaymentEvent, Unreadable> {
    let event_type = required_text(event, "event_type")?;
    let resource = event.get("resource").filter(|r| r.is_object()).ok_or_else(|| unreadable("resource is missing"))?;
    match event_type {
        "PAYMENT.CAPTURE.COMPLETED" => paypal_capture(resource).map(PaymentEvent::Payment),
        "PAYMENT.CAPTURE.REFUNDED" => paypal_refund(resource).map(PaymentEvent::Refund),
        "PAYMENT.SALE.COMPLETED" => paypal_sale(resource),
        other if other.starts_with("BILLING.SUBSCRIPTION.") => paypal_subscription(resource),
        other => Ok(PaymentEvent::Ignored(format!("paypal {other} is not mapped"))),
    }
}

/// A PayPal subscription as it is now (`BILLING.SUBSCRIPTION.*`). Its amount and interval are on its plan, which
/// the event does not carry: the amount is the last payment's (or the plan's override), the interval the plan
/// override's, or else the one between the last payment and the next billing time; what the event does not tell
/// is kept from the agreement as known.
fn paypal_subscription(sub: &Value) -> Result<PaymentEvent, Unreadable> {
    let reference = required_text(sub, "id")?.to_owned();
    let status = match required_text(sub, "status")? {
        "ACTIVE" => RecurringStatus::Active,
        "SUSPENDED" => RecurringStatus::Paused,
        "CANCELLED" | "EXPIRED" => RecurringStatus::Cancelled,
        "APPROVAL_PENDING" | "APPROVED" => {
            return Ok(PaymentEvent::Ignored("paypal subscription is not active yet".into()));
        }
        other => return Err(unreadable(format!("subscription status {other} is not one PayPal documents"))),
    };
    let billing = sub.get("billing_info");
    let last_payment = billing.and_then(|b| b.get("last_payment")).filter(|p| p.get("amount").is_some());
    let next_billing = billing
        .filter(|b| text(b, "next_billing_time").is_some())
        .map(|b| rfc3339_date(b, "next_billing_time"))
        .transpose()?;
    // The plan's regular cycle, when the subscription overrides the plan.
    let regular = sub
        .get("plan")
        .and_then(|p| p.get("billing_cycles"))
        .and_then(Value::as_array)
        .and_then(|cycles| cycles.iter().find(|c| text(c, "tenure_type") == Some("REGULAR")));
    let plan_price = regular
        .and_then(|c| c.get("pricing_scheme"))
        .filter(|p| p.get("fixed_price").is_some())
        .map(|p| paypal_money(p, "fixed_price"))
        .transpose()?;
    let amount = match last_payment {
        Some(payment) => Some(paypal_money(payment, "amount")?),
        None => plan_price,
    };
    let interval = match regular.and_then(|c| c.get("frequency")) {
        Some(frequency) => {
            let count = frequency.get("interval_count").and_then(Value::as_i64).unwrap_or(1);
            Some(match (required_text(frequency, "interval_unit")?, count) {
                ("WEEK", 1) => RecurringInterval::Weekly,
                ("MONTH", 1) => RecurringInterval::Monthly,
                ("MONTH", 3) => RecurringInterval::Quarterly,
                ("YEAR", 1) | ("MONTH", 12) => RecurringInterval::Annually,
                (unit, count) => {
                    return Err(unreadable(format!("every {count} {unit} is not an interval fundraising keeps")));
                }
            })
        }
        None => {
            let paid = last_payment.map(|p| rfc3339_date(p, "time")).transpose()?;
            match (paid, next_billing) {
                (Some(paid), Some(next)) => interval_between(paid, next),
                _ => None,
            }
        }
    };
    let subscriber = sub.get("subscriber").cloned().unwrap_or_default();
    let name = subscriber.get("name").cloned().unwrap_or_default();
    let payer = Payer {
        customer_id: text(&subscriber, "payer_id").map(str::to_owned),
        email: email(&[text(&subscriber, "email_address")]),
        first_name: text(&name, "given_name").map(str::to_owned),
        last_name: text(&name, "surname").map(str::to_owned),
    };
    Ok(PaymentEvent::AgreementChanged(AgreementChange {
        provider: Provider::PayPal,
        reference,
        status,
        amount: amount.map(|m| positive(m.amount_minor, "amount").map(|_| m)).transpose()?,
        interval,
        next_expected_date: next_billing,
        payer,
    }))
}

/// The interval one payment is from the next, when the days between them name one.
fn interval_between(paid: NaiveDate, next: NaiveDate) -> Option<RecurringInterval> {
    match (next - paid).num_days() {
        6..=8 => Some(RecurringInterval::Weekly),
        27..=32 => Some(RecurringInterval::Monthly),
        88..=93 => Some(RecurringInterval::Quarterly),
        360..=370 => Some(RecurringInterval::Annually),
        _ => None,
    }
}

/// A sale (PayPal's v1 payments), recorded when it pays a subscription (`billing_agreement_id`); other sales are
/// the captures' business. Its amount is `{"total": "10.00", "currency": "GBP"}`.
fn paypal_sale(sale: &Value) -> Result<PaymentEvent, Unreadable> {
    let Some(agreement) = text(sale, "billing_agreement_id") else {
        return Ok(PaymentEvent::Ignored("paypal sale of no subscription".into()));
    };
    let money = sale.get("amount").ok_or_else(|| unreadable("amount is missing"))?;
    let currency = Currency::parse(required_text(money, "currency")?)
        .map_err(|e| unreadable(format!("amount.currency {}", e.0)))?;
    let total = Money::parse_major(required_text(money, "total")?, currency)
        .map_err(|e| unreadable(format!("amount.total {}", e.0)))?;
    Ok(PaymentEvent::RecurringPayment {
        payment: ProviderPayment {
            provider: Provider::PayPal,
            reference: required_text(sale, "id")?.to_owned(),
            amount_minor: positive(total.amount_minor, "amount.total")?,
            currency,
            date: rfc3339_date(sale, "create_time")?,
            payment_method: Some("paypal".into()),
            // A sale names no payer: the subscription's subscriber is (see `app::recurring`).
            payer: Payer::default(),
        },
        agreement: agreement.to_owned(),
    })
}

/// PayPal's money object: `{"currency_code": "GBP", "value": "12.50"}`.
fn paypal_money(object: &Value, field: &str) -> Result<Money, Unreadable> {
    let money = object.get(field).ok_or_else(|| unreadable(format!("{field} is missing")))?;
    let currency = Currency::parse(required_text(money, "currency_code")?)
        .map_err(|e| unreadable(format!("{field}.currency_code {}", e.0)))?;
    Money::parse_major(required_text(money, "value")?, currency)
        .map_err(|e| unreadable(format!("{field}.value {}", e.0)))
}

fn rfc3339_date(object: &Value, field: &str) -> Result<NaiveDate, Unreadable> {
    text(object, field)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc).date_naive())
        .ok_or_else(|| unreadable(format!("{field} is not an RFC 3339 time")))
}

fn paypal_capture(capture: &Value) -> Result<ProviderPayment, Unreadable> {
    let money = paypal_money(capture, "amount")?;
    // A capture names no payer: unless a person links it, it is staged ("no_email").
    Ok(ProviderPayment {
        provider: Provider::PayPal,
        reference: required_text(capture, "id")?.to_owned(),
        amount_minor: positive(money.amount_minor, "amount.value")?,
        currency: money.currency,
        date: rfc3339_date(capture, "create_time")?,
        payment_method: Some("paypal".into()),
        payer: Payer::default(),
    })
}

fn paypal_refund(refund: &Value) -> Result<ProviderRefund, Unreadable> {
    // The refunded capture is the `up` link: .../v2/payments/captures/{id}.
    let capture = refund
        .get("links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|link| text(link, "rel") == Some("up"))
        .filter_map(|link| text(link, "href"))
        .find_map(|href| href.split_once("/captures/").map(|(_, id)| id.trim_end_matches('/').to_owned()))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(|| unreadable("no link up to the refunded capture"))?;
    // The total refunded of the capture so far, when PayPal gives it; otherwise this refund (the first).
    let total = refund
        .get("seller_payable_breakdown")
        .filter(|b| b.get("total_refunded_amount").is_some())
        .map(|b| paypal_money(b, "total_refunded_amount"))
        .unwrap_or_else(|| paypal_money(refund, "amount"))?;
    Ok(ProviderRefund {
        provider: Provider::PayPal,
        payment_reference: capture,
        refunded_total_minor: positive(total.amount_minor, "total_refunded_amount")?,
        currency: total.currency,
        date: rfc3339_date(refund, "create_time")?,
    })
}

/// A field holding an object's id, or the expanded object.
fn id_of(object: &Value, field: &str) -> Result<Option<String>, Unreadable> {
    Ok(match object.get(field) {
        Some(Value::String(id)) if !id.trim().is_empty() => Some(id.trim().to_owned()),
        Some(expanded @ Value::Object(_)) => Some(required_text(expanded, "id")?.to_owned()),
        _ => None,
    })
}

fn stripe_invoice_paid(invoice: &Value) -> Result<PaymentEvent, Unreadable> {
    let amount_paid = amount(invoice, "amount_paid")?;
    if amount_paid == 0 {
        return Ok(PaymentEvent::Ignored("stripe invoice paid nothing (a trial or a credit)".into()));
    }
    // Keyed on its payment intent when the API version names it, so that intent's own event is the same gift.
    let reference = match id_of(invoice, "payment_intent")? {
        Some(pi) => pi,
        None => required_text(invoice, "id")?.to_owned(),
    };
    let date = invoice
        .get("status_transitions")
        .map(|t| date(t, "paid_at"))
        .and_then(Result::ok)
        .map_or_else(|| date(invoice, "created"), Ok)?;
    let payment = ProviderPayment {
        provider: Provider::Stripe,
        reference,
        amount_minor: amount_paid,
        currency: currency(invoice)?,
        date,
        payment_method: None,
        payer: payer(customer(invoice), email(&[text(invoice, "customer_email")]), text(invoice, "customer_name")),
    };
    // Older API versions name the subscription on the invoice; newer ones under parent.subscription_details.
    let subscription = match id_of(invoice, "subscription")? {
        Some(id) => Some(id),
        None => match invoice.get("parent").and_then(|p| p.get("subscription_details")) {
            Some(details) => id_of(details, "subscription")?,
            None => None,
        },
    };
    Ok(match subscription {
        Some(agreement) => PaymentEvent::RecurringPayment { payment, agreement },
        None => PaymentEvent::Payment(payment),
    })
}

fn stripe_subscription(sub: &Value, deleted: bool) -> Result<PaymentEvent, Unreadable> {
    let reference = required_text(sub, "id")?.to_owned();
    let status = match (deleted, required_text(sub, "status")?) {
        (true, _) | (_, "canceled" | "unpaid" | "incomplete_expired") => RecurringStatus::Cancelled,
        (_, "incomplete") => {
            return Ok(PaymentEvent::Ignored("stripe subscription is incomplete: not started".into()));
        }
        (_, "paused") => RecurringStatus::Paused,
        (_, _) if sub.get("pause_collection").is_some_and(Value::is_object) => RecurringStatus::Paused,
        (_, "active" | "trialing" | "past_due") => RecurringStatus::Active,
        (_, other) => return Err(unreadable(format!("subscription status {other} is not one Stripe documents"))),
    };
    let item = sub
        .get("items")
        .and_then(|i| i.get("data"))
        .and_then(|d| d.get(0))
        .ok_or_else(|| unreadable("items.data is empty"))?;
    let price = item.get("price").or_else(|| item.get("plan")).ok_or_else(|| unreadable("the item has no price"))?;
    let unit = price
        .get("unit_amount")
        .or_else(|| price.get("amount"))
        .and_then(Value::as_i64)
        .filter(|a| *a > 0)
        .ok_or_else(|| unreadable("the price has no unit_amount"))?;
    let quantity = item.get("quantity").and_then(Value::as_i64).unwrap_or(1).max(1);
    let recurring = price.get("recurring").unwrap_or(price);
    let count = recurring.get("interval_count").and_then(Value::as_i64).unwrap_or(1);
    let interval = match (required_text(recurring, "interval")?, count) {
        ("week", 1) => RecurringInterval::Weekly,
        ("month", 1) => RecurringInterval::Monthly,
        ("month", 3) => RecurringInterval::Quarterly,
        ("year", 1) | ("month", 12) => RecurringInterval::Annually,
        (unit, count) => return Err(unreadable(format!("every {count} {unit} is not an interval fundraising keeps"))),
    };
    let currency = match text(sub, "currency") {
        Some(_) => currency(sub)?,
        None => currency(price)?,
    };
    // The end of the period paid for is when the next payment is due (on the item in newer API versions).
    let next_expected_date = date(sub, "current_period_end").or_else(|_| date(item, "current_period_end")).ok();
    Ok(PaymentEvent::Agreement(ProviderAgreement {
        provider: Provider::Stripe,
        reference,
        customer_id: customer(sub),
        amount_minor: unit.checked_mul(quantity).ok_or_else(|| unreadable("the amount is too large"))?,
        currency,
        interval,
        status,
        next_expected_date,
        mandate: None,
    }))
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
        let mut setup = session.clone();
        setup["mode"] = json!("setup");
        assert!(matches!(stripe(&event("checkout.session.completed", setup)), Ok(PaymentEvent::Ignored(_))));
        let mut subscription = session;
        subscription["mode"] = json!("subscription");
        subscription["subscription"] = json!("sub_1");
        assert!(matches!(
            stripe(&event("checkout.session.completed", subscription)),
            Ok(PaymentEvent::AgreementStarted { agreement, .. }) if agreement == "sub_1"
        ));
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
    fn a_subscription_is_an_agreement_and_its_paid_invoice_a_payment_of_it() {
        let sub = json!({"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "active",
            "currency": "gbp", "current_period_end": 1_743_897_600, "pause_collection": null,
            "items": {"data": [{"quantity": 2, "price": {"unit_amount": 500, "currency": "gbp",
                "recurring": {"interval": "month", "interval_count": 3}}}]}});
        let PaymentEvent::Agreement(a) = stripe(&event("customer.subscription.created", sub.clone())).unwrap() else {
            panic!()
        };
        assert_eq!((a.reference.as_str(), a.amount_minor, a.interval), ("sub_1", 1000, RecurringInterval::Quarterly));
        assert_eq!((a.status, a.next_expected_date), (RecurringStatus::Active, NaiveDate::from_ymd_opt(2025, 4, 6)));
        let PaymentEvent::Agreement(gone) = stripe(&event("customer.subscription.deleted", sub.clone())).unwrap()
        else {
            panic!()
        };
        assert_eq!(gone.status, RecurringStatus::Cancelled);
        let mut fortnightly = sub;
        fortnightly["items"]["data"][0]["price"]["recurring"] = json!({"interval": "week", "interval_count": 2});
        assert!(stripe(&event("customer.subscription.updated", fortnightly)).is_err());

        let invoice = json!({"id": "in_1", "object": "invoice", "customer": "cus_1", "customer_email": "a@example.org",
            "customer_name": "Al Bee", "amount_paid": 1000, "currency": "gbp", "created": 1,
            "status_transitions": {"paid_at": 1_743_897_600},
            "parent": {"subscription_details": {"subscription": "sub_1"}}});
        let PaymentEvent::RecurringPayment { payment, agreement } = stripe(&event("invoice.paid", invoice)).unwrap()
        else {
            panic!()
        };
        assert_eq!((agreement.as_str(), payment.reference.as_str(), payment.amount_minor), ("sub_1", "in_1", 1000));
        assert_eq!(payment.date, NaiveDate::from_ymd_opt(2025, 4, 6).unwrap());
    }

    #[test]
    fn a_paypal_capture_is_a_payment_converted_exactly_and_its_refund_names_it() {
        let capture = json!({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {
            "id": "2GG", "status": "COMPLETED", "amount": {"currency_code": "GBP", "value": "12.5"},
            "create_time": "2025-04-06T23:30:00-01:00"}});
        let PaymentEvent::Payment(p) = paypal(&capture).unwrap() else { panic!() };
        assert_eq!((p.reference.as_str(), p.amount_minor, p.currency.code()), ("2GG", 1250, "GBP"));
        assert_eq!(p.date, NaiveDate::from_ymd_opt(2025, 4, 7).unwrap());
        let mut yen = capture.clone();
        yen["resource"]["amount"] = json!({"currency_code": "JPY", "value": "1.5"});
        assert!(paypal(&yen).unwrap_err().0.contains("amount.value"));
        let refund = json!({"id": "WH-2", "event_type": "PAYMENT.CAPTURE.REFUNDED", "resource": {
            "id": "1RF", "amount": {"currency_code": "GBP", "value": "2.00"}, "create_time": "2025-04-08T10:00:00Z",
            "seller_payable_breakdown": {"total_refunded_amount": {"currency_code": "GBP", "value": "5.00"}},
            "links": [{"rel": "self", "href": "https://api.paypal.com/v2/payments/refunds/1RF"},
                      {"rel": "up", "href": "https://api.paypal.com/v2/payments/captures/2GG"}]}});
        let PaymentEvent::Refund(r) = paypal(&refund).unwrap() else { panic!() };
        assert_eq!((r.payment_reference.as_str(), r.refunded_total_minor), ("2GG", 500));
        let subscription = json!({"id": "WH-3", "event_type": "BILLING.SUBSCRIPTION.ACTIVATED", "resource": {}});
        assert!(paypal(&subscription).is_err());
    }

    #[test]
    fn a_paypal_subscription_tells_what_it_can_and_its_sales_pay_it() {
        let event = json!({"id": "WH-4", "event_type": "BILLING.SUBSCRIPTION.ACTIVATED", "resource": {
            "id": "I-SUB1", "status": "ACTIVE", "plan_id": "P-1",
            "subscriber": {"email_address": "pat@example.org", "payer_id": "PAYER1",
                           "name": {"given_name": "Pat", "surname": "Ron"}},
            "billing_info": {"next_billing_time": "2025-05-06T10:00:00Z",
                "last_payment": {"amount": {"currency_code": "GBP", "value": "10.00"}, "time": "2025-04-06T10:00:00Z"}}}});
        let PaymentEvent::AgreementChanged(a) = paypal(&event).unwrap() else { panic!() };
        assert_eq!((a.reference.as_str(), a.status), ("I-SUB1", RecurringStatus::Active));
        assert_eq!((a.amount.map(|m| m.amount_minor), a.interval), (Some(1000), Some(RecurringInterval::Monthly)));
        assert_eq!(a.next_expected_date, NaiveDate::from_ymd_opt(2025, 5, 6));
        assert_eq!((a.payer.customer_id.as_deref(), a.payer.last_name.as_deref()), (Some("PAYER1"), Some("Ron")));
        // Cancelled, with nothing about its payments: only the status.
        let cancelled = json!({"id": "WH-5", "event_type": "BILLING.SUBSCRIPTION.CANCELLED", "resource": {
            "id": "I-SUB1", "status": "CANCELLED", "plan_id": "P-1"}});
        let PaymentEvent::AgreementChanged(a) = paypal(&cancelled).unwrap() else { panic!() };
        assert_eq!((a.status, a.amount, a.interval), (RecurringStatus::Cancelled, None, None));
        // A plan override says the interval and amount.
        let overridden = json!({"id": "WH-6", "event_type": "BILLING.SUBSCRIPTION.UPDATED", "resource": {
            "id": "I-SUB2", "status": "SUSPENDED", "plan": {"billing_cycles": [
                {"tenure_type": "REGULAR", "frequency": {"interval_unit": "MONTH", "interval_count": 3},
                 "pricing_scheme": {"fixed_price": {"currency_code": "GBP", "value": "30.00"}}}]}}});
        let PaymentEvent::AgreementChanged(a) = paypal(&overridden).unwrap() else { panic!() };
        assert_eq!(a.status, RecurringStatus::Paused);
        assert_eq!((a.amount.map(|m| m.amount_minor), a.interval), (Some(3000), Some(RecurringInterval::Quarterly)));
        let pending = json!({"id": "WH-7", "event_type": "BILLING.SUBSCRIPTION.CREATED", "resource": {
            "id": "I-SUB3", "status": "APPROVAL_PENDING"}});
        assert!(matches!(paypal(&pending).unwrap(), PaymentEvent::Ignored(_)));

        let sale = json!({"id": "WH-8", "event_type": "PAYMENT.SALE.COMPLETED", "resource": {
            "id": "SALE1", "state": "completed", "amount": {"total": "10.00", "currency": "GBP"},
            "create_time": "2025-04-06T10:00:00Z", "billing_agreement_id": "I-SUB1"}});
        let PaymentEvent::RecurringPayment { payment, agreement } = paypal(&sale).unwrap() else { panic!() };
        assert_eq!((agreement.as_str(), payment.reference.as_str(), payment.amount_minor), ("I-SUB1", "SALE1", 1000));
        let mut one_off = sale;
        one_off["resource"]["billing_agreement_id"] = Value::Null;
        assert!(matches!(paypal(&one_off).unwrap(), PaymentEvent::Ignored(_)));
    }

    #[test]
    fn names_split_on_the_last_word() {
        assert_eq!(split_name(" Ann  Smith "), (Some("Ann".into()), Some("Smith".into())));
        assert_eq!(split_name("Cher"), (Some("Cher".into()), None));
        assert_eq!(split_name(" "), (None, None));
    }
}
