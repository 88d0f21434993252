//! PayPal's offline check (<https://developer.paypal.com/api/rest/webhooks/rest/#link-verifysignature>, "verify
//! the signature yourself"): the delivery's `PAYPAL-CERT-URL` names PayPal's signing certificate, which is
//! downloaded (once per URL, then cached), must chain to a trusted root and be issued to PayPal's message
//! verification host, and its RSA key must have signed `{transmission id}|{transmission time}|{webhook id}|{CRC-32
//! of the body, in decimal}` with SHA-256 (`PAYPAL-AUTH-ALGO: SHA256withRSA`, `PAYPAL-TRANSMISSION-SIG` in base64).
//!
//! Nothing is asked of PayPal per delivery, so deliveries keep being accepted while PayPal's API is slow or down;
//! what it costs is trust in the certificate URL, which is why only `https` URLs on PayPal's own hosts are fetched
//! (a forger can name any URL) and the certificate must still chain to a root of the trust store and name
//! PayPal. A replayed delivery verifies again, as it does with the verify endpoint; the receiver's deduplication by
//! event id makes it change nothing.

use crate::Refusal;
use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The names PayPal's message verification certificates are issued to (live and sandbox).
pub const PAYPAL_CERT_NAMES: [&str; 2] =
    ["messageverificationcerts.paypal.com", "messageverificationcerts.sandbox.paypal.com"];

/// The only signing algorithm PayPal uses for webhooks.
pub const AUTH_ALGO: &str = "SHA256withRSA";

/// How long a downloaded certificate chain is reused before it is fetched again.
const CACHE_FOR: Duration = Duration::from_secs(6 * 3600);

/// Most certificate chains kept at once: URLs come from deliveries, so a flood of made-up (PayPal-hosted) URLs
/// must not grow the cache without bound.
const CACHE_MAX: usize = 64;

/// Most bytes of a certificate chain read.
const MAX_CHAIN_BYTES: usize = 64 * 1024;

/// Which certificate URLs are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertUrls {
    /// `https://` URLs whose host is `paypal.com` or ends in `.paypal.com` (production).
    PayPal,
    /// URLs starting with one of these prefixes (a local fake PayPal in tests).
    Prefixes(Vec<String>),
}

impl CertUrls {
    fn allows(&self, url: &str) -> bool {
        match self {
            CertUrls::PayPal => match reqwest::Url::parse(url) {
                Ok(parsed) => {
                    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
                    parsed.scheme() == "https"
                        && parsed.username().is_empty()
                        && parsed.password().is_none()
                        && parsed.port().is_none()
                        && (host == "paypal.com" || host.ends_with(".paypal.com"))
                }
                Err(_) => false,
            },
            CertUrls::Prefixes(prefixes) => prefixes.iter().any(|p| url.starts_with(p.as_str())),
        }
    }
}

/// Checks deliveries against PayPal's certificate. Hold one for the service's life: it caches certificate chains.
pub struct CertificateCheck {
    http: reqwest::Client,
    roots: Vec<TrustAnchor<'static>>,
    urls: CertUrls,
    /// Downloaded chains (DER, end entity first) by URL.
    cache: Mutex<HashMap<String, (Vec<CertificateDer<'static>>, Instant)>>,
}

impl std::fmt::Debug for CertificateCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCheck").field("roots", &self.roots.len()).field("urls", &self.urls).finish()
    }
}

/// Why a trust store could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0} holds no PEM certificate that can be a trust anchor")]
    Empty(String),
    #[error("the system's trust store holds no usable certificate")]
    NoSystemRoots,
}

