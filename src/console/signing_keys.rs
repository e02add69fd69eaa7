//! Signing keys (for the deployment's administrators): the next, active and retired keys, and
//! a confirmed rotation.

use actix_web::{HttpResponse, web};
use askama::Template;

use super::forms::Form;
use super::page::{self, ConsoleError, Nav};
use super::session::ConsoleSession;
use super::view::{self, Notice, when};
use crate::service::signing_keys;
use crate::state::AppState;

pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: &'static str,
    pub status: &'static str,
    pub created: String,
    pub activated: String,
    pub verify_until: String,
}

#[derive(Template)]
#[template(path = "console/signing_keys.html")]
struct SigningKeysPage {
    nav: Nav,
    rows: Vec<SigningKeyRow>,
    done: Option<&'static str>,
}

#[derive(Default, serde::Deserialize)]
pub struct Params {
    done: Option<String>,
}

pub async fn list(
    session: ConsoleSession,
    params: web::Query<Params>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let keys = signing_keys::list(&state.service, &session.caller).await?;
    let rows = keys
        .iter()
        .map(|k| SigningKeyRow {
            kid: k.kid.clone(),
            algorithm: k.algorithm.as_str(),
            status: k.status.as_str(),
            created: when(k.created_at.and_utc()),
            activated: k
                .activated_at
                .map(|t| when(t.and_utc()))
                .unwrap_or_default(),
            verify_until: k
                .verify_until
                .map(|t| when(t.and_utc()))
                .unwrap_or_default(),
        })
        .collect();
    page::render(&SigningKeysPage {
        nav: Nav::of(&session, &state, "signing-keys"),
        rows,
        done: params.done.as_deref().and_then(view::done_message),
    })
}

#[derive(Template)]
#[template(path = "console/signing_keys_rotate.html")]
struct RotatePage {
    nav: Nav,
}

pub async fn confirm(
    session: ConsoleSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    crate::service::policy::require_deployment_administrator(
        &session.caller,
        &state.service.catalog,
    )?;
    page::render(&RotatePage {
        nav: Nav::of(&session, &state, "signing-keys"),
    })
}

pub async fn rotate(
    session: ConsoleSession,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    signing_keys::rotate_now(&state.service, &session.caller).await?;
    Ok(page::see_other(
        &Notice::SigningKeyRotated.on("/console/signing-keys"),
    ))
}
