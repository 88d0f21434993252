//! HMRC's Gift Aid schedule: the rows a claim becomes, with HMRC's rules for each field, and the files (ODS, the
//! spreadsheet Charities Online accepts, and CSV, for people) they are written to. Pure: no I/O.
//!
//! HMRC's validator (Charities Online) reads the first sheet of an ODS file of under 250 KB, whose name must start
//! with `R68GAD_V1_00_0`: the earliest donation date in D13 (`DD/MM/YY`, required), an optional previously
//! over-claimed amount in D17, and donations in rows 25 to 1024, columns B to K (item number 1 to 1,000, title,
//! first name, last name, house name or number, postcode, aggregated donations, sponsored event, date, amount).
//! Every cell it reads loses its characters outside Latin-1 first, so names and addresses are transliterated here
//! and a donor whose required cell would still be empty never reaches a schedule (eligibility excludes them).
//!
//! The rules, each applied here so that HMRC's checks find nothing to refuse:
//! - title: `^[A-Za-z][A-Za-z'-]{1,3}$` after full stops are dropped (`Mr.` gives `Mr`), else left empty;
//! - first and last name: letters (accents removed), spaces, hyphens and apostrophes, at most 35 characters; a
//!   double-barrelled last name with a space for its hyphen (`Smith Jones`);
//! - house name or number: at most 40 characters; postcode: HMRC's pattern, upper case with one space, or `X` for
//!   a donor living abroad;
//! - donation date `DD/MM/YY`; amount without `£` and with 2 decimals;
//! - donations up to the small-donation threshold (£20 by default) aggregated, in date order, into lines of at most
//!   £1,000 with a description (at most 35 characters), no name and no address, dated on their last donation;
//! - at most 1,000 rows and 250 KB a file: a longer schedule is split into several files.

use chrono::NaiveDate;
use regex::Regex;
use std::io::Write;
use std::sync::LazyLock;

/// Most rows HMRC accepts in one schedule file.
pub const MAX_ROWS_PER_FILE: usize = 1000;
/// HMRC's upload limit: files must be under 250 KB.
pub const MAX_FILE_BYTES: usize = 250 * 1024;
/// Largest aggregated line, in pence (£1,000).
pub const MAX_AGGREGATE_MINOR: i64 = 100_000;
/// Default small-donation threshold, in pence (£20).
pub const DEFAULT_AGGREGATE_UP_TO_MINOR: i64 = 2000;
/// The first sheet's name: HMRC's validator refuses a file whose first sheet's name does not start with it.
pub const SHEET_NAME: &str = "R68GAD_V1_00_0";
/// The row (1-based) of the earliest donation date, in column D.
pub const EARLIEST_DATE_ROW: usize = 13;
/// The row (1-based) of the previously over-claimed amount, in column D (left empty).
pub const OVERCLAIMED_ROW: usize = 17;
/// The row (1-based) of the first donation; donations fill columns B to K.
pub const FIRST_DONATION_ROW: usize = 25;
/// HMRC's postcode for a donor who lives outside the UK.
pub const OVERSEAS_POSTCODE: &str = "X";
/// Longest name HMRC takes.
pub const MAX_NAME: usize = 35;
/// Longest house name or number HMRC takes.
pub const MAX_HOUSE: usize = 40;

/// HMRC's title pattern.
pub static TITLE_PATTERN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z'-]{1,3}$").expect("a valid pattern"));

/// HMRC's UK postcode pattern (its alternatives anchored as a whole, as HMRC's full match does).
pub static POSTCODE_PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(GIR 0AA)|((([A-Z][0-9][0-9]?)|(([A-Z][A-HJ-Y][0-9][0-9]?)|(([A-Z][0-9][A-Z])|([A-Z][A-HJ-Y][0-9]?[A-Z])))) [0-9][A-Z]{2}))$",
    )
    .expect("a valid pattern")
});

/// A donor as HMRC's schedule shows them, every field already in HMRC's form. Kept with each claim gift, so the
/// schedule does not change when the donor is edited later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleDonor {
    pub title: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub house: String,
    /// `None` for a donor living outside the UK (HMRC's `X`).
    pub postcode: Option<String>,
}

