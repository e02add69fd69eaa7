//! `/v1/users`: operators listed, created, retrieved and updated with a console session or a
//! token holding `users:manage`; what a caller may grant, and to whom.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, assert_no_store, assert_oauth_error, create_organization,
    create_user_via_token, emails_in, eventually, key_and_token, login, me_status, spawn_app,
    strings, token_reply,
};

async fn an_admin_session_lists_creates_retrieves_and_updates_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);
    assert_eq!(list["count"], 1);
    assert_eq!(list["offset"], 0);
    assert!(list["limit"].is_i64());
    assert_eq!(list["data"][0]["id"], admin.id.as_str());
    assert_eq!(list["data"][0]["admin"], true);
    assert_eq!(list["data"][0]["organization"], "default");

    let created = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "Ops@Example.com", "permissions": ["invoices:read"] })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_no_store(&created);
    let user = created.json();
    assert_eq!(user["email"], "ops@example.com");
    assert_eq!(user["admin"], false);
    assert_eq!(user["status"], "enabled");
    assert_eq!(user["organization"], "default");
    assert_eq!(strings(&user["permissions"]), ["invoices:read"]);
    let id = user["id"].as_str().unwrap().to_owned();
    let password = user["password"]
        .as_str()
        .expect("a generated password")
        .to_owned();
    assert!(password.len() >= 12);
    login(&app, "ops@example.com", &password).await.expect(200);

    let path = format!("/v1/users/{id}");
    let retrieved = Reply::send(app.with_session(Method::GET, &path, &session)).await;
    let body = retrieved.expect(200);
    assert_eq!(body["email"], "ops@example.com");
    assert!(body.get("password").is_none(), "shown once: {body}");
    assert!(!retrieved.text.contains(&password));
    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session)).await;
    assert!(!list.text.contains(&password));
    assert_eq!(emails_in(&list.expect(200)), [ADMIN, "ops@example.com"]);

    let patch = |body: Value| {
        let request = app.with_session(Method::PATCH, &path, &session).json(&body);
        async move { Reply::send(request).await }
    };
    let updated = patch(json!({ "permissions": ["invoices:read", "invoices:write"] }))
        .await
        .expect(200);
    assert_eq!(
        strings(&updated["permissions"]),
        ["invoices:read", "invoices:write"]
    );
    let updated = patch(json!({ "admin": true })).await.expect(200);
    assert_eq!(updated["admin"], true);
    assert!(strings(&updated["permissions"]).contains(&"users:manage".to_owned()));
    let updated = patch(json!({ "admin": false })).await.expect(200);
    assert_eq!(updated["admin"], false);
    assert_eq!(
        strings(&updated["permissions"]),
        ["invoices:read", "invoices:write"]
    );
    let updated = patch(json!({ "status": "disabled" })).await.expect(200);
    assert_eq!(updated["status"], "disabled");
    let updated = patch(json!({ "status": "enabled" })).await.expect(200);
    assert_eq!(updated["status"], "enabled");
    let retrieved = Reply::send(app.with_session(Method::GET, &path, &session))
        .await
        .expect(200);
    assert_eq!(retrieved["status"], "enabled");
    assert_eq!(
        strings(&retrieved["permissions"]),
        ["invoices:read", "invoices:write"]
    );

    // A password given in the request is used, and not echoed.
    let chosen = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "dev@example.com", "password": "a chosen passphrase" })),
    )
    .await;
    let body = chosen.expect(201);
    assert!(body.get("password").is_none(), "{body}");
    assert!(!chosen.text.contains("a chosen passphrase"));
    login(&app, "dev@example.com", "a chosen passphrase")
        .await
        .expect(200);
}

