//! `/v1/revoke` (RFC 7009): a client revokes its own tokens, or any of its organization's with
//! `tokens:revoke`; garbage is answered 200, and another organization's tokens are never
//! revoked; each client has a quota, and a revoked token is remembered until any validator
//! could still take it.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ClientAuth, TestApp, TestKey, assert_no_store, claims_of, create_organization,
    fresh_jti, me_status, post_form, resign, revoke, spawn_app, spawn_app_with,
};

/// When the change feed forgets the revocation of the token `jti` (unix seconds).
fn remembered_until(app: &TestApp, jti: &str) -> i64 {
    use diesel::prelude::*;
    use keygate::db::schema::state_changes::dsl as feed;
    let pool = keygate::db::connect(&app.settings.database).unwrap();
    feed::state_changes
        .filter(feed::subject.eq(jti))
        .select(feed::expires_at)
        .first(&mut pool.get().unwrap())
        .unwrap()
}

/// RV-01, RV-06.
async fn a_client_revokes_its_own_token_at_once_while_its_other_tokens_keep_working(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let first = app.token_for(&key).await;
    let second = app.token_for(&key).await;
    let third = app.token_for(&key).await;
    let fourth = app.token_for(&key).await;

    let reply = revoke(&app, ClientAuth::Basic(&key), &first).await;
    reply.expect_status_only(200);
    assert_no_store(&reply);
    assert_eq!(me_status(&app, &first).await, 401, "revoked at once");
    assert_eq!(me_status(&app, &second).await, 200);

    let reply = post_form(
        &app,
        "/v1/revoke",
        ClientAuth::Form(&key),
        &[("token", &second), ("token_type_hint", "access_token")],
        None,
    )
    .await;
    reply.expect_status_only(200);
    assert_eq!(me_status(&app, &second).await, 401);
    let reply = post_form(
        &app,
        "/v1/revoke",
        ClientAuth::Bearer(&fourth),
        &[("token", &third), ("token_type_hint", "refresh_token")],
        None,
    )
    .await;
    reply.expect_status_only(200);
    assert_eq!(me_status(&app, &third).await, 401);
    assert_eq!(me_status(&app, &fourth).await, 200);

    // Still refused a moment later (the feed agrees), and the key still gets new tokens.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(me_status(&app, &first).await, 401);
    let fresh = app.token_for(&key).await;
    assert_eq!(me_status(&app, &fresh).await, 200);
    // Revoking twice is fine.
    revoke(&app, ClientAuth::Basic(&key), &first)
        .await
        .expect_status_only(200);
}

/// RV-04.
async fn revoking_another_clients_token_needs_tokens_revoke(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let victim = app.create_key(&["invoices:read"]);
    let token = app.token_for(&victim).await;
    let bystander = app.create_key(&["invoices:read", "tokens:introspect"]);
    let bystander_token = app.token_for(&bystander).await;

    for auth in [
        ClientAuth::Basic(&bystander),
        ClientAuth::Form(&bystander),
        ClientAuth::Bearer(&bystander_token),
    ] {
        let refused = revoke(&app, auth, &token).await;
        refused.expect_error(400, "unauthorized_client");
        assert_no_store(&refused);
        assert!(
            refused.json()["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("tokens:revoke")),
            "the refusal names the scope it needs: {}",
            refused.text
        );
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        me_status(&app, &token).await,
        200,
        "revoked by a client without tokens:revoke"
    );
    // A token of the bystander's own is still its to revoke.
    revoke(&app, ClientAuth::Basic(&bystander), &bystander_token)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &bystander_token).await, 401);

    let revoker = app.create_key(&["tokens:revoke"]);
    revoke(&app, ClientAuth::Basic(&revoker), &token)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &token).await, 401);
    let other = app.token_for(&victim).await;
    let revoker_token = app.token_for(&revoker).await;
    revoke(&app, ClientAuth::Bearer(&revoker_token), &other)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &other).await, 401);
}

