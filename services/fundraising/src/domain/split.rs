//! How a gift is split: its allocations to funds, the donors soft-credited with it, and what a refund takes back
//! of each.
//!
//! Allocations add up to the gift's amount exactly. A refund entry carries its (negative) share of each allocation
//! and each soft credit; the shares are worked out from what the gift's live refunds have already taken, so that
//! however a gift is refunded (in one go or in parts, with refund entries deleted in between) its refunds net
//! every part exactly, and a full refund nets each part to zero.

use almoner_events::fundraising::{FundAllocation, SoftCredit, SoftCreditKind};
use std::collections::HashSet;
use uuid::Uuid;

/// A problem with one member of the split: the field path (`allocations[1].fund_id`) and what is wrong.
pub type SplitError = (String, String);

pub fn soft_credit_kind_name(kind: SoftCreditKind) -> &'static str {
    match kind {
        SoftCreditKind::Matched => "matched",
        SoftCreditKind::InMemory => "in_memory",
        SoftCreditKind::InHonour => "in_honour",
        SoftCreditKind::Solicitor => "solicitor",
    }
}

pub fn parse_soft_credit_kind(input: &str) -> Result<SoftCreditKind, &'static str> {
    match input.trim() {
        "matched" => Ok(SoftCreditKind::Matched),
        "in_memory" => Ok(SoftCreditKind::InMemory),
        "in_honour" => Ok(SoftCreditKind::InHonour),
        "solicitor" => Ok(SoftCreditKind::Solicitor),
        _ => Err("must be one of matched, in_memory, in_honour, solicitor"),
    }
}

/// One allocation as sent: both members are required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocationRequest {
    pub fund_id: Option<Uuid>,
    pub amount_minor: Option<i64>,
}

/// Parses a gift's allocations, in the order sent. Each fund appears once with more than 0, and the parts add up
/// to `gift_amount` exactly (checked only when the gift's amount is itself valid). An empty list is unallocated.
pub fn parse_allocations(
    gift_amount: Option<i64>,
    parts: &[AllocationRequest],
) -> Result<Vec<FundAllocation>, Vec<SplitError>> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let fund_id = match part.fund_id {
            None => {
                errors.push((format!("allocations[{i}].fund_id"), "is required".to_owned()));
                None
            }
            Some(id) if !seen.insert(id) => {
                errors.push((format!("allocations[{i}].fund_id"), "appears more than once".to_owned()));
                None
            }
            Some(id) => Some(id),
        };
        let amount_minor = match part.amount_minor {
            None => {
                errors.push((format!("allocations[{i}].amount_minor"), "is required".to_owned()));
                None
            }
            Some(a) if a <= 0 => {
                errors.push((format!("allocations[{i}].amount_minor"), "must be more than 0".to_owned()));
                None
            }
            Some(a) => Some(a),
        };
        if let (Some(fund_id), Some(amount_minor)) = (fund_id, amount_minor) {
            parsed.push(FundAllocation { fund_id, amount_minor });
        }
    }
    if errors.is_empty()
        && let Some(gift_amount) = gift_amount
        && !parsed.is_empty()
    {
        let sum = parsed.iter().fold(0i64, |sum, p| sum.saturating_add(p.amount_minor));
        if sum != gift_amount {
            errors.push((
                "allocations".to_owned(),
                format!(
                    "must add up to the gift's amount_minor ({gift_amount}); they add up to {sum} \
                     (changing the amount of an allocated gift needs new allocations)"
                ),
            ));
        }
    }
    if errors.is_empty() { Ok(parsed) } else { Err(errors) }
}

/// One soft credit as sent: every member is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftCreditRequest {
    pub donor_id: Option<Uuid>,
    pub amount_minor: Option<i64>,
    pub kind: Option<String>,
}