async fn a_users_manage_token_lists_creates_retrieves_and_updates_users(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app
        .token_as(ADMIN, &["users:manage", "invoices:read", "invoices:write"])
        .await;

    let list = Reply::send(app.with_token(Method::GET, "/v1/users", &token))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);

    let created = Reply::send(
        app.with_token(Method::POST, "/v1/users", &token)
            .json(&json!({ "email": "ops@example.com", "permissions": ["invoices:read"] })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_no_store(&created);
    let user = created.json();
    let password = user["password"].as_str().unwrap();
    login(&app, "ops@example.com", password).await.expect(200);

    let path = format!("/v1/users/{}", user["id"].as_str().unwrap());
    let retrieved = Reply::send(app.with_token(Method::GET, &path, &token))
        .await
        .expect(200);
    assert_eq!(retrieved["email"], "ops@example.com");
    let updated = Reply::send(
        app.with_token(Method::PATCH, &path, &token)
            .json(&json!({ "permissions": ["invoices:write"] })),
    )
    .await
    .expect(200);
    assert_eq!(strings(&updated["permissions"]), ["invoices:write"]);
    let updated = Reply::send(
        app.with_token(Method::PATCH, &path, &token)
            .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    assert_eq!(updated["status"], "disabled");
    login(&app, "ops@example.com", password)
        .await
        .expect_error(401, "invalid_credentials");
}

async fn disabling_a_user_ends_their_sessions_keys_and_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let admin = app
        .token_as(ADMIN, &["users:manage", "invoices:read", "audit:read"])
        .await;
    let ops = create_user_via_token(
        &app,
        &admin,
        json!({ "email": "ops@example.com", "permissions": ["invoices:read"] }),
    )
    .await;
    let (ops_id, password) = (
        ops["id"].as_str().unwrap().to_owned(),
        ops["password"].as_str().unwrap().to_owned(),
    );
    let session = app.log_in("ops@example.com", &password).await;
    let (key, token) = key_and_token(&app, "ops@example.com", &["invoices:read"]).await;
    Reply::send(app.with_session(Method::GET, "/v1/session", &session))
        .await
        .expect(200);
    assert_eq!(me_status(&app, &token).await, 200);

    let path = format!("/v1/users/{ops_id}");
    let disabled = Reply::send(
        app.with_token(Method::PATCH, &path, &admin)
            .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    assert_eq!(disabled["status"], "disabled");

    Reply::send(app.with_session(Method::GET, "/v1/session", &session))
        .await
        .expect_error(401, "invalid_token");
    Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(401);
    assert_oauth_error(
        app.post_token_json(
            json!({ "client_id": key.client_id, "client_secret": key.client_secret }),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    assert!(
        eventually(1, || async { me_status(&app, &token).await == 401 }).await,
        "a token of a disabled user's key is still accepted after a second"
    );
    login(&app, "ops@example.com", &password)
        .await
        .expect_error(401, "invalid_credentials");

    // Disabling is not final: enabled again, the key gets tokens again.
    Reply::send(
        app.with_token(Method::PATCH, &path, &admin)
            .json(&json!({ "status": "enabled" })),
    )
    .await
    .expect(200);
    token_reply(&app, &key).await.expect(200);
}

/// JWT-21.
async fn removing_a_permission_from_a_user_narrows_their_keys_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let admin = app
        .token_as(ADMIN, &["users:manage", "invoices:read"])
        .await;
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let (key, token) =
        key_and_token(&app, &manager.email, &["users:manage", "invoices:read"]).await;
    Reply::send(app.with_token(Method::GET, "/v1/users", &token))
        .await
        .expect(200);

    let path = format!("/v1/users/{}", manager.id);
    Reply::send(
        app.with_token(Method::PATCH, &path, &admin)
            .json(&json!({ "permissions": ["invoices:read"] })),
    )
    .await
    .expect(200);
    let after = Reply::send(app.with_token(Method::GET, "/v1/users", &token)).await;
    assert_eq!(
        after.status, 401,
        "a token issued before the narrowing: {}",
        after.text
    );
    // The cut is the next whole second (token `iat` has one-second resolution): a token
    // issued in the same second as the change is refused too, so renew after it.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let renewed = token_reply(&app, &key).await.expect(200);
    assert_eq!(renewed["scope"], "invoices:read");
    let renewed = renewed["access_token"].as_str().unwrap();
    Reply::send(app.with_token(Method::GET, "/v1/users", renewed))
        .await
        .expect_error(403, "insufficient_scope");
}

async fn a_caller_cannot_grant_a_permission_it_does_not_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let target = app.create_user("target@example.com", &["--permissions", "invoices:read"]);
    let session = app.log_in(&manager.email, &manager.password).await;

    let refused = Reply::send(app.with_session(Method::POST, "/v1/users", &session).json(
        &json!({ "email": "new@example.com", "permissions": ["invoices:read", "payouts:write"] }),
    ))
    .await
    .expect_error(403, "forbidden");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("payouts:write"),
        "{refused}"
    );
    let path = format!("/v1/users/{}", target.id);
    let refused = Reply::send(
        app.with_session(Method::PATCH, &path, &session)
            .json(&json!({ "permissions": ["payouts:write"] })),
    )
    .await
    .expect_error(403, "forbidden");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("payouts:write")
    );
    // Nor to itself.
    let own = format!("/v1/users/{}", manager.id);
    Reply::send(
        app.with_session(Method::PATCH, &own, &session)
            .json(&json!({ "permissions": ["users:manage", "invoices:read", "audit:read"] })),
    )
    .await
    .expect_error(403, "forbidden");

    // An administrator's key acts with its own scopes, not all of its owner's.
    let narrow = app.token_as(ADMIN, &["users:manage"]).await;
    let refused = Reply::send(
        app.with_token(Method::POST, "/v1/users", &narrow)
            .json(&json!({ "email": "new@example.com", "permissions": ["invoices:read"] })),
    )
    .await
    .expect_error(403, "forbidden");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("invoices:read")
    );

    let admin = app.token_as(ADMIN, &["users:manage"]).await;
    let list = Reply::send(app.with_token(Method::GET, "/v1/users", &admin))
        .await
        .expect(200);
    assert!(!emails_in(&list).contains(&"new@example.com".to_owned()));
    let target_now = Reply::send(app.with_token(Method::GET, &path, &admin))
        .await
        .expect(200);
    assert_eq!(strings(&target_now["permissions"]), ["invoices:read"]);

    // What it holds, it may grant.
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "new@example.com", "permissions": ["invoices:read"] })),
    )
    .await
    .expect(201);
}

