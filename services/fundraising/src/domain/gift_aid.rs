//! Gift Aid: declarations and the rules that decide whether a gift can be claimed from HMRC. Pure: the database
//! gathers the facts, [`assess`] judges them.
//!
//! The rules (HMRC's, with Almoner's choices where HMRC leaves room, each named in `docs/gift-aid.md`):
//! - a declaration covers the gift's date: from its start date (at most 4 years before the day it was made) to its
//!   end date if it has one, both included;
//! - an oral declaration counts only once its written record has been sent and the donor's 30 days to cancel have
//!   passed (a cancellation within them voids it from the start, so claiming earlier risks a clawback);
//! - the donor has a home address with a house name or number: a UK one with a valid UK postcode, or one abroad
//!   (a donor living outside the UK who pays UK tax, declared as any other; HMRC's schedule shows `X` for the
//!   postcode);
//! - the donor has a first and a last name that HMRC's schedule can show (Latin letters once transliterated);
//! - the gift is claimed within 4 years of the end of the charity's accounting period in which it was received
//!   (the period end is a tenant setting kept by identity, by default the day before the fiscal year starts);
//! - the gift is a personal donation the charity itself may claim: its source is not an agent that claims Gift Aid
//!   itself (JustGiving by default, a tenant setting) and it did not come through one that does (a donation
//!   pulled from JustGiving, whatever the settings say), it is in pounds sterling, it succeeded, it is not a refund
//!   entry and something of it is left after refunds (the claim is on what is left);
//! - it has not been claimed before: it is in no claim that is open or submitted.

use super::hmrc::{self, ScheduleDonor};
use almoner_events::identity::AccountingPeriodEnd;
use almoner_types::ParseError;
use almoner_types::required_text;
use chrono::{Datelike, Days, Months, NaiveDate};
use uuid::Uuid;

/// Days a donor has to cancel an oral declaration after its written record was sent.
pub const ORAL_CANCELLATION_DAYS: u64 = 30;
/// How far back a declaration may reach: 4 years before the day it was made.
pub const YEARS_BACK: u32 = 4;
/// Longest declaration text kept.
pub const MAX_DECLARATION_TEXT: usize = 4000;

/// How the donor made the declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclarationMethod {
    Online,
    Written,
    Oral,
}

impl DeclarationMethod {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        match input.trim() {
            "online" => Ok(Self::Online),
            "written" => Ok(Self::Written),
            "oral" => Ok(Self::Oral),
            _ => Err(ParseError::new("must be one of online, written, oral")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Written => "written",
            Self::Oral => "oral",
        }
    }
}

/// Why a declaration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The donor asked.
    DonorRequest,
    /// The donor no longer pays enough UK tax.
    InsufficientTax,
    Deceased,
    /// Replaced by a newer declaration.
    Superseded,
    Other,
}

impl EndReason {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        match input.trim() {
            "donor_request" => Ok(Self::DonorRequest),
            "insufficient_tax" => Ok(Self::InsufficientTax),
            "deceased" => Ok(Self::Deceased),
            "superseded" => Ok(Self::Superseded),
            "other" => Ok(Self::Other),
            _ => Err(ParseError::new("must be one of donor_request, insufficient_tax, deceased, superseded, other")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DonorRequest => "donor_request",
            Self::InsufficientTax => "insufficient_tax",
            Self::Deceased => "deceased",
            Self::Superseded => "superseded",
            Self::Other => "other",
        }
    }
}

/// A declaration's editable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    pub method: DeclarationMethod,
    /// The day the donor made it.
    pub declared_on: NaiveDate,
    /// First gift date it covers; at most 4 years before `declared_on`.
    pub start_date: NaiveDate,
    /// Last gift date it covers, when it has ended.
    pub end_date: Option<NaiveDate>,
    pub end_reason: Option<EndReason>,
    /// The wording the donor agreed to, as shown.
    pub declaration_text: String,
    /// Oral declarations: the day the written record was sent to the donor.
    pub confirmation_sent_on: Option<NaiveDate>,
    /// Oral declarations: the day the donor cancelled within the window, which voids it from the start.
    pub cancelled_on: Option<NaiveDate>,
}

/// A declaration's fields as received, before validation.
#[derive(Debug, Default, Clone)]
pub struct DeclarationInput<'a> {
    pub method: Option<&'a str>,
    pub declared_on: Option<NaiveDate>,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub end_reason: Option<&'a str>,
    pub declaration_text: Option<&'a str>,
    pub confirmation_sent_on: Option<NaiveDate>,
    pub cancelled_on: Option<NaiveDate>,
}

