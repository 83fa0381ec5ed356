//! The visitor's address, forwarded to the backend as `X-Forwarded-For` so that its
//! per-address throttles (sign-in, sign-up) count each visitor, not this frontend.
//!
//! By default the visitor is the TCP peer, and an incoming `X-Forwarded-For` is ignored (a
//! visitor could write anything there). Behind a reverse proxy, list its addresses in
//! `TRUSTED_PROXIES`: when the peer is one of them, the header is read from the right,
//! skipping trusted hops, and the first untrusted address is the visitor. The backend must in
//! turn trust this frontend (its `TRUSTED_PROXIES`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    /// The address of the visitor whose request is being handled.
    static CLIENT_ADDR: IpAddr;
}

/// The visitor's address for the request being handled, if the middleware ran.
pub fn current() -> Option<IpAddr> {
    CLIENT_ADDR.try_with(|a| *a).ok()
}

/// CIDRs (as address and prefix length) whose `X-Forwarded-For` is believed; empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs or addresses (`10.0.0.0/8, 192.168.1.5`); the
    /// error names the bad entry.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let bad =
                || format!("{item:?} is not a CIDR or address; use e.g. 10.0.0.0/8,192.168.0.0/16");
            let (addr, len) = match item.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (item, None),
            };
            let ip = parse_ip(addr).ok_or_else(bad)?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
            };
            nets.push((ip, len));
        }
        Ok(TrustedProxies(nets))
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, len)| contains(*net, *len, ip))
    }

    /// The visitor's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let mut client = peer;
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
        let items: Vec<String> = self.0.iter().map(|(a, l)| format!("{a}/{l}")).collect();
        f.write_str(&items.join(","))
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

fn contains(net: IpAddr, len: u8, ip: IpAddr) -> bool {
    match (net, ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Middleware: resolves the visitor's address and keeps it for the backend calls the request
/// makes. Without a recorded peer (a router served without connect info) it does nothing.
pub async fn middleware(
    State(trusted): State<Arc<TrustedProxies>>,
    req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match peer {
        Some(peer) => {
            let client = trusted.client(peer, req.headers());
            CLIENT_ADDR.scope(client, next.run(req)).await
        }
        None => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = v.parse() {
            h.insert("x-forwarded-for", v);
        }
        h
    }

    #[test]
    fn parses_and_matches() {
        let t = TrustedProxies::parse("10.0.0.0/8, 192.168.1.5, fd00::/8").unwrap_or_default();
        assert_eq!(t.to_string(), "10.0.0.0/8,192.168.1.5/32,fd00::/8");
        assert!(t.trusts(ip("10.200.1.1")) && t.trusts(ip("192.168.1.5")));
        assert!(!t.trusts(ip("192.168.1.6")) && !t.trusts(ip("11.0.0.1")));
        assert!(t.trusts(ip("fd12::1")) && !t.trusts(ip("fe80::1")));
        assert!(t.trusts(ip("::ffff:10.0.0.1")));
        for bad in ["proxy", "10.0.0.0/33", "10.0.0.0/x", "::/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap_or_default()
                .trusts(ip("8.8.8.8"))
        );
    }

    #[test]
    fn the_forwarded_address_counts_only_from_a_trusted_peer() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("10.1.1.1"), &xff("203.0.113.9")),
            ip("10.1.1.1")
        );
        let t = TrustedProxies::parse("10.0.0.0/8").unwrap_or_default();
        assert_eq!(
            t.client(ip("10.1.1.1"), &xff("203.0.113.9")),
            ip("203.0.113.9")
        );
        assert_eq!(
            t.client(ip("10.1.1.1"), &xff("1.1.1.1, 203.0.113.9, 10.2.2.2")),
            ip("203.0.113.9")
        );
        assert_eq!(t.client(ip("10.1.1.1"), &xff("junk")), ip("10.1.1.1"));
        assert_eq!(
            t.client(ip("192.0.2.1"), &xff("203.0.113.9")),
            ip("192.0.2.1")
        );
    }
}
