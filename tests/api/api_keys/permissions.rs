//! Who may act on which key: without `api_keys:manage` only on one's own, with it on every key
//! of the organization, never on another organization's; `api_keys:read` alone changes
//! nothing; taking a key over needs every scope it holds; a key without an owner is nobody's;
//! a test key acts only on test keys; a narrowed user's keys narrow at once; a session needs
//! its CSRF token.

use reqwest::Method;
use serde_json::json;

use super::{
    admin_session, assert_invalid_client, assert_secret_works, audit_trail, create_named, delete,
    get, key_path, management_key, patch, post, revoke_path, rotate_path, sleep_ms,
};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, Who, assert_error, spawn_app};

async fn without_api_keys_manage_a_colleagues_key_is_invisible_and_untouchable(backend: Backend) {
    let app = spawn_app(backend).await;
    let permissions = "api_keys:read,api_keys:write,invoices:read";
    let scopes = ["api_keys:read", "api_keys:write", "invoices:read"];
    app.create_user("alice@example.com", &["--permissions", permissions]);
    app.create_user("bob@example.com", &["--permissions", permissions]);
    let (alice_admin_key, alice) = management_key(&app, "alice@example.com", &scopes).await;
    let (_, bob) = management_key(&app, "bob@example.com", &scopes).await;
    let alices = create_named(&app, &alice, "alice's export", &["invoices:read"]).await;
    let bobs = create_named(&app, &bob, "bob's export", &["invoices:read"]).await;

    let listed = get(&app, &bob, "/v1/api-keys").await;
    assert!(
        listed.row_of(&alices.client_id).is_none(),
        "{}",
        listed.text
    );
    assert!(
        listed.row_of(&alice_admin_key.client_id).is_none(),
        "{}",
        listed.text
    );
    assert!(listed.row_of(&bobs.client_id).is_some(), "{}", listed.text);
    assert!(
        listed
            .rows()
            .iter()
            .all(|row| row["created_by"] == "bob@example.com"),
        "{}",
        listed.text
    );
    assert_eq!(listed.body["count"], listed.rows().len());

    let nowhere = get(&app, &bob, &key_path("kgc_00000000000000000000")).await;
    for client_id in [&alices.client_id, &alice_admin_key.client_id] {
        let path = key_path(client_id);
        let hidden = get(&app, &bob, &path).await;
        assert_error(&hidden, 404, "not_found");
        assert_eq!(hidden.body, nowhere.body, "no existence oracle");
        assert_error(
            &post(&app, &bob, &revoke_path(client_id), json!({})).await,
            404,
            "not_found",
        );
        assert_error(
            &patch(&app, &bob, &path, json!({ "status": "disabled" })).await,
            404,
            "not_found",
        );
        assert_error(
            &post(
                &app,
                &bob,
                &rotate_path(client_id),
                json!({ "grace_period_seconds": 0 }),
            )
            .await,
            404,
            "not_found",
        );
        assert_error(&delete(&app, &bob, &path).await, 404, "not_found");
    }
    let fetched = get(&app, &alice, &key_path(&alices.client_id)).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    assert_eq!(fetched.body["status"], "enabled");
    assert_secret_works(&app, &alices).await;
    assert_secret_works(&app, &alice_admin_key).await;
}

