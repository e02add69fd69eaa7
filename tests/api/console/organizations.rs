//! The organizations page, for holders of `organizations:manage`: a new tenant (a bad name
//! refused on the page), and a disable, enable and delete, each confirmed by name, that shut
//! the tenant's keys out and let them back in.

use super::{Browser, tools};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, spawn_app, token_reply};

async fn an_administrator_creates_disables_enables_and_deletes_an_organization(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;

    browser.follow("#nav-organizations").await;
    assert_eq!(browser.path().await, "/console/organizations");
    assert!(
        !browser
            .exists("tr[data-organization=default] .delete-organization")
            .await,
        "the deployment's own organization offers no delete"
    );
    browser.fill("#organization-name", "Not Valid").await;
    browser
        .js("document.querySelector('#new-organization').noValidate = true;")
        .await;
    browser.follow("#create-organization").await;
    let problem = browser.text("[role=alert]").await;
    assert!(problem.starts_with("Name"), "{problem}");

    browser.fill("#organization-name", "acme").await;
    browser.follow("#create-organization").await;
    assert_eq!(
        browser.text("[role=status]").await,
        "The organization is created."
    );
    let key = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    token_reply(&app, &key).await.expect(200);

    browser
        .follow("tr[data-organization=acme] .disable-organization")
        .await;
    assert_eq!(browser.text("h1").await, "Disable organization acme?");
    browser.follow("#confirm").await;
    assert!(browser.text("[role=status]").await.contains("disabled"));
    assert_eq!(
        browser.text("tr[data-organization=acme] .status").await,
        "disabled"
    );
    token_reply(&app, &key)
        .await
        .expect_error(401, "invalid_client");
    browser.screenshot("organizations").await;

    browser
        .follow("tr[data-organization=acme] .enable-organization")
        .await;
    browser.follow("#confirm").await;
    token_reply(&app, &key).await.expect(200);

    browser
        .follow("tr[data-organization=acme] .delete-organization")
        .await;
    assert_eq!(browser.text("h1").await, "Delete organization acme?");
    browser.follow("#confirm").await;
    assert!(!browser.exists("tr[data-organization=acme]").await);
    token_reply(&app, &key)
        .await
        .expect_error(401, "invalid_client");
    browser.close().await;
}

backend_tests!(an_administrator_creates_disables_enables_and_deletes_an_organization);
