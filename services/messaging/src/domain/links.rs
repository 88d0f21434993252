//! Short links, without I/O: finding the URLs of a message, making codes, and telling a person's click from a
//! link-preview bot's or a prefetch.

use rand::Rng;

/// Characters of a code: 62 of them, 10 long (62^10, about 8 x 10^17: not guessable).
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const CODE_LENGTH: usize = 10;

pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LENGTH).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Whether `code` could be one (before it is looked up).
pub fn is_code(code: &str) -> bool {
    code.len() == CODE_LENGTH && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The `http://` and `https://` URLs in a text, in order, each as written (trailing punctuation that ends a
/// sentence left out).
pub fn urls(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("http").map(|i| from + i) {
        let rest = &text[i..];
        let scheme = if rest.starts_with("https://") {
            8
        } else if rest.starts_with("http://") {
            7
        } else {
            from = i + 4;
            continue;
        };
        let before_ok = i == 0 || !text[..i].chars().next_back().is_some_and(char::is_alphanumeric);
        let mut end = i + rest.find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"')).unwrap_or(rest.len());
        while end > i + scheme && text[..end].ends_with(['.', ',', ';', ':', '!', '?', ')', '\'']) {
            end -= 1;
        }
        if before_ok && end > i + scheme {
            found.push((i, end));
        }
        from = end.max(i + scheme);
    }
    found
}

/// Replaces each URL of `text` by the link `short(url)` gives it.
pub fn shorten(text: &str, mut short: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end) in urls(text) {
        out.push_str(&text[last..start]);
        out.push_str(&short(&text[start..end]));
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

/// Whether a request for a link is a link-preview bot's or a prefetch rather than a person's: a `HEAD`, a
/// `Purpose: prefetch` or `Sec-Purpose: prefetch` header, or a user agent of the crawlers that unfurl links in
/// messaging apps and search (or none at all).
pub fn is_bot(method: &str, user_agent: Option<&str>, purpose: Option<&str>) -> bool {
    if method.eq_ignore_ascii_case("HEAD") || purpose.is_some_and(|p| p.to_ascii_lowercase().contains("prefetch")) {
        return true;
    }
    let Some(agent) = user_agent.map(str::to_ascii_lowercase).filter(|a| !a.trim().is_empty()) else { return true };
    const BOTS: &[&str] = &[
        "facebookexternalhit",
        "facebot",
        "twitterbot",
        "slackbot",
        "slack-imgproxy",
        "whatsapp",
        "telegrambot",
        "discordbot",
        "linkedinbot",
        "skypeuripreview",
        "applebot",
        "googlebot",
        "bingbot",
        "yandex",
        "baiduspider",
        "duckduckbot",
        "embedly",
        "pinterest",
        "redditbot",
        "vkshare",
        "w3c_validator",
        "bot/",
        "crawler",
        "spider",
        "preview",
        "curl/",
        "wget/",
        "python-requests",
        "go-http-client",
        "okhttp",
    ];
    BOTS.iter().any(|b| agent.contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_found_without_the_punctuation_that_ends_a_sentence() {
        let text = "See https://charity.example/appeal?x=1. Or (http://a.example/b), not httpx://c or xhttps://d.";
        let found: Vec<&str> = urls(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(found, ["https://charity.example/appeal?x=1", "http://a.example/b"]);
        assert!(urls("no links here, just http and https:// alone").is_empty());
    }

    #[test]
    fn each_url_is_replaced_by_its_short_link() {
        let mut n = 0;
        let out = shorten("Give: https://a.example/x and https://b.example!", |url| {
            n += 1;
            format!("https://go.example/l/{n}{}", url.len())
        });
        assert_eq!(out, "Give: https://go.example/l/119 and https://go.example/l/217!");
    }

    #[test]
    fn codes_are_ten_letters_and_digits_and_different() {
        let a = new_code();
        assert!(is_code(&a));
        assert_ne!(a, new_code());
        assert!(!is_code("short"));
        assert!(!is_code("abc-def-gh"));
    }

    #[test]
    fn previews_and_prefetches_are_bots_people_are_not() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148";
        assert!(!is_bot("GET", Some(iphone), None));
        assert!(is_bot("GET", Some("facebookexternalhit/1.1 Facebot Twitterbot/1.0"), None), "iMessage previews");
        assert!(is_bot("GET", Some("WhatsApp/2.23.20.0"), None));
        assert!(is_bot("HEAD", Some(iphone), None));
        assert!(is_bot("GET", Some(iphone), Some("prefetch")));
        assert!(is_bot("GET", None, None));
        assert!(is_bot("GET", Some("Slackbot-LinkExpanding 1.0"), None));
    }
}
