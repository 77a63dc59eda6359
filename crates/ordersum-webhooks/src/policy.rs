//! Where a webhook may be sent: the URL forms accepted, and the addresses
//! and ports a delivery may connect to. Every address is judged as the
//! socket it will connect to, after the URL parser (WHATWG, the one reqwest
//! uses) has normalised forms such as `0177.0.0.1` or `2130706433`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use url::{Host, Url};

pub use crate::ranges::{canonical, refused_kind};

/// Longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A list of CIDR networks (`10.0.0.0/8,127.0.0.1/32`); empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<IpNet>);

impl FromStr for Networks {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is not a CIDR network"))?;
            nets.push(net.trunc());
        }
        Ok(Networks(nets))
    }
}

impl fmt::Display for Networks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&items.join(","))
    }
}

/// A list of TCP ports (`8443,9000`); empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ports(pub Vec<u16>);

impl FromStr for Ports {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|item| match item.parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(format!("{item:?} is not a TCP port")),
            })
            .collect::<Result<_, _>>()
            .map(Ports)
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&items.join(","))
    }
}

/// What the operator allows.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Networks allowed on every port, even private ones.
    pub allowed_networks: Networks,
    /// Ports allowed on public addresses besides 443 and 80.
    pub allowed_ports: Ports,
    /// Whether `http://` URLs are accepted.
    pub allow_http: bool,
}

/// Why a URL or an address is refused; the text is the customer's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("URL is not a valid absolute URL")]
    Invalid,
    #[error("URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("URL scheme must be https{}", if *.0 { " or http" } else { "" })]
    Scheme(bool),
    #[error("URL must not hold a user name or password")]
    Credentials,
    #[error("URL must not hold a fragment")]
    Fragment,
    #[error("URL has no host")]
    NoHost,
    #[error("address {0} is {1}, which webhooks may not reach")]
    Address(IpAddr, &'static str),
    #[error("port {0} is not allowed for webhooks (allowed: 443, 80{1})")]
    Port(u16, String),
    #[error("host {0} does not resolve to any address")]
    NoAddress(String),
    #[error("host {0} is {1}, which webhooks may not reach")]
    Name(String, &'static str),
}

/// A URL that passed [`Policy::check_url`]: what to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: Url,
    /// An address literal in the URL, or the name to resolve.
    pub host: TargetHost,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetHost {
    Ip(IpAddr),
    Name(String),
}

impl Policy {
    /// Checks what can be checked without a lookup: the form of the URL, an
    /// address literal and the port.
    pub fn check_url(&self, text: &str) -> Result<Target, Refusal> {
        if text.len() > MAX_URL_LEN {
            return Err(Refusal::TooLong);
        }
        let url = Url::parse(text.trim()).map_err(|_| Refusal::Invalid)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refusal::Scheme(self.allow_http)),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refusal::Credentials);
        }
        if url.fragment().is_some() {
            return Err(Refusal::Fragment);
        }
        let port = url.port_or_known_default().ok_or(Refusal::NoHost)?;
        let host = match url.host().ok_or(Refusal::NoHost)? {
            Host::Ipv4(ip) => TargetHost::Ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => TargetHost::Ip(IpAddr::V6(ip)),
            Host::Domain(name) => TargetHost::Name(name.to_owned()),
        };
        if let TargetHost::Ip(ip) = host {
            self.check_addr(ip, port)?;
        }
        Ok(Target { url, host, port })
    }

    /// Whether a delivery may connect to `ip:port`.
    pub fn check_addr(&self, ip: IpAddr, port: u16) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if self.allowed_networks.0.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        if let Some(kind) = refused_kind(ip) {
            return Err(Refusal::Address(ip, kind));
        }
        if port == 443 || port == 80 || self.allowed_ports.0.contains(&port) {
            return Ok(());
        }
        let extra: String = self
            .allowed_ports
            .0
            .iter()
            .map(|p| format!(", {p}"))
            .collect();
        Err(Refusal::Port(port, extra))
    }
}

/// Names that are never public: `localhost` and its subdomains (RFC 6761),
/// and the private-use `.internal` (where cloud metadata services live, e.g.
/// `metadata.google.internal`). A name is judged by what it resolves to;
/// these are refused also when they do not resolve here (another resolver
/// may well answer them).
pub fn refused_name(name: &str) -> Option<&'static str> {
    let name = lookup_name(name).to_ascii_lowercase();
    let under = |zone: &str| name == zone || name.ends_with(&format!(".{zone}"));
    if under("localhost") {
        Some("loopback (localhost)")
    } else if under("internal") {
        Some("a private-use name (.internal)")
    } else {
        None
    }
}

