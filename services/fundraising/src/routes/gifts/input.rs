//! A gift as clients send it, and its parsing into [`GiftDetails`], naming every bad field.

use crate::db::gifts::{StoredGift, status_name};
use crate::domain::split::{
    AllocationRequest, SoftCreditRequest, parse_allocations, parse_soft_credits, soft_credit_kind_name,
};
use crate::domain::{GiftDetails, GiftStatus, SourceName, optional_text, parse_settable_status};
use crate::routes::conventions::iso_date;
use almoner_http::{ApiError, FieldErrors};
use almoner_types::Currency;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::routes::schemas::{CurrencyCode, SettableGiftStatus, SoftCreditKindName};

/// A gift as sent by clients to record one. Text is trimmed; blank optional text is the same as absent.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiftInput {
    /// Required: a donor of the same tenant.
    #[schema(required = true, value_type = Uuid)]
    pub donor_id: Option<Uuid>,
    /// Required: minor units (pence), more than 0.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub amount_minor: Option<i64>,
    /// Required: ISO 4217, e.g. `GBP`.
    #[schema(required = true, value_type = CurrencyCode)]
    pub currency: Option<String>,
    /// Required: ISO date, e.g. `2025-04-06`.
    #[schema(required = true, value_type = String, format = Date)]
    pub gift_date: Option<String>,
    /// `pending`, `succeeded` (default) or `failed`; `refunded` follows from refunds (and a refunded gift keeps
    /// it when a patch sends it back).
    #[schema(value_type = Option<SettableGiftStatus>)]
    pub status: Option<String>,
    /// At most 50 characters, no control characters, e.g. `card`.
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub payment_method: Option<String>,
    /// Where the gift came from: `manual` (default, also for blank), `import`, `stripe`, ...: `a-z`, `0-9`,
    /// `_`, `-`, `.`, at most 50.
    #[schema(pattern = r"^\s*[a-z0-9_.-]{0,50}\s*$")]
    pub source: Option<String>,
    /// A free-text label, at most 100 characters (fund totals use `allocations`).
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub fund: Option<String>,
    /// At most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub campaign: Option<String>,
    /// At most 2000 characters, no control characters.
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub notes: Option<String>,
    /// The gift's id in its source, at most 200 characters; unique per tenant and source.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub external_reference: Option<String>,
    /// How the amount is split across funds: each fund once, not archived, more than 0, adding up to
    /// `amount_minor` exactly. Absent or empty: unallocated.
    pub allocations: Option<Vec<AllocationInput>>,
    /// Other donors credited with (part of) the gift: each once, not the paying donor, more than 0 and at most
    /// `amount_minor`.
    pub soft_credits: Option<Vec<SoftCreditInput>>,
    /// An open pledge of the same donor and currency that the gift pays (part of).
    pub pledge_id: Option<Uuid>,
    /// Sponsorship of a sponsored event (default `false`): marked "Yes" on HMRC's Gift Aid schedule.
    pub sponsored_event: Option<bool>,
}

/// A change to a gift (JSON merge patch, RFC 7396): absent members stay, `null` clears. The rules are those of
/// [`GiftInput`]; `donor_id`, `amount_minor`, `currency` and `gift_date` cannot be cleared, and `allocations` and
/// `soft_credits` are replaced whole.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // The document's shape of a patch; the handler merges it into [`GiftInput`].
pub struct GiftPatch {
    #[schema(nullable = false)]
    pub donor_id: Option<Uuid>,
    #[schema(nullable = false, minimum = 1)]
    pub amount_minor: Option<i64>,
    #[schema(nullable = false, value_type = Option<CurrencyCode>)]
    pub currency: Option<String>,
    #[schema(nullable = false, value_type = Option<String>, format = Date)]
    pub gift_date: Option<String>,
    /// `pending`, `succeeded` (default) or `failed`; `refunded` follows from refunds (and a refunded gift keeps
    /// it when a patch sends it back).
    #[schema(value_type = Option<SettableGiftStatus>)]
    pub status: Option<String>,
    /// At most 50 characters, no control characters, e.g. `card`.
    #[schema(max_length = 50, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub payment_method: Option<String>,
    /// Where the gift came from: `manual` (default, also for blank), `import`, `stripe`, ...: `a-z`, `0-9`,
    /// `_`, `-`, `.`, at most 50.
    #[schema(pattern = r"^\s*[a-z0-9_.-]{0,50}\s*$")]
    pub source: Option<String>,
    /// A free-text label, at most 100 characters (fund totals use `allocations`).
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub fund: Option<String>,
    /// At most 100 characters, no control characters.
    #[schema(max_length = 100, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub campaign: Option<String>,
    /// At most 2000 characters, no control characters.
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub notes: Option<String>,
    /// The gift's id in its source, at most 200 characters; unique per tenant and source.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub external_reference: Option<String>,
    /// How the amount is split across funds: each fund once, not archived, more than 0, adding up to
    /// `amount_minor` exactly. Absent or empty: unallocated.
    pub allocations: Option<Vec<AllocationInput>>,
    /// Other donors credited with (part of) the gift: each once, not the paying donor, more than 0 and at most
    /// `amount_minor`.
    pub soft_credits: Option<Vec<SoftCreditInput>>,
    /// An open pledge of the same donor and currency that the gift pays (part of).
    pub pledge_id: Option<Uuid>,
    /// Sponsorship of a sponsored event (default `false`): marked "Yes" on HMRC's Gift Aid schedule.
    pub sponsored_event: Option<bool>,
}

