//! Discovery and signing keys: the JWKS, RFC 8414 metadata, rotation with overlap.

use std::collections::BTreeSet;

use jsonwebtoken::decode_header;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

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

/// JW-01..JW-05, JW-08.
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

/// MD-01..MD-09.
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
        metadata["revocation_stream_endpoint"],
        format!("{}/v1/revocation-stream", app.address)
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

/// JW-07, JWT-17.
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

/// JWT-17.
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
    // Within one feed interval; the margin is for a machine busy with every other test.
    let refused = eventually(5, || async {
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
    // What is served but left out of the document on purpose (the files of /docs) is routed
    // all the same, and stays out of the document.
    for (method, path) in keygate::routes::UNDOCUMENTED_ROUTES {
        let route = (method.to_string(), path.to_string());
        assert!(!documented.contains(&route), "{route:?} is documented");
        let concrete = path.replace("{file}", "docs.js");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method} {concrete}");
    }
}

/// The OpenAPI document's answers, checked with a JSON Schema validator (OpenAPI 3.1 schemas
/// are JSON Schema 2020-12). For the check every object schema is closed
/// (`unevaluatedProperties: false` where the document leaves it open), so an answer may carry
/// no member the document does not describe; the members of an `allOf` stay open, as each
/// describes only part of the object.
struct Contract {
    doc: Value,
    /// The document's schemas, closed, as `$defs` of every schema the validator builds.
    closed: serde_json::Map<String, Value>,
    /// Every (METHOD, path, status) an answer was checked for.
    checked: BTreeSet<(String, String, u16)>,
}

impl Contract {
    fn new(doc: Value) -> Contract {
        let closed = doc["components"]["schemas"]
            .as_object()
            .expect("the document has schemas")
            .iter()
            .map(|(name, schema)| (name.clone(), closed(schema, false)))
            .collect();
        Contract {
            doc,
            closed,
            checked: BTreeSet::new(),
        }
    }

    /// `schema`, with the document's schemas beside it for its references to resolve.
    fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = closed(schema, false);
        root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        root["$defs"] = Value::Object(self.closed.clone());
        root["components"] = json!({ "schemas": self.doc["components"]["schemas"] });
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("unusable schema {schema}: {e}"))
    }

    /// Sends `request` (for the operation `method path`), asserts the answer's status, and
    /// checks its body against what the document says of that status: the schema of its JSON
    /// content, or no body at all. Returns the body (Null when empty).
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        request: RequestBuilder,
        status: u16,
    ) -> Value {
        let response = request.send().await.expect("request sent");
        let got = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        let operation = method.as_str().to_lowercase();
        let documented = &self.doc["paths"][path][&operation]["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {path} answered {status}, which the document does not list"
        );
        self.checked
            .insert((method.to_string(), path.to_owned(), status));
        let Some(schema) = documented["content"]["application/json"].get("schema") else {
            assert!(
                documented.get("content").is_none() && text.is_empty(),
                "{method} {path} {status}: the document describes no body, the answer has {text:?}"
            );
            return Value::Null;
        };
        assert!(
            content_type.is_some_and(|t| t.starts_with("application/json")),
            "{method} {path} {status} is documented as JSON"
        );
        let body: Value = serde_json::from_str(&text).expect("a JSON body");
        let errors: Vec<String> = self
            .validator(schema)
            .iter_errors(&body)
            .map(|e| format!("{e} at `{}`", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the document:\n{}\nanswer: {body}",
            errors.join("\n")
        );
        body
    }

    /// Opens the event stream `GET path` and checks that it is documented as one and starts
    /// with a `sync` event.
    async fn expect_events(&mut self, path: &str, request: RequestBuilder) {
        use futures_util::StreamExt;
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), 200, "GET {path}");
        let documented = &self.doc["paths"][path]["get"]["responses"]["200"]["content"];
        assert!(
            documented.get("text/event-stream").is_some(),
            "GET {path} is not documented as an event stream: {documented}"
        );
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        let mut received = String::new();
        let mut chunks = response.bytes_stream();
        while !received.contains("event: sync\n") {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), chunks.next())
                .await
                .expect("a sync within 10 s")
                .expect("the stream stays open")
                .unwrap();
            received.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        self.checked.insert(("GET".into(), path.to_owned(), 200));
    }

    /// Sends `GET path` and checks that it answers `200` with a `content_type` body, as
    /// documented.
    async fn expect_text(&mut self, path: &str, request: RequestBuilder, content_type: &str) {
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), 200, "GET {path}");
        let documented = &self.doc["paths"][path]["get"]["responses"]["200"]["content"];
        assert!(
            documented
                .as_object()
                .is_some_and(|types| types.keys().any(|t| t.starts_with(content_type))),
            "GET {path} is not documented as {content_type}: {documented}"
        );
        let answered = response.headers()["content-type"].to_str().unwrap();
        assert!(answered.starts_with(content_type), "{answered}");
        assert!(!response.text().await.unwrap().is_empty());
        self.checked.insert(("GET".into(), path.to_owned(), 200));
    }

    /// Every operation of the document had a success answer checked.
    fn assert_every_operation_succeeded(&self) {
        for (method, path) in keygate::openapi::operations(&self.doc) {
            assert!(
                self.checked
                    .iter()
                    .any(|(m, p, s)| *m == method && *p == path && (200..300).contains(s)),
                "no success answer of {method} {path} was checked"
            );
        }
    }
}

