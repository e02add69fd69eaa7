//! `/v1/organizations`: tenants, listed, created, retrieved, disabled and deleted by the
//! deployment's administrators (`organizations:manage`) and by nobody else.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, TestApp, TestSession, assert_cli_ok, create_organization, eventually,
    login, me_status, spawn_app, token_reply,
};

async fn a_deployment_admin_lists_creates_and_retrieves_organizations(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    let list = Reply::send(app.with_session(Method::GET, "/v1/organizations", &session))
        .await
        .expect(200);
    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&list), ["default"]);
    assert_eq!(list["count"], 1);

    let post = |body: Value| {
        let request = app
            .with_session(Method::POST, "/v1/organizations", &session)
            .json(&body);
        async move { Reply::send(request).await }
    };
    let created = post(json!({ "name": "acme" })).await.expect(201);
    assert_eq!(created["name"], "acme");
    assert!(created["created_at"].is_string());
    post(json!({ "name": "acme" }))
        .await
        .expect_error(409, "conflict");
    post(json!({ "name": "Acme Corp" }))
        .await
        .expect_field_error("name");
    post(json!({ "name": "ab" }))
        .await
        .expect_field_error("name");
    post(json!({ "name": "globex", "plan": "gold" }))
        .await
        .expect_field_error("plan");

    let acme = Reply::send(app.with_session(Method::GET, "/v1/organizations/acme", &session))
        .await
        .expect(200);
    assert_eq!(acme["name"], "acme");
    Reply::send(app.with_session(Method::GET, "/v1/organizations/nope", &session))
        .await
        .expect_error(404, "not_found");

    // With a token of the same admin holding organizations:manage.
    let token = app.token_as(ADMIN, &["organizations:manage"]).await;
    Reply::send(
        app.with_token(Method::POST, "/v1/organizations", &token)
            .json(&json!({ "name": "globex" })),
    )
    .await
    .expect(201);
    let list = Reply::send(app.with_token(Method::GET, "/v1/organizations", &token))
        .await
        .expect(200);
    assert_eq!(names(&list), ["default", "acme", "globex"]);

    // A new organization takes users at once.
    assert_cli_ok(&app.cli(&[
        "users",
        "create",
        "--email",
        "boss@acme.example",
        "--org",
        "acme",
    ]));
}

async fn an_admin_of_another_organization_cannot_manage_organizations(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let boss = app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);
    let session = app.log_in(&boss.email, &boss.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/organizations", &session))
        .await
        .expect_error(403, "insufficient_scope");
    Reply::send(
        app.with_session(Method::POST, "/v1/organizations", &session)
            .json(&json!({ "name": "globex" })),
    )
    .await
    .expect_error(403, "insufficient_scope");
    Reply::send(app.with_session(Method::GET, "/v1/organizations/acme", &session))
        .await
        .expect_error(403, "insufficient_scope");
    Reply::send(
        app.with_session(Method::PATCH, "/v1/organizations/acme", &session)
            .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect_error(403, "insufficient_scope");
    Reply::send(app.with_session(Method::DELETE, "/v1/organizations/acme", &session))
        .await
        .expect_error(403, "insufficient_scope");

    // Nor a user of the deployment's organization without the permission.
    let ops = app.create_user("ops@example.com", &["--permissions", "users:manage"]);
    let session = app.log_in(&ops.email, &ops.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/organizations", &session))
        .await
        .expect_error(403, "insufficient_scope");

    let token = app.token_as(ADMIN, &["organizations:manage"]).await;
    let list = Reply::send(app.with_token(Method::GET, "/v1/organizations", &token))
        .await
        .expect(200);
    assert_eq!(list["count"], 2, "globex was not created: {list}");
}

async fn patch(app: &TestApp, session: &TestSession, name: &str, body: Value) -> Reply {
    Reply::send(
        app.with_session(Method::PATCH, &format!("/v1/organizations/{name}"), session)
            .json(&body),
    )
    .await
}

/// Disabling a tenant refuses its keys (tokens issued before at once, new ones until it is
/// enabled again) and its users (sessions ended, log-ins refused).
async fn a_disabled_organization_is_shut_out_until_enabled(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    create_organization(&app, "acme");
    let boss = app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);
    let boss_session = app.log_in(&boss.email, &boss.password).await;
    let key = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let token = app.token_for(&key).await;
    assert_eq!(me_status(&app, &token).await, 200);

    let disabled = patch(
        &app,
        &session,
        "acme",
        json!({ "status": "disabled", "display_name": " Acme Corp. " }),
    )
    .await
    .expect(200);
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["display_name"], "Acme Corp.");
    assert!(
        eventually(1, || async {
            app.get_with_token("/v1/me/permissions", &token)
                .await
                .status()
                == 401
        })
        .await,
        "the token issued before is refused within a second"
    );
    token_reply(&app, &key)
        .await
        .expect_error(401, "invalid_client");
    Reply::send(app.with_session(Method::GET, "/v1/api-keys", &boss_session))
        .await
        .expect_error(401, "invalid_token");
    assert_eq!(login(&app, &boss.email, &boss.password).await.status, 401);

    let enabled = patch(&app, &session, "acme", json!({ "status": "enabled" }))
        .await
        .expect(200);
    assert_eq!(enabled["status"], "enabled");
    assert_eq!(enabled["display_name"], "Acme Corp.", "kept");
    // Tokens are cut up to the second after the disable, as for a key disabled and enabled.
    assert!(
        eventually(3, || async {
            let fresh = app.token_for(&key).await;
            me_status(&app, &fresh).await == 200
        })
        .await,
        "new tokens work again"
    );
    assert_eq!(
        me_status(&app, &token).await,
        401,
        "the old token stays refused"
    );
    assert_eq!(login(&app, &boss.email, &boss.password).await.status, 200);
    let cleared = patch(&app, &session, "acme", json!({ "display_name": null }))
        .await
        .expect(200);
    assert!(cleared["display_name"].is_null());

    patch(&app, &session, "default", json!({ "status": "disabled" }))
        .await
        .expect_error(403, "forbidden");
    for (body, field) in [
        (json!({}), "body"),
        (json!({ "display_name": 5 }), "display_name"),
        (json!({ "display_name": "  " }), "display_name"),
        (json!({ "status": "gone" }), "status"),
        (json!({ "status": "enabled", "plan": "gold" }), "plan"),
    ] {
        patch(&app, &session, "acme", body)
            .await
            .expect_field_error(field);
    }
    patch(&app, &session, "nope", json!({ "status": "enabled" }))
        .await
        .expect_error(404, "not_found");
}

