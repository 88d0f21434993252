//! What a GoCardless event means for fundraising. GoCardless's events carry ids, not amounts (`resource_type`,
//! `action`, `links`, `details`), so reading one is in two steps, with no I/O here: [`notice`] says what the event
//! is about and what must be fetched from GoCardless's API; [`payment`], [`charge_back`] and [`subscription`]
//! read the fetched resources (unwrapped from `{"payments": {...}}`) into the same types as Stripe's events.
//!
//! Resources are read as GoCardless's API reference documents them: amounts are integers in minor units with an
//! upper-case `currency`, dates ISO (`charge_date`), times RFC 3339.

use super::payments::{Payer, PaymentEvent, Provider, ProviderAgreement, ProviderPayment, ProviderRefund, Unreadable};
use almoner_events::fundraising::{RecurringInterval, RecurringStatus};
use almoner_types::{Currency, Email};
use chrono::{DateTime, Datelike, NaiveDate};
use serde_json::Value;

/// What gifts from GoCardless are paid by.
pub const PAYMENT_METHOD: &str = "direct_debit";

/// What a GoCardless event is about, and so what to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `payments` `confirmed` or `paid_out`: fetch the payment, its mandate and customer; a gift.
    PaymentCollected { payment: String },
    /// `payments` `failed` or `cancelled`: the payment's gift, if there is one, failed. Nothing to fetch.
    PaymentFailed { payment: String },
    /// `payments` `charged_back`: fetch the payment; its whole amount is refunded, dated `date`.
    PaymentChargedBack { payment: String, date: NaiveDate },
    /// Any `subscriptions` event: fetch the subscription (and its mandate) and keep the agreement as it is now.
    Subscription { subscription: String, today: NaiveDate },
    /// `mandates` `cancelled`, `failed`, `blocked` (cancelled) or `expired` (lapsed): the agreements on it end.
    /// Nothing to fetch.
    MandateEnded { mandate: String, status: RecurringStatus },
    /// Nothing for fundraising.
    Ignored(String),
}

fn text<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get(field).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn required_text<'a>(object: &'a Value, field: &str) -> Result<&'a str, Unreadable> {
    text(object, field).ok_or_else(|| Unreadable(format!("{field} is missing")))
}

fn link<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get("links").and_then(|links| text(links, name))
}

fn required_link<'a>(object: &'a Value, name: &str) -> Result<&'a str, Unreadable> {
    link(object, name).ok_or_else(|| Unreadable(format!("links.{name} is missing")))
}

fn created_date(event: &Value) -> Result<NaiveDate, Unreadable> {
    text(event, "created_at")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc).date_naive())
        .ok_or_else(|| Unreadable("created_at is not an RFC 3339 time".into()))
}

fn iso_date(object: &Value, field: &str) -> Result<NaiveDate, Unreadable> {
    text(object, field)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| Unreadable(format!("{field} is not an ISO date")))
}

fn amount(object: &Value) -> Result<i64, Unreadable> {
    object
        .get("amount")
        .and_then(Value::as_i64)
        .filter(|a| *a > 0)
        .ok_or_else(|| Unreadable("amount is not a positive amount in minor units".into()))
}

fn currency(object: &Value) -> Result<Currency, Unreadable> {
    Currency::parse(required_text(object, "currency")?).map_err(|e| Unreadable(format!("currency {}", e.0)))
}

/// Reads a GoCardless event (`{"id", "created_at", "resource_type", "action", "links", "details"}`).
pub fn notice(event: &Value) -> Result<Notice, Unreadable> {
    let resource_type = required_text(event, "resource_type")?;
    let action = required_text(event, "action")?;
    Ok(match (resource_type, action) {
        ("payments", "confirmed" | "paid_out") => {
            Notice::PaymentCollected { payment: required_link(event, "payment")?.to_owned() }
        }
        ("payments", "failed" | "cancelled") => {
            Notice::PaymentFailed { payment: required_link(event, "payment")?.to_owned() }
        }
        ("payments", "charged_back") => Notice::PaymentChargedBack {
            payment: required_link(event, "payment")?.to_owned(),
            date: created_date(event)?,
        },
        ("subscriptions", _) => Notice::Subscription {
            subscription: required_link(event, "subscription")?.to_owned(),
            today: created_date(event)?,
        },
        ("mandates", "cancelled" | "failed" | "blocked") => Notice::MandateEnded {
            mandate: required_link(event, "mandate")?.to_owned(),
            status: RecurringStatus::Cancelled,
        },
        ("mandates", "expired") => Notice::MandateEnded {
            mandate: required_link(event, "mandate")?.to_owned(),
            status: RecurringStatus::Lapsed,
        },
        (resource_type, action) => Notice::Ignored(format!("gocardless {resource_type} {action} is not mapped")),
    })
}