/// `schema` with its object schemas closed (see `Contract`) and its references pointing to the
/// closed copies, except in an `allOf`, whose members stay as the document has them.
fn closed(schema: &Value, all_of_member: bool) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    let each = |members: &Value, all_of_member: bool| {
        let members = members.as_array().unwrap().iter();
        Value::Array(members.map(|m| closed(m, all_of_member)).collect())
    };
    let mut out = serde_json::Map::new();
    for (keyword, value) in object {
        let value = match keyword.as_str() {
            "$ref" if !all_of_member => {
                json!(
                    value
                        .as_str()
                        .unwrap()
                        .replace("#/components/schemas/", "#/$defs/")
                )
            }
            "properties" => Value::Object(
                value
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(name, property)| (name.clone(), closed(property, false)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "propertyNames" => closed(value, false),
            "oneOf" | "anyOf" => each(value, false),
            "allOf" => each(value, true),
            _ => value.clone(),
        };
        out.insert(keyword.clone(), value);
    }
    let describes_members = object.contains_key("properties") || object.contains_key("allOf");
    let open = !object.contains_key("additionalProperties")
        && !object.contains_key("unevaluatedProperties");
    if describes_members && open && !all_of_member {
        out.insert("unevaluatedProperties".into(), json!(false));
    }
    Value::Object(out)
}

#[test]
fn the_contract_closes_objects_but_not_the_parts_of_an_all_of() {
    let contract = Contract::new(json!({ "components": { "schemas": {
        "Key": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": { "type": "string" },
                "labels": { "type": "object", "additionalProperties": { "type": "string" } },
                "seen": { "type": ["string", "null"], "format": "date-time" },
            },
        },
        "NewKey": { "allOf": [
            { "$ref": "#/components/schemas/Key" },
            { "type": "object", "properties": { "secret": { "type": "string" } } },
        ] },
    } } }));
    let key = contract.validator(&json!({ "$ref": "#/components/schemas/Key" }));
    assert!(key.is_valid(&json!({ "id": "a", "labels": { "any": "x" }, "seen": null })));
    assert!(!key.is_valid(&json!({ "id": "a", "extra": 1 })));
    assert!(!key.is_valid(&json!({ "id": 1 })));
    assert!(!key.is_valid(&json!({ "id": "a", "seen": "yesterday" })));
    let new_key = contract.validator(&json!({ "$ref": "#/components/schemas/NewKey" }));
    assert!(new_key.is_valid(&json!({ "id": "a", "secret": "s" })));
    assert!(!new_key.is_valid(&json!({ "id": "a", "secret": "s", "extra": 1 })));
    assert!(!new_key.is_valid(&json!({ "secret": "s" })));
}