/// Every field that is wrong, by name.
pub type DeclarationErrors = Vec<(&'static str, ParseError)>;

impl Declaration {
    /// Validates a whole declaration. `today` bounds dates that cannot be in the future.
    pub fn parse(input: DeclarationInput<'_>, today: NaiveDate) -> Result<Self, DeclarationErrors> {
        let mut errors: DeclarationErrors = Vec::new();
        let method = match input.method.map(DeclarationMethod::parse) {
            Some(Ok(m)) => Some(m),
            Some(Err(e)) => {
                errors.push(("method", e));
                None
            }
            None => {
                errors.push(("method", ParseError::new("is required")));
                None
            }
        };
        let declared_on = input.declared_on.unwrap_or(today);
        if declared_on > today {
            errors.push(("declared_on", ParseError::new("must not be in the future")));
        }
        let start_date = input.start_date.unwrap_or(declared_on);
        let earliest = earliest_start(declared_on);
        if start_date < earliest {
            errors.push((
                "start_date",
                ParseError::new(format!(
                    "must be on or after {earliest}: a declaration covers at most the {YEARS_BACK} years before it was made"
                )),
            ));
        }
        if let Some(end) = input.end_date
            && end < start_date
        {
            errors.push(("end_date", ParseError::new("must not be before start_date")));
        }
        let end_reason = match input.end_reason.map(str::trim).filter(|r| !r.is_empty()).map(EndReason::parse) {
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                errors.push(("end_reason", e));
                None
            }
            None => None,
        };
        if end_reason.is_some() && input.end_date.is_none() {
            errors.push(("end_reason", ParseError::new("goes with an end_date")));
        }
        let declaration_text = match input.declaration_text.map(|t| required_text(t, MAX_DECLARATION_TEXT)) {
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                errors.push(("declaration_text", e));
                None
            }
            None => {
                errors.push(("declaration_text", ParseError::new("is required: the wording the donor agreed to")));
                None
            }
        };
        let oral = method == Some(DeclarationMethod::Oral);
        if let Some(sent) = input.confirmation_sent_on {
            if method.is_some() && !oral {
                errors.push(("confirmation_sent_on", ParseError::new("applies to oral declarations only")));
            } else if sent < declared_on {
                errors.push(("confirmation_sent_on", ParseError::new("must not be before declared_on")));
            } else if sent > today {
                errors.push(("confirmation_sent_on", ParseError::new("must not be in the future")));
            }
        }
        if let Some(cancelled) = input.cancelled_on {
            match (oral, input.confirmation_sent_on) {
                (false, _) => errors.push((
                    "cancelled_on",
                    ParseError::new("applies to oral declarations only; end other declarations with end_date"),
                )),
                (true, None) => errors.push((
                    "cancelled_on",
                    ParseError::new("needs confirmation_sent_on: the window opens when the written record is sent"),
                )),
                (true, Some(sent)) => {
                    let closes = sent + Days::new(ORAL_CANCELLATION_DAYS);
                    if cancelled < sent || cancelled > closes {
                        errors.push((
                            "cancelled_on",
                            ParseError::new(format!(
                                "must be from {sent} to {closes}, the cancellation window; end the declaration with end_date instead"
                            )),
                        ));
                    }
                }
            }
        }
        match (method, declaration_text) {
            (Some(method), Some(declaration_text)) if errors.is_empty() => Ok(Self {
                method,
                declared_on,
                start_date,
                end_date: input.end_date,
                end_reason,
                declaration_text,
                confirmation_sent_on: input.confirmation_sent_on,
                cancelled_on: input.cancelled_on,
            }),
            _ => Err(errors),
        }
    }

    /// For an oral declaration whose record was sent: the last day the donor may cancel.
    pub fn cancellation_window_ends(&self) -> Option<NaiveDate> {
        match self.method {
            DeclarationMethod::Oral => self.confirmation_sent_on.map(|sent| sent + Days::new(ORAL_CANCELLATION_DAYS)),
            _ => None,
        }
    }

    /// Whether the declaration's dates include `date` (cancellation and confirmation aside).
    pub fn spans(&self, date: NaiveDate) -> bool {
        self.start_date <= date && self.end_date.is_none_or(|end| date <= end)
    }

    /// What this declaration means for a gift dated `date`, judged on `today`.
    pub fn standing(&self, date: NaiveDate, today: NaiveDate) -> Standing {
        if self.cancelled_on.is_some() {
            return Standing::Cancelled;
        }
        if !self.spans(date) {
            return Standing::DoesNotCover;
        }
        match self.method {
            DeclarationMethod::Oral => match self.cancellation_window_ends() {
                None => Standing::AwaitingConfirmation,
                Some(closes) if today <= closes => Standing::InCancellationWindow { closes },
                Some(_) => Standing::Covers,
            },
            _ => Standing::Covers,
        }
    }
}

