//! Recording, changing and deleting gifts. A new gift goes through the intake (group commit); a change or a
//! deletion is written here, in one transaction with its events and the pledges it settles.

use super::GiftView;
use super::input::{GiftInput, as_input, parse_gift};
use crate::app::links::{check_links, gather_links};
use crate::app::pledges::settle_pledges;
use crate::db::gifts::{self, StoredGift};
use crate::db::{donors, pledges};
use crate::domain::{GiftDetails, status_after_refunds};
use crate::intake::{GiftIntake, Recorded, Submission};
use crate::routes::conventions::{conflict, emit, json_body, key_and_hash, merge_patch, path_id, replay_response};
use actix_web::{HttpRequest, HttpResponse, delete, patch, post, web};
use almoner_db::{Pool, Transaction};
use almoner_events::fundraising::{GiftDeletedV1, GiftUpsertedV1};
use almoner_http::{ApiError, ErrorCode, Principal};
use uuid::Uuid;

/// The donor must exist in the caller's tenant (another tenant's donor does not, as far as it can tell).
async fn check_donor(tx: &Transaction, donor_id: Uuid) -> Result<(), ApiError> {
    if donors::exists(tx, donor_id).await? {
        Ok(())
    } else {
        Err(ApiError::validation(vec![almoner_http::FieldError {
            field: "donor_id".into(),
            message: "no such donor".into(),
        }]))
    }
}

async fn check_reference(tx: &Transaction, details: &GiftDetails, except: Option<Uuid>) -> Result<(), ApiError> {
    if let Some(reference) = &details.external_reference
        && gifts::reference_taken(tx, details.source.as_str(), reference, except).await?
    {
        return Err(conflict("external_reference", "another gift from this source already has this reference"));
    }
    Ok(())
}

async fn emit_upserted(tx: &Transaction, tenant_id: Uuid, stored: &StoredGift) -> Result<(), ApiError> {
    emit(tx, tenant_id, GiftUpsertedV1 { gift: stored.gift.clone() }).await
}

/// Records a gift at revision 1.
#[utoipa::path(tag = "gifts", security(("bearer" = ["fundraising:write"])),
    request_body = GiftInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe for 24 hours")),
    responses(
        (status = 201, description = "The new gift", body = GiftView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 409, description = "conflict (external_reference taken) or idempotency_key_reused",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (an unknown donor names donor_id)",
            body = almoner_http::Problem),
    ))]
#[post("/v1/gifts")]
#[tracing::instrument(skip_all, fields(gift_id = tracing::field::Empty))]
pub async fn create_gift(
    req: HttpRequest,
    principal: Principal,
    intake: web::Data<GiftIntake>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let details = parse_gift(json_body(&req, &body)?, None)?;
    let submission = Submission {
        tenant_id: principal.tenant_id.as_uuid(),
        details,
        idempotency: key_and_hash(&req, &body)?,
        // Written with the event by a writer task: the request's trace must travel with it explicitly.
        traceparent: almoner_bus::propagation::current_trace_context().0,
    };
    match intake.submit(submission).await? {
        Recorded::Created(view) => {
            tracing::Span::current().record("gift_id", tracing::field::display(view.id));
            Ok(HttpResponse::Created().insert_header(("location", format!("/v1/gifts/{}", view.id))).json(view))
        }
        Recorded::Replay { status, body } => Ok(replay_response(status, body)),
    }
}

