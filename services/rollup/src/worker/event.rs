//! The events the projection understands, decoded from their envelopes into ledger records and checked against
//! their contracts and their envelope's tenant.
//!
//! A module of its own so that the change set (`worker::changes`) and the projection can both take a
//! [`ProjectionEvent`] while the projection uses the change set: the dependencies go one way.

use crate::db::ledger;
use crate::domain::FiscalYearStart;
use crate::domain::giving::check_parts;
use almoner_events::fundraising::{
    Donor, DonorDeletedV1, DonorUpsertedV1, DonorsUpsertedV1, FundUpsertedV1, Gift, GiftDeletedV1, GiftUpsertedV1,
    GiftsUpsertedV1, HouseholdUpsertedV1, PledgeUpsertedV1, RecurringUpsertedV1,
};
use almoner_events::identity::{TenantCreatedV1, TenantUpdatedV1};
use almoner_events::{Envelope, Event};
use uuid::Uuid;

/// An event the projection understands, decoded.
#[derive(Debug, Clone)]
pub enum ProjectionEvent {
    GiftUpserted(ledger::GiftRecord),
    GiftDeleted {
        gift_id: Uuid,
        donor_id: Uuid,
        revision: i64,
    },
    DonorUpserted(ledger::DonorRecord),
    DonorDeleted {
        donor_id: Uuid,
        revision: i64,
    },
    HouseholdUpserted(ledger::HouseholdRecord),
    FundUpserted(ledger::FundRecord),
    PledgeUpserted(ledger::PledgeRecord),
    RecurringUpserted(ledger::RecurringRecord),
    TenantUpdated {
        revision: i64,
        fiscal_year_start: FiscalYearStart,
    },
    /// Understood, and nothing to do (a tenant's creation carries no setting rollup uses).
    Nothing,
    /// Many gifts or donors written together (an import's chunk): the same as one upsert per entity.
    GiftsUpserted(Vec<ledger::GiftRecord>),
    DonorsUpserted(Vec<ledger::DonorRecord>),
}

impl ProjectionEvent {
    /// Whether applying it can change a stored aggregate, so it needs the tenant's lock (shared) first.
    pub fn touches_totals(&self) -> bool {
        matches!(
            self,
            Self::GiftUpserted(_)
                | Self::GiftDeleted { .. }
                | Self::DonorUpserted(_)
                | Self::DonorDeleted { .. }
                | Self::GiftsUpserted(_)
                | Self::DonorsUpserted(_)
        )
    }

    /// How many gifts and donors it carries, for [`ledger::Locking::for_entities`].
    pub fn entities(&self) -> usize {
        match self {
            Self::GiftsUpserted(gifts) => gifts.len(),
            Self::DonorsUpserted(donors) => donors.len(),
            _ => 1,
        }
    }
}

/// Why an event can never be applied.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unprocessable(pub String);

/// Refuses a payload naming another tenant than its envelope.
fn same_tenant(envelope: &Envelope, payload_tenant: Uuid) -> Result<(), Unprocessable> {
    if payload_tenant == envelope.tenant_id {
        Ok(())
    } else {
        Err(Unprocessable(format!(
            "payload tenant {payload_tenant} differs from the envelope's {}",
            envelope.tenant_id
        )))
    }
}

fn iso_currency(currency: &str) -> Result<(), Unprocessable> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(Unprocessable(format!("currency {currency:?} is not an ISO 4217 code")))
    }
}

/// One gift of an event (of a single-gift event now; of a many-gift one too, later), checked against its
/// envelope and the contract.
pub fn gift_record(envelope: &Envelope, gift: Gift) -> Result<ledger::GiftRecord, Unprocessable> {
    same_tenant(envelope, gift.tenant_id)?;
    iso_currency(&gift.currency)?;
    let allocations: Vec<i64> = gift.allocations.iter().map(|a| a.amount_minor).collect();
    let soft_credits: Vec<i64> = gift.soft_credits.iter().map(|s| s.amount_minor).collect();
    check_parts(gift.amount_minor, &allocations, &soft_credits)
        .map_err(|e| Unprocessable(format!("gift {}: {e}", gift.id)))?;
    Ok(ledger::GiftRecord {
        gift_id: gift.id,
        donor_id: gift.donor_id,
        revision: gift.revision,
        amount_minor: gift.amount_minor,
        currency: gift.currency,
        gift_date: gift.gift_date,
        status: gift.status.into(),
        refund_of: gift.refund_of,
        pledge_id: gift.pledge_id,
        source: gift.source,
        payment_method: gift.payment_method,
        allocations: gift
            .allocations
            .into_iter()
            .map(|a| ledger::Allocation { fund_id: a.fund_id, amount_minor: a.amount_minor })
            .collect(),
        soft_credits: gift
            .soft_credits
            .into_iter()
            .map(|s| ledger::SoftCreditPart { donor_id: s.donor_id, amount_minor: s.amount_minor, kind: s.kind.into() })
            .collect(),
    })
}