/// A donation as the schedule needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Donation {
    pub donor: ScheduleDonor,
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
    /// The donation's date; for an aggregated line, its last donation's.
    pub date: NaiveDate,
    /// The earliest donation the row stands for (an aggregated line's first).
    pub earliest: NaiveDate,
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

/// HMRC's title: full stops dropped (`Mr.` gives `Mr`), accents removed, and kept only if it matches HMRC's
/// pattern (2 to 4 letters, hyphens or apostrophes, starting with a letter); anything else is left out.
pub fn title(raw: Option<&str>) -> Option<String> {
    let cleaned = name_characters(&raw.unwrap_or_default().replace('.', ""));
    TITLE_PATTERN.is_match(&cleaned).then_some(cleaned)
}

/// HMRC's first name: letters, spaces, hyphens and apostrophes; accents removed (`Zoë` gives `Zoe`), other
/// characters dropped, spaces collapsed, at most 35 characters. Empty when nothing is left.
pub fn first_name(raw: &str) -> String {
    name(raw)
}

/// HMRC's last name: as [`first_name`], with a double-barrelled name's hyphen written as a space
/// (`Smith-Jones` gives `Smith Jones`), as HMRC's schedule guidance asks.
pub fn last_name(raw: &str) -> String {
    name(&raw.replace(['-', '–', '—'], " "))
}

fn name(raw: &str) -> String {
    name_characters(raw).chars().take(MAX_NAME).collect::<String>().trim_end().to_owned()
}

fn name_characters(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in plain(raw).chars() {
        if c.is_ascii_alphabetic() || c == '-' || c == '\'' {
            out.push(c);
        } else if c == ' ' && !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim().to_owned()
}

/// HMRC's house name or number: printable characters in plain Latin letters (see [`plain`]), at most 40.
pub fn house(raw: &str) -> String {
    plain(raw).chars().take(MAX_HOUSE).collect::<String>().trim().to_owned()
}

/// Text in printable ASCII: letters with diacritics and ligatures spelled in plain letters (`Tŷ` gives `Ty`),
/// curly quotes and dashes straightened, whitespace collapsed to one space, every other character dropped. HMRC's
/// validator deletes whatever is outside Latin-1; this leaves it nothing to delete.
pub fn plain(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = match c {
            '’' | '‘' | '`' | 'ʼ' => '\'',
            '–' | '—' | '‐' => '-',
            _ => c,
        };
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else if c.is_ascii_graphic() {
            out.push(c);
        } else if let Some(letters) = unaccented(c) {
            out.push_str(letters);
        }
    }
    out.trim().to_owned()
}