/// Whether a fetched payment was collected: a `confirmed` event of a payment that failed since (the events of a
/// batch arrive in any order) is not a gift. A payment charged back was collected; its own event refunds it.
pub fn collected(payment: &Value) -> Result<bool, Unreadable> {
    Ok(match required_text(payment, "status")? {
        "confirmed"
        | "paid_out"
        | "charged_back"
        | "chargeback_cancelled"
        | "late_failure_settled"
        | "chargeback_settled" => true,
        "pending_customer_approval"
        | "pending_submission"
        | "submitted"
        | "customer_approval_denied"
        | "failed"
        | "cancelled" => false,
        other => return Err(Unreadable(format!("payment status {other} is not one GoCardless documents"))),
    })
}

/// The payer of a mandate's payments: the customer's id, email and names.
pub fn payer(customer: &Value) -> Result<Payer, Unreadable> {
    Ok(Payer {
        customer_id: Some(required_text(customer, "id")?.to_owned()),
        email: text(customer, "email").and_then(|e| Email::parse(e).ok()),
        first_name: text(customer, "given_name").map(str::to_owned),
        last_name: text(customer, "family_name").map(str::to_owned),
    })
}

/// A collected payment (fetched) as a gift to record, a payment of its subscription when it has one.
pub fn payment(payment: &Value, payer: Payer) -> Result<PaymentEvent, Unreadable> {
    let recorded = ProviderPayment {
        provider: Provider::GoCardless,
        reference: required_text(payment, "id")?.to_owned(),
        amount_minor: amount(payment)?,
        currency: currency(payment)?,
        date: iso_date(payment, "charge_date")?,
        payment_method: Some(PAYMENT_METHOD.into()),
        payer,
    };
    Ok(match link(payment, "subscription") {
        Some(subscription) => PaymentEvent::RecurringPayment { payment: recorded, agreement: subscription.to_owned() },
        None => PaymentEvent::Payment(recorded),
    })
}

/// A charged-back payment (fetched): all of it is refunded.
pub fn charge_back(payment: &Value, date: NaiveDate) -> Result<ProviderRefund, Unreadable> {
    Ok(ProviderRefund {
        provider: Provider::GoCardless,
        payment_reference: required_text(payment, "id")?.to_owned(),
        refunded_total_minor: amount(payment)?,
        currency: currency(payment)?,
        date,
    })
}

/// The next charge on `day` of the month (`-1`: the last day) on or after `from`.
fn next_day_of_month(from: NaiveDate, day: i64) -> Option<NaiveDate> {
    let on = |year: i32, month: u32| -> Option<NaiveDate> {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let last = first.checked_add_months(chrono::Months::new(1))?.pred_opt()?;
        match day {
            -1 => Some(last),
            1..=28 => NaiveDate::from_ymd_opt(year, month, u32::try_from(day).ok()?),
            _ => None,
        }
    };
    let this_month = on(from.year(), from.month())?;
    if this_month >= from {
        return Some(this_month);
    }
    let next = from.with_day(1)?.checked_add_months(chrono::Months::new(1))?;
    on(next.year(), next.month())
}

