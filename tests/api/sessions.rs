//! `/v1/session`: console logins (the cookie and its attributes, `Secure` only by
//! configuration or a trusted proxy), logout, the CSRF token on state-changing calls, answers
//! that do not tell a wrong password from an unknown email or a locked account, the lock per
//! account and source address (counted before any password is checked), and the audit of each
//! login.

use reqwest::{Method, RequestBuilder};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, TestApp, TestSession, assert_no_store, audit_events, emails_in, login,
    query, spawn_app, spawn_app_with,
};

/// keygate trusting the test's own address as a proxy: `X-Forwarded-For` then says where a
/// request comes from.
async fn behind_a_proxy(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
}

/// `POST /v1/session` as if from `address`, through the trusted proxy.
async fn login_from(app: &TestApp, address: &str, email: &str, password: &str) -> Reply {
    Reply::send(
        app.client
            .post(app.url("/v1/session"))
            .header("x-forwarded-for", address)
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

/// The outcomes of the `session.login` events about a user, newest first.
async fn login_outcomes(app: &TestApp, auditor: &str, user_id: &str) -> Vec<String> {
    let page = audit_events(
        app,
        auditor,
        &query(&[
            ("action", "session.login"),
            ("target", user_id),
            ("limit", "100"),
        ]),
    )
    .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap().to_owned())
        .collect()
}

/// The `Secure` attribute of the session cookie a log-in sets.
fn cookie_is_secure(reply: &Reply) -> bool {
    let cookie = reply.header("set-cookie").expect("a session cookie");
    cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .any(|a| a == "secure")
}

async fn login_sets_an_http_only_same_site_strict_cookie_without_secure_over_http(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let reply = login(&app, ADMIN, &admin.password).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_no_store(&reply);
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let mut parts = cookies[0].split(';').map(str::trim);
    let pair = parts.next().unwrap();
    let value = pair
        .strip_prefix("keygate_session=")
        .unwrap_or_else(|| panic!("the keygate_session cookie: {pair}"));
    assert!(value.len() >= 32, "a long random session token");
    let attributes: Vec<String> = parts.map(|p| p.to_ascii_lowercase()).collect();
    assert!(
        attributes.contains(&"httponly".to_owned()),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&"samesite=strict".to_owned()),
        "{attributes:?}"
    );
    assert!(attributes.contains(&"path=/".to_owned()), "{attributes:?}");
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "no Secure over plain http: {attributes:?}"
    );

    let body = reply.json();
    let csrf = body["csrf_token"].as_str().expect("csrf_token").to_owned();
    assert!(csrf.len() >= 16);
    assert_eq!(body["user"]["email"], ADMIN);
    assert_eq!(body["user"]["id"], admin.id.as_str());
    assert_eq!(body["user"]["admin"], true);
    assert!(
        !reply.text.contains(value),
        "the session token only travels in the cookie"
    );

    let session = TestSession {
        cookie: pair.to_owned(),
        csrf: csrf.clone(),
    };
    let current = Reply::send(app.with_cookie(Method::GET, "/v1/session", &session)).await;
    let current_body = current.expect(200);
    assert_eq!(current_body["csrf_token"], csrf.as_str());
    assert_eq!(current_body["user"]["email"], ADMIN);
    for field in [
        "id",
        "email",
        "organization",
        "admin",
        "permissions",
        "status",
    ] {
        assert_eq!(current_body["user"][field], body["user"][field], "{field}");
    }

    Reply::send(app.client.get(app.url("/v1/session")))
        .await
        .expect(401);
    Reply::send(
        app.client
            .get(app.url("/v1/session"))
            .header("cookie", "keygate_session=forged"),
    )
    .await
    .expect(401);
}

async fn logging_out_needs_the_csrf_token_and_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    Reply::send(app.with_cookie(Method::DELETE, "/v1/session", &session))
        .await
        .expect_error(403, "forbidden");
    Reply::send(
        app.with_cookie(Method::DELETE, "/v1/session", &session)
            .header("x-csrf-token", "not-the-token"),
    )
    .await
    .expect_error(403, "forbidden");
    Reply::send(app.with_cookie(Method::GET, "/v1/session", &session))
        .await
        .expect(200);

    let out = Reply::send(app.with_session(Method::DELETE, "/v1/session", &session)).await;
    assert!(
        out.status == 204 || out.status == 200,
        "logout: HTTP {} {}",
        out.status,
        out.text
    );
    Reply::send(app.with_cookie(Method::GET, "/v1/session", &session))
        .await
        .expect_error(401, "invalid_token");
    Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(401);
    Reply::send(app.with_session(Method::DELETE, "/v1/session", &session))
        .await
        .expect(401);
}

