//! HMRC's Gift Aid schedule: the rows a claim becomes, with HMRC's rules for each field, and the files (ODS, the
//! spreadsheet Charities Online accepts, and CSV) they are written to. Pure: no I/O.
//!
//! The rules, each applied here so that HMRC's upload checks find nothing to refuse:
//! - title: at most 4 characters (full stops dropped), else left empty;
//! - first and last name: letters (accents removed), spaces, hyphens and apostrophes only, at most 35 characters;
//! - house name or number: at most 40 characters; postcode: upper case with one space;
//! - donation date `DD/MM/YY`; amount without `£` and with 2 decimals;
//! - donations up to the small-donation threshold (£20 by default) aggregated, in date order, into lines of at most
//!   £1,000 with a description (at most 35 characters), no name and no address, dated on their last donation;
//! - at most 1,000 rows a file: a longer schedule is split into several files.

use chrono::NaiveDate;
use std::io::Write;

/// Most rows HMRC accepts in one schedule file.
pub const MAX_ROWS_PER_FILE: usize = 1000;
/// Largest aggregated line, in pence (£1,000).
pub const MAX_AGGREGATE_MINOR: i64 = 100_000;
/// Default small-donation threshold, in pence (£20).
pub const DEFAULT_AGGREGATE_UP_TO_MINOR: i64 = 2000;

/// A donation as the schedule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Donation {
    pub title: Option<String>,
    pub first_name: Option<String>,
    pub last_name: String,
    pub house: String,
    pub postcode: String,
    pub date: NaiveDate,
    /// What is claimed on, in pence.
    pub amount_minor: i64,
    pub sponsored: bool,
}

/// One row of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub title: String,
    pub first_name: String,
    pub last_name: String,
    pub house: String,
    pub postcode: String,
    /// For an aggregated line: its description; the name and address are then empty.
    pub aggregated: String,
    pub sponsored: bool,
    pub date: NaiveDate,
    pub amount_minor: i64,
}

pub const HEADERS: [&str; 9] = [
    "Title",
    "First name or initial",
    "Last name",
    "House name or number",
    "Postcode",
    "Aggregated donations",
    "Sponsored event",
    "Donation date",
    "Amount",
];

/// HMRC's title: at most 4 characters without full stops (`Mrs.` gives `Mrs`); longer titles are left out.
pub fn title(raw: Option<&str>) -> String {
    let cleaned: String = raw.unwrap_or_default().chars().filter(|c| *c != '.').collect::<String>().trim().to_owned();
    let cleaned = name_characters(&cleaned);
    if cleaned.chars().count() <= 4 { cleaned } else { String::new() }
}

/// HMRC's name: letters, spaces, hyphens and apostrophes; accents removed (`Zoë` gives `Zoe`), other characters
/// dropped, spaces collapsed, at most 35 characters.
pub fn name(raw: &str) -> String {
    let cleaned = name_characters(raw);
    cleaned.chars().take(35).collect::<String>().trim_end().to_owned()
}

fn name_characters(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = match c {
            '’' | '‘' | '`' => '\'',
            '–' | '—' => '-',
            _ => c,
        };
        if c.is_ascii_alphabetic() || c == '-' || c == '\'' {
            out.push(c);
        } else if c.is_whitespace() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else if let Some(plain) = unaccented(c) {
            out.push_str(plain);
        }
    }
    out.trim().to_owned()
}

