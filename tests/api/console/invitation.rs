//! The page an invitation link opens: two different passwords are refused on the page; a good
//! one finishes the account, after which the link no longer works and the invitee logs in.

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

backend_tests!(an_invitee_sets_a_password_once_and_logs_in);