impl CertificateCheck {
    /// Trusting `roots` (DER certificates), fetching only the URLs `urls` allows, with a 10 s timeout.
    pub fn new(roots: &[CertificateDer<'_>], urls: CertUrls) -> CertificateCheck {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with timeouts builds");
        CertificateCheck::with_client(http, roots, urls)
    }

    /// The same, with the caller's HTTP client (its timeouts, proxy and telemetry).
    pub fn with_client(http: reqwest::Client, roots: &[CertificateDer<'_>], urls: CertUrls) -> CertificateCheck {
        let roots = roots
            .iter()
            .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok().map(|anchor| anchor.to_owned()))
            .collect();
        CertificateCheck { http, roots, urls, cache: Mutex::new(HashMap::new()) }
    }

    /// The roots of a PEM bundle file (e.g. `/etc/ssl/certs/ca-certificates.crt`).
    pub fn roots_from_pem_file(path: &str) -> Result<Vec<CertificateDer<'static>>, TrustStoreError> {
        let pem = std::fs::read(path).map_err(|e| TrustStoreError::Read(path.to_owned(), e))?;
        let roots: Vec<_> = CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect();
        if roots.iter().all(|der| webpki::anchor_from_trusted_cert(der).is_err()) {
            return Err(TrustStoreError::Empty(path.to_owned()));
        }
        Ok(roots)
    }

    /// The roots of the operating system's trust store.
    pub fn system_roots() -> Result<Vec<CertificateDer<'static>>, TrustStoreError> {
        let roots = rustls_native_certs::load_native_certs().certs;
        if roots.is_empty() {
            return Err(TrustStoreError::NoSystemRoots);
        }
        Ok(roots)
    }

    /// Whether PayPal signed this delivery for `webhook_id`. Refuses with [`Refusal::MalformedHeader`] for another
    /// algorithm than [`AUTH_ALGO`], a certificate URL that is not PayPal's or a signature that is not base64,
    /// [`Refusal::BadSignature`] when the certificate is not a trusted PayPal one or its key did not sign the
    /// delivery, and [`Refusal::VerifierUnavailable`] when the certificate cannot be downloaded (PayPal retries).
    pub async fn verify(&self, signed: &Signed<'_>) -> Result<(), Refusal> {
        if signed.auth_algo != AUTH_ALGO {
            return Err(Refusal::MalformedHeader(
                "paypal-auth-algo",
                format!("`{}` is not {AUTH_ALGO}, the only algorithm PayPal signs with", signed.auth_algo),
            ));
        }
        if !self.urls.allows(signed.cert_url) {
            return Err(Refusal::MalformedHeader("paypal-cert-url", "not a certificate URL of PayPal's".into()));
        }
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signed.transmission_sig.trim())
            .map_err(|e| Refusal::MalformedHeader("paypal-transmission-sig", format!("not base64: {e}")))?;
        let chain = self.chain(signed.cert_url).await?;
        let (end_entity, intermediates) = chain.split_first().ok_or(Refusal::BadSignature)?;
        let certificate = webpki::EndEntityCert::try_from(end_entity).map_err(|_| Refusal::BadSignature)?;
        certificate
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.roots,
                intermediates,
                UnixTime::now(),
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .map_err(|_| Refusal::BadSignature)?;
        let issued_to_paypal = PAYPAL_CERT_NAMES.iter().any(|name| {
            ServerName::try_from(*name).is_ok_and(|name| certificate.verify_is_valid_for_subject_name(&name).is_ok())
        });
        if !issued_to_paypal {
            return Err(Refusal::BadSignature);
        }
        let message = format!(
            "{}|{}|{}|{}",
            signed.transmission_id,
            signed.transmission_time,
            signed.webhook_id,
            crc32fast::hash(signed.body)
        );
        certificate
            .verify_signature(webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256, message.as_bytes(), &signature)
            .map_err(|_| Refusal::BadSignature)
    }

    /// The certificate chain at `url`: the cached one while it is fresh, else downloaded.
    async fn chain(&self, url: &str) -> Result<Vec<CertificateDer<'static>>, Refusal> {
        if let Some((chain, fetched)) = self.cache.lock().expect("certificate cache").get(url)
            && fetched.elapsed() < CACHE_FOR
        {
            return Ok(chain.clone());
        }
        let unavailable = |what: String| Refusal::VerifierUnavailable(format!("PayPal's certificate: {what}"));
        let response = self.http.get(url).send().await.map_err(|e| unavailable(e.without_url().to_string()))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(unavailable(format!("answered {status}")));
        }
        if !status.is_success() {
            // A URL on PayPal's host that holds no certificate was not PayPal's signing certificate.
            return Err(Refusal::BadSignature);
        }
        if response.content_length().is_some_and(|n| n > MAX_CHAIN_BYTES as u64) {
            return Err(Refusal::BadSignature);
        }
        let pem = response.bytes().await.map_err(|e| unavailable(e.without_url().to_string()))?;
        if pem.len() > MAX_CHAIN_BYTES {
            return Err(Refusal::BadSignature);
        }
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().map_err(|_| Refusal::BadSignature)?;
        if chain.is_empty() {
            return Err(Refusal::BadSignature);
        }
        let mut cache = self.cache.lock().expect("certificate cache");
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, fetched)| fetched.elapsed() < CACHE_FOR);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(url.to_owned(), (chain.clone(), Instant::now()));
        Ok(chain)
    }
}

