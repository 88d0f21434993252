//! Segments: saved filters over a tenant's contacts (tags, attributes, consent, and facts about the linked donor's
//! giving), counted live and used as a campaign's audience.
//!
//! A filter is a conjunction: a contact is in the segment when it meets every condition given; an empty filter is
//! every contact. Numbers on the do-not-contact list are counted (as not reachable), never texted.

use super::contact::Tags;
use almoner_types::ParseError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Most conditions on attributes in one filter.
pub const MAX_ATTRIBUTE_CONDITIONS: usize = 20;
/// The longest giving window, in months.
pub const MAX_MONTHS: i32 = 120;

/// Who is in a segment: contacts meeting every condition given. `{}` is every contact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentFilter {
    /// Contacts with at least one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 50)]
    pub tags_any: Vec<String>,
    /// Contacts with every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 50)]
    pub tags_all: Vec<String>,
    /// Contacts with none of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 50)]
    pub tags_none: Vec<String>,
    /// Conditions on attributes, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 20)]
    pub attributes: Vec<AttributeCondition>,
    /// `true`: only contacts who consented to be texted (`consented_at` set); `false`: only those who have not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms_consent: Option<bool>,
    /// Conditions on the fundraising donor the contact is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub donor: Option<DonorCondition>,
}

/// A condition on one attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeCondition {
    /// The attribute's key: `a-z`, digits and `_`, starting with a letter.
    #[schema(min_length = 1, max_length = 50, pattern = "^[a-z][a-z0-9_]*$")]
    pub key: String,
    pub op: AttributeOp,
    /// For `eq` and `ne`: a string, number or boolean; for `gt`, `gte`, `lt` and `lte`: a number; none for `exists`
    /// and `missing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ConditionValue>)]
    pub value: Option<Value>,
}

/// What an attribute is compared with: a string of at most 500 characters, a number or a boolean.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // Describes the accepted values in the OpenAPI document; checked by `AttributeCondition::check`.
pub enum ConditionValue {
    Text(String),
    Number(f64),
    Flag(bool),
}

/// How an attribute is compared. `ne` also matches contacts without the attribute; the ordering operators match
/// only numeric values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttributeOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
    Missing,
}

/// Conditions on the linked donor. Any giving condition implies a linked donor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonorCondition {
    /// `true`: only contacts linked to a donor; `false`: only those that are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked: Option<bool>,
    /// Gave (a succeeded gift of more than zero) within this many months, e.g. 12.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 120)]
    pub gave_within_months: Option<i32>,
    /// Gave before, but not within this many months: lapsed donors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 120)]
    pub lapsed_months: Option<i32>,
    /// Lifetime giving, net of refunds, in minor units, at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub lifetime_minor_at_least: Option<i64>,
}

impl SegmentFilter {
    /// Checks and normalises a filter as a client wrote it: tags as contacts keep them, attribute conditions whole.
    pub fn parse(input: &Value) -> Result<Self, ParseError> {
        // serde would also read a struct from an array of its fields in order; a filter is written as objects.
        let Value::Object(fields) = input else { return Err(ParseError::new("must be a JSON object")) };
        if fields.get("donor").is_some_and(|d| !d.is_object() && !d.is_null()) {
            return Err(ParseError::new("donor: must be a JSON object"));
        }
        if let Some(Value::Array(conditions)) = fields.get("attributes")
            && let Some(i) = conditions.iter().position(|c| !c.is_object())
        {
            return Err(ParseError::new(format!("attributes[{i}]: must be a JSON object")));
        }
        let filter: SegmentFilter =
            serde_json::from_value(input.clone()).map_err(|e| ParseError::new(e.to_string()))?;
        filter.normalised()
    }

