//! `/v1/api-keys`, the management API for keys: create, list, retrieve, update, revoke,
//! delete and rotate; who may do each (bearer tokens acting with at most their creator's
//! permissions, console sessions with a CSRF token); last-used times; the audit trail.

use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, Reply, TestApp, TestKey, Who, assert_error, assert_oauth_error, eventually, spawn_app,
};

const ADMIN: &str = "admin@example.com";
const USER_AGENT: &str = "keygate-management-tests/1.0";

/// The configured API scopes (`scopes.catalog`), in the order keygate lists them.
const CATALOG: [&str; 12] = [
    "clients:read",
    "clients:write",
    "disbursements:read",
    "disbursements:write",
    "invoices:read",
    "invoices:write",
    "payment-links:read",
    "payment-links:write",
    "payouts:read",
    "payouts:write",
    "webhooks:read",
    "webhooks:write",
];

fn request(app: &TestApp, who: &Who, method: Method, path: &str) -> RequestBuilder {
    app.request_as(who, method, path)
        .header("user-agent", USER_AGENT)
}

async fn get(app: &TestApp, who: &Who, path: &str) -> Reply {
    Reply::send(request(app, who, Method::GET, path)).await
}

async fn post(app: &TestApp, who: &Who, path: &str, body: Value) -> Reply {
    Reply::send(request(app, who, Method::POST, path).json(&body)).await
}

async fn patch(app: &TestApp, who: &Who, path: &str, body: Value) -> Reply {
    Reply::send(request(app, who, Method::PATCH, path).json(&body)).await
}

async fn delete(app: &TestApp, who: &Who, path: &str) -> Reply {
    Reply::send(request(app, who, Method::DELETE, path)).await
}

fn key_path(client_id: &str) -> String {
    format!("/v1/api-keys/{client_id}")
}

fn revoke_path(client_id: &str) -> String {
    format!("/v1/api-keys/{client_id}/revoke")
}

fn rotate_path(client_id: &str) -> String {
    format!("/v1/api-keys/{client_id}/rotate")
}

/// Asserts a 400 `invalid_request` whose `field` is `field`.
fn assert_invalid_field(answer: &Reply, field: &str) {
    assert_error(answer, 400, "invalid_request");
    assert_eq!(answer.body["field"], field, "{}", answer.text);
}

fn description(answer: &Reply) -> &str {
    answer.body["error_description"].as_str().unwrap_or("")
}

/// `POST /v1/api-keys`, which must answer 201; the created key with its secret.
async fn create(app: &TestApp, who: &Who, body: Value) -> Value {
    let answer = post(app, who, "/v1/api-keys", body).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.body
}

/// A key with `scopes` made through the API.
async fn create_named(app: &TestApp, who: &Who, name: &str, scopes: &[&str]) -> TestKey {
    credentials(&create(app, who, json!({ "name": name, "scopes": scopes })).await)
}

/// The credentials in a create or rotate answer.
fn credentials(answer: &Value) -> TestKey {
    TestKey {
        client_id: answer["client_id"].as_str().expect("client_id").to_owned(),
        client_secret: answer["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
    }
}

/// An administrator of the default organization, logged in.
async fn admin_session(app: &TestApp) -> Who {
    let admin = app.create_user(ADMIN, &["--admin"]);
    Who::Session(app.log_in(&admin.email, &admin.password).await)
}

/// A user with these permissions, logged in.
async fn session_of(app: &TestApp, email: &str, permissions: &str) -> Who {
    let user = app.create_user(email, &["--permissions", permissions]);
    Who::Session(app.log_in(&user.email, &user.password).await)
}

/// A key owned by `owner` holding `scopes` (its secret known), and a bearer token of it.
async fn management_key(app: &TestApp, owner: &str, scopes: &[&str]) -> (TestKey, Who) {
    let key = app.create_key_with(scopes, &["--owner", owner]);
    let token = app.token_for(&key).await;
    (key, Who::Token(token))
}

async fn token_response(app: &TestApp, key: &TestKey) -> reqwest::Response {
    app.post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .await
}

/// Trades the key's secret for a token, which must work; the token response.
async fn assert_secret_works(app: &TestApp, key: &TestKey) -> Value {
    let response = token_response(app, key).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        status, 200,
        "the secret of {} must work: {body}",
        key.client_id
    );
    body
}

async fn assert_invalid_client(app: &TestApp, key: &TestKey) {
    assert_oauth_error(token_response(app, key).await, 401, "invalid_client").await;
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .unwrap_or_else(|e| panic!("an RFC 3339 time, {value}: {e}"))
        .with_timezone(&Utc)
}

