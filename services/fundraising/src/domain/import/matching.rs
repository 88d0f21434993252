//! Finding what exists already: a row's donor among the tenant's donors by the rules the import names, and its
//! gift among the gifts recorded (or created by earlier rows), so nothing is created twice.

use super::rows::{DonorRow, GiftRow};
use crate::domain::GiftStatus;
use chrono::NaiveDate;
use std::collections::HashMap;
use uuid::Uuid;

/// The rules used when an import names none: a donor's id in the source, then name and email, then name and
/// postcode. Not `email` alone: couples often share one address, and must not become one donor.
pub const DEFAULT_DONOR_RULES: [DonorRule; 3] = [DonorRule::ExternalId, DonorRule::NameEmail, DonorRule::NamePostcode];

/// How donors in the file are matched with donors already known (or created earlier in the same file), tried in
/// the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DonorRule {
    ExternalId,
    Email,
    NameEmail,
    NamePostcode,
    NamePhone,
}

impl DonorRule {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.trim() {
            "external_id" => Self::ExternalId,
            "email" => Self::Email,
            "name_email" => Self::NameEmail,
            "name_postcode" => Self::NamePostcode,
            "name_phone" => Self::NamePhone,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ExternalId => "external_id",
            Self::Email => "email",
            Self::NameEmail => "name_email",
            Self::NamePostcode => "name_postcode",
            Self::NamePhone => "name_phone",
        }
    }
}

/// How a gift in the file is recognised as one already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftRule {
    /// The same external reference (from the same source).
    Reference,
    /// The same donor and amount, dated within this many days.
    DonorAmountDate { within_days: u32 },
}

/// A donor as matching sees it: who it is and the keys it can be found by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDonor {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
    pub postcode: Option<String>,
    pub phone: Option<String>,
}

/// A name as matching compares it: trimmed, inner runs of whitespace made one space, case folded, so
/// `De  Souza` and `de souza` are one surname.
pub fn folded(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn name_key(first: Option<&str>, last: &str) -> String {
    format!("{}|{}", folded(first.unwrap_or_default()), folded(last))
}

/// A postcode as matching compares it: without spaces, in capitals (UK postcodes are already normalised; others
/// are kept as written).
pub fn postcode_key(postcode: &str) -> String {
    postcode.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase()
}

/// Every donor by every key the rules can use; donors created by earlier rows are added as the file is read.
#[derive(Debug, Default)]
pub struct DonorIndex {
    keys: HashMap<(DonorRule, String), Uuid>,
}

impl DonorIndex {
    pub fn add(&mut self, donor: &KnownDonor) {
        let name = name_key(donor.first_name.as_deref(), &donor.last_name);
        let email = donor.email.as_deref().map(str::to_lowercase);
        let mut insert = |rule: DonorRule, key: Option<String>| {
            if let Some(key) = key {
                // The first donor with a key keeps it: later ones do not steal earlier matches.
                self.keys.entry((rule, key)).or_insert(donor.id);
            }
        };
        insert(DonorRule::ExternalId, donor.external_id.clone());
        insert(DonorRule::Email, email.clone());
        insert(DonorRule::NameEmail, email.map(|e| format!("{name}|{e}")));
        insert(DonorRule::NamePostcode, donor.postcode.as_deref().map(|p| format!("{name}|{}", postcode_key(p))));
        insert(DonorRule::NamePhone, donor.phone.as_ref().map(|p| format!("{name}|{p}")));
    }

    /// The first rule (in the order given) that finds a donor for this row.
    pub fn find(&self, row: &DonorRow, rules: &[DonorRule]) -> Option<(Uuid, DonorRule)> {
        let name = name_key(row.first_name.as_deref(), &row.last_name);
        let email = row.email.as_deref().map(str::to_lowercase);
        rules.iter().find_map(|rule| {
            let key = match rule {
                DonorRule::ExternalId => row.external_id.clone(),
                DonorRule::Email => email.clone(),
                DonorRule::NameEmail => email.as_ref().map(|e| format!("{name}|{e}")),
                DonorRule::NamePostcode => row.postcode.as_deref().map(|p| format!("{name}|{}", postcode_key(p))),
                DonorRule::NamePhone => row.phone.as_ref().map(|p| format!("{name}|{p}")),
            }?;
            self.keys.get(&(*rule, key)).map(|id| (*id, *rule))
        })
    }
}

/// A donor about to be created, as the duplicate prompt of gift entry describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchProbe {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Lower-case.
    pub email: Option<String>,
    pub postcode: Option<String>,
    /// E.164, as donors' phones are stored.
    pub phone: Option<String>,
}