/// Latin letters with diacritics, and a few ligatures and letters of their own, as plain letters.
fn unaccented(c: char) -> Option<&'static str> {
    Some(match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'Æ' => "AE",
        'æ' => "ae",
        'Ç' | 'Ć' | 'Ĉ' | 'Ċ' | 'Č' => "C",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'Ð' | 'Ď' | 'Đ' => "D",
        'ð' | 'ď' | 'đ' => "d",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ĕ' | 'Ė' | 'Ę' | 'Ě' => "E",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'Ĝ' | 'Ğ' | 'Ġ' | 'Ģ' => "G",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'Ĥ' | 'Ħ' => "H",
        'ĥ' | 'ħ' => "h",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ĩ' | 'Ī' | 'Ĭ' | 'Į' | 'İ' => "I",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'Ĵ' => "J",
        'ĵ' => "j",
        'Ķ' => "K",
        'ķ' => "k",
        'Ĺ' | 'Ļ' | 'Ľ' | 'Ŀ' | 'Ł' => "L",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'Ñ' | 'Ń' | 'Ņ' | 'Ň' => "N",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ŏ' | 'Ő' => "O",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'Œ' => "OE",
        'œ' => "oe",
        'Ŕ' | 'Ŗ' | 'Ř' => "R",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'Ś' | 'Ŝ' | 'Ş' | 'Š' | 'Ș' => "S",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'Ţ' | 'Ť' | 'Ț' => "T",
        'ţ' | 'ť' | 'ț' => "t",
        'Þ' => "Th",
        'þ' => "th",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ũ' | 'Ū' | 'Ŭ' | 'Ů' | 'Ű' | 'Ų' => "U",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'Ŵ' | 'Ẁ' | 'Ẃ' | 'Ẅ' => "W",
        'ŵ' | 'ẁ' | 'ẃ' | 'ẅ' => "w",
        'Ý' | 'Ŷ' | 'Ÿ' | 'Ỳ' => "Y",
        'ý' | 'ŷ' | 'ÿ' | 'ỳ' => "y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

/// A UK postcode as HMRC wants it: upper case, one space before the last three characters; `None` unless it then
/// matches HMRC's pattern.
pub fn postcode(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    if compact.len() <= 3 || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let formatted = format!("{outward} {inward}");
    POSTCODE_PATTERN.is_match(&formatted).then_some(formatted)
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
    donations.sort_by(|a, b| a.date.cmp(&b.date).then(a.donor.last_name.cmp(&b.donor.last_name)));
    let (small, single): (Vec<Donation>, Vec<Donation>) =
        donations.into_iter().partition(|d| !d.sponsored && d.amount_minor <= aggregate_up_to_minor);
    let mut rows: Vec<Row> = single
        .into_iter()
        .map(|d| Row {
            title: d.donor.title.unwrap_or_default(),
            first_name: d.donor.first_name,
            last_name: d.donor.last_name,
            house: d.donor.house,
            postcode: d.donor.postcode.unwrap_or_else(|| OVERSEAS_POSTCODE.to_owned()),
            aggregated: String::new(),
            sponsored: d.sponsored,
            date: d.date,
            earliest: d.date,
            amount_minor: d.amount_minor,
        })
        .collect();
    // (total, count, first date, last date) of the line being filled.
    let mut line: Option<(i64, usize, NaiveDate, NaiveDate)> = None;
    let flush = |line: (i64, usize, NaiveDate, NaiveDate), rows: &mut Vec<Row>| {
        let (total, count, first, last) = line;
        rows.push(Row {
            title: String::new(),
            first_name: String::new(),
            last_name: String::new(),
            house: String::new(),
            postcode: String::new(),
            aggregated: format!("Small donations: {count} gifts"),
            sponsored: false,
            date: last,
            earliest: first,
            amount_minor: total,
        });
    };
    for d in small {
        line = match line {
            Some((total, count, first, _)) if total + d.amount_minor <= MAX_AGGREGATE_MINOR => {
                Some((total + d.amount_minor, count + 1, first, d.date))
            }
            Some(full) => {
                flush(full, &mut rows);
                Some((d.amount_minor, 1, d.date, d.date))
            }
            None => Some((d.amount_minor, 1, d.date, d.date)),
        };
    }
    if let Some(last) = line {
        flush(last, &mut rows);
    }
    rows.sort_by_key(|r| r.date);
    rows
}

/// The rows as files of at most [`MAX_ROWS_PER_FILE`] rows each (for CSV, which has no size limit).
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

/// CSV (RFC 4180, CRLF), headers first: the schedule's columns for people to read (HMRC takes only the ODS).
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

const EMPTY_CELL: &str = "<table:table-cell/>";

fn text_cell(value: &str) -> String {
    if value.is_empty() {
        EMPTY_CELL.to_owned()
    } else {
        format!(
            r#"<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>"#,
            xml_escape(value)
        )
    }
}

fn date_cell(d: NaiveDate) -> String {
    format!(
        r#"<table:table-cell table:style-name="date" office:value-type="date" office:date-value="{}"><text:p>{}</text:p></table:table-cell>"#,
        d.format("%Y-%m-%d"),
        date(d)
    )
}

/// `count` empty rows.
fn empty_rows(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => format!("<table:table-row>{EMPTY_CELL}</table:table-row>"),
        n => format!(r#"<table:table-row table:number-rows-repeated="{n}">{EMPTY_CELL}</table:table-row>"#),
    }
}

/// A row whose cells are written one element each (no repetition), so that HMRC's reader, which counts cell
/// elements to find D13 and D17, finds them where a spreadsheet shows them.
fn literal_row(cells: &[String]) -> String {
    format!("<table:table-row>{}</table:table-row>", cells.concat())
}

/// One schedule file in HMRC's layout (see the module documentation): at most [`MAX_ROWS_PER_FILE`] rows,
/// numbered from 1 in column B. Text cells for the names and addresses, date cells shown `DD/MM/YY`, amount cells
/// as numbers shown with 2 decimals.
pub fn ods(rows: &[Row]) -> std::io::Result<Vec<u8>> {
    if rows.len() > MAX_ROWS_PER_FILE {
        return Err(std::io::Error::other(format!("{} rows: HMRC takes at most {MAX_ROWS_PER_FILE}", rows.len())));
    }
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
        r#"<office:body><office:spreadsheet>"#,
    ));
    content.push_str(&format!(r#"<table:table table:name="{SHEET_NAME}">"#));
    let empty = || EMPTY_CELL.to_owned();
    // Rows 1 to 24: a title, the earliest donation date (D13), the over-claimed amount (D17, none), the headings.
    content.push_str(&literal_row(&[empty(), text_cell("Gift Aid schedule")]));
    content.push_str(&empty_rows(EARLIEST_DATE_ROW - 2));
    let earliest = rows.iter().map(|r| r.earliest).min();
    content.push_str(&literal_row(&[
        empty(),
        text_cell("Earliest donation date in the period of claim (DD/MM/YY)"),
        empty(),
        earliest.map(date_cell).unwrap_or_else(empty),
    ]));
    content.push_str(&empty_rows(OVERCLAIMED_ROW - EARLIEST_DATE_ROW - 1));
    content.push_str(&literal_row(&[empty(), text_cell("Previously over-claimed amount"), empty(), empty()]));
    content.push_str(&empty_rows(FIRST_DONATION_ROW - OVERCLAIMED_ROW - 2));
    let mut headings = vec![empty(), text_cell("Item")];
    headings.extend(HEADERS.iter().map(|h| text_cell(h)));
    content.push_str(&literal_row(&headings));
    // Rows 25 on: the donations, numbered 1 to 1,000 in column B.
    for (index, row) in rows.iter().enumerate() {
        let cells = cells(row);
        let item = index + 1;
        content.push_str("<table:table-row>");
        content.push_str(EMPTY_CELL);
        content.push_str(&format!(
            r#"<table:table-cell office:value-type="float" office:value="{item}"><text:p>{item}</text:p></table:table-cell>"#
        ));
        for cell in &cells[..7] {
            content.push_str(&text_cell(cell));
        }
        content.push_str(&date_cell(row.date));
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

/// The schedule as ODS files HMRC accepts: at most `max_rows` rows (≤ [`MAX_ROWS_PER_FILE`]) and under `max_bytes`
/// each; a part that comes out too large is halved until it fits. Returns each file's rows and content.
pub fn ods_files(rows: &[Row], max_rows: usize, max_bytes: usize) -> std::io::Result<Vec<(&[Row], Vec<u8>)>> {
    let mut files = Vec::new();
    let mut pending: Vec<&[Row]> = rows.chunks(max_rows.clamp(1, MAX_ROWS_PER_FILE)).rev().collect();
    while let Some(part) = pending.pop() {
        let content = ods(part)?;
        if content.len() < max_bytes {
            files.push((part, content));
        } else if part.len() > 1 {
            let (first, second) = part.split_at(part.len() / 2);
            pending.push(second);
            pending.push(first);
        } else {
            return Err(std::io::Error::other(format!("one row makes a file of {} bytes", content.len())));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn donor() -> ScheduleDonor {
        ScheduleDonor {
            title: title(Some("Mrs.")),
            first_name: first_name("Zoë-Ann"),
            last_name: last_name("O’Brien-Smith"),
            house: house("12A"),
            postcode: postcode("sw1a1aa"),
        }
    }

    fn donation(amount_minor: i64, day: &str) -> Donation {
        Donation { donor: donor(), date: d(day), amount_minor, sponsored: false }
    }

    #[test]
    fn titles_follow_hmrcs_pattern_or_are_left_out() {
        assert_eq!(title(Some("Mr.")).as_deref(), Some("Mr"));
        assert_eq!(title(Some("Mrs.")).as_deref(), Some("Mrs"));
        assert_eq!(title(Some("Dr")).as_deref(), Some("Dr"));
        assert_eq!(title(Some("Miss")).as_deref(), Some("Miss"));
        assert_eq!(title(Some("Mme")).as_deref(), Some("Mme"));
        assert_eq!(title(Some("M")), None, "one letter");
        assert_eq!(title(Some("Reverend")), None, "longer than 4");
        assert_eq!(title(Some("Prof.")).as_deref(), Some("Prof"));
        assert_eq!(title(Some("Sir Dr")), None, "a space is not in HMRC's pattern");
        assert_eq!(title(Some("-Mr")), None, "must start with a letter");
        assert_eq!(title(None), None);
        for raw in ["Mr.", "Mrs", "Ms", "Dr.", "Miss", "Lady", "Revd", "Fr", "Mx", "Lord", "Sr"] {
            if let Some(t) = title(Some(raw)) {
                assert!(TITLE_PATTERN.is_match(&t), "{t}");
            }
        }
    }

    #[test]
    fn names_are_transliterated_and_double_barrelled_last_names_take_a_space() {
        assert_eq!(first_name("Zoë-Ann"), "Zoe-Ann");
        assert_eq!(last_name("Smith-Jones"), "Smith Jones");
        assert_eq!(last_name("O’Brien-Smith"), "O'Brien Smith");
        assert_eq!(last_name("O’Neill  3rd!"), "O'Neill rd");
        assert_eq!(first_name("Ångström Æsir Łukasz Þór"), "Angstrom AEsir Lukasz Thor");
        assert_eq!(first_name(&"a".repeat(50)).len(), MAX_NAME);
        // A script with no Latin spelling leaves nothing: eligibility then excludes the donor.
        assert_eq!(first_name("李"), "");
        assert_eq!(first_name("  "), "");
    }

    #[test]
    fn houses_and_postcodes_follow_hmrc() {
        assert_eq!(house("Tŷ Gwyn"), "Ty Gwyn");
        assert_eq!(house(&"x".repeat(60)).len(), MAX_HOUSE);
        assert_eq!(house("★"), "");
        assert_eq!(postcode("sw1a1aa").as_deref(), Some("SW1A 1AA"));
        assert_eq!(postcode("M1   1AE").as_deref(), Some("M1 1AE"));
        assert_eq!(postcode("gir0aa").as_deref(), Some("GIR 0AA"));
        assert_eq!(postcode("90210"), None);
        assert_eq!(postcode("QI1 1AA"), None, "I is not a second letter HMRC takes");
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
        assert_eq!(aggregated[0].earliest, d("2025-01-01"));
        let named: Vec<&Row> = rows.iter().filter(|r| r.aggregated.is_empty()).collect();
        assert_eq!(named.len(), 2, "over the threshold, and sponsored, stay named");
        assert!(named.iter().any(|r| r.sponsored && r.amount_minor == 500));
        assert_eq!(named[0].last_name, "O'Brien Smith");
        assert_eq!(rows.iter().map(|r| r.amount_minor).sum::<i64>(), 120 * 1000 + 2001 + 500, "nothing lost");
        assert!(rows.windows(2).all(|w| w[0].date <= w[1].date), "in date order");
        // Threshold 0: nothing aggregated.
        assert!(super::rows(vec![donation(100, "2025-01-01")], 0).iter().all(|r| r.aggregated.is_empty()));
    }

    #[test]
    fn an_overseas_donor_has_x_for_a_postcode() {
        let abroad = Donation { donor: ScheduleDonor { postcode: None, ..donor() }, ..donation(5000, "2025-03-01") };
        let rows = rows(vec![abroad], 0);
        assert_eq!((rows[0].house.as_str(), rows[0].postcode.as_str()), ("12A", "X"));
    }

    #[test]
    fn more_than_1000_rows_make_several_files_and_large_files_are_halved() {
        let rows = rows((0..2500).map(|_| donation(5000, "2025-03-01")).collect(), DEFAULT_AGGREGATE_UP_TO_MINOR);
        assert_eq!(split(&rows).iter().map(|f| f.len()).collect::<Vec<_>>(), [1000, 1000, 500]);
        let files = ods_files(&rows, MAX_ROWS_PER_FILE, MAX_FILE_BYTES).unwrap();
        assert_eq!(files.iter().map(|f| f.0.len()).collect::<Vec<_>>(), [1000, 1000, 500]);
        assert!(files.iter().all(|f| f.1.len() < MAX_FILE_BYTES));
        // With a smaller size limit, each part is halved until it fits, the rows kept in order.
        let ten = ods(&rows[..10]).unwrap().len();
        let small = ods_files(&rows[..10], MAX_ROWS_PER_FILE, ten).unwrap();
        assert_eq!(small.iter().map(|f| f.0.len()).collect::<Vec<_>>(), [5, 5]);
        assert!(small.iter().all(|f| f.1.len() < ten));
        assert!(ods(&rows[..1001]).is_err(), "never more than 1,000 rows in a file");
    }

    #[test]
    fn the_ods_is_hmrcs_layout() {
        let rows = rows(
            vec![
                donation(2500, "2025-04-06"),
                Donation {
                    donor: ScheduleDonor { last_name: last_name("Smith, Jr"), ..donor() },
                    ..donation(3000, "2025-04-07")
                },
            ],
            0,
        );
        let text = String::from_utf8(csv(&rows)).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "Title,First name or initial,Last name,House name or number,Postcode,Aggregated donations,Sponsored event,Donation date,Amount"
        );
        assert_eq!(lines[1], "Mrs,Zoe-Ann,O'Brien Smith,12A,SW1A 1AA,,,06/04/25,25.00");
        assert_eq!(lines[2], "Mrs,Zoe-Ann,Smith Jr,12A,SW1A 1AA,,,07/04/25,30.00", "the comma is not a name character");
        let ods = ods(&rows).unwrap();
        assert_eq!(&ods[30..38], b"mimetype");
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(ods)).unwrap();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("content.xml").unwrap(), &mut content).unwrap();
        // The first (only) sheet is HMRC's; D13 is the 4th cell element of the 13th row.
        assert_eq!(content.matches("<table:table ").count(), 1);
        assert!(content.contains(r#"<table:table table:name="R68GAD_V1_00_0">"#));
        let body = &content[content.find("<table:table ").unwrap()..];
        let mut row_number = 0;
        let mut d13 = None;
        let mut first_donation = None;
        for row in body.split("<table:table-row").skip(1) {
            let repeated = row
                .strip_prefix(r#" table:number-rows-repeated=""#)
                .and_then(|r| r.split('"').next())
                .map_or(1, |n| n.parse::<usize>().unwrap());
            row_number += repeated;
            let cells: Vec<&str> = row.split("<table:table-cell").skip(1).collect();
            if row_number == EARLIEST_DATE_ROW {
                d13 = Some(cells[3].to_owned());
            }
            if row_number == FIRST_DONATION_ROW {
                first_donation = Some(cells.iter().map(|c| c.to_string()).collect::<Vec<_>>());
            }
        }
        assert!(d13.unwrap().contains(r#"office:date-value="2025-04-06"><text:p>06/04/25<"#));
        let first = first_donation.unwrap();
        assert!(first[1].contains("<text:p>1</text:p>"), "B25 is item 1");
        assert!(first[4].contains("<text:p>O'Brien Smith</text:p>"), "E25 is the last name");
        assert!(first[10].contains(r#"office:value="25.00""#), "K25 is the amount");
    }
}