/// The events of `/v1/audit-events?{query}`, oldest first.
async fn audit_events(app: &TestApp, auditor: &Who, query: &str) -> Vec<Value> {
    let answer = get(app, auditor, &format!("/v1/audit-events?{query}")).await;
    let mut events = answer.rows();
    events.reverse();
    events
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().expect("an action"))
        .collect()
}

async fn sleep_ms(ms: u64) {
    actix_web::rt::time::sleep(StdDuration::from_millis(ms)).await;
}

// ---------------------------------------------------------------------------------------------
// Create

async fn creating_a_key_answers_201_with_its_secret_once_and_no_store(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let before = Utc::now();
    let created = post(
        &app,
        &admin,
        "/v1/api-keys",
        json!({
            "name": "Nightly export",
            "scopes": ["invoices:read", "clients:read"],
            "metadata": { "team": "billing" },
        }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let key = credentials(&created.body);
    let secret = key.client_secret.as_str();
    assert_eq!(
        created.header("location"),
        Some(key_path(&key.client_id).as_str())
    );
    assert_eq!(created.header("cache-control"), Some("no-store"));
    let body = &created.body;
    assert!(
        key.client_id.starts_with("kgc_") && key.client_id.len() == 24,
        "{body}"
    );
    assert!(
        secret.starts_with("kgs_live_") && secret.len() == 66,
        "{body}"
    );
    assert_eq!(body["key_prefix"], &secret[..17]);
    assert_eq!(body["name"], "Nightly export");
    assert_eq!(body["environment"], "live", "live is the default");
    assert_eq!(body["scopes"], json!(["clients:read", "invoices:read"]));
    assert_eq!(body["status"], "enabled");
    assert_eq!(body["metadata"], json!({ "team": "billing" }));
    assert_eq!(body["created_by"], ADMIN);
    assert!(body["last_used_at"].is_null(), "{body}");
    assert!(body["expires_at"].is_null(), "{body}");
    let created_at = time(&body["created_at"]);
    assert!(
        created_at >= before - Duration::seconds(1)
            && created_at <= Utc::now() + Duration::seconds(1),
        "{created_at}"
    );

    let token = assert_secret_works(&app, &key).await;
    assert_eq!(token["scope"], "clients:read invoices:read");

    let location = created.header("location").unwrap().to_owned();
    let fetched = get(&app, &admin, &location).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    assert_eq!(fetched.body["client_id"], key.client_id.as_str());
    assert_eq!(fetched.body["key_prefix"], &secret[..17]);
    assert_eq!(fetched.body["metadata"], json!({ "team": "billing" }));
    assert!(
        fetched.body.get("client_secret").is_none(),
        "{}",
        fetched.text
    );
    assert!(
        !fetched.text.contains(secret),
        "retrieve shows the secret: {}",
        fetched.text
    );
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert!(listed.row_of(&key.client_id).is_some(), "{}", listed.text);
    assert!(
        !listed.text.contains(secret) && !listed.text.contains("client_secret"),
        "the list shows the secret: {}",
        listed.text
    );
}

async fn a_test_environment_key_gets_a_kgs_test_secret_and_test_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let created = create(
        &app,
        &admin,
        json!({ "name": "Sandbox", "scopes": ["invoices:read"], "environment": "test" }),
    )
    .await;
    let key = credentials(&created);
    assert_eq!(created["environment"], "test");
    assert!(key.client_secret.starts_with("kgs_test_"), "{created}");
    assert_eq!(created["key_prefix"], &key.client_secret[..17]);
    let token = assert_secret_works(&app, &key).await;
    let me = app
        .get_with_token("/v1/me", token["access_token"].as_str().unwrap())
        .await;
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["environment"], "test", "{me}");
}

async fn expires_on_means_midnight_utc_and_expires_in_days_counts_from_now(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let date = (Utc::now() + Duration::days(30)).date_naive();
    let created = create(
        &app,
        &admin,
        json!({
            "name": "Quarterly",
            "scopes": ["invoices:read"],
            "expires_on": date.format("%Y-%m-%d").to_string(),
        }),
    )
    .await;
    let midnight = date.and_hms_opt(0, 0, 0).unwrap().and_utc();
    assert_eq!(time(&created["expires_at"]), midnight, "{created}");
    let key = credentials(&created);
    let fetched = get(&app, &admin, &key_path(&key.client_id)).await;
    assert_eq!(time(&fetched.body["expires_at"]), midnight);
    assert_secret_works(&app, &key).await;

    let before = Utc::now();
    let created = create(
        &app,
        &admin,
        json!({ "name": "Weekly", "scopes": ["invoices:read"], "expires_in_days": 7 }),
    )
    .await;
    let after = Utc::now();
    let expires_at = time(&created["expires_at"]);
    assert!(
        expires_at >= before + Duration::days(7) - Duration::seconds(1)
            && expires_at <= after + Duration::days(7) + Duration::seconds(1),
        "seven days from now: {expires_at}"
    );
    assert_secret_works(&app, &credentials(&created)).await;
}