/// A subscription (fetched) as the agreement it is now; `mandate` is its mandate's customer id, when fetched.
/// `today` is the event's date, from which `day_of_month` finds the next charge when GoCardless lists none.
pub fn subscription(sub: &Value, customer_id: Option<String>, today: NaiveDate) -> Result<PaymentEvent, Unreadable> {
    let reference = required_text(sub, "id")?.to_owned();
    let status = match required_text(sub, "status")? {
        "active" => RecurringStatus::Active,
        "paused" => RecurringStatus::Paused,
        "cancelled" | "finished" | "customer_approval_denied" => RecurringStatus::Cancelled,
        "pending_customer_approval" => {
            return Ok(PaymentEvent::Ignored("gocardless subscription awaits the customer's approval".into()));
        }
        other => return Err(Unreadable(format!("subscription status {other} is not one GoCardless documents"))),
    };
    let count = sub.get("interval").and_then(Value::as_i64).unwrap_or(1);
    let interval = match (required_text(sub, "interval_unit")?, count) {
        ("weekly", 1) => RecurringInterval::Weekly,
        ("monthly", 1) => RecurringInterval::Monthly,
        ("monthly", 3) => RecurringInterval::Quarterly,
        ("yearly", 1) | ("monthly", 12) => RecurringInterval::Annually,
        (unit, count) => {
            return Err(Unreadable(format!("every {count} {unit} is not an interval fundraising keeps")));
        }
    };
    let upcoming = sub
        .get("upcoming_payments")
        .and_then(Value::as_array)
        .and_then(|payments| payments.first())
        .map(|p| iso_date(p, "charge_date"))
        .transpose()?;
    let next_expected_date = upcoming.or_else(|| {
        let day = sub.get("day_of_month").and_then(Value::as_i64)?;
        let start = text(sub, "start_date").and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        next_day_of_month(start.map_or(today, |s| s.max(today)), day)
    });
    Ok(PaymentEvent::Agreement(ProviderAgreement {
        provider: Provider::GoCardless,
        reference,
        customer_id,
        amount_minor: amount(sub)?,
        currency: currency(sub)?,
        interval,
        status,
        next_expected_date,
        mandate: Some(required_link(sub, "mandate")?.to_owned()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(resource_type: &str, action: &str, links: Value) -> Value {
        json!({"id": "EV123", "created_at": "2025-04-06T10:00:00.000Z", "resource_type": resource_type,
               "action": action, "links": links,
               "details": {"origin": "gocardless", "cause": "payment_confirmed", "description": "..."}})
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn an_event_says_what_to_fetch() {
        let confirmed = event("payments", "confirmed", json!({"payment": "PM1"}));
        assert_eq!(notice(&confirmed).unwrap(), Notice::PaymentCollected { payment: "PM1".into() });
        let paid_out = event("payments", "paid_out", json!({"payment": "PM1", "payout": "PO1"}));
        assert_eq!(notice(&paid_out).unwrap(), Notice::PaymentCollected { payment: "PM1".into() });
        let failed = event("payments", "failed", json!({"payment": "PM2"}));
        assert_eq!(notice(&failed).unwrap(), Notice::PaymentFailed { payment: "PM2".into() });
        let back = event("payments", "charged_back", json!({"payment": "PM3"}));
        assert_eq!(
            notice(&back).unwrap(),
            Notice::PaymentChargedBack { payment: "PM3".into(), date: date(2025, 4, 6) }
        );
        let sub = event("subscriptions", "cancelled", json!({"subscription": "SB1"}));
        assert_eq!(notice(&sub).unwrap(), Notice::Subscription { subscription: "SB1".into(), today: date(2025, 4, 6) });
        let expired = event("mandates", "expired", json!({"mandate": "MD1"}));
        assert_eq!(
            notice(&expired).unwrap(),
            Notice::MandateEnded { mandate: "MD1".into(), status: RecurringStatus::Lapsed }
        );
        let created = event("mandates", "created", json!({"mandate": "MD1"}));
        assert!(matches!(notice(&created).unwrap(), Notice::Ignored(_)));
        assert!(matches!(notice(&event("payouts", "paid", json!({"payout": "PO1"}))).unwrap(), Notice::Ignored(_)));
        let no_link = event("payments", "confirmed", json!({}));
        assert_eq!(notice(&no_link).unwrap_err().0, "links.payment is missing");
    }

    #[test]
    fn a_collected_payment_is_a_direct_debit_gift_and_a_subscriptions_payment_pays_it() {
        let pm = json!({"id": "PM1", "amount": 1500, "currency": "GBP", "charge_date": "2025-04-08",
            "status": "confirmed", "links": {"mandate": "MD1", "creditor": "CR1"}});
        assert!(collected(&pm).unwrap());
        let customer = json!({"id": "CU1", "email": "ann@example.org", "given_name": "Ann", "family_name": "Smith"});
        let PaymentEvent::Payment(p) = payment(&pm, payer(&customer).unwrap()).unwrap() else { panic!() };
        assert_eq!((p.reference.as_str(), p.amount_minor, p.currency.code()), ("PM1", 1500, "GBP"));
        assert_eq!((p.date, p.payment_method.as_deref()), (date(2025, 4, 8), Some("direct_debit")));
        assert_eq!(p.payer.customer_id.as_deref(), Some("CU1"));
        assert_eq!(p.payer.email.unwrap().as_str(), "ann@example.org");
        let mut of_sub = pm.clone();
        of_sub["links"]["subscription"] = json!("SB1");
        assert!(matches!(payment(&of_sub, Payer::default()).unwrap(),
            PaymentEvent::RecurringPayment { agreement, .. } if agreement == "SB1"));
        let refund = charge_back(&pm, date(2025, 5, 1)).unwrap();
        assert_eq!((refund.payment_reference.as_str(), refund.refunded_total_minor), ("PM1", 1500));
        let mut failed = pm;
        failed["status"] = json!("failed");
        assert!(!collected(&failed).unwrap());
        failed["status"] = json!("nonsense");
        assert!(collected(&failed).is_err());
    }

    #[test]
    fn a_subscription_is_an_agreement_on_its_mandate() {
        let sub = json!({"id": "SB1", "amount": 1000, "currency": "GBP", "status": "active", "interval": 1,
            "interval_unit": "monthly", "day_of_month": 15, "start_date": "2025-04-15",
            "upcoming_payments": [{"charge_date": "2025-04-15", "amount": 1000}], "links": {"mandate": "MD1"}});
        let PaymentEvent::Agreement(a) = subscription(&sub, Some("CU1".into()), date(2025, 4, 6)).unwrap() else {
            panic!()
        };
        assert_eq!((a.reference.as_str(), a.amount_minor, a.interval), ("SB1", 1000, RecurringInterval::Monthly));
        assert_eq!((a.status, a.next_expected_date), (RecurringStatus::Active, Some(date(2025, 4, 15))));
        assert_eq!((a.mandate.as_deref(), a.customer_id.as_deref()), (Some("MD1"), Some("CU1")));

        // No upcoming payments listed: the next day_of_month from the event's date (or the start, if later).
        let mut quiet = sub.clone();
        quiet["upcoming_payments"] = json!([]);
        quiet["start_date"] = json!("2025-01-15");
        let PaymentEvent::Agreement(a) = subscription(&quiet, None, date(2025, 4, 20)).unwrap() else { panic!() };
        assert_eq!(a.next_expected_date, Some(date(2025, 5, 15)));
        quiet["day_of_month"] = json!(-1);
        let PaymentEvent::Agreement(a) = subscription(&quiet, None, date(2025, 2, 3)).unwrap() else { panic!() };
        assert_eq!(a.next_expected_date, Some(date(2025, 2, 28)));

        let mut quarterly = sub.clone();
        quarterly["interval"] = json!(3);
        quarterly["status"] = json!("finished");
        let PaymentEvent::Agreement(a) = subscription(&quarterly, None, date(2025, 4, 6)).unwrap() else { panic!() };
        assert_eq!((a.interval, a.status), (RecurringInterval::Quarterly, RecurringStatus::Cancelled));
        let mut fortnightly = sub.clone();
        fortnightly["interval_unit"] = json!("weekly");
        fortnightly["interval"] = json!(2);
        assert!(subscription(&fortnightly, None, date(2025, 4, 6)).is_err());
        let mut pending = sub;
        pending["status"] = json!("pending_customer_approval");
        assert!(matches!(subscription(&pending, None, date(2025, 4, 6)).unwrap(), PaymentEvent::Ignored(_)));
    }
}