/// One donor of an event, checked against its envelope.
pub fn donor_record(envelope: &Envelope, donor: Donor) -> Result<ledger::DonorRecord, Unprocessable> {
    same_tenant(envelope, donor.tenant_id)?;
    let display_name = match &donor.first_name {
        Some(first) if !first.trim().is_empty() => format!("{} {}", first.trim(), donor.last_name.trim()),
        _ => donor.last_name.trim().to_owned(),
    };
    Ok(ledger::DonorRecord {
        donor_id: donor.id,
        revision: donor.revision,
        display_name,
        household_id: donor.household_id,
    })
}

/// Decodes an envelope by its type, refusing unknown types, payloads that do not match their contract and
/// payloads naming another tenant than the envelope.
pub fn decode(envelope: &Envelope) -> Result<ProjectionEvent, Unprocessable> {
    let bad = |e: almoner_events::DecodeError| Unprocessable(e.to_string());
    match envelope.event_type.as_str() {
        GiftUpsertedV1::TYPE => {
            let gift = envelope.decode::<GiftUpsertedV1>().map_err(bad)?.gift;
            Ok(ProjectionEvent::GiftUpserted(gift_record(envelope, gift)?))
        }
        // One entity that cannot be applied makes the whole event unprocessable: the producer wrote them together.
        GiftsUpsertedV1::TYPE => {
            let gifts = envelope.decode::<GiftsUpsertedV1>().map_err(bad)?.gifts;
            Ok(ProjectionEvent::GiftsUpserted(
                gifts.into_iter().map(|gift| gift_record(envelope, gift)).collect::<Result<_, _>>()?,
            ))
        }
        DonorsUpsertedV1::TYPE => {
            let donors = envelope.decode::<DonorsUpsertedV1>().map_err(bad)?.donors;
            Ok(ProjectionEvent::DonorsUpserted(
                donors.into_iter().map(|donor| donor_record(envelope, donor)).collect::<Result<_, _>>()?,
            ))
        }
        GiftDeletedV1::TYPE => {
            let deleted = envelope.decode::<GiftDeletedV1>().map_err(bad)?;
            same_tenant(envelope, deleted.tenant_id)?;
            Ok(ProjectionEvent::GiftDeleted {
                gift_id: deleted.gift_id,
                donor_id: deleted.donor_id,
                revision: deleted.revision,
            })
        }
        DonorUpsertedV1::TYPE => {
            let donor = envelope.decode::<DonorUpsertedV1>().map_err(bad)?.donor;
            Ok(ProjectionEvent::DonorUpserted(donor_record(envelope, donor)?))
        }
        DonorDeletedV1::TYPE => {
            let deleted = envelope.decode::<DonorDeletedV1>().map_err(bad)?;
            same_tenant(envelope, deleted.tenant_id)?;
            Ok(ProjectionEvent::DonorDeleted { donor_id: deleted.donor_id, revision: deleted.revision })
        }
        HouseholdUpsertedV1::TYPE => {
            let household = envelope.decode::<HouseholdUpsertedV1>().map_err(bad)?.household;
            same_tenant(envelope, household.tenant_id)?;
            Ok(ProjectionEvent::HouseholdUpserted(ledger::HouseholdRecord {
                household_id: household.id,
                revision: household.revision,
                name: household.name,
            }))
        }
        FundUpsertedV1::TYPE => {
            let fund = envelope.decode::<FundUpsertedV1>().map_err(bad)?.fund;
            same_tenant(envelope, fund.tenant_id)?;
            Ok(ProjectionEvent::FundUpserted(ledger::FundRecord {
                fund_id: fund.id,
                revision: fund.revision,
                code: fund.code,
                name: fund.name,
                restricted: fund.restricted,
                archived: fund.archived,
            }))
        }
        PledgeUpsertedV1::TYPE => {
            let pledge = envelope.decode::<PledgeUpsertedV1>().map_err(bad)?.pledge;
            same_tenant(envelope, pledge.tenant_id)?;
            iso_currency(&pledge.currency)?;
            Ok(ProjectionEvent::PledgeUpserted(ledger::PledgeRecord {
                pledge_id: pledge.id,
                donor_id: pledge.donor_id,
                revision: pledge.revision,
                amount_minor: pledge.amount_minor,
                currency: pledge.currency,
                frequency: pledge.frequency.into(),
                instalments: pledge.instalments,
                start_date: pledge.start_date,
                status: pledge.status.into(),
                fund_id: pledge.fund_id,
            }))
        }
        RecurringUpsertedV1::TYPE => {
            let agreement = envelope.decode::<RecurringUpsertedV1>().map_err(bad)?.agreement;
            same_tenant(envelope, agreement.tenant_id)?;
            iso_currency(&agreement.currency)?;
            Ok(ProjectionEvent::RecurringUpserted(ledger::RecurringRecord {
                agreement_id: agreement.id,
                donor_id: agreement.donor_id,
                revision: agreement.revision,
                amount_minor: agreement.amount_minor,
                currency: agreement.currency,
                interval: agreement.interval.into(),
                status: agreement.status.into(),
                next_expected_date: agreement.next_expected_date,
                last_paid_date: agreement.last_paid_date,
                provider: agreement.provider,
                provider_reference: agreement.provider_reference,
            }))
        }
        TenantUpdatedV1::TYPE => {
            let updated = envelope.decode::<TenantUpdatedV1>().map_err(bad)?;
            same_tenant(envelope, updated.tenant_id)?;
            let fiscal_year_start = FiscalYearStart::new(updated.fiscal_year_start_month).ok_or_else(|| {
                Unprocessable(format!("fiscal_year_start_month {} is not 1 to 12", updated.fiscal_year_start_month))
            })?;
            Ok(ProjectionEvent::TenantUpdated { revision: updated.revision, fiscal_year_start })
        }
        TenantCreatedV1::TYPE => {
            let created = envelope.decode::<TenantCreatedV1>().map_err(bad)?;
            same_tenant(envelope, created.tenant_id)?;
            Ok(ProjectionEvent::Nothing)
        }
        other => Err(Unprocessable(format!("rollup does not handle events of type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use almoner_events::fundraising::{FundAllocation, GiftStatus, SoftCredit, SoftCreditKind};
    use chrono::{NaiveDate, Utc};

    fn gift_envelope(amount_minor: i64, allocations: &[i64], soft_credits: &[i64]) -> Envelope {
        let tenant = Uuid::new_v4();
        let gift = Gift {
            id: Uuid::new_v4(),
            tenant_id: tenant,
            donor_id: Uuid::new_v4(),
            revision: 1,
            amount_minor,
            currency: "GBP".into(),
            gift_date: NaiveDate::from_ymd_opt(2025, 5, 1).unwrap(),
            status: GiftStatus::Succeeded,
            payment_method: None,
            source: "manual".into(),
            fund: None,
            campaign: None,
            external_reference: None,
            refund_of: None,
            allocations: allocations
                .iter()
                .map(|a| FundAllocation { fund_id: Uuid::new_v4(), amount_minor: *a })
                .collect(),
            soft_credits: soft_credits
                .iter()
                .map(|s| SoftCredit { donor_id: Uuid::new_v4(), amount_minor: *s, kind: SoftCreditKind::Matched })
                .collect(),
            pledge_id: Some(Uuid::new_v4()),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        serde_json::from_value(
            serde_json::to_value(Envelope::new(tenant, "fundraising", GiftUpsertedV1 { gift })).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_gift_carries_its_parts_and_pledge_into_the_ledger_record() {
        let Ok(ProjectionEvent::GiftUpserted(gift)) = decode(&gift_envelope(1000, &[600, 400], &[1000])) else {
            panic!("decodes");
        };
        assert_eq!(gift.allocations.iter().map(|a| a.amount_minor).collect::<Vec<_>>(), [600, 400]);
        assert_eq!(gift.soft_credits.len(), 1);
        assert!(gift.pledge_id.is_some());
    }

    #[test]
    fn parts_that_do_not_fit_the_amount_can_never_be_applied() {
        assert!(decode(&gift_envelope(1000, &[600], &[])).is_err());
        assert!(decode(&gift_envelope(1000, &[], &[1500])).is_err());
        assert!(decode(&gift_envelope(-500, &[-500], &[300])).is_err());
    }
}