    fn normalised(self) -> Result<Self, ParseError> {
        let tags = |name: &str, tags: &[String]| {
            Tags::parse(tags).map(Tags::into_vec).map_err(|e| ParseError::new(format!("{name}: {e}")))
        };
        if self.attributes.len() > MAX_ATTRIBUTE_CONDITIONS {
            return Err(ParseError::new(format!("attributes: at most {MAX_ATTRIBUTE_CONDITIONS} conditions")));
        }
        for (i, c) in self.attributes.iter().enumerate() {
            c.check().map_err(|e| ParseError::new(format!("attributes[{i}]: {e}")))?;
        }
        if let Some(donor) = &self.donor {
            donor.check().map_err(|e| ParseError::new(format!("donor: {e}")))?;
        }
        Ok(Self {
            tags_any: tags("tags_any", &self.tags_any)?,
            tags_all: tags("tags_all", &self.tags_all)?,
            tags_none: tags("tags_none", &self.tags_none)?,
            attributes: self.attributes,
            sms_consent: self.sms_consent,
            donor: self.donor.filter(|d| *d != DonorCondition::default()),
        })
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Default::default()))
    }

    /// Adds the filter's conditions on contacts `c` to `filters`.
    pub fn conditions<'a>(&'a self, filters: &mut almoner_db::Filters<'a>) {
        if !self.tags_any.is_empty() {
            filters.add("c.tags && {}", &self.tags_any);
        }
        if !self.tags_all.is_empty() {
            filters.add("c.tags @> {}", &self.tags_all);
        }
        if !self.tags_none.is_empty() {
            filters.add("NOT (c.tags && {})", &self.tags_none);
        }
        for condition in &self.attributes {
            condition.add_to(filters);
        }
        if let Some(consent) = self.sms_consent {
            filters.add_condition(if consent { "c.consented_at IS NOT NULL" } else { "c.consented_at IS NULL" });
        }
        if let Some(donor) = &self.donor {
            donor.add_to(filters);
        }
    }
}

impl AttributeCondition {
    fn check(&self) -> Result<(), ParseError> {
        let key_ok = self.key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && self.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && self.key.len() <= 50;
        if !key_ok {
            return Err(ParseError::new(
                "key must be a-z, 0-9 and _, start with a letter, and be at most 50 characters",
            ));
        }
        match (self.op, &self.value) {
            (AttributeOp::Exists | AttributeOp::Missing, None) => Ok(()),
            (AttributeOp::Exists | AttributeOp::Missing, Some(_)) => {
                Err(ParseError::new("exists and missing take no value"))
            }
            (AttributeOp::Eq | AttributeOp::Ne, Some(Value::String(s))) if s.chars().count() <= 500 => Ok(()),
            (AttributeOp::Eq | AttributeOp::Ne, Some(Value::Number(_) | Value::Bool(_))) => Ok(()),
            (AttributeOp::Eq | AttributeOp::Ne, _) => {
                Err(ParseError::new("value must be a string (at most 500 characters), a number or a boolean"))
            }
            (_, Some(Value::Number(n))) if n.as_f64().is_some_and(f64::is_finite) => Ok(()),
            _ => Err(ParseError::new("value must be a number for gt, gte, lt and lte")),
        }
    }

    fn add_to<'a>(&'a self, filters: &mut almoner_db::Filters<'a>) {
        let key = filters.param(&self.key);
        let condition = match (self.op, &self.value) {
            (AttributeOp::Exists, _) => format!("c.attributes ? {key}"),
            (AttributeOp::Missing, _) => format!("NOT (c.attributes ? {key})"),
            (AttributeOp::Eq, Some(value)) => format!("c.attributes -> {key} = {}::jsonb", filters.param(value)),
            (AttributeOp::Ne, Some(value)) => {
                format!("c.attributes -> {key} IS DISTINCT FROM {}::jsonb", filters.param(value))
            }
            (op, Some(value)) => {
                let sign = match op {
                    AttributeOp::Gt => ">",
                    AttributeOp::Gte => ">=",
                    AttributeOp::Lt => "<",
                    _ => "<=",
                };
                // A number compared as a number; the CASE keeps a text value from ever being cast.
                format!(
                    "CASE WHEN jsonb_typeof(c.attributes -> {key}) = 'number' \
                     THEN (c.attributes ->> {key})::float8 {sign} ({}::jsonb #>> '{{}}')::float8 ELSE false END",
                    filters.param(value)
                )
            }
            (_, None) => "false".to_owned(),
        };
        filters.add_condition(condition);
    }
}

const GAVE: &str = "SELECT 1 FROM donor_gifts g WHERE g.donor_id = c.donor_id AND NOT g.deleted \
                    AND g.status = 'succeeded' AND g.amount_minor > 0";

impl DonorCondition {
    fn check(&self) -> Result<(), ParseError> {
        for (name, months) in [("gave_within_months", self.gave_within_months), ("lapsed_months", self.lapsed_months)] {
            if months.is_some_and(|m| !(1..=MAX_MONTHS).contains(&m)) {
                return Err(ParseError::new(format!("{name} must be 1 to {MAX_MONTHS}")));
            }
        }
        if self.lifetime_minor_at_least.is_some_and(|m| m < 0) {
            return Err(ParseError::new("lifetime_minor_at_least must not be negative"));
        }
        let gives =
            self.gave_within_months.is_some() || self.lapsed_months.is_some() || self.lifetime_minor_at_least.is_some();
        if gives && self.linked == Some(false) {
            return Err(ParseError::new("giving conditions need a linked donor: drop linked: false"));
        }
        Ok(())
    }

