//! `/v1/api-keys/{client_id}`: retrieve, update (rename, metadata, disable), revoke, delete
//! and rotate a key; unknown ids are 404 on every route; last-used times; what races a
//! disable or a revoke.

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::json;

use super::{
    actions, admin_session, assert_invalid_client, assert_invalid_field, assert_secret_works,
    audit_trail, create, create_named, credentials, delete, get, key_path, management_key, patch,
    post, request, revoke_path, rotate_path, sleep_ms, time,
};
use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, TestApp, Who, assert_error, eventually, spawn_app, spawn_app_with,
    token_reply, token_response,
};

async fn a_key_can_be_retrieved_renamed_and_given_new_metadata(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let created = create(
        &app,
        &admin,
        json!({ "name": "Old name", "scopes": ["invoices:read"], "metadata": { "a": "1" } }),
    )
    .await;
    let key = credentials(&created);
    let path = key_path(&key.client_id);
    let fetched = get(&app, &admin, &path).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    for column in [
        "client_id",
        "name",
        "key_prefix",
        "environment",
        "scopes",
        "status",
        "metadata",
        "expires_at",
        "created_by",
    ] {
        assert_eq!(fetched.body[column], created[column], "{column}");
    }

    let renamed = patch(&app, &admin, &path, json!({ "name": "  New name  " })).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "New name", "trimmed");
    assert_eq!(renamed.body["metadata"], json!({ "a": "1" }), "untouched");
    let retagged = patch(
        &app,
        &admin,
        &path,
        json!({ "metadata": { "team": "ops" } }),
    )
    .await;
    assert_eq!(retagged.status, 200, "{}", retagged.text);
    assert_eq!(
        retagged.body["metadata"],
        json!({ "team": "ops" }),
        "replaced"
    );
    assert_eq!(retagged.body["name"], "New name");
    let fetched = get(&app, &admin, &path).await;
    assert_eq!(fetched.body["name"], "New name");
    assert_eq!(fetched.body["metadata"], json!({ "team": "ops" }));
    assert_eq!(fetched.body["status"], "enabled");

    for (body, field) in [
        (json!({}), "body"),
        (json!({ "colour": "blue" }), "colour"),
        (json!({ "scopes": ["invoices:write"] }), "scopes"),
        (json!({ "status": "revoked" }), "status"),
        (json!({ "status": "paused" }), "status"),
        (json!({ "status": true }), "status"),
        (json!({ "name": "" }), "name"),
        (json!({ "name": 5 }), "name"),
    ] {
        let refused = patch(&app, &admin, &path, body).await;
        assert_invalid_field(&refused, field);
    }
    let refused = Reply::send(
        request(&app, &admin, Method::PATCH, &path)
            .header("content-type", "text/plain")
            .body(r#"{"name": "x"}"#),
    )
    .await;
    assert_error(&refused, 400, "invalid_request");
    assert_eq!(get(&app, &admin, &path).await.body["name"], "New name");
    assert_secret_works(&app, &key).await;
}

async fn a_disabled_key_gets_invalid_client_and_its_tokens_are_refused_until_reenabled(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let key = create_named(&app, &admin, "toggled", &["invoices:read"]).await;
    let token = app.token_for(&key).await;
    assert_eq!(app.get_with_token("/v1/me", &token).await.status(), 200);
    let path = key_path(&key.client_id);

    let disabled = patch(&app, &admin, &path, json!({ "status": "disabled" })).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_eq!(disabled.body["status"], "disabled");
    assert_eq!(get(&app, &admin, &path).await.body["status"], "disabled");
    assert_invalid_client(&app, &key).await;
    let me = app.get_with_token("/v1/me", &token).await;
    assert_eq!(me.status(), 401, "the disabled key's token is refused");
    let me = app.get_with_token("/v1/me/permissions", &token).await;
    assert_eq!(me.status(), 401, "on every protected route");

    let enabled = patch(&app, &admin, &path, json!({ "status": "enabled" })).await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(enabled.body["status"], "enabled");
    // The disable cut the key's tokens at the next second: a token asked for within that
    // second waits for it rather than be born refused.
    let fresh = app.token_for(&key).await;
    assert_eq!(
        app.get_with_token("/v1/me", &fresh).await.status(),
        200,
        "a re-enabled key's new tokens work at once"
    );
    assert_eq!(
        app.get_with_token("/v1/me", &token).await.status(),
        401,
        "a token from before the disable stays refused"
    );
}

