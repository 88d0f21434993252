//! Deciding what each row does (create or match a donor, create a gift, find it a duplicate, refund a gift, or
//! refuse the row), the ids of what it creates, and the order the commit writes the rows in.

use super::columns::Field;
use super::matching::{DeclarationIndex, DonorIndex, DonorRule, FundIndex, GiftIndex, GiftRule, KnownDonor, KnownGift};
use super::rows::{ReadRow, Row, RowError};
use crate::domain::GiftStatus;
use std::collections::HashMap;
use uuid::Uuid;

/// What a row does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Creates its donor (with this id) and its gift.
    CreateDonor {
        donor_id: Uuid,
        gift_id: Uuid,
    },
    /// Adds its gift to a known donor, found by the rule.
    MatchDonor {
        donor_id: Uuid,
        rule: DonorRule,
        gift_id: Uuid,
    },
    /// Its gift is already recorded (or earlier in the file).
    DuplicateGift {
        donor_id: Option<Uuid>,
        gift_id: Uuid,
    },
    /// A refund of a gift of the file or already recorded.
    Refund {
        gift_id: Uuid,
        refund_id: Uuid,
    },
    Error(RowError),
}

impl Outcome {
    /// Whether the row writes a new gift (not a refund entry).
    pub fn creates_gift(&self) -> bool {
        matches!(self, Self::CreateDonor { .. } | Self::MatchDonor { .. })
    }

    /// The outcome's kind, for counting: `create_donor`, `match_donor`, `duplicate_gift`, `refund`, `error`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::CreateDonor { .. } => "create_donor",
            Self::MatchDonor { .. } => "match_donor",
            Self::DuplicateGift { .. } => "duplicate_gift",
            Self::Refund { .. } => "refund",
            Self::Error(_) => "error",
        }
    }

    /// As the outcome file says it: `create donor`, `match donor <id> by <rule>`, `duplicate gift <id>`, ...
    pub fn describe(&self) -> String {
        match self {
            Self::CreateDonor { .. } => "create donor; create gift".to_owned(),
            Self::MatchDonor { donor_id, rule, .. } => {
                format!("match donor {donor_id} by {}; create gift", rule.name())
            }
            Self::DuplicateGift { gift_id, .. } => format!("duplicate gift {gift_id}"),
            Self::Refund { gift_id, .. } => format!("refund gift {gift_id}"),
            Self::Error(e) => format!("error: {}: {}", e.field, e.reason),
        }
    }
}

/// Where the ids of what an import creates come from: each is derived from the import and the row's line, so the
/// dry run, the commit and a resumed commit give a row the same ids, and the commit's outcomes are the dry run's
/// to the letter when nothing changed in between (the commit then rewrites none of them). They are UUIDv7 with
/// the import's creation time, so they sort after what existed before the import, like any other new id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowIds {
    import_id: Uuid,
    millis: u64,
}

/// What an id is for: a row may create a donor and a gift, or a refund entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Created {
    Donor = 1,
    Gift = 2,
    Refund = 3,
    Fund = 4,
    Declaration = 5,
}

impl RowIds {
    /// For the import `import_id` (a UUIDv7, whose time the ids take).
    pub fn new(import_id: Uuid) -> Self {
        let millis = import_id.get_timestamp().map_or(0, |t| {
            let (secs, nanos) = t.to_unix();
            secs * 1000 + u64::from(nanos / 1_000_000)
        });
        Self { import_id, millis }
    }

    fn id(&self, line: usize, created: Created) -> Uuid {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(self.import_id.as_bytes())
            .chain_update((line as u64).to_le_bytes())
            .chain_update([created as u8])
            .finalize();
        let mut random = [0u8; 10];
        random.copy_from_slice(&digest[..10]);
        uuid::Builder::from_unix_timestamp_millis(self.millis, &random).into_uuid()
    }
}

/// The tenant's donors, gifts and funds as deciding sees them, growing with what earlier rows create.
#[derive(Debug, Default)]
pub struct Known {
    pub donors: DonorIndex,
    pub gifts: GiftIndex,
    pub funds: FundIndex,
    pub declarations: DeclarationIndex,
}

/// How rows are decided: the import's rules.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub donor_rules: &'a [DonorRule],
    pub gift_rule: GiftRule,
    /// Whether a `fund` no fund has as code or name creates one, rather than refusing the row.
    pub create_missing_funds: bool,
}

