//! Authentication: the bearer-token extractor resource routes use, the client credentials of
//! the token endpoint, and the brute-force limiter in front of them.

mod bearer;
pub mod caller;
pub mod client_credentials;
pub mod rate_limit;

pub use bearer::{Authenticated, NoScope, ScopeRequirement, bearer_token};