async fn a_state_changing_call_with_a_session_but_without_the_right_csrf_token_is_forbidden(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let other = app.log_in(ADMIN, &admin.password).await;
    assert_ne!(session.csrf, other.csrf, "each session has its own token");
    let body = json!({ "email": "new@example.com" });
    let own = format!("/v1/users/{}", admin.id);

    let attempts: Vec<(&str, RequestBuilder)> = vec![
        (
            "POST without a CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .json(&body),
        ),
        (
            "POST with a wrong CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .header("x-csrf-token", "wrong")
                .json(&body),
        ),
        (
            "POST with another session's CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .header("x-csrf-token", &other.csrf)
                .json(&body),
        ),
        (
            "POST with an empty CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .header("x-csrf-token", "")
                .json(&body),
        ),
        (
            "PATCH without a CSRF token",
            app.with_cookie(Method::PATCH, &own, &session)
                .json(&json!({ "status": "disabled" })),
        ),
        (
            "POST /v1/organizations without a CSRF token",
            app.with_cookie(Method::POST, "/v1/organizations", &session)
                .json(&json!({ "name": "acme" })),
        ),
    ];
    for (what, request) in attempts {
        let reply = Reply::send(request).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.text);
        assert_eq!(reply.json()["error"], "forbidden", "{what}");
    }

    // Reading needs no CSRF token, and nothing was changed.
    let list = Reply::send(app.with_cookie(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);
    assert_eq!(list["data"][0]["status"], "enabled");
    let orgs = Reply::send(app.with_cookie(Method::GET, "/v1/organizations", &session))
        .await
        .expect(200);
    assert_eq!(orgs["count"], 1);
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&body),
    )
    .await
    .expect(201);
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let wrong = login(&app, ADMIN, "not the right password").await;
    let unknown = login(&app, "nobody@example.com", "not the right password").await;
    let malformed = login(&app, "nobody", "not the right password").await;
    for (what, reply) in [
        ("wrong password", &wrong),
        ("unknown email", &unknown),
        ("not an email", &malformed),
    ] {
        assert_eq!(reply.status, 401, "{what}: {}", reply.text);
        assert_eq!(reply.json()["error"], "invalid_credentials", "{what}");
        assert!(reply.header("set-cookie").is_none(), "{what}: no cookie");
    }
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.text, malformed.text);
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
    login(&app, ADMIN, &admin.password).await.expect(200);
    // Upper-case email logs in too (emails are compared case-insensitively).
    login(&app, "ADMIN@Example.com", &admin.password)
        .await
        .expect(200);
}

/// Five failures from one address lock the account for that address only: there, even the
/// right password answers exactly like a wrong one (which tells nothing about the account);
/// from elsewhere its owner logs in; from the same address, other users still do.
async fn five_failures_lock_the_account_for_that_address_only(backend: Backend) {
    let app = behind_a_proxy(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let victim = app.create_user("victim@example.com", &[]);
    let attacker = "203.0.113.7";
    for attempt in 1..=5 {
        login_from(
            &app,
            attacker,
            &victim.email,
            &format!("wrong password {attempt}"),
        )
        .await
        .expect_error(401, "invalid_credentials");
    }
    let locked = login_from(&app, attacker, &victim.email, &victim.password).await;
    let wrong = login_from(&app, attacker, &victim.email, "wrong password 6").await;
    let unknown = login_from(&app, attacker, "nobody@example.com", "wrong password 7").await;
    for reply in [&locked, &wrong, &unknown] {
        reply.expect_error(401, "invalid_credentials");
        assert!(reply.header("retry-after").is_none(), "{}", reply.text);
        assert!(reply.header("set-cookie").is_none());
    }
    assert_eq!(locked.text, wrong.text);
    assert_eq!(locked.text, unknown.text);
    assert_eq!(
        locked.header("www-authenticate"),
        wrong.header("www-authenticate")
    );

    login_from(&app, "198.51.100.20", &victim.email, &victim.password)
        .await
        .expect(200);
    login_from(&app, attacker, ADMIN, &admin.password)
        .await
        .expect(200);
    let auditor = app.token_as(ADMIN, &["audit:read"]).await;
    let outcomes = login_outcomes(&app, &auditor, &victim.id).await;
    assert_eq!(outcomes[0], "success", "{outcomes:?}");
    assert_eq!(outcomes[1], "locked", "the trail tells: {outcomes:?}");
    assert_eq!(outcomes[2], "locked", "{outcomes:?}");
}

/// Guesses sent at once are all counted before any password is checked: of twenty, five are
/// judged, and the rest find the account locked.
async fn guesses_sent_at_once_are_counted_before_any_is_checked(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        // Only the per-account lock is under test: the per-address budget stays out of reach.
        s.rate_limit.failure_burst = 1000;
    })
    .await;
    app.create_user(ADMIN, &["--admin"]);
    let victim = app.create_user("victim@example.com", &[]);
    let guesses = (0..20).map(|i| {
        let (app, email) = (&app, victim.email.clone());
        async move { login(app, &email, &format!("guess number {i}")).await }
    });
    for reply in futures_util::future::join_all(guesses).await {
        reply.expect_error(401, "invalid_credentials");
    }
    let auditor = app.token_as(ADMIN, &["audit:read"]).await;
    let outcomes = login_outcomes(&app, &auditor, &victim.id).await;
    assert_eq!(outcomes.len(), 20, "{outcomes:?}");
    let judged = outcomes.iter().filter(|o| *o == "wrong_password").count();
    let locked = outcomes.iter().filter(|o| *o == "locked").count();
    assert_eq!((judged, locked), (5, 15), "{outcomes:?}");
    login(&app, &victim.email, &victim.password)
        .await
        .expect_error(401, "invalid_credentials");
}