/// The rules gift entry's duplicate prompt uses, strongest first: the import's own comparisons, but `email`
/// alone (a person is asked, so a shared address is worth showing) rather than name and email.
pub const PROMPT_RULES: [DonorRule; 3] = [DonorRule::Email, DonorRule::NamePostcode, DonorRule::NamePhone];

/// Which of [`PROMPT_RULES`] find `donor` for `probe`, compared exactly as an import compares them (names folded,
/// postcodes without spaces in capitals, emails in lower case).
pub fn prompt_matches(donor: &KnownDonor, probe: &MatchProbe) -> Vec<DonorRule> {
    let same_name = probe.last_name.as_deref().is_some_and(|last| {
        name_key(probe.first_name.as_deref(), last) == name_key(donor.first_name.as_deref(), &donor.last_name)
    });
    let mut rules = Vec::new();
    if probe.email.is_some() && donor.email.as_deref().map(str::to_lowercase) == probe.email {
        rules.push(DonorRule::Email);
    }
    if same_name
        && let (Some(a), Some(b)) = (donor.postcode.as_deref(), probe.postcode.as_deref())
        && postcode_key(a) == postcode_key(b)
    {
        rules.push(DonorRule::NamePostcode);
    }
    if same_name && probe.phone.is_some() && donor.phone == probe.phone {
        rules.push(DonorRule::NamePhone);
    }
    rules
}

/// A fund as the `fund` column finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFund {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub archived: bool,
}

/// A fund an import creates (with `create_missing_funds`): the first row naming it decides its id and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFund {
    pub id: Uuid,
    pub code: String,
    pub name: String,
}

/// The tenant's funds by code (any case) and by name (folded as names are), and those the file creates.
#[derive(Debug, Default)]
pub struct FundIndex {
    by_code: HashMap<String, (Uuid, bool)>,
    by_name: HashMap<String, Vec<(Uuid, bool)>>,
    created: HashMap<Uuid, NewFund>,
}

impl FundIndex {
    pub fn add(&mut self, fund: &KnownFund) {
        self.by_code.entry(fund.code.to_lowercase()).or_insert((fund.id, fund.archived));
        self.by_name.entry(folded(&fund.name)).or_default().push((fund.id, fund.archived));
    }

    /// The funds the file creates, by id.
    pub fn created(&self) -> &HashMap<Uuid, NewFund> {
        &self.created
    }

    /// The fund a `fund` value names: by code first (any case), then by name (trimmed, whitespace collapsed, case
    /// folded). An unknown fund is the row's error, unless `create` is set: then it is created with `new_id`
    /// (its code the value itself when it is a valid code, else one made from the name), and later rows naming it
    /// find it.
    pub fn resolve(&mut self, value: &str, create: bool, new_id: Uuid) -> Result<Uuid, String> {
        let found = match self.by_code.get(&value.trim().to_lowercase()) {
            Some(fund) => Some(*fund),
            None => match self.by_name.get(&folded(value)).map(Vec::as_slice) {
                Some([fund]) => Some(*fund),
                Some(several) if several.len() > 1 => {
                    return Err(format!("{} funds are named {value:?}; give the fund's code", several.len()));
                }
                _ => None,
            },
        };
        match found {
            Some((_, true)) => Err(format!("the fund {value:?} is archived; it takes no new gifts")),
            Some((id, false)) => Ok(id),
            None if !create => {
                Err(format!("no fund has the code or name {value:?} (the import's create_missing_funds creates it)"))
            }
            None => {
                let name = value.split_whitespace().collect::<Vec<_>>().join(" ");
                let code = self.free_code(&name);
                let fund = KnownFund { id: new_id, code: code.clone(), name: name.clone(), archived: false };
                self.add(&fund);
                self.created.insert(new_id, NewFund { id: new_id, code, name });
                Ok(new_id)
            }
        }
    }

