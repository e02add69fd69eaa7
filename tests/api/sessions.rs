//! `/v1/session`: console logins (the cookie and its attributes), logout, the CSRF token on
//! state-changing calls, answers that do not tell a wrong password from an unknown email, the
//! lockout after failed logins, and the audit of each login.

use reqwest::{Method, RequestBuilder};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, TestSession, assert_no_store, audit_events, emails_in, login, query,
    spawn_app,
};

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

async fn five_wrong_passwords_lock_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let victim = app.create_user("victim@example.com", &[]);
    for attempt in 1..=5 {
        login(&app, &victim.email, &format!("wrong password {attempt}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    let locked = login(&app, &victim.email, &victim.password).await;
    locked.expect_error(429, "rate_limited");
    let retry_after: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        (1..=15 * 60).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    login(&app, &victim.email, "wrong password 6")
        .await
        .expect_error(429, "rate_limited");
    // The account is locked, not the address: another user logs in from it.
    login(&app, ADMIN, &admin.password).await.expect(200);
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

backend_tests!(
    login_sets_an_http_only_same_site_strict_cookie_without_secure_over_http,
    logging_out_needs_the_csrf_token_and_ends_the_session,
    a_state_changing_call_with_a_session_but_without_the_right_csrf_token_is_forbidden,
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    five_wrong_passwords_lock_the_account,
    logins_are_audited_with_their_outcome,
);
