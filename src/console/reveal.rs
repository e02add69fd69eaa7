//! The one-time view of a secret just made: shown on the first visit only. A reload, the back
//! button or a copied address shows that it is gone, never the secret.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::page::{self, ConsoleError, Nav};
use super::session::ConsoleSession;
use crate::service::reveals::{self, Revealed};
use crate::state::AppState;

/// Keeps `revealed` for this session's next page; the handle of that page.
pub async fn stash(
    state: &AppState,
    session: &ConsoleSession,
    revealed: &Revealed,
) -> Result<String, ConsoleError> {
    Ok(reveals::stash(&state.service, session.live.session.id, revealed).await?)
}

/// A key's credentials, on their one view.
struct ShownKey {
    client_id: String,
    name: String,
    client_secret: String,
    curl: String,
}

/// An invitation link, on its one view.
struct ShownInvitation {
    user_id: String,
    email: String,
    url: String,
}

/// A webhook endpoint's signing secret, on its one view.
struct ShownWebhookSecret {
    endpoint_id: String,
    url: String,
    secret: String,
}

/// A generated password, on its one view.
struct ShownPassword {
    user_id: String,
    email: String,
    password: String,
}

/// What one view shows: one of these.
#[derive(Default)]
struct Shown {
    key: Option<ShownKey>,
    password: Option<ShownPassword>,
    invitation: Option<ShownInvitation>,
    webhook: Option<ShownWebhookSecret>,
    rotated_until: Option<String>,
}

#[derive(Template)]
#[template(path = "console/reveal.html")]
struct RevealPage {
    nav: Nav,
    view: Shown,
}

pub async fn show(
    session: ConsoleSession,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let revealed = reveals::take(&state.service, session.live.session.id, &path).await?;
    let status = if revealed.is_some() {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    let page = RevealPage::of(revealed, &state.service.issuer, |section| {
        Nav::of(&session, &state, section)
    });
    page::render_with(status, &page)
}

impl RevealPage {
    /// What the one view shows of `revealed` (nothing: it was shown already), under the
    /// navigation `nav` makes for its section.
    fn of(
        revealed: Option<Revealed>,
        issuer: &str,
        nav: impl FnOnce(&'static str) -> Nav,
    ) -> RevealPage {
        let mut view = Shown::default();
        let section = match revealed {
            Some(Revealed::ApiKey {
                client_id,
                name,
                client_secret,
                rotated,
            }) => {
                view.rotated_until = rotated.map(|until| match until {
                    Some(t) => format!(
                        "The previous secret keeps working until {}.",
                        super::view::when(t)
                    ),
                    None => "The previous secret no longer works.".to_owned(),
                });
                let curl = format!(
                    "curl -s -u '{client_id}:{client_secret}' \\\n  -d grant_type=client_credentials \\\n  {issuer}/v1/token"
                );
                view.key = Some(ShownKey {
                    client_id,
                    name,
                    client_secret,
                    curl,
                });
                "keys"
            }
            Some(Revealed::Password {
                user_id,
                email,
                password,
            }) => {
                view.password = Some(ShownPassword {
                    user_id,
                    email,
                    password,
                });
                "users"
            }
            Some(Revealed::Invitation {
                user_id,
                email,
                url,
            }) => {
                view.invitation = Some(ShownInvitation {
                    user_id,
                    email,
                    url,
                });
                "users"
            }
            Some(Revealed::WebhookSecret {
                endpoint_id,
                url,
                secret,
            }) => {
                view.webhook = Some(ShownWebhookSecret {
                    endpoint_id,
                    url,
                    secret,
                });
                "webhooks"
            }
            None => "keys",
        };
        RevealPage {
            nav: nav(section),
            view,
        }
    }
}
