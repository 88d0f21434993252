//! Twilio's SMS segment arithmetic: which encoding a body goes out in, what it costs in septets or UTF-16 code units,
//! how many segments Twilio bills for it, and whether Twilio's API would refuse it as too long.
//!
//! Pure and I/O-free: this module knows nothing of HTTP, storage or Twilio's API, so the console can preview a
//! message's cost as the writer types and the sender can budget a campaign with the same numbers.
//!
//! The rules, as Twilio's Messaging Segment Calculator applies them (open source as
//! `TwilioDevEd/message-segment-calculator`):
//!
//! - **Encoding.** A body goes out in GSM-7 when every character is in the GSM 7-bit default alphabet or its
//!   extension table (3GPP TS 23.038 §6.2.1 and §6.2.1.1); one character outside them turns the whole body into
//!   UCS-2. Twilio's table maps only the characters of the 3GPP table itself: no national shift tables, no
//!   look-alikes (U+2206 INCREMENT is not `Δ`, lower-case `ç` is not `Ç`), and no bare ESC (U+001B).
//! - **Cost.** GSM-7 counts septets: one per basic character, two per extension character (`^ { } \ [ ~ ] | €` and
//!   form feed) because each is sent as ESC plus a second septet. UCS-2 counts UTF-16 code units: one per character
//!   in the Basic Multilingual Plane (extension characters included), two per surrogate pair (most emoji).
//! - **Segments.** One SMS carries 140 octets: 160 septets or 70 UCS-2 units. A longer body is sent as concatenated
//!   parts, each giving 6 octets to the concatenation header (TS 23.040 §9.2.3.24.1), which leaves 153 septets or
//!   67 units per part. A part never ends in the middle of an escape pair or a surrogate pair: the whole character
//!   moves to the next part, so a long message can need one more part than `units / 153` (or `/ 67`) suggests.
//! - **Empty body.** Twilio's API refuses a message with neither body nor media, so an empty body is zero segments
//!   here rather than one: it costs nothing because it is never sent.
//! - **Length limit.** Twilio refuses a body over 1,600 characters (error 21617); see [`body_length`] for how we
//!   count them.
//!
//! One deliberate difference from the calculator: it never splits a grapheme cluster (a ZWJ family emoji, a flag,
//! a letter with combining accents) across parts, while this module keeps only surrogate pairs whole. Segmenting
//! graphemes needs Unicode's break-property tables, which std does not ship, and the two disagree only for a
//! multi-part UCS-2 message in which such a cluster straddles a part boundary, where we may count one part fewer.

use std::collections::HashSet;

/// The most characters Twilio accepts in one message body; see [`over_limit`].
pub const MAX_BODY_CHARACTERS: usize = 1600;

/// The character encoding Twilio picks for a body: GSM-7 whenever it can, because it fits more per segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// The name Twilio's console and calculator show for the encoding.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }

    /// Units a body may cost and still go out as one SMS with no concatenation header.
    #[must_use]
    pub const fn single_segment_units(self) -> usize {
        match self {
            Encoding::Gsm7 => 160,
            Encoding::Ucs2 => 70,
        }
    }

    /// Units left in each part of a concatenated message once the 6-octet header is paid for.
    #[must_use]
    pub const fn concatenated_part_units(self) -> usize {
        match self {
            Encoding::Gsm7 => 153,
            Encoding::Ucs2 => 67,
        }
    }
}

/// What a body costs to send: the result of [`count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentCount {
    pub encoding: Encoding,
    /// User-visible characters, counted as Unicode scalar values.
    pub characters: usize,
    /// Septets for GSM-7 (extension characters count two), UTF-16 code units for UCS-2.
    pub units: usize,
    /// Segments Twilio bills; zero only for the empty body, which is never sent.
    pub segments: usize,
    /// The capacity that applies to this message: 160 or 70 while it fits in one SMS, 153 or 67 once it is split.
    pub units_per_segment: usize,
}

