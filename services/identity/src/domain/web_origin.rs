use almoner_types::ParseError;

/// The most origins a tenant's widget may be embedded on.
pub const MAX_ALLOWED_ORIGINS: usize = 20;

/// A web origin as browsers send it in `Origin`: `https://host[:port]`, in lower case, without a default port, path,
/// query, fragment or user info. Plain `http` only for `localhost` and `127.0.0.1`, where a developer tries the
/// widget; anywhere else a member token must not cross the network in clear.
///
/// Hosts are DNS names (internationalised ones in their `xn--` form, as browsers send them) or IPv4 addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WebOrigin(String);

const LOCAL_HOSTS: [&str; 2] = ["localhost", "127.0.0.1"];

impl WebOrigin {
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        let shape = || {
            ParseError::new(
                "must be an origin such as https://charity.example or https://charity.example:8443, \
                 without a path (not even /), query or fragment",
            )
        };
        let (scheme, authority) = input.split_once("://").ok_or_else(shape)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            _ => return Err(shape()),
        };
        if authority.is_empty() || authority.contains(['/', '?', '#', '\\']) {
            return Err(shape());
        }
        if authority.contains('@') {
            return Err(ParseError::new("must not contain user information (user@)"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port = (!port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| port.parse::<u16>().ok())
                    .flatten()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| ParseError::new("the port must be 1 to 65535"))?;
                (host, Some(port))
            }
            None => (authority, None),
        };
        let host = host.to_ascii_lowercase();
        if !is_host(&host) {
            return Err(ParseError::new(
                "the host must be a domain name (in its xn-- form if it has non-ASCII letters) or an IPv4 address",
            ));
        }
        if scheme == "http" && !LOCAL_HOSTS.contains(&host.as_str()) {
            return Err(ParseError::new("must use https (plain http only for localhost and 127.0.0.1)"));
        }
        Ok(Self(match port.filter(|p| *p != default_port) {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WebOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A DNS name of letters, digits and hyphens (labels of 1 to 63, not starting or ending with a hyphen, 253 in all),
/// or a dotted IPv4 address.
fn is_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<std::net::Ipv4Addr>().is_ok();
    }
    host.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// The origins a tenant's widget may be embedded on: at most [`MAX_ALLOWED_ORIGINS`], each a [`WebOrigin`], in the
/// order given without repeats (two spellings of one origin are one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins(Vec<WebOrigin>);

impl AllowedOrigins {
    /// Parses a list; every invalid entry is reported with its index, and a list that is too long as a whole
    /// (index `None`).
    pub fn parse_list(items: &[String]) -> Result<Self, Vec<(Option<usize>, ParseError)>> {
        let mut errors = Vec::new();
        if items.len() > MAX_ALLOWED_ORIGINS {
            errors.push((None, ParseError::new(format!("must hold at most {MAX_ALLOWED_ORIGINS} origins"))));
        }
        let mut origins: Vec<WebOrigin> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match WebOrigin::parse(item) {
                Ok(origin) if !origins.contains(&origin) => origins.push(origin),
                Ok(_) => {}
                Err(e) => errors.push((Some(i), e)),
            }
        }
        if errors.is_empty() { Ok(Self(origins)) } else { Err(errors) }
    }

    /// Origins as stored (written by [`AllowedOrigins::parse_list`]); any that no longer parse are dropped.
    pub fn from_stored(items: &[String]) -> Self {
        let mut origins: Vec<WebOrigin> = Vec::new();
        for origin in items.iter().filter_map(|s| WebOrigin::parse(s).ok()) {
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        Self(origins)
    }

    /// The request's `Origin` header, normalised, when it is one of these.
    pub fn admit(&self, header: Option<&str>) -> Option<WebOrigin> {
        let origin = WebOrigin::parse(header?.trim()).ok()?;
        self.0.contains(&origin).then_some(origin)
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|o| o.0.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(s: &str) -> Result<String, String> {
        WebOrigin::parse(s).map(|o| o.0).map_err(|e| e.to_string())
    }

    #[test]
    fn origins_are_lower_cased_without_default_ports() {
        assert_eq!(parsed("https://Charity.Example"), Ok("https://charity.example".into()));
        assert_eq!(parsed("HTTPS://charity.example:443"), Ok("https://charity.example".into()));
        assert_eq!(parsed("https://charity.example:8443"), Ok("https://charity.example:8443".into()));
        assert_eq!(parsed("http://localhost:5173"), Ok("http://localhost:5173".into()));
        assert_eq!(parsed("http://127.0.0.1:80"), Ok("http://127.0.0.1".into()));
        assert_eq!(parsed("https://xn--bcher-kva.example"), Ok("https://xn--bcher-kva.example".into()));
        assert_eq!(parsed("https://10.0.0.7"), Ok("https://10.0.0.7".into()));
    }

    #[test]
    fn anything_but_an_origin_is_refused() {
        for bad in [
            "https://charity.example/",
            "https://charity.example/donate",
            "https://charity.example?x=1",
            "https://charity.example#top",
            "https://user@charity.example",
            "https://user:pw@charity.example",
            "ftp://charity.example",
            "charity.example",
            "https://",
            "https://:443",
            "https://charity.example:0",
            "https://charity.example:65536",
            "https://charity.example:",
            "https://charity.example:+80",
            "https://bücher.example",
            "https://-bad.example",
            "https://bad-.example",
            "https://a..b",
            "https://[::1]",
            "https://999.1.1.1",
            "http://charity.example",
            "http://localhost.charity.example",
            "null",
            "",
        ] {
            assert!(WebOrigin::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parsed("http://charity.example").unwrap_err().contains("https"));
        assert!(parsed("https://u@charity.example").unwrap_err().contains("user"));
    }

    #[test]
    fn lists_are_deduplicated_bounded_and_report_each_bad_entry() {
        let list = AllowedOrigins::parse_list(&[
            "https://a.example".into(),
            "https://A.example:443".into(),
            "http://localhost:3000".into(),
        ])
        .unwrap();
        assert_eq!(list.to_vec(), ["https://a.example", "http://localhost:3000"]);

        let errors = AllowedOrigins::parse_list(&["https://a.example".into(), "x".into(), "https://b.example/".into()])
            .unwrap_err();
        assert_eq!(errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [Some(1), Some(2)]);

        let many: Vec<String> = (0..21).map(|i| format!("https://s{i}.example")).collect();
        let errors = AllowedOrigins::parse_list(&many).unwrap_err();
        assert_eq!(errors.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [None]);
        assert!(AllowedOrigins::parse_list(&many[..20]).is_ok());
        assert_eq!(AllowedOrigins::parse_list(&[]).unwrap().to_vec(), Vec::<String>::new());
    }

    #[test]
    fn a_request_origin_is_admitted_only_when_listed() {
        let list = AllowedOrigins::from_stored(&["https://a.example".into(), "http://localhost:3000".into()]);
        assert_eq!(list.admit(Some("https://A.example")).unwrap().as_str(), "https://a.example");
        assert_eq!(list.admit(Some("https://a.example:443")).unwrap().as_str(), "https://a.example");
        assert!(list.admit(Some("http://localhost:3000")).is_some());
        assert!(list.admit(Some("http://localhost:3001")).is_none());
        assert!(list.admit(Some("https://b.example")).is_none());
        assert!(list.admit(Some("null")).is_none());
        assert!(list.admit(None).is_none());
        assert!(AllowedOrigins::default().admit(Some("https://a.example")).is_none());
    }

    proptest! {
        #[test]
        fn a_parsed_origin_parses_to_itself(host in "[a-z][a-z0-9-]{0,20}[a-z0-9](\\.[a-z]{2,10}){1,3}",
                                            port in proptest::option::of(1u16..)) {
            let input = match port { Some(p) => format!("https://{host}:{p}"), None => format!("https://{host}") };
            let origin = WebOrigin::parse(&input).unwrap();
            prop_assert_eq!(WebOrigin::parse(origin.as_str()).unwrap(), origin.clone());
            prop_assert!(!origin.as_str().ends_with(":443"));
        }

        #[test]
        fn anything_with_a_path_is_refused(path in "/[ -~]{0,20}") {
            let input = format!("https://charity.example{path}");
            prop_assert!(WebOrigin::parse(&input).is_err());
        }
    }
}