/// The earliest start date a declaration made on `declared_on` may have.
pub fn earliest_start(declared_on: NaiveDate) -> NaiveDate {
    declared_on.checked_sub_months(Months::new(12 * YEARS_BACK)).unwrap_or(NaiveDate::MIN)
}

/// One declaration's bearing on one gift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Covers,
    DoesNotCover,
    Cancelled,
    AwaitingConfirmation,
    InCancellationWindow { closes: NaiveDate },
}

/// A stored declaration with its id, as [`assess`] needs it.
#[derive(Debug, Clone)]
pub struct DeclarationOnFile {
    pub id: Uuid,
    pub declaration: Declaration,
}

/// What [`assess`] needs to know about the donor.
#[derive(Debug, Clone, Default)]
pub struct DonorFacts {
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub address_line1: Option<String>,
    /// Normalised UK postcode, when the address is a UK one.
    pub uk_postcode: Option<String>,
    /// The donor has a UK address (country `GB` or none given).
    pub is_uk: bool,
    /// The donor has an address outside the UK.
    pub overseas: bool,
}

/// What [`assess`] needs to know about the gift.
#[derive(Debug, Clone)]
pub struct GiftFacts {
    pub gift_date: NaiveDate,
    pub amount_minor: i64,
    pub currency: String,
    /// `succeeded` or `refunded` (a partly refunded gift keeps `succeeded`).
    pub status: &'static str,
    pub source: String,
    /// The platform the gift came through claims its Gift Aid itself (a donation pulled from JustGiving).
    pub claimed_by_platform: bool,
    pub is_refund_entry: bool,
    /// Sum of its refund entries, negative or zero.
    pub refunded_minor: i64,
    /// The open or submitted claim it is already in.
    pub claimed_in: Option<Uuid>,
}

/// Tenant settings that bear on eligibility.
#[derive(Debug, Clone)]
pub struct GiftAidSettings {
    /// Gift sources whose platform claims Gift Aid itself (lower case).
    pub agent_sources: Vec<String>,
    /// Donations up to this many pence are aggregated in the HMRC schedule (0: none; at most 2000).
    pub aggregate_up_to_minor: i64,
    /// The last day of the charity's accounting period (identity's tenant setting); 31 March until identity says.
    pub accounting_period_end: AccountingPeriodEnd,
}

impl Default for GiftAidSettings {
    fn default() -> Self {
        Self {
            agent_sources: vec!["justgiving".to_owned()],
            aggregate_up_to_minor: super::hmrc::DEFAULT_AGGREGATE_UP_TO_MINOR,
            accounting_period_end: AccountingPeriodEnd::before_fiscal_year(4),
        }
    }
}

/// The day `end` falls on in `year`; 29 February is the last day of February.
fn period_end_in(year: i32, end: AccountingPeriodEnd) -> NaiveDate {
    let month = u32::from(end.month.clamp(1, 12));
    let first_of_next =
        if month == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, month + 1, 1) };
    let last_day = first_of_next.and_then(|d| d.pred_opt()).map_or(28, |d| d.day());
    NaiveDate::from_ymd_opt(year, month, u32::from(end.day).clamp(1, last_day)).unwrap_or(NaiveDate::MAX)
}

/// The last day of the accounting period in which a gift dated `date` was received.
pub fn accounting_period_end_of(date: NaiveDate, end: AccountingPeriodEnd) -> NaiveDate {
    let this_year = period_end_in(date.year(), end);
    if this_year >= date { this_year } else { period_end_in(date.year() + 1, end) }
}

/// The last day a gift dated `date` can be claimed: 4 years after the end of the accounting period it was
/// received in.
pub fn claim_deadline(date: NaiveDate, end: AccountingPeriodEnd) -> NaiveDate {
    period_end_in(accounting_period_end_of(date, end).year() + 4, end)
}

