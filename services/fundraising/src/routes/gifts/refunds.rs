//! `POST /v1/gifts/{id}/refunds`: the refund's input, and the route around `app::refunds::record_refund`.

use super::GiftView;
use crate::app::refunds::record_refund;
use crate::domain::{Refund, optional_text};
use crate::routes::conventions::{Claim, claim, iso_date, json_body, path_id, remember, replay_response};
use actix_web::{HttpRequest, HttpResponse, post, web};
use almoner_db::Pool;
use almoner_http::{ApiError, FieldErrors, Principal};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    /// Required: minor units going back, more than 0 and at most what is not yet refunded.
    #[schema(required = true, value_type = i64, minimum = 1)]
    pub amount_minor: Option<i64>,
    /// Required: ISO date of the refund.
    #[schema(required = true, value_type = String, format = Date)]
    pub date: Option<String>,
    /// At most 2000 characters once trimmed, no control characters.
    #[schema(max_length = 2000, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundRecorded {
    /// The refund entry: a gift with a negative amount and `refund_of` set.
    pub refund: GiftView,
    /// The refunded gift, `refunded` once its refunds add up to its amount.
    pub gift: GiftView,
}

fn parse_refund(input: RefundInput) -> Result<Refund, ApiError> {
    let mut errors = FieldErrors::new();
    let amount_minor = match errors.required("amount_minor", input.amount_minor) {
        Some(a) if a > 0 => Some(a),
        Some(_) => {
            errors.add("amount_minor", "must be more than 0");
            None
        }
        None => None,
    };
    let date = errors.required("date", input.date).and_then(|d| errors.parse("date", iso_date(&d)));
    let reason = errors.parse("reason", optional_text(input.reason.as_deref(), 2000)).flatten();
    errors.finish()?;
    let (Some(amount_minor), Some(date)) = (amount_minor, date) else {
        return Err(ApiError::unexpected(anyhow::anyhow!("validated refund fields missing")));
    };
    Ok(Refund { amount_minor, date, reason })
}

/// Records a (partial or full) refund of a succeeded gift.
#[utoipa::path(tag = "gifts", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    request_body = RefundInput,
    responses(
        (status = 201, description = "The refund entry and the refunded gift", body = RefundRecorded),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "not refundable (pending, failed, a refund entry) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed; amount_minor beyond what is left to refund",
            body = almoner_http::Problem),
    ))]
#[post("/v1/gifts/{id}/refunds")]
#[tracing::instrument(skip_all, fields(gift_id = %id, refund_id = tracing::field::Empty))]
pub async fn refund_gift(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift")?;
    let refund = parse_refund(json_body(&req, &body)?)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let key = match claim(&tx, &req, &body).await? {
        Claim::Proceed(key) => key,
        Claim::Replay { status, body } => {
            tx.commit().await?;
            return Ok(replay_response(status, body));
        }
    };
    let (entry, gift) = record_refund(&tx, tenant_id, id, &refund, None, None).await?;
    let refund_id = entry.gift.id;
    let recorded = RefundRecorded { refund: GiftView::from(entry), gift: GiftView::from(gift) };
    remember(&tx, &key, 201, &recorded).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/v1/gifts/{refund_id}"))).json(recorded))
}
