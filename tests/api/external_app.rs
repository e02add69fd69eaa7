//! keygate as a library: another actix-web app validates keygate's tokens with
//! `Authenticated<S>` and follows keygate's revocations.

use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use keygate::domain::Environment;
use keygate::{Authenticated, TokenValidator, ValidationParams};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, eventually, spawn_app};

keygate::require_scopes!(InvoicesRead => "invoices:read");
keygate::require_scopes!(InvoicesWrite => "invoices:write");

async fn list_invoices(caller: Authenticated<InvoicesRead>) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({ "invoices": [], "client_id": caller.client_id(), "env": caller.claims.env }))
}

async fn create_invoice(_caller: Authenticated<InvoicesWrite>) -> HttpResponse {
    HttpResponse::Created().finish()
}

/// Starts a resource server that shares nothing with keygate but its database URL.
async fn spawn_resource_server(keygate: &TestApp) -> String {
    spawn_resource_server_for(
        keygate,
        ValidationParams::new(keygate.address.clone(), "keygate"),
    )
    .await
}

async fn spawn_resource_server_for(keygate: &TestApp, params: ValidationParams) -> String {
    let validator: TokenValidator =
        keygate::connect_validator(keygate.db.url(), params, Duration::from_millis(50))
            .await
            .expect("the validator connects");
    let validator = web::Data::new(validator);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(validator.clone())
            .route("/invoices", web::get().to(list_invoices))
            .route("/invoices", web::post().to(create_invoice))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    address
}