/// TOK-RV-01.
async fn revocation_is_immediate_and_final(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let key = create_named(&app, &admin, "doomed", &["invoices:read"]).await;
    let token = app.token_for(&key).await;
    let revoked = post(&app, &admin, &revoke_path(&key.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["status"], "revoked");
    assert!(revoked.body["revoked_at"].is_string(), "{}", revoked.text);
    assert_eq!(
        app.get_with_token("/v1/me/permissions", &token)
            .await
            .status(),
        401,
        "at once"
    );
    assert_invalid_client(&app, &key).await;

    let path = key_path(&key.client_id);
    for body in [
        json!({ "status": "enabled" }),
        json!({ "status": "disabled" }),
        json!({ "name": "revived" }),
    ] {
        let refused = patch(&app, &admin, &path, body).await;
        assert_error(&refused, 409, "conflict");
    }
    let refused = post(
        &app,
        &admin,
        &rotate_path(&key.client_id),
        json!({ "grace_period_seconds": 0 }),
    )
    .await;
    assert_error(&refused, 409, "conflict");
    let fetched = get(&app, &admin, &path).await;
    assert_eq!(fetched.body["status"], "revoked");
    assert_eq!(fetched.body["name"], "doomed");
    assert_invalid_client(&app, &key).await;
    let listed = get(&app, &admin, "/v1/api-keys?status=revoked").await;
    assert_eq!(listed.names(), ["doomed"]);
}

async fn a_revoked_key_still_shows_its_key_prefix(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let key = create_named(&app, &admin, "leaked", &["invoices:read"]).await;
    let revoked = post(&app, &admin, &revoke_path(&key.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    // An operator looking for the key of a leaked secret searches by its prefix.
    let prefix = &key.client_secret[..17];
    assert_eq!(revoked.body["key_prefix"], prefix, "{}", revoked.text);
    let fetched = get(&app, &admin, &key_path(&key.client_id)).await;
    assert_eq!(fetched.body["key_prefix"], prefix, "{}", fetched.text);
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert_eq!(
        listed.row_of(&key.client_id).unwrap()["key_prefix"],
        prefix,
        "{}",
        listed.text
    );
}

async fn a_deleted_key_vanishes_but_its_audit_trail_stays(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let (_, auditor) = management_key(&app, ADMIN, &["audit:read"]).await;
    let key = create_named(&app, &admin, "gone", &["invoices:read"]).await;
    let kept = create_named(&app, &admin, "kept", &["invoices:read"]).await;
    let token = app.token_for(&key).await;
    let path = key_path(&key.client_id);

    let deleted = delete(&app, &admin, &path).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    assert_eq!(deleted.body, json!({ "deleted": true }));
    assert_error(&get(&app, &admin, &path).await, 404, "not_found");
    let listed = get(&app, &admin, "/v1/api-keys").await;
    // The auditor's key ("test key") and the one kept.
    assert_eq!(listed.names(), ["test key", "kept"]);
    assert_eq!(listed.body["count"], 2);
    for status in ["enabled", "disabled", "revoked"] {
        let listed = get(&app, &admin, &format!("/v1/api-keys?status={status}")).await;
        assert!(listed.row_of(&key.client_id).is_none(), "{}", listed.text);
    }
    assert_eq!(app.get_with_token("/v1/me", &token).await.status(), 401);
    assert_invalid_client(&app, &key).await;
    assert_error(&delete(&app, &admin, &path).await, 404, "not_found");
    assert_error(
        &patch(&app, &admin, &path, json!({ "status": "enabled" })).await,
        404,
        "not_found",
    );
    assert_error(
        &post(&app, &admin, &rotate_path(&key.client_id), json!({})).await,
        404,
        "not_found",
    );

    // The trail of the deleted key is still there (and the refused secret joined it).
    let events = audit_trail(&app, &auditor, &format!("target={}", key.client_id)).await;
    let lifecycle: Vec<&str> = actions(&events)
        .into_iter()
        .filter(|a| a.starts_with("api_key."))
        .collect();
    assert_eq!(lifecycle.first(), Some(&"api_key.created"), "{events:?}");
    assert_eq!(lifecycle.last(), Some(&"api_key.deleted"), "{events:?}");
    assert!(lifecycle.contains(&"api_key.revoked"), "{events:?}");
    let denied = eventually(5, || async {
        let events = audit_trail(&app, &auditor, &format!("target={}", key.client_id)).await;
        actions(&events).contains(&"token.denied")
    })
    .await;
    assert!(denied, "the deleted key's refused secret is audited too");
    assert_secret_works(&app, &kept).await;
}

/// Asserts that every route on the key `client_id` (as it appears in the path) answers 404.
async fn assert_every_route_is_404(app: &TestApp, who: &Who, client_id: &str) {
    let path = key_path(client_id);
    for (route, answer) in [
        ("GET", get(app, who, &path).await),
        (
            "PATCH",
            patch(app, who, &path, json!({ "name": "x" })).await,
        ),
        ("DELETE", delete(app, who, &path).await),
        (
            "revoke",
            post(app, who, &revoke_path(client_id), json!({})).await,
        ),
        (
            "rotate",
            post(app, who, &rotate_path(client_id), json!({})).await,
        ),
    ] {
        assert_eq!(
            answer.status, 404,
            "{route} {path}: expected 404, got {}",
            answer.text
        );
        assert_error(&answer, 404, "not_found");
    }
}

async fn an_unknown_client_id_is_404_on_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for client_id in ["kgc_00000000000000000000", "nonsense", "kgc_%C3%A9", "%20"] {
        assert_every_route_is_404(&app, &admin, client_id).await;
    }
}

async fn a_client_id_with_a_nul_byte_is_404_not_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for client_id in ["%00", "kgc_0000000000000000000%00"] {
        assert_every_route_is_404(&app, &admin, client_id).await;
    }
}

/// SR-07, TOK-RT-01.
async fn rotation_without_grace_ends_the_old_secret_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let old = create_named(&app, &admin, "rotated", &["invoices:read"]).await;
    let token_before = app.token_for(&old).await;
    let rotated = post(
        &app,
        &admin,
        &rotate_path(&old.client_id),
        json!({ "grace_period_seconds": 0 }),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    let new = credentials(&rotated.body);
    assert_eq!(new.client_id, old.client_id);
    assert_ne!(new.client_secret, old.client_secret);
    assert!(new.client_secret.starts_with("kgs_live_"));
    assert_eq!(rotated.body["key_prefix"], &new.client_secret[..17]);
    assert!(rotated.body["previous_secret_expires_at"].is_null());
    assert_eq!(rotated.body["status"], "enabled");

    assert_invalid_client(&app, &old).await;
    assert_secret_works(&app, &new).await;
    assert_eq!(
        app.get_with_token("/v1/me", &token_before).await.status(),
        200,
        "rotation is not revocation: tokens issued before it keep working"
    );
    let fetched = get(&app, &admin, &key_path(&old.client_id)).await;
    assert!(fetched.body.get("client_secret").is_none());
    assert!(!fetched.text.contains(&new.client_secret));
    assert_eq!(fetched.body["key_prefix"], &new.client_secret[..17]);
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert!(!listed.text.contains(&new.client_secret));
}

/// TOK-RT-01.
async fn rotation_with_grace_keeps_the_old_secret_until_the_grace_ends(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let old = create_named(&app, &admin, "graceful", &["invoices:read"]).await;
    let token_before = app.token_for(&old).await;
    let started = Instant::now();
    let before = Utc::now();
    let rotated = post(
        &app,
        &admin,
        &rotate_path(&old.client_id),
        json!({ "grace_period_seconds": 2 }),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.header("cache-control"), Some("no-store"));
    let new = credentials(&rotated.body);
    assert_ne!(new.client_secret, old.client_secret);
    let until = time(&rotated.body["previous_secret_expires_at"]);
    assert!(
        until >= before + Duration::seconds(2) - Duration::milliseconds(100)
            && until <= Utc::now() + Duration::seconds(3),
        "{until}"
    );

    assert_secret_works(&app, &old).await;
    assert_secret_works(&app, &new).await;
    let ended = eventually(10, || async {
        sleep_ms(100).await;
        token_response(&app, &old).await.status() == 401
    })
    .await;
    assert!(
        ended,
        "the old secret still works ten seconds after a 2-second grace"
    );
    assert!(
        started.elapsed() >= StdDuration::from_millis(1500),
        "the grace was cut short: {:?}",
        started.elapsed()
    );
    assert_invalid_client(&app, &old).await;
    assert_secret_works(&app, &new).await;
    assert_eq!(
        app.get_with_token("/v1/me", &token_before).await.status(),
        200,
        "tokens issued before the rotation keep working"
    );
}

async fn rotation_refuses_a_grace_out_of_range_and_a_revoked_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let key = create_named(&app, &admin, "rotated", &["invoices:read"]).await;
    let path = rotate_path(&key.client_id);
    for body in [
        json!({ "grace_period_seconds": -1 }),
        json!({ "grace_period_seconds": 604_801 }),
        json!({ "grace_period_seconds": "60" }),
        json!({ "grace_period_seconds": 1.5 }),
        json!({ "grace_period_seconds": null }),
    ] {
        let refused = post(&app, &admin, &path, body).await;
        assert_invalid_field(&refused, "grace_period_seconds");
    }
    assert_invalid_field(
        &post(&app, &admin, &path, json!({ "grace": 60 })).await,
        "grace",
    );
    assert_secret_works(&app, &key).await;

    let before = Utc::now();
    let week = post(
        &app,
        &admin,
        &path,
        json!({ "grace_period_seconds": 604_800 }),
    )
    .await;
    assert_eq!(week.status, 200, "seven days is allowed: {}", week.text);
    let until = time(&week.body["previous_secret_expires_at"]);
    assert!(until >= before + Duration::days(7) - Duration::seconds(1));
    assert_secret_works(&app, &key).await;
    assert_secret_works(&app, &credentials(&week.body)).await;

    let revoked = post(&app, &admin, &revoke_path(&key.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let refused = post(&app, &admin, &path, json!({ "grace_period_seconds": 60 })).await;
    assert_error(&refused, 409, "conflict");
    assert!(refused.body.get("client_secret").is_none());
}

async fn last_used_at_appears_within_seconds_of_a_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let key = create_named(&app, &admin, "used", &["invoices:read"]).await;
    let idle = create_named(&app, &admin, "idle", &["invoices:read"]).await;
    let path = key_path(&key.client_id);
    assert!(get(&app, &admin, &path).await.body["last_used_at"].is_null());
    sleep_ms(300).await;
    assert!(
        get(&app, &admin, &path).await.body["last_used_at"].is_null(),
        "null before the first token"
    );
    let before = Utc::now();
    assert_secret_works(&app, &key).await;
    let after = Utc::now();
    let written = eventually(5, || async {
        get(&app, &admin, &path).await.body["last_used_at"].is_string()
    })
    .await;
    assert!(
        written,
        "last_used_at is still null five seconds after a token"
    );
    let used_at = time(&get(&app, &admin, &path).await.body["last_used_at"]);
    assert!(
        used_at >= before - Duration::seconds(1) && used_at <= after + Duration::seconds(1),
        "{used_at}"
    );
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert_eq!(
        time(&listed.row_of(&key.client_id).unwrap()["last_used_at"]),
        used_at
    );
    assert!(listed.row_of(&idle.client_id).unwrap()["last_used_at"].is_null());
}

/// Waits until late in a wall-clock second, so that what follows straddles the next one.
async fn until_late_in_a_second() {
    while !(800..850).contains(&Utc::now().timestamp_subsec_millis()) {
        sleep_ms(5).await;
    }
}

/// Token requests that judged the key before a disable committed, and were signed after it
/// (their bcrypt queued past the next second), still carry an `iat` before the cut: every one
/// of their tokens is refused once the disable answers.
async fn a_token_whose_key_was_judged_before_a_disable_is_refused_after_it(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        // Slow verification on one thread, and no remembered secrets: each request reads the
        // key, then waits its turn to hash, for tens of milliseconds.
        s.secrets.bcrypt_cost = 10;
        s.secrets.hashing_threads = 1;
        s.cache.verified_secrets = 0;
    })
    .await;
    let admin = admin_session(&app).await;
    let mut issued = Vec::new();
    for round in 0..2 {
        let key = create_named(&app, &admin, &format!("raced {round}"), &["invoices:read"]).await;
        let path = key_path(&key.client_id);
        until_late_in_a_second().await;
        let requests = futures_util::future::join_all((0..6).map(|_| token_reply(&app, &key)));
        let disable = async {
            sleep_ms(30).await;
            patch(&app, &admin, &path, json!({ "status": "disabled" })).await
        };
        let (replies, disabled) = futures_util::future::join(requests, disable).await;
        assert_eq!(disabled.status, 200, "{}", disabled.text);
        for reply in replies {
            match reply.status {
                200 => issued.push(reply.body["access_token"].as_str().unwrap().to_owned()),
                401 => assert_eq!(reply.body["error"], "invalid_client", "{}", reply.text),
                other => panic!("HTTP {other}: {}", reply.text),
            }
        }
    }
    assert!(
        !issued.is_empty(),
        "some requests read the key before the disable"
    );
    for token in &issued {
        let status = app
            .get_with_token("/v1/me/permissions", token)
            .await
            .status();
        assert_eq!(status, 401, "a token judged before the disable outlived it");
    }
}