/// Decides every row in file order, growing the indexes with what earlier rows create, so a donor, gift or fund
/// that appears twice in the file is created once. Ids of what would be created come from `ids`, so the commit
/// writes exactly what the dry run reported. A gift row's `fund` is resolved into its `fund_id`.
pub fn decide(
    rows: Vec<ReadRow>,
    known: &mut Known,
    rules: Rules<'_>,
    ids: RowIds,
) -> Vec<(usize, Outcome, Option<Row>)> {
    rows.into_iter()
        .map(|row| match row {
            Err((line, error)) => (line, Outcome::Error(error), None),
            Ok(mut row) => {
                let outcome = decide_row(&mut row, known, rules, ids);
                (row.line, outcome, Some(row))
            }
        })
        .collect()
}

/// The order the commit writes decided rows in, as positions in `decided`: each donor's rows together, in file
/// order; first the rows that write for no donor of the file (errors, duplicates, refunds of gifts recorded
/// before). A chunk then touches each donor about once per import rather than once per chunk: rollup recomputes
/// fewer donors, and the gift indexes and donor checks work on neighbouring entries. Within a donor the file order
/// stays, so the row creating the donor comes first and a gift comes before its refunds (each chunk writes its new
/// donors before its gifts, so a donor's rows may also span chunks).
pub fn write_order(decided: &[(usize, Outcome, Option<Row>)]) -> Vec<usize> {
    let donor_of_gift: HashMap<Uuid, Uuid> = decided
        .iter()
        .filter_map(|(_, outcome, _)| match outcome {
            Outcome::CreateDonor { donor_id, gift_id } | Outcome::MatchDonor { donor_id, gift_id, .. } => {
                Some((*gift_id, *donor_id))
            }
            _ => None,
        })
        .collect();
    let donor = |outcome: &Outcome| match outcome {
        Outcome::CreateDonor { donor_id, .. } | Outcome::MatchDonor { donor_id, .. } => Some(*donor_id),
        Outcome::Refund { gift_id, .. } => donor_of_gift.get(gift_id).copied(),
        Outcome::DuplicateGift { .. } | Outcome::Error(_) => None,
    };
    let mut order: Vec<usize> = (0..decided.len()).collect();
    order.sort_by_cached_key(|&i| (donor(&decided[i].1), i));
    order
}