/// The cookie is `Secure` because the deployment says so, or because a trusted proxy says the
/// request came over HTTPS; never because the client says so.
async fn the_cookies_secure_flag_follows_configuration_and_trusted_proxies(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let claimed = Reply::send(
        app.client
            .post(app.url("/v1/session"))
            .header("x-forwarded-proto", "https")
            .header("forwarded", "proto=https")
            .json(&json!({ "email": ADMIN, "password": admin.password })),
    )
    .await;
    claimed.expect(200);
    assert!(
        !cookie_is_secure(&claimed),
        "a client's header is not believed"
    );

    let proxied = behind_a_proxy(backend).await;
    let admin = proxied.create_user(ADMIN, &["--admin"]);
    let via_proxy = Reply::send(
        proxied
            .client
            .post(proxied.url("/v1/session"))
            .header("x-forwarded-proto", "https")
            .json(&json!({ "email": ADMIN, "password": admin.password })),
    )
    .await;
    via_proxy.expect(200);
    assert!(cookie_is_secure(&via_proxy), "a trusted proxy is");

    let configured = spawn_app_with(backend, |s| s.server.secure_cookies = true).await;
    let admin = configured.create_user(ADMIN, &["--admin"]);
    let reply = login(&configured, ADMIN, &admin.password).await;
    reply.expect(200);
    assert!(cookie_is_secure(&reply), "and so is the configuration");
}

async fn logins_are_audited_with_their_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let ops = app.create_user("ops@example.com", &[]);
    let token = app.token_as(ADMIN, &["audit:read"]).await;
    login(&app, &ops.email, "a wrong password")
        .await
        .expect(401);
    login(&app, &ops.email, &ops.password).await.expect(200);

    let page = audit_events(
        &app,
        &token,
        &query(&[("action", "session.login"), ("target", &ops.id)]),
    )
    .await;
    let events = page["data"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{page}");
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[1]["outcome"], "wrong_password");
    for event in events {
        assert_eq!(event["actor"], "user:ops@example.com");
        assert_eq!(event["target"], ops.id.as_str());
    }
}

/// A failed log-in with an email nobody has is recorded too, in the deployment's own
/// organization, where its administrators watch the whole deployment.
async fn a_failed_log_in_with_an_unknown_email_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    login(&app, "nobody@example.com", "a guessed password")
        .await
        .expect_error(401, "invalid_credentials");
    let auditor = app.token_as(ADMIN, &["audit:read"]).await;
    let page = audit_events(
        &app,
        &auditor,
        &query(&[("action", "session.login"), ("actor", "nobody@example.com")]),
    )
    .await;
    let events = page["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["outcome"], "unknown_email");
    assert_eq!(events[0]["actor"], "user:nobody@example.com");
    assert!(events[0]["target"].is_null());
}

backend_tests!(
    a_failed_log_in_with_an_unknown_email_is_audited,
    login_sets_an_http_only_same_site_strict_cookie_without_secure_over_http,
    logging_out_needs_the_csrf_token_and_ends_the_session,
    a_state_changing_call_with_a_session_but_without_the_right_csrf_token_is_forbidden,
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    five_failures_lock_the_account_for_that_address_only,
    guesses_sent_at_once_are_counted_before_any_is_checked,
    the_cookies_secure_flag_follows_configuration_and_trusted_proxies,
    logins_are_audited_with_their_outcome,
);
