//! `POST /v1/api-keys`: what a created key looks like (its secret shown once), the scopes a
//! creator may grant, metadata, and the refusals of everything malformed, each naming the field.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::{
    admin_session, assert_invalid_client, assert_invalid_field, assert_secret_works, create,
    create_named, credentials, get, key_path, management_key, patch, post, request, time,
};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, TestApp, Who, assert_error, spawn_app};

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

fn description(answer: &Reply) -> &str {
    answer.body["error_description"].as_str().unwrap_or("")
}

/// A user with these permissions, logged in.
async fn session_of(app: &TestApp, email: &str, permissions: &str) -> Who {
    let user = app.create_user(email, &["--permissions", permissions]);
    Who::Session(app.log_in(&user.email, &user.password).await)
}

/// SR-07, TOK-SO-01.
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

/// The names other key services use: `kind` for the environment, and a key created
/// `disabled`, which exists but gets no token until enabled.
async fn kind_is_a_synonym_of_environment_and_a_key_can_be_created_disabled(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let created = create(
        &app,
        &admin,
        json!({ "name": "Staging sync", "scopes": ["invoices:read"], "kind": "test", "status": "disabled" }),
    )
    .await;
    assert_eq!(created["environment"], "test", "{created}");
    assert_eq!(created["status"], "disabled", "{created}");
    let key = credentials(&created);
    assert!(key.client_secret.starts_with("kgs_test_"));
    assert_invalid_client(&app, &key).await;
    let enabled = patch(
        &app,
        &admin,
        &key_path(&key.client_id),
        json!({ "status": "enabled" }),
    )
    .await;
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_secret_works(&app, &key).await;

    for (body, field) in [
        (
            json!({ "name": "x", "scopes": ["invoices:read"], "kind": "prod" }),
            "kind",
        ),
        (
            json!({ "name": "x", "scopes": ["invoices:read"], "kind": "test", "environment": "test" }),
            "kind",
        ),
        (
            json!({ "name": "x", "scopes": ["invoices:read"], "status": "revoked" }),
            "status",
        ),
        (
            json!({ "name": "x", "scopes": ["invoices:read"], "status": 1 }),
            "status",
        ),
    ] {
        let refused = post(&app, &admin, "/v1/api-keys", body.clone()).await;
        assert_invalid_field(&refused, field);
    }
}

backend_tests!(
    kind_is_a_synonym_of_environment_and_a_key_can_be_created_disabled,
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
    metadata_with_a_nul_character_is_kept_or_refused_never_a_server_error,
);