/// Why a gift cannot be claimed; `code` is stable for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ineligible {
    NoDeclaration,
    OralDeclarationNotConfirmed,
    InCancellationWindow { closes: NaiveDate },
    NoUkAddress,
    NoHouseNameOrNumber,
    NoUkPostcode,
    NoFirstName,
    NoLastName,
    OutOfTime { period_end: NaiveDate, deadline: NaiveDate },
    AgentClaims { source: String },
    ClaimedByPlatform,
    NotGbp { currency: String },
    NotSucceeded { status: String },
    RefundEntry,
    FullyRefunded,
    AlreadyClaimed { claim_id: Uuid },
}

impl Ineligible {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoDeclaration => "no_declaration",
            Self::OralDeclarationNotConfirmed => "oral_declaration_not_confirmed",
            Self::InCancellationWindow { .. } => "in_cancellation_window",
            Self::NoUkAddress => "no_uk_address",
            Self::NoHouseNameOrNumber => "no_house_name_or_number",
            Self::NoUkPostcode => "no_uk_postcode",
            Self::NoFirstName => "no_first_name",
            Self::NoLastName => "no_last_name",
            Self::OutOfTime { .. } => "out_of_time",
            Self::AgentClaims { .. } => "agent_claims_gift_aid",
            Self::ClaimedByPlatform => "claimed_by_platform",
            Self::NotGbp { .. } => "not_gbp",
            Self::NotSucceeded { .. } => "not_succeeded",
            Self::RefundEntry => "refund_entry",
            Self::FullyRefunded => "fully_refunded",
            Self::AlreadyClaimed { .. } => "already_claimed",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::NoDeclaration => "no Gift Aid declaration of the donor covers the gift's date".into(),
            Self::OralDeclarationNotConfirmed => {
                "the oral declaration covering it has no written record sent yet (confirmation_sent_on)".into()
            }
            Self::InCancellationWindow { closes } => {
                format!("the oral declaration covering it can still be cancelled until {closes}; claim after that day")
            }
            Self::NoUkAddress => "the donor has no home address".into(),
            Self::NoHouseNameOrNumber => "the donor's address has no house name or number (address line 1)".into(),
            Self::NoUkPostcode => "the donor's address has no valid UK postcode".into(),
            Self::NoFirstName => {
                "the donor has no first name or initial in Latin letters, which HMRC's schedule requires".into()
            }
            Self::NoLastName => "the donor has no last name in Latin letters, which HMRC's schedule requires".into(),
            Self::OutOfTime { period_end, deadline } => format!(
                "a gift can be claimed only within 4 years of the end of the accounting period it was received in \
                 (it ended {period_end}); the last day to claim it was {deadline}"
            ),
            Self::AgentClaims { source } => {
                format!("gifts from {source} are claimed by that platform, not by the charity")
            }
            Self::ClaimedByPlatform => {
                "the gift came through a platform that claims its Gift Aid itself (JustGiving); the charity must not \
                 claim it again"
                    .into()
            }
            Self::NotGbp { currency } => format!("only gifts in GBP can be claimed; this one is in {currency}"),
            Self::NotSucceeded { status } => format!("only succeeded gifts can be claimed; this one is {status}"),
            Self::RefundEntry => "a refund entry is not a donation".into(),
            Self::FullyRefunded => "the gift has been refunded in full".into(),
            Self::AlreadyClaimed { claim_id } => format!("the gift is already in claim {claim_id}"),
        }
    }
}

/// A claimable gift: the amount to claim on, the declaration that covers it and the donor as HMRC's schedule
/// shows them (kept with the claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimable {
    /// What is left of the gift after refunds, in pence.
    pub amount_minor: i64,
    pub declaration_id: Uuid,
    pub donor: ScheduleDonor,
}

/// Gift Aid HMRC pays on a donation: 25p per £1 (basic rate 20% grossed up), rounded down to the penny.
pub fn gift_aid_on(amount_minor: i64) -> i64 {
    amount_minor.max(0) / 4
}