    /// A code for a new fund: the name itself when it is a valid code (`ROOF-APPEAL`), else its letters and
    /// digits in capitals with `-` between words (`Roof appeal 2025` gives `ROOF-APPEAL-2025`), made unique with
    /// `-2`, `-3`... when another fund has it.
    fn free_code(&self, name: &str) -> String {
        let base = match crate::domain::FundCode::parse(name) {
            Ok(code) => code.as_str().to_owned(),
            Err(_) => {
                let mut code = String::new();
                for word in name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
                    if !code.is_empty() {
                        code.push('-');
                    }
                    code.push_str(&word.to_ascii_uppercase());
                }
                if code.is_empty() { "FUND".to_owned() } else { code.chars().take(40).collect() }
            }
        };
        let mut code = base.clone();
        let mut n = 2;
        while self.by_code.contains_key(&code.to_lowercase()) {
            code = format!("{}-{n}", base.chars().take(40).collect::<String>());
            n += 1;
        }
        code
    }
}

/// The Gift Aid declarations donors have, by the gift dates they cover, so an import makes a donor's declaration
/// once: not when one on file (or made by an earlier row) already covers the row's declaration date.
#[derive(Debug, Default)]
pub struct DeclarationIndex {
    /// Per donor: (start, end) of each declaration in force (cancelled ones are void and left out).
    by_donor: HashMap<Uuid, Vec<(NaiveDate, Option<NaiveDate>)>>,
}

impl DeclarationIndex {
    pub fn add(&mut self, donor_id: Uuid, start: NaiveDate, end: Option<NaiveDate>) {
        self.by_donor.entry(donor_id).or_default().push((start, end));
    }

    /// Whether one of the donor's declarations covers `date`.
    pub fn covers(&self, donor_id: Uuid, date: NaiveDate) -> bool {
        self.by_donor
            .get(&donor_id)
            .is_some_and(|spans| spans.iter().any(|(start, end)| *start <= date && end.is_none_or(|e| date <= e)))
    }
}

/// A gift as duplicate detection sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownGift {
    pub id: Uuid,
    pub donor_id: Uuid,
    pub reference: Option<String>,
    /// Positive, for gifts and refund entries alike.
    pub amount_minor: i64,
    pub date: NaiveDate,
    /// For a refund entry: the gift it refunds.
    pub refund_of: Option<Uuid>,
    /// Only a succeeded gift can be refunded.
    pub status: GiftStatus,
}

/// Gifts already recorded (and those the file creates, as it is read), for duplicate detection.
#[derive(Debug, Default)]
pub struct GiftIndex {
    by_reference: HashMap<String, Uuid>,
    by_donor_amount: HashMap<(Uuid, i64), Vec<(NaiveDate, Uuid)>>,
    /// Refund entries by (gift refunded, amount, date): importing the same refund twice records it once.
    refunds: HashMap<(Uuid, i64, NaiveDate), Uuid>,
    /// Each gift's amount, and how much of it its refunds have given back, so a refund row cannot exceed it.
    amounts: HashMap<Uuid, i64>,
    refunded: HashMap<Uuid, i64>,
    statuses: HashMap<Uuid, GiftStatus>,
}

impl GiftIndex {
    pub fn add(&mut self, gift: &KnownGift) {
        if let Some(refunded) = gift.refund_of {
            self.refunds.entry((refunded, gift.amount_minor, gift.date)).or_insert(gift.id);
            *self.refunded.entry(refunded).or_default() += gift.amount_minor;
            return;
        }
        self.amounts.insert(gift.id, gift.amount_minor);
        self.statuses.insert(gift.id, gift.status);
        if let Some(reference) = &gift.reference {
            self.by_reference.entry(reference.clone()).or_insert(gift.id);
        }
        self.by_donor_amount.entry((gift.donor_id, gift.amount_minor)).or_default().push((gift.date, gift.id));
    }

    /// What is left to refund of a gift: its amount less its refunds.
    pub fn refundable(&self, gift_id: Uuid) -> i64 {
        self.amounts.get(&gift_id).copied().unwrap_or(0) - self.refunded.get(&gift_id).copied().unwrap_or(0)
    }

    /// The refund entry already recorded for this refund of a gift (same amount and date), if any.
    pub fn refund(&self, gift_id: Uuid, amount_minor: i64, date: NaiveDate) -> Option<Uuid> {
        self.refunds.get(&(gift_id, amount_minor, date)).copied()
    }

    /// A gift's status, for whether it can be refunded.
    pub fn status(&self, gift_id: Uuid) -> Option<GiftStatus> {
        self.statuses.get(&gift_id).copied()
    }

    /// The gift reference's gift, for refunds.
    pub fn by_reference(&self, reference: &str) -> Option<Uuid> {
        self.by_reference.get(reference).copied()
    }

