//! Twilio (`X-Twilio-Signature`, <https://www.twilio.com/docs/usage/webhooks/webhooks-security>), checked as
//! Twilio's own `RequestValidator` (twilio-python `twilio/request_validator.py`) checks it.
//!
//! - **Form posts** (`application/x-www-form-urlencoded`): the signature is the base64 HMAC-SHA1, keyed by the
//!   account's auth token, of the full URL followed by every POST parameter's name and value with no separators,
//!   names sorted, and for a repeated name its distinct values sorted (code point order).
//! - **Other bodies** (JSON): the URL carries `bodySHA256`, the lower-case hex SHA-256 of the body; the signature
//!   is over the URL alone, and the body's hash must equal `bodySHA256`.
//! - Twilio's servers do not always sign the URL with the port as it was configured, so the validator accepts the
//!   URL with its port removed and with the scheme's default port (`:443`, `:80`) added; so does this.
//! - A request carrying `X-Twilio-Webhooks-Signature-Settings: key=...,algorithm=HMAC_SHA256` (a webhook signed
//!   with a shared key rather than the auth token) is signed with HMAC-SHA256 instead; the endpoint's secrets are
//!   then the shared key's secret. Any other algorithm is refused, as the validator refuses it.
//!
//! There is no signed timestamp or event id. A status callback (`MessageStatus` present) is the event
//! `{MessageSid}:{MessageStatus}` of type `message.status`, so each status of a message is its own event; anything
//! else is `MessageSid` (else `SmsSid`, else `CallSid`) of type `message.received`.

use crate::{Delivery, ProviderEvent, Refusal, same, usable};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

const HEADER: &str = "x-twilio-signature";
const SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";
const FORM: &str = "application/x-www-form-urlencoded";

/// The HMAC a Twilio signature is made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// The default, keyed by the account's auth token.
    HmacSha1,
    /// Webhooks signed with a shared key that names it in `X-Twilio-Webhooks-Signature-Settings`.
    HmacSha256,
}

pub fn verify(delivery: &Delivery<'_>, secrets: &[&str]) -> Result<Vec<ProviderEvent>, Refusal> {
    let given = delivery.header(HEADER).ok_or(Refusal::MissingHeader(HEADER))?;
    let algorithm = algorithm(delivery.header(SETTINGS_HEADER))?;
    let body_hash = query_value(delivery.url, "bodySHA256");
    // With bodySHA256 in the URL the body is signed through its hash and there are no parameters; without it only
    // a form's fields are signed, so any other body would go unauthenticated and is refused.
    let params = match body_hash {
        Some(_) => Vec::new(),
        None if delivery.body.is_empty() => Vec::new(),
        None if delivery.media_type().as_deref() == Some(FORM) => form_fields(delivery.body),
        None => {
            return Err(Refusal::BadBody(
                "Twilio",
                "a body that is not a form post must be signed by bodySHA256".into(),
            ));
        }
    };
    let urls = port_variants(delivery.url);
    let matched = usable(secrets).any(|secret| {
        urls.iter().any(|url| same(signature(algorithm, secret, url, &params).as_bytes(), given.as_bytes()))
    });
    if !matched {
        return Err(Refusal::BadSignature);
    }
    let body = match body_hash {
        Some(expected) => {
            if !same(hex::encode(Sha256::digest(delivery.body)).as_bytes(), expected.as_bytes()) {
                return Err(Refusal::BadSignature);
            }
            crate::json_object("Twilio", delivery.body)?
        }
        None => fields_object(&params),
    };
    Ok(vec![event(body)?])
}