/// How many GSM-7 septets `c` costs, or `None` when it is outside the GSM-7 alphabet and forces UCS-2.
///
/// One `match` rather than a lookup table so the compiler checks the arms for overlap and the alphabet reads as the
/// 3GPP table does.
const fn gsm7_septets(c: char) -> Option<usize> {
    match c {
        // TS 23.038 §6.2.1 default alphabet, in table order, without 0x1B (the escape to the extension table).
        '@' | '£' | '$' | '¥' | 'è' | 'é' | 'ù' | 'ì' | 'ò' | 'Ç' | '\n' | 'Ø' | 'ø' | '\r' | 'Å' | 'å' => {
            Some(1)
        }
        'Δ' | '_' | 'Φ' | 'Γ' | 'Λ' | 'Ω' | 'Π' | 'Ψ' | 'Σ' | 'Θ' | 'Ξ' | 'Æ' | 'æ' | 'ß' | 'É' => {
            Some(1)
        }
        // Space, `!`, `"` and `#`, then `¤` where ASCII has `$` (which the table moves to 0x02).
        ' '..='#' | '¤' | '%'..='?' => Some(1),
        '¡' | 'A'..='Z' | 'Ä' | 'Ö' | 'Ñ' | 'Ü' | '§' => Some(1),
        '¿' | 'a'..='z' | 'ä' | 'ö' | 'ñ' | 'ü' | 'à' => Some(1),
        // TS 23.038 §6.2.1.1 extension table: sent as ESC followed by a second septet.
        '\u{0C}' | '^' | '{' | '}' | '\\' | '[' | '~' | ']' | '|' | '€' => Some(2),
        _ => None,
    }
}

/// Whether `c` can be sent in GSM-7, from the basic alphabet or the extension table.
#[must_use]
pub const fn is_gsm7(c: char) -> bool {
    gsm7_septets(c).is_some()
}

/// The characters that force `body` into UCS-2, in order of first appearance and each once, so the console can list
/// what a writer would have to replace to get back to GSM-7's cheaper segments.
#[must_use]
pub fn non_gsm_characters(body: &str) -> Vec<char> {
    let mut seen = HashSet::new();
    body.chars().filter(|&c| !is_gsm7(c) && seen.insert(c)).collect()
}

/// Counts the encoding, units and segments Twilio would use for `body`.
#[must_use]
pub fn count(body: &str) -> SegmentCount {
    let characters = body.chars().count();
    let (encoding, (units, segments)) = if body.chars().all(is_gsm7) {
        // Every character has just passed `is_gsm7`, so the fallback price is never used.
        let septets = body.chars().map(|c| gsm7_septets(c).unwrap_or(0));
        (Encoding::Gsm7, pack(septets, Encoding::Gsm7))
    } else {
        (Encoding::Ucs2, pack(body.chars().map(char::len_utf16), Encoding::Ucs2))
    };
    let units_per_segment =
        if segments > 1 { encoding.concatenated_part_units() } else { encoding.single_segment_units() };
    SegmentCount { encoding, characters, units, segments, units_per_segment }
}

/// Sums the per-character costs and packs them into as few segments as the encoding allows, returning
/// `(units, segments)`.
///
/// Filling each part greedily and starting a new one when the next character does not fit is optimal here: the
/// parts are contiguous and the characters keep their order, so delaying a cut can never save one later.
fn pack(costs: impl Iterator<Item = usize> + Clone, encoding: Encoding) -> (usize, usize) {
    let units: usize = costs.clone().sum();
    if units == 0 {
        return (0, 0);
    }
    if units <= encoding.single_segment_units() {
        return (units, 1);
    }
    let capacity = encoding.concatenated_part_units();
    let mut segments = 1;
    let mut used = 0;
    for cost in costs {
        // A character costs at most 2 units, far below either capacity, so it always fits in a fresh part.
        if used + cost > capacity {
            segments += 1;
            used = 0;
        }
        used += cost;
    }
    (units, segments)
}

/// The length Twilio checks against [`MAX_BODY_CHARACTERS`]: UTF-16 code units, whatever the encoding.
///
/// Twilio documents the limit in "characters" without defining them. UTF-16 code units are what a JVM or
/// JavaScript string reports as its length, and they never undercount: they equal the Unicode scalar values for
/// every GSM-7 body and for most UCS-2 ones, and exceed them only by one per emoji or other supplementary-plane
/// character. Refusing a draft in our console that Twilio might have taken costs a writer an edit; accepting one
/// Twilio then refuses fails a send after the campaign is queued. Extension characters count once, not twice:
/// the limit is on characters, not on septets.
#[must_use]
pub fn body_length(body: &str) -> usize {
    body.encode_utf16().count()
}