    fn add_to<'a>(&'a self, filters: &mut almoner_db::Filters<'a>) {
        match self.linked {
            Some(false) => {
                filters.add_condition("c.donor_id IS NULL");
                return;
            }
            Some(true) => {
                filters.add_condition("c.donor_id IS NOT NULL");
            }
            None => {}
        }
        if let Some(months) = &self.gave_within_months {
            let m = filters.param(months);
            filters.add_condition(format!(
                "c.donor_id IS NOT NULL AND EXISTS ({GAVE} AND g.gift_date >= current_date - make_interval(months => {m}::int))"
            ));
        }
        if let Some(months) = &self.lapsed_months {
            let m = filters.param(months);
            filters.add_condition(format!(
                "c.donor_id IS NOT NULL AND EXISTS ({GAVE}) \
                 AND NOT EXISTS ({GAVE} AND g.gift_date >= current_date - make_interval(months => {m}::int))"
            ));
        }
        if let Some(minimum) = &self.lifetime_minor_at_least {
            let m = filters.param(minimum);
            filters.add_condition(format!(
                "c.donor_id IS NOT NULL AND (SELECT coalesce(sum(g.amount_minor), 0)::bigint FROM donor_gifts g \
                 WHERE g.donor_id = c.donor_id AND NOT g.deleted AND g.status IN ('succeeded', 'refunded')) >= {m}::bigint"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_are_normalised() {
        let f = SegmentFilter::parse(&json!({"tags_any": ["Gala", "gala"], "donor": {}})).unwrap();
        assert_eq!(f.tags_any, ["gala"]);
        assert_eq!(f.donor, None);
        assert_eq!(f.to_value(), json!({"tags_any": ["gala"]}));
        assert_eq!(SegmentFilter::parse(&json!({})).unwrap(), SegmentFilter::default());
    }

    #[test]
    fn bad_filters_name_what_is_wrong() {
        for (bad, says) in [
            (json!({"colour": "red"}), "unknown field"),
            (json!({"tags_none": [" "]}), "tags_none"),
            (json!({"attributes": [{"key": "Level", "op": "eq", "value": "x"}]}), "attributes[0]: key"),
            (json!({"attributes": [{"key": "visits", "op": "gt", "value": "3"}]}), "must be a number"),
            (json!({"attributes": [{"key": "visits", "op": "exists", "value": 1}]}), "no value"),
            (json!({"attributes": [{"key": "level", "op": "eq"}]}), "value must be"),
            (json!({"attributes": [{"key": "level", "op": "like", "value": "x"}]}), "unknown variant"),
            (json!({"donor": {"gave_within_months": 0}}), "gave_within_months"),
            (json!({"donor": {"lapsed_months": 121}}), "lapsed_months"),
            (json!({"donor": {"lifetime_minor_at_least": -1}}), "lifetime"),
            (json!({"donor": {"linked": false, "gave_within_months": 12}}), "linked"),
            (json!([1]), "JSON object"),
            (json!({"donor": [null, null]}), "donor: must be a JSON object"),
            (json!({"attributes": [["level", "eq", "x"]]}), "attributes[0]: must be a JSON object"),
        ] {
            let error = SegmentFilter::parse(&bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn conditions_become_parameterised_sql() {
        let f = SegmentFilter::parse(&json!({
            "tags_any": ["a"], "tags_none": ["b"],
            "attributes": [{"key": "visits", "op": "gte", "value": 3}, {"key": "level", "op": "missing"}],
            "sms_consent": true,
            "donor": {"gave_within_months": 12}
        }))
        .unwrap();
        let mut filters = almoner_db::Filters::new();
        f.conditions(&mut filters);
        let sql = filters.where_clause();
        assert!(sql.contains("c.tags && $1"), "{sql}");
        assert!(sql.contains("NOT (c.tags && $2)"), "{sql}");
        assert!(sql.contains("(c.attributes ->> $3)::float8 >= ($4::jsonb #>> '{}')::float8"), "{sql}");
        assert!(sql.contains("NOT (c.attributes ? $5)"), "{sql}");
        assert!(sql.contains("c.consented_at IS NOT NULL"), "{sql}");
        assert!(sql.contains("make_interval(months => $6::int)"), "{sql}");
        assert_eq!(filters.params().len(), 6);
    }
}