/// The algorithm named by `X-Twilio-Webhooks-Signature-Settings` (HMAC-SHA1 when absent or naming none).
fn algorithm(settings: Option<&str>) -> Result<Algorithm, Refusal> {
    let named = settings.unwrap_or("").split(',').find_map(|part| {
        let (name, value) = part.split_once('=')?;
        (name.trim() == "algorithm" && !value.trim().is_empty()).then(|| value.trim())
    });
    match named.map(str::to_ascii_uppercase).as_deref() {
        None | Some("HMAC_SHA1") => Ok(Algorithm::HmacSha1),
        Some("HMAC_SHA256") => Ok(Algorithm::HmacSha256),
        Some(other) => Err(Refusal::MalformedHeader(SETTINGS_HEADER, format!("unsupported algorithm {other}"))),
    }
}

/// The `X-Twilio-Signature` of a request to `url` with these POST parameters (none for a JSON body, whose URL
/// carries `bodySHA256`).
pub fn signature(algorithm: Algorithm, secret: &str, url: &str, params: &[(String, String)]) -> String {
    let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut signed = url.to_owned();
    for name in names {
        let mut values: Vec<&str> = params.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
        values.sort_unstable();
        values.dedup();
        for value in values {
            signed.push_str(name);
            signed.push_str(value);
        }
    }
    let mac = match algorithm {
        Algorithm::HmacSha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
            mac.update(signed.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    STANDARD.encode(mac)
}

/// The URL as Twilio may have signed it: without its port, and with the scheme's default port when it has none
/// (one of the two is the URL as given). A URL without a scheme and host (the service's mistake, never what Twilio
/// signed) is only itself, and so matches no signature.
fn port_variants(url: &str) -> Vec<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => authority.split_at(at + 1),
        None => ("", authority),
    };
    // An IPv6 literal's colons are inside its brackets.
    let host_end = if host_port.starts_with('[') { host_port.find(']').map_or(0, |i| i + 1) } else { 0 };
    let (host, port) = match host_port[host_end..].find(':') {
        Some(colon) => host_port.split_at(host_end + colon),
        None => (host_port, ""),
    };
    if host.is_empty() {
        return vec![url.to_owned()];
    }
    let without = format!("{scheme}://{userinfo}{host}{tail}");
    let with = if port.is_empty() {
        let default = if scheme == "https" { 443 } else { 80 };
        format!("{scheme}://{userinfo}{host}:{default}{tail}")
    } else {
        url.to_owned()
    };
    vec![without, with]
}

/// The first value of a query parameter, decoded.
fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split('#').next()?.split_once('?')?.1;
    form_fields(query.as_bytes()).into_iter().find(|(n, v)| n == name && !v.is_empty()).map(|(_, v)| v)
}

/// A form body's fields, decoded, in the order sent.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// A form's fields as a JSON object of strings (the first value of a repeated name).
fn fields_object(params: &[(String, String)]) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    for (name, value) in params {
        object.entry(name.clone()).or_insert_with(|| serde_json::Value::String(value.clone()));
    }
    serde_json::Value::Object(object)
}