async fn only_an_administrator_can_make_an_administrator(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let target = app.create_user("target@example.com", &["--permissions", "invoices:read"]);
    let session = app.log_in(&manager.email, &manager.password).await;

    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "new@example.com", "admin": true })),
    )
    .await
    .expect_error(403, "forbidden");
    for id in [&target.id, &manager.id] {
        Reply::send(
            app.with_session(Method::PATCH, &format!("/v1/users/{id}"), &session)
                .json(&json!({ "admin": true })),
        )
        .await
        .expect_error(403, "forbidden");
    }
    let narrow = app.token_as(ADMIN, &["users:manage"]).await;
    Reply::send(
        app.with_token(Method::POST, "/v1/users", &narrow)
            .json(&json!({ "email": "new@example.com", "admin": true })),
    )
    .await
    .expect_error(403, "forbidden");

    let admin_session = app.log_in(ADMIN, &admin.password).await;
    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &admin_session))
        .await
        .expect(200);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["admin"] == (u["email"] == ADMIN)),
        "nobody was made an administrator: {list}"
    );
    let made = Reply::send(
        app.with_session(Method::POST, "/v1/users", &admin_session)
            .json(&json!({ "email": "new@example.com", "admin": true })),
    )
    .await
    .expect(201);
    assert_eq!(made["admin"], true);
    let promoted = Reply::send(
        app.with_session(
            Method::PATCH,
            &format!("/v1/users/{}", target.id),
            &admin_session,
        )
        .json(&json!({ "admin": true })),
    )
    .await
    .expect(200);
    assert_eq!(promoted["admin"], true);
}

async fn another_organizations_user_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let bob = app.create_user("bob@acme.example", &["--org", "acme", "--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    let foreign = format!("/v1/users/{}", bob.id);
    let unknown = "/v1/users/usr_0000000000000000";
    let foreign_get = Reply::send(app.with_session(Method::GET, &foreign, &session)).await;
    let unknown_get = Reply::send(app.with_session(Method::GET, unknown, &session)).await;
    foreign_get.expect_error(404, "not_found");
    assert_eq!(foreign_get.text, unknown_get.text, "no existence oracle");
    let foreign_patch = Reply::send(
        app.with_session(Method::PATCH, &foreign, &session)
            .json(&json!({ "status": "disabled" })),
    )
    .await;
    let unknown_patch = Reply::send(
        app.with_session(Method::PATCH, unknown, &session)
            .json(&json!({ "status": "disabled" })),
    )
    .await;
    foreign_patch.expect_error(404, "not_found");
    assert_eq!(foreign_patch.text, unknown_patch.text);

    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);
    // bob is untouched.
    login(&app, &bob.email, &bob.password).await.expect(200);

    // The other way round too, with a token.
    let bob_key = app.create_key_with(&["users:manage"], &["--org", "acme"]);
    let bob_token = app.token_for(&bob_key).await;
    Reply::send(app.with_token(Method::GET, &format!("/v1/users/{}", admin.id), &bob_token))
        .await
        .expect_error(404, "not_found");
    let list = Reply::send(app.with_token(Method::GET, "/v1/users", &bob_token))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), ["bob@acme.example"]);
}

