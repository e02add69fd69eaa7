//! Refresh tokens, for keys created with them: handed out beside the access token, traded once
//! for a new pair (JSON or the RFC 6749 form), ended as a family when a spent one comes back,
//! ended by revoking, disabling or rotating the key, and revocable at `/v1/revoke`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ClientAuth, Reply, TestApp, TestKey, form, me_status, revoke, spawn_app,
    spawn_app_with,
};

/// A token answer for `key`'s credentials.
async fn grant(app: &TestApp, key: &TestKey) -> Value {
    Reply::of(
        app.post_token_json(
            json!({ "client_id": key.client_id, "client_secret": key.client_secret }),
        )
        .await,
    )
    .await
    .expect(200)
}

/// Trades a refresh token in keygate's JSON body (no client authentication).
async fn trade(app: &TestApp, refresh_token: &str) -> Reply {
    Reply::of(
        app.post_token_json(json!({ "refresh_token": refresh_token }))
            .await,
    )
    .await
}

fn refresh_token_of(answer: &Value) -> String {
    answer["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh_token in {answer}"))
        .to_owned()
}

fn access_token_of(answer: &Value) -> String {
    answer["access_token"].as_str().unwrap().to_owned()
}

fn refreshing_key(app: &TestApp, scopes: &[&str]) -> TestKey {
    app.create_user(ADMIN, &["--admin"]);
    app.create_key_with(scopes, &["--refresh-tokens"])
}

async fn a_key_with_refresh_tokens_trades_each_one_once_for_a_new_pair(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = refreshing_key(&app, &["invoices:read", "payouts:read"]);

    let first = grant(&app, &key).await;
    let refresh = refresh_token_of(&first);
    assert!(refresh.starts_with("kgr_"), "{refresh}");
    assert_eq!(first["access_token_expires_in"], first["expires_in"]);
    assert_eq!(first["access_token_expires_at"], first["expires_at"]);
    let now = chrono::Utc::now().timestamp();
    let lives = first["refresh_token_expires_in"].as_i64().unwrap();
    assert!((86_390..=86_400).contains(&lives), "{lives}");
    let until = first["refresh_token_expires_at"].as_i64().unwrap();
    assert!((until - (now + 86_400)).abs() <= 5, "{until}");

    // keygate's JSON body, as the fiskaly docs show it: the refresh token alone.
    let second = trade(&app, &refresh).await.expect(200);
    let next = refresh_token_of(&second);
    assert_ne!(next, refresh);
    assert_eq!(second["scope"], "invoices:read payouts:read");
    assert_eq!(me_status(&app, &access_token_of(&second)).await, 200);

    // The RFC 6749 form, with the key's own credentials, narrowing the scope.
    let narrowed = Reply::of(
        app.post_token_form(
            &form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &next),
                ("scope", "invoices:read"),
            ]),
            Some((&key.client_id, &key.client_secret)),
        )
        .await,
    )
    .await;
    let third = narrowed.expect(200);
    assert_eq!(third["scope"], "invoices:read");
    assert_eq!(narrowed.header("cache-control"), Some("no-store"));

    // A scope beyond the grant is refused, and the refresh token is not spent by it.
    let last = refresh_token_of(&third);
    let widened = Reply::of(
        app.post_token_json(json!({ "refresh_token": last, "scope": "clients:read" }))
            .await,
    )
    .await;
    widened.expect_error(400, "invalid_scope");
    let fourth = trade(&app, &last).await.expect(200);
    // The family keeps the scopes of its grant, whatever one refresh narrowed to.
    assert_eq!(fourth["scope"], "invoices:read payouts:read");
}

/// CC-04.
async fn keys_without_the_option_never_see_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let answer = grant(&app, &key).await;
    for field in [
        "refresh_token",
        "refresh_token_expires_in",
        "refresh_token_expires_at",
    ] {
        assert!(answer.get(field).is_none(), "{field} in {answer}");
    }
    assert_eq!(answer["access_token_expires_in"], answer["expires_in"]);
    let shown = app.cli(&["api-keys", "show", &key.client_id, "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["refresh_tokens"], false, "{shown}");
}

async fn reusing_a_spent_refresh_token_ends_its_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = refreshing_key(&app, &["invoices:read"]);
    let first = grant(&app, &key).await;
    let spent = refresh_token_of(&first);
    let second = trade(&app, &spent).await.expect(200);
    let (live_refresh, live_access) = (refresh_token_of(&second), access_token_of(&second));
    assert_eq!(me_status(&app, &live_access).await, 200);

    // The spent token comes back (an attacker's copy, or the client's): the family ends.
    trade(&app, &spent).await.expect_error(400, "invalid_grant");
    trade(&app, &live_refresh)
        .await
        .expect_error(400, "invalid_grant");
    assert_eq!(
        me_status(&app, &live_access).await,
        401,
        "the access token issued with the family is refused at once"
    );
    // Another grant starts a new family, unaffected.
    let fresh = grant(&app, &key).await;
    trade(&app, &refresh_token_of(&fresh)).await.expect(200);

    let auditor = app.create_key(&["audit:read"]);
    let events =
        crate::helpers::audit_events(&app, &app.token_for(&auditor).await, "action=token.denied")
            .await;
    assert!(
        events["data"].as_array().unwrap().iter().any(
            |e| e["outcome"] == "refresh_token_reused" && e["target"] == key.client_id.as_str()
        ),
        "{events}"
    );
}