/// The name to look up: without the trailing dot of a fully qualified
/// name, which some resolvers refuse and others ignore (judged the same
/// either way).
pub fn lookup_name(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strict() -> Policy {
        Policy::default()
    }

    fn refusal(policy: &Policy, url: &str) -> Refusal {
        policy.check_url(url).expect_err(url)
    }

    #[test]
    fn address_forms_are_judged_by_the_address_they_reach() {
        let policy = Policy {
            allow_http: true,
            ..strict()
        };
        for (url, ip) in [
            ("https://127.0.0.1/", "127.0.0.1"),
            ("https://0177.0.0.1/", "127.0.0.1"),
            ("https://2130706433/", "127.0.0.1"),
            ("https://0x7f.1/", "127.0.0.1"),
            ("https://127.1/", "127.0.0.1"),
            ("https://[::ffff:127.0.0.1]/", "127.0.0.1"),
            ("https://[::ffff:7f00:1]/", "127.0.0.1"),
            ("https://[::127.0.0.1]/", "127.0.0.1"),
            ("https://[64:ff9b::a9fe:a9fe]/", "169.254.169.254"),
            ("https://[2002:a00:1::]/", "10.0.0.1"),
            (
                "https://169.254.169.254/latest/meta-data/",
                "169.254.169.254",
            ),
            ("http://10.1.2.3/", "10.1.2.3"),
            ("https://172.31.255.255/", "172.31.255.255"),
            ("https://192.168.0.1/", "192.168.0.1"),
            ("https://100.64.0.1/", "100.64.0.1"),
            ("https://0.0.0.0/", "0.0.0.0"),
            ("https://224.0.0.1/", "224.0.0.1"),
            ("https://[::1]/", "::1"),
            ("https://[::]/", "::"),
            ("https://[fd00::1]/", "fd00::1"),
            ("https://[fe80::1]/", "fe80::1"),
            ("https://[ff02::1]/", "ff02::1"),
        ] {
            match refusal(&policy, url) {
                Refusal::Address(got, _) => assert_eq!(got.to_string(), ip, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn public_addresses_pass_on_443_and_80_only() {
        let policy = Policy {
            allow_http: true,
            ..strict()
        };
        assert!(policy.check_url("https://93.184.215.14/hook").is_ok());
        assert!(policy.check_url("http://93.184.215.14/hook").is_ok());
        assert!(policy.check_url("https://[2606:4700::1111]/").is_ok());
        assert!(matches!(
            refusal(&policy, "https://93.184.215.14:8443/"),
            Refusal::Port(8443, _)
        ));
        let more = Policy {
            allowed_ports: "8443".parse().unwrap(),
            ..policy
        };
        assert!(more.check_url("https://93.184.215.14:8443/").is_ok());
    }

    #[test]
    fn an_allowed_network_is_allowed_on_every_port() {
        let policy = Policy {
            allowed_networks: "127.0.0.1/32".parse().unwrap(),
            allow_http: true,
            ..strict()
        };
        assert!(policy.check_url("http://127.0.0.1:39001/").is_ok());
        assert!(policy.check_url("http://[::ffff:127.0.0.1]:39001/").is_ok());
        assert!(matches!(
            refusal(&policy, "http://127.0.0.2/"),
            Refusal::Address(_, "loopback")
        ));
    }

    #[test]
    fn url_forms_that_hide_things_are_refused() {
        let policy = strict();
        assert_eq!(
            refusal(&policy, "http://93.184.215.14/"),
            Refusal::Scheme(false)
        );
        assert_eq!(
            refusal(&policy, "ftp://example.com/"),
            Refusal::Scheme(false)
        );
        assert_eq!(
            refusal(&policy, "https://u:p@example.com/"),
            Refusal::Credentials
        );
        assert_eq!(
            refusal(&policy, "https://example.com@127.0.0.1/"),
            Refusal::Credentials
        );
        assert_eq!(
            refusal(&policy, "https://example.com/#x"),
            Refusal::Fragment
        );
        assert_eq!(refusal(&policy, "not a url"), Refusal::Invalid);
        assert_eq!(refusal(&policy, "/relative"), Refusal::Invalid);
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(refusal(&policy, &long), Refusal::TooLong);
    }

    #[test]
    fn names_are_left_to_the_lookup() {
        let target = strict().check_url("https://Example.COM./hook").unwrap();
        assert_eq!(target.host, TargetHost::Name("example.com.".into()));
        assert_eq!(target.port, 443);
        for name in ["LOCALHOST.", "a.localhost", "metadata.google.internal"] {
            assert!(refused_name(name).is_some(), "{name}");
        }
        assert_eq!(refused_name("hooks.example.com"), None);
        assert_eq!(refused_name("notlocalhost"), None);
    }

    #[test]
    fn lists_parse_and_print() {
        let nets: Networks = " 10.0.0.0/8, 127.0.0.1 ,::1".parse().unwrap();
        assert_eq!(nets.to_string(), "10.0.0.0/8,127.0.0.1/32,::1/128");
        assert!("10.0.0.0/33".parse::<Networks>().is_err());
        assert!("0".parse::<Ports>().is_err());
        assert_eq!("".parse::<Ports>().unwrap(), Ports::default());
    }
}