/// RV-01, RV-03.
async fn revoking_a_garbage_token_answers_200_and_revocation_needs_client_authentication(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    for garbage in ["garbage", "a.b.c", &token[..token.len() - 4]] {
        let reply = revoke(&app, ClientAuth::Basic(&key), garbage).await;
        reply.expect_status_only(200);
        assert_no_store(&reply);
    }
    let expired = resign(&app, &token, |c| {
        let past = chrono::Utc::now().timestamp() - 3600;
        c["iat"] = json!(past);
        c["nbf"] = json!(past);
        c["exp"] = json!(past + 900);
        c["jti"] = json!(fresh_jti());
    });
    revoke(&app, ClientAuth::Basic(&key), &expired)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &token).await, 200);

    revoke(&app, ClientAuth::Nothing, &token)
        .await
        .expect_error(401, "invalid_client");
    let wrong = TestKey {
        client_id: key.client_id.clone(),
        client_secret: app.create_key(&["invoices:read"]).client_secret,
    };
    revoke(&app, ClientAuth::Basic(&wrong), &token)
        .await
        .expect_error(401, "invalid_client");
    assert_eq!(me_status(&app, &token).await, 200, "still valid");
}

/// RV-04.
async fn a_token_of_another_organization_is_never_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let ours = app.create_key(&["invoices:read"]);
    let our_token = app.token_for(&ours).await;
    let our_revoker = app.create_key(&["tokens:revoke"]);
    let acme = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let acme_token = app.token_for(&acme).await;
    let acme_revoker = app.create_key_with(&["tokens:revoke"], &["--org", "acme"]);
    let acme_revoker_token = app.token_for(&acme_revoker).await;

    revoke(&app, ClientAuth::Basic(&our_revoker), &acme_token)
        .await
        .expect_status_only(200);
    revoke(&app, ClientAuth::Basic(&acme_revoker), &our_token)
        .await
        .expect_status_only(200);
    revoke(&app, ClientAuth::Bearer(&acme_revoker_token), &our_token)
        .await
        .expect_status_only(200);
    // The owner of a token cannot be impersonated across organizations either.
    revoke(&app, ClientAuth::Basic(&acme), &our_token)
        .await
        .expect_status_only(200);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(me_status(&app, &acme_token).await, 200);
    assert_eq!(me_status(&app, &our_token).await, 200);

    // Within their organizations, the same revokers succeed.
    revoke(&app, ClientAuth::Basic(&acme_revoker), &acme_token)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &acme_token).await, 401);
    revoke(&app, ClientAuth::Basic(&our_revoker), &our_token)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &our_token).await, 401);
}

/// Each client revokes at most its quota (here three at once), then gets `429` with
/// `Retry-After`; what it revoked is remembered until the token's `exp` plus the largest
/// leeway any validator may use (300 s), whatever this instance's own leeway.
/// RV-06.
async fn revocations_are_bounded_per_client_and_kept_past_any_leeway(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit.revocation_burst = 3;
        s.tokens.leeway_seconds = 5;
    })
    .await;
    let key = app.create_key(&["invoices:read"]);
    let other = app.create_key(&["invoices:read"]);
    let mut tokens = Vec::new();
    for _ in 0..4 {
        tokens.push(app.token_for(&key).await);
    }
    for token in &tokens[..3] {
        revoke(&app, ClientAuth::Basic(&key), token)
            .await
            .expect_status_only(200);
        assert_eq!(me_status(&app, token).await, 401);
    }
    let refused = revoke(&app, ClientAuth::Basic(&key), &tokens[3]).await;
    refused.expect_error(429, "rate_limited");
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(me_status(&app, &tokens[3]).await, 200, "not revoked");
    // The quota is the client's own: another client still revokes.
    let others = app.token_for(&other).await;
    revoke(&app, ClientAuth::Basic(&other), &others)
        .await
        .expect_status_only(200);

    let claims = claims_of(&tokens[0]);
    let jti = claims["jti"].as_str().unwrap();
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(remembered_until(&app, jti), exp + 300);
}

backend_tests!(
    revocations_are_bounded_per_client_and_kept_past_any_leeway,
    a_client_revokes_its_own_token_at_once_while_its_other_tokens_keep_working,
    revoking_another_clients_token_needs_tokens_revoke,
    revoking_a_garbage_token_answers_200_and_revocation_needs_client_authentication,
    a_token_of_another_organization_is_never_revoked,
);