async fn revoking_disabling_or_rotating_the_key_ends_its_refresh_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = {
        app.create_user(ADMIN, &["--admin"]);
        app.create_key(&["api_keys:read", "api_keys:write"])
    };
    for action in ["rotate", "disable", "revoke", "refresh_tokens off"] {
        let key = app.create_key_with(&["invoices:read"], &["--refresh-tokens"]);
        let refresh = refresh_token_of(&grant(&app, &key).await);
        let path = format!("/v1/api-keys/{}", key.client_id);
        let changed = match action {
            "rotate" => app.cli(&["api-keys", "rotate", &key.client_id, "--grace", "24h"]),
            "revoke" => app.cli(&["api-keys", "revoke", &key.client_id]),
            _ => {
                let body = if action == "disable" {
                    json!({ "status": "disabled" })
                } else {
                    json!({ "refresh_tokens": false })
                };
                Reply::send(
                    app.with_token(Method::PATCH, &path, &manager.client_secret)
                        .json(&body),
                )
                .await
                .expect(200);
                continue_with(&app, &refresh, action).await;
                continue;
            }
        };
        assert!(changed.status.success(), "{action}");
        continue_with(&app, &refresh, action).await;
    }
    // Enabling a disabled key again does not bring its refresh tokens back (checked above for
    // "disable"); a key switched back on gets new ones from its next grant.
}

/// The refresh token is refused after `action`.
async fn continue_with(app: &TestApp, refresh: &str, action: &str) {
    let reply = trade(app, refresh).await;
    assert_eq!(reply.status, 400, "{action}: {}", reply.text);
    reply.expect_error(400, "invalid_grant");
}

/// RV-02.
async fn the_revocation_endpoint_ends_a_refresh_token_and_its_access_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = refreshing_key(&app, &["invoices:read"]);
    let other = app.create_key_with(&["invoices:read"], &["--refresh-tokens"]);
    let answer = grant(&app, &key).await;
    let (refresh, access) = (refresh_token_of(&answer), access_token_of(&answer));

    // Another client without tokens:revoke may not revoke it (RFC 7009 section 2.1).
    revoke(&app, ClientAuth::Basic(&other), &refresh)
        .await
        .expect_error(400, "unauthorized_client");
    assert_eq!(me_status(&app, &access).await, 200);

    let done = revoke(&app, ClientAuth::Basic(&key), &refresh).await;
    done.expect_status_only(200);
    trade(&app, &refresh)
        .await
        .expect_error(400, "invalid_grant");
    assert_eq!(me_status(&app, &access).await, 401);
    // Revoking it again, or a made-up refresh token, is answered as done.
    revoke(&app, ClientAuth::Basic(&key), &refresh)
        .await
        .expect_status_only(200);
    revoke(
        &app,
        ClientAuth::Basic(&key),
        &crate::helpers::mistyped(&refresh),
    )
    .await
    .expect_status_only(200);
}

async fn bad_refresh_requests_get_their_rfc_6749_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = refreshing_key(&app, &["invoices:read"]);
    let other = app.create_key_with(&["invoices:read"], &["--refresh-tokens"]);
    let answer = grant(&app, &key).await;
    let refresh = refresh_token_of(&answer);

    for bogus in [
        "kgr_not-a-token".to_owned(),
        access_token_of(&answer),
        key.client_secret.clone(),
        crate::helpers::mistyped(&refresh),
    ] {
        let reply = trade(&app, &bogus).await;
        let body = reply.expect_error(400, "invalid_grant");
        assert!(!reply.text.contains(&bogus), "the answer echoes the token");
        assert!(body["error_description"].is_string());
    }
    // Another client's credentials with this key's refresh token.
    let foreign = Reply::of(
        app.post_token_form(
            &form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
            Some((&other.client_id, &other.client_secret)),
        )
        .await,
    )
    .await;
    foreign.expect_error(400, "invalid_grant");
    // The form needs the token; a refresh token in the URL is refused.
    let missing = Reply::of(app.post_token_form("grant_type=refresh_token", None).await).await;
    missing.expect_error(400, "invalid_request");
    let in_url = Reply::send(
        app.client
            .post(app.url(&format!("/v1/token?refresh_token={refresh}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=refresh_token"),
    )
    .await;
    in_url.expect_error(400, "invalid_request");
    // None of it spent the token.
    trade(&app, &refresh).await.expect(200);
}

async fn the_refresh_token_lifetime_is_configurable(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.tokens.refresh_token_lifetime_seconds = 600;
    })
    .await;
    let key = refreshing_key(&app, &["invoices:read"]);
    let answer = grant(&app, &key).await;
    let lives = answer["refresh_token_expires_in"].as_i64().unwrap();
    assert!((595..=600).contains(&lives), "{lives}");
    let traded = trade(&app, &refresh_token_of(&answer)).await.expect(200);
    assert!(traded["refresh_token_expires_in"].as_i64().unwrap() <= 600);
}

backend_tests!(
    a_key_with_refresh_tokens_trades_each_one_once_for_a_new_pair,
    keys_without_the_option_never_see_one,
    reusing_a_spent_refresh_token_ends_its_whole_family,
    revoking_disabling_or_rotating_the_key_ends_its_refresh_tokens,
    the_revocation_endpoint_ends_a_refresh_token_and_its_access_tokens,
    bad_refresh_requests_get_their_rfc_6749_errors,
    the_refresh_token_lifetime_is_configurable,
);