/// Deleting a tenant revokes its keys, ends its sessions and hides it; its name stays taken
/// and the trail records it.
async fn a_deleted_organization_has_its_keys_revoked_and_is_hidden(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    create_organization(&app, "beta");
    let boss = app.create_user("boss@beta.example", &["--org", "beta", "--admin"]);
    let key = app.create_key_with(&["invoices:read"], &["--org", "beta"]);
    let token = app.token_for(&key).await;

    let deleted = Reply::send(app.with_session(Method::DELETE, "/v1/organizations/beta", &session))
        .await
        .expect(200);
    assert_eq!(deleted, json!({ "deleted": true }));
    assert!(
        eventually(1, || async {
            app.get_with_token("/v1/me/permissions", &token)
                .await
                .status()
                == 401
        })
        .await
    );
    token_reply(&app, &key)
        .await
        .expect_error(401, "invalid_client");
    assert_eq!(login(&app, &boss.email, &boss.password).await.status, 401);
    Reply::send(app.with_session(Method::GET, "/v1/organizations/beta", &session))
        .await
        .expect_error(404, "not_found");
    let list = Reply::send(app.with_session(Method::GET, "/v1/organizations", &session))
        .await
        .expect(200);
    assert_eq!(list["count"], 1, "{list}");
    Reply::send(
        app.with_session(Method::POST, "/v1/organizations", &session)
            .json(&json!({ "name": "beta" })),
    )
    .await
    .expect_error(409, "conflict");
    Reply::send(app.with_session(Method::DELETE, "/v1/organizations/default", &session))
        .await
        .expect_error(403, "forbidden");

    let trail = Reply::send(app.with_session(
        Method::GET,
        "/v1/audit-events?action=organization.deleted",
        &session,
    ))
    .await
    .expect(200);
    assert_eq!(trail["data"][0]["target"], "beta", "{trail}");
    // The key's row stays, revoked: the CLI still shows it.
    let shown = app.cli(&["api-keys", "show", &key.client_id, "--json"]);
    assert_cli_ok(&shown);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("\"revoked\""));
}

/// `keygate organizations update|delete`.
async fn the_cli_disables_and_deletes_organizations(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "gamma");
    let key = app.create_key_with(&["invoices:read"], &["--org", "gamma"]);
    let out = app.cli(&["organizations", "update", "gamma", "--status", "disabled"]);
    assert_cli_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("gamma is disabled"));
    token_reply(&app, &key)
        .await
        .expect_error(401, "invalid_client");
    assert_cli_ok(&app.cli(&["organizations", "update", "gamma", "--status", "enabled"]));
    token_reply(&app, &key).await.expect(200);
    let refused = app.cli(&["organizations", "delete", "default"]);
    assert!(!refused.status.success());
    assert_cli_ok(&app.cli(&["organizations", "delete", "gamma"]));
    // The server, which verified the secret a moment ago, hears of the revocation from the
    // CLI (another process) through the change feed: within one feed interval.
    assert!(
        eventually(1, || async { token_reply(&app, &key).await.status == 401 }).await,
        "the deleted organization's key is refused within a second"
    );
    let listed = app.cli(&["organizations", "list"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("gamma"));
}

/// serde reads a struct from a JSON array of its fields in order, so `[null, null]` once
/// cleared an organization's display name with 200: every body must be a JSON object.
async fn a_json_array_body_is_refused_not_read_as_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    create_organization(&app, "acme");
    patch(&app, &session, "acme", json!({ "display_name": "Acme" }))
        .await
        .expect(200);

    for body in [
        json!([null, null]),
        json!(["Acme Corp.", "disabled"]),
        json!([]),
    ] {
        patch(&app, &session, "acme", body)
            .await
            .expect_field_error("body");
    }
    let created = Reply::send(
        app.with_session(Method::POST, "/v1/organizations", &session)
            .json(&json!(["globex"])),
    )
    .await;
    created.expect_field_error("body");

    let acme = Reply::send(app.with_session(Method::GET, "/v1/organizations/acme", &session))
        .await
        .expect(200);
    assert_eq!(acme["display_name"], "Acme");
    assert_eq!(acme["status"], "enabled");
    Reply::send(app.with_session(Method::GET, "/v1/organizations/globex", &session))
        .await
        .expect_error(404, "not_found");
}

backend_tests!(
    a_disabled_organization_is_shut_out_until_enabled,
    a_deleted_organization_has_its_keys_revoked_and_is_hidden,
    the_cli_disables_and_deletes_organizations,
    a_deployment_admin_lists_creates_and_retrieves_organizations,
    an_admin_of_another_organization_cannot_manage_organizations,
    a_json_array_body_is_refused_not_read_as_fields,
);