async fn user_requests_with_unknown_fields_or_bad_values_are_refused_naming_the_field(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let post = |body: Value| {
        let request = app
            .with_session(Method::POST, "/v1/users", &session)
            .json(&body);
        async move { Reply::send(request).await }
    };
    post(json!({ "email": "x@example.com", "role": "owner" }))
        .await
        .expect_field_error("role");
    post(json!({ "email": "not-an-email" }))
        .await
        .expect_field_error("email");
    post(json!({ "email": 42 }))
        .await
        .expect_field_error("email");
    post(json!({ "email": "x@example.com", "admin": "yes" }))
        .await
        .expect_field_error("admin");
    post(json!({ "email": "x@example.com", "password": "short" }))
        .await
        .expect_field_error("password");
    post(json!({ "email": "x@example.com", "permissions": "invoices:read" }))
        .await
        .expect_field_error("permissions");
    post(json!({ "email": "x@example.com", "permissions": ["has space"] }))
        .await
        .expect_field_error("permissions");
    let missing = post(json!({})).await.expect_error(400, "invalid_request");
    assert!(
        missing["error_description"]
            .as_str()
            .unwrap()
            .contains("email"),
        "{missing}"
    );
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .header("content-type", "application/json")
            .body("{\"email\": "),
    )
    .await
    .expect_error(400, "invalid_request");
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .header("content-type", "text/plain")
            .body("{\"email\": \"x@example.com\"}"),
    )
    .await
    .expect_error(400, "invalid_request");
    let conflict = post(json!({ "email": "ADMIN@example.com" })).await;
    conflict.expect_error(409, "conflict");

    let path = format!("/v1/users/{}", admin.id);
    let patch = |body: Value| {
        let request = app.with_session(Method::PATCH, &path, &session).json(&body);
        async move { Reply::send(request).await }
    };
    patch(json!({ "status": "paused" }))
        .await
        .expect_field_error("status");
    patch(json!({ "nickname": "x" }))
        .await
        .expect_field_error("nickname");
    patch(json!({ "email": "new@example.com" }))
        .await
        .expect_field_error("email");
    patch(json!({ "admin": 1 }))
        .await
        .expect_field_error("admin");
    patch(json!({ "permissions": [1] }))
        .await
        .expect_field_error("permissions[0]");
    patch(json!({})).await.expect_error(400, "invalid_request");

    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN], "nothing was created");
    assert_eq!(list["data"][0]["status"], "enabled");
}

async fn an_unknown_permission_is_refused_as_a_bad_value_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let created = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "x@example.com", "permissions": ["bogus:perm"] })),
    )
    .await;
    let body = created.expect_field_error("permissions");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("bogus:perm"),
        "{body}"
    );
    let path = format!("/v1/users/{}", admin.id);
    let updated = Reply::send(
        app.with_session(Method::PATCH, &path, &session)
            .json(&json!({ "permissions": ["bogus:perm"] })),
    )
    .await;
    updated.expect_field_error("permissions");
}

async fn the_users_api_without_users_manage_is_insufficient_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let reader = app.create_user(
        "reader@example.com",
        &["--permissions", "invoices:read,audit:read"],
    );
    let token = app.token_as(ADMIN, &["invoices:read", "audit:read"]).await;
    let session = app.log_in(&reader.email, &reader.password).await;
    let user_path = format!("/v1/users/{}", admin.id);
    let requests: Vec<(&str, RequestBuilder)> = vec![
        (
            "list with a token",
            app.with_token(Method::GET, "/v1/users", &token),
        ),
        (
            "create with a token",
            app.with_token(Method::POST, "/v1/users", &token)
                .json(&json!({ "email": "x@example.com" })),
        ),
        (
            "retrieve with a token",
            app.with_token(Method::GET, &user_path, &token),
        ),
        (
            "update with a token",
            app.with_token(Method::PATCH, &user_path, &token)
                .json(&json!({ "status": "disabled" })),
        ),
        (
            "list in a session",
            app.with_session(Method::GET, "/v1/users", &session),
        ),
        (
            "create in a session",
            app.with_session(Method::POST, "/v1/users", &session)
                .json(&json!({ "email": "x@example.com" })),
        ),
        (
            "update in a session",
            app.with_session(Method::PATCH, &user_path, &session)
                .json(&json!({ "status": "disabled" })),
        ),
    ];
    for (what, request) in requests {
        let reply = Reply::send(request).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.text);
        assert_eq!(reply.json()["error"], "insufficient_scope", "{what}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("scope=\"users:manage\""),
            "{what}: {challenge}"
        );
    }
    Reply::send(app.client.get(app.url("/v1/users")))
        .await
        .expect(401);
    login(&app, ADMIN, &admin.password).await.expect(200);
}

