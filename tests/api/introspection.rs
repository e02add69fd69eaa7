//! `/v1/introspect` (RFC 7662): a client holding `tokens:introspect` learns whether a token is
//! active, and its claims; anything expired, garbled, revoked or of another organization is
//! `{"active": false}`.

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ClientAuth, Reply, TestKey, assert_cli_ok, assert_no_store, claims_of,
    create_organization, eventually, fresh_jti, introspect, post_form, resign, revoke, spawn_app,
};

/// Asserts `{"active": false}` and nothing else.
fn assert_inactive(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert_no_store(reply);
    assert_eq!(reply.json(), json!({ "active": false }), "{what}");
}

/// IN-01, IN-06.
async fn introspection_of_an_active_token_returns_its_claims(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let introspector = app.create_key(&["tokens:introspect"]);
    let introspector_token = app.token_for(&introspector).await;
    let subject = app.create_key(&["invoices:read", "clients:read"]);
    let token = app.token_for(&subject).await;
    let claims = claims_of(&token);

    for auth in [
        ClientAuth::Basic(&introspector),
        ClientAuth::Form(&introspector),
        ClientAuth::Bearer(&introspector_token),
    ] {
        let reply = introspect(&app, auth, &token).await;
        assert_eq!(reply.status, 200, "{auth:?}: {}", reply.text);
        assert_no_store(&reply);
        let body = reply.json();
        assert_eq!(body["active"], true, "{auth:?}: {body}");
        assert_eq!(body["token_type"], "Bearer");
        for claim in [
            "scope",
            "client_id",
            "exp",
            "iat",
            "sub",
            "aud",
            "iss",
            "jti",
        ] {
            assert!(!claims[claim].is_null(), "the JWT has {claim}");
            assert_eq!(body[claim], claims[claim], "{auth:?}: {claim}");
        }
        assert_eq!(body["client_id"], subject.client_id.as_str());
        assert_eq!(body["scope"], "clients:read invoices:read");
    }
    // A key may introspect its own token, too.
    let own = introspect(&app, ClientAuth::Basic(&introspector), &introspector_token)
        .await
        .expect(200);
    assert_eq!(own["active"], true);
    // token_type_hint is accepted and looked past.
    let hinted = post_form(
        &app,
        "/v1/introspect",
        ClientAuth::Basic(&introspector),
        &[("token", &token), ("token_type_hint", "refresh_token")],
        None,
    )
    .await
    .expect(200);
    assert_eq!(hinted["active"], true);
}

/// IN-04, IN-05, IN-07.
async fn introspection_of_expired_garbage_revoked_or_foreign_tokens_is_inactive(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let introspector = app.create_key(&["tokens:introspect"]);
    let subject = app.create_key(&["invoices:read"]);
    let token = app.token_for(&subject).await;

    // A re-signed copy is active (so the forgery works), an expired one is not.
    let copy = resign(&app, &token, |c| c["jti"] = json!(fresh_jti()));
    let active = introspect(&app, ClientAuth::Basic(&introspector), &copy)
        .await
        .expect(200);
    assert_eq!(active["active"], true, "a re-signed copy: {active}");
    let expired = resign(&app, &token, |c| {
        let past = chrono::Utc::now().timestamp() - 3600;
        c["iat"] = json!(past);
        c["nbf"] = json!(past);
        c["exp"] = json!(past + 900);
        c["jti"] = json!(fresh_jti());
    });
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &expired).await,
        "an expired token",
    );

    for (what, garbage) in [
        ("garbage", "not-a-token"),
        ("three dots", "a.b.c"),
        ("a truncated token", &token[..token.len() - 5]),
        ("a client secret", subject.client_secret.as_str()),
    ] {
        assert_inactive(
            &introspect(&app, ClientAuth::Basic(&introspector), garbage).await,
            what,
        );
    }

    // Another organization's token: inactive here, active there.
    create_organization(&app, "acme");
    let acme_subject = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let acme_introspector = app.create_key_with(&["tokens:introspect"], &["--org", "acme"]);
    let acme_token = app.token_for(&acme_subject).await;
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &acme_token).await,
        "another organization's token",
    );
    let there = introspect(&app, ClientAuth::Basic(&acme_introspector), &acme_token)
        .await
        .expect(200);
    assert_eq!(there["active"], true);
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&acme_introspector), &token).await,
        "the default organization's token, asked by acme",
    );

    // A token revoked with RFC 7009, and one whose key the CLI revoked.
    let revoked_one = app.token_for(&subject).await;
    revoke(&app, ClientAuth::Basic(&subject), &revoked_one)
        .await
        .expect_status_only(200);
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &revoked_one).await,
        "a token revoked at /v1/revoke",
    );
    assert_eq!(
        introspect(&app, ClientAuth::Basic(&introspector), &token)
            .await
            .expect(200)["active"],
        true
    );
    assert_cli_ok(&app.cli(&["api-keys", "revoke", &subject.client_id]));
    let inactive = eventually(1, || async {
        introspect(&app, ClientAuth::Basic(&introspector), &token)
            .await
            .json()
            == json!({ "active": false })
    })
    .await;
    assert!(
        inactive,
        "a token of a key revoked by the CLI is still active"
    );
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &token).await,
        "a token of a revoked key",
    );
}

/// IN-02, IN-03.
async fn introspection_needs_credentials_holding_tokens_introspect(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let subject = app.create_key(&["invoices:read"]);
    let token = app.token_for(&subject).await;

    let nobody = introspect(&app, ClientAuth::Nothing, &token).await;
    nobody.expect_error(401, "invalid_client");
    assert_no_store(&nobody);
    let wrong = TestKey {
        client_id: subject.client_id.clone(),
        client_secret: app.create_key(&["invoices:read"]).client_secret,
    };
    introspect(&app, ClientAuth::Basic(&wrong), &token)
        .await
        .expect_error(401, "invalid_client");
    introspect(&app, ClientAuth::Bearer("not-a-token"), &token)
        .await
        .expect_error(401, "invalid_token");

    let plain = app.create_key(&["invoices:read", "tokens:revoke"]);
    let plain_token = app.token_for(&plain).await;
    for auth in [
        ClientAuth::Basic(&plain),
        ClientAuth::Form(&plain),
        ClientAuth::Bearer(&plain_token),
    ] {
        let reply = introspect(&app, auth, &token).await;
        let body = reply.expect_error(403, "insufficient_scope");
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains("tokens:introspect") && !description.contains("access token"),
            "{auth:?}: names the scope, and no token where none was sent: {description}"
        );
        assert_no_store(&reply);
        assert!(!reply.text.contains("active"), "{auth:?}: {}", reply.text);
    }
    // A token narrowed below tokens:introspect cannot introspect, though its key could.
    let both = app.create_key(&["invoices:read", "tokens:introspect"]);
    let narrowed = app.token_with_scope(&both, Some("invoices:read")).await;
    introspect(&app, ClientAuth::Bearer(&narrowed), &token)
        .await
        .expect_error(403, "insufficient_scope");
    introspect(&app, ClientAuth::Basic(&both), &token)
        .await
        .expect(200);
}

backend_tests!(
    introspection_of_an_active_token_returns_its_claims,
    introspection_of_expired_garbage_revoked_or_foreign_tokens_is_inactive,
    introspection_needs_credentials_holding_tokens_introspect,
);
