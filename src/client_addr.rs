//! The client's address (contract v1.3): the TCP peer, unless the peer is
//! one of the trusted proxies (`TRUSTED_PROXIES`), in which case it is the
//! right-most address of `X-Forwarded-For` that is not itself a trusted
//! proxy. Every per-address limit (auth throttles, WebSocket caps) uses it.
//! Entries left of the first untrusted one are the client's to write, so
//! they are never believed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    /// A comma-separated list of CIDRs or single addresses; empty is none.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{item} is not an address or a CIDR network"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client of a request that arrived from `peer` with `headers`.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return canonical(peer);
        }
        let mut client = canonical(peer);
        // Several headers are one list, in order.
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect::<Vec<_>>();
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                // Garbage where an address should be: stop believing here.
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(canonical)
}

/// IPv4 addresses mapped into IPv6 (`::ffff:1.2.3.4`) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address of a request, for handlers and limits; also an
/// extractor (the unspecified address if [`remember`] did not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or(ClientAddr(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

/// Works out the client address once per request. A request with no TCP
/// peer (tests through `oneshot`) is from the unspecified address.
pub async fn remember(
    State(proxies): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let client = proxies.client_of(peer, request.headers());
    request.extensions_mut().insert(ClientAddr(client));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_of(ip("203.0.113.7"), &headers(&["1.2.3.4"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let render: TrustedProxies = "10.0.0.0/8, 104.16.0.0/13".parse().unwrap();
        // client, Cloudflare edge; Render's proxy is the peer.
        let forwarded = headers(&["198.51.100.9, 104.22.17.40"]);
        assert_eq!(
            render.client_of(ip("10.21.157.68"), &forwarded),
            ip("198.51.100.9")
        );
        // A client that writes its own header cannot choose its address.
        let spoofed = headers(&["6.6.6.6, 198.51.100.9, 104.22.17.40"]);
        assert_eq!(
            render.client_of(ip("10.21.157.68"), &spoofed),
            ip("198.51.100.9")
        );
        // Split over two headers, with a port.
        let split = headers(&["198.51.100.9:4711", "104.22.17.40"]);
        assert_eq!(render.client_of(ip("10.1.1.1"), &split), ip("198.51.100.9"));
        // Only proxies in the header, or none at all: the last one seen.
        assert_eq!(
            render.client_of(ip("10.1.1.1"), &headers(&["10.2.2.2"])),
            ip("10.2.2.2")
        );
        assert_eq!(
            render.client_of(ip("10.1.1.1"), &HeaderMap::new()),
            ip("10.1.1.1")
        );
        // Garbage stops the walk at the last good hop.
        let garbage = headers(&["198.51.100.9, not-an-address, 104.22.17.40"]);
        assert_eq!(
            render.client_of(ip("10.1.1.1"), &garbage),
            ip("104.22.17.40")
        );
    }

    #[test]
    fn mapped_ipv4_is_ipv4_and_bad_settings_are_refused() {
        let trusted: TrustedProxies = "127.0.0.1".parse().unwrap();
        assert_eq!(
            trusted.client_of(ip("::ffff:127.0.0.1"), &headers(&["2001:db8::1"])),
            ip("2001:db8::1")
        );
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().0.is_empty());
    }
}
