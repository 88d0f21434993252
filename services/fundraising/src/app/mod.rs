//! The application layer: business operations that more than one caller performs, the HTTP routes and the
//! background jobs (the gift intake, the import commit) alike.
//!
//! Each module is one operation area and returns its own `thiserror` error saying what went wrong in the terms of
//! the operation (a refund refused, a link to an archived fund), with `Db` for database failures (kept whole, so
//! the edge can still answer a busy database with a retryable `503`) and `Unexpected` for the rest. Nothing here
//! knows about HTTP: `routes::problems` turns these errors into problem+json, and a job decides what each means
//! for it (the importer turns a refused refund into a row's outcome and stops on anything else).
//!
//! The modules here may use `db` and `domain`; they must not use `routes`, `intake` or `importer`.

pub mod connections;
pub mod gift_view;
pub mod imports;
pub mod justgiving;
pub mod links;
pub mod new_gifts;
pub mod payments;
pub mod pledges;
pub mod recurring;
pub mod refunds;

/// One invalid field of an operation's input: its name as clients know it, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The problems as one line: `field: message; field: message`.
pub(crate) fn describe(problems: &[FieldProblem]) -> String {
    problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; ")
}