async fn api_keys_manage_sees_and_acts_on_every_key_of_the_organization(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(
        "alice@example.com",
        &[
            "--permissions",
            "api_keys:read,api_keys:write,invoices:read",
        ],
    );
    app.create_user(
        "lead@example.com",
        &[
            "--permissions",
            "api_keys:read,api_keys:write,api_keys:manage",
        ],
    );
    let (_, alice) = management_key(
        &app,
        "alice@example.com",
        &["api_keys:read", "api_keys:write", "invoices:read"],
    )
    .await;
    let (_, lead) = management_key(
        &app,
        "lead@example.com",
        &["api_keys:read", "api_keys:write", "api_keys:manage"],
    )
    .await;
    let alices = create_named(&app, &alice, "alice's export", &["invoices:read"]).await;
    let listed = get(&app, &lead, "/v1/api-keys").await;
    let row = listed.row_of(&alices.client_id).expect("the lead sees it");
    assert_eq!(row["created_by"], "alice@example.com");
    let fetched = get(&app, &lead, &key_path(&alices.client_id)).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    let renamed = patch(
        &app,
        &lead,
        &key_path(&alices.client_id),
        json!({ "name": "renamed by lead" }),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let revoked = post(&app, &lead, &revoke_path(&alices.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["status"], "revoked");
    assert_eq!(
        get(&app, &alice, &key_path(&alices.client_id)).await.body["status"],
        "revoked"
    );
    assert_invalid_client(&app, &alices).await;
}

async fn another_organizations_key_is_404_even_for_an_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let (_, auditor) = management_key(&app, ADMIN, &["audit:read"]).await;
    let out = app.cli(&["organizations", "create", "other"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.create_user("boss@other.example", &["--org", "other", "--admin"]);
    let boss_key = app.create_key_with(
        &["api_keys:read", "api_keys:write", "invoices:read"],
        &["--org", "other", "--owner", "boss@other.example"],
    );
    let boss = Who::Token(app.token_for(&boss_key).await);
    let theirs = create_named(&app, &boss, "their export", &["invoices:read"]).await;
    let ours = create_named(&app, &admin, "our export", &["invoices:read"]).await;

    let nowhere = get(&app, &admin, &key_path("kgc_00000000000000000000")).await;
    for (who, foreign) in [(&admin, &theirs), (&admin, &boss_key), (&boss, &ours)] {
        let path = key_path(&foreign.client_id);
        let hidden = get(&app, who, &path).await;
        assert_error(&hidden, 404, "not_found");
        assert_eq!(hidden.body, nowhere.body, "no existence oracle");
        assert_error(
            &patch(&app, who, &path, json!({ "status": "disabled" })).await,
            404,
            "not_found",
        );
        assert_error(
            &post(&app, who, &revoke_path(&foreign.client_id), json!({})).await,
            404,
            "not_found",
        );
        assert_error(
            &post(
                &app,
                who,
                &rotate_path(&foreign.client_id),
                json!({ "grace_period_seconds": 0 }),
            )
            .await,
            404,
            "not_found",
        );
        assert_error(&delete(&app, who, &path).await, 404, "not_found");
        let listed = get(&app, who, "/v1/api-keys").await;
        assert!(
            listed.row_of(&foreign.client_id).is_none(),
            "{}",
            listed.text
        );
    }
    let listed = get(&app, &boss, "/v1/api-keys").await;
    let mut names = listed.names();
    names.sort();
    assert_eq!(names, ["test key", "their export"], "{}", listed.text);
    let foreign_events = audit_trail(&app, &auditor, &format!("target={}", theirs.client_id)).await;
    assert!(foreign_events.is_empty(), "{foreign_events:?}");
    assert_secret_works(&app, &theirs).await;
    assert_secret_works(&app, &boss_key).await;
    assert_secret_works(&app, &ours).await;
}

async fn api_keys_read_alone_cannot_create_change_or_revoke_a_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let key = create_named(&app, &admin, "target", &["invoices:read"]).await;
    let (_, reader) = management_key(&app, ADMIN, &["api_keys:read", "invoices:read"]).await;
    assert_eq!(get(&app, &reader, "/v1/api-keys").await.status, 200);
    assert_eq!(
        get(&app, &reader, &key_path(&key.client_id)).await.status,
        200
    );
    let path = key_path(&key.client_id);
    for refused in [
        post(
            &app,
            &reader,
            "/v1/api-keys",
            json!({ "name": "k", "scopes": ["invoices:read"] }),
        )
        .await,
        patch(&app, &reader, &path, json!({ "status": "disabled" })).await,
        post(&app, &reader, &revoke_path(&key.client_id), json!({})).await,
        post(
            &app,
            &reader,
            &rotate_path(&key.client_id),
            json!({ "grace_period_seconds": 0 }),
        )
        .await,
        delete(&app, &reader, &path).await,
    ] {
        assert_error(&refused, 403, "insufficient_scope");
        let challenge = refused.header("www-authenticate").unwrap_or("");
        assert!(
            challenge.starts_with("Bearer ")
                && challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains("scope=\"api_keys:write\""),
            "{challenge}"
        );
    }
    let (_, writer) = management_key(&app, ADMIN, &["api_keys:write", "invoices:read"]).await;
    let refused = get(&app, &writer, "/v1/api-keys").await;
    assert_error(&refused, 403, "insufficient_scope");
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|c| c.contains("scope=\"api_keys:read\"")),
        "{:?}",
        refused.headers
    );
    assert_eq!(get(&app, &admin, &path).await.body["status"], "enabled");
    assert_secret_works(&app, &key).await;
}