/// A form body (the values here need no escaping).
fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Exercises every operation, and some of each one's errors, checking every answer against
/// the document.
async fn every_answer_matches_its_documented_schema(backend: Backend) {
    const ADMIN: &str = "admin@example.com";
    let app = spawn_app(backend).await;
    let mut api = Contract::new(app.get_json("/openapi.json").await);
    let get = |path: &str| app.client.get(app.url(path));
    let post_form = |path: &str, body: String| {
        app.client
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };

    // Discovery and probes.
    for path in [
        "/openapi.json",
        "/.well-known/jwks.json",
        "/.well-known/oauth-authorization-server",
        "/healthz",
        "/readyz",
    ] {
        api.expect(Method::GET, path, get(path), 200).await;
    }
    api.expect_text("/metrics", get("/metrics"), "text/plain")
        .await;
    api.expect_text("/docs", get("/docs"), "text/html").await;

    // The token endpoint, by both bodies, and its RFC 6749 errors.
    let admin = app.create_user(ADMIN, &["--admin"]);
    let reader = app.create_key(&["invoices:read"]);
    let by_json = app.client.post(app.url("/v1/token")).json(&json!({
        "api_key": reader.client_id, "api_secret": reader.client_secret,
    }));
    let issued = api.expect(Method::POST, "/v1/token", by_json, 200).await;
    let reader_token = issued["access_token"].as_str().unwrap().to_owned();
    let by_form = post_form("/v1/token", form(&[("grant_type", "client_credentials")]))
        .basic_auth(&reader.client_id, Some(&reader.client_secret));
    api.expect(Method::POST, "/v1/token", by_form, 200).await;
    let grant = ("grant_type", "client_credentials");
    let refusals = [
        (
            form(&[("grant_type", "password")]),
            Some(&reader.client_secret),
            400,
            "unsupported_grant_type",
        ),
        (
            form(&[grant, ("scope", "payouts:write")]),
            Some(&reader.client_secret),
            400,
            "invalid_scope",
        ),
        (
            form(&[grant]),
            Some(&"kgs_live_wrong".to_owned()),
            401,
            "invalid_client",
        ),
        ("x".repeat(5000), None, 413, "invalid_request"),
    ];
    for (body, secret, status, code) in refusals {
        let mut request = post_form("/v1/token", body);
        if let Some(secret) = secret {
            request = request.basic_auth(&reader.client_id, Some(secret));
        }
        let error = api.expect(Method::POST, "/v1/token", request, status).await;
        assert_eq!(error["error"], code);
    }

    // The key behind a token.
    for path in ["/v1/me", "/v1/me/permissions"] {
        let with_token = app.with_token(Method::GET, path, &reader_token);
        api.expect(Method::GET, path, with_token, 200).await;
        api.expect(Method::GET, path, get(path), 401).await;
        let malformed = get(path).header("authorization", "Bearer");
        api.expect(Method::GET, path, malformed, 400).await;
    }

    // API keys, with a bearer token of the administrator's.
    let permissions = [
        "api_keys:read",
        "api_keys:write",
        "api_keys:manage",
        "users:manage",
        "audit:read",
        "organizations:manage",
        "tokens:introspect",
        "webhooks:manage",
        "revocations:read",
        "invoices:read",
    ];
    let token = app.token_as(ADMIN, &permissions).await;
    let with = |method: Method, path: &str| app.with_token(method, path, &token);
    let create = with(Method::POST, "/v1/api-keys").json(&json!({
        "name": "Billing sync",
        "scopes": ["invoices:read"],
        "environment": "test",
        "expires_in_days": 30,
        "metadata": { "team": "billing" },
    }));
    let created = api.expect(Method::POST, "/v1/api-keys", create, 201).await;
    let key = format!("/v1/api-keys/{}", created["client_id"].as_str().unwrap());
    let one_key = "/v1/api-keys/{client_id}";
    for query in [
        "",
        "?limit=1&order_by=name&order=desc",
        "?status=enabled&environment=test",
    ] {
        let list = with(Method::GET, &format!("/v1/api-keys{query}"));
        api.expect(Method::GET, "/v1/api-keys", list, 200).await;
    }
    api.expect(Method::GET, one_key, with(Method::GET, &key), 200)
        .await;
    for change in [
        json!({ "name": "Billing", "metadata": {} }),
        json!({ "status": "disabled" }),
        json!({ "status": "enabled" }),
    ] {
        let update = with(Method::PATCH, &key).json(&change);
        api.expect(Method::PATCH, one_key, update, 200).await;
    }
    let rotate = format!("{key}/rotate");
    let rotate_key = "/v1/api-keys/{client_id}/rotate";
    let grace = with(Method::POST, &rotate).json(&json!({ "grace_period_seconds": 60 }));
    let rotated = api.expect(Method::POST, rotate_key, grace, 200).await;
    assert!(rotated["previous_secret_expires_at"].is_string());
    let usage_path = "/v1/api-keys/{client_id}/usage";
    for query in ["", "?granularity=day&from=2026-11-01"] {
        let usage = with(Method::GET, &format!("{key}/usage{query}"));
        api.expect(Method::GET, usage_path, usage, 200).await;
    }
    let bad_window = with(Method::GET, &format!("{key}/usage?granularity=week"));
    api.expect(Method::GET, usage_path, bad_window, 400).await;
    api.expect(
        Method::GET,
        "/v1/usage",
        with(Method::GET, "/v1/usage"),
        200,
    )
    .await;
    // A key with refresh tokens, and both grants' answers.
    let refreshing = with(Method::POST, "/v1/api-keys").json(&json!({
        "name": "Refreshing",
        "scopes": ["invoices:read"],
        "refresh_tokens": true,
    }));
    let refreshing = api
        .expect(Method::POST, "/v1/api-keys", refreshing, 201)
        .await;
    let grant = app.client.post(app.url("/v1/token")).json(&json!({
        "client_id": refreshing["client_id"],
        "client_secret": refreshing["client_secret"],
    }));
    let pair = api.expect(Method::POST, "/v1/token", grant, 200).await;
    let trade = || {
        app.client
            .post(app.url("/v1/token"))
            .json(&json!({ "refresh_token": pair["refresh_token"] }))
    };
    api.expect(Method::POST, "/v1/token", trade(), 200).await;
    let spent = api.expect(Method::POST, "/v1/token", trade(), 400).await;
    assert_eq!(spent["error"], "invalid_grant");
    let revoke = with(Method::POST, &format!("{key}/revoke"));
    api.expect(Method::POST, "/v1/api-keys/{client_id}/revoke", revoke, 200)
        .await;
    let revoked = with(Method::PATCH, &key).json(&json!({ "name": "again" }));
    api.expect(Method::PATCH, one_key, revoked, 409).await;
    let revoked = with(Method::POST, &rotate).json(&json!({}));
    api.expect(Method::POST, rotate_key, revoked, 409).await;
    let deleted = api
        .expect(Method::DELETE, one_key, with(Method::DELETE, &key), 200)
        .await;
    assert_eq!(deleted, json!({ "deleted": true }));
    api.expect(Method::GET, one_key, with(Method::GET, &key), 404)
        .await;
    let unknown_field =
        with(Method::POST, "/v1/api-keys").json(&json!({ "name": "x", "colour": 1 }));
    let error = api
        .expect(Method::POST, "/v1/api-keys", unknown_field, 400)
        .await;
    assert_eq!(error["field"], "colour");
    let bad_query = with(Method::GET, "/v1/api-keys?order=up");
    api.expect(Method::GET, "/v1/api-keys", bad_query, 400)
        .await;
    let without_permission = app.with_token(Method::GET, "/v1/users", &reader_token);
    let error = api
        .expect(Method::GET, "/v1/users", without_permission, 403)
        .await;
    assert_eq!(error["error"], "insufficient_scope");

    // Webhooks: an endpoint (keygate's own health route stands in for a receiver), a test
    // event, its delivery and a retry, the events.
    let endpoints = "/v1/webhook-endpoints";
    let create = with(Method::POST, endpoints).json(&json!({
        "url": app.url("/healthz"),
        "events": ["api_key.created", "api_key.revoked"],
        "description": "contract",
    }));
    let created = api.expect(Method::POST, endpoints, create, 201).await;
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let endpoint = format!("{endpoints}/{}", created["id"].as_str().unwrap());
    let one_endpoint = "/v1/webhook-endpoints/{id}";
    api.expect(Method::GET, endpoints, with(Method::GET, endpoints), 200)
        .await;
    api.expect(Method::GET, one_endpoint, with(Method::GET, &endpoint), 200)
        .await;
    let change = with(Method::PATCH, &endpoint).json(&json!({ "events": ["*"] }));
    api.expect(Method::PATCH, one_endpoint, change, 200).await;
    let nothing = with(Method::PATCH, &endpoint).json(&json!({}));
    api.expect(Method::PATCH, one_endpoint, nothing, 400).await;
    let roll = with(Method::POST, &format!("{endpoint}/roll-secret"))
        .json(&json!({ "grace_period_seconds": 60 }));
    api.expect(
        Method::POST,
        "/v1/webhook-endpoints/{id}/roll-secret",
        roll,
        200,
    )
    .await;
    let test = with(Method::POST, &format!("{endpoint}/test"));
    api.expect(Method::POST, "/v1/webhook-endpoints/{id}/test", test, 202)
        .await;
    let deliveries_path = "/v1/webhook-endpoints/{id}/deliveries";
    let deliveries = with(Method::GET, &format!("{endpoint}/deliveries?limit=10"));
    let listed = api
        .expect(Method::GET, deliveries_path, deliveries, 200)
        .await;
    let bad_status = with(Method::GET, &format!("{endpoint}/deliveries?status=lost"));
    api.expect(Method::GET, deliveries_path, bad_status, 400)
        .await;
    let delivery = listed["data"][0]["id"].as_str().unwrap().to_owned();
    let one_delivery = with(Method::GET, &format!("/v1/webhook-deliveries/{delivery}"));
    api.expect(
        Method::GET,
        "/v1/webhook-deliveries/{id}",
        one_delivery,
        200,
    )
    .await;
    let unknown = with(Method::GET, "/v1/webhook-deliveries/whd_unknown");
    api.expect(Method::GET, "/v1/webhook-deliveries/{id}", unknown, 404)
        .await;
    let retry = with(
        Method::POST,
        &format!("/v1/webhook-deliveries/{delivery}/retry"),
    );
    api.expect(
        Method::POST,
        "/v1/webhook-deliveries/{id}/retry",
        retry,
        202,
    )
    .await;
    api.expect(
        Method::GET,
        "/v1/events",
        with(Method::GET, "/v1/events"),
        200,
    )
    .await;
    api.expect(
        Method::DELETE,
        one_endpoint,
        with(Method::DELETE, &endpoint),
        200,
    )
    .await;
    api.expect(Method::GET, one_endpoint, with(Method::GET, &endpoint), 404)
        .await;

    // Users.
    api.expect(
        Method::GET,
        "/v1/users",
        with(Method::GET, "/v1/users"),
        200,
    )
    .await;
    let generated = with(Method::POST, "/v1/users").json(&json!({
        "email": "grace@example.com", "permissions": ["api_keys:read"],
    }));
    let user = api.expect(Method::POST, "/v1/users", generated, 201).await;
    assert!(user["password"].is_string());
    let given = with(Method::POST, "/v1/users").json(&json!({
        "email": "alan@example.com", "password": "correct horse battery",
    }));
    let given = api.expect(Method::POST, "/v1/users", given, 201).await;
    assert!(given.get("password").is_none());
    let taken = with(Method::POST, "/v1/users").json(&json!({ "email": "grace@example.com" }));
    api.expect(Method::POST, "/v1/users", taken, 409).await;
    let one_user = "/v1/users/{user_id}";
    let user = format!("/v1/users/{}", user["id"].as_str().unwrap());
    api.expect(Method::GET, one_user, with(Method::GET, &user), 200)
        .await;
    let change = with(Method::PATCH, &user).json(&json!({ "status": "disabled", "admin": false }));
    api.expect(Method::PATCH, one_user, change, 200).await;
    let nobody = with(Method::GET, "/v1/users/usr_0000000000000000");
    api.expect(Method::GET, one_user, nobody, 404).await;

    // Invitations.
    let invitations = "/v1/users/invitations";
    let invite = with(Method::POST, invitations)
        .json(&json!({ "email": "ines@example.com", "permissions": ["api_keys:read"] }));
    let invited = api.expect(Method::POST, invitations, invite, 201).await;
    let invitee = invited["user"]["id"].as_str().unwrap().to_owned();
    api.expect(
        Method::GET,
        invitations,
        with(Method::GET, invitations),
        200,
    )
    .await;
    let resend_path = "/v1/users/invitations/{user_id}/resend";
    let resend = with(Method::POST, &format!("{invitations}/{invitee}/resend"));
    let link = api.expect(Method::POST, resend_path, resend, 200).await;
    let invitation_token = link["invitation_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let accept = "/v1/invitations/accept";
    let accepting = app
        .client
        .post(app.url(accept))
        .json(&json!({ "token": invitation_token, "password": "a long enough password" }));
    api.expect(Method::POST, accept, accepting, 200).await;
    let again = app
        .client
        .post(app.url(accept))
        .json(&json!({ "token": invitation_token, "password": "a long enough password" }));
    api.expect(Method::POST, accept, again, 404).await;
    let other = with(Method::POST, invitations).json(&json!({ "email": "otto@example.com" }));
    let other = api.expect(Method::POST, invitations, other, 201).await;
    let one_invitation = "/v1/users/invitations/{user_id}";
    let revoke = with(
        Method::DELETE,
        &format!("{invitations}/{}", other["user"]["id"].as_str().unwrap()),
    );
    api.expect(Method::DELETE, one_invitation, revoke, 200)
        .await;

    // Organizations.
    let organizations = "/v1/organizations";
    let list = with(Method::GET, organizations);
    api.expect(Method::GET, organizations, list, 200).await;
    for status in [201, 409] {
        let create = with(Method::POST, organizations).json(&json!({ "name": "acme" }));
        api.expect(Method::POST, organizations, create, status)
            .await;
    }
    let one = "/v1/organizations/{name}";
    let acme = with(Method::GET, "/v1/organizations/acme");
    api.expect(Method::GET, one, acme, 200).await;
    let nope = with(Method::GET, "/v1/organizations/nope");
    api.expect(Method::GET, one, nope, 404).await;
    for (body, status) in [
        (
            json!({ "display_name": "Acme Corp.", "status": "disabled" }),
            200,
        ),
        (json!({ "status": "enabled" }), 200),
        (json!({ "status": "gone" }), 400),
    ] {
        let change = with(Method::PATCH, "/v1/organizations/acme").json(&body);
        api.expect(Method::PATCH, one, change, status).await;
    }
    let globex = with(Method::POST, organizations).json(&json!({ "name": "globex" }));
    api.expect(Method::POST, organizations, globex, 201).await;
    let delete = with(Method::DELETE, "/v1/organizations/globex");
    api.expect(Method::DELETE, one, delete, 200).await;
    let default = with(Method::DELETE, "/v1/organizations/default");
    api.expect(Method::DELETE, one, default, 403).await;

    // The audit trail, which by now holds events of many kinds.
    let audit = "/v1/audit-events";
    for query in [
        "",
        "?action=api_key.revoked&limit=5",
        "?since=2020-01-01T00:00:00Z&offset=1",
    ] {
        let search = with(Method::GET, &format!("{audit}{query}"));
        let events = api.expect(Method::GET, audit, search, 200).await;
        assert!(!events["data"].as_array().unwrap().is_empty(), "{query}");
    }
    let bad_time = with(Method::GET, "/v1/audit-events?since=yesterday");
    api.expect(Method::GET, audit, bad_time, 400).await;

    // Introspection and revocation (RFC 7662, RFC 7009).
    let introspect = |bearer: Option<&str>, token: &str| {
        let request = post_form("/v1/introspect", form(&[("token", token)]));
        match bearer {
            Some(bearer) => request.bearer_auth(bearer),
            None => request,
        }
    };
    for inspected in [reader_token.as_str(), "not-a-token"] {
        let request = introspect(Some(&token), inspected);
        api.expect(Method::POST, "/v1/introspect", request, 200)
            .await;
    }
    let anonymous = introspect(None, &reader_token);
    api.expect(Method::POST, "/v1/introspect", anonymous, 401)
        .await;
    let not_allowed = introspect(Some(&reader_token), &token);
    api.expect(Method::POST, "/v1/introspect", not_allowed, 403)
        .await;
    let own = form(&[("token", &reader_token)]);
    let revoke = post_form("/v1/revoke", own.clone()).bearer_auth(&reader_token);
    api.expect(Method::POST, "/v1/revoke", revoke, 200).await;
    api.expect(
        Method::POST,
        "/v1/revoke",
        post_form("/v1/revoke", own),
        401,
    )
    .await;

    // A console session.
    let session_path = "/v1/session";
    let log_in = |password: &str| {
        let credentials = json!({ "email": ADMIN, "password": password });
        app.client.post(app.url(session_path)).json(&credentials)
    };
    api.expect(Method::POST, session_path, log_in("not the password"), 401)
        .await;
    api.expect(Method::POST, session_path, log_in(&admin.password), 200)
        .await;
    let session = app.log_in(ADMIN, &admin.password).await;
    let current = app.with_session(Method::GET, session_path, &session);
    api.expect(Method::GET, session_path, current, 200).await;
    let cookie_only = |method: Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .header("cookie", &session.cookie)
    };
    let list = cookie_only(Method::GET, "/v1/api-keys");
    api.expect(Method::GET, "/v1/api-keys", list, 200).await;
    let no_csrf = cookie_only(Method::POST, "/v1/api-keys").json(&json!({ "name": "x" }));
    api.expect(Method::POST, "/v1/api-keys", no_csrf, 403).await;
    let no_csrf = cookie_only(Method::DELETE, session_path);
    api.expect(Method::DELETE, session_path, no_csrf, 403).await;
    let log_out = app.with_session(Method::DELETE, session_path, &session);
    api.expect(Method::DELETE, session_path, log_out, 204).await;
    let gone = app.with_session(Method::GET, session_path, &session);
    api.expect(Method::GET, session_path, gone, 401).await;

    // The revocation stream: events, not JSON.
    let stream = "/v1/revocation-stream";
    api.expect_events(stream, with(Method::GET, stream)).await;
    let unknown_position = with(Method::GET, stream).header("last-event-id", "x");
    api.expect(Method::GET, stream, unknown_position, 400).await;

    api.assert_every_operation_succeeded();
}

backend_tests!(
    jwks_publishes_the_active_and_next_keys_without_private_members,
    metadata_names_the_issuer_of_the_tokens,
    rotation_signs_with_the_published_next_key_and_old_tokens_keep_working,
    a_retired_key_stops_verifying_when_its_window_closes,
    the_openapi_document_describes_what_the_server_answers,
    every_answer_matches_its_documented_schema,
);
