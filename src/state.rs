//! What every handler may reach: the application layer, and how this deployment reads the
//! requests that reach it (which proxies it trusts).

use actix_web::HttpRequest;

use crate::auth::origin;
use crate::metrics::Metrics;
use crate::service::{Origin, Service};

pub struct AppState {
    pub service: Service,
    pub metrics: Metrics,
}

impl AppState {
    /// Where the request comes from: its address (behind trusted proxies, the client's) and
    /// user agent.
    pub fn origin(&self, req: &HttpRequest) -> Origin {
        origin::of(req, &self.service.settings.rate_limit.trusted_proxies)
    }

    /// Whether the session cookie must be `Secure`: by configuration, or for a request that
    /// arrived over HTTPS (keygate's TLS, or a trusted proxy's word). A client's own header is
    /// never believed.
    pub fn secure_cookies(&self, req: &HttpRequest) -> bool {
        self.service.settings.server.secure_cookies
            || origin::is_https(req, &self.service.settings.rate_limit.trusted_proxies)
    }
}
