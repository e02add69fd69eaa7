//! Where a request comes from. The connection's address, or, when the connection comes from
//! a trusted proxy, the right-most untrusted address of `X-Forwarded-For` (the left part of
//! that header is whatever the client chose to send); the same proxies alone may say the
//! request arrived over HTTPS.

use std::net::IpAddr;

use actix_web::HttpRequest;
use actix_web::http::header;
use ipnet::IpNet;

use crate::service::Origin;

/// The request's origin, for rate limits and the audit trail.
pub fn of(req: &HttpRequest, trusted_proxies: &[IpNet]) -> Origin {
    Origin {
        address: client_address(req, trusted_proxies),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect()),
    }
}

fn peer(req: &HttpRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())
}

fn trusted(proxies: &[IpNet], ip: &IpAddr) -> bool {
    proxies.iter().any(|net| net.contains(ip))
}

/// The client's address.
pub fn client_address(req: &HttpRequest, trusted_proxies: &[IpNet]) -> IpAddr {
    let peer = peer(req);
    if !trusted(trusted_proxies, &peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted(trusted_proxies, ip))
        .unwrap_or(peer)
}

/// Whether the connection comes from a trusted proxy.
pub fn from_trusted_proxy(req: &HttpRequest, trusted_proxies: &[IpNet]) -> bool {
    trusted(trusted_proxies, &peer(req))
}

/// Whether the request arrived over HTTPS: keygate's own TLS, or a trusted proxy's word.
pub fn is_https(req: &HttpRequest, trusted_proxies: &[IpNet]) -> bool {
    req.app_config().secure() || arrived_over_https(req, trusted_proxies)
}

/// Whether a trusted proxy says the request arrived over HTTPS (`X-Forwarded-Proto: https`).
pub fn arrived_over_https(req: &HttpRequest, trusted_proxies: &[IpNet]) -> bool {
    trusted(trusted_proxies, &peer(req))
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn proxies() -> Vec<IpNet> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let via_proxy = TestRequest::default()
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.0.0.2"))
            .to_http_request();
        assert_eq!(
            client_address(&via_proxy, &proxies()),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let direct = TestRequest::default()
            .peer_addr("192.0.2.50:5000".parse().unwrap())
            .insert_header(("x-forwarded-for", "203.0.113.9"))
            .to_http_request();
        assert_eq!(
            client_address(&direct, &proxies()),
            "192.0.2.50".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn only_a_trusted_proxy_says_https() {
        let via_proxy = TestRequest::default()
            .peer_addr("10.1.2.3:5000".parse().unwrap())
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        assert!(arrived_over_https(&via_proxy, &proxies()));
        let direct = TestRequest::default()
            .peer_addr("192.0.2.50:5000".parse().unwrap())
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        assert!(!arrived_over_https(&direct, &proxies()));
        assert!(!arrived_over_https(&via_proxy, &[]));
    }
}