/// Whether Twilio's API would refuse `body` as longer than [`MAX_BODY_CHARACTERS`], counted by [`body_length`].
#[must_use]
pub fn over_limit(body: &str) -> bool {
    body_length(body) > MAX_BODY_CHARACTERS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The TS 23.038 default alphabet written out independently of `gsm7_septets`, in table order from 0x00 to
    /// 0x7F without ESC, so the tests check the `match` against the standard rather than against itself.
    const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
        ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    /// The TS 23.038 extension table as Twilio maps it: form feed and the nine printable escapes.
    const GSM7_EXTENSION: &str = "\u{0C}^{}\\[~]|€";
    const FAMILY: &str = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}";

    fn repeat(s: &str, n: usize) -> String {
        s.repeat(n)
    }

    fn in_gsm7_table(c: char) -> bool {
        GSM7_BASIC.contains(c) || GSM7_EXTENSION.contains(c)
    }

    #[test]
    fn the_reference_alphabet_has_the_sizes_of_the_3gpp_tables() {
        assert_eq!(GSM7_BASIC.chars().count(), 127, "128 code points less ESC");
        assert_eq!(GSM7_EXTENSION.chars().count(), 10);
    }

    #[test]
    fn is_gsm7_matches_the_3gpp_table_over_all_of_unicode() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(is_gsm7(c), in_gsm7_table(c), "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn extension_characters_cost_two_septets_and_basic_ones_one() {
        for c in GSM7_BASIC.chars() {
            assert_eq!(gsm7_septets(c), Some(1), "{c:?}");
        }
        for c in GSM7_EXTENSION.chars() {
            assert_eq!(gsm7_septets(c), Some(2), "{c:?}");
        }
    }

    #[test]
    fn count_matches_the_table() {
        use Encoding::{Gsm7, Ucs2};
        let a = |n| repeat("a", n);
        let acute = |n| repeat("á", n);
        let cases: Vec<(&str, String, Encoding, usize, usize)> = vec![
            ("empty body is never sent, so costs nothing", String::new(), Gsm7, 0, 0),
            ("one character", a(1), Gsm7, 1, 1),
            ("exactly 160 GSM septets fit one SMS", a(160), Gsm7, 160, 1),
            ("161 GSM septets need two parts", a(161), Gsm7, 161, 2),
            ("306 GSM septets fill two parts of 153", a(306), Gsm7, 306, 2),
            ("307 GSM septets spill into a third part", a(307), Gsm7, 307, 3),
            ("459 GSM septets fill three parts", a(459), Gsm7, 459, 3),
            ("460 GSM septets spill into a fourth part", a(460), Gsm7, 460, 4),
            ("one extension character costs two septets", "€".into(), Gsm7, 2, 1),
            ("80 euro signs are exactly 160 septets", repeat("€", 80), Gsm7, 160, 1),
            ("81 euro signs are 162 septets", repeat("€", 81), Gsm7, 162, 2),
            ("158 a then euro is exactly 160 septets", a(158) + "€", Gsm7, 160, 1),
            ("159 a then euro is 161 septets", a(159) + "€", Gsm7, 161, 2),
            ("euro at septet 153 moves to part two", a(152) + "€" + &a(152), Gsm7, 306, 3),
            ("euro ending exactly at septet 153 stays", a(151) + "€" + &a(153), Gsm7, 306, 2),
            ("caret", "^".into(), Gsm7, 2, 1),
            ("left brace", "{".into(), Gsm7, 2, 1),
            ("right brace", "}".into(), Gsm7, 2, 1),
            ("backslash", "\\".into(), Gsm7, 2, 1),
            ("left bracket", "[".into(), Gsm7, 2, 1),
            ("tilde", "~".into(), Gsm7, 2, 1),
            ("right bracket", "]".into(), Gsm7, 2, 1),
            ("vertical bar", "|".into(), Gsm7, 2, 1),
            ("euro sign", "€".into(), Gsm7, 2, 1),
            ("form feed", "\u{0C}".into(), Gsm7, 2, 1),
            ("all ten extension characters", GSM7_EXTENSION.into(), Gsm7, 20, 1),
            ("the whole basic alphabet", GSM7_BASIC.into(), Gsm7, 127, 1),
            ("GSM accented letters stay GSM", "é ü Ñ".into(), Gsm7, 5, 1),
            ("currency and punctuation from the basic table", "@£$¥¤§¡¿".into(), Gsm7, 8, 1),
            ("Greek capitals in the GSM table", "ΔΩ".into(), Gsm7, 2, 1),
            ("newline and carriage return cost one each", "a\nb\rc".into(), Gsm7, 5, 1),
            ("a with acute is not GSM", "á".into(), Ucs2, 1, 1),
            ("lower-case c cedilla is not GSM", "ç".into(), Ucs2, 1, 1),
            ("e with circumflex is not GSM", "ê".into(), Ucs2, 1, 1),
            ("Greek lower case is not GSM", "αβ".into(), Ucs2, 2, 1),
            ("backtick is not GSM", "`".into(), Ucs2, 1, 1),
            ("tab is not GSM", "a\tb".into(), Ucs2, 3, 1),
            ("pasted no-break space is not GSM", "a\u{A0}b".into(), Ucs2, 3, 1),
            ("bare ESC is not mapped by Twilio", "\u{1B}".into(), Ucs2, 1, 1),
            ("curly quotes force UCS-2", "“Hi” it’s".into(), Ucs2, 9, 1),
            ("Cyrillic", "Привет".into(), Ucs2, 6, 1),
            ("Chinese", "你好世界".into(), Ucs2, 4, 1),
            ("exactly 70 UCS-2 units fit one SMS", acute(70), Ucs2, 70, 1),
            ("71 UCS-2 units need two parts", acute(71), Ucs2, 71, 2),
            ("134 UCS-2 units fill two parts of 67", acute(134), Ucs2, 134, 2),
            ("135 UCS-2 units spill into a third part", acute(135), Ucs2, 135, 3),
            ("an emoji is a surrogate pair of two units", "😀".into(), Ucs2, 2, 1),
            ("emoji ending exactly at unit 70", acute(68) + "😀", Ucs2, 70, 1),
            ("emoji crossing unit 70", acute(69) + "😀", Ucs2, 71, 2),
            ("emoji at unit 67 moves to part two", acute(66) + "😀" + &acute(66), Ucs2, 134, 3),
            ("emoji ending exactly at unit 67 stays", acute(65) + "😀" + &acute(67), Ucs2, 134, 2),
            ("extension characters cost one unit in UCS-2", "😀".to_owned() + &repeat("]", 68), Ucs2, 70, 1),
            ("one more bracket spills in UCS-2", "😀".to_owned() + &repeat("]", 69), Ucs2, 71, 2),
            ("one emoji turns a short message UCS-2", "Thanks for your gift to Almoner! 🎉".into(), Ucs2, 35, 1),
            ("one emoji turns one GSM segment into two", a(100) + "🎉", Ucs2, 102, 2),
            ("ZWJ family emoji is 11 UTF-16 units", FAMILY.into(), Ucs2, 11, 1),
            ("ZWJ family split only between surrogate pairs", acute(61) + FAMILY + &acute(62), Ucs2, 134, 2),
            ("1,600 GSM characters", a(1600), Gsm7, 1600, 11),
            ("1,600 UCS-2 characters", acute(1600), Ucs2, 1600, 24),
        ];
        assert!(cases.len() >= 45);
        for (description, body, encoding, units, segments) in cases {
            let counted = count(&body);
            assert_eq!(
                (counted.encoding, counted.units, counted.segments),
                (encoding, units, segments),
                "{description}"
            );
        }
    }

    #[test]
    fn count_reports_characters_and_the_capacity_that_applies() {
        let cases = [
            ("", 0, 160),
            ("hello", 5, 160),
            (&*repeat("€", 100), 100, 153),
            ("😀 hi", 4, 70),
            (&*repeat("😀", 40), 40, 67),
            (FAMILY, 7, 70),
        ];
        for (body, characters, units_per_segment) in cases {
            let counted = count(body);
            assert_eq!((counted.characters, counted.units_per_segment), (characters, units_per_segment), "{body:?}");
        }
    }

    #[test]
    fn encoding_names_are_the_ones_twilio_shows() {
        assert_eq!(Encoding::Gsm7.as_str(), "GSM-7");
        assert_eq!(Encoding::Ucs2.as_str(), "UCS-2");
    }

    #[test]
    fn non_gsm_characters_are_listed_once_in_order_of_appearance() {
        assert_eq!(non_gsm_characters("plain GSM [text] €5"), Vec::<char>::new());
        assert_eq!(non_gsm_characters("“Café” – ça va? “Oui”"), vec!['“', '”', '–', 'ç']);
        assert_eq!(non_gsm_characters("😀a😀b😀"), vec!['😀']);
        assert_eq!(non_gsm_characters(FAMILY), vec!['\u{1F468}', '\u{200D}', '\u{1F469}', '\u{1F467}', '\u{1F466}']);
    }

    #[test]
    fn the_body_limit_counts_utf16_code_units() {
        assert!(!over_limit(""));
        assert!(!over_limit(&repeat("a", 1600)));
        assert!(over_limit(&repeat("a", 1601)));
        assert!(!over_limit(&repeat("á", 1600)));
        assert!(over_limit(&repeat("á", 1601)));
        // 1,600 characters of 3,200 septets: the limit is on characters, not on septets.
        assert!(!over_limit(&repeat("€", 1600)));
        // 800 emoji are exactly 1,600 units; 801 are 801 scalar values but 1,602 units, so refused.
        assert!(!over_limit(&repeat("😀", 800)));
        assert!(over_limit(&repeat("😀", 801)));
        assert_eq!(body_length(FAMILY), 11);
    }

    /// Cuts a flat stream of units into parts the naive way, independently of `pack`: take the next `capacity`
    /// units and, if the cut falls inside a character, back it off to that character's first unit.
    /// `starts[i]` says whether unit `i` is the first unit of its character.
    fn naive_segments(starts: &[bool], single: usize, capacity: usize) -> usize {
        if starts.is_empty() {
            return 0;
        }
        if starts.len() <= single {
            return 1;
        }
        let (mut parts, mut start) = (0, 0);
        while start < starts.len() {
            let mut end = (start + capacity).min(starts.len());
            while end < starts.len() && !starts[end] {
                end -= 1;
            }
            parts += 1;
            start = end;
        }
        parts
    }

    /// Each character's cost in `body`'s encoding, from the reference table rather than from `gsm7_septets`.
    fn reference_costs(body: &str) -> Vec<usize> {
        if body.chars().all(in_gsm7_table) {
            body.chars().map(|c| if GSM7_EXTENSION.contains(c) { 2 } else { 1 }).collect()
        } else {
            body.chars().map(char::len_utf16).collect()
        }
    }

    fn unit_starts(costs: &[usize]) -> Vec<bool> {
        costs.iter().flat_map(|&cost| (0..cost).map(|i| i == 0)).collect()
    }

    /// The fewest contiguous parts holding `costs` with no character split, by dynamic programming over every
    /// possible cut, so the property below checks that greedy packing is minimal rather than assuming it.
    fn minimum_parts(costs: &[usize], capacity: usize) -> usize {
        let mut fewest = vec![usize::MAX; costs.len() + 1];
        fewest[0] = 0;
        for end in 1..=costs.len() {
            let mut load = 0;
            for start in (0..end).rev() {
                load += costs[start];
                if load > capacity {
                    break;
                }
                if fewest[start] != usize::MAX {
                    fewest[end] = fewest[end].min(fewest[start] + 1);
                }
            }
        }
        fewest[costs.len()]
    }

    fn gsm7_char() -> impl Strategy<Value = char> {
        let alphabet: Vec<char> = GSM7_BASIC.chars().chain(GSM7_EXTENSION.chars()).collect();
        prop::sample::select(alphabet)
    }

    fn non_gsm7_char() -> impl Strategy<Value = char> {
        let common = prop::sample::select(vec!['á', 'ç', 'ê', '“', '”', '’', '–', '\u{A0}', '😀', '🎉', 'П', '你']);
        prop_oneof![common, any::<char>().prop_filter("outside the GSM-7 table", |&c| !in_gsm7_table(c))]
    }

    fn gsm7_body() -> impl Strategy<Value = String> {
        prop::collection::vec(gsm7_char(), 0..700).prop_map(|chars| chars.into_iter().collect())
    }

    /// Mostly GSM-7 with the odd other character, so both encodings and both kinds of boundary get exercised.
    fn any_body() -> impl Strategy<Value = String> {
        let char = prop_oneof![6 => gsm7_char(), 1 => non_gsm7_char(), 1 => any::<char>()];
        prop_oneof![
            gsm7_body(),
            prop::collection::vec(char, 0..700).prop_map(|chars| chars.into_iter().collect()),
            prop::collection::vec(non_gsm7_char(), 0..300).prop_map(|chars| chars.into_iter().collect()),
        ]
    }

    proptest! {
        #[test]
        fn segments_match_a_naive_unit_cutter(body in any_body()) {
            let counted = count(&body);
            let starts = unit_starts(&reference_costs(&body));
            let expected = naive_segments(
                &starts,
                counted.encoding.single_segment_units(),
                counted.encoding.concatenated_part_units(),
            );
            prop_assert_eq!(counted.segments, expected);
        }

        #[test]
        fn segments_are_the_fewest_parts_that_hold_the_units(body in any_body()) {
            let counted = count(&body);
            let costs = reference_costs(&body);
            let expected = if counted.units <= counted.encoding.single_segment_units() {
                usize::from(!body.is_empty())
            } else {
                minimum_parts(&costs, counted.encoding.concatenated_part_units())
            };
            prop_assert_eq!(counted.segments, expected);
        }

        #[test]
        fn a_gsm7_only_body_is_never_ucs2(body in gsm7_body()) {
            let counted = count(&body);
            prop_assert_eq!(counted.encoding, Encoding::Gsm7);
            prop_assert!(non_gsm_characters(&body).is_empty());
        }

        #[test]
        fn adding_a_non_gsm7_character_forces_ucs2(
            body in any_body(),
            extra in non_gsm7_char(),
            at in any::<prop::sample::Index>(),
        ) {
            let mut chars: Vec<char> = body.chars().collect();
            chars.insert(at.index(chars.len() + 1), extra);
            let body: String = chars.into_iter().collect();
            prop_assert_eq!(count(&body).encoding, Encoding::Ucs2);
            prop_assert!(non_gsm_characters(&body).contains(&extra));
        }

        #[test]
        fn one_segment_exactly_when_the_units_fit_one_sms(body in any_body()) {
            let counted = count(&body);
            let fits = counted.units <= counted.encoding.single_segment_units();
            prop_assert_eq!(counted.segments == 1, !body.is_empty() && fits);
        }

        #[test]
        fn units_are_septets_for_gsm7_and_utf16_code_units_for_ucs2(body in any_body()) {
            let counted = count(&body);
            let expected = match counted.encoding {
                Encoding::Gsm7 => body.chars().count() + body.chars().filter(|&c| GSM7_EXTENSION.contains(c)).count(),
                Encoding::Ucs2 => body.encode_utf16().count(),
            };
            prop_assert_eq!(counted.units, expected);
            prop_assert_eq!(counted.characters, body.chars().count());
        }

        #[test]
        fn non_gsm_characters_are_the_distinct_culprits_in_order(body in any_body()) {
            let listed = non_gsm_characters(&body);
            let mut expected: Vec<char> = Vec::new();
            for c in body.chars().filter(|&c| !in_gsm7_table(c)) {
                if !expected.contains(&c) {
                    expected.push(c);
                }
            }
            prop_assert_eq!(listed.is_empty(), count(&body).encoding == Encoding::Gsm7);
            prop_assert_eq!(listed, expected);
        }

        #[test]
        fn the_capacity_reported_is_the_one_the_segments_used(body in any_body()) {
            let counted = count(&body);
            let capacity = counted.units_per_segment;
            prop_assert!(counted.units <= counted.segments * capacity);
            if counted.segments > 1 {
                prop_assert_eq!(capacity, counted.encoding.concatenated_part_units());
                // Each cut wastes at most one unit (a two-unit character that did not fit), so the parts are full.
                prop_assert!(counted.units > (counted.segments - 1) * (capacity - 1));
            }
        }

        #[test]
        fn appending_never_lowers_the_length_or_clears_the_limit(body in any_body(), times in 1_usize..6) {
            // Repeating reaches past 1,600 often enough for both sides of the limit to be exercised.
            let longer = body.repeat(times);
            prop_assert!(body_length(&longer) >= body_length(&body));
            prop_assert!(!over_limit(&body) || over_limit(&longer));
            prop_assert_eq!(over_limit(&body), body.encode_utf16().count() > MAX_BODY_CHARACTERS);
        }
    }
}