/// HMRC's "house name or number" from an address's first line: a leading number with its letter suffix
/// (`12A High Street` gives `12A`), else the part before the first comma (`Rose Cottage, Mill Lane` gives
/// `Rose Cottage`), else the whole line; at most 40 characters.
pub fn house_name_or_number(line1: &str) -> Option<String> {
    let line = line1.trim();
    if line.is_empty() {
        return None;
    }
    let first_word = line.split([' ', ',']).next().unwrap_or_default();
    let house = if first_word.starts_with(|c: char| c.is_ascii_digit()) {
        first_word.to_owned()
    } else {
        line.split(',').next().unwrap_or(line).trim().to_owned()
    };
    let house: String = house.chars().take(40).collect();
    (!house.is_empty()).then_some(house)
}

/// Judges one gift; every reason that applies is listed, so one look tells a user all that needs fixing.
pub fn assess(
    gift: &GiftFacts,
    donor: &DonorFacts,
    declarations: &[DeclarationOnFile],
    settings: &GiftAidSettings,
    today: NaiveDate,
) -> Result<Claimable, Vec<Ineligible>> {
    let mut reasons = Vec::new();
    if gift.is_refund_entry {
        reasons.push(Ineligible::RefundEntry);
    }
    if !matches!(gift.status, "succeeded" | "refunded") {
        reasons.push(Ineligible::NotSucceeded { status: gift.status.to_owned() });
    }
    let left = gift.amount_minor + gift.refunded_minor;
    if !gift.is_refund_entry && left <= 0 {
        reasons.push(Ineligible::FullyRefunded);
    }
    if gift.currency != "GBP" {
        reasons.push(Ineligible::NotGbp { currency: gift.currency.clone() });
    }
    let source = gift.source.to_ascii_lowercase();
    if settings.agent_sources.contains(&source) {
        reasons.push(Ineligible::AgentClaims { source: gift.source.clone() });
    }
    if gift.claimed_by_platform {
        reasons.push(Ineligible::ClaimedByPlatform);
    }
    if let Some(claim_id) = gift.claimed_in {
        reasons.push(Ineligible::AlreadyClaimed { claim_id });
    }

    // The best standing any declaration gives this gift's date.
    let standings: Vec<(Uuid, Standing)> =
        declarations.iter().map(|d| (d.id, d.declaration.standing(gift.gift_date, today))).collect();
    let covering = standings.iter().find(|(_, s)| *s == Standing::Covers).map(|(id, _)| *id);
    if covering.is_none() {
        let window = standings.iter().find_map(|(_, s)| match s {
            Standing::InCancellationWindow { closes } => Some(*closes),
            _ => None,
        });
        if let Some(closes) = window {
            reasons.push(Ineligible::InCancellationWindow { closes });
        } else if standings.iter().any(|(_, s)| *s == Standing::AwaitingConfirmation) {
            reasons.push(Ineligible::OralDeclarationNotConfirmed);
        } else {
            reasons.push(Ineligible::NoDeclaration);
        }
    }

    let deadline = claim_deadline(gift.gift_date, settings.accounting_period_end);
    if today > deadline {
        let period_end = accounting_period_end_of(gift.gift_date, settings.accounting_period_end);
        reasons.push(Ineligible::OutOfTime { period_end, deadline });
    }

    // The donor as HMRC's schedule will show them; a required cell that would be empty excludes the gift.
    let first_name = donor.first_name.as_deref().map(hmrc::first_name).unwrap_or_default();
    if first_name.is_empty() {
        reasons.push(Ineligible::NoFirstName);
    }
    let last_name = hmrc::last_name(&donor.last_name);
    if last_name.is_empty() {
        reasons.push(Ineligible::NoLastName);
    }
    let house = donor
        .address_line1
        .as_deref()
        .and_then(house_name_or_number)
        .map(|h| hmrc::house(&h))
        .filter(|h| !h.is_empty());
    // `Some(None)`: abroad, HMRC's "X".
    let postcode = if donor.is_uk {
        donor.uk_postcode.as_deref().and_then(hmrc::postcode).map(Some)
    } else {
        donor.overseas.then_some(None)
    };
    if !donor.is_uk && !donor.overseas {
        reasons.push(Ineligible::NoUkAddress);
    } else {
        if house.is_none() {
            reasons.push(Ineligible::NoHouseNameOrNumber);
        }
        if postcode.is_none() {
            reasons.push(Ineligible::NoUkPostcode);
        }
    }

    match (reasons.is_empty(), covering, house, postcode) {
        (true, Some(declaration_id), Some(house), Some(postcode)) => Ok(Claimable {
            amount_minor: left,
            declaration_id,
            donor: ScheduleDonor { title: hmrc::title(donor.title.as_deref()), first_name, last_name, house, postcode },
        }),
        _ => Err(reasons),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn input(method: &'static str) -> DeclarationInput<'static> {
        DeclarationInput {
            method: Some(method),
            declared_on: Some(d("2025-05-01")),
            declaration_text: Some("I want to Gift Aid my donation..."),
            ..DeclarationInput::default()
        }
    }

    fn today() -> NaiveDate {
        d("2025-06-15")
    }

    fn on_file(declaration: Declaration) -> Vec<DeclarationOnFile> {
        vec![DeclarationOnFile { id: Uuid::nil(), declaration }]
    }

    fn gift(date: &str) -> GiftFacts {
        GiftFacts {
            gift_date: d(date),
            amount_minor: 1000,
            currency: "GBP".into(),
            status: "succeeded",
            source: "manual".into(),
            claimed_by_platform: false,
            is_refund_entry: false,
            refunded_minor: 0,
            claimed_in: None,
        }
    }

    fn uk_donor() -> DonorFacts {
        DonorFacts {
            title: Some("Mrs.".into()),
            first_name: Some("Ann".into()),
            last_name: "Smith-Jones".into(),
            address_line1: Some("12 High Street".into()),
            uk_postcode: Some("SW1A 1AA".into()),
            is_uk: true,
            overseas: false,
        }
    }

    fn codes(result: Result<Claimable, Vec<Ineligible>>) -> Vec<&'static str> {
        result.err().unwrap_or_default().iter().map(Ineligible::code).collect()
    }

    #[test]
    fn a_declaration_reaches_back_four_years_and_no_further() {
        let mut ok = input("online");
        ok.start_date = Some(d("2021-05-01"));
        assert!(Declaration::parse(ok, today()).is_ok());
        let mut too_far = input("online");
        too_far.start_date = Some(d("2021-04-30"));
        let errors = Declaration::parse(too_far, today()).unwrap_err();
        assert_eq!(errors[0].0, "start_date");
    }

    #[test]
    fn bad_declarations_name_every_field() {
        let bad = DeclarationInput {
            method: Some("telepathy"),
            declared_on: Some(d("2025-07-01")),
            end_date: Some(d("2020-01-01")),
            end_reason: Some("bored"),
            confirmation_sent_on: Some(d("2025-07-02")),
            ..DeclarationInput::default()
        };
        let fields: Vec<&str> = Declaration::parse(bad, today()).unwrap_err().iter().map(|e| e.0).collect();
        for field in ["method", "declared_on", "end_date", "end_reason", "declaration_text"] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
        let mut written = input("written");
        written.confirmation_sent_on = Some(d("2025-05-02"));
        written.cancelled_on = Some(d("2025-05-03"));
        let fields: Vec<&str> = Declaration::parse(written, today()).unwrap_err().iter().map(|e| e.0).collect();
        assert_eq!(fields, ["confirmation_sent_on", "cancelled_on"]);
    }

    #[test]
    fn covered_dates_include_both_ends() {
        let mut i = input("written");
        i.start_date = Some(d("2024-01-01"));
        i.end_date = Some(d("2024-12-31"));
        i.end_reason = Some("donor_request");
        let declaration = Declaration::parse(i, today()).unwrap();
        let files = on_file(declaration);
        let settings = GiftAidSettings::default();
        for (date, eligible) in
            [("2023-12-31", false), ("2024-01-01", true), ("2024-12-31", true), ("2025-01-01", false)]
        {
            let result = assess(&gift(date), &uk_donor(), &files, &settings, today());
            assert_eq!(result.is_ok(), eligible, "{date}");
            if !eligible {
                assert_eq!(codes(result), ["no_declaration"]);
            }
        }
    }

    #[test]
    fn oral_declarations_wait_for_their_record_and_the_window() {
        let settings = GiftAidSettings::default();
        let unconfirmed = Declaration::parse(input("oral"), today()).unwrap();
        assert_eq!(
            codes(assess(&gift("2025-05-10"), &uk_donor(), &on_file(unconfirmed), &settings, today())),
            ["oral_declaration_not_confirmed"]
        );
        let mut sent = input("oral");
        sent.confirmation_sent_on = Some(d("2025-06-01"));
        let confirmed = Declaration::parse(sent.clone(), today()).unwrap();
        assert_eq!(confirmed.cancellation_window_ends(), Some(d("2025-07-01")));
        let files = on_file(confirmed);
        assert_eq!(
            codes(assess(&gift("2025-05-10"), &uk_donor(), &files, &settings, d("2025-07-01"))),
            ["in_cancellation_window"]
        );
        assert!(assess(&gift("2025-05-10"), &uk_donor(), &files, &settings, d("2025-07-02")).is_ok());
        // Cancelled within the window: void from the start, even for gifts before the cancellation.
        sent.cancelled_on = Some(d("2025-06-20"));
        let cancelled = on_file(Declaration::parse(sent.clone(), today()).unwrap());
        assert_eq!(
            codes(assess(&gift("2025-05-10"), &uk_donor(), &cancelled, &settings, d("2025-08-01"))),
            ["no_declaration"]
        );
        sent.cancelled_on = Some(d("2025-07-02"));
        let late = Declaration::parse(sent, d("2025-08-01")).unwrap_err();
        assert_eq!(late[0].0, "cancelled_on");
    }

    #[test]
    fn the_donor_needs_an_address_with_a_house_and_a_uk_postcode_or_x_abroad() {
        let files = on_file(Declaration::parse(input("online"), today()).unwrap());
        let settings = GiftAidSettings::default();
        let claim = |donor: &DonorFacts| assess(&gift("2025-05-10"), donor, &files, &settings, today());
        // A donor living abroad who pays UK tax is claimed for: house name or number, and X for the postcode.
        let abroad = DonorFacts {
            address_line1: Some("1 Rue de Rivoli".into()),
            uk_postcode: None,
            is_uk: false,
            overseas: true,
            ..uk_donor()
        };
        let claimed = claim(&abroad).unwrap();
        assert_eq!((claimed.donor.house.as_str(), claimed.donor.postcode), ("1", None));
        let abroad_without_house = DonorFacts { address_line1: None, ..abroad };
        assert_eq!(codes(claim(&abroad_without_house)), ["no_house_name_or_number"]);
        let nowhere = DonorFacts { address_line1: None, uk_postcode: None, is_uk: false, ..uk_donor() };
        assert_eq!(codes(claim(&nowhere)), ["no_uk_address"]);
        let bare = DonorFacts { address_line1: None, uk_postcode: None, ..uk_donor() };
        assert_eq!(codes(claim(&bare)), ["no_house_name_or_number", "no_uk_postcode"]);
        let odd_postcode = DonorFacts { uk_postcode: Some("QI1 1AA".into()), ..uk_donor() };
        assert_eq!(codes(claim(&odd_postcode)), ["no_uk_postcode"], "not HMRC's pattern");
    }

    #[test]
    fn the_donor_needs_a_first_and_last_name_hmrc_can_show() {
        let files = on_file(Declaration::parse(input("online"), today()).unwrap());
        let settings = GiftAidSettings::default();
        let claim = |donor: &DonorFacts| assess(&gift("2025-05-10"), donor, &files, &settings, today());
        let ok = claim(&uk_donor()).unwrap();
        assert_eq!(
            ok.donor,
            ScheduleDonor {
                title: Some("Mrs".into()),
                first_name: "Ann".into(),
                last_name: "Smith Jones".into(),
                house: "12".into(),
                postcode: Some("SW1A 1AA".into()),
            },
            "double-barrelled with a space, the title without its full stop"
        );
        assert_eq!(codes(claim(&DonorFacts { first_name: None, ..uk_donor() })), ["no_first_name"]);
        assert_eq!(codes(claim(&DonorFacts { first_name: Some("  ".into()), ..uk_donor() })), ["no_first_name"]);
        assert_eq!(codes(claim(&DonorFacts { first_name: Some("李".into()), ..uk_donor() })), ["no_first_name"]);
        assert_eq!(codes(claim(&DonorFacts { last_name: "李".into(), ..uk_donor() })), ["no_last_name"]);
        // A title HMRC would refuse is left out, never a reason to exclude.
        let reverend = claim(&DonorFacts { title: Some("Reverend".into()), ..uk_donor() }).unwrap();
        assert_eq!(reverend.donor.title, None);
        let transliterated = claim(&DonorFacts { first_name: Some("Zoë".into()), ..uk_donor() }).unwrap();
        assert_eq!(transliterated.donor.first_name, "Zoe");
    }

    #[test]
    fn a_gift_is_claimed_within_4_years_of_the_end_of_its_accounting_period() {
        let march = AccountingPeriodEnd::before_fiscal_year(4);
        assert_eq!(accounting_period_end_of(d("2021-03-31"), march), d("2021-03-31"));
        assert_eq!(accounting_period_end_of(d("2021-04-01"), march), d("2022-03-31"));
        assert_eq!(claim_deadline(d("2021-03-31"), march), d("2025-03-31"));
        assert_eq!(claim_deadline(d("2021-04-01"), march), d("2026-03-31"));
        let december = AccountingPeriodEnd::new(12, 31).unwrap();
        assert_eq!(claim_deadline(d("2021-01-01"), december), d("2025-12-31"));
        // The last day of February, in leap years and others.
        let february = AccountingPeriodEnd::before_fiscal_year(3);
        assert_eq!(accounting_period_end_of(d("2023-02-28"), february), d("2023-02-28"));
        assert_eq!(accounting_period_end_of(d("2023-03-01"), february), d("2024-02-29"));
        assert_eq!(claim_deadline(d("2023-03-01"), february), d("2028-02-29"));

        // Declared in time to cover it: a declaration made 2025-03-31 reaches back to 2021-03-31.
        let mut i = input("written");
        i.declared_on = Some(d("2025-03-31"));
        i.start_date = Some(d("2021-03-31"));
        let files = on_file(Declaration::parse(i, d("2025-04-01")).unwrap());
        let mut settings = GiftAidSettings::default();
        let claim =
            |settings: &GiftAidSettings, on: &str| assess(&gift("2021-03-31"), &uk_donor(), &files, settings, d(on));
        assert!(claim(&settings, "2025-03-31").is_ok(), "the last day");
        let late = claim(&settings, "2025-04-01").unwrap_err();
        assert_eq!(late.iter().map(Ineligible::code).collect::<Vec<_>>(), ["out_of_time"]);
        assert!(late[0].detail().contains("2025-03-31"), "{}", late[0].detail());
        // With a December year end the same gift's period ended 2021-12-31: still in time.
        settings.accounting_period_end = december;
        assert!(claim(&settings, "2025-04-01").is_ok());
    }

    #[test]
    fn agents_currencies_statuses_refunds_and_claims_each_refuse() {
        let files = on_file(Declaration::parse(input("online"), today()).unwrap());
        let settings = GiftAidSettings::default();
        let check = |g: GiftFacts| codes(assess(&g, &uk_donor(), &files, &settings, today()));
        assert_eq!(check(GiftFacts { source: "JustGiving".into(), ..gift("2025-05-10") }), ["agent_claims_gift_aid"]);
        // Pulled from JustGiving: excluded even when the tenant no longer lists it as an agent, and whatever
        // its source became.
        let no_agents = GiftAidSettings { agent_sources: Vec::new(), ..GiftAidSettings::default() };
        let platform = GiftFacts { claimed_by_platform: true, source: "manual".into(), ..gift("2025-05-10") };
        assert_eq!(codes(assess(&platform, &uk_donor(), &files, &no_agents, today())), ["claimed_by_platform"]);
        assert_eq!(check(GiftFacts { currency: "EUR".into(), ..gift("2025-05-10") }), ["not_gbp"]);
        assert_eq!(check(GiftFacts { status: "pending", ..gift("2025-05-10") }), ["not_succeeded"]);
        assert_eq!(
            check(GiftFacts { status: "refunded", refunded_minor: -1000, ..gift("2025-05-10") }),
            ["fully_refunded"]
        );
        assert_eq!(check(GiftFacts { claimed_in: Some(Uuid::nil()), ..gift("2025-05-10") }), ["already_claimed"]);
        let partly =
            assess(&GiftFacts { refunded_minor: -400, ..gift("2025-05-10") }, &uk_donor(), &files, &settings, today())
                .unwrap();
        assert_eq!((partly.amount_minor, gift_aid_on(partly.amount_minor)), (600, 150));
    }

    #[test]
    fn house_names_and_numbers() {
        assert_eq!(house_name_or_number("12 High Street").as_deref(), Some("12"));
        assert_eq!(house_name_or_number("12A, High Street").as_deref(), Some("12A"));
        assert_eq!(house_name_or_number("Rose Cottage, Mill Lane").as_deref(), Some("Rose Cottage"));
        assert_eq!(house_name_or_number("Flat 3, 12 High St").as_deref(), Some("Flat 3"));
        assert_eq!(house_name_or_number("  "), None);
        assert_eq!(house_name_or_number(&"x".repeat(60)).map(|h| h.len()), Some(40));
    }
}
