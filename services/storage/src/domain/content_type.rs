//! The content types the service accepts, and how a file's first bytes prove it is one. A type the service
//! cannot check is not accepted at all: a policy can narrow this list, never widen it.

use std::fmt;

/// How many leading bytes [`FileKind::matches`] needs; fewer is fine for a shorter file.
pub const SNIFF_BYTES: usize = 512;

/// A content type the service can check by its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Pdf,
    Png,
    Jpeg,
    Gif,
    Webp,
    Csv,
    PlainText,
    Json,
    Zip,
    Xlsx,
    Ods,
}

impl FileKind {
    pub const ALL: [FileKind; 11] = [
        FileKind::Pdf,
        FileKind::Png,
        FileKind::Jpeg,
        FileKind::Gif,
        FileKind::Webp,
        FileKind::Csv,
        FileKind::PlainText,
        FileKind::Json,
        FileKind::Zip,
        FileKind::Xlsx,
        FileKind::Ods,
    ];

    pub const fn mime(self) -> &'static str {
        match self {
            FileKind::Pdf => "application/pdf",
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Gif => "image/gif",
            FileKind::Webp => "image/webp",
            FileKind::Csv => "text/csv",
            FileKind::PlainText => "text/plain",
            FileKind::Json => "application/json",
            FileKind::Zip => "application/zip",
            FileKind::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            FileKind::Ods => "application/vnd.oasis.opendocument.spreadsheet",
        }
    }

    /// Parses a `Content-Type` value: case-insensitive, parameters (`; charset=utf-8`) ignored.
    pub fn parse(raw: &str) -> Result<Self, UnknownType> {
        let essence = raw.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        FileKind::ALL.into_iter().find(|k| k.mime() == essence).ok_or(UnknownType(essence))
    }

    /// Whether `head`, the file's first bytes (up to [`SNIFF_BYTES`]; all of it when shorter), is what a file of
    /// this kind starts with. Whatever the declared kind, an executable or script is never one.
    pub fn matches(self, head: &[u8], whole_file: bool) -> bool {
        if is_executable(head) {
            return false;
        }
        match self {
            FileKind::Pdf => head.starts_with(b"%PDF-"),
            FileKind::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            FileKind::Jpeg => head.starts_with(&[0xFF, 0xD8, 0xFF]),
            FileKind::Gif => head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
            FileKind::Webp => head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP",
            FileKind::Csv | FileKind::PlainText => is_text(head, whole_file),
            FileKind::Json => {
                is_text(head, whole_file)
                    && strip_bom(head)
                        .iter()
                        .find(|b| !b.is_ascii_whitespace())
                        .is_some_and(|b| b"{[\"-0123456789tfn".contains(b))
            }
            FileKind::Zip => is_zip(head),
            // An OOXML workbook is a zip whose first entries are `[Content_Types].xml` or `_rels/`, `xl/`,
            // `docProps/`: the name of the first entry is enough to tell it from any other zip.
            FileKind::Xlsx => is_zip(head) && zip_first_name(head).is_some_and(is_ooxml_entry),
            // OpenDocument puts an uncompressed `mimetype` entry first, holding the type itself.
            FileKind::Ods => {
                is_zip(head)
                    && zip_first_name(head) == Some(b"mimetype".as_slice())
                    && head.get(38..).is_some_and(|rest| rest.starts_with(FileKind::Ods.mime().as_bytes()))
            }
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

/// A content type outside [`FileKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownType(pub String);

impl fmt::Display for UnknownType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a content type the service can check; accepted: {}", self.0, accepted_list())
    }
}

pub fn accepted_list() -> String {
    FileKind::ALL.iter().map(|k| k.mime()).collect::<Vec<_>>().join(", ")
}

fn is_executable(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
        || head.starts_with(b"MZ")
        || head.starts_with(b"#!")
        || [[0xFE, 0xED, 0xFA, 0xCE], [0xFE, 0xED, 0xFA, 0xCF], [0xCE, 0xFA, 0xED, 0xFE], [0xCF, 0xFA, 0xED, 0xFE]]
            .iter()
            .any(|magic| head.starts_with(magic))
        // Java class files and universal Mach-O binaries share this magic.
        || head.starts_with(&[0xCA, 0xFE, 0xBA, 0xBE])
        || head.starts_with(b"\0asm")
}

fn strip_bom(head: &[u8]) -> &[u8] {
    head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head)
}

