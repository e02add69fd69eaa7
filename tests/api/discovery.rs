//! Discovery and signing keys: the JWKS, RFC 8414 metadata, rotation with overlap.

use jsonwebtoken::decode_header;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, eventually, spawn_app};

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    decode_header(token).unwrap().kid.unwrap()
}

async fn jwks_publishes_the_active_and_next_keys_without_private_members(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cache.contains("max-age") && !cache.contains("no-store"),
        "{cache}"
    );
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        2,
        "the active key and the next one, published ahead of use"
    );
    let ids = kids(&jwks);
    assert_ne!(ids[0], ids[1]);
    for key in keys {
        assert_eq!(key["kty"], "EC");
        assert_eq!(key["crv"], "P-256");
        assert_eq!(key["alg"], "ES256");
        assert_eq!(key["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert!(key.get(private).is_none(), "the JWKS publishes {private}");
        }
    }
    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    assert!(ids.contains(&kid_of(&token)));
}

async fn metadata_names_the_issuer_of_the_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(metadata["issuer"], app.address.as_str());
    assert_eq!(
        metadata["token_endpoint"],
        format!("{}/v1/token", app.address)
    );
    assert_eq!(
        metadata["jwks_uri"],
        format!("{}/.well-known/jwks.json", app.address)
    );
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!(["client_credentials"])
    );
    let methods = metadata["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(
        methods.contains(&"client_secret_basic".into())
            && methods.contains(&"client_secret_post".into())
    );
    assert!(
        metadata["response_types_supported"].is_array(),
        "REQUIRED by RFC 8414 section 2"
    );
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"invoices:read".into())
    );
    let algorithms = metadata["access_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(!algorithms.contains(&"none".into()));

    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    assert_eq!(claims["iss"], metadata["issuer"]);
}

async fn rotation_signs_with_the_published_next_key_and_old_tokens_keep_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let old_token = app.token_for(&key).await;
    let before = kids(&app.get_json("/.well-known/jwks.json").await);
    let old_kid = kid_of(&old_token);
    let next_kid = before.iter().find(|k| **k != old_kid).unwrap().clone();

    let out = app.cli(&["signing-keys", "rotate", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rotation: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rotation["active"],
        next_kid.as_str(),
        "the pre-published key becomes active"
    );
    assert_eq!(rotation["retired"], serde_json::json!([old_kid]));

    // The running server learns of the rotation from the change feed.
    let signs_with_next = eventually(2, || async {
        kid_of(&app.token_for(&key).await) == next_kid
    })
    .await;
    assert!(
        signs_with_next,
        "new tokens are signed by the new active key"
    );
    let after = kids(&app.get_json("/.well-known/jwks.json").await);
    assert!(
        after.contains(&old_kid),
        "the retired key verifies until its last token expires"
    );
    assert!(after.contains(&next_kid));
    assert_eq!(after.len(), 3, "retired, active, and a new next key");
    assert_eq!(app.get_with_token("/v1/me", &old_token).await.status(), 200);

    let listed = app.cli(&["signing-keys", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["next", "active", "retired"]);
}

async fn a_retired_key_stops_verifying_when_its_window_closes(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let old_token = app.token_for(&key).await;
    let old_kid = kid_of(&old_token);
    assert!(app.cli(&["signing-keys", "rotate"]).status.success());
    // Close the verification window as if the token lifetime had passed, and announce it.
    let past = "2020-01-01 00:00:00";
    app.run_sql(&format!(
        "UPDATE signing_keys SET verify_until = '{past}' WHERE kid = '{old_kid}';
             INSERT INTO state_changes (kind, subject, not_before, expires_at, created_at)
             VALUES ('signing_keys', '', 0, 4102444800, '{past}');"
    ));
    let refused = eventually(2, || async {
        app.get_with_token("/v1/me", &old_token).await.status() == 401
    })
    .await;
    assert!(refused, "a token of a key past its window is refused");
    let response = app.get_with_token("/v1/me", &old_token).await;
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(!kids(&app.get_json("/.well-known/jwks.json").await).contains(&old_kid));
}

/// The properties a documented schema requires (following `$ref` and `allOf`).
fn required(doc: &Value, schema: &Value) -> Vec<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return required(doc, &doc["components"]["schemas"][name]);
    }
    let mut fields: Vec<String> = schema["required"]
        .as_array()
        .map(|r| r.iter().map(|f| f.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        fields.extend(required(doc, part));
    }
    fields
}

