//! The webhooks pages, for holders of `webhooks:manage`: a new endpoint with its secret shown
//! once, a test event that reaches a real receiver signed with that secret, the delivery and
//! its attempts on the endpoint's page, sent again, a new secret, and a confirmed disable and
//! delete.

use std::time::Duration;

use super::{Browser, assert_never_in_an_address, tools};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, eventually, spawn_app};
use crate::webhooks::{receiver, until_delivered, verify};

async fn an_operator_registers_an_endpoint_and_sees_its_deliveries(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let hook = receiver(0, Duration::ZERO).await;
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;

    browser.follow("#nav-webhooks").await;
    assert_eq!(browser.path().await, "/console/webhooks");
    browser.fill("#endpoint-url", "ftp://example.com/").await;
    browser
        .js("document.querySelector('#new-endpoint').noValidate = true;")
        .await;
    browser.follow("#create-endpoint").await;
    let problem = browser.text("[role=alert]").await;
    assert!(problem.starts_with("Url"), "{problem}");

    browser.fill("#endpoint-url", &hook.url).await;
    browser
        .fill("#endpoint-description", "Billing's receiver")
        .await;
    browser.follow("#create-endpoint").await;
    assert!(browser.path().await.starts_with("/console/reveal/"));
    let secret = browser.text("#webhook-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.reload().await;
    assert!(!browser.page_text().await.contains(&secret), "shown once");

    browser.goto("/console/webhooks").await;
    browser.follow("#endpoints a").await;
    let page = browser.path().await;
    browser.follow("#send-test").await;
    assert!(browser.text("[role=status]").await.contains("test event"));
    let delivered = until_delivered(&hook, 1, 10).await;
    assert!(
        verify(&secret, &delivered[0]),
        "signed with the secret shown"
    );
    let shown = eventually(5, || async {
        browser.goto(&page).await;
        browser.exists("#deliveries .status-succeeded").await
    })
    .await;
    assert!(shown, "the delivery is not listed as succeeded");
    // Every attempt is one click away, with the receiver's answer.
    browser.click("#deliveries details.attempts summary").await;
    let log = browser.text("#deliveries details.attempts ol").await;
    assert!(log.contains("HTTP 200") && log.contains("ok"), "{log}");
    browser.screenshot("webhook-endpoint").await;
    browser.follow("#deliveries .retry-delivery").await;
    assert!(
        browser.text("[role=status]").await.contains("queued again"),
        "no notice of the retry"
    );
    let again = until_delivered(&hook, 2, 10).await;
    assert_eq!(
        again[1].json()["id"],
        again[0].json()["id"],
        "the same event"
    );

    browser.follow("#roll-webhook-secret").await;
    let rolled = browser.text("#webhook-secret").await;
    assert_ne!(rolled, secret);

    browser.goto(&page).await;
    browser.follow("#disable-endpoint").await;
    browser.follow("#confirm").await;
    assert_eq!(browser.text("#endpoint-status").await, "disabled");
    browser.follow("#delete-endpoint").await;
    browser.follow("#confirm").await;
    assert_eq!(
        browser.text("[role=status]").await,
        "The endpoint is deleted."
    );
    assert!(browser.page_text().await.contains("No endpoint yet"));
    let visited = browser.close().await;
    assert_never_in_an_address(&visited, &[&secret, &rolled]);
}

backend_tests!(an_operator_registers_an_endpoint_and_sees_its_deliveries);
