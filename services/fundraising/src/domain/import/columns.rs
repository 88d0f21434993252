//! What the columns of a file mean: the fields an import knows, the header spellings recognised for each, and a
//! client's mapping for the rest.

use std::collections::HashMap;

/// A column's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    DonorExternalId,
    Title,
    FirstName,
    LastName,
    Email,
    Phone,
    AddressLine1,
    AddressLine2,
    Town,
    County,
    Postcode,
    Country,
    GiftReference,
    Amount,
    Currency,
    GiftDate,
    Status,
    PaymentMethod,
    Fund,
    Campaign,
    Notes,
    /// The gift reference a refund row refunds.
    RefundOf,
    /// Whether the donor has made a Gift Aid declaration (yes or no).
    GiftAidDeclaration,
    /// The day the donor made it; it covers gifts from then on.
    GiftAidDeclarationDate,
    /// `written` or `online`.
    GiftAidDeclarationMethod,
}

/// Field names as clients give them in a mapping, and the headers recognised for each (compared lower case,
/// without spaces, underscores, hyphens or full stops).
const FIELDS: &[(Field, &str, &[&str])] = &[
    (
        Field::DonorExternalId,
        "donor_external_id",
        &["donorexternalid", "donorid", "donorref", "supporterid", "constituentid", "externalid"],
    ),
    (Field::Title, "title", &["title", "salutation"]),
    (Field::FirstName, "first_name", &["firstname", "forename", "givenname"]),
    (Field::LastName, "last_name", &["lastname", "surname", "familyname"]),
    (Field::Email, "email", &["email", "emailaddress"]),
    (Field::Phone, "phone", &["phone", "telephone", "mobile", "phonenumber"]),
    (Field::AddressLine1, "address_line1", &["addressline1", "address1", "address", "street"]),
    (Field::AddressLine2, "address_line2", &["addressline2", "address2"]),
    (Field::Town, "town", &["town", "city"]),
    (Field::County, "county", &["county"]),
    (Field::Postcode, "postcode", &["postcode", "postalcode", "zip"]),
    (Field::Country, "country", &["country", "countrycode"]),
    (Field::GiftReference, "gift_reference", &["giftreference", "giftref", "giftid", "transactionid", "reference"]),
    (Field::Amount, "amount", &["amount", "giftamount", "value"]),
    (Field::Currency, "currency", &["currency"]),
    (Field::GiftDate, "gift_date", &["giftdate", "date", "donationdate", "receiveddate"]),
    (Field::Status, "status", &["status", "giftstatus"]),
    (Field::PaymentMethod, "payment_method", &["paymentmethod", "method"]),
    (Field::Fund, "fund", &["fund"]),
    (Field::Campaign, "campaign", &["campaign", "appeal"]),
    (Field::Notes, "notes", &["notes", "note", "comment", "comments"]),
    (Field::RefundOf, "refund_of", &["refundof", "refundfor", "refunds"]),
    (
        Field::GiftAidDeclaration,
        "gift_aid_declaration",
        &["giftaid", "giftaiddeclaration", "hasgiftaiddeclaration", "giftaiddeclared"],
    ),
    (
        Field::GiftAidDeclarationDate,
        "gift_aid_declaration_date",
        &["giftaiddeclarationdate", "giftaiddate", "declarationdate"],
    ),
    (
        Field::GiftAidDeclarationMethod,
        "gift_aid_declaration_method",
        &["giftaiddeclarationmethod", "giftaidmethod", "declarationmethod"],
    ),
];

impl Field {
    /// The field a mapping names, e.g. `last_name`.
    pub fn parse(name: &str) -> Option<Self> {
        FIELDS.iter().find(|(_, n, _)| *n == name.trim()).map(|(f, _, _)| *f)
    }

    pub fn name(self) -> &'static str {
        FIELDS.iter().find(|(f, _, _)| *f == self).map_or("?", |(_, n, _)| n)
    }

    /// The field a header means, when it is one of the recognised spellings.
    pub fn detect(header: &str) -> Option<Self> {
        let key: String =
            header.chars().filter(|c| !matches!(c, ' ' | '_' | '-' | '.')).collect::<String>().to_lowercase();
        FIELDS.iter().find(|(_, _, spellings)| spellings.contains(&key.as_str())).map(|(f, _, _)| *f)
    }
}

/// Which column holds which field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns(pub HashMap<Field, usize>);

/// How the headers were understood: the columns, and the headers that mean nothing (ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub columns: Columns,
    pub ignored: Vec<String>,
}

/// Maps headers to fields: an explicit `mapping` (header → field name) wins, the rest is detected. Fails naming
/// what is wrong: a mapping to an unknown field or header, two columns for one field, or a required field
/// (`last_name`, `amount`, `gift_date`) without a column.
pub fn layout(headers: &[String], mapping: &HashMap<String, String>) -> Result<Layout, Vec<String>> {
    let mut problems = Vec::new();
    let mut columns: HashMap<Field, usize> = HashMap::new();
    let mut ignored = Vec::new();
    for (header, field) in mapping {
        if !headers.iter().any(|h| h.trim() == header.trim()) {
            problems.push(format!("mapping names the column {header:?}, which the file does not have"));
        }
        if Field::parse(field).is_none() {
            problems.push(format!("mapping maps {header:?} to {field:?}, which is not a field"));
        }
    }
    for (index, header) in headers.iter().enumerate() {
        let field = match mapping.get(header.trim()) {
            Some(name) => Field::parse(name),
            None => Field::detect(header),
        };
        match field {
            Some(field) => {
                if let Some(first) = columns.insert(field, index) {
                    problems.push(format!("columns {} and {} both hold {}", first + 1, index + 1, field.name()));
                }
            }
            None => ignored.push(header.clone()),
        }
    }
    for required in [Field::LastName, Field::Amount, Field::GiftDate] {
        if !columns.contains_key(&required) {
            problems.push(format!("no column holds {} (map one)", required.name()));
        }
    }
    if problems.is_empty() { Ok(Layout { columns: Columns(columns), ignored }) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_detected_or_mapped_and_missing_required_columns_are_named() {
        let headers: Vec<String> =
            ["Supporter ID", "Forename", "Surname", "E-mail", "Gift Amount", "Donation Date", "Colour"]
                .map(String::from)
                .to_vec();
        let layout = layout(&headers, &HashMap::new()).unwrap();
        assert_eq!(layout.columns.0[&Field::DonorExternalId], 0);
        assert_eq!(layout.columns.0[&Field::Email], 3);
        assert_eq!(layout.ignored, ["Colour"]);
        let mapping = HashMap::from([("Colour".to_owned(), "fund".to_owned())]);
        assert_eq!(super::layout(&headers, &mapping).unwrap().columns.0[&Field::Fund], 6);
        let problems =
            super::layout(&["Name".to_owned()], &HashMap::from([("Nope".into(), "shoe_size".into())])).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
    }
}