/// A user manager who is not an administrator cannot disable, demote or narrow one, and in
/// the deployment's organization cannot make an administrator (who would also manage
/// organizations) without holding `organizations:manage` itself.
async fn a_user_manager_cannot_act_on_someone_more_powerful(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user("admin@example.com", &["--admin"]);
    let everything_but_organizations: Vec<&str> = keygate::domain::ManagementPermission::ALL
        .iter()
        .map(|p| p.as_str())
        .filter(|p| *p != "organizations:manage")
        .chain([
            "invoices:read",
            "invoices:write",
            "payment-links:read",
            "payment-links:write",
            "clients:read",
            "clients:write",
            "payouts:read",
            "payouts:write",
            "disbursements:read",
            "disbursements:write",
            "webhooks:read",
            "webhooks:write",
        ])
        .collect();
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", &everything_but_organizations.join(",")],
    );
    let session = app.log_in(&manager.email, &manager.password).await;
    let admin_path = format!("/v1/users/{}", admin.id);
    for change in [
        json!({ "status": "disabled" }),
        json!({ "admin": false }),
        json!({ "permissions": ["invoices:read"] }),
    ] {
        let response = app
            .with_session(Method::PATCH, &admin_path, &session)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{change}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("organizations:manage"),
            "{body}"
        );
    }
    let response = app
        .with_session(Method::POST, "/v1/users", &session)
        .json(&json!({ "email": "new-admin@example.com", "admin": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "a non-administrator made an administrator"
    );
    // A peer (who holds nothing the manager lacks) can still be managed.
    let peer = app.create_user("peer@example.com", &["--permissions", "invoices:read"]);
    let response = app
        .with_session(Method::PATCH, &format!("/v1/users/{}", peer.id), &session)
        .json(&json!({ "status": "disabled" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A user manager who is not an administrator cannot re-enable a disabled administrator:
/// grants are judged against what a user would hold once enabled, whatever their status now.
async fn a_user_manager_cannot_re_enable_a_disabled_administrator(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let other_admin = app.create_user("second-admin@example.com", &["--admin"]);
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let admin_session = app.log_in(ADMIN, &admin.password).await;
    let path = format!("/v1/users/{}", other_admin.id);
    Reply::send(
        app.with_session(Method::PATCH, &path, &admin_session)
            .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect(200);

    let session = app.log_in(&manager.email, &manager.password).await;
    for change in [
        json!({ "status": "enabled" }),
        json!({ "permissions": ["invoices:read"] }),
    ] {
        let refused = Reply::send(
            app.with_session(Method::PATCH, &path, &session)
                .json(&change),
        )
        .await;
        let body = refused.expect_error(403, "forbidden");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("which you do not"),
            "{change}: {body}"
        );
    }
    let still = Reply::send(app.with_session(Method::GET, &path, &admin_session))
        .await
        .expect(200);
    assert_eq!(still["status"], "disabled");
    assert_eq!(still["admin"], true);
    login(&app, &other_admin.email, &other_admin.password)
        .await
        .expect_error(401, "invalid_credentials");
    Reply::send(
        app.with_session(Method::PATCH, &path, &admin_session)
            .json(&json!({ "status": "enabled" })),
    )
    .await
    .expect(200);
}

backend_tests!(
    a_user_manager_cannot_re_enable_a_disabled_administrator,
    an_admin_session_lists_creates_retrieves_and_updates_users,
    a_users_manage_token_lists_creates_retrieves_and_updates_users,
    disabling_a_user_ends_their_sessions_keys_and_tokens,
    removing_a_permission_from_a_user_narrows_their_keys_at_once,
    a_caller_cannot_grant_a_permission_it_does_not_hold,
    only_an_administrator_can_make_an_administrator,
    another_organizations_user_is_not_found,
    user_requests_with_unknown_fields_or_bad_values_are_refused_naming_the_field,
    an_unknown_permission_is_refused_as_a_bad_value_naming_the_field,
    the_users_api_without_users_manage_is_insufficient_scope,
    a_user_manager_cannot_act_on_someone_more_powerful,
);