/// A change racing a revoke never brings the key back: revocation is final in the update
/// itself, whatever the change read before.
async fn a_change_racing_a_revoke_never_brings_the_key_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for round in 0..20 {
        let key = create_named(
            &app,
            &admin,
            &format!("contested {round}"),
            &["invoices:read"],
        )
        .await;
        let (path, revoking) = (key_path(&key.client_id), revoke_path(&key.client_id));
        let revoke = post(&app, &admin, &revoking, json!({}));
        let change = patch(
            &app,
            &admin,
            &path,
            json!({ "status": "enabled", "name": format!("changed {round}") }),
        );
        let (revoked, changed) = futures_util::future::join(revoke, change).await;
        assert_eq!(revoked.status, 200, "{}", revoked.text);
        assert!(
            [200, 409].contains(&changed.status),
            "HTTP {}: {}",
            changed.status,
            changed.text
        );
        let now = get(&app, &admin, &path).await;
        assert_eq!(now.body["status"], "revoked", "round {round}: {}", now.text);
        let rotated = post(&app, &admin, &rotate_path(&key.client_id), json!({})).await;
        assert_error(&rotated, 409, "conflict");
        if round == 0 {
            assert_invalid_client(&app, &key).await;
        }
    }
}

backend_tests!(
    a_token_whose_key_was_judged_before_a_disable_is_refused_after_it,
    a_change_racing_a_revoke_never_brings_the_key_back,
    a_key_can_be_retrieved_renamed_and_given_new_metadata,
    a_disabled_key_gets_invalid_client_and_its_tokens_are_refused_until_reenabled,
    revocation_is_immediate_and_final,
    a_revoked_key_still_shows_its_key_prefix,
    a_deleted_key_vanishes_but_its_audit_trail_stays,
    an_unknown_client_id_is_404_on_every_route,
    a_client_id_with_a_nul_byte_is_404_not_a_server_error,
    rotation_without_grace_ends_the_old_secret_at_once,
    rotation_with_grace_keeps_the_old_secret_until_the_grace_ends,
    rotation_refuses_a_grace_out_of_range_and_a_revoked_key,
    last_used_at_appears_within_seconds_of_a_token,
);