/// Parses a gift's soft credits, in the order sent: each donor once, not the paying donor, more than 0 and at
/// most the gift's amount.
pub fn parse_soft_credits(
    gift_amount: Option<i64>,
    paying_donor: Option<Uuid>,
    credits: &[SoftCreditRequest],
) -> Result<Vec<SoftCredit>, Vec<SplitError>> {
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut parsed = Vec::with_capacity(credits.len());
    for (i, credit) in credits.iter().enumerate() {
        let field = |member: &str| format!("soft_credits[{i}].{member}");
        let donor_id = match credit.donor_id {
            None => {
                errors.push((field("donor_id"), "is required".to_owned()));
                None
            }
            Some(id) if Some(id) == paying_donor => {
                errors
                    .push((field("donor_id"), "is the donor who paid the gift; soft credits go to others".to_owned()));
                None
            }
            Some(id) if !seen.insert(id) => {
                errors.push((field("donor_id"), "appears more than once".to_owned()));
                None
            }
            Some(id) => Some(id),
        };
        let amount_minor = match credit.amount_minor {
            None => {
                errors.push((field("amount_minor"), "is required".to_owned()));
                None
            }
            Some(a) if a <= 0 => {
                errors.push((field("amount_minor"), "must be more than 0".to_owned()));
                None
            }
            Some(a) if gift_amount.is_some_and(|g| a > g) => {
                let g = gift_amount.unwrap_or_default();
                errors.push((field("amount_minor"), format!("must be at most the gift's amount_minor ({g})")));
                None
            }
            Some(a) => Some(a),
        };
        let kind = match credit.kind.as_deref() {
            None => {
                errors.push((field("kind"), "is required".to_owned()));
                None
            }
            Some(k) => match parse_soft_credit_kind(k) {
                Ok(kind) => Some(kind),
                Err(e) => {
                    errors.push((field("kind"), e.to_owned()));
                    None
                }
            },
        };
        if let (Some(donor_id), Some(amount_minor), Some(kind)) = (donor_id, amount_minor, kind) {
            parsed.push(SoftCredit { donor_id, amount_minor, kind });
        }
    }
    if errors.is_empty() { Ok(parsed) } else { Err(errors) }
}

/// A part of a gift (an allocation or a soft credit) as far as refunds are concerned: its whole amount and what
/// the gift's live refund entries have already taken back of it, both positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundablePart {
    pub whole: i64,
    pub taken: i64,
}

/// What a refund of `refund` (positive) takes back from each allocation, positive, in the parts' order.
///
/// The refund is apportioned by largest remainder over what each allocation has left (`whole - taken`): the
/// shares add up to `refund` exactly, none exceeds what its allocation has left, and none is negative. A refund
/// of everything that is left takes exactly what is left, so the refunds of a gift net each allocation to zero.
///
/// Apportioning the *cumulative* refunded amount by largest remainder and taking the difference would not do:
/// largest remainder is not monotone in the amount apportioned (the Alabama paradox), so a refund could then give
/// a fund money back. Parts `[6, 6, 2]` of 14 apportion 10 as `[4, 4, 2]` and 11 as `[5, 5, 1]`.
pub fn allocation_refund(parts: &[RefundablePart], refund: i64) -> Vec<i64> {
    let left: Vec<i128> = parts.iter().map(|p| i128::from((p.whole - p.taken).max(0))).collect();
    let total: i128 = left.iter().sum();
    let refund = i128::from(refund.max(0));
    if total == 0 {
        return vec![0; parts.len()];
    }
    if refund >= total {
        return left.iter().map(|l| i64::try_from(*l).unwrap_or(i64::MAX)).collect();
    }
    let mut shares: Vec<i128> = left.iter().map(|l| refund * l / total).collect();
    let remainders: Vec<i128> = left.iter().map(|l| refund * l % total).collect();
    let mut leftover = refund - shares.iter().sum::<i128>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    // Largest remainder first; ties go to the larger part, then to the earlier one, so the result is stable.
    order.sort_by(|a, b| remainders[*b].cmp(&remainders[*a]).then(left[*b].cmp(&left[*a])).then(a.cmp(b)));
    for i in order {
        if leftover == 0 {
            break;
        }
        if remainders[i] > 0 {
            shares[i] += 1;
            leftover -= 1;
        }
    }
    shares.into_iter().map(|s| i64::try_from(s).unwrap_or(i64::MAX)).collect()
}

