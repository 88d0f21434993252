//! Background work: the projection consumer that keeps the ledger and the totals up to date.

pub mod batch;
pub mod projection;

use almoner_bus::ConsumerSpec;

/// The queue the projection consumes, unqualified.
pub const PROJECTION_QUEUE: &str = "rollup.projection";

/// The projection's queue and bindings: every gift and donor change, and tenant settings.
pub fn projection_spec() -> ConsumerSpec {
    ConsumerSpec::new(PROJECTION_QUEUE, ["fundraising.gift.*.v1", "fundraising.donor.*.v1", "identity.tenant.*.v1"])
}