async fn read_only_and_full_access_grant_the_creators_api_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let dev = session_of(
        &app,
        "dev@example.com",
        "api_keys:read,api_keys:write,audit:read,invoices:read,invoices:write,clients:read",
    )
    .await;
    let read_only = create(&app, &dev, json!({ "name": "ro", "read_only": true })).await;
    assert_eq!(
        read_only["scopes"],
        json!(["clients:read", "invoices:read"]),
        "the creator's :read API scopes, no management permission"
    );
    let token = assert_secret_works(&app, &credentials(&read_only)).await;
    assert_eq!(token["scope"], "clients:read invoices:read");
    let full = create(&app, &dev, json!({ "name": "full", "full_access": true })).await;
    assert_eq!(
        full["scopes"],
        json!(["clients:read", "invoices:read", "invoices:write"]),
        "every API scope the creator holds, no management permission"
    );

    let admin = admin_session(&app).await;
    let full = create(&app, &admin, json!({ "name": "all", "full_access": true })).await;
    assert_eq!(full["scopes"], json!(CATALOG));
    let read_only = create(&app, &admin, json!({ "name": "all ro", "read_only": true })).await;
    let reads: Vec<&str> = CATALOG
        .iter()
        .copied()
        .filter(|s| s.ends_with(":read"))
        .collect();
    assert_eq!(read_only["scopes"], json!(reads));
}

async fn a_management_key_grants_at_most_its_own_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let (_, manager) = management_key(
        &app,
        ADMIN,
        &["api_keys:write", "invoices:read", "invoices:write"],
    )
    .await;
    let full = create(
        &app,
        &manager,
        json!({ "name": "full", "full_access": true }),
    )
    .await;
    assert_eq!(full["scopes"], json!(["invoices:read", "invoices:write"]));
    assert_eq!(
        full["created_by"], ADMIN,
        "the key's creator owns what it makes"
    );
    let read_only = create(&app, &manager, json!({ "name": "ro", "read_only": true })).await;
    assert_eq!(read_only["scopes"], json!(["invoices:read"]));
    // The administrator holds clients:read; the key acting for them does not.
    let refused = post(
        &app,
        &manager,
        "/v1/api-keys",
        json!({ "name": "more", "scopes": ["clients:read"] }),
    )
    .await;
    assert_error(&refused, 403, "forbidden");
    assert!(
        description(&refused).contains("clients:read"),
        "{}",
        refused.text
    );
}