/// What PayPal signed a delivery with, from its headers, and what it signed.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub auth_algo: &'a str,
    pub cert_url: &'a str,
    pub transmission_id: &'a str,
    pub transmission_sig: &'a str,
    pub transmission_time: &'a str,
    /// The webhook's id in the endpoint's PayPal app.
    pub webhook_id: &'a str,
    /// The body, byte for byte as it arrived.
    pub body: &'a [u8],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paypal::{PayPalCredentials, Verifier};
    use crate::{Delivery, Refusal};
    use almoner_testkit::fake_paypal::FakePayPal;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

    /// Test certificates made with openssl (tests/fixtures/paypal/README.md): a root, an intermediate, PayPal's
    /// signing certificate under them, one for another name, and one under a root nobody trusts.
    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/paypal/", $name))
        };
    }
    const ROOT: &[u8] = fixture!("root.pem");
    const INTERMEDIATE: &[u8] = fixture!("intermediate.pem");
    const PAYPAL: &[u8] = fixture!("paypal.pem");
    const PAYPAL_KEY: &[u8] = fixture!("paypal.pk8");
    const WRONG_NAME: &[u8] = fixture!("wrong_name.pem");
    const WRONG_NAME_KEY: &[u8] = fixture!("wrong_name.pk8");
    const ROGUE: &[u8] = fixture!("rogue.pem");
    const ROGUE_KEY: &[u8] = fixture!("rogue.pk8");
    const ROGUE_ROOT: &[u8] = fixture!("rogue_root.pem");

    const WEBHOOK_ID: &str = "1JE4291016473214C";
    const BODY: &[u8] = br#"{"id":"WH-2WR32451HC0233532-67976317FL4543714","event_type":"PAYMENT.CAPTURE.COMPLETED","resource":{"id":"42311647XV020574X","amount":{"currency_code":"GBP","value":"12.50"}}}"#;

    fn pem_chain(parts: &[&[u8]]) -> String {
        parts.iter().map(|p| String::from_utf8(p.to_vec()).unwrap()).collect()
    }

    fn sign(key: &[u8], transmission_id: &str, time: &str, webhook_id: &str, body: &[u8]) -> String {
        let key = RsaKeyPair::from_pkcs8(key).unwrap();
        let message = format!("{transmission_id}|{time}|{webhook_id}|{}", crc32fast::hash(body));
        let mut signature = vec![0; key.public_modulus_len()];
        key.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), message.as_bytes(), &mut signature).unwrap();
        base64::engine::general_purpose::STANDARD.encode(signature)
    }

    struct Case {
        fake: FakePayPal,
        verifier: Verifier,
    }

    impl Case {
        async fn new() -> Case {
            let fake = FakePayPal::start().await;
            let roots: Vec<_> = CertificateDer::pem_slice_iter(ROOT).map(Result::unwrap).collect();
            let check = CertificateCheck::new(&roots, CertUrls::Prefixes(vec![format!("{}/", fake.base_url())]));
            // Nothing listens at the verify endpoint's base: the offline check must not need it.
            let verifier = Verifier::new("http://127.0.0.1:9").with_certificate_check(check);
            Case { fake, verifier }
        }

        async fn deliver(&self, headers: &[(&str, String)], body: &[u8]) -> Result<Vec<crate::ProviderEvent>, Refusal> {
            let headers: Vec<(String, String)> = headers.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
            let delivery = Delivery { url: "https://almoner.test/webhooks/paypal/x", headers: &headers, body };
            let credentials = PayPalCredentials {
                client_id: "unused".into(),
                client_secret: "unused".into(),
                webhook_id: WEBHOOK_ID.into(),
            };
            self.verifier.verify(&delivery, &credentials).await
        }
    }

    fn headers(cert_url: &str, signature: String) -> Vec<(&'static str, String)> {
        vec![
            ("PAYPAL-AUTH-ALGO", AUTH_ALGO.to_owned()),
            ("PAYPAL-CERT-URL", cert_url.to_owned()),
            ("PAYPAL-TRANSMISSION-ID", "69cd13f0-d67a-11e5-baa3-778b53f4ae55".to_owned()),
            ("PAYPAL-TRANSMISSION-SIG", signature),
            ("PAYPAL-TRANSMISSION-TIME", "2026-12-06T02:00:00Z".to_owned()),
        ]
    }

    fn signed_by(key: &[u8]) -> String {
        sign(key, "69cd13f0-d67a-11e5-baa3-778b53f4ae55", "2026-12-06T02:00:00Z", WEBHOOK_ID, BODY)
    }

    #[tokio::test]
    async fn a_delivery_signed_by_paypals_trusted_certificate_is_accepted_and_the_chain_is_fetched_once() {
        let case = Case::new().await;
        let url = case.fake.add_certificate("CERT-1", &pem_chain(&[PAYPAL, INTERMEDIATE]));
        for _ in 0..3 {
            let events = case.deliver(&headers(&url, signed_by(PAYPAL_KEY)), BODY).await.expect("verified");
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].event_id, "WH-2WR32451HC0233532-67976317FL4543714");
            assert_eq!(events[0].event_type.as_deref(), Some("PAYMENT.CAPTURE.COMPLETED"));
        }
        assert_eq!(case.fake.certificate_requests(), 1, "the chain is cached");
        assert_eq!(case.fake.token_requests(), 0, "PayPal's API is not asked");
    }

    #[tokio::test]
    async fn forgeries_are_refused() {
        let case = Case::new().await;
        let genuine = case.fake.add_certificate("CERT-1", &pem_chain(&[PAYPAL, INTERMEDIATE]));
        let bad = |r: Result<_, Refusal>| matches!(r, Err(Refusal::BadSignature));

        // A changed body, another webhook's id, another transmission id.
        let tampered = String::from_utf8(BODY.to_vec()).unwrap().replace("12.50", "92.50");
        assert!(bad(case.deliver(&headers(&genuine, signed_by(PAYPAL_KEY)), tampered.as_bytes()).await));
        let other_webhook =
            sign(PAYPAL_KEY, "69cd13f0-d67a-11e5-baa3-778b53f4ae55", "2026-12-06T02:00:00Z", "OTHER", BODY);
        assert!(bad(case.deliver(&headers(&genuine, other_webhook), BODY).await));
        let mut moved = headers(&genuine, signed_by(PAYPAL_KEY));
        moved[2].1 = "another-transmission".into();
        assert!(bad(case.deliver(&moved, BODY).await));

        // Signed by another key than the certificate's.
        assert!(bad(case.deliver(&headers(&genuine, signed_by(ROGUE_KEY)), BODY).await));
        // A certificate for PayPal's name under a root that is not trusted, with its own key.
        let rogue = case.fake.add_certificate("CERT-rogue", &pem_chain(&[ROGUE, ROGUE_ROOT]));
        assert!(bad(case.deliver(&headers(&rogue, signed_by(ROGUE_KEY)), BODY).await));
        // A trusted certificate issued to another name, with its own key.
        let other_name = case.fake.add_certificate("CERT-other", &pem_chain(&[WRONG_NAME, INTERMEDIATE]));
        assert!(bad(case.deliver(&headers(&other_name, signed_by(WRONG_NAME_KEY)), BODY).await));
        // The signing certificate without the intermediate it needs to chain to the root.
        let unchained = case.fake.add_certificate("CERT-alone", &pem_chain(&[PAYPAL]));
        assert!(bad(case.deliver(&headers(&unchained, signed_by(PAYPAL_KEY)), BODY).await));
        // A URL of the allowed host that holds no certificate, or holds something else.
        let missing = format!("{}/v1/notifications/certs/CERT-missing", case.fake.base_url());
        assert!(bad(case.deliver(&headers(&missing, signed_by(PAYPAL_KEY)), BODY).await));
        let garbage = case
            .fake
            .add_certificate("CERT-garbage", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
        assert!(bad(case.deliver(&headers(&garbage, signed_by(PAYPAL_KEY)), BODY).await));
    }

    #[tokio::test]
    async fn headers_that_cannot_be_paypals_are_refused_without_fetching_anything() {
        let case = Case::new().await;
        let genuine = case.fake.add_certificate("CERT-1", &pem_chain(&[PAYPAL, INTERMEDIATE]));
        let malformed = |r: Result<_, Refusal>, header: &str| {
            assert!(matches!(&r, Err(Refusal::MalformedHeader(h, _)) if *h == header), "{header}: {r:?}");
        };
        let elsewhere = "http://127.0.0.1:1/v1/notifications/certs/CERT-1";
        malformed(case.deliver(&headers(elsewhere, signed_by(PAYPAL_KEY)), BODY).await, "paypal-cert-url");
        let mut other_algo = headers(&genuine, signed_by(PAYPAL_KEY));
        other_algo[0].1 = "SHA1withRSA".into();
        malformed(case.deliver(&other_algo, BODY).await, "paypal-auth-algo");
        malformed(case.deliver(&headers(&genuine, "%%%".into()), BODY).await, "paypal-transmission-sig");
        assert_eq!(case.fake.certificate_requests(), 0);
        let mut missing = headers(&genuine, signed_by(PAYPAL_KEY));
        missing.remove(1);
        assert!(matches!(case.deliver(&missing, BODY).await, Err(Refusal::MissingHeader("paypal-cert-url"))));
    }

    #[tokio::test]
    async fn a_certificate_that_cannot_be_downloaded_is_a_verifier_outage_so_paypal_retries() {
        let roots: Vec<_> = CertificateDer::pem_slice_iter(ROOT).map(Result::unwrap).collect();
        let check = CertificateCheck::new(&roots, CertUrls::Prefixes(vec!["http://127.0.0.1:9/".into()]));
        let signed = Signed {
            auth_algo: AUTH_ALGO,
            cert_url: "http://127.0.0.1:9/v1/notifications/certs/CERT-1",
            transmission_id: "t",
            transmission_sig: "AAAA",
            transmission_time: "2026-12-06T02:00:00Z",
            webhook_id: WEBHOOK_ID,
            body: BODY,
        };
        assert!(matches!(check.verify(&signed).await, Err(Refusal::VerifierUnavailable(_))));
    }

    #[test]
    fn a_pem_bundle_gives_trust_anchors_and_an_empty_one_is_an_error() {
        let dir = std::env::temp_dir().join(format!("almoner-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("roots.pem");
        std::fs::write(&bundle, pem_chain(&[ROOT, ROGUE_ROOT])).unwrap();
        assert_eq!(CertificateCheck::roots_from_pem_file(bundle.to_str().unwrap()).unwrap().len(), 2);
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        assert!(matches!(
            CertificateCheck::roots_from_pem_file(empty.to_str().unwrap()),
            Err(TrustStoreError::Empty(_))
        ));
        assert!(matches!(
            CertificateCheck::roots_from_pem_file("/nonexistent/roots.pem"),
            Err(TrustStoreError::Read(..))
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn only_https_urls_on_paypal_hosts_are_fetched() {
        let paypal = CertUrls::PayPal;
        for url in [
            "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270",
            "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "https://api-m.paypal.com/v1/notifications/certs/CERT-1",
            "https://PAYPAL.com/x",
        ] {
            assert!(paypal.allows(url), "{url}");
        }
        for url in [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.example/cert",
            "https://evilpaypal.com/cert",
            "https://api.paypal.com:8443/cert",
            "https://user@api.paypal.com/cert",
            "https://127.0.0.1/cert",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!paypal.allows(url), "{url}");
        }
        let local = CertUrls::Prefixes(vec!["http://127.0.0.1:9000/".into()]);
        assert!(local.allows("http://127.0.0.1:9000/v1/notifications/certs/CERT-1"));
        assert!(!local.allows("http://127.0.0.1:9001/v1/notifications/certs/CERT-1"));
    }
}
