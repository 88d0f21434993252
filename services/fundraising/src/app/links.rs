//! What a gift links to besides its donor: the funds of its allocations, the donors of its soft credits and the
//! pledge it pays. Recording a gift (the route and the intake alike) and changing one check them the same way.

use super::{FieldProblem, describe};
use crate::db::{donors, funds, pledges};
use crate::domain::GiftDetails;
use crate::domain::pledge::{PledgeStatus, pledge_status_name};
use almoner_db::{DbError, Transaction};
use almoner_events::fundraising::{Gift, Pledge};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The gift names funds, donors or a pledge it cannot be linked to; each field says why.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldProblem>),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// What the database knows of the funds, soft-credited donors and pledges some gifts name, for
/// [`check_links`]. Gathering it locks the pledges (in id order) until the transaction ends.
#[derive(Debug, Default)]
pub struct Links {
    /// Fund id to whether it is archived.
    funds: HashMap<Uuid, bool>,
    donors: HashSet<Uuid>,
    pledges: HashMap<Uuid, Pledge>,
}

/// Reads (and for pledges, locks) everything these gifts link to, in at most three statements.
pub async fn gather_links(tx: &Transaction, details: &[&GiftDetails]) -> Result<Links, LinkError> {
    let fund_ids: Vec<Uuid> = details.iter().flat_map(|d| d.allocations.iter().map(|a| a.fund_id)).collect();
    let donor_ids: Vec<Uuid> = details.iter().flat_map(|d| d.soft_credits.iter().map(|c| c.donor_id)).collect();
    let pledge_ids: Vec<Uuid> = details.iter().filter_map(|d| d.pledge_id).collect();
    let mut links = Links::default();
    if !fund_ids.is_empty() {
        links.funds.extend(funds::archived_flags(tx, &fund_ids).await?);
    }
    if !donor_ids.is_empty() {
        links.donors.extend(donors::existing(tx, &donor_ids).await?);
    }
    links.pledges.extend(pledges::lock_many(tx, &pledge_ids).await?.into_iter().map(|p| (p.id, p)));
    Ok(links)
}

/// Refuses a gift whose allocations name an unknown or archived fund, whose soft credits name an unknown donor,
/// or whose pledge is unknown, another donor's, in another currency or not open. `current` is the gift before a
/// change: the funds and pledge it already had are kept even when since archived or fulfilled.
pub fn check_links(details: &GiftDetails, current: Option<&Gift>, links: &Links) -> Result<(), LinkError> {
    let mut problems = Vec::new();
    for (i, allocation) in details.allocations.iter().enumerate() {
        let field = format!("allocations[{i}].fund_id");
        let kept = current.is_some_and(|g| g.allocations.iter().any(|a| a.fund_id == allocation.fund_id));
        match links.funds.get(&allocation.fund_id) {
            None => problems.push(FieldProblem::new(field, "no such fund")),
            Some(true) if !kept => {
                problems.push(FieldProblem::new(field, "the fund is archived; it takes no new gifts"))
            }
            Some(_) => {}
        }
    }
    for (i, credit) in details.soft_credits.iter().enumerate() {
        if !links.donors.contains(&credit.donor_id) {
            problems.push(FieldProblem::new(format!("soft_credits[{i}].donor_id"), "no such donor"));
        }
    }
    if let Some(pledge_id) = details.pledge_id {
        let field = "pledge_id";
        let kept = current.is_some_and(|g| g.pledge_id == Some(pledge_id));
        match links.pledges.get(&pledge_id) {
            None => problems.push(FieldProblem::new(field, "no such pledge")),
            Some(p) if p.donor_id != details.donor_id => {
                problems.push(FieldProblem::new(field, "the pledge is another donor's"))
            }
            Some(p) if p.currency != details.currency.code() => problems
                .push(FieldProblem::new(field, format!("the pledge is in {}, not in the gift's currency", p.currency))),
            Some(p) if p.status != PledgeStatus::Open && !kept => problems.push(FieldProblem::new(
                field,
                format!("the pledge is {}; only an open pledge takes gifts", pledge_status_name(p.status)),
            )),
            Some(_) => {}
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(LinkError::Invalid(problems)) }
}
