//! Invitations in the console: an administrator invites by link (shown once) and can replace
//! the link; the page the link opens refuses two different passwords, and a good one finishes
//! the account, after which the link no longer works and the invitee logs in.

use super::{Browser, tools};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, assert_cli_ok, spawn_app, stdout};

const INVITEE: &str = "ines@example.com";
const PASSWORD: &str = "a long enough password";

async fn an_invitee_sets_a_password_once_and_logs_in(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let out = app.cli(&[
        "users",
        "invite",
        "--email",
        INVITEE,
        "--permissions",
        "api_keys:read",
    ]);
    assert_cli_ok(&out);
    let link = stdout(&out).trim().to_owned();
    let path = &link[link.find("/console/invitations/").expect("a console link")..];
    let browser = Browser::open(&tools, &app).await;

    browser.goto(path).await;
    assert_eq!(browser.text("h1").await, "Welcome to keygate");
    assert_eq!(browser.text("#invitee").await, INVITEE);
    browser.fill("#password", PASSWORD).await;
    browser.fill("#repeat", "a different long password").await;
    browser.follow("#accept").await;
    assert_eq!(
        browser.text("[role=alert]").await,
        "The two passwords differ."
    );

    browser.fill("#password", PASSWORD).await;
    browser.fill("#repeat", PASSWORD).await;
    browser.follow("#accept").await;
    assert_eq!(browser.text("h1").await, "Your account is ready");
    browser.screenshot("invitation-accepted").await;

    browser.goto(path).await;
    assert_eq!(browser.text("h1").await, "This invitation does not work");

    browser.goto("/console/login").await;
    browser.log_in(INVITEE, PASSWORD).await;
    assert_eq!(browser.text("#current-user").await, INVITEE);
    browser.close().await;
}

async fn an_administrator_invites_by_link_and_replaces_the_link(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;
    browser.goto("/console/users/new").await;
    browser.fill("#email", INVITEE).await;
    browser
        .click("input[name=permission][value='invoices:read']")
        .await;
    browser.follow("#invite-user").await;
    assert!(browser.path().await.starts_with("/console/reveal/"));
    assert_eq!(browser.text("h1").await, INVITEE);
    let first = browser.text("#invitation-url").await;
    assert!(first.contains("/console/invitations/kgi_"), "{first}");
    browser.reload().await;
    assert_eq!(browser.text("h1").await, "Shown once, already");

    browser.goto("/console/users").await;
    assert!(browser.page_text().await.contains("invited"));
    let href = browser
        .js_with(
            "return [...document.querySelectorAll('#users a')]
                .find(a => a.textContent === arguments[0]).getAttribute('href');",
            vec![INVITEE.into()],
        )
        .await;
    browser
        .goto(href.as_str().expect("a link to the user"))
        .await;
    assert_eq!(browser.text("#user-status").await, "invited");
    browser.follow("#resend-invitation").await;
    let second = browser.text("#invitation-url").await;
    assert_ne!(first, second, "a new link");
    let path_of = |link: &str| link[link.find("/console/invitations/").unwrap()..].to_owned();
    browser.goto(&path_of(&first)).await;
    assert_eq!(browser.text("h1").await, "This invitation does not work");
    browser.goto(&path_of(&second)).await;
    assert_eq!(browser.text("h1").await, "Welcome to keygate");
    let visited = browser.close().await;
    assert!(
        visited
            .iter()
            .all(|a| !a.contains("/console/reveal/") || !a.contains("kgi_")),
        "the link is never in the reveal's address"
    );
}

backend_tests!(
    an_invitee_sets_a_password_once_and_logs_in,
    an_administrator_invites_by_link_and_replaces_the_link,
);