async fn metadata_within_the_limits_is_kept_as_given(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let mut metadata = serde_json::Map::new();
    for i in 0..20 {
        metadata.insert(format!("{i:02}{}", "k".repeat(38)), json!("v".repeat(500)));
    }
    let created = create(
        &app,
        &admin,
        json!({ "name": "full metadata", "scopes": ["invoices:read"], "metadata": metadata }),
    )
    .await;
    assert_eq!(created["metadata"], Value::Object(metadata.clone()));
    // The limits count characters, not bytes.
    let wide = json!({ "é".repeat(40): "ü".repeat(500) });
    let created = create(
        &app,
        &admin,
        json!({ "name": "wide metadata", "scopes": ["invoices:read"], "metadata": wide }),
    )
    .await;
    assert_eq!(created["metadata"], wide);
    let fetched = get(
        &app,
        &admin,
        &key_path(created["client_id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(fetched.body["metadata"], wide);
}

// ---------------------------------------------------------------------------------------------
// Refusals

async fn a_scope_the_creator_does_not_hold_is_refused_with_403_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let ops = session_of(
        &app,
        "ops@example.com",
        "api_keys:read,api_keys:write,invoices:read",
    )
    .await;
    let (_, ops_token) = management_key(
        &app,
        "ops@example.com",
        &["api_keys:read", "api_keys:write", "invoices:read"],
    )
    .await;
    for who in [&ops, &ops_token] {
        for (scopes, missing) in [
            (json!(["invoices:read", "payouts:write"]), "payouts:write"),
            (json!(["users:manage"]), "users:manage"),
            (json!(["api_keys:manage"]), "api_keys:manage"),
        ] {
            let refused = post(
                &app,
                who,
                "/v1/api-keys",
                json!({ "name": "too much", "scopes": scopes }),
            )
            .await;
            assert_error(&refused, 403, "forbidden");
            assert!(
                description(&refused).contains(missing),
                "names {missing}: {}",
                refused.text
            );
        }
    }
    let listed = get(&app, &ops, "/v1/api-keys").await;
    assert!(
        listed.names().iter().all(|n| n != "too much"),
        "nothing was created: {}",
        listed.text
    );
}

async fn an_unknown_or_malformed_scope_is_400_naming_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let refused = post(
        &app,
        &admin,
        "/v1/api-keys",
        json!({ "name": "k", "scopes": ["invoices:read", "unicorns:ride"] }),
    )
    .await;
    assert_invalid_field(&refused, "scopes");
    assert!(
        description(&refused).contains("unicorns:ride"),
        "{}",
        refused.text
    );
    for scopes in [json!([]), json!(["has space"]), json!([""])] {
        let refused = post(
            &app,
            &admin,
            "/v1/api-keys",
            json!({ "name": "k", "scopes": scopes }),
        )
        .await;
        assert_invalid_field(&refused, "scopes");
    }
}

async fn unknown_fields_and_wrong_types_are_400_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let scopes = json!(["invoices:read"]);
    for (body, field) in [
        (
            json!({ "name": "k", "scopes": scopes, "colour": "blue" }),
            "colour",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "client_secret": "kgs_live_x" }),
            "client_secret",
        ),
        (json!({ "name": 5, "scopes": scopes }), "name"),
        (json!({ "name": "k", "scopes": "invoices:read" }), "scopes"),
        (json!({ "name": "k", "read_only": "yes" }), "read_only"),
        (json!({ "name": "k", "full_access": 1 }), "full_access"),
        (
            json!({ "name": "k", "scopes": scopes, "environment": 1 }),
            "environment",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_in_days": -3 }),
            "expires_in_days",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_in_days": "7" }),
            "expires_in_days",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_on": 20270101 }),
            "expires_on",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "metadata": ["a"] }),
            "metadata",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "metadata": { "a": 1 } }),
            "metadata",
        ),
    ] {
        let refused = post(&app, &admin, "/v1/api-keys", body.clone()).await;
        assert_invalid_field(&refused, field);
        assert!(
            !refused.text.contains("kgs_live_x"),
            "errors do not echo values: {}",
            refused.text
        );
    }
    let refused = post(
        &app,
        &admin,
        "/v1/api-keys",
        json!({ "name": "k", "scopes": [1] }),
    )
    .await;
    assert_error(&refused, 400, "invalid_request");
    assert!(
        refused.body["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("scopes")),
        "{}",
        refused.text
    );
    let refused = post(&app, &admin, "/v1/api-keys", json!({ "scopes": scopes })).await;
    assert_error(&refused, 400, "invalid_request");
    assert!(
        description(&refused).contains("name"),
        "a missing name is named: {}",
        refused.text
    );
}

async fn contradictory_or_impossible_options_are_400_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let scopes = json!(["invoices:read"]);
    let today = Utc::now().date_naive();
    let in_a_month = (today + Duration::days(30)).format("%Y-%m-%d").to_string();
    let far = (today + Duration::days(3700))
        .format("%Y-%m-%d")
        .to_string();
    for (body, field) in [
        (
            json!({ "name": "k", "scopes": scopes, "expires_on": in_a_month, "expires_in_days": 7 }),
            "expires_on",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_on": "2020-01-01" }),
            "expires_on",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_on": today.format("%Y-%m-%d").to_string() }),
            "expires_on",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_on": "2027-13-01" }),
            "expires_on",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_on": "tomorrow" }),
            "expires_on",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_on": far }),
            "expires_on",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_in_days": 0 }),
            "expires_in_days",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "expires_in_days": 3651 }),
            "expires_in_days",
        ),
        (json!({ "name": "", "scopes": scopes }), "name"),
        (json!({ "name": "   ", "scopes": scopes }), "name"),
        (json!({ "name": "a\nb", "scopes": scopes }), "name"),
        (json!({ "name": "x".repeat(101), "scopes": scopes }), "name"),
        (
            json!({ "name": "k", "scopes": scopes, "environment": "prod" }),
            "environment",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "environment": "LIVE" }),
            "environment",
        ),
        (json!({ "name": "k" }), "scopes"),
        (json!({ "name": "k", "read_only": false }), "scopes"),
        (
            json!({ "name": "k", "scopes": scopes, "read_only": true }),
            "scopes",
        ),
        (
            json!({ "name": "k", "read_only": true, "full_access": true }),
            "scopes",
        ),
        (
            json!({ "name": "k", "scopes": scopes, "full_access": true }),
            "scopes",
        ),
    ] {
        let refused = post(&app, &admin, "/v1/api-keys", body.clone()).await;
        assert_error(&refused, 400, "invalid_request");
        let named = refused.body["field"].as_str().unwrap_or("");
        let both = body.get("expires_in_days").is_some() && body.get("expires_on").is_some();
        assert!(
            named == field || (both && named == "expires_in_days"),
            "{body} must name {field}: {}",
            refused.text
        );
    }
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert_eq!(
        listed.body["count"], 0,
        "nothing was created: {}",
        listed.text
    );
}

