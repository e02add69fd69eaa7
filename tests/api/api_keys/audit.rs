//! The audit trail of keys: every lifecycle action, by a session or a token; refused secrets of
//! existing keys (`token.denied`, with the reason); never a secret in any event.

use serde_json::{Value, json};

use super::{
    USER_AGENT, actions, admin_session, assert_invalid_client, audit_trail, create, create_named,
    credentials, delete, get, key_path, management_key, patch, post, revoke_path, rotate_path,
    sleep_ms,
};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, TestApp, TestKey, Who, eventually, mistyped, spawn_app};

/// Asserts the one event of `events` with this action: by `actor`, about `target`, from
/// 127.0.0.1.
fn assert_event<'a>(events: &'a [Value], action: &str, actor: &str, target: &str) -> &'a Value {
    let event = events
        .iter()
        .find(|e| e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} among {events:#?}"));
    assert_eq!(event["actor"], actor, "{event}");
    assert_eq!(event["target"], target, "{event}");
    assert_eq!(event["outcome"], "success", "{event}");
    assert_eq!(event["client_ip"], "127.0.0.1", "{event}");
    assert!(event["occurred_at"].is_string(), "{event}");
    event
}

async fn every_lifecycle_action_appends_an_audit_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let (manager_key, manager) = management_key(
        &app,
        ADMIN,
        &[
            "api_keys:read",
            "api_keys:write",
            "audit:read",
            "invoices:read",
        ],
    )
    .await;
    let auditor = manager.clone();

    // In a session.
    let key = create_named(&app, &admin, "audited", &["invoices:read"]).await;
    let path = key_path(&key.client_id);
    for body in [
        json!({ "name": "audited, renamed" }),
        json!({ "status": "disabled" }),
        json!({ "status": "enabled" }),
    ] {
        let changed = patch(&app, &admin, &path, body).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
    }
    let rotated = post(
        &app,
        &admin,
        &rotate_path(&key.client_id),
        json!({ "grace_period_seconds": 0 }),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let revoked = post(&app, &admin, &revoke_path(&key.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let deleted = delete(&app, &admin, &path).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);

    let events = audit_trail(&app, &auditor, &format!("target={}", key.client_id)).await;
    let user = format!("user:{ADMIN}");
    for action in [
        "api_key.created",
        "api_key.updated",
        "api_key.disabled",
        "api_key.rotated",
        "api_key.revoked",
        "api_key.deleted",
    ] {
        let event = assert_event(&events, action, &user, &key.client_id);
        assert_eq!(event["user_agent"], USER_AGENT, "{event}");
    }
    let order = actions(&events);
    assert_eq!(order.first(), Some(&"api_key.created"), "{order:?}");
    assert_eq!(order.last(), Some(&"api_key.deleted"), "{order:?}");
    let position = |a: &str| order.iter().position(|x| *x == a).unwrap();
    assert!(position("api_key.updated") < position("api_key.disabled"));
    assert!(position("api_key.disabled") < position("api_key.rotated"));
    assert!(position("api_key.rotated") < position("api_key.revoked"));

    // With a bearer token.
    let by_token = create_named(&app, &manager, "made by a key", &["invoices:read"]).await;
    let changed = patch(
        &app,
        &manager,
        &key_path(&by_token.client_id),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let rotated = post(
        &app,
        &manager,
        &rotate_path(&by_token.client_id),
        json!({ "grace_period_seconds": 60 }),
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let revoked = post(&app, &manager, &revoke_path(&by_token.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let events = audit_trail(&app, &auditor, &format!("target={}", by_token.client_id)).await;
    let actor = format!("api_key:{}", manager_key.client_id);
    for action in [
        "api_key.created",
        "api_key.disabled",
        "api_key.rotated",
        "api_key.revoked",
    ] {
        assert_event(&events, action, &actor, &by_token.client_id);
    }
    let filtered = audit_trail(
        &app,
        &auditor,
        &format!("actor={actor}&action=api_key.rotated"),
    )
    .await;
    assert_eq!(filtered.len(), 1, "{filtered:?}");
    assert_eq!(filtered[0]["target"], by_token.client_id.as_str());
}

/// The outcomes of the `token.denied` events about `client_id`.
async fn denial_outcomes(app: &TestApp, auditor: &Who, client_id: &str) -> Vec<String> {
    audit_trail(
        app,
        auditor,
        &format!("target={client_id}&action=token.denied"),
    )
    .await
    .iter()
    .map(|e| e["outcome"].as_str().unwrap_or("").to_owned())
    .collect()
}

/// Waits for a `token.denied` event about `client_id` with this outcome (it is written after
/// the response).
async fn wait_for_denial(app: &TestApp, auditor: &Who, client_id: &str, outcome: &str) {
    let recorded = eventually(5, || async {
        denial_outcomes(app, auditor, client_id)
            .await
            .iter()
            .any(|o| o == outcome)
    })
    .await;
    assert!(
        recorded,
        "no token.denied event with outcome {outcome} for {client_id}; recorded: {:?}",
        denial_outcomes(app, auditor, client_id).await
    );
}

async fn a_failed_token_request_for_an_existing_key_is_audited_as_token_denied(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let (_, auditor) = management_key(&app, ADMIN, &["audit:read"]).await;
    let key = create_named(&app, &admin, "target", &["invoices:read"]).await;
    let other = create_named(&app, &admin, "other", &["invoices:read"]).await;

    // A well-formed secret that is not this key's.
    let wrong = TestKey {
        client_id: key.client_id.clone(),
        client_secret: other.client_secret.clone(),
    };
    assert_invalid_client(&app, &wrong).await;
    wait_for_denial(&app, &auditor, &key.client_id, "wrong_secret").await;

    let disabled = patch(
        &app,
        &admin,
        &key_path(&key.client_id),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    assert_invalid_client(&app, &key).await;
    wait_for_denial(&app, &auditor, &key.client_id, "disabled").await;

    let events = audit_trail(
        &app,
        &auditor,
        &format!("target={}&action=token.denied", key.client_id),
    )
    .await;
    for event in &events {
        assert_eq!(event["client_ip"], "127.0.0.1", "{event}");
        assert_eq!(event["target"], key.client_id.as_str(), "{event}");
    }
}

async fn a_revoked_or_deleted_keys_secret_is_audited_with_that_reason(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let (_, auditor) = management_key(&app, ADMIN, &["audit:read"]).await;
    let revoked = create_named(&app, &admin, "revoked", &["invoices:read"]).await;
    let deleted = create_named(&app, &admin, "deleted", &["invoices:read"]).await;
    let answer = post(&app, &admin, &revoke_path(&revoked.client_id), json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let answer = delete(&app, &admin, &key_path(&deleted.client_id)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // Their own, correct secrets: the trail should say why they were refused.
    assert_invalid_client(&app, &revoked).await;
    assert_invalid_client(&app, &deleted).await;
    wait_for_denial(&app, &auditor, &revoked.client_id, "revoked").await;
    wait_for_denial(&app, &auditor, &deleted.client_id, "deleted").await;
}

async fn no_audit_event_ever_contains_a_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let (manager_key, manager) = management_key(
        &app,
        ADMIN,
        &[
            "api_keys:read",
            "api_keys:write",
            "audit:read",
            "invoices:read",
        ],
    )
    .await;
    let cli_key = app.create_key(&["invoices:read"]);
    let by_session = create(
        &app,
        &admin,
        json!({ "name": "session", "scopes": ["invoices:read"], "metadata": { "team": "x" } }),
    )
    .await;
    let by_token = create(
        &app,
        &manager,
        json!({ "name": "token", "read_only": true }),
    )
    .await;
    let mut keys = vec![
        manager_key.clone(),
        cli_key.clone(),
        credentials(&by_session),
        credentials(&by_token),
    ];
    for (key, grace) in [(credentials(&by_session), 60), (credentials(&by_token), 0)] {
        let rotated = post(
            &app,
            &manager,
            &rotate_path(&key.client_id),
            json!({ "grace_period_seconds": grace }),
        )
        .await;
        assert_eq!(rotated.status, 200, "{}", rotated.text);
        keys.push(credentials(&rotated.body));
    }
    // Failed token requests carrying real secrets, under the wrong client_id.
    for (owner, secret_of) in [
        (&cli_key, &keys[2]),
        (&keys[2], &keys[3]),
        (&keys[3], &cli_key),
    ] {
        let wrong = TestKey {
            client_id: owner.client_id.clone(),
            client_secret: secret_of.client_secret.clone(),
        };
        assert_invalid_client(&app, &wrong).await;
    }
    let revoked = post(&app, &admin, &revoke_path(&keys[2].client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_invalid_client(&app, &keys[4]).await;
    let deleted = delete(&app, &admin, &key_path(&keys[3].client_id)).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let denials = eventually(5, || async {
        audit_trail(&app, &manager, "action=token.denied")
            .await
            .len()
            >= 4
    })
    .await;
    assert!(denials, "the token.denied events were not written");

    let mut texts = Vec::new();
    let mut offset = 0;
    loop {
        let page = get(
            &app,
            &manager,
            &format!("/v1/audit-events?limit=100&offset={offset}"),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let rows = page.rows().len();
        texts.push(page.text);
        offset += rows;
        if rows == 0 || offset as u64 >= page.body["count"].as_u64().unwrap() {
            break;
        }
    }
    let text = texts.concat();
    assert!(
        text.contains("api_key.rotated") && text.contains("token.denied"),
        "{text}"
    );
    for key in &keys {
        let secret = key.client_secret.as_str();
        assert!(!text.contains(secret), "a secret is in the audit trail");
        assert!(
            !text.contains(&secret[17..]),
            "the secret part of a secret is in the audit trail"
        );
    }
}

/// A secret that is not even well-formed is refused before anything is read, and recorded as
/// `malformed_secret` for a key that exists; an unknown client_id records nothing.
async fn a_malformed_secret_for_an_existing_key_is_audited_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let (_, auditor) = management_key(&app, ADMIN, &["audit:read"]).await;
    let key = create_named(&app, &admin, "target", &["invoices:read"]).await;
    let typo = TestKey {
        client_id: key.client_id.clone(),
        client_secret: mistyped(&key.client_secret),
    };
    assert_invalid_client(&app, &typo).await;
    wait_for_denial(&app, &auditor, &key.client_id, "malformed_secret").await;

    let unknown = TestKey {
        client_id: "kgc_00000000000000000000".into(),
        client_secret: "not a secret".into(),
    };
    assert_invalid_client(&app, &unknown).await;
    sleep_ms(300).await;
    assert!(
        denial_outcomes(&app, &auditor, &unknown.client_id)
            .await
            .is_empty()
    );
}

backend_tests!(
    a_malformed_secret_for_an_existing_key_is_audited_too,
    every_lifecycle_action_appends_an_audit_event,
    a_failed_token_request_for_an_existing_key_is_audited_as_token_denied,
    a_revoked_or_deleted_keys_secret_is_audited_with_that_reason,
    no_audit_event_ever_contains_a_secret,
);
