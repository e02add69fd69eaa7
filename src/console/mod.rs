//! The operator console at `/console`: server-rendered pages over the application layer, which
//! decides everything (the console adds no rule of its own). Forms post back to keygate (each
//! carries the session's CSRF token), pages work without JavaScript but for the copy button,
//! and every page goes out with a strict Content-Security-Policy, `X-Frame-Options: DENY` and
//! `Cache-Control: no-store`.

mod assets;
mod audit;
mod forms;
mod invitation;
mod keys;
mod login;
mod organizations;
mod page;
mod reveal;
mod session;
mod signing_keys;
mod usage_chart;
mod users;
mod view;
mod webhooks;

use actix_web::{HttpResponse, web};

pub use page::ConsoleError;

/// Registers the console's pages under `/console`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/login", web::get().to(login::form))
            .route("/login", web::post().to(login::submit))
            .route("/logout", web::post().to(login::log_out))
            .route("/assets/{file}", web::get().to(assets::serve))
            .route("/keys", web::get().to(keys::list))
            .route("/keys", web::post().to(keys::create))
            .route("/keys/new", web::get().to(keys::new))
            .route("/keys/{client_id}", web::get().to(keys::detail))
            .route("/keys/{client_id}/{action}", web::get().to(keys::confirm))
            .route("/keys/{client_id}/{action}", web::post().to(keys::act))
            .route("/reveal/{handle}", web::get().to(reveal::show))
            .route("/invitations/{token}", web::get().to(invitation::form))
            .route("/invitations/{token}", web::post().to(invitation::accept))
            .route("/users", web::get().to(users::list))
            .route("/users", web::post().to(users::create))
            .route("/users/new", web::get().to(users::new))
            .route("/users/{id}", web::get().to(users::detail))
            .route("/users/{id}", web::post().to(users::update))
            .route("/audit", web::get().to(audit::list))
            .route("/webhooks", web::get().to(webhooks::list))
            .route("/webhooks", web::post().to(webhooks::create))
            .route("/webhooks/{id}", web::get().to(webhooks::detail))
            .route("/webhooks/{id}/{action}", web::get().to(webhooks::confirm))
            .route("/webhooks/{id}/{action}", web::post().to(webhooks::act))
            .route("/organizations", web::get().to(organizations::list))
            .route("/organizations", web::post().to(organizations::create))
            .route(
                "/organizations/{name}/{action}",
                web::get().to(organizations::confirm),
            )
            .route(
                "/organizations/{name}/{action}",
                web::post().to(organizations::act),
            )
            .route("/signing-keys", web::get().to(signing_keys::list))
            .route("/signing-keys/rotate", web::get().to(signing_keys::confirm))
            .route("/signing-keys/rotate", web::post().to(signing_keys::rotate))
            .default_service(web::to(page::not_found)),
    );
}

/// The page operators live on.
async fn home() -> HttpResponse {
    page::see_other("/console/keys")
}

/// Where an invitation link leads; what follows is its token.
const INVITATION_PATH: &str = "/console/invitations/";

/// A request path as the access log may show it: an invitation link's token masked.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix(INVITATION_PATH) {
        Some(token) if !token.is_empty() => format!("{INVITATION_PATH}…").into(),
        _ => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn invitation_tokens_never_reach_the_access_log() {
        assert_eq!(
            loggable_path("/console/invitations/kgi_secret"),
            "/console/invitations/…"
        );
        assert_eq!(loggable_path("/console/keys"), "/console/keys");
        assert_eq!(loggable_path("/v1/token"), "/v1/token");
    }
}
