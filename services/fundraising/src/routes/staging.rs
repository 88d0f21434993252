//! `/v1/staging`: provider payments whose donor the consumer could not be sure of (several donors share the
//! email, there is no email, or no last name to create a donor with), for a person to approve with a donor or
//! reject. Approving records the gift exactly as the consumer would have (`app::payments::record_gift`): the
//! same row, the same events, the customer id linked, any parked refund applied.

use super::conventions::{json_body, path_id};
use crate::app::payments::{GiftExtras, create_donor, record_gift_with};
use crate::app::recurring::link_gift;
use crate::db::donors;
use crate::db::payments::{self as db, CandidateDonor, StagedPayment};
use crate::domain::{optional_text, required_text};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use almoner_db::{Pool, Transaction};
use almoner_http::endpoints::ServiceConfig;
use almoner_http::{ApiError, ErrorCode, FieldErrors, Page, PageQuery, Paging, Principal};
use almoner_types::Email;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_staging).service(get_staging).service(approve_staging).service(reject_staging);
}

/// The gift a staged payment becomes once approved.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposedGiftView {
    pub amount_minor: i64,
    pub currency: String,
    pub gift_date: NaiveDate,
    pub payment_method: Option<String>,
    /// The provider: `stripe`, `paypal`, `gocardless` or `justgiving`.
    pub source: String,
    /// The provider's payment id (Stripe's payment intent).
    pub external_reference: String,
    /// The provider's subscription the payment is of: approving links the gift to its recurring agreement.
    pub recurring_reference: Option<String>,
    /// The gift's fund and campaign once approved (a JustGiving page's).
    pub fund: Option<String>,
    pub campaign: Option<String>,
    /// `false` when the platform the payment came through claims its Gift Aid itself (JustGiving): the gift is
    /// never put in the charity's Gift Aid claims.
    pub gift_aid_claimable: bool,
}

/// Who paid, as the provider told.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayerView {
    /// The provider's customer id; linked to the donor on approval.
    pub customer_id: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The name the donor chose to show (JustGiving's `donorDisplayName`): not necessarily their real name.
    pub display_name: Option<String>,
    /// The donor's message with the donation (JustGiving).
    pub message: Option<String>,
}

/// A donor the payment may be from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CandidateDonorView {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: String,
    pub email: Option<String>,
}

impl From<CandidateDonor> for CandidateDonorView {
    fn from(d: CandidateDonor) -> Self {
        Self { id: d.id, first_name: d.first_name, last_name: d.last_name, email: d.email }
    }
}

/// A staged payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StagingEntryView {
    pub id: Uuid,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Why it is staged: `several_donors_match`, `no_email` or `no_last_name`.
    pub reason: String,
    /// The provider's event that staged it.
    pub provider_event_id: String,
    pub proposed_gift: ProposedGiftView,
    pub payer: PayerView,
    /// The donors sharing the payer's email (for `several_donors_match`), those that still exist.
    pub candidate_donors: Vec<CandidateDonorView>,
    /// Once approved: the donor and the gift recorded.
    pub donor_id: Option<Uuid>,
    pub gift_id: Option<Uuid>,
    /// Once rejected: why.
    pub rejection_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

fn view(s: StagedPayment, candidates: Vec<CandidateDonor>) -> StagingEntryView {
    StagingEntryView {
        id: s.id,
        status: s.status,
        reason: s.reason,
        provider_event_id: s.provider_event_id,
        proposed_gift: ProposedGiftView {
            amount_minor: s.amount_minor,
            currency: s.currency,
            gift_date: s.gift_date,
            payment_method: s.payment_method,
            source: s.provider,
            external_reference: s.reference,
            recurring_reference: s.agreement_reference,
            fund: s.fund,
            campaign: s.campaign,
            gift_aid_claimable: s.gift_aid_claimable,
        },
        payer: PayerView {
            customer_id: s.customer_id,
            email: s.email,
            first_name: s.first_name,
            last_name: s.last_name,
            display_name: s.payer_display_name,
            message: s.payer_message,
        },
        candidate_donors: candidates.into_iter().map(CandidateDonorView::from).collect(),
        donor_id: s.donor_id,
        gift_id: s.gift_id,
        rejection_reason: s.rejection_reason,
        created_at: s.created_at,
        decided_at: s.decided_at,
    }
}

async fn with_candidates(tx: &Transaction, s: StagedPayment) -> Result<StagingEntryView, ApiError> {
    let candidates = db::candidate_donors(tx, &s.candidate_donor_ids).await?;
    Ok(view(s, candidates))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StagingQuery {
    /// Only entries with this status: `pending`, `approved` or `rejected`.
    #[param(pattern = r"^\s*(pending|approved|rejected)\s*$")]
    pub status: Option<String>,
}

/// Lists staged payments, newest first.
#[utoipa::path(tag = "staging", security(("bearer" = ["fundraising:read"])),
    params(StagingQuery, PageQuery),
    responses((status = 200, body = Page<StagingEntryView>), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 422, body = almoner_http::Problem)))]
