//! Authentication: the bearer-token extractor resource routes use, the client credentials of
//! the token endpoint, and the brute-force limiter in front of them.

mod bearer;
pub mod caller;
pub mod client_credentials;
pub mod rate_limit;
pub mod verified;

pub use bearer::{Authenticated, NoScope, ScopeRequirement, bearer_token};

/// Where a request comes from, for rate limits and the audit trail.
#[derive(Clone, Debug)]
pub struct Origin {
    pub address: std::net::IpAddr,
    pub user_agent: Option<String>,
}

impl Origin {
    /// The client's address (see [`rate_limit::FailureLimiter::client_address`]) and user agent.
    pub fn of(req: &actix_web::HttpRequest, limiter: &rate_limit::FailureLimiter) -> Origin {
        Origin {
            address: limiter.client_address(req),
            user_agent: req
                .headers()
                .get(actix_web::http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(200).collect()),
        }
    }

    pub fn actor(&self, label: String) -> crate::lifecycle::Actor {
        crate::lifecycle::Actor {
            label,
            client_ip: Some(self.address.to_string()),
            user_agent: self.user_agent.clone(),
        }
    }
}
