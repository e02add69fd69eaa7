//! The signing keys page, for the deployment's administrators: the next, active and retired
//! keys, and a rotation, confirmed (or cancelled) first, after which tokens are signed by the
//! key that was next while tokens signed before keep working.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::{Browser, tools};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, eventually, me_status, spawn_app};

/// The `kid` in a token's header: the signing key that signed it.
fn kid(token: &str) -> String {
    let header = token.split('.').next().expect("a JWT");
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().expect("a kid").to_owned()
}

/// The keys the page lists, as (kid, status).
async fn listed(browser: &Browser) -> Vec<(String, String)> {
    let rows = browser
        .js(
            "return [...document.querySelectorAll('#signing-keys tr[data-kid]')].map(r =>
                [r.dataset.kid, r.querySelector('.status').textContent]);",
        )
        .await;
    let rows: Vec<Vec<String>> = serde_json::from_value(rows).unwrap();
    rows.into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// The kid of the one key listed with `status`.
fn only(keys: &[(String, String)], status: &str) -> String {
    let found: Vec<&String> = keys
        .iter()
        .filter(|(_, s)| s == status)
        .map(|(kid, _)| kid)
        .collect();
    assert_eq!(found.len(), 1, "one {status} key: {keys:?}");
    found[0].clone()
}

async fn an_administrator_rotates_the_signing_keys(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let before = app.token_for(&key).await;
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;

    browser.follow("#nav-signing-keys").await;
    assert_eq!(browser.path().await, "/console/signing-keys");
    let keys = listed(&browser).await;
    let active = only(&keys, "active");
    let next = only(&keys, "next");
    assert_eq!(kid(&before), active, "the active key signs");

    browser.follow("#rotate-signing-keys").await;
    assert_eq!(browser.text("h1").await, "Rotate signing keys?");
    browser.follow("#confirm-form a").await;
    assert_eq!(browser.path().await, "/console/signing-keys", "cancelled");
    assert_eq!(listed(&browser).await, keys, "nothing changed");

    browser.follow("#rotate-signing-keys").await;
    browser.follow("#confirm").await;
    assert_eq!(
        browser.path().await,
        "/console/signing-keys?done=signing-key-rotated"
    );
    assert_eq!(
        browser.text("[role=status]").await,
        "A new signing key signs from now on."
    );
    let rotated = listed(&browser).await;
    assert_eq!(only(&rotated, "active"), next, "the next key signs");
    assert!(
        rotated.contains(&(active.clone(), "retired".to_owned())),
        "the active key retires: {rotated:?}"
    );
    let new_next = only(&rotated, "next");
    assert!(new_next != active && new_next != next, "a new next key");

    let signed_by_next = eventually(5, || async { kid(&app.token_for(&key).await) == next }).await;
    assert!(signed_by_next, "tokens are signed by the key that was next");
    assert_eq!(
        me_status(&app, &before).await,
        200,
        "a token signed before still works"
    );
    browser.close().await;
}

backend_tests!(an_administrator_rotates_the_signing_keys);