#[get("/v1/staging")]
#[tracing::instrument(skip_all)]
pub async fn list_staging(
    principal: Principal,
    pool: web::Data<Pool>,
    query: web::Query<StagingQuery>,
    page: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let mut errors = FieldErrors::new();
    let Paging { limit, after } = page.parse::<Uuid>(&mut errors);
    let status = query.status.as_deref().map(str::trim).and_then(|s| match s {
        "pending" | "approved" | "rejected" => Some(s),
        _ => {
            errors.add("status", "must be one of pending, approved, rejected");
            None
        }
    });
    errors.finish()?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let found = db::list_staged(&tx, status, after, limit.fetch()).await?;
    let page = Page::from_rows(found, limit, |s| s.id);
    // Every entry's candidates in one statement.
    let mut ids: Vec<Uuid> = page.data.iter().flat_map(|s| s.candidate_donor_ids.iter().copied()).collect();
    ids.sort_unstable();
    ids.dedup();
    let candidates = db::candidate_donors(&tx, &ids).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(page.map(|s| {
        let mine = candidates.iter().filter(|c| s.candidate_donor_ids.contains(&c.id)).cloned().collect();
        view(s, mine)
    })))
}

/// Reads one staged payment: the proposed gift, why it is staged, and the candidate donors.
#[utoipa::path(tag = "staging", security(("bearer" = ["fundraising:read"])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = StagingEntryView), (status = 401, body = almoner_http::Problem),
        (status = 403, body = almoner_http::Problem), (status = 404, body = almoner_http::Problem)))]
#[get("/v1/staging/{id}")]
#[tracing::instrument(skip_all, fields(staging_id = %id))]
pub async fn get_staging(
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:read")?;
    let id = path_id(&id, "staging entry")?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    let entry = db::get_staged(&tx, id).await?.ok_or_else(|| ApiError::not_found("staging entry"))?;
    let view = with_candidates(&tx, entry).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// A donor to create for a staged payment.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StagingDonorInput {
    /// At most 200 characters, no control characters.
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    pub first_name: Option<String>,
    /// Required: 1 to 200 characters once trimmed, no control characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 200, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub last_name: Option<String>,
    /// The donor's email; the payer's when absent.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
}

/// Approves a staged payment: exactly one of `donor_id` and `create_donor`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveInput {
    /// An existing donor of the same tenant.
    pub donor_id: Option<Uuid>,
    /// A new donor to create and give the gift to.
    pub create_donor: Option<StagingDonorInput>,
}

/// The document states the "exactly one" rule itself (a `oneOf` of the two ways), which a derive on the struct
/// cannot: each way requires its field and allows the other only as `null`.
impl utoipa::PartialSchema for ApproveInput {
    fn schema() -> RefOr<Schema> {
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let existing = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "donor_id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .description(Some("An existing donor of the same tenant.")),
            )
            .required("donor_id")
            .property("create_donor", null())
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let new = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("create_donor", Ref::from_schema_name(StagingDonorInput::name()))
            .required("create_donor")
            .property("donor_id", null())
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        Schema::OneOf(
            OneOfBuilder::new()
                .description(Some(
                    "Approves a staged payment: exactly one of `donor_id` (an existing donor of the same tenant) \
                     and `create_donor` (a new donor to create and give the gift to).",
                ))
                .item(existing)
                .item(new)
                .build(),
        )
        .into()
    }
}

impl ToSchema for ApproveInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((StagingDonorInput::name().into(), <StagingDonorInput as utoipa::PartialSchema>::schema()));
        <StagingDonorInput as ToSchema>::schemas(schemas);
    }
}

/// Whose gift an approved payment is.
enum Approval {
    Existing(Uuid),
    New { first_name: Option<String>, last_name: String, email: Option<Email> },
}

fn parse_approval(input: ApproveInput) -> Result<Approval, ApiError> {
    let mut errors = FieldErrors::new();
    let approval = match (input.donor_id, input.create_donor) {
        (Some(donor_id), None) => Some(Approval::Existing(donor_id)),
        (None, Some(donor)) => {
            let first_name = errors.parse("create_donor.first_name", optional_text(donor.first_name.as_deref(), 200));
            let last_name = errors
                .required("create_donor.last_name", donor.last_name)
                .and_then(|l| errors.parse("create_donor.last_name", required_text(&l, 200)));
            let email = match donor.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                Some(e) => errors.parse("create_donor.email", Email::parse(e)).map(Some),
                None => Some(None),
            };
            match (first_name, last_name, email) {
                (Some(first_name), Some(last_name), Some(email)) => {
                    Some(Approval::New { first_name, last_name, email })
                }
                _ => None,
            }
        }
        (Some(_), Some(_)) => {
            errors.add("donor_id", "give either donor_id or create_donor, not both");
            None
        }
        (None, None) => {
            errors.add("donor_id", "give either donor_id or create_donor");
            None
        }
    };
    errors.finish()?;
    approval.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated approval missing")))
}

