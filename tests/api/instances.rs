//! Several keygate instances on one database: a change made through one reaches the others
//! through the change feed, with no database read on their validation path.

use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, eventually, spawn_app};

async fn a_revocation_on_one_instance_reaches_the_other_within_a_second(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = a.spawn_sibling().await;
    a.create_user("admin@example.com", &["--admin"]);
    let admin_token = a
        .token_as("admin@example.com", &["api_keys:write", "api_keys:read"])
        .await;
    let victim = a.create_key(&["invoices:read"]);
    let token = b.token_for(&victim).await;
    assert_eq!(
        b.get_with_token("/v1/me/permissions", &token)
            .await
            .status(),
        200
    );
    assert_eq!(
        a.get_with_token("/v1/me/permissions", &token)
            .await
            .status(),
        200
    );

    let path = format!("/v1/api-keys/{}/revoke", victim.client_id);
    let response = a
        .with_token(Method::POST, &path, &admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    // At once on the instance that revoked it, without waiting for the feed.
    assert_eq!(
        a.get_with_token("/v1/me/permissions", &token)
            .await
            .status(),
        401
    );
    let refused = eventually(1, || async {
        b.get_with_token("/v1/me/permissions", &token)
            .await
            .status()
            == 401
    })
    .await;
    assert!(
        refused,
        "the other instance still accepts the revoked key's token after a second"
    );
    // The sibling may remember the secret as verified; the feed makes it forget within the
    // same second.
    let credentials =
        json!({ "client_id": victim.client_id, "client_secret": victim.client_secret });
    let secret_refused = eventually(1, || async {
        b.post_token_json(credentials.clone()).await.status() == 401
    })
    .await;
    assert!(
        secret_refused,
        "the other instance still issues tokens to the revoked key"
    );
}

async fn disabling_a_key_and_narrowing_a_user_reach_the_other_instance(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = a.spawn_sibling().await;
    a.create_user("admin@example.com", &["--admin"]);
    let ops = a.create_user(
        "ops@example.com",
        &["--permissions", "invoices:read,invoices:write"],
    );
    // A key can only grant what it holds itself, so this one holds what it hands out.
    let scopes = [
        "api_keys:write",
        "users:manage",
        "invoices:read",
        "invoices:write",
    ];
    let admin = a.token_as("admin@example.com", &scopes).await;

    let disabled = a.create_key(&["invoices:read"]);
    let token = b.token_for(&disabled).await;
    let path = format!("/v1/api-keys/{}", disabled.client_id);
    let response = a
        .with_token(Method::PATCH, &path, &admin)
        .json(&json!({ "status": "disabled" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(
        eventually(1, || async {
            b.get_with_token("/v1/me", &token).await.status() == 401
        })
        .await
    );

    let ops_key = a.create_key_with(
        &["invoices:read", "invoices:write"],
        &["--owner", &ops.email],
    );
    let ops_token = b.token_for(&ops_key).await;
    let path = format!("/v1/users/{}", ops.id);
    let response = a
        .with_token(Method::PATCH, &path, &admin)
        .json(&json!({ "permissions": ["invoices:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert!(
        eventually(1, || async {
            b.get_with_token("/v1/me", &ops_token).await.status() == 401
        })
        .await,
        "a token issued before the narrowing is refused"
    );
    let renewed = b
        .post_token_json(
            json!({ "client_id": ops_key.client_id, "client_secret": ops_key.client_secret }),
        )
        .await;
    let renewed: serde_json::Value = renewed.json().await.unwrap();
    assert_eq!(
        renewed["scope"], "invoices:read",
        "the renewed token carries the narrowed scopes"
    );
}

backend_tests!(
    a_revocation_on_one_instance_reaches_the_other_within_a_second,
    disabling_a_key_and_narrowing_a_user_reach_the_other_instance,
);
