//! Sending one webhook delivery: a JSON `POST` signed the Standard Webhooks way
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`), over a client that refuses loopback, link-local, private and
//! unique-local addresses unless the deployment allows their network. The check runs on the
//! addresses a host resolves to, as the connection is made, so a name that resolves somewhere
//! public when saved and somewhere private later (DNS rebinding) still cannot reach inside.
//! Redirects are not followed; every attempt has a timeout.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// At most this much of a receiver's answer is kept with the attempt.
pub const MAX_KEPT_BODY: usize = 1024;

/// The value of `webhook-signature`: one `v1,<base64>` per key (two while a rolled secret's
/// grace lasts), space-separated.
pub fn signature(id: &str, timestamp: i64, body: &str, keys: &[Vec<u8>]) -> String {
    let content = format!("{id}.{timestamp}.{body}");
    keys.iter()
        .map(|key| {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), content.as_bytes());
            format!("v1,{}", STANDARD.encode(tag.as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One delivery, ready to send.
pub struct Message<'a> {
    pub url: &'a str,
    /// `webhook-id`: the event's id, the same on every attempt, so receivers can drop repeats.
    pub id: &'a str,
    pub timestamp: i64,
    pub body: &'a str,
    /// The HMAC keys of the endpoint's secrets.
    pub keys: &'a [Vec<u8>],
}

/// What one attempt came to.
#[derive(Debug)]
pub struct Sent {
    pub status: Option<u16>,
    /// The start of the answer's body.
    pub body: Option<String>,
    /// Why there was no answer, or why it is refused.
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl Sent {
    /// A `2xx` answer; anything else is retried.
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

pub struct Sender {
    client: reqwest::Client,
    allowed: Arc<Vec<IpNet>>,
}

impl Sender {
    pub fn new(allowed: Vec<IpNet>, timeout: Duration) -> anyhow::Result<Sender> {
        // reqwest takes rustls's process-wide provider; a second install is a no-op.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let allowed = Arc::new(allowed);
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .dns_resolver(Arc::new(SafeResolver {
                allowed: allowed.clone(),
            }))
            .user_agent(concat!("keygate-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender { client, allowed })
    }

    pub async fn send(&self, message: &Message<'_>) -> Sent {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as i64;
        if let Err(refused) = self.check_literal(message.url) {
            return Sent {
                status: None,
                body: None,
                error: Some(refused),
                duration_ms: 0,
            };
        }
        let request = self
            .client
            .post(message.url)
            .header("content-type", "application/json")
            .header("webhook-id", message.id)
            .header("webhook-timestamp", message.timestamp.to_string())
            .header(
                "webhook-signature",
                signature(message.id, message.timestamp, message.body, message.keys),
            )
            .body(message.body.to_owned());
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = read_start(response).await;
                Sent {
                    status: Some(status),
                    body,
                    error: None,
                    duration_ms: elapsed(),
                }
            }
            Err(err) => Sent {
                status: None,
                body: None,
                error: Some(describe(&err)),
                duration_ms: elapsed(),
            },
        }
    }

    /// An address written in the URL is never resolved, so it is checked here.
    fn check_literal(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "the URL does not parse".to_owned())?;
        let host = parsed.host_str().unwrap_or_default();
        let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        else {
            return Ok(());
        };
        if permitted(ip, &self.allowed) {
            Ok(())
        } else {
            Err(format!(
                "{ip} is a private address (allow its network in webhooks.allowed_networks)"
            ))
        }
    }
}

/// The first [`MAX_KEPT_BODY`] bytes of an answer, as text.
async fn read_start(mut response: reqwest::Response) -> Option<String> {
    let mut kept = Vec::new();
    while kept.len() < MAX_KEPT_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(MAX_KEPT_BODY);
    Some(String::from_utf8_lossy(&kept).into_owned())
}

fn describe(err: &reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}

/// Resolves with the system resolver, keeping only the addresses deliveries may reach.
struct SafeResolver {
    allowed: Arc<Vec<IpNet>>,
}

impl Resolve for SafeResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| permitted(a.ip(), &allowed))
                .collect();
            if kept.is_empty() {
                let refused: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves only to private addresses (allow their network in \
                     webhooks.allowed_networks)"
                )
                .into();
                return Err(refused);
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Whether a delivery may reach `ip`: a public address, or one of an allowed network.
pub fn permitted(ip: IpAddr, allowed: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    allowed.iter().any(|net| net.contains(&ip)) || is_public(ip)
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                // Shared address space (RFC 6598), and benchmarking (RFC 2544).
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Unique local (fc00::/7) and link-local (fe80::/10).
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // Documentation (2001:db8::/32).
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses_are_refused_unless_allowed() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = private.parse().unwrap();
            assert!(!permitted(ip, &[]), "{private} is refused");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(
                permitted(public.parse().unwrap(), &[]),
                "{public} is allowed"
            );
        }
        let loopback: IpNet = "127.0.0.0/8".parse().unwrap();
        assert!(permitted("127.0.0.1".parse().unwrap(), &[loopback]));
        assert!(!permitted("10.0.0.1".parse().unwrap(), &[loopback]));
    }

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The Standard Webhooks specification's test vector.
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = signature(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
            &[key],
        );
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
