//! The addresses no webhook may reach unless the operator allows their
//! network: everything that is not globally routable (loopback, RFC 1918,
//! CGNAT, link-local, ULA, multicast, documentation and reserved ranges),
//! with IPv6 forms that carry an IPv4 address judged as that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64,
/// 6to4) judged as that IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    // ::a.b.c.d (deprecated IPv4-compatible), not :: or ::1.
    if s[..6] == [0; 6] && u32::from(tail) > 1 {
        return Some(tail);
    }
    // 64:ff9b::/96 NAT64.
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    // 2002::/16 6to4: the IPv4 address in bits 16–48.
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    None
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const TABLE: [(&str, &str); 16] = [
        ("0.0.0.0/8", "\"this network\" (0/8)"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (CGNAT, 100.64/10)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "broadcast"),
    ];
    TABLE.iter().find_map(|(net, kind)| {
        let net: ipnet::Ipv4Net = net.parse().ok()?;
        net.contains(&ip).then_some(*kind)
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    const TABLE: [(&str, &str); 10] = [
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local (ULA)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ];
    TABLE.iter().find_map(|(net, kind)| {
        let net: ipnet::Ipv6Net = net.parse().ok()?;
        net.contains(&ip).then_some(*kind)
    })
}