/// The answer of `method path` for `status` has every property its documented schema requires.
fn assert_matches_document(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let schema = &doc["paths"][path][method]["responses"][status.to_string()]["content"]["application/json"]
        ["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} {status} is not documented"
    );
    let object = if body["data"].is_array() && !body["data"].as_array().unwrap().is_empty() {
        // A page: check the page and its first row.
        let item = &doc["components"]["schemas"][schema["$ref"]
            .as_str()
            .unwrap()
            .trim_start_matches("#/components/schemas/")]["properties"]["data"]["items"];
        for field in required(doc, item) {
            assert!(
                body["data"][0].get(&field).is_some(),
                "{method} {path}: rows lack documented `{field}`"
            );
        }
        body
    } else {
        body
    };
    for field in required(doc, schema) {
        assert!(
            object.get(&field).is_some(),
            "{method} {path} {status}: the answer lacks documented `{field}`: {body}"
        );
    }
}

async fn the_openapi_document_describes_what_the_server_answers(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc = app.get_json("/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], app.address.as_str());
    let served: Vec<(String, String)> = keygate::routes::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let documented = keygate::openapi::operations(&doc);
    for route in &served {
        assert!(documented.contains(route), "{route:?} is not documented");
    }
    // Every documented operation is routed (anything but the JSON 404 of unknown paths).
    for (method, path) in &documented {
        let concrete = path
            .replace("{client_id}", "kgc_00000000000000000000")
            .replace("{user_id}", "usr_x")
            .replace("{name}", "x");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        // Unauthenticated, a routed operation answers 2xx, 400 or 401, never the 404 of an
        // unknown path or a 405.
        assert!(
            !(status == 404 && body["error"] == "not_found"),
            "{method} {path} is not routed"
        );
        assert_ne!(status, 405, "{method} {path} is not routed");
    }

    let key = app.create_key(&["invoices:read"]);
    let response = app
        .post_token_json(
            serde_json::json!({ "client_id": key.client_id, "client_secret": key.client_secret }),
        )
        .await;
    let token_body: Value = response.json().await.unwrap();
    assert_matches_document(&doc, "post", "/v1/token", 200, &token_body);
    let token = token_body["access_token"].as_str().unwrap();
    for path in ["/v1/me", "/v1/me/permissions"] {
        let body: Value = app.get_with_token(path, token).await.json().await.unwrap();
        assert_matches_document(&doc, "get", path, 200, &body);
    }
    let metadata = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_matches_document(
        &doc,
        "get",
        "/.well-known/oauth-authorization-server",
        200,
        &metadata,
    );

    app.create_user("admin@example.com", &["--admin"]);
    let admin = app
        .token_as(
            "admin@example.com",
            &["api_keys:read", "api_keys:write", "invoices:read"],
        )
        .await;
    let created: Value = app
        .with_token(reqwest::Method::POST, "/v1/api-keys", &admin)
        .json(&serde_json::json!({ "name": "doc", "scopes": ["invoices:read"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_matches_document(&doc, "post", "/v1/api-keys", 201, &created);
    let page: Value = app
        .with_token(reqwest::Method::GET, "/v1/api-keys", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_matches_document(&doc, "get", "/v1/api-keys", 200, &page);
    let unknown = app
        .with_token(
            reqwest::Method::GET,
            "/v1/api-keys/kgc_00000000000000000000",
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let error: Value = unknown.json().await.unwrap();
    assert_matches_document(&doc, "get", "/v1/api-keys/{client_id}", 404, &error);
}

backend_tests!(
    jwks_publishes_the_active_and_next_keys_without_private_members,
    metadata_names_the_issuer_of_the_tokens,
    rotation_signs_with_the_published_next_key_and_old_tokens_keep_working,
    a_retired_key_stops_verifying_when_its_window_closes,
    the_openapi_document_describes_what_the_server_answers,
);