fn decide_row(row: &mut Row, known: &mut Known, rules: Rules<'_>, ids: RowIds) -> Outcome {
    let Known { donors, gifts, funds, declarations } = known;
    let (donor_rules, gift_rule) = (rules.donor_rules, rules.gift_rule);
    if let Some(refunded) = &row.gift.refund_of {
        return match gifts.by_reference(refunded) {
            Some(gift_id) => match gifts.refund(gift_id, row.gift.amount_minor, row.gift.date) {
                Some(refund_id) => Outcome::DuplicateGift { donor_id: None, gift_id: refund_id },
                // The same rule as POST /v1/gifts/{id}/refunds: money that never arrived cannot go back.
                None if matches!(gifts.status(gift_id), Some(GiftStatus::Pending | GiftStatus::Failed)) => {
                    let status = if gifts.status(gift_id) == Some(GiftStatus::Pending) { "pending" } else { "failed" };
                    Outcome::Error(RowError {
                        field: Field::RefundOf.name(),
                        reason: format!("gift {refunded:?} is {status}; only a succeeded gift can be refunded"),
                    })
                }
                None if row.gift.amount_minor > gifts.refundable(gift_id) => Outcome::Error(RowError {
                    field: Field::Amount.name(),
                    reason: format!(
                        "must be at most {}, what is left of gift {refunded:?} after its refunds",
                        crate::domain::hmrc::amount(gifts.refundable(gift_id))
                    ),
                }),
                None => {
                    let refund_id = ids.id(row.line, Created::Refund);
                    gifts.add(&KnownGift {
                        id: refund_id,
                        donor_id: Uuid::nil(),
                        reference: None,
                        amount_minor: row.gift.amount_minor,
                        date: row.gift.date,
                        refund_of: Some(gift_id),
                        status: GiftStatus::Succeeded,
                    });
                    Outcome::Refund { gift_id, refund_id }
                }
            },
            None => Outcome::Error(RowError {
                field: Field::RefundOf.name(),
                reason: format!("no gift with reference {refunded:?} in the file before this row or recorded"),
            }),
        };
    }
    let found = donors.find(&row.donor, donor_rules);
    if let Some((donor_id, _)) = found
        && let Some(gift_id) = gifts.duplicate(donor_id, &row.gift, gift_rule)
    {
        return Outcome::DuplicateGift { donor_id: Some(donor_id), gift_id };
    }
    if found.is_none()
        && gift_rule == GiftRule::Reference
        && let Some(gift_id) = gifts.duplicate(Uuid::nil(), &row.gift, gift_rule)
    {
        return Outcome::DuplicateGift { donor_id: None, gift_id };
    }
    if let Some(value) = &row.gift.fund {
        match funds.resolve(value, rules.create_missing_funds, ids.id(row.line, Created::Fund)) {
            Ok(fund_id) => row.gift.fund_id = Some(fund_id),
            Err(reason) => return Outcome::Error(RowError { field: Field::Fund.name(), reason }),
        }
    }
    let gift_id = ids.id(row.line, Created::Gift);
    let (donor_id, outcome) = match found {
        Some((donor_id, rule)) => (donor_id, Outcome::MatchDonor { donor_id, rule, gift_id }),
        None => {
            let donor_id = ids.id(row.line, Created::Donor);
            donors.add(&KnownDonor {
                id: donor_id,
                external_id: row.donor.external_id.clone(),
                first_name: row.donor.first_name.clone(),
                last_name: row.donor.last_name.clone(),
                email: row.donor.email.clone(),
                postcode: row.donor.postcode.clone(),
                phone: row.donor.phone.clone(),
            });
            (donor_id, Outcome::CreateDonor { donor_id, gift_id })
        }
    };
    // The donor's Gift Aid declaration, once: unless one on file or from an earlier row covers its date.
    if let Some(declaration) = row.donor.gift_aid.as_mut()
        && !declarations.covers(donor_id, declaration.date)
    {
        declaration.id = Some(ids.id(row.line, Created::Declaration));
        declarations.add(donor_id, declaration.date, None);
    }
    gifts.add(&KnownGift {
        id: gift_id,
        donor_id,
        reference: row.gift.reference.clone(),
        amount_minor: row.gift.amount_minor,
        date: row.gift.date,
        refund_of: None,
        status: match row.gift.status {
            "pending" => GiftStatus::Pending,
            "failed" => GiftStatus::Failed,
            _ => GiftStatus::Succeeded,
        },
    });
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::import::testing::{d, read};

    fn test_ids() -> RowIds {
        RowIds::new(Uuid::now_v7())
    }

    fn rules(donor_rules: &[DonorRule]) -> Rules<'_> {
        Rules { donor_rules, gift_rule: GiftRule::Reference, create_missing_funds: false }
    }

    #[test]
    fn a_donors_declaration_is_made_once_and_not_when_one_on_file_covers_its_date() {
        let (_, rows) = read(
            "donor id,last name,amount,date,gift aid,declaration date,declaration method\n\
             D1,Smith,5,2025-04-06,yes,2024-05-01,written\n\
             D1,Smith,6,2025-04-07,yes,2024-05-01,written\n\
             D2,Jones,5,2025-04-06,yes,2024-05-01,online\n\
             D2,Jones,5,2025-04-06,no,,\n",
        );
        let ids = test_ids();
        let mut known = Known::default();
        let decided = decide(rows, &mut known, rules(&[DonorRule::ExternalId]), ids);
        let made: Vec<Option<Uuid>> = decided
            .iter()
            .map(|(_, _, row)| row.as_ref().and_then(|r| r.donor.gift_aid.as_ref()).and_then(|g| g.id))
            .collect();
        assert_eq!(made, [Some(ids.id(2, Created::Declaration)), None, Some(ids.id(4, Created::Declaration)), None]);

        // Imported again (a declaration of each on file from the first time): none made.
        let (_, rows) = read(
            "donor id,last name,amount,date,gift aid,declaration date,declaration method\n\
             D1,Smith,5,2025-04-06,yes,2024-05-01,written\n",
        );
        let Outcome::CreateDonor { donor_id, .. } = decided[0].1 else { panic!("created") };
        let mut again = Known::default();
        again.donors.add(&KnownDonor {
            id: donor_id,
            external_id: Some("D1".into()),
            first_name: None,
            last_name: "Smith".into(),
            email: None,
            postcode: None,
            phone: None,
        });
        again.declarations.add(donor_id, d("2024-05-01"), None);
        let decided = decide(rows, &mut again, rules(&[DonorRule::ExternalId]), test_ids());
        assert_eq!(decided[0].2.as_ref().unwrap().donor.gift_aid.as_ref().unwrap().id, None);
    }

    #[test]
    fn a_gift_row_is_allocated_to_its_fund_by_code_or_name_and_an_unknown_fund_is_its_error_unless_created() {
        let csv_text = "donor id,last name,amount,date,gift ref,fund\n\
                        D1,Smith,25.00,2025-04-06,G1,GEN\n\
                        D1,Smith,10.00,2025-04-07,G2,general fund\n\
                        D2,Jones,10.00,2025-04-07,G3,Bells\n\
                        D2,Jones,10.00,2025-04-08,G4,\n\
                        D3,Brown,10.00,2025-04-08,G5,bells\n";
        let general = Uuid::now_v7();
        let known = || {
            let mut known = Known::default();
            known.funds.add(&super::super::KnownFund {
                id: general,
                code: "GEN".into(),
                name: "General Fund".into(),
                archived: false,
            });
            known
        };
        let fund_ids = |decided: &[(usize, Outcome, Option<Row>)]| -> Vec<Option<Uuid>> {
            decided.iter().map(|(_, _, row)| row.as_ref().and_then(|r| r.gift.fund_id)).collect()
        };
        let (_, rows) = read(csv_text);
        let decided = decide(rows, &mut known(), rules(&[DonorRule::ExternalId]), test_ids());
        let described: Vec<String> = decided.iter().map(|(_, o, _)| o.describe()).collect();
        assert_eq!(
            described[2],
            "error: fund: no fund has the code or name \"Bells\" (the import's create_missing_funds creates it)"
        );
        assert_eq!(
            described[4],
            "error: fund: no fund has the code or name \"bells\" (the import's create_missing_funds creates it)"
        );
        assert_eq!(described[3], "create donor; create gift", "the row after Jones's refused one creates Jones");
        assert_eq!(fund_ids(&decided)[..2], [Some(general), Some(general)]);

        let (_, rows) = read(csv_text);
        let mut known = known();
        let ids = test_ids();
        let decided =
            decide(rows, &mut known, Rules { create_missing_funds: true, ..rules(&[DonorRule::ExternalId]) }, ids);
        let bells = ids.id(4, Created::Fund);
        assert_eq!(fund_ids(&decided), [Some(general), Some(general), Some(bells), None, Some(bells)]);
        assert_eq!(known.funds.created().keys().collect::<Vec<_>>(), [&bells], "created once");
        assert!(decided.iter().all(|(_, o, _)| o.creates_gift()));
    }

    #[test]
    fn row_ids_are_the_same_for_the_same_import_and_line_and_differ_otherwise() {
        let import = Uuid::now_v7();
        let (a, b) = (RowIds::new(import), RowIds::new(import));
        assert_eq!(a.id(2, Created::Gift), b.id(2, Created::Gift));
        assert_ne!(a.id(2, Created::Gift), a.id(2, Created::Donor));
        assert_ne!(a.id(2, Created::Gift), a.id(3, Created::Gift));
        assert_ne!(a.id(2, Created::Gift), RowIds::new(Uuid::now_v7()).id(2, Created::Gift));
        let id = a.id(2, Created::Refund);
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(id.get_timestamp().map(|t| t.to_unix().0), import.get_timestamp().map(|t| t.to_unix().0));
    }

    #[test]
    fn donors_match_by_the_rules_in_order_and_gifts_are_found_again() {
        let (_, rows) = read(
            "donor id,first name,last name,email,postcode,amount,date,gift ref,refund of\n\
             D1,Ann,Smith,ann@example.org,SW1A 1AA,25.00,2025-04-06,G1,\n\
             ,Ann,Smith,ANN@example.org,,10.00,2025-04-07,G2,\n\
             ,Ann,Smith,,SW1A1AA,10.00,2025-04-08,G3,\n\
             D1,Ann,Smith,,,25.00,2025-04-06,G1,\n\
             ,Old,Friend,old@example.org,,5,2025-04-09,G4,\n\
             ,Ann,Smith,,,5,2025-04-10,,G1\n\
             ,Ann,Smith,,,5,2025-04-10,,G99\n\
             ,Ann,Smith,,,5,2025-04-10,,G1\n\
             ,Ann,Smith,,,20.01,2025-04-11,,G1\n",
        );
        let mut known = Known::default();
        let existing = Uuid::now_v7();
        known.donors.add(&KnownDonor {
            id: existing,
            external_id: None,
            first_name: Some("Old".into()),
            last_name: "Friend".into(),
            email: Some("old@example.org".into()),
            postcode: None,
            phone: None,
        });
        let donor_rules = [DonorRule::ExternalId, DonorRule::Email, DonorRule::NamePostcode];
        let decided = decide(rows, &mut known, rules(&donor_rules), test_ids());
        let described: Vec<String> = decided.iter().map(|(_, o, _)| o.describe()).collect();
        let Outcome::CreateDonor { donor_id: ann, gift_id: g1 } = decided[0].1 else { panic!("{described:?}") };
        assert_eq!(described[1], format!("match donor {ann} by email; create gift"));
        assert_eq!(described[2], format!("match donor {ann} by name_postcode; create gift"));
        assert_eq!(described[3], format!("duplicate gift {g1}"));
        assert_eq!(described[4], format!("match donor {existing} by email; create gift"));
        assert_eq!(described[5], format!("refund gift {g1}"));
        assert!(described[6].starts_with("error: refund_of: no gift with reference \"G99\""), "{}", described[6]);
        let Outcome::Refund { refund_id, .. } = decided[5].1 else { panic!("{described:?}") };
        assert_eq!(described[7], format!("duplicate gift {refund_id}"), "the same refund twice is recorded once");
        assert_eq!(
            described[8], "error: amount: must be at most 20.00, what is left of gift \"G1\" after its refunds",
            "£25 less the £5 refunded"
        );
    }

    #[test]
    fn the_write_order_groups_each_donors_rows_in_file_order_after_rows_of_no_donor() {
        let (_, rows) = read(
            "donor id,last name,amount,date,gift ref,refund of\n\
             D1,Smith,25.00,2025-04-06,G1,\n\
             D2,Jones,10.00,2025-04-06,G2,\n\
             D1,Smith,5.00,2025-04-07,,G1\n\
             D2,Jones,oops,2025-04-06,G3,\n\
             D2,Jones,11.00,2025-04-08,G4,\n\
             D1,Smith,25.00,2025-04-06,G1,\n\
             D3,Brown,3.00,2025-04-09,G5,\n\
             D1,Smith,7.00,2025-04-10,G6,\n\
             D3,Brown,1.00,2025-04-11,,OLD\n",
        );
        let mut known = Known::default();
        let (old_donor, old_gift) = (Uuid::now_v7(), Uuid::now_v7());
        known.gifts.add(&KnownGift {
            id: old_gift,
            donor_id: old_donor,
            reference: Some("OLD".into()),
            amount_minor: 500,
            date: d("2024-01-01"),
            refund_of: None,
            status: GiftStatus::Succeeded,
        });
        let decided = decide(rows, &mut known, rules(&[DonorRule::ExternalId]), test_ids());
        let order = write_order(&decided);
        // Positions: 3 is a bad row, 5 a duplicate, 8 a refund of a gift recorded before: no donor of the file.
        assert_eq!(order[..3], [3, 5, 8], "{order:?}");
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..decided.len()).collect::<Vec<_>>(), "every row once");
        // Then each donor's rows together, in file order: D1 (0, its refund 2, 7), D2 (1, 4), D3 (6).
        let rest = &order[3..];
        for group in [&[0, 2, 7][..], &[1, 4], &[6]] {
            let start = rest.iter().position(|&i| i == group[0]).unwrap();
            assert_eq!(&rest[start..start + group.len()], group, "{order:?}");
        }
    }

    #[test]
    fn a_refund_of_a_pending_or_failed_gift_is_a_bad_row_in_the_dry_run() {
        let (_, rows) = read(
            "donor id,last name,amount,date,gift ref,status,refund of\n\
             D1,Smith,25.00,2025-04-06,G1,pending,\n\
             D1,Smith,30.00,2025-04-07,G2,failed,\n\
             D1,Smith,40.00,2025-04-08,G3,succeeded,\n\
             D1,Smith,5,2025-04-10,,,G1\n\
             D1,Smith,5,2025-04-10,,,G2\n\
             D1,Smith,5,2025-04-10,,,G3\n",
        );
        let decided = decide(rows, &mut Known::default(), rules(&[DonorRule::ExternalId]), test_ids());
        let described: Vec<String> = decided.iter().map(|(_, o, _)| o.describe()).collect();
        assert_eq!(described[3], "error: refund_of: gift \"G1\" is pending; only a succeeded gift can be refunded");
        assert_eq!(described[4], "error: refund_of: gift \"G2\" is failed; only a succeeded gift can be refunded");
        assert!(described[5].starts_with("refund gift "), "{}", described[5]);
    }
}