/// Changes some of a gift's fields (JSON merge patch): absent members stay, `null` clears. A refund entry cannot be
/// changed (delete it and record it again), nor can a refunded gift's donor, amount or currency.
#[utoipa::path(tag = "gifts", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body(content = super::input::GiftPatch, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "The gift after the change", body = GiftView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "a refund entry, a refunded gift's amount, or a taken external_reference",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field", body = almoner_http::Problem)))]
#[patch("/v1/gifts/{id}")]
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn update_gift(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = gifts::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    if current.gift.refund_of.is_some() {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a refund entry cannot be changed; delete it and record it again",
        ));
    }
    let status = Some(current.gift.status);
    let details = parse_gift(merge_patch(&req, &body, &as_input(&current))?, status)?;
    let before = parse_gift(as_input(&current), status).ok();
    if before == Some(details.clone().normalised()) {
        tx.commit().await?;
        return Ok(HttpResponse::Ok().json(GiftView::from(current)));
    }
    let g = &current.gift;
    // Refunds net off money that was received: once a gift has them, what it records must not change under them.
    // Its refund entries carry their shares of its allocations, soft credits and pledge, so those stay too.
    let normalised = details.clone().normalised();
    let money_changed = details.donor_id != g.donor_id
        || details.amount_minor != g.amount_minor
        || details.currency.code() != g.currency
        || details.status != g.status
        || normalised.allocations != g.allocations
        || normalised.soft_credits != g.soft_credits
        || details.pledge_id != g.pledge_id;
    if money_changed && gifts::refunded_total(&tx, id).await? > 0 {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "a gift with refunds keeps its donor, amount, currency, status, allocations, soft credits and pledge; \
             delete the refunds first",
        ));
    }
    if details.donor_id != g.donor_id {
        check_donor(&tx, details.donor_id).await?;
    }
    // Both pledges at once, in id order: the one it paid and the one it pays now.
    let touched: Vec<Uuid> = g.pledge_id.into_iter().chain(details.pledge_id).collect();
    let mut ordered = touched.clone();
    ordered.sort_unstable();
    ordered.dedup();
    pledges::lock_many(&tx, &ordered).await?;
    check_links(&details, Some(g), &gather_links(&tx, &[&details]).await?)?;
    check_reference(&tx, &details, Some(id)).await?;
    let stored = gifts::update(&tx, id, &details, details.amount_minor).await?;
    emit_upserted(&tx, tenant_id, &stored).await?;
    settle_pledges(&tx, tenant_id, &touched, None).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(GiftView::from(stored)))
}

/// Deletes a gift entered in error, or a refund entry (its gift's status follows). A gift with refunds cannot be
/// deleted until they are.
#[utoipa::path(tag = "gifts", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem),
        (status = 409, description = "The gift has refunds", body = almoner_http::Problem)))]
#[delete("/v1/gifts/{id}")]
#[tracing::instrument(skip_all, fields(gift_id = %id))]
pub async fn delete_gift(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "gift")?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let current = gifts::lock(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    // Lock the refunded gift before changing its refunds, in the same order as recording a refund does.
    let original = match current.gift.refund_of {
        Some(original) => gifts::lock(&tx, original).await?,
        None => None,
    };
    if current.gift.refund_of.is_none() && gifts::refunded_total(&tx, id).await? != 0 {
        return Err(ApiError::new(ErrorCode::Conflict, "the gift has refunds; delete them first"));
    }
    let (deleted, deleted_at) = gifts::delete(&tx, id).await?.ok_or_else(|| ApiError::not_found("gift"))?;
    emit(
        &tx,
        tenant_id,
        GiftDeletedV1 {
            gift_id: id,
            donor_id: deleted.gift.donor_id,
            tenant_id,
            revision: deleted.gift.revision,
            deleted_at,
        },
    )
    .await?;
    if let Some(original) = original {
        let refunded = gifts::refunded_total(&tx, original.gift.id).await?;
        let status = status_after_refunds(original.gift.status, original.gift.amount_minor, refunded);
        if status != original.gift.status {
            let stored = gifts::set_status(&tx, original.gift.id, status).await?;
            emit_upserted(&tx, tenant_id, &stored).await?;
        }
    }
    // What the deleted gift (or refund entry) paid towards its pledge is gone.
    if let Some(pledge_id) = deleted.gift.pledge_id {
        settle_pledges(&tx, tenant_id, &[pledge_id], None).await?;
    }
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}