/// Locks a pending entry, or says why it cannot be decided.
async fn pending(tx: &Transaction, id: Uuid) -> Result<StagedPayment, ApiError> {
    let entry = db::lock_staged(tx, id).await?.ok_or_else(|| ApiError::not_found("staging entry"))?;
    if entry.status != "pending" {
        return Err(ApiError::new(ErrorCode::Conflict, format!("the staging entry is {} already", entry.status)));
    }
    Ok(entry)
}

/// Approves a staged payment with a donor (an existing one, or one created now): records its gift as the
/// consumer would have, and links the payer's customer id to the donor.
#[utoipa::path(tag = "staging", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body = ApproveInput,
    responses((status = 200, description = "The entry, approved, naming its donor and gift", body = StagingEntryView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the entry is decided already, or the payment is a gift already",
            body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming each field (an unknown donor names donor_id)",
            body = almoner_http::Problem)))]
#[post("/v1/staging/{id}/approve")]
#[tracing::instrument(skip_all, fields(staging_id = %id))]
pub async fn approve_staging(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "staging entry")?;
    let approval = parse_approval(json_body(&req, &body)?)?;
    let tenant_id = principal.tenant_id.as_uuid();
    let tx = pool.tenant_tx(tenant_id).await?;
    let entry = pending(&tx, id).await?;
    let payment = entry.payment().map_err(ApiError::unexpected)?;
    if db::gift_for_reference(&tx, &entry.provider, &entry.reference).await?.is_some() {
        return Err(ApiError::new(ErrorCode::Conflict, "the payment is a gift already"));
    }
    let donor_id = match approval {
        Approval::Existing(donor_id) => {
            if !donors::exists(&tx, donor_id).await? {
                return Err(ApiError::validation(vec![almoner_http::FieldError {
                    field: "donor_id".into(),
                    message: "no such donor".into(),
                }]));
            }
            donor_id
        }
        Approval::New { first_name, last_name, email } => {
            let email = email.or_else(|| payment.payer.email.clone());
            create_donor(&tx, tenant_id, first_name, last_name, email).await?.id
        }
    };
    let extras = GiftExtras {
        fund: entry.fund.clone(),
        campaign: entry.campaign.clone(),
        claimed_by_platform: !entry.gift_aid_claimable,
    };
    let gift_id = record_gift_with(&tx, tenant_id, &payment, donor_id, &extras).await?;
    if let Some(agreement) = &entry.agreement_reference {
        link_gift(&tx, tenant_id, &entry.provider, agreement, gift_id, payment.date).await?;
    }
    let approved = db::approve_staged(&tx, id, donor_id, gift_id).await?;
    let view = with_candidates(&tx, approved).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Rejects a staged payment: it never becomes a gift.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectInput {
    /// Required: why, 1 to 500 characters once trimmed, no control characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 500, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$")]
    pub reason: Option<String>,
}

/// Rejects a staged payment with a reason; it stays listed as `rejected`.
#[utoipa::path(tag = "staging", security(("bearer" = ["fundraising:write"])),
    params(("id" = Uuid, Path)),
    request_body = RejectInput,
    responses((status = 200, description = "The entry, rejected", body = StagingEntryView),
        (status = 401, body = almoner_http::Problem), (status = 403, body = almoner_http::Problem),
        (status = 404, body = almoner_http::Problem),
        (status = 409, description = "conflict: the entry is decided already", body = almoner_http::Problem),
        (status = 422, description = "validation_failed, naming reason", body = almoner_http::Problem)))]
#[post("/v1/staging/{id}/reject")]
#[tracing::instrument(skip_all, fields(staging_id = %id))]
pub async fn reject_staging(
    req: HttpRequest,
    principal: Principal,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    principal.require("fundraising:write")?;
    let id = path_id(&id, "staging entry")?;
    let input: RejectInput = json_body(&req, &body)?;
    let mut errors = FieldErrors::new();
    let reason = errors.required("reason", input.reason).and_then(|r| errors.parse("reason", required_text(&r, 500)));
    errors.finish()?;
    let reason = reason.ok_or_else(|| ApiError::unexpected(anyhow::anyhow!("validated reason missing")))?;
    let tx = pool.tenant_tx(principal.tenant_id.as_uuid()).await?;
    pending(&tx, id).await?;
    let rejected = db::reject_staged(&tx, id, &reason).await?;
    let view = with_candidates(&tx, rejected).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(view))
}
