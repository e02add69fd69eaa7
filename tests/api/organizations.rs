//! `/v1/organizations`: tenants, listed, created and retrieved by the deployment's
//! administrators (`organizations:manage`) and by nobody else.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, assert_cli_ok, create_organization, spawn_app};

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

backend_tests!(
    a_deployment_admin_lists_creates_and_retrieves_organizations,
    an_admin_of_another_organization_cannot_manage_organizations,
);