async fn metadata_over_each_limit_is_400_naming_metadata(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let created = create_named(&app, &admin, "k", &["invoices:read"]).await;
    let too_many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("k{i}"), json!("v"))).collect();
    for metadata in [
        Value::Object(too_many),
        json!({ "x".repeat(41): "v" }),
        json!({ "é".repeat(41): "v" }),
        json!({ "k": "v".repeat(501) }),
        json!({ "k": "ü".repeat(501) }),
        json!({ "k": 1 }),
        json!({ "k": null }),
        json!({ "k": { "nested": "v" } }),
        json!({ "": "v" }),
        json!("a string"),
    ] {
        let refused = post(
            &app,
            &admin,
            "/v1/api-keys",
            json!({ "name": "k", "scopes": ["invoices:read"], "metadata": metadata }),
        )
        .await;
        assert_invalid_field(&refused, "metadata");
        let refused = patch(
            &app,
            &admin,
            &key_path(&created.client_id),
            json!({ "metadata": metadata }),
        )
        .await;
        assert_invalid_field(&refused, "metadata");
    }
}

async fn bodies_that_are_not_json_get_clear_400s_and_oversized_ones_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let good = r#"{"name": "k", "scopes": ["invoices:read"]}"#;
    for (content_type, body) in [
        (Some("text/plain"), good.to_owned()),
        (
            Some("application/x-www-form-urlencoded"),
            "name=k&scopes=invoices:read".to_owned(),
        ),
        (None, good.to_owned()),
        (Some("application/json"), r#"{"name": "#.to_owned()),
        (Some("application/json"), "not json".to_owned()),
        (Some("application/json"), String::new()),
        (Some("application/json"), format!("{good} {{}}")),
        (Some("application/json"), "[]".to_owned()),
        (Some("application/json"), "null".to_owned()),
    ] {
        let mut request = request(&app, &admin, Method::POST, "/v1/api-keys").body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let refused = Reply::send(request).await;
        assert_error(&refused, 400, "invalid_request");
    }
    let accepted = Reply::send(
        request(&app, &admin, Method::POST, "/v1/api-keys")
            .header("content-type", "application/json; charset=utf-8")
            .body(good),
    )
    .await;
    assert_eq!(accepted.status, 201, "{}", accepted.text);

    let huge = json!({ "name": "k", "scopes": ["invoices:read"], "metadata": { "k": "x".repeat(70_000) } });
    let refused = post(&app, &admin, "/v1/api-keys", huge.clone()).await;
    assert_error(&refused, 413, "invalid_request");
    // Chunked, so no Content-Length announces the size.
    let bytes = huge.to_string().into_bytes();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(1024).map(|c| Ok(c.to_vec())).collect();
    let refused = Reply::send(
        request(&app, &admin, Method::POST, "/v1/api-keys")
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            ))),
    )
    .await;
    assert_error(&refused, 413, "invalid_request");
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert_eq!(listed.body["count"], 1, "only the good body made a key");
}

// ---------------------------------------------------------------------------------------------
// List

