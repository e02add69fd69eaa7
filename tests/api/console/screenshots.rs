//! Screenshots of every main page of the console, light and dark, and the key list at a
//! phone's width, saved under `console-screenshots/` in the target directory for people to
//! look at. The keys, users and events on them are made first, so no page shows only its empty
//! state. The dark theme is what a browser asks for when the system is dark.

use reqwest::Method;
use serde_json::json;

use super::{Browser, DESKTOP, PHONE, Theme, tools};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, TestApp, assert_cli_ok, spawn_app};

/// The pages saved in each theme, as `NAME-THEME.png`.
pub const PAGES: [&str; 12] = [
    "login",
    "keys",
    "keys-phone",
    "new-key",
    "reveal",
    "key",
    "confirm",
    "users",
    "new-user",
    "audit",
    "signing-keys",
    "key-phone",
];

/// Keys of every kind a list shows: several scopes, a test key, one expiring soon, one used,
/// one disabled, one revoked.
async fn populate(app: &TestApp, admin_password: &str) -> String {
    let owner = ["--owner", ADMIN];
    let nightly = app.create_key_with(&["invoices:read", "clients:read"], &owner);
    assert_cli_ok(&app.cli(&[
        "api-keys",
        "create",
        "--name",
        "Billing sync",
        "--scopes",
        "invoices:read,invoices:write,clients:read",
        "--owner",
        ADMIN,
    ]));
    assert_cli_ok(&app.cli(&[
        "api-keys",
        "create",
        "--name",
        "Payout reports (sandbox)",
        "--scopes",
        "payouts:read",
        "--env",
        "test",
        "--owner",
        ADMIN,
    ]));
    assert_cli_ok(&app.cli(&[
        "api-keys",
        "create",
        "--name",
        "Webhook relay",
        "--scopes",
        "webhooks:read,webhooks:write",
        "--expires-in-days",
        "3",
        "--owner",
        ADMIN,
    ]));
    let staging = app.create_key_with(&["disbursements:read"], &owner);
    let partner = app.create_key_with(&["payment-links:read", "payment-links:write"], &owner);
    let session = app.log_in(ADMIN, admin_password).await;
    for (key, name) in [
        (&nightly, "Nightly export"),
        (&staging, "Staging importer"),
        (&partner, "Old partner integration"),
    ] {
        let mut change = json!({ "name": name });
        if key.client_id == staging.client_id {
            change["status"] = json!("disabled");
        }
        if key.client_id == nightly.client_id {
            change["metadata"] = json!({ "team": "finance", "ticket": "OPS-1042" });
        }
        let path = format!("/v1/api-keys/{}", key.client_id);
        Reply::send(
            app.with_session(Method::PATCH, &path, &session)
                .json(&change),
        )
        .await
        .expect(200);
    }
    assert_cli_ok(&app.cli(&["api-keys", "revoke", &partner.client_id]));
    app.token_for(&nightly).await;
    app.create_user(
        "ada@example.com",
        &[
            "--permissions",
            "api_keys:read,api_keys:write,invoices:read,clients:read",
        ],
    );
    app.create_user("audit@example.com", &["--permissions", "audit:read"]);
    nightly.client_id
}

/// The page background each theme's stylesheet sets (`--bg`).
fn background(theme: Theme) -> &'static str {
    match theme {
        Theme::Light => "rgb(247, 247, 245)",
        Theme::Dark => "rgb(21, 24, 28)",
    }
}

/// Every page, in one theme.
async fn every_main_page(backend: Backend, theme: Theme) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let key = populate(&app, &admin.password).await;
    let browser = Browser::open_with(&tools, &app, theme, DESKTOP).await;
    browser.goto("/console/login").await;
    let dark = browser
        .js("return matchMedia('(prefers-color-scheme: dark)').matches;")
        .await;
    assert_eq!(dark, json!(theme == Theme::Dark), "the scheme asked for");
    let shown = browser
        .js("return getComputedStyle(document.body).backgroundColor;")
        .await;
    assert_eq!(shown, background(theme), "the {} theme", theme.name());
    browser.screenshot("login").await;
    browser.log_in(ADMIN, &admin.password).await;
    browser.screenshot("keys").await;

    browser.goto("/console/keys/new").await;
    browser.fill("#name", "Reporting dashboard").await;
    for scope in ["invoices:read", "clients:read"] {
        browser
            .click(&format!("input[name=scope][value='{scope}']"))
            .await;
    }
    browser.fill("#metadata", "team=finance").await;
    browser.screenshot("new-key").await;
    browser.follow("#create").await;
    assert!(browser.path().await.starts_with("/console/reveal/"));
    browser.screenshot("reveal").await;

    browser.goto(&format!("/console/keys/{key}")).await;
    browser.screenshot("key").await;
    browser.follow("#revoke-key").await;
    browser.screenshot("confirm").await;
    browser.goto("/console/users").await;
    browser.screenshot("users").await;
    browser.goto("/console/users/new").await;
    browser.screenshot("new-user").await;
    browser.goto("/console/audit").await;
    browser.screenshot("audit").await;
    browser.goto("/console/signing-keys").await;
    browser.screenshot("signing-keys").await;

    browser.resize(PHONE.0, PHONE.1).await;
    browser.goto("/console/keys").await;
    browser.screenshot("keys-phone").await;
    browser.goto(&format!("/console/keys/{key}")).await;
    browser.screenshot("key-phone").await;
    browser.close().await;

    let dir = super::screenshot_dir();
    for page in PAGES {
        let file = dir.join(format!("{page}-{}.png", theme.name()));
        assert!(file.is_file(), "{} was saved", file.display());
    }
}

async fn every_main_page_light(backend: Backend) {
    every_main_page(backend, Theme::Light).await;
}

async fn every_main_page_dark(backend: Backend) {
    every_main_page(backend, Theme::Dark).await;
}

backend_tests!(every_main_page_light, every_main_page_dark);
