//! Authentication. At the web edge, above the application layer: the extractors
//! (`Authenticated<S>` for resource routes, `Operator<P>` for the management API) and where a
//! request comes from. Beneath it, importing nothing from it: parsing client credentials, the
//! failure limiter, and the verified-secret cache.

mod bearer;
pub mod caller;
pub mod client_credentials;
pub mod origin;
pub mod rate_limit;
pub mod verified;

pub use bearer::{Authenticated, NoScope, ScopeRequirement, bearer_token};