async fn the_management_api_needs_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    let none = Reply::send(app.client.get(app.url("/v1/api-keys"))).await;
    assert_error(&none, 401, "invalid_token");
    assert!(
        none.header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer realm=\"keygate\"")),
        "{:?}",
        none.headers
    );
    let forged = Who::Token("not.a.jwt".into());
    assert_error(
        &get(&app, &forged, "/v1/api-keys").await,
        401,
        "invalid_token",
    );
    let made_up = Reply::send(
        app.client
            .post(app.url("/v1/api-keys"))
            .header("cookie", "keygate_session=made-up")
            .header("x-csrf-token", "made-up")
            .json(&json!({ "name": "k", "scopes": ["invoices:read"] })),
    )
    .await;
    assert_error(&made_up, 401, "invalid_token");
}

async fn removing_a_permission_from_a_user_narrows_their_management_key_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let carol = app.create_user(
        "carol@example.com",
        &[
            "--permissions",
            "api_keys:read,api_keys:write,invoices:read",
        ],
    );
    let carol_key = app.create_key_with(
        &["api_keys:read", "api_keys:write", "invoices:read"],
        &["--owner", &carol.email],
    );
    let carol_token = Who::Token(app.token_for(&carol_key).await);
    let carol_session = Who::Session(app.log_in(&carol.email, &carol.password).await);
    let body = json!({ "name": "carol's export", "scopes": ["invoices:read"] });
    assert_eq!(
        post(&app, &carol_token, "/v1/api-keys", body.clone())
            .await
            .status,
        201
    );
    assert_eq!(
        post(&app, &carol_session, "/v1/api-keys", body.clone())
            .await
            .status,
        201
    );

    let narrowed = patch(
        &app,
        &admin,
        &format!("/v1/users/{}", carol.id),
        json!({ "permissions": ["api_keys:read", "invoices:read"] }),
    )
    .await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.text);

    // Her key's token from before the change may no longer create keys: it is refused.
    let refused = post(&app, &carol_token, "/v1/api-keys", body.clone()).await;
    assert_ne!(refused.status, 201, "the narrowed key still creates keys");
    assert_error(&refused, 401, "invalid_token");
    // Her session's next call is 403, naming the permission.
    let refused = post(&app, &carol_session, "/v1/api-keys", body.clone()).await;
    assert_error(&refused, 403, "insufficient_scope");
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|c| c.contains("scope=\"api_keys:write\"")),
        "{:?}",
        refused.headers
    );
    assert_eq!(get(&app, &carol_session, "/v1/api-keys").await.status, 200);

    // A new token of the same key carries only what she still holds (tokens issued in the
    // second of the change are refused with the older ones, so wait for the next second).
    sleep_ms(1100).await;
    let fresh = assert_secret_works(&app, &carol_key).await;
    assert_eq!(fresh["scope"], "api_keys:read invoices:read");
    let fresh = Who::Token(fresh["access_token"].as_str().unwrap().to_owned());
    assert_eq!(get(&app, &fresh, "/v1/api-keys").await.status, 200);
    let refused = post(&app, &fresh, "/v1/api-keys", body.clone()).await;
    assert_error(&refused, 403, "insufficient_scope");
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|c| c.contains("scope=\"api_keys:write\"")),
        "{:?}",
        refused.headers
    );
    let listed = get(&app, &carol_session, "/v1/api-keys").await;
    assert_eq!(
        listed
            .names()
            .iter()
            .filter(|n| *n == "carol's export")
            .count(),
        2,
        "nothing was created after the narrowing: {}",
        listed.text
    );
}