    /// An existing gift this one duplicates, by the rule.
    pub fn duplicate(&self, donor_id: Uuid, gift: &GiftRow, rule: GiftRule) -> Option<Uuid> {
        match rule {
            GiftRule::Reference => gift.reference.as_deref().and_then(|r| self.by_reference(r)),
            GiftRule::DonorAmountDate { within_days } => {
                self.by_donor_amount.get(&(donor_id, gift.amount_minor)).and_then(|gifts| {
                    gifts
                        .iter()
                        .find(|(date, _)| (*date - gift.date).num_days().unsigned_abs() <= u64::from(within_days))
                        .map(|(_, id)| *id)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(first: &str, last: &str, email: Option<&str>, postcode: Option<&str>) -> KnownDonor {
        KnownDonor {
            id: Uuid::now_v7(),
            external_id: None,
            first_name: Some(first.into()),
            last_name: last.into(),
            email: email.map(Into::into),
            postcode: postcode.map(Into::into),
            phone: None,
        }
    }

    fn row(first: &str, last: &str, email: Option<&str>, postcode: Option<&str>) -> DonorRow {
        DonorRow {
            first_name: Some(first.into()),
            last_name: last.into(),
            email: email.map(Into::into),
            postcode: postcode.map(Into::into),
            ..DonorRow::default()
        }
    }

    #[test]
    fn names_compare_trimmed_with_whitespace_collapsed_and_case_folded() {
        let mut donors = DonorIndex::default();
        let maria = known("Maria", "De  Souza", Some("maria@example.org"), Some("SW1A 1AA"));
        donors.add(&maria);
        let rules = [DonorRule::NameEmail, DonorRule::NamePostcode];
        for (first, last) in
            [("maria", "de souza"), (" MARIA ", "De Souza"), ("Maria", "de\t souza "), ("María", "de souza")]
        {
            let found = donors.find(&row(first, last, Some("MARIA@example.org"), None), &rules);
            if first == "María" {
                assert_eq!(found, None, "accents are not folded away");
            } else {
                assert_eq!(found, Some((maria.id, DonorRule::NameEmail)), "{first:?} {last:?}");
            }
        }
        // Postcodes compare without spaces and case.
        for postcode in ["sw1a1aa", "SW1A  1AA", " sw1a 1aa"] {
            let found = donors.find(&row("maria", "DE SOUZA", None, Some(postcode)), &rules);
            assert_eq!(found, Some((maria.id, DonorRule::NamePostcode)), "{postcode:?}");
        }
        assert_eq!(donors.find(&row("Maria", "De Sousa", Some("maria@example.org"), None), &rules), None);
    }

    #[test]
    fn funds_are_found_by_code_or_name_and_created_only_when_asked() {
        let mut funds = FundIndex::default();
        let (general, roof, old) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let fund =
            |id, code: &str, name: &str, archived| KnownFund { id, code: code.into(), name: name.into(), archived };
        funds.add(&fund(general, "GEN", "General Fund", false));
        funds.add(&fund(roof, "ROOF-APPEAL", "Roof Appeal", false));
        funds.add(&fund(old, "OLD", "Old Appeal", true));
        let new_id = Uuid::now_v7();
        assert_eq!(funds.resolve("GEN", false, new_id), Ok(general));
        assert_eq!(funds.resolve("gen", false, new_id), Ok(general), "codes in any case");
        assert_eq!(funds.resolve(" general  FUND ", false, new_id), Ok(general), "names folded");
        assert_eq!(funds.resolve("Roof Appeal", false, new_id), Ok(roof));
        assert_eq!(
            funds.resolve("OLD", false, new_id),
            Err("the fund \"OLD\" is archived; it takes no new gifts".into())
        );
        assert_eq!(
            funds.resolve("Bells", false, new_id),
            Err("no fund has the code or name \"Bells\" (the import's create_missing_funds creates it)".into())
        );
        assert!(funds.created().is_empty());
        // Created when asked, once: later rows find it by name or by its new code.
        assert_eq!(funds.resolve("Church  bells 2025", true, new_id), Ok(new_id));
        assert_eq!(funds.resolve("church bells 2025", true, Uuid::now_v7()), Ok(new_id));
        assert_eq!(funds.resolve("CHURCH-BELLS-2025", false, Uuid::now_v7()), Ok(new_id));
        assert_eq!(
            funds.created()[&new_id],
            NewFund { id: new_id, code: "CHURCH-BELLS-2025".into(), name: "Church bells 2025".into() }
        );
        // A code another fund has is made unique; a valid code is kept as written.
        let (gen2, spire) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(funds.resolve("Gen!", true, gen2), Ok(gen2));
        assert_eq!(funds.created()[&gen2].code, "GEN-2");
        assert_eq!(funds.resolve("spire", true, spire), Ok(spire));
        assert_eq!(funds.created()[&spire].code, "spire");
        // Two funds with one name: the code must say which.
        funds.add(&fund(Uuid::now_v7(), "ROOF2", "Roof Appeal", false));
        assert_eq!(
            funds.resolve("roof appeal", true, Uuid::now_v7()),
            Err("2 funds are named \"roof appeal\"; give the fund's code".into())
        );
    }

    #[test]
    fn by_default_a_couple_sharing_an_email_stay_two_donors() {
        let mut donors = DonorIndex::default();
        let ann = known("Ann", "Smith", Some("smiths@example.org"), Some("LS1 4AP"));
        donors.add(&ann);
        let bob = row("Bob", "Smith", Some("smiths@example.org"), Some("LS1 4AP"));
        assert_eq!(donors.find(&bob, &DEFAULT_DONOR_RULES), None, "Bob is not Ann");
        assert_eq!(
            donors.find(&row("ann", "smith", Some("smiths@example.org"), None), &DEFAULT_DONOR_RULES),
            Some((ann.id, DonorRule::NameEmail))
        );
        assert_eq!(
            donors.find(&row("Ann", "Smith", None, Some("ls14ap")), &DEFAULT_DONOR_RULES),
            Some((ann.id, DonorRule::NamePostcode))
        );
        // `email` alone, when an import asks for it, still merges them.
        assert_eq!(donors.find(&bob, &[DonorRule::Email]), Some((ann.id, DonorRule::Email)));
    }
    use crate::domain::import::testing::d;

    #[test]
    fn the_prompt_finds_a_donor_by_email_or_by_name_with_postcode_or_phone() {
        let known = KnownDonor {
            id: Uuid::nil(),
            external_id: None,
            first_name: Some("Ann".into()),
            last_name: "De  Souza".into(),
            email: Some("Ann@Example.org".into()),
            postcode: Some("SW1A 1AA".into()),
            phone: Some("+447700900123".into()),
        };
        let probe =
            |first: &str, last: &str, email: Option<&str>, postcode: Option<&str>, phone: Option<&str>| MatchProbe {
                first_name: Some(first.into()),
                last_name: Some(last.into()),
                email: email.map(Into::into),
                postcode: postcode.map(Into::into),
                phone: phone.map(Into::into),
            };
        assert_eq!(
            prompt_matches(
                &known,
                &probe("ann", "de souza", Some("ann@example.org"), Some("sw1a1aa"), Some("+447700900123"))
            ),
            vec![DonorRule::Email, DonorRule::NamePostcode, DonorRule::NamePhone]
        );
        assert_eq!(
            prompt_matches(&known, &probe("Bob", "Other", Some("ann@example.org"), None, None)),
            vec![DonorRule::Email]
        );
        assert!(
            prompt_matches(&known, &probe("Anne", "De Souza", None, Some("SW1A 1AA"), Some("+447700900123")))
                .is_empty()
        );
        assert!(prompt_matches(&known, &probe("Ann", "De Souza", None, Some("SW1A 2AA"), None)).is_empty());
    }

    #[test]
    fn without_references_gifts_match_by_donor_amount_and_nearby_date() {
        let mut gifts = GiftIndex::default();
        let donor = Uuid::now_v7();
        let known = Uuid::now_v7();
        gifts.add(&KnownGift {
            id: known,
            donor_id: donor,
            reference: None,
            amount_minor: 2500,
            date: d("2025-04-06"),
            refund_of: None,
            status: GiftStatus::Succeeded,
        });
        let gift = |amount_minor, date: &str| GiftRow {
            reference: None,
            amount_minor,
            currency: "GBP".into(),
            date: d(date),
            status: "succeeded",
            payment_method: None,
            fund: None,
            fund_id: None,
            campaign: None,
            notes: None,
            refund_of: None,
        };
        let rule = GiftRule::DonorAmountDate { within_days: 3 };
        assert_eq!(gifts.duplicate(donor, &gift(2500, "2025-04-09"), rule), Some(known));
        assert_eq!(gifts.duplicate(donor, &gift(2500, "2025-04-10"), rule), None);
        assert_eq!(gifts.duplicate(donor, &gift(2501, "2025-04-06"), rule), None);
        assert_eq!(gifts.duplicate(Uuid::now_v7(), &gift(2500, "2025-04-06"), rule), None);
    }
}