/// Latin letters with diacritics, and a few ligatures, as HMRC's plain letters.
fn unaccented(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Č' => "C",
        'ç' | 'ć' | 'č' => "c",
        'Ð' | 'Ď' => "D",
        'ð' | 'ď' => "d",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
        'Ğ' => "G",
        'ğ' => "g",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' | 'İ' => "I",
        'ì' | 'í' | 'î' | 'ï' | 'ī' | 'ı' => "i",
        'Ł' => "L",
        'ł' => "l",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'ñ' | 'ń' | 'ň' => "n",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ő' => "O",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ř' => "R",
        'ř' => "r",
        'Ś' | 'Š' | 'Ş' => "S",
        'ś' | 'š' | 'ş' => "s",
        'ß' => "ss",
        'Ť' => "T",
        'ť' => "t",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű' => "U",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'Ý' | 'Ÿ' => "Y",
        'ý' | 'ÿ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// A UK postcode as HMRC wants it: upper case, one space before the last three characters.
pub fn postcode(raw: &str) -> String {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    if compact.len() > 3 {
        let (outward, inward) = compact.split_at(compact.len() - 3);
        format!("{outward} {inward}")
    } else {
        compact
    }
}

/// `DD/MM/YY`.
pub fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%y").to_string()
}

/// Pence as pounds with 2 decimals and no symbol: `2500` gives `25.00`.
pub fn amount(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// The schedule's rows: donations above `aggregate_up_to_minor` (or sponsored) one a row, in date order; smaller
/// ones aggregated into lines of at most £1,000. `aggregate_up_to_minor` of 0 aggregates nothing.
pub fn rows(mut donations: Vec<Donation>, aggregate_up_to_minor: i64) -> Vec<Row> {
    donations.sort_by(|a, b| a.date.cmp(&b.date).then(a.last_name.cmp(&b.last_name)));
    let (small, single): (Vec<Donation>, Vec<Donation>) =
        donations.into_iter().partition(|d| !d.sponsored && d.amount_minor <= aggregate_up_to_minor);
    let mut rows: Vec<Row> = single
        .into_iter()
        .map(|d| Row {
            title: title(d.title.as_deref()),
            first_name: d.first_name.as_deref().map(name).unwrap_or_default(),
            last_name: name(&d.last_name),
            house: d.house.chars().take(40).collect(),
            postcode: postcode(&d.postcode),
            aggregated: String::new(),
            sponsored: d.sponsored,
            date: d.date,
            amount_minor: d.amount_minor,
        })
        .collect();
    let mut line: Option<(i64, usize, NaiveDate)> = None;
    let flush = |line: (i64, usize, NaiveDate), rows: &mut Vec<Row>| {
        let (total, count, last) = line;
        rows.push(Row {
            title: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            house: String::new(),
            postcode: String::new(),
            aggregated: format!("Small donations: {count} gifts"),
            sponsored: false,
            date: last,
            amount_minor: total,
        });
    };
    for d in small {
        line = match line {
            Some((total, count, _)) if total + d.amount_minor <= MAX_AGGREGATE_MINOR => {
                Some((total + d.amount_minor, count + 1, d.date))
            }
            Some(full) => {
                flush(full, &mut rows);
                Some((d.amount_minor, 1, d.date))
            }
            None => Some((d.amount_minor, 1, d.date)),
        };
    }
    if let Some(last) = line {
        flush(last, &mut rows);
    }
    rows.sort_by_key(|r| r.date);
    rows
}

/// The rows as files of at most [`MAX_ROWS_PER_FILE`] rows each.
pub fn split(rows: &[Row]) -> Vec<&[Row]> {
    rows.chunks(MAX_ROWS_PER_FILE).collect()
}

fn cells(row: &Row) -> [String; 9] {
    [
        row.title.clone(),
        row.first_name.clone(),
        row.last_name.clone(),
        row.house.clone(),
        row.postcode.clone(),
        row.aggregated.clone(),
        if row.sponsored { "Yes".to_owned() } else { String::new() },
        date(row.date),
        amount(row.amount_minor),
    ]
}

/// CSV (RFC 4180, CRLF), headers first.
pub fn csv(rows: &[Row]) -> Vec<u8> {
    let quote = |field: &str| {
        if field.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_owned()
        }
    };
    let mut out = String::new();
    out.push_str(&HEADERS.iter().map(|h| quote(h)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    for row in rows {
        out.push_str(&cells(row).iter().map(|c| quote(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// An OpenDocument spreadsheet: text cells for the names and addresses, date cells shown `DD/MM/YY`, amount
/// cells as numbers shown with 2 decimals.
pub fn ods(rows: &[Row]) -> std::io::Result<Vec<u8>> {
    let mut content = String::from(concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" "#,
        r#"xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" "#,
        r#"xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" "#,
        r#"xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" "#,
        r#"xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0" office:version="1.2">"#,
        r#"<office:automatic-styles>"#,
        r#"<number:date-style style:name="N1"><number:day number:style="long"/><number:text>/</number:text>"#,
        r#"<number:month number:style="long"/><number:text>/</number:text><number:year/></number:date-style>"#,
        r#"<number:number-style style:name="N2"><number:number number:decimal-places="2" "#,
        r#"number:min-decimal-places="2" number:min-integer-digits="1"/></number:number-style>"#,
        r#"<style:style style:name="date" style:family="table-cell" style:data-style-name="N1"/>"#,
        r#"<style:style style:name="amount" style:family="table-cell" style:data-style-name="N2"/>"#,
        r#"</office:automatic-styles>"#,
        r#"<office:body><office:spreadsheet><table:table table:name="Donations">"#,
    ));
    let text_cell = |value: &str| {
        if value.is_empty() {
            "<table:table-cell/>".to_owned()
        } else {
            format!(
                r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
                xml_escape(value)
            )
        }
    };
    content.push_str("<table:table-row>");
    for header in HEADERS {
        content.push_str(&text_cell(header));
    }
    content.push_str("</table:table-row>");
    for row in rows {
        let cells = cells(row);
        content.push_str("<table:table-row>");
        for cell in &cells[..7] {
            content.push_str(&text_cell(cell));
        }
        content.push_str(&format!(
            r#"<table:table-cell table:style-name="date" office:value-type="date" office:date-value="{}"><text:p>{}</text:p></table:table-cell>"#,
            row.date.format("%Y-%m-%d"),
            cells[7]
        ));
        content.push_str(&format!(
            r#"<table:table-cell table:style-name="amount" office:value-type="float" office:value="{}"><text:p>{}</text:p></table:table-cell>"#,
            cells[8], cells[8]
        ));
        content.push_str("</table:table-row>");
    }
    content.push_str("</table:table></office:spreadsheet></office:body></office:document-content>");

    let manifest = concat!(
        r#"<?xml version="1.0" encoding="UTF-8"?>"#,
        r#"<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">"#,
        r#"<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>"#,
        r#"<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>"#,
        r#"</manifest:manifest>"#,
    );
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        // The mimetype comes first and uncompressed, so tools can tell the format from the first bytes.
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("mimetype", stored).map_err(std::io::Error::other)?;
        zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")?;
        zip.start_file("META-INF/manifest.xml", deflated).map_err(std::io::Error::other)?;
        zip.write_all(manifest.as_bytes())?;
        zip.start_file("content.xml", deflated).map_err(std::io::Error::other)?;
        zip.write_all(content.as_bytes())?;
        zip.finish().map_err(std::io::Error::other)?;
    }
    Ok(buffer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn donation(amount_minor: i64, day: &str) -> Donation {
        Donation {
            title: Some("Mrs.".into()),
            first_name: Some("Zoë-Ann".into()),
            last_name: "O’Brien-Smith".into(),
            house: "12A".into(),
            postcode: "sw1a1aa".into(),
            date: d(day),
            amount_minor,
            sponsored: false,
        }
    }

    #[test]
    fn names_titles_postcodes_dates_and_amounts_follow_hmrc() {
        assert_eq!(title(Some("Mrs.")), "Mrs");
        assert_eq!(title(Some("Reverend")), "");
        assert_eq!(title(Some("Dr")), "Dr");
        assert_eq!(name("Zoë-Ann"), "Zoe-Ann");
        assert_eq!(name("O’Brien  Smith 3rd!"), "O'Brien Smith rd");
        assert_eq!(name("Ångström Æsir Łukasz"), "Angstrom AEsir Lukasz");
        assert_eq!(name(&"a".repeat(50)).len(), 35);
        assert_eq!(postcode("sw1a1aa"), "SW1A 1AA");
        assert_eq!(postcode("M1   1AE"), "M1 1AE");
        assert_eq!(date(d("2025-04-06")), "06/04/25");
        assert_eq!((amount(2500), amount(5), amount(100_001)), ("25.00".into(), "0.05".into(), "1000.01".into()));
    }

    #[test]
    fn small_donations_are_aggregated_into_lines_of_at_most_1000_pounds() {
        // 120 donations of £10 (£1,200): one line of £1,000 (100 gifts) and one of £200 (20 gifts); two bigger
        // ones stay on their own rows with names.
        let mut donations: Vec<Donation> =
            (0..120).map(|i| donation(1000, if i < 100 { "2025-01-01" } else { "2025-02-01" })).collect();
        donations.push(donation(2001, "2025-01-15"));
        donations.push(Donation { sponsored: true, ..donation(500, "2025-01-20") });
        let rows = rows(donations, DEFAULT_AGGREGATE_UP_TO_MINOR);
        let aggregated: Vec<&Row> = rows.iter().filter(|r| !r.aggregated.is_empty()).collect();
        assert_eq!(aggregated.len(), 2);
        assert_eq!((aggregated[0].amount_minor, aggregated[1].amount_minor), (100_000, 20_000));
        assert_eq!(aggregated[0].aggregated, "Small donations: 100 gifts");
        assert!(aggregated.iter().all(|r| r.last_name.is_empty() && r.house.is_empty() && r.postcode.is_empty()));
        assert!(aggregated.iter().all(|r| r.aggregated.len() <= 35));
        assert_eq!(aggregated[1].date, d("2025-02-01"), "dated on its last donation");
        let named: Vec<&Row> = rows.iter().filter(|r| r.aggregated.is_empty()).collect();
        assert_eq!(named.len(), 2, "over the threshold, and sponsored, stay named");
        assert!(named.iter().any(|r| r.sponsored && r.amount_minor == 500));
        assert_eq!(named[0].last_name, "O'Brien-Smith");
        assert_eq!(rows.iter().map(|r| r.amount_minor).sum::<i64>(), 120 * 1000 + 2001 + 500, "nothing lost");
        assert!(rows.windows(2).all(|w| w[0].date <= w[1].date), "in date order");
        // Threshold 0: nothing aggregated.
        assert!(super::rows(vec![donation(100, "2025-01-01")], 0).iter().all(|r| r.aggregated.is_empty()));
    }

    #[test]
    fn more_than_1000_rows_make_several_files() {
        let rows = rows((0..2500).map(|_| donation(5000, "2025-03-01")).collect(), DEFAULT_AGGREGATE_UP_TO_MINOR);
        let files = split(&rows);
        assert_eq!(files.iter().map(|f| f.len()).collect::<Vec<_>>(), [1000, 1000, 500]);
    }

    #[test]
    fn csv_and_ods_carry_the_same_cells() {
        let rows = rows(
            vec![
                donation(2500, "2025-04-06"),
                Donation { last_name: "Smith, Jr".into(), ..donation(3000, "2025-04-07") },
            ],
            0,
        );
        let text = String::from_utf8(csv(&rows)).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "Title,First name or initial,Last name,House name or number,Postcode,Aggregated donations,Sponsored event,Donation date,Amount"
        );
        assert_eq!(lines[1], "Mrs,Zoe-Ann,O'Brien-Smith,12A,SW1A 1AA,,,06/04/25,25.00");
        assert_eq!(lines[2], "Mrs,Zoe-Ann,Smith Jr,12A,SW1A 1AA,,,07/04/25,30.00", "the comma is not a name character");
        let ods = ods(&rows).unwrap();
        assert_eq!(&ods[30..38], b"mimetype");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(ods)).unwrap();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("content.xml").unwrap(), &mut content).unwrap();
        assert!(content.contains(r#"office:date-value="2025-04-06""#));
        assert!(content.contains(r#"office:value="25.00""#));
        assert!(content.contains("<text:p>O'Brien-Smith</text:p>"));
    }
}
