//! How the errors of the application layer and of the gift intake look to clients: each becomes an [`ApiError`]
//! here, at the edge, and nowhere else. A database failure keeps its own mapping (busy: `503`, a lost race:
//! `409`); an unexpected error is a `500` whose cause chain goes to the log only.

use super::conventions::conflict;
use crate::app::FieldProblem;
use crate::app::imports::ImportError;
use crate::app::links::LinkError;
use crate::app::new_gifts::{NewGiftsError, Refusal};
use crate::app::payments::PaymentError;
use crate::app::pledges::SettleError;
use crate::app::refunds::RecordRefundError;
use crate::domain::RefundError;
use crate::intake::IntakeError;
use almoner_http::{ApiError, ErrorCode, FieldError};

fn invalid(problems: Vec<FieldProblem>) -> ApiError {
    ApiError::validation(problems.into_iter().map(|p| FieldError { field: p.field, message: p.message }).collect())
}

impl From<LinkError> for ApiError {
    fn from(error: LinkError) -> Self {
        match error {
            LinkError::Invalid(problems) => invalid(problems),
            LinkError::Db(e) => e.into(),
            LinkError::Unexpected(e) => ApiError::unexpected(e),
        }
    }
}

impl From<SettleError> for ApiError {
    fn from(error: SettleError) -> Self {
        match error {
            SettleError::Db(e) => e.into(),
            SettleError::Unexpected(e) => ApiError::unexpected(e),
        }
    }
}

/// Too much is the amount's fault (`422` naming `amount_minor`); a gift that takes no refund at all is a `409`.
impl From<RecordRefundError> for ApiError {
    fn from(error: RecordRefundError) -> Self {
        match error {
            RecordRefundError::GiftNotFound => ApiError::not_found("gift"),
            RecordRefundError::Refused(e @ RefundError::TooMuch { .. }) => {
                invalid(vec![FieldProblem::new("amount_minor", e.to_string())])
            }
            RecordRefundError::Refused(e @ (RefundError::NotRefundable(_) | RefundError::IsARefund)) => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            RecordRefundError::Db(e) => e.into(),
            RecordRefundError::Unexpected(e) => ApiError::unexpected(e),
        }
    }
}

/// A refund parked for a staged payment that cannot apply to it makes approving it a conflict.
impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::RefundRefused(reason) => {
                ApiError::new(ErrorCode::Conflict, format!("a refund parked for this payment {reason}"))
            }
            PaymentError::Unmappable(reason) => ApiError::unexpected(anyhow::anyhow!(reason)),
            PaymentError::Db(e) => e.into(),
            PaymentError::Unexpected(e) => ApiError::unexpected(e),
        }
    }
}

/// Header problems are the file's: each is an invalid `csv` field.
impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::InvalidOptions(problems) => invalid(problems),
            ImportError::UnreadableHeaders(problems) => {
                invalid(problems.into_iter().map(|p| FieldProblem::new("csv", p)).collect())
            }
            ImportError::Unexpected(e) => ApiError::unexpected(e),
        }
    }
}

/// A gift refused by the checks every new gift passes answers as `POST /v1/gifts` would refuse it.
impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        IntakeError::from(refusal).into()
    }
}

impl From<NewGiftsError> for ApiError {
    fn from(error: NewGiftsError) -> Self {
        match error {
            NewGiftsError::Db(e) => e.into(),
            NewGiftsError::Unexpected(e) => ApiError::unexpected(e),
        }
    }
}

impl From<IntakeError> for ApiError {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::UnknownDonor => invalid(vec![FieldProblem::new("donor_id", "no such donor")]),
            e @ IntakeError::ReferenceTaken => conflict("external_reference", e.to_string()),
            e @ IntakeError::KeyReused => ApiError::new(ErrorCode::IdempotencyKeyReused, e.to_string()),
            e @ IntakeError::ShuttingDown => ApiError::new(ErrorCode::ServiceUnavailable, e.to_string()),
            IntakeError::InvalidLinks(problems) => invalid(problems),
            IntakeError::Db(e) => e.into(),
            IntakeError::Unexpected(e) => ApiError::unexpected(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use almoner_db::DbError;

    fn fields(error: &ApiError) -> Vec<(&str, &str)> {
        error.errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect()
    }

    #[test]
    fn a_refund_beyond_what_is_left_names_its_amount_and_an_unrefundable_gift_conflicts() {
        let too_much = ApiError::from(RecordRefundError::Refused(RefundError::TooMuch { remaining: 250 }));
        assert_eq!(too_much.problem().status, 422);
        assert_eq!(fields(&too_much), [("amount_minor", "must be at most 250, the amount not yet refunded")]);
        for refused in [RefundError::NotRefundable("pending"), RefundError::IsARefund] {
            let message = refused.to_string();
            let error = ApiError::from(RecordRefundError::Refused(refused));
            assert_eq!((error.code, error.detail.as_str()), (ErrorCode::Conflict, message.as_str()));
            assert!(error.errors.is_empty());
        }
        let gone = ApiError::from(RecordRefundError::GiftNotFound);
        assert_eq!((gone.code, gone.detail.as_str()), (ErrorCode::NotFound, "gift not found"));
    }

    #[test]
    fn database_failures_keep_their_mapping_and_unexpected_ones_hide_their_cause() {
        let busy = ApiError::from(RecordRefundError::Db(DbError::PoolTimeout));
        assert_eq!(busy.problem().status, 503);
        assert!(busy.headers.iter().any(|(name, value)| *name == "retry-after" && value == "1"));
        let raced = ApiError::from(SettleError::Db(DbError::SerializationFailure));
        assert_eq!(raced.code, ErrorCode::Conflict);
        let secret = anyhow::anyhow!("password=hunter2").context("connecting");
        let unexpected = ApiError::from(LinkError::Unexpected(secret));
        assert_eq!(unexpected.problem().status, 500);
        assert!(!serde_json::to_string(&unexpected.problem()).unwrap().contains("hunter2"));
        assert_eq!(unexpected.source.map(|e| format!("{e:#}")).as_deref(), Some("connecting: password=hunter2"));
    }

    #[test]
    fn invalid_links_and_options_name_each_field_in_order() {
        let links = ApiError::from(LinkError::Invalid(vec![
            FieldProblem::new("allocations[0].fund_id", "no such fund"),
            FieldProblem::new("pledge_id", "no such pledge"),
        ]));
        assert_eq!(links.problem().status, 422);
        assert_eq!(fields(&links), [("allocations[0].fund_id", "no such fund"), ("pledge_id", "no such pledge")]);
        let headers = ApiError::from(ImportError::UnreadableHeaders(vec!["a".into(), "b".into()]));
        assert_eq!(fields(&headers), [("csv", "a"), ("csv", "b")]);
        assert_eq!(headers.detail, "2 fields are invalid");
    }

    #[test]
    fn intake_refusals_answer_as_the_gift_route_always_has() {
        let donor = ApiError::from(IntakeError::UnknownDonor);
        assert_eq!((donor.problem().status, fields(&donor)), (422, vec![("donor_id", "no such donor")]));
        let taken = ApiError::from(IntakeError::ReferenceTaken);
        assert_eq!(taken.code, ErrorCode::Conflict);
        assert_eq!(
            fields(&taken),
            [("external_reference", "another gift from this source already has this reference")]
        );
        assert_eq!(ApiError::from(IntakeError::KeyReused).code, ErrorCode::IdempotencyKeyReused);
        assert_eq!(ApiError::from(IntakeError::ShuttingDown).problem().status, 503);
    }
}
