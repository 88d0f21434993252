//! `WHERE` clauses built from the filters a request actually gave.
//!
//! A single statement with `($1 IS NULL OR column = $1)` for every optional filter looks tidy, but once PostgreSQL
//! switches the prepared statement to its generic plan (after five executions) that plan cannot use an index on
//! any of those columns, and every search becomes a scan of the tenant's whole table. Building the statement from
//! the filters present instead gives one prepared statement per combination, each with a plan that uses its
//! indexes.
//!
//! ```ignore
//! let mut filters = Filters::new();
//! filters.add_some("donor_id = {}", &filter.donor_id);
//! let limit = filters.param(&limit);
//! let sql = format!("SELECT ... FROM gifts{} ORDER BY gift_date DESC LIMIT {limit}", filters.where_clause());
//! tx.query(&sql, filters.params()).await?;
//! ```

use tokio_postgres::types::ToSql;

/// Conditions joined with `AND`, and the parameters their placeholders refer to.
#[derive(Default)]
pub struct Filters<'a> {
    conditions: Vec<String>,
    params: Vec<&'a (dyn ToSql + Sync)>,
}

impl<'a> Filters<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Binds `value` and returns its placeholder (`$1`, `$2`, ...), for conditions with several parameters and for
    /// parameters outside the `WHERE` clause (`LIMIT`).
    pub fn param(&mut self, value: &'a (dyn ToSql + Sync)) -> String {
        self.params.push(value);
        format!("${}", self.params.len())
    }

    /// Adds a condition whose every `{}` stands for `value`'s placeholder, e.g. `"lower(email) = lower({})"`.
    pub fn add(&mut self, condition: &str, value: &'a (dyn ToSql + Sync)) -> &mut Self {
        let placeholder = self.param(value);
        self.conditions.push(condition.replace("{}", &placeholder));
        self
    }

    /// [`add`](Self::add) when `value` is given; nothing otherwise.
    pub fn add_some<T: ToSql + Sync>(&mut self, condition: &str, value: &'a Option<T>) -> &mut Self {
        if let Some(value) = value {
            self.add(condition, value);
        }
        self
    }

    /// Adds a condition that takes no parameter, or whose placeholders came from [`param`](Self::param).
    pub fn add_condition(&mut self, condition: impl Into<String>) -> &mut Self {
        self.conditions.push(condition.into());
        self
    }

    /// ` WHERE (a) AND (b)`, or nothing when there is no condition. Each condition is parenthesised, so one
    /// containing `OR` cannot leak into the others.
    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() { String::new() } else { format!(" WHERE ({})", self.conditions.join(") AND (")) }
    }

    /// The bound parameters, in placeholder order.
    pub fn params(&self) -> &[&'a (dyn ToSql + Sync)] {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_given_filters_appear_and_placeholders_count_up() {
        let (donor, limit, date, id) = (7_i64, 50_i64, "2025-01-01", "x");
        let mut filters = Filters::new();
        assert_eq!(filters.where_clause(), "");
        filters.add("donor_id = {}", &donor).add_condition("deleted_at IS NULL");
        let (d, i) = (filters.param(&date), filters.param(&id));
        filters.add_condition(format!("(gift_date, id) < ({d}, {i})"));
        filters.add("a = {} OR b = {}", &donor);
        filters.add_some("never = {}", &None::<i64>);
        let limit = filters.param(&limit);
        assert_eq!(
            filters.where_clause(),
            " WHERE (donor_id = $1) AND (deleted_at IS NULL) AND ((gift_date, id) < ($2, $3)) AND (a = $4 OR b = $4)"
        );
        assert_eq!(limit, "$5");
        assert_eq!(filters.params().len(), 5);
    }
}