/// Part of a gift given to one fund.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationInput {
    /// Required: a fund of the same tenant.
    #[schema(required = true, value_type = Uuid)]
    pub fund_id: Option<Uuid>,
    /// Required: minor units, more than 0.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub amount_minor: Option<i64>,
}

/// A donor credited with (part of) the gift without having paid it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SoftCreditInput {
    /// Required: a donor of the same tenant, not the one who paid.
    #[schema(required = true, value_type = Uuid)]
    pub donor_id: Option<Uuid>,
    /// Required: minor units, more than 0 and at most the gift's amount.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub amount_minor: Option<i64>,
    /// Required: `matched`, `in_memory`, `in_honour` or `solicitor`.
    #[schema(required = true, value_type = SoftCreditKindName)]
    pub kind: Option<String>,
}

pub(crate) fn as_input(s: &StoredGift) -> GiftInput {
    let g = &s.gift;
    GiftInput {
        donor_id: Some(g.donor_id),
        amount_minor: Some(g.amount_minor),
        currency: Some(g.currency.clone()),
        gift_date: Some(g.gift_date.to_string()),
        status: Some(status_name(g.status).to_owned()),
        payment_method: g.payment_method.clone(),
        source: Some(g.source.clone()),
        fund: g.fund.clone(),
        campaign: g.campaign.clone(),
        notes: s.notes.clone(),
        external_reference: g.external_reference.clone(),
        allocations: Some(
            g.allocations
                .iter()
                .map(|a| AllocationInput { fund_id: Some(a.fund_id), amount_minor: Some(a.amount_minor) })
                .collect(),
        ),
        soft_credits: Some(
            g.soft_credits
                .iter()
                .map(|c| SoftCreditInput {
                    donor_id: Some(c.donor_id),
                    amount_minor: Some(c.amount_minor),
                    kind: Some(soft_credit_kind_name(c.kind).to_owned()),
                })
                .collect(),
        ),
        pledge_id: g.pledge_id,
        sponsored_event: Some(s.sponsored_event),
    }
}

/// Parses a whole gift, naming every bad field. `current` is the status the gift has now, which may be kept
/// even when clients could not set it (`refunded`).
pub(crate) fn parse_gift(input: GiftInput, current: Option<GiftStatus>) -> Result<GiftDetails, ApiError> {
    let mut errors = FieldErrors::new();
    let donor_id = errors.required("donor_id", input.donor_id);
    let amount_minor = match errors.required("amount_minor", input.amount_minor) {
        Some(a) if a > 0 => Some(a),
        Some(_) => {
            errors.add("amount_minor", "must be more than 0 (record refunds with POST /v1/gifts/{id}/refunds)");
            None
        }
        None => None,
    };
    let currency =
        errors.required("currency", input.currency).and_then(|c| errors.parse("currency", Currency::parse(&c)));
    let gift_date = errors.required("gift_date", input.gift_date).and_then(|d| errors.parse("gift_date", iso_date(&d)));
    let status = match input.status.as_deref() {
        None => Some(GiftStatus::Succeeded),
        Some(s) if current.is_some_and(|c| status_name(c) == s.trim()) => current,
        Some(s) => errors.parse("status", parse_settable_status(s)),
    };
    let source = match input.source.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => errors.parse("source", SourceName::parse(s)),
        None => SourceName::parse("manual").ok(),
    };
    let payment_method = errors.parse("payment_method", optional_text(input.payment_method.as_deref(), 50)).flatten();
    let fund = errors.parse("fund", optional_text(input.fund.as_deref(), 100)).flatten();
    let campaign = errors.parse("campaign", optional_text(input.campaign.as_deref(), 100)).flatten();
    let notes = errors.parse("notes", optional_text(input.notes.as_deref(), 2000)).flatten();
    let external_reference =
        errors.parse("external_reference", optional_text(input.external_reference.as_deref(), 200)).flatten();
    let requested: Vec<AllocationRequest> = input
        .allocations
        .unwrap_or_default()
        .into_iter()
        .map(|a| AllocationRequest { fund_id: a.fund_id, amount_minor: a.amount_minor })
        .collect();
    let allocations = match parse_allocations(amount_minor, &requested) {
        Ok(parsed) => parsed,
        Err(problems) => {
            for (field, message) in problems {
                errors.add(field, message);
            }
            Vec::new()
        }
    };
    let requested: Vec<SoftCreditRequest> = input
        .soft_credits
        .unwrap_or_default()
        .into_iter()
        .map(|c| SoftCreditRequest { donor_id: c.donor_id, amount_minor: c.amount_minor, kind: c.kind })
        .collect();
    let soft_credits = match parse_soft_credits(amount_minor, donor_id, &requested) {
        Ok(parsed) => parsed,
        Err(problems) => {
            for (field, message) in problems {
                errors.add(field, message);
            }
            Vec::new()
        }
    };
    errors.finish()?;
    let (Some(donor_id), Some(amount_minor), Some(currency), Some(gift_date), Some(status), Some(source)) =
        (donor_id, amount_minor, currency, gift_date, status, source)
    else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated gift fields missing")));
    };
    Ok(GiftDetails {
        donor_id,
        amount_minor,
        currency,
        gift_date,
        status,
        payment_method,
        source,
        fund,
        campaign,
        notes,
        external_reference,
        allocations,
        soft_credits,
        pledge_id: input.pledge_id,
        sponsored_event: input.sponsored_event.unwrap_or(false),
    })
}
