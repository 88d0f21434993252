//! Shapes the OpenAPI document gives values whose rules the derive cannot state: list items and map keys with
//! rules of their own. The handlers read plain strings and maps; these types exist only for the document, so that
//! it says exactly what the handlers accept.

use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{RefOr, schema::AdditionalProperties};

/// Text with no control characters (Unicode `Cc`), as `optional_text` accepts once trimmed.
pub const NO_CONTROL: &str = r"^[^\u0000-\u001f\u007f-\u009f]*$";

/// Text with no control characters and something other than whitespace, as `required_text` accepts.
pub const NOT_BLANK: &str =
    r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$";

/// A source system's name as `SourceName` accepts it (surrounding whitespace is trimmed).
pub const SOURCE_NAME: &str = r"^\s*[a-z0-9_.-]{1,50}\s*$";

/// A required text of `1..=max` characters.
fn required_text(max: usize, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(NOT_BLANK))
}

/// One `agent_sources` entry of the Gift Aid settings.
pub struct AgentSource;

impl utoipa::PartialSchema for AgentSource {
    fn schema() -> RefOr<Schema> {
        Schema::Object(
            required_text(50, "A gift source, 1 to 50 characters once trimmed, no control characters.").build(),
        )
        .into()
    }
}

impl utoipa::ToSchema for AgentSource {}

fn external_ids(value: ObjectBuilder, description: &str) -> RefOr<Schema> {
    let key = ObjectBuilder::new().schema_type(Type::String).pattern(Some(SOURCE_NAME));
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(description))
            .property_names(Some(key))
            .additional_properties(Some(AdditionalProperties::RefOr(Schema::Object(value.build()).into())))
            .build(),
    )
    .into()
}

const ID_TEXT: &str = "The donor's id in that source: 1 to 200 characters once trimmed, no control characters.";

/// A donor's external ids: source name (`a-z`, `0-9`, `_`, `-`, `.`; 1 to 50) to the donor's id in it.
pub struct ExternalIds;

impl utoipa::PartialSchema for ExternalIds {
    fn schema() -> RefOr<Schema> {
        external_ids(
            required_text(200, ID_TEXT),
            "One id per source system, e.g. `{\"legacy_crm\": \"D-1001\"}`; unique per tenant and source.",
        )
    }
}

impl utoipa::ToSchema for ExternalIds {}

/// A merge patch of a donor's external ids: a `null` id removes that source's.
pub struct ExternalIdsPatch;

impl utoipa::PartialSchema for ExternalIdsPatch {
    fn schema() -> RefOr<Schema> {
        external_ids(
            required_text(200, ID_TEXT).schema_type(SchemaType::from_iter([Type::String, Type::Null])),
            "Ids to set by source system; `null` removes that source's id.",
        )
    }
}

impl utoipa::ToSchema for ExternalIdsPatch {}

/// An ISO 4217 code Almoner supports; case is ignored.
pub struct CurrencyCode;

impl utoipa::PartialSchema for CurrencyCode {
    fn schema() -> RefOr<Schema> {
        Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some("ISO 4217, one Almoner supports; case is ignored."))
                .enum_values(Some(almoner_types::Currency::supported_codes()))
                .build(),
        )
        .into()
    }
}

impl utoipa::ToSchema for CurrencyCode {}

/// A gift status a client may set (`refunded` follows from refunds).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // The document's list of names; the handlers parse strings.
pub enum SettableGiftStatus {
    Pending,
    Succeeded,
    Failed,
}

/// How a soft credit relates the credited donor to the gift.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // The document's list of names; the handlers parse strings.
pub enum SoftCreditKindName {
    Matched,
    InMemory,
    InHonour,
    Solicitor,
}

/// How often a pledge's instalments fall due.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // The document's list of names; the handlers parse strings.
pub enum PledgeFrequencyName {
    Once,
    Monthly,
    Quarterly,
    Annually,
}

/// How the donor made a Gift Aid declaration.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // The document's list of names; the handlers parse strings.
pub enum DeclarationMethodName {
    Online,
    Written,
    Oral,
}

/// Why a Gift Aid declaration ended.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // The document's list of names; the handlers parse strings.
pub enum EndReasonName {
    DonorRequest,
    InsufficientTax,
    Deceased,
    Superseded,
    Other,
}