async fn a_session_needs_the_csrf_header_on_state_changing_calls(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let Who::Session(session) = &admin else {
        unreachable!()
    };
    let key = create_named(&app, &admin, "guarded", &["invoices:read"]).await;
    let path = key_path(&key.client_id);
    let body = json!({ "name": "k", "scopes": ["invoices:read"] });

    let attempts = [
        (Method::POST, "/v1/api-keys".to_owned(), Some(body.clone())),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({ "status": "disabled" })),
        ),
        (Method::POST, revoke_path(&key.client_id), Some(json!({}))),
        (
            Method::POST,
            rotate_path(&key.client_id),
            Some(json!({ "grace_period_seconds": 0 })),
        ),
        (Method::DELETE, path.clone(), None),
    ];
    for (method, target, body) in &attempts {
        for csrf in [None, Some("wrong"), Some("")] {
            let mut request = app.with_cookie(method.clone(), target, session);
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let refused = Reply::send(request).await;
            assert_error(&refused, 403, "forbidden");
        }
    }
    // Nothing happened.
    let listed = Reply::send(app.with_cookie(Method::GET, "/v1/api-keys", session)).await;
    assert_eq!(
        listed.status, 200,
        "GET needs no CSRF token: {}",
        listed.text
    );
    assert_eq!(listed.names(), ["guarded"]);
    let fetched = Reply::send(app.with_cookie(Method::GET, &path, session)).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    assert_eq!(fetched.body["status"], "enabled");
    assert_secret_works(&app, &key).await;

    // With the header, each works.
    assert_eq!(post(&app, &admin, "/v1/api-keys", body).await.status, 201);
    let disabled = patch(&app, &admin, &path, json!({ "status": "disabled" })).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
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
}

