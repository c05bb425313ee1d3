//! Which address a request comes from. The peer's own address, unless the peer is one of the
//! operator's trusted reverse proxies (`--trusted-proxy`): then the `Forwarded` (RFC 7239) or
//! `X-Forwarded-For` header is read from its right-hand end, past every trusted hop, to the
//! first address no trusted proxy vouches for. Headers from untrusted peers are ignored, so a
//! client cannot pick its own rate-limit key.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::error::{Error, Result};

/// The operator's trusted proxies, as networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses `CIDR` or bare addresses (`10.0.0.0/8`, `127.0.0.1`, `::1`).
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self> {
        let mut nets = Vec::with_capacity(items.len());
        for item in items {
            let item = item.as_ref().trim();
            let net = IpNet::from_str(item)
                .or_else(|_| IpAddr::from_str(item).map(IpNet::from))
                .map_err(|_| {
                    Error::Config(format!(
                        "--trusted-proxy {item:?}: expected an address or a CIDR such as 10.0.0.0/8"
                    ))
                })?;
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// True when no proxy is trusted (headers are never read).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying `forwarded` (the values of
    /// every `Forwarded` header, in order) and `x_forwarded_for` (likewise).
    pub fn client(&self, peer: IpAddr, forwarded: &[&str], x_forwarded_for: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<Option<IpAddr>> = if !forwarded.is_empty() {
            forwarded
                .iter()
                .flat_map(|v| v.split(','))
                .map(forwarded_for)
                .collect()
        } else {
            x_forwarded_for
                .iter()
                .flat_map(|v| v.split(','))
                .map(|h| parse_node(h.trim()))
                .collect()
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                // An address no one can vouch for ("unknown", an obfuscated name, garbage):
                // the last trusted hop is as far as we can see.
                None => return client,
                Some(ip) if self.trusts(ip) => client = ip,
                Some(ip) => return ip,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so `::ffff:10.0.0.1` matches `10.0.0.0/8`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.1;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then(|| parse_node(value.trim().trim_matches('"')))
            .flatten()
    })
}

/// A node: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    let (ip, port) = node.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client address of a gRPC request, through `trusted` proxies; `None` when the
/// transport gives no peer address.
pub fn client_of<T>(req: &tonic::Request<T>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.remote_addr()?.ip();
    if trusted.is_empty() {
        return Some(canonical(peer));
    }
    let values = |name: &str| -> Vec<&str> {
        req.metadata()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    };
    Some(trusted.client(peer, &values("forwarded"), &values("x-forwarded-for")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(items: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(items).unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let t = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            t.client(ip("203.0.113.9"), &[], &["1.2.3.4"]),
            ip("203.0.113.9")
        );
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.0.0.1"), &[], &["1.2.3.4"]),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_past_trusted_hops() {
        let t = proxies(&["10.0.0.0/8", "192.168.1.1"]);
        // A client-forged left-hand entry never wins over what our proxies saw.
        let got = t.client(ip("10.0.0.2"), &[], &["6.6.6.6, 198.51.100.7, 192.168.1.1"]);
        assert_eq!(got, ip("198.51.100.7"));
        let got = t.client(ip("10.0.0.2"), &[], &["6.6.6.6", "198.51.100.7:5000"]);
        assert_eq!(got, ip("198.51.100.7"), "several header lines, a port");
        assert_eq!(
            t.client(ip("10.0.0.2"), &[], &[]),
            ip("10.0.0.2"),
            "no header"
        );
        let got = t.client(ip("10.0.0.2"), &[], &["10.1.1.1, 10.2.2.2"]);
        assert_eq!(got, ip("10.1.1.1"), "every hop trusted: the leftmost");
    }

    #[test]
    fn forwarded_is_preferred_and_parsed() {
        let t = proxies(&["::1", "127.0.0.1"]);
        let got = t.client(
            ip("::1"),
            &[r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https;by=127.0.0.1"#],
            &["9.9.9.9"],
        );
        assert_eq!(got, ip("2001:db8::7"));
        let got = t.client(ip("127.0.0.1"), &["for=unknown"], &[]);
        assert_eq!(
            got,
            ip("127.0.0.1"),
            "an unknown hop stops at the last trusted one"
        );
        let got = t.client(ip("::ffff:127.0.0.1"), &["For=198.51.100.1"], &[]);
        assert_eq!(
            got,
            ip("198.51.100.1"),
            "mapped peer, parameter names are case-blind"
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_flag_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/33"]).unwrap_err();
        assert!(e.to_string().contains("--trusted-proxy"), "{e}");
        assert!(TrustedProxies::parse(&["proxy.internal"]).is_err());
    }
}