fn event(body: serde_json::Value) -> Result<ProviderEvent, Refusal> {
    let field = |name: &str| body.get(name).and_then(|v| v.as_str()).filter(|v| !v.is_empty());
    let sid = field("MessageSid")
        .or_else(|| field("SmsSid"))
        .or_else(|| field("CallSid"))
        .ok_or_else(|| Refusal::BadBody("Twilio", "no MessageSid, SmsSid or CallSid".into()))?;
    let (event_id, event_type) = match field("MessageStatus") {
        Some(status) => (format!("{sid}:{status}"), "message.status"),
        None => (sid.to_owned(), "message.received"),
    };
    Ok(ProviderEvent { event_id, event_type: Some(event_type.to_owned()), body })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Signatures made by twilio-python 9.13.0's `RequestValidator(token).compute_signature(url, params)` and
    // accepted by its `validate`: see tests/official_signatures.py.
    const TOKEN_OLD: &str = "12345678901234567890123456789012";
    const TOKEN_NEW: &str = "abcdefabcdefabcdefabcdefabcdef12";

    // A status callback, signed over the URL as configured and over the URL with `:443`.
    const STATUS_URL: &str = "https://hooks.example.org/webhooks/twilio/sms?endpoint=main";
    const STATUS_URL_443: &str = "https://hooks.example.org:443/webhooks/twilio/sms?endpoint=main";
    const STATUS_BODY: &[u8] = b"ApiVersion=2010-04-01&MessageStatus=delivered&SmsSid=SM0123456789abcdef0123456789abcdef&To=%2B447700900123&From=Almoner&MessageSid=SM0123456789abcdef0123456789abcdef&AccountSid=AC0123456789abcdef0123456789abcdef";
    const STATUS_OLD: &str = "lzBhcyBx8x2+3CXuMYHWFTHrB7A=";
    const STATUS_NEW: &str = "AFgSYzsV0U++j7QNiwn2NL9pJgw=";
    const STATUS_443_OLD: &str = "Pc5ozZalXRWIkIA+xYoB26YsxOE=";
    const STATUS_443_NEW: &str = "8v9MOxkLb1wuVSJ33FNBY9Tc2qA=";

    // An incoming message to a URL with a port, with a repeated name and percent-encoded characters.
    const INBOUND_URL: &str = "http://hooks.example.org:8080/webhooks/twilio/sms";
    const INBOUND_BODY: &[u8] = b"SmsSid=SM99999999999999999999999999999999&AccountSid=AC0123456789abcdef0123456789abcdef&Body=Donate+%C2%A35+%26+thanks%21&From=%2B447700900456&Tag=zeta&Tag=alpha";
    const INBOUND_NEW: &str = "1agTByRJ55Xx1O8PIzmcJpo6rno=";
    const INBOUND_WITHOUT_PORT_NEW: &str = "12N8Aiw7dl2tggQoxbVMdp83B70=";

    // A JSON body: the URL carries its hash and the signature covers the URL alone.
    const JSON_URL: &str = "https://hooks.example.org/webhooks/twilio/json?bodySHA256=b47481af997d8a9c014c7a0bc1dd193b4534c978bc8c7ad88570a36120f8d6c2";
    const JSON_BODY: &[u8] = br#"{"MessageSid":"SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","MessageStatus":"sent","AccountSid":"AC0123456789abcdef0123456789abcdef"}"#;
    const JSON_NEW: &str = "0kPlVoEj1LGa101u6pxAgJI2xUQ=";

    fn check(
        url: &str,
        content_type: &str,
        body: &[u8],
        signature: &str,
        secrets: &[&str],
    ) -> Result<Vec<ProviderEvent>, Refusal> {
        let h = vec![("content-type".to_owned(), content_type.to_owned()), (HEADER.to_owned(), signature.to_owned())];
        verify(&Delivery { url, headers: &h, body }, secrets)
    }

    fn form(url: &str, body: &[u8], signature: &str, secrets: &[&str]) -> Result<Vec<ProviderEvent>, Refusal> {
        check(url, "application/x-www-form-urlencoded; charset=utf-8", body, signature, secrets)
    }

    #[test]
    fn signs_as_the_official_library() {
        let status = form_fields(STATUS_BODY);
        assert_eq!(signature(Algorithm::HmacSha1, TOKEN_OLD, STATUS_URL, &status), STATUS_OLD);
        assert_eq!(signature(Algorithm::HmacSha1, TOKEN_NEW, STATUS_URL_443, &status), STATUS_443_NEW);
        let inbound = form_fields(INBOUND_BODY);
        assert_eq!(signature(Algorithm::HmacSha1, TOKEN_NEW, INBOUND_URL, &inbound), INBOUND_NEW);
        assert_eq!(signature(Algorithm::HmacSha1, TOKEN_NEW, JSON_URL, &[]), JSON_NEW);
    }

    #[test]
    fn accepts_a_status_callback_with_either_active_token() {
        let events = form(STATUS_URL, STATUS_BODY, STATUS_NEW, &[TOKEN_NEW, TOKEN_OLD]).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_id, "SM0123456789abcdef0123456789abcdef:delivered");
        assert_eq!(events[0].event_type.as_deref(), Some("message.status"));
        assert_eq!(events[0].body["To"], "+447700900123");
        assert_eq!(events[0].body["ApiVersion"], "2010-04-01");
        // Signed with the older token, still active during a rotation.
        assert_eq!(form(STATUS_URL, STATUS_BODY, STATUS_OLD, &[TOKEN_NEW, TOKEN_OLD]).unwrap(), events);
    }

    #[test]
    fn accepts_the_url_signed_with_or_without_its_port() {
        let secrets = &[TOKEN_OLD, TOKEN_NEW];
        // Configured without a port, signed with the default one; and the other way round.
        assert!(form(STATUS_URL, STATUS_BODY, STATUS_443_NEW, secrets).is_ok());
        assert!(form(STATUS_URL, STATUS_BODY, STATUS_443_OLD, secrets).is_ok());
        assert!(form(STATUS_URL_443, STATUS_BODY, STATUS_NEW, secrets).is_ok());
        assert!(form(STATUS_URL_443, STATUS_BODY, STATUS_443_NEW, secrets).is_ok());
        // A non-default port: signed with it or without it.
        let events = form(INBOUND_URL, INBOUND_BODY, INBOUND_NEW, secrets).unwrap();
        assert!(form(INBOUND_URL, INBOUND_BODY, INBOUND_WITHOUT_PORT_NEW, secrets).is_ok());
        assert_eq!(events[0].event_id, "SM99999999999999999999999999999999");
        assert_eq!(events[0].event_type.as_deref(), Some("message.received"));
        assert_eq!(events[0].body["Body"], "Donate £5 & thanks!");
        assert_eq!(events[0].body["Tag"], "zeta");
        // Another port is another URL.
        let elsewhere = "https://hooks.example.org:8443/webhooks/twilio/sms?endpoint=main";
        assert_eq!(form(elsewhere, STATUS_BODY, STATUS_443_NEW, secrets), Err(Refusal::BadSignature));
        let https = "https://hooks.example.org:8080/webhooks/twilio/sms";
        assert_eq!(form(https, INBOUND_BODY, INBOUND_NEW, secrets), Err(Refusal::BadSignature));
    }

    #[test]
    fn port_variants_keep_user_info_and_ipv6_hosts() {
        assert_eq!(
            port_variants("https://u:p@h.example/x"),
            ["https://u:p@h.example/x", "https://u:p@h.example:443/x"]
        );
        assert_eq!(port_variants("http://[::1]:8080?a=b"), ["http://[::1]?a=b", "http://[::1]:8080?a=b"]);
        assert_eq!(port_variants("http://h"), ["http://h", "http://h:80"]);
        assert_eq!(port_variants("/relative"), ["/relative"]);
        assert_eq!(port_variants("http:///path"), ["http:///path"]);
    }

    #[test]
    fn accepts_a_json_body_signed_through_body_sha256() {
        let events = check(JSON_URL, "application/json", JSON_BODY, JSON_NEW, &[TOKEN_OLD, TOKEN_NEW]).unwrap();
        assert_eq!(events[0].event_id, "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:sent");
        assert_eq!(events[0].event_type.as_deref(), Some("message.status"));
        let port = JSON_URL.replace(".org/", ".org:443/");
        assert!(check(&port, "application/json", JSON_BODY, JSON_NEW, &[TOKEN_NEW]).is_ok());
        // The body's hash is checked: the signature alone covers only the URL.
        let tampered = String::from_utf8(JSON_BODY.to_vec()).unwrap().replace("sent", "read");
        let refused = check(JSON_URL, "application/json", tampered.as_bytes(), JSON_NEW, &[TOKEN_NEW]);
        assert_eq!(refused, Err(Refusal::BadSignature));
        // So is the URL, hash included.
        let other_hash = JSON_URL.replace("=b4", "=c4");
        assert_eq!(
            check(&other_hash, "application/json", JSON_BODY, JSON_NEW, &[TOKEN_NEW]),
            Err(Refusal::BadSignature)
        );
        // A JSON body without bodySHA256 is not signed at all.
        let unsigned = "https://hooks.example.org/webhooks/twilio/json";
        let refused = check(
            unsigned,
            "application/json",
            JSON_BODY,
            &signature(Algorithm::HmacSha1, TOKEN_NEW, unsigned, &[]),
            &[TOKEN_NEW],
        );
        assert_eq!(refused.unwrap_err().reason(), "bad_body");
    }

    #[test]
    fn refuses_tampering_a_wrong_token_and_a_missing_header() {
        let tampered = String::from_utf8(STATUS_BODY.to_vec()).unwrap().replace("delivered", "failed");
        assert_eq!(form(STATUS_URL, tampered.as_bytes(), STATUS_NEW, &[TOKEN_NEW]), Err(Refusal::BadSignature));
        let added = [STATUS_BODY, b"&Extra=1"].concat();
        assert_eq!(form(STATUS_URL, &added, STATUS_NEW, &[TOKEN_NEW]), Err(Refusal::BadSignature));
        let other_path = STATUS_URL.replace("/sms", "/voice");
        assert_eq!(form(&other_path, STATUS_BODY, STATUS_NEW, &[TOKEN_NEW]), Err(Refusal::BadSignature));
        assert_eq!(form(STATUS_URL, STATUS_BODY, STATUS_NEW, &[TOKEN_OLD]), Err(Refusal::BadSignature));
        let h = vec![("content-type".to_owned(), FORM.to_owned())];
        let d = Delivery { url: STATUS_URL, headers: &h, body: STATUS_BODY };
        assert_eq!(verify(&d, &[TOKEN_NEW]), Err(Refusal::MissingHeader(HEADER)));
    }

    #[test]
    fn follows_the_signature_settings_header() {
        let params = form_fields(STATUS_BODY);
        let sha256 = signature(Algorithm::HmacSha256, TOKEN_NEW, STATUS_URL, &params);
        let headers = |settings: &str| {
            vec![
                ("content-type".to_owned(), FORM.to_owned()),
                (HEADER.to_owned(), sha256.clone()),
                (SETTINGS_HEADER.to_owned(), settings.to_owned()),
            ]
        };
        let h = headers("key=webhooks_sharedkey_1,algorithm=HMAC_SHA256");
        assert!(verify(&Delivery { url: STATUS_URL, headers: &h, body: STATUS_BODY }, &[TOKEN_NEW]).is_ok());
        let h = headers("key=webhooks_sharedkey_1");
        let d = Delivery { url: STATUS_URL, headers: &h, body: STATUS_BODY };
        assert_eq!(verify(&d, &[TOKEN_NEW]), Err(Refusal::BadSignature));
        let h = headers("algorithm=HMAC_MD5");
        let d = Delivery { url: STATUS_URL, headers: &h, body: STATUS_BODY };
        assert_eq!(verify(&d, &[TOKEN_NEW]).unwrap_err().reason(), "malformed_header");
    }

    #[test]
    fn refuses_a_signed_form_without_a_sid() {
        let body = b"AccountSid=AC1&Body=hello";
        let signed = signature(Algorithm::HmacSha1, TOKEN_NEW, STATUS_URL, &form_fields(body));
        assert_eq!(form(STATUS_URL, body, &signed, &[TOKEN_NEW]).unwrap_err().reason(), "bad_body");
        let call = b"CallSid=CA1&CallStatus=completed";
        let signed = signature(Algorithm::HmacSha1, TOKEN_NEW, STATUS_URL, &form_fields(call));
        assert_eq!(form(STATUS_URL, call, &signed, &[TOKEN_NEW]).unwrap()[0].event_id, "CA1");
    }
}