/// UTF-8 without NUL or other control characters (tab, line feed, carriage return and form feed excepted).
/// When `head` is only the start of the file, a character cut at its end is forgiven.
fn is_text(head: &[u8], whole_file: bool) -> bool {
    let body = strip_bom(head);
    let valid = match std::str::from_utf8(body) {
        Ok(s) => s,
        Err(e) if !whole_file && e.error_len().is_none() => match std::str::from_utf8(&body[..e.valid_up_to()]) {
            Ok(s) => s,
            Err(_) => return false,
        },
        Err(_) => return false,
    };
    valid.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
}

/// The name of a zip's first local file entry (its header is 30 bytes, then the name).
fn zip_first_name(head: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_le_bytes([*head.get(26)?, *head.get(27)?]));
    head.get(30..30 + len)
}

fn is_ooxml_entry(name: &[u8]) -> bool {
    name == b"[Content_Types].xml"
        || [b"_rels/".as_slice(), b"xl/", b"docProps/"].iter().any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn zip_with_first(name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = b"PK\x03\x04".to_vec();
        v.extend_from_slice(&[0u8; 22]);
        v.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(name);
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_types_case_insensitively_without_parameters() {
        assert_eq!(FileKind::parse("Text/CSV; charset=utf-8"), Ok(FileKind::Csv));
        assert_eq!(FileKind::parse("image/png"), Ok(FileKind::Png));
        assert!(FileKind::parse("application/x-msdownload").is_err());
        assert!(FileKind::parse("").is_err());
    }

    #[test]
    fn each_kind_knows_its_magic() {
        assert!(FileKind::Pdf.matches(b"%PDF-1.7\n...", false));
        assert!(FileKind::Png.matches(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", false));
        assert!(FileKind::Jpeg.matches(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], false));
        assert!(FileKind::Gif.matches(b"GIF89a\x01\x00", false));
        assert!(FileKind::Webp.matches(b"RIFF\x24\0\0\0WEBPVP8 ", false));
        assert!(FileKind::Csv.matches(b"email,amount\nann@example.org,10.00\n", true));
        assert!(FileKind::Json.matches(b"  {\"a\": 1}", true));
        assert!(FileKind::Zip.matches(&zip_with_first(b"anything.txt", b""), false));
        assert!(FileKind::Xlsx.matches(&zip_with_first(b"[Content_Types].xml", b"<?xml"), false));
        let ods = zip_with_first(b"mimetype", FileKind::Ods.mime().as_bytes());
        assert!(FileKind::Ods.matches(&ods, false));
        assert!(!FileKind::Xlsx.matches(&ods, false));
        assert!(!FileKind::Ods.matches(&zip_with_first(b"[Content_Types].xml", b""), false));
    }

    #[test]
    fn an_executable_is_never_what_it_claims() {
        for exe in [b"MZ\x90\0\x03\0\0\0".as_slice(), b"\x7fELF\x02\x01\x01", b"#!/bin/sh\nrm -rf /\n"] {
            for kind in FileKind::ALL {
                assert!(!kind.matches(exe, true), "{kind} accepted {exe:?}");
            }
        }
    }

    #[test]
    fn a_png_is_not_a_pdf_nor_text() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert!(!FileKind::Pdf.matches(png, false));
        assert!(!FileKind::Csv.matches(png, false));
        assert!(!FileKind::Png.matches(b"%PDF-1.4", false));
    }

    #[test]
    fn text_may_be_cut_mid_character_only_when_the_file_goes_on() {
        let cut = "name\nZoë".as_bytes();
        let cut = &cut[..cut.len() - 1];
        assert!(FileKind::Csv.matches(cut, false));
        assert!(!FileKind::Csv.matches(cut, true));
        assert!(!FileKind::PlainText.matches(b"a\0b", true));
        assert!(FileKind::Csv.matches(b"\xEF\xBB\xBFname,amount\r\n", true));
    }

    proptest! {
        #[test]
        fn sniffing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), whole in any::<bool>()) {
            for kind in FileKind::ALL {
                let _ = kind.matches(&bytes, whole);
            }
        }

        #[test]
        fn parse_round_trips_every_kind(i in 0usize..11) {
            let kind = FileKind::ALL[i];
            prop_assert_eq!(FileKind::parse(&kind.mime().to_uppercase()), Ok(kind));
        }
    }
}