async fn the_list_answers_data_count_limit_offset_with_every_column(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let alpha = create(
        &app,
        &admin,
        json!({ "name": "alpha", "scopes": ["invoices:read", "clients:read"] }),
    )
    .await;
    let bravo = create(
        &app,
        &admin,
        json!({ "name": "bravo", "scopes": ["payouts:read"], "environment": "test", "expires_in_days": 30 }),
    )
    .await;
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["count"], 2);
    assert_eq!(listed.body["limit"], 100, "the default limit");
    assert_eq!(listed.body["offset"], 0);
    assert_eq!(listed.rows().len(), 2);
    for created in [&alpha, &bravo] {
        let secret = created["client_secret"].as_str().unwrap();
        let row = listed
            .row_of(created["client_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("listed: {}", listed.text));
        for column in [
            "name",
            "client_id",
            "key_prefix",
            "environment",
            "scopes",
            "status",
            "created_at",
            "last_used_at",
            "expires_at",
            "created_by",
        ] {
            assert!(row.get(column).is_some(), "{column} in {row}");
        }
        assert!(row.get("client_secret").is_none(), "{row}");
        let prefix = row["key_prefix"].as_str().expect("a prefix");
        assert_eq!(prefix.len(), 17, "{row}");
        assert!(secret.starts_with(prefix), "{prefix} prefixes the secret");
        assert!(
            prefix.starts_with(&format!(
                "kgs_{}_",
                created["environment"].as_str().unwrap()
            )),
            "{row}"
        );
        for column in ["name", "environment", "scopes", "status", "expires_at"] {
            assert_eq!(row[column], created[column], "{column}");
        }
        assert_eq!(time(&row["created_at"]), time(&created["created_at"]));
        assert!(row["last_used_at"].is_null());
        assert_eq!(row["created_by"], ADMIN);
    }
    assert!(listed.row_of(bravo["client_id"].as_str().unwrap()).unwrap()["expires_at"].is_string());
}

async fn the_list_filters_by_environment_and_status_repeatably(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let mut ids = Vec::new();
    for (name, environment) in [
        ("a", "live"),
        ("b", "live"),
        ("c", "test"),
        ("d", "test"),
        ("e", "live"),
    ] {
        let created = create(
            &app,
            &admin,
            json!({ "name": name, "scopes": ["invoices:read"], "environment": environment }),
        )
        .await;
        ids.push(created["client_id"].as_str().unwrap().to_owned());
    }
    let disabled = patch(
        &app,
        &admin,
        &key_path(&ids[1]),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let revoked = post(&app, &admin, &revoke_path(&ids[3]), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let deleted = delete(&app, &admin, &key_path(&ids[4])).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);

    for (query, expected) in [
        ("", vec!["a", "b", "c", "d"]),
        ("environment=test", vec!["c", "d"]),
        ("environment=live", vec!["a", "b"]),
        (
            "environment=live&environment=test",
            vec!["a", "b", "c", "d"],
        ),
        ("status=enabled", vec!["a", "c"]),
        ("status=enabled&status=disabled", vec!["a", "b", "c"]),
        ("status=revoked", vec!["d"]),
        ("status=disabled&status=revoked", vec!["b", "d"]),
        ("environment=live&status=disabled", vec!["b"]),
        (
            "environment=test&status=enabled&status=revoked",
            vec!["c", "d"],
        ),
        ("environment=live&status=revoked", vec![]),
    ] {
        let listed = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        let mut names = listed.names();
        names.sort();
        assert_eq!(names, expected, "?{query}: {}", listed.text);
        assert_eq!(listed.body["count"], expected.len(), "?{query}");
    }
}

async fn the_list_orders_by_each_column_both_ways(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    // Created in this order; each differs in every column.
    let charlie = create_named(&app, &admin, "charlie", &["invoices:read"]).await;
    let alpha = credentials(
        &create(
            &app,
            &admin,
            json!({ "name": "alpha", "scopes": ["invoices:read"], "environment": "test" }),
        )
        .await,
    );
    let bravo = create_named(&app, &admin, "bravo", &["invoices:read"]).await;
    // Used: alpha, then bravo; charlie never.
    assert_secret_works(&app, &alpha).await;
    sleep_ms(50).await;
    assert_secret_works(&app, &bravo).await;
    let flushed = eventually(5, || async {
        let listed = get(&app, &admin, "/v1/api-keys").await;
        [&alpha, &bravo].iter().all(|k| {
            listed
                .row_of(&k.client_id)
                .is_some_and(|row| row["last_used_at"].is_string())
        })
    })
    .await;
    assert!(flushed, "last_used_at was never written");
    let disabled = patch(
        &app,
        &admin,
        &key_path(&bravo.client_id),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let revoked = post(&app, &admin, &revoke_path(&charlie.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);

    for (query, expected) in [
        ("", ["charlie", "alpha", "bravo"]),
        ("order=desc", ["bravo", "alpha", "charlie"]),
        ("order_by=created_at", ["charlie", "alpha", "bravo"]),
        (
            "order_by=created_at&order=asc",
            ["charlie", "alpha", "bravo"],
        ),
        (
            "order_by=created_at&order=desc",
            ["bravo", "alpha", "charlie"],
        ),
        ("order_by=name", ["alpha", "bravo", "charlie"]),
        ("order_by=name&order=desc", ["charlie", "bravo", "alpha"]),
        // live before test; ties in creation order (reversed when descending).
        ("order_by=environment", ["charlie", "bravo", "alpha"]),
        (
            "order_by=environment&order=desc",
            ["alpha", "bravo", "charlie"],
        ),
        // disabled < enabled < revoked.
        ("order_by=status", ["bravo", "alpha", "charlie"]),
        ("order_by=status&order=desc", ["charlie", "alpha", "bravo"]),
        // Never-used keys last either way.
        ("order_by=last_used_at", ["alpha", "bravo", "charlie"]),
        (
            "order_by=last_used_at&order=desc",
            ["bravo", "alpha", "charlie"],
        ),
    ] {
        let listed = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        assert_eq!(listed.names(), expected, "?{query}: {}", listed.text);
    }
}

async fn the_list_pages_with_limit_and_offset(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for name in ["k1", "k2", "k3", "k4", "k5"] {
        create_named(&app, &admin, name, &["invoices:read"]).await;
    }
    for (query, expected) in [
        ("limit=2", vec!["k1", "k2"]),
        ("limit=2&offset=2", vec!["k3", "k4"]),
        ("limit=2&offset=4", vec!["k5"]),
        ("offset=5", vec![]),
        ("offset=1&limit=1&order_by=name&order=desc", vec!["k4"]),
        ("limit=100", vec!["k1", "k2", "k3", "k4", "k5"]),
        ("limit=1", vec!["k1"]),
    ] {
        let listed = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        assert_eq!(listed.names(), expected, "?{query}: {}", listed.text);
        assert_eq!(listed.body["count"], 5, "count is every match: ?{query}");
    }
    let listed = get(&app, &admin, "/v1/api-keys?limit=2&offset=4").await;
    assert_eq!(listed.body["limit"], 2);
    assert_eq!(listed.body["offset"], 4);
}

async fn bad_list_parameters_are_400_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("order=up", "order"),
        ("order=DESC", "order"),
        ("order_by=secret", "order_by"),
        ("order_by=client_secret", "order_by"),
        ("status=active", "status"),
        ("status=enabled&status=deleted", "status"),
        ("environment=prod", "environment"),
        ("colour=blue", "colour"),
        ("status=enabled&page=2", "page"),
    ] {
        let refused = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        assert_invalid_field(&refused, field);
    }
}

// ---------------------------------------------------------------------------------------------
// Retrieve, update, revoke, delete

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
    // Tokens issued in the second of the disable are refused with the older ones, so a new
    // token may need a moment.
    let works = eventually(3, || async {
        let fresh = app.token_for(&key).await;
        app.get_with_token("/v1/me", &fresh).await.status() == 200
    })
    .await;
    assert!(works, "a re-enabled key's new tokens work");
    assert_eq!(
        app.get_with_token("/v1/me", &token).await.status(),
        401,
        "a token from before the disable stays refused"
    );
}

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
    let events = audit_events(&app, &auditor, &format!("target={}", key.client_id)).await;
    let lifecycle: Vec<&str> = actions(&events)
        .into_iter()
        .filter(|a| a.starts_with("api_key."))
        .collect();
    assert_eq!(lifecycle.first(), Some(&"api_key.created"), "{events:?}");
    assert_eq!(lifecycle.last(), Some(&"api_key.deleted"), "{events:?}");
    assert!(lifecycle.contains(&"api_key.revoked"), "{events:?}");
    let denied = eventually(5, || async {
        let events = audit_events(&app, &auditor, &format!("target={}", key.client_id)).await;
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

async fn an_audit_search_for_a_nul_byte_target_is_not_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let (_, auditor) = management_key(&app, ADMIN, &["audit:read"]).await;
    for query in ["target=%00", "actor=%00", "action=%00"] {
        let answer = get(&app, &auditor, &format!("/v1/audit-events?{query}")).await;
        assert_ne!(answer.status, 500, "?{query}: {}", answer.text);
        match answer.status {
            200 => assert_eq!(answer.body["count"], 0, "?{query}"),
            _ => assert_error(&answer, 400, "invalid_request"),
        }
    }
}

async fn metadata_with_a_nul_character_is_kept_or_refused_never_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for metadata in [json!({ "k": "a\u{0}b" }), json!({ "a\u{0}b": "v" })] {
        let answer = post(
            &app,
            &admin,
            "/v1/api-keys",
            json!({ "name": "k", "scopes": ["invoices:read"], "metadata": metadata }),
        )
        .await;
        match answer.status {
            201 => assert_eq!(answer.body["metadata"], metadata, "kept as given"),
            _ => assert_invalid_field(&answer, "metadata"),
        }
    }
    let key = create_named(&app, &admin, "k", &["invoices:read"]).await;
    let answer = patch(
        &app,
        &admin,
        &key_path(&key.client_id),
        json!({ "metadata": { "k": "a\u{0}b" } }),
    )
    .await;
    match answer.status {
        200 => assert_eq!(answer.body["metadata"], json!({ "k": "a\u{0}b" })),
        _ => assert_invalid_field(&answer, "metadata"),
    }
}

// ---------------------------------------------------------------------------------------------
// Rotation

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

// ---------------------------------------------------------------------------------------------
// Who may act on which key

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
    let foreign_events =
        audit_events(&app, &auditor, &format!("target={}", theirs.client_id)).await;
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

// ---------------------------------------------------------------------------------------------
// Sessions

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

// ---------------------------------------------------------------------------------------------
// Last used

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

// ---------------------------------------------------------------------------------------------
// Audit trail

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

    let events = audit_events(&app, &auditor, &format!("target={}", key.client_id)).await;
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
    let events = audit_events(&app, &auditor, &format!("target={}", by_token.client_id)).await;
    let actor = format!("api_key:{}", manager_key.client_id);
    for action in [
        "api_key.created",
        "api_key.disabled",
        "api_key.rotated",
        "api_key.revoked",
    ] {
        assert_event(&events, action, &actor, &by_token.client_id);
    }
    let filtered = audit_events(
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
    audit_events(
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

    let events = audit_events(
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
        audit_events(&app, &manager, "action=token.denied")
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

backend_tests!(
    creating_a_key_answers_201_with_its_secret_once_and_no_store,
    a_test_environment_key_gets_a_kgs_test_secret_and_test_tokens,
    expires_on_means_midnight_utc_and_expires_in_days_counts_from_now,
    read_only_and_full_access_grant_the_creators_api_scopes,
    a_management_key_grants_at_most_its_own_scopes,
    metadata_within_the_limits_is_kept_as_given,
    a_scope_the_creator_does_not_hold_is_refused_with_403_naming_it,
    an_unknown_or_malformed_scope_is_400_naming_it,
    unknown_fields_and_wrong_types_are_400_naming_the_field,
    contradictory_or_impossible_options_are_400_naming_the_field,
    metadata_over_each_limit_is_400_naming_metadata,
    bodies_that_are_not_json_get_clear_400s_and_oversized_ones_413,
    the_list_answers_data_count_limit_offset_with_every_column,
    the_list_filters_by_environment_and_status_repeatably,
    the_list_orders_by_each_column_both_ways,
    the_list_pages_with_limit_and_offset,
    bad_list_parameters_are_400_naming_the_parameter,
    a_key_can_be_retrieved_renamed_and_given_new_metadata,
    a_disabled_key_gets_invalid_client_and_its_tokens_are_refused_until_reenabled,
    revocation_is_immediate_and_final,
    a_revoked_key_still_shows_its_key_prefix,
    a_deleted_key_vanishes_but_its_audit_trail_stays,
    an_unknown_client_id_is_404_on_every_route,
    a_client_id_with_a_nul_byte_is_404_not_a_server_error,
    an_audit_search_for_a_nul_byte_target_is_not_a_server_error,
    metadata_with_a_nul_character_is_kept_or_refused_never_a_server_error,
    rotation_without_grace_ends_the_old_secret_at_once,
    rotation_with_grace_keeps_the_old_secret_until_the_grace_ends,
    rotation_refuses_a_grace_out_of_range_and_a_revoked_key,
    without_api_keys_manage_a_colleagues_key_is_invisible_and_untouchable,
    api_keys_manage_sees_and_acts_on_every_key_of_the_organization,
    another_organizations_key_is_404_even_for_an_admin,
    api_keys_read_alone_cannot_create_change_or_revoke_a_key,
    the_management_api_needs_credentials,
    removing_a_permission_from_a_user_narrows_their_management_key_at_once,
    a_session_needs_the_csrf_header_on_state_changing_calls,
    last_used_at_appears_within_seconds_of_a_token,
    every_lifecycle_action_appends_an_audit_event,
    a_failed_token_request_for_an_existing_key_is_audited_as_token_denied,
    a_revoked_or_deleted_keys_secret_is_audited_with_that_reason,
    no_audit_event_ever_contains_a_secret,
);
