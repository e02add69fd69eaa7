//! Logging in and out of the console: a wrong password, a page visited while logged out that
//! comes back after logging in, the lock-out after repeated failures, a forged log-in form, and
//! the headers every page goes out with.

use reqwest::Method;

use super::{Browser, tools};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, login, spawn_app, spawn_app_with};

async fn a_page_visited_logged_out_comes_back_after_logging_in(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let browser = Browser::open(&tools, &app).await;

    browser.goto("/console/keys/new").await;
    assert_eq!(
        browser.path().await,
        "/console/login?next=%2Fconsole%2Fkeys%2Fnew",
        "a page of the console sends a stranger to log in"
    );
    assert_eq!(browser.text("h1").await, "Log in to keygate");

    browser.submit_login(ADMIN, "not the password").await;
    let alert = browser.text("[role=alert]").await;
    assert!(
        alert.starts_with("Wrong email or password."),
        "the refusal says what went wrong: {alert}"
    );
    assert!(
        alert.contains("locked"),
        "and warns of the lock-out: {alert}"
    );
    assert!(browser.path().await.starts_with("/console/login"));
    let email = browser.find("#email").await.prop("value").await.unwrap();
    assert_eq!(email.as_deref(), Some(ADMIN), "the email is kept");

    browser.submit_login(ADMIN, &admin.password).await;
    assert_eq!(
        browser.path().await,
        "/console/keys/new",
        "back where it began"
    );
    assert_eq!(browser.text("#current-user").await, ADMIN);
    assert_eq!(browser.text("h1").await, "New API key");

    browser.follow("#log-out").await;
    assert_eq!(browser.path().await, "/console/login");
    browser.goto("/console/keys").await;
    assert_eq!(
        browser.path().await,
        "/console/login?next=%2Fconsole%2Fkeys",
        "logged out for good"
    );
    let visited = browser.close().await;
    super::assert_never_in_an_address(&visited, &[&admin.password]);
}

/// Over plain HTTP: every console page forbids inline code, framing and caching, logged in or
/// not.
async fn console_pages_forbid_inline_code_framing_and_caching(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let logged_out = Reply::send(app.client.get(app.url("/console/login"))).await;
    let logged_in = Reply::send(app.with_cookie(Method::GET, "/console/keys", &session)).await;
    let new_key = Reply::send(app.with_cookie(Method::GET, "/console/keys/new", &session)).await;
    let redirect = Reply::send(app.client.get(app.url("/console/audit"))).await;
    assert_eq!(redirect.status, 303);
    for (page, reply) in [
        ("/console/login", &logged_out),
        ("/console/keys", &logged_in),
        ("/console/keys/new", &new_key),
        ("/console/audit (logged out)", &redirect),
    ] {
        let csp = reply
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{page}: a Content-Security-Policy"));
        assert!(!csp.contains("unsafe-inline"), "{page}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{page}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{page}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{page}: {csp}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{page}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{page}");
    }
    for reply in [&logged_out, &logged_in, &new_key] {
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "HTML"
        );
        assert!(!reply.text.contains("<script>"), "no inline script");
        assert!(!reply.text.contains(" style="), "no inline style");
    }
}

/// Repeated wrong passwords: after five, the account is locked for the browser's address (the
/// right password then fails the same way, so nobody learns that it was right), and once the
/// address has spent its attempts, the page says to wait.
async fn repeated_wrong_passwords_lock_the_address_out(backend: Backend) {
    let Some(tools) = tools() else { return };
    // Seven attempts from one address, then one more a minute.
    let app = spawn_app_with(backend, |settings| {
        settings.rate_limit.failures_per_minute = 1;
        settings.rate_limit.failure_burst = 7;
    })
    .await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let browser = Browser::open(&tools, &app).await;
    browser.goto("/console/login").await;
    let refused = || async {
        assert_eq!(browser.text("h1").await, "Log in to keygate");
        assert!(browser.path().await.starts_with("/console/login"));
        assert!(!browser.exists("#current-user").await, "not logged in");
        browser.text("[role=alert]").await
    };

    for attempt in 1..=5 {
        browser
            .submit_login(ADMIN, &format!("wrong {attempt}"))
            .await;
        let said = refused().await;
        assert!(
            said.starts_with("Wrong email or password."),
            "{attempt}: {said}"
        );
    }
    browser.submit_login(ADMIN, &admin.password).await;
    let said = refused().await;
    assert!(
        said.starts_with("Wrong email or password."),
        "locked, said as a wrong password: {said}"
    );
    browser.submit_login(ADMIN, "wrong 7").await;
    refused().await;

    browser.submit_login(ADMIN, &admin.password).await;
    let said = refused().await;
    assert!(
        said.starts_with("Too many attempts from this address. Try again in "),
        "{said}"
    );
    assert!(said.ends_with(" seconds."), "{said}");
    let email = browser.find("#email").await.prop("value").await.unwrap();
    assert_eq!(email.as_deref(), Some(ADMIN), "the email is kept");
    assert_eq!(
        login(&app, ADMIN, &admin.password).await.status,
        429,
        "the whole address waits"
    );
    browser.close().await;
}

/// A log-in form whose token does not match its cookie (a form another site made) logs nobody
/// in, even with the right password; a fresh form does.
async fn a_log_in_form_with_a_changed_token_logs_nobody_in(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let browser = Browser::open(&tools, &app).await;
    browser.goto("/console/login").await;
    browser
        .js("document.querySelector('#login input[name=csrf]').value = 'forged';")
        .await;
    browser.submit_login(ADMIN, &admin.password).await;
    assert_eq!(
        browser.text("[role=alert]").await,
        "The log-in form expired. Try again."
    );
    assert!(!browser.exists("#current-user").await, "not logged in");
    browser.goto("/console/keys").await;
    assert!(browser.path().await.starts_with("/console/login"));

    browser.submit_login(ADMIN, &admin.password).await;
    assert_eq!(browser.text("#current-user").await, ADMIN);
    browser.close().await;
}

backend_tests!(
    a_page_visited_logged_out_comes_back_after_logging_in,
    console_pages_forbid_inline_code_framing_and_caching,
    repeated_wrong_passwords_lock_the_address_out,
    a_log_in_form_with_a_changed_token_logs_nobody_in,
);
