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

#[derive(Template)]
#[template(path = "console/reveal.html")]
struct RevealPage {
    nav: Nav,
    key: Option<ShownKey>,
    password: Option<ShownPassword>,
    invitation: Option<ShownInvitation>,
    webhook: Option<ShownWebhookSecret>,
    rotated_until: Option<String>,
}

pub async fn show(
    session: ConsoleSession,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let revealed = reveals::take(&state.service, session.live.session.id, &path).await?;
    let rotated_until = match &revealed {
        Some(Revealed::ApiKey {
            rotated: Some(until),
            ..
        }) => Some(match until {
            Some(t) => format!(
                "The previous secret keeps working until {}.",
                super::view::when(*t)
            ),
            None => "The previous secret no longer works.".to_owned(),
        }),
        _ => None,
    };
    let status = if revealed.is_some() {
        StatusCode::OK
    } else {
        StatusCode::GONE
    };
    let (mut key, mut password, mut invitation, mut webhook) = (None, None, None, None);
    match revealed {
        Some(Revealed::ApiKey {
            client_id,
            name,
            client_secret,
            ..
        }) => {
            let curl = format!(
                "curl -s -u '{client_id}:{client_secret}' \\\n  -d grant_type=client_credentials \\\n  {}/v1/token",
                state.service.issuer
            );
            key = Some(ShownKey {
                client_id,
                name,
                client_secret,
                curl,
            });
        }
        Some(Revealed::Password {
            user_id,
            email,
            password: generated,
        }) => {
            password = Some(ShownPassword {
                user_id,
                email,
                password: generated,
            });
        }
        Some(Revealed::Invitation {
            user_id,
            email,
            url,
        }) => {
            invitation = Some(ShownInvitation {
                user_id,
                email,
                url,
            });
        }
        Some(Revealed::WebhookSecret {
            endpoint_id,
            url,
            secret,
        }) => {
            webhook = Some(ShownWebhookSecret {
                endpoint_id,
                url,
                secret,
            });
        }
        None => {}
    }
    let section = if password.is_some() || invitation.is_some() {
        "users"
    } else if webhook.is_some() {
        "webhooks"
    } else {
        "keys"
    };
    page::render_with(
        status,
        &RevealPage {
            nav: Nav::of(&session, &state, section),
            key,
            password,
            invitation,
            webhook,
            rotated_until,
        },
    )
}