/// What a refund takes back from each soft credit, positive, in the credits' order. Each credit is apportioned on
/// its own: once `refunded_after` (positive, the gift's refunds including this one) of `gift_amount` has gone
/// back, a credit should have lost `whole * refunded_after / gift_amount`, rounded toward zero; the refund takes
/// the difference from what was taken before, never less than 0 nor more than what is left. A full refund takes
/// everything that is left, so each soft credit nets to exactly zero.
pub fn soft_credit_refund(parts: &[RefundablePart], gift_amount: i64, refunded_after: i64) -> Vec<i64> {
    parts
        .iter()
        .map(|p| {
            let left = (p.whole - p.taken).max(0);
            if gift_amount <= 0 || refunded_after >= gift_amount {
                return left;
            }
            let due = i128::from(p.whole) * i128::from(refunded_after.max(0)) / i128::from(gift_amount);
            let due = i64::try_from(due).unwrap_or(i64::MAX);
            (due - p.taken).clamp(0, left)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn part(whole: i64) -> RefundablePart {
        RefundablePart { whole, taken: 0 }
    }

    #[test]
    fn allocations_name_each_bad_member() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let ok = parse_allocations(
            Some(1000),
            &[
                AllocationRequest { fund_id: Some(a), amount_minor: Some(600) },
                AllocationRequest { fund_id: Some(b), amount_minor: Some(400) },
            ],
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        let errors = parse_allocations(
            Some(1000),
            &[
                AllocationRequest { fund_id: Some(a), amount_minor: Some(0) },
                AllocationRequest { fund_id: Some(a), amount_minor: Some(400) },
                AllocationRequest { fund_id: None, amount_minor: None },
            ],
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "allocations[0].amount_minor",
                "allocations[1].fund_id",
                "allocations[2].fund_id",
                "allocations[2].amount_minor"
            ]
        );
        let errors = parse_allocations(Some(1000), &[AllocationRequest { fund_id: Some(a), amount_minor: Some(999) }])
            .unwrap_err();
        assert_eq!(errors[0].0, "allocations");
        assert!(parse_allocations(Some(1000), &[]).unwrap().is_empty());
    }

    #[test]
    fn soft_credits_go_to_others_once_within_the_amount() {
        let (payer, other) = (Uuid::now_v7(), Uuid::now_v7());
        let credit = |donor_id, amount_minor, kind: &str| SoftCreditRequest {
            donor_id: Some(donor_id),
            amount_minor: Some(amount_minor),
            kind: Some(kind.to_owned()),
        };
        assert_eq!(
            parse_soft_credits(Some(100), Some(payer), &[credit(other, 100, "matched")]).unwrap()[0].kind,
            SoftCreditKind::Matched
        );
        let errors = parse_soft_credits(
            Some(100),
            Some(payer),
            &[credit(payer, 10, "matched"), credit(other, 101, "in_memory"), credit(other, 5, "gift")],
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "soft_credits[0].donor_id",
                "soft_credits[1].amount_minor",
                "soft_credits[2].donor_id",
                "soft_credits[2].kind"
            ]
        );
    }

    #[test]
    fn a_refund_never_gives_a_fund_money_back() {
        // Cumulative largest remainder would move the third fund from 2 to 1 here.
        let parts = [part(6), part(6), part(2)];
        let first = allocation_refund(&parts, 10);
        assert_eq!(first.iter().sum::<i64>(), 10);
        let taken: Vec<_> =
            parts.iter().zip(&first).map(|(p, s)| RefundablePart { whole: p.whole, taken: *s }).collect();
        let second = allocation_refund(&taken, 1);
        assert_eq!(second.iter().sum::<i64>(), 1);
        assert!(second.iter().all(|s| *s >= 0));
        let rest: Vec<_> =
            taken.iter().zip(&second).map(|(p, s)| RefundablePart { whole: p.whole, taken: p.taken + s }).collect();
        let last = allocation_refund(&rest, 3);
        let netted: Vec<_> = rest.iter().zip(&last).map(|(p, s)| p.taken + s).collect();
        assert_eq!(netted, [6, 6, 2]);
    }

    #[test]
    fn largest_remainder_splits_a_partial_refund() {
        assert_eq!(allocation_refund(&[part(500), part(500)], 1), vec![1, 0]);
        assert_eq!(allocation_refund(&[part(700), part(300)], 100), vec![70, 30]);
        assert_eq!(allocation_refund(&[part(1), part(1), part(1)], 2), vec![1, 1, 0]);
        assert_eq!(soft_credit_refund(&[part(1000), part(333)], 1000, 500), vec![500, 166]);
        assert_eq!(soft_credit_refund(&[RefundablePart { whole: 333, taken: 166 }], 1000, 1000), vec![167]);
    }

    /// A gift's parts adding up to `amount`, and a sequence of refunds, the last of them what is left.
    fn history() -> impl Strategy<Value = (Vec<i64>, Vec<i64>, Vec<i64>)> {
        (proptest::collection::vec(1i64..100_000, 1..6), proptest::collection::vec(1i64..200_000, 0..6))
            .prop_flat_map(|(parts, credits)| {
                let amount: i64 = parts.iter().sum();
                let credits: Vec<i64> = credits.into_iter().map(|c| c.min(amount)).collect();
                (Just(parts), Just(credits), proptest::collection::vec(1i64..=amount, 1..8))
            })
            .prop_map(|(parts, credits, mut refunds)| {
                let amount: i64 = parts.iter().sum();
                let mut left = amount;
                refunds.retain_mut(|r| {
                    *r = (*r).min(left);
                    left -= *r;
                    *r > 0
                });
                if left > 0 {
                    refunds.push(left);
                }
                (parts, credits, refunds)
            })
    }

    proptest! {
        #[test]
        fn refunds_net_every_part_exactly((parts, credits, refunds) in history()) {
            let amount: i64 = parts.iter().sum();
            let mut allocations: Vec<RefundablePart> = parts.iter().map(|p| part(*p)).collect();
            let mut soft: Vec<RefundablePart> = credits.iter().map(|c| part(*c)).collect();
            let mut refunded = 0;
            for refund in refunds {
                refunded += refund;
                let shares = allocation_refund(&allocations, refund);
                prop_assert_eq!(shares.iter().sum::<i64>(), refund, "the parts add up to the refund");
                for (p, s) in allocations.iter_mut().zip(&shares) {
                    prop_assert!(*s >= 0 && p.taken + s <= p.whole, "no part changes sign");
                    p.taken += s;
                }
                let shares = soft_credit_refund(&soft, amount, refunded);
                for (p, s) in soft.iter_mut().zip(&shares) {
                    prop_assert!(*s >= 0 && p.taken + s <= p.whole, "no soft credit changes sign");
                    // Rounded toward zero, cumulatively.
                    prop_assert_eq!(p.taken + s, if refunded == amount { p.whole } else {
                        i64::try_from(i128::from(p.whole) * i128::from(refunded) / i128::from(amount)).unwrap()
                    });
                    p.taken += s;
                }
            }
            prop_assert_eq!(refunded, amount);
            prop_assert!(allocations.iter().all(|p| p.taken == p.whole), "a full refund nets each fund to zero");
            prop_assert!(soft.iter().all(|p| p.taken == p.whole), "a full refund nets each soft credit to zero");
        }
    }
}