/// BR-07, JWT-20.
async fn a_route_declares_its_scope_and_the_extractor_enforces_it(backend: Backend) {
    let keygate = spawn_app(backend).await;
    let api = spawn_resource_server(&keygate).await;
    let key = keygate.create_key(&["invoices:read"]);
    let token = keygate.token_for(&key).await;
    let client = &keygate.client;

    let ok = client
        .get(format!("{api}/invoices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["client_id"], key.client_id.as_str());

    let forbidden = client
        .post(format!("{api}/invoices"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(
        forbidden.headers()["www-authenticate"],
        "Bearer realm=\"keygate\", error=\"insufficient_scope\", error_description=\"the credentials sent lack the required scope invoices:write\", scope=\"invoices:write\""
    );
    let body: serde_json::Value = forbidden.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");

    let anonymous = client.get(format!("{api}/invoices")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Bearer realm=\"keygate\""
    );
}

/// JWT-20.
async fn a_narrowed_token_is_refused_where_it_lacks_the_scope(backend: Backend) {
    let keygate = spawn_app(backend).await;
    let api = spawn_resource_server(&keygate).await;
    let key = keygate.create_key(&["invoices:read", "invoices:write"]);
    let narrowed = keygate.token_with_scope(&key, Some("invoices:write")).await;
    let response = keygate
        .client
        .get(format!("{api}/invoices"))
        .bearer_auth(&narrowed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let full = keygate.token_for(&key).await;
    let response = keygate
        .client
        .post(format!("{api}/invoices"))
        .bearer_auth(&full)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// RV-06, JWT-18.
async fn a_revocation_reaches_the_resource_server_within_a_second(backend: Backend) {
    let keygate = spawn_app(backend).await;
    let api = spawn_resource_server(&keygate).await;
    let key = keygate.create_key(&["invoices:read"]);
    let token = keygate.token_for(&key).await;
    let url = format!("{api}/invoices");
    assert_eq!(
        keygate
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    assert!(
        keygate
            .cli(&["api-keys", "revoke", &key.client_id])
            .status
            .success()
    );
    let refused = eventually(1, || async {
        keygate
            .client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status()
            == 401
    })
    .await;
    assert!(
        refused,
        "the revoked key's token still works after a second"
    );
    let response = keygate
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("revoked"),
        "{challenge}"
    );
}

/// JWT-19, AT-08.
async fn a_live_api_refuses_test_tokens_unless_it_accepts_them(backend: Backend) {
    let keygate = spawn_app(backend).await;
    let live_only = spawn_resource_server(&keygate).await;
    let sandbox = spawn_resource_server_for(
        &keygate,
        ValidationParams::new(keygate.address.clone(), "keygate")
            .environments(&[Environment::Test]),
    )
    .await;
    let test_token = keygate
        .token_for(&keygate.create_key_with(&["invoices:read"], &["--env", "test"]))
        .await;
    let live_token = keygate
        .token_for(&keygate.create_key(&["invoices:read"]))
        .await;
    let status = |api: &str, token: &str| {
        let request = keygate
            .client
            .get(format!("{api}/invoices"))
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let refused = status(&live_only, &test_token).await;
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("another environment"), "{challenge}");
    assert_eq!(status(&live_only, &live_token).await.status(), 200);
    assert_eq!(status(&sandbox, &test_token).await.status(), 200);
    assert_eq!(status(&sandbox, &live_token).await.status(), 401);
}

/// AV-02, JWT-10.
async fn tokens_of_another_keygate_are_refused(backend: Backend) {
    let keygate = spawn_app(backend).await;
    let other = spawn_app(backend).await;
    let api = spawn_resource_server(&keygate).await;
    let foreign = other.token_for(&other.create_key(&["invoices:read"])).await;
    let response = keygate
        .client
        .get(format!("{api}/invoices"))
        .bearer_auth(&foreign)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// The resource server takes the key itself as the bearer credential, with its scopes, refuses
/// it within a second of a revoke, counts the calls as the key's use, and takes no key when its
/// validator is told not to.
async fn the_resource_server_accepts_api_keys_unless_told_not_to(backend: Backend) {
    let keygate = spawn_app(backend).await;
    keygate.create_user(crate::helpers::ADMIN, &["--admin"]);
    let api = spawn_resource_server(&keygate).await;
    let key = keygate.create_key(&["invoices:read"]);
    let url = format!("{api}/invoices");
    let call = |method: reqwest::Method, credential: String| {
        let request = keygate.client.request(method, &url).bearer_auth(credential);
        async move { request.send().await.unwrap() }
    };

    let ok = call(reqwest::Method::GET, key.client_secret.clone()).await;
    assert_eq!(ok.status(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["client_id"], key.client_id.as_str());
    let forbidden = call(reqwest::Method::POST, key.client_secret.clone()).await;
    assert_eq!(forbidden.status(), 403);
    let wrong = call(
        reqwest::Method::GET,
        crate::helpers::mistyped(&key.client_secret),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    // The calls reach keygate's usage history.
    let reader = keygate.create_key(&["api_keys:read"]);
    let counted = eventually(10, || async {
        let report: serde_json::Value = keygate
            .client
            .get(keygate.url(&format!("/v1/api-keys/{}/usage", key.client_id)))
            .bearer_auth(&reader.client_secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        report["totals"]["direct_calls"] == 2
    })
    .await;
    assert!(
        counted,
        "the resource server's direct calls were not counted"
    );

    assert!(
        keygate
            .cli(&["api-keys", "revoke", &key.client_id])
            .status
            .success()
    );
    let refused = eventually(1, || async {
        call(reqwest::Method::GET, key.client_secret.clone())
            .await
            .status()
            == 401
    })
    .await;
    assert!(refused, "the revoked key still works after a second");

    let strict = spawn_resource_server_for(
        &keygate,
        ValidationParams::new(keygate.address.clone(), "keygate").accept_api_keys(false),
    )
    .await;
    let other = keygate.create_key(&["invoices:read"]);
    let refused = keygate
        .client
        .get(format!("{strict}/invoices"))
        .bearer_auth(&other.client_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

backend_tests!(
    the_resource_server_accepts_api_keys_unless_told_not_to,
    a_route_declares_its_scope_and_the_extractor_enforces_it,
    a_narrowed_token_is_refused_where_it_lacks_the_scope,
    a_revocation_reaches_the_resource_server_within_a_second,
    tokens_of_another_keygate_are_refused,
    a_live_api_refuses_test_tokens_unless_it_accepts_them,
);
