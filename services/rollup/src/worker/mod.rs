//! Background work: the projection consumer that keeps the ledger and the totals up to date.

pub mod batch;
pub mod changes;
pub mod event;
pub mod projection;

use almoner_bus::ConsumerSpec;

/// The queue the projection consumes, unqualified.
pub const PROJECTION_QUEUE: &str = "rollup.projection";

/// The projection's queue and bindings: every gift, donor, household, fund, pledge and recurring agreement change, and tenant settings.
pub fn projection_spec() -> ConsumerSpec {
    ConsumerSpec::new(
        PROJECTION_QUEUE,
        [
            "fundraising.gift.*.v1",
            "fundraising.donor.*.v1",
            "fundraising.household.*.v1",
            "fundraising.fund.*.v1",
            "fundraising.pledge.*.v1",
            "fundraising.recurring.upserted.v1",
            "identity.tenant.*.v1",
        ],
    )
}