/// A key manager who does not hold `users:manage` cannot take over an administrator's key that
/// does: rotating it would hand them a secret with `users:manage`, and so would enabling it
/// again. Lesser actions (rename, disable, revoke) stay theirs.
async fn rotating_or_enabling_a_key_needs_every_scope_it_holds(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    app.create_user(
        "keys@example.com",
        &[
            "--permissions",
            "api_keys:read,api_keys:write,api_keys:manage,invoices:read",
        ],
    );
    let (_, manager) = management_key(
        &app,
        "keys@example.com",
        &[
            "api_keys:read",
            "api_keys:write",
            "api_keys:manage",
            "invoices:read",
        ],
    )
    .await;
    let powerful = app.create_key_with(&["users:manage", "invoices:read"], &["--owner", ADMIN]);
    let path = key_path(&powerful.client_id);

    let rotated = post(&app, &manager, &rotate_path(&powerful.client_id), json!({})).await;
    assert_error(&rotated, 403, "forbidden");
    assert!(
        rotated.body["error_description"]
            .as_str()
            .unwrap()
            .contains("users:manage"),
        "names the missing scope: {}",
        rotated.text
    );
    assert!(rotated.body.get("client_secret").is_none());
    assert_secret_works(&app, &powerful).await;

    let disabled = patch(&app, &manager, &path, json!({ "status": "disabled" })).await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let enabled = patch(&app, &manager, &path, json!({ "status": "enabled" })).await;
    assert_error(&enabled, 403, "forbidden");
    assert!(enabled.text.contains("users:manage"), "{}", enabled.text);
    assert_eq!(get(&app, &manager, &path).await.body["status"], "disabled");

    // A key holding nothing the manager lacks is theirs to rotate.
    let modest = app.create_key_with(&["invoices:read"], &["--owner", ADMIN]);
    let rotated = post(&app, &manager, &rotate_path(&modest.client_id), json!({})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let revoked = post(&app, &manager, &revoke_path(&powerful.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
}

/// Keys made without an owner (an organization without an administrator) are nobody's own: a
/// key without `api_keys:manage` does not see another ownerless key, nor itself, while one
/// with it sees both.
async fn a_key_without_an_owner_is_nobodys_own(backend: Backend) {
    let app = spawn_app(backend).await;
    crate::helpers::create_organization(&app, "acme");
    let ownerless = ["--org", "acme"];
    let writer = app.create_key_with(&["api_keys:read", "api_keys:write"], &ownerless);
    let other = app.create_key_with(&["invoices:read"], &ownerless);
    let writer_token = Who::Token(app.token_for(&writer).await);
    for client_id in [&other.client_id, &writer.client_id] {
        let seen = get(&app, &writer_token, &key_path(client_id)).await;
        assert_error(&seen, 404, "not_found");
        let rotated = post(&app, &writer_token, &rotate_path(client_id), json!({})).await;
        assert_error(&rotated, 404, "not_found");
    }
    assert_eq!(
        get(&app, &writer_token, "/v1/api-keys").await.body["count"],
        0
    );
    assert_secret_works(&app, &other).await;

    let manager = app.create_key_with(&["api_keys:read", "api_keys:manage"], &ownerless);
    let manager_token = Who::Token(app.token_for(&manager).await);
    let listed = get(&app, &manager_token, "/v1/api-keys").await;
    assert!(listed.row_of(&other.client_id).is_some(), "{}", listed.text);
    assert!(
        listed.row_of(&writer.client_id).is_some(),
        "{}",
        listed.text
    );
}

/// A key of the `test` environment manages `test` keys only: it cannot create a live key, see
/// one, or manage users; a live key's caller sees both environments.
async fn a_test_key_acts_only_on_test_keys(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let scopes = [
        "api_keys:read",
        "api_keys:write",
        "api_keys:manage",
        "users:manage",
        "invoices:read",
    ];
    let sandbox = app.create_key_with(&scopes, &["--owner", ADMIN, "--env", "test"]);
    let sandbox = Who::Token(app.token_for(&sandbox).await);
    let live_key = app.create_key_with(&["invoices:read"], &["--owner", ADMIN]);

    let live = post(
        &app,
        &sandbox,
        "/v1/api-keys",
        json!({ "name": "from the sandbox", "scopes": ["invoices:read"], "environment": "live" }),
    )
    .await;
    assert_error(&live, 403, "forbidden");
    assert!(live.text.contains("test"), "{}", live.text);
    let made = post(
        &app,
        &sandbox,
        "/v1/api-keys",
        json!({ "name": "sandbox export", "scopes": ["invoices:read"], "environment": "test" }),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let made_id = made.body["client_id"].as_str().unwrap().to_owned();

    for path in [
        key_path(&live_key.client_id),
        rotate_path(&live_key.client_id),
        revoke_path(&live_key.client_id),
    ] {
        let answer = if path.ends_with("/rotate") || path.ends_with("/revoke") {
            post(&app, &sandbox, &path, json!({})).await
        } else {
            get(&app, &sandbox, &path).await
        };
        assert_error(&answer, 404, "not_found");
    }
    assert_secret_works(&app, &live_key).await;
    let listed = get(&app, &sandbox, "/v1/api-keys").await;
    assert!(
        listed.row_of(&live_key.client_id).is_none(),
        "{}",
        listed.text
    );
    assert!(listed.row_of(&made_id).is_some(), "{}", listed.text);
    for row in listed.rows() {
        assert_eq!(row["environment"], "test", "{row}");
    }
    let only_live = get(&app, &sandbox, "/v1/api-keys?environment=live").await;
    assert_eq!(only_live.body["count"], 0, "{}", only_live.text);
    let users = get(&app, &sandbox, "/v1/users").await;
    assert_error(&users, 403, "forbidden");

    let live_manager = Who::Token(
        app.token_as(ADMIN, &["api_keys:read", "api_keys:manage"])
            .await,
    );
    let everything = get(&app, &live_manager, "/v1/api-keys").await;
    assert!(everything.row_of(&live_key.client_id).is_some());
    assert!(everything.row_of(&made_id).is_some());
}

backend_tests!(
    rotating_or_enabling_a_key_needs_every_scope_it_holds,
    a_key_without_an_owner_is_nobodys_own,
    a_test_key_acts_only_on_test_keys,
    without_api_keys_manage_a_colleagues_key_is_invisible_and_untouchable,
    api_keys_manage_sees_and_acts_on_every_key_of_the_organization,
    another_organizations_key_is_404_even_for_an_admin,
    api_keys_read_alone_cannot_create_change_or_revoke_a_key,
    the_management_api_needs_credentials,
    removing_a_permission_from_a_user_narrows_their_management_key_at_once,
    a_session_needs_the_csrf_header_on_state_changing_calls,
);
