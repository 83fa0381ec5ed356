//! The client address that per-address throttles are keyed on.
//!
//! By default it is the TCP peer. When the peer is a trusted reverse proxy (`TRUSTED_PROXIES`,
//! a list of CIDRs; in production the frontend, which forwards the browser's address), the
//! `X-Forwarded-For` list is read from the right, skipping trusted hops: the first untrusted
//! address is the client. An unreadable entry stops the walk at the hop that added it, so a
//! client cannot forge its way past a trusted proxy. IPv6 clients are keyed by their /64, the
//! block one subscriber usually holds.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

/// The CIDRs whose `X-Forwarded-For` is believed; empty: none (the peer is the client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs or single addresses (`10.0.0.0/8, 192.168.1.5`).
    /// The error is a sentence naming the bad entry.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(n) => n.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(a) => IpNet::from(a),
                    Err(_) => {
                        return Err(format!(
                            "{item:?} is not a CIDR or address; use e.g. 10.0.0.0/8,192.168.0.0/16"
                        ));
                    }
                },
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&items.join(","))
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// IPv4-mapped IPv6 (`::ffff:1.2.3.4`, as dual-stack sockets report) as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The throttling key of an address: itself for IPv4, its /64 for IPv6.
pub fn throttle_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// The caller's address as [`TrustedProxies::client`] resolves it (the unspecified address
/// when the server did not record a peer, as in router-only tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<crate::AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        Ok(ClientIp(state.trusted_proxies.client(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_cidrs_and_addresses() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.5 ,fd00::/8,").unwrap();
        assert_eq!(t.to_string(), "10.0.0.0/8,192.168.1.5/32,fd00::/8");
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        let e = TrustedProxies::parse("10.0.0.0/8,proxy.local").unwrap_err();
        assert!(e.contains("proxy.local"), "{e}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let t = TrustedProxies::default();
        assert_eq!(t.client(ip("10.1.2.3"), &xff(&["6.6.6.6"])), ip("10.1.2.3"));
    }

    #[test]
    fn a_trusted_peer_hands_over_to_the_forwarded_address() {
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
        // A client-supplied entry left of the real one is ignored.
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff(&["1.1.1.1, 203.0.113.7"])),
            ip("203.0.113.7")
        );
        // Several headers are one list; trusted hops are skipped from the right.
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff(&["203.0.113.7", "10.9.9.9"])),
            ip("203.0.113.7")
        );
        // All trusted: the leftmost.
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff(&["10.5.5.5"])),
            ip("10.5.5.5")
        );
        // No header: the peer.
        assert_eq!(t.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
        // Garbage stops the walk at the hop that appended it.
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff(&["203.0.113.7, nonsense"])),
            ip("10.1.2.3")
        );
        assert_eq!(
            t.client(ip("10.1.2.3"), &xff(&["[2001:db8::1]:443"])),
            ip("2001:db8::1")
        );
        // A mapped IPv4 peer counts as IPv4.
        assert_eq!(
            t.client(ip("::ffff:10.1.2.3"), &xff(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(
            throttle_key(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(throttle_key(ip("203.0.113.7")), ip("203.0.113.7"));
    }
}
