//! `/v1/users/invitations` and `/v1/invitations/accept`: an invited user sets their own
//! password through a one-time link, once and only once; links are resent (the old one stops
//! working), revoked (the user is disabled) and expire; an inviter grants only what they hold.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, TestApp, TestSession, assert_cli_ok, assert_no_store, login, spawn_app,
    stdout,
};

const PASSWORD: &str = "a long enough password";

async fn invite(app: &TestApp, session: &TestSession, body: Value) -> Reply {
    Reply::send(
        app.with_session(Method::POST, "/v1/users/invitations", session)
            .json(&body),
    )
    .await
}

fn token_of(link: &Value) -> String {
    let url = link["invitation_url"].as_str().expect("a link");
    assert!(url.contains("/console/invitations/kgi_"), "{url}");
    url.rsplit('/').next().unwrap().to_owned()
}

async fn accept(app: &TestApp, token: &str, password: &str) -> Reply {
    Reply::send(
        app.client
            .post(app.url("/v1/invitations/accept"))
            .json(&json!({ "token": token, "password": password })),
    )
    .await
}

async fn admin(app: &TestApp) -> TestSession {
    let admin = app.create_user(ADMIN, &["--admin"]);
    app.log_in(ADMIN, &admin.password).await
}

async fn an_invitation_is_accepted_once_and_only_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = admin(&app).await;
    let invited = invite(
        &app,
        &session,
        json!({ "email": "ines@example.com", "permissions": ["invoices:read"] }),
    )
    .await;
    assert_no_store(&invited);
    let body = invited.expect(201);
    assert_eq!(body["user"]["status"], "invited");
    assert_eq!(
        body["user"]["permissions"],
        json!([]),
        "an invited user holds nothing until they accept"
    );
    let token = token_of(&body);
    assert_eq!(
        login(&app, "ines@example.com", PASSWORD).await.status,
        401,
        "no log-in before the invitation is accepted"
    );
    let open = Reply::send(app.with_session(Method::GET, "/v1/users/invitations", &session))
        .await
        .expect(200);
    assert_eq!(open["data"][0]["user"]["email"], "ines@example.com");
    assert!(
        !open.to_string().contains(&token),
        "the link is never listed"
    );

    let accepted = accept(&app, &token, PASSWORD).await.expect(200);
    assert_eq!(accepted["status"], "enabled");
    assert_eq!(accepted["permissions"], json!(["invoices:read"]));
    assert_eq!(login(&app, "ines@example.com", PASSWORD).await.status, 200);
    accept(&app, &token, "another long password")
        .await
        .expect_error(404, "not_found");
    assert_eq!(
        login(&app, "ines@example.com", "another long password")
            .await
            .status,
        401,
        "the second use changed nothing"
    );
    let open = Reply::send(app.with_session(Method::GET, "/v1/users/invitations", &session))
        .await
        .expect(200);
    assert_eq!(open["count"], 0);
    let trail = Reply::send(app.with_session(
        Method::GET,
        "/v1/audit-events?action=user.invitation_accepted",
        &session,
    ))
    .await
    .expect(200);
    assert_eq!(trail["count"], 1, "{trail}");

    accept(&app, "kgi_nothing", PASSWORD)
        .await
        .expect_error(404, "not_found");
    invite(&app, &session, json!({ "email": "ines@example.com" }))
        .await
        .expect_error(409, "conflict");
}

async fn a_resent_link_replaces_the_old_and_a_revoked_one_disables_the_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = admin(&app).await;
    let first = invite(&app, &session, json!({ "email": "otto@example.com" }))
        .await
        .expect(201);
    let user_id = first["user"]["id"].as_str().unwrap().to_owned();
    let old = token_of(&first);
    let resent = Reply::send(app.with_session(
        Method::POST,
        &format!("/v1/users/invitations/{user_id}/resend"),
        &session,
    ))
    .await
    .expect(200);
    let new = token_of(&resent);
    assert_ne!(old, new);
    accept(&app, &old, PASSWORD)
        .await
        .expect_error(404, "not_found");

    let revoked = Reply::send(app.with_session(
        Method::DELETE,
        &format!("/v1/users/invitations/{user_id}"),
        &session,
    ))
    .await
    .expect(200);
    assert_eq!(revoked, json!({ "deleted": true }));
    accept(&app, &new, PASSWORD)
        .await
        .expect_error(404, "not_found");
    let user =
        Reply::send(app.with_session(Method::GET, &format!("/v1/users/{user_id}"), &session))
            .await
            .expect(200);
    assert_eq!(user["status"], "disabled");
    Reply::send(app.with_session(
        Method::POST,
        &format!("/v1/users/invitations/{user_id}/resend"),
        &session,
    ))
    .await
    .expect_error(409, "conflict");

    // A link past its 7 days does not work.
    let late = invite(&app, &session, json!({ "email": "late@example.com" }))
        .await
        .expect(201);
    app.run_sql("UPDATE invitations SET expires_at = created_at WHERE accepted_at IS NULL AND revoked_at IS NULL");
    accept(&app, &token_of(&late), PASSWORD)
        .await
        .expect_error(404, "not_found");
}

async fn an_inviter_grants_only_what_they_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let lead = app.create_user(
        "lead@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let session = app.log_in(&lead.email, &lead.password).await;
    let refused = invite(
        &app,
        &session,
        json!({ "email": "x@example.com", "permissions": ["invoices:write"] }),
    )
    .await;
    refused.expect_error(403, "forbidden");
    invite(
        &app,
        &session,
        json!({ "email": "x@example.com", "admin": true }),
    )
    .await
    .expect_error(403, "forbidden");
    let made = invite(
        &app,
        &session,
        json!({ "email": "x@example.com", "permissions": ["invoices:read"] }),
    )
    .await
    .expect(201);
    accept(&app, &token_of(&made), "short")
        .await
        .expect_field_error("password");
    invite(&app, &session, json!({ "email": "not an email" }))
        .await
        .expect_field_error("email");
}

async fn the_cli_prints_an_invitation_link(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let out = app.cli(&[
        "users",
        "invite",
        "--email",
        "cli@example.com",
        "--permissions",
        "invoices:read",
    ]);
    assert_cli_ok(&out);
    let link = stdout(&out).trim().to_owned();
    let token = link.rsplit('/').next().unwrap();
    assert!(token.starts_with("kgi_"), "{link}");
    accept(&app, token, PASSWORD).await.expect(200);
    assert_eq!(login(&app, "cli@example.com", PASSWORD).await.status, 200);
}

backend_tests!(
    an_invitation_is_accepted_once_and_only_once,
    a_resent_link_replaces_the_old_and_a_revoked_one_disables_the_user,
    an_inviter_grants_only_what_they_hold,
    the_cli_prints_an_invitation_link,
);
