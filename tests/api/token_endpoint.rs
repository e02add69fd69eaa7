//! `POST /v1/token`: every success and RFC 6749 error path.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_oauth_error, mistyped, spawn_app, spawn_app_with};
use crate::operations::{metrics, value};

/// Verifies a token the way a third party would: with the published JWKS only.
async fn verify_with_jwks(app: &TestApp, token: &str) -> (jsonwebtoken::Header, Value) {
    let jwks: JwkSet =
        serde_json::from_value(app.get_json("/.well-known/jwks.json").await).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is published");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["keygate"]);
    validation.set_issuer(&[&app.address]);
    let data = decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("verifies");
    (data.header, data.claims)
}

/// SR-01..SR-07, CC-04, CC-06, AT-02..AT-05, AT-07, BR-11.
async fn json_body_with_valid_credentials_returns_an_rfc_9068_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "clients:read"]);
    let response = app
        .post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900, "an integer, RFC 6749 5.1");
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["scope"], "clients:read invoices:read");
    assert!(body.get("refresh_token").is_none(), "RFC 6749 4.4.3");

    let token = body["access_token"].as_str().unwrap();
    let (header, claims) = verify_with_jwks(&app, token).await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    assert_eq!(claims["iss"], app.address.as_str());
    assert_eq!(claims["sub"], key.client_id.as_str());
    assert_eq!(claims["client_id"], key.client_id.as_str());
    assert_eq!(claims["aud"], "keygate");
    assert_eq!(claims["env"], "live");
    assert_eq!(claims["org"], "default");
    assert_eq!(claims["scope"], "clients:read invoices:read");
    // `exp` is the signing time plus the lifetime; `iat` is when keygate read the key's state,
    // moments before signing, which on a loaded machine can fall in the previous second.
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((900..=902).contains(&lifetime), "exp - iat = {lifetime}");
    assert_eq!(claims["nbf"], claims["iat"]);
    assert_eq!(body["expires_at"], claims["exp"]);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 32);
}

/// CC-08.
async fn fiskaly_aliases_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let response = app
        .post_token_json(json!({ "api_key": key.client_id, "api_secret": key.client_secret }))
        .await;
    assert_eq!(response.status(), 200);
}

/// CA-01, CA-03, CC-01, TE-03, TOK-DP-02.
async fn client_secret_basic_and_client_secret_post_both_work(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let basic = app
        .post_token_form(
            "grant_type=client_credentials",
            Some((&key.client_id, &key.client_secret)),
        )
        .await;
    assert_eq!(basic.status(), 200);
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&unknown_parameter=ignored",
        key.client_id, key.client_secret
    );
    let post = app.post_token_form(&body, None).await;
    assert_eq!(post.status(), 200);
    let token: Value = post.json().await.unwrap();
    assert_eq!(token["scope"], "invoices:read");
}

/// CC-07, SR-05.
async fn a_requested_scope_narrows_the_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "invoices:write", "clients:read"]);
    let body = format!(
        "grant_type=client_credentials&scope=invoices:read%20clients:read&client_id={}&client_secret={}",
        key.client_id, key.client_secret
    );
    let response = app.post_token_form(&body, None).await;
    assert_eq!(response.status(), 200);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["scope"], "clients:read invoices:read");
    let (_, claims) = verify_with_jwks(&app, token["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["scope"], "clients:read invoices:read");
}

/// ER-07.
async fn a_scope_the_key_was_not_granted_is_invalid_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    for scope in [
        "invoices:write",
        "invoices:read invoices:write",
        "Invoices:read",
        "invoices",
    ] {
        let response = app
            .post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret, "scope": scope }))
            .await;
        assert_oauth_error(response, 400, "invalid_scope").await;
    }
    let response = app
        .post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret, "scope": "a  b" }))
        .await;
    assert_oauth_error(response, 400, "invalid_scope").await;
}

/// Unknown id, wrong secret, revoked, disabled and expired keys all get the same answer.
/// ER-04, ER-05, ER-06, ER-09, CC-05, TOK-TM-02, TOK-RV-01, TOK-EX-01.
async fn every_credential_failure_is_the_same_invalid_client(backend: Backend) {
    let app = spawn_app(backend).await;
    let good = app.create_key(&["invoices:read"]);
    let revoked = app.create_key(&["invoices:read"]);
    let disabled = app.create_key(&["invoices:read"]);
    let expired = app.create_key(&["invoices:read"]);
    let other = app.create_key(&["invoices:read"]);
    assert!(
        app.cli(&["api-keys", "revoke", &revoked.client_id])
            .status
            .success()
    );
    app.run_sql(&format!(
        "UPDATE api_keys SET status = 'disabled' WHERE client_id = '{}'",
        disabled.client_id
    ));
    app.run_sql(&format!(
        "UPDATE api_keys SET expires_at = '2020-01-01 00:00:00' WHERE client_id = '{}'",
        expired.client_id
    ));

    let cases = [
        (
            "unknown client_id",
            "kgc_00000000000000000000".to_owned(),
            good.client_secret.clone(),
        ),
        (
            "malformed client_id",
            "nobody".to_owned(),
            good.client_secret.clone(),
        ),
        (
            "another key's secret",
            good.client_id.clone(),
            other.client_secret.clone(),
        ),
        (
            "a mistyped secret",
            good.client_id.clone(),
            mistyped(&good.client_secret),
        ),
        (
            "revoked",
            revoked.client_id.clone(),
            revoked.client_secret.clone(),
        ),
        (
            "disabled",
            disabled.client_id.clone(),
            disabled.client_secret.clone(),
        ),
        (
            "expired",
            expired.client_id.clone(),
            expired.client_secret.clone(),
        ),
    ];
    let mut bodies = Vec::new();
    for (why, id, secret) in cases {
        let response = app
            .post_token_json(json!({ "client_id": id, "client_secret": secret }))
            .await;
        assert_eq!(response.status(), 401, "{why}");
        assert_eq!(
            response.headers()["www-authenticate"],
            "Basic realm=\"keygate\"",
            "{why}"
        );
        bodies.push((why, response.text().await.unwrap()));
    }
    for (why, body) in &bodies {
        assert_eq!(
            body, &bodies[0].1,
            "{why} answers differently from {}",
            bodies[0].0
        );
    }
    let body: Value = serde_json::from_str(&bodies[0].1).unwrap();
    assert_eq!(body["error"], "invalid_client");

    let response = app
        .post_token_form(
            "grant_type=client_credentials",
            Some((&good.client_id, &other.client_secret)),
        )
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"keygate\""
    );
    assert_oauth_error(response, 401, "invalid_client").await;
}

/// TOK-EX-01.
async fn a_key_expiring_soon_caps_the_token_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key_with(&["invoices:read"], &["--expires-in-days", "1"]);
    let soon = chrono::Utc::now().naive_utc() + chrono::Duration::seconds(120);
    app.run_sql(&format!(
        "UPDATE api_keys SET expires_at = '{}' WHERE client_id = '{}'",
        soon.format("%Y-%m-%d %H:%M:%S"),
        key.client_id
    ));
    let response = app
        .post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let expires_in = body["expires_in"].as_i64().unwrap();
    assert!((100..=120).contains(&expires_in), "{expires_in}");
}

/// TE-02, TE-04, CC-10, ER-03, TOK-DP-01.
async fn malformed_requests_get_invalid_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let creds = format!(
        "client_id={}&client_secret={}",
        key.client_id, key.client_secret
    );
    let cases = [
        ("no grant_type", creds.clone()),
        ("an empty grant_type", format!("grant_type=&{creds}")),
        (
            "a repeated grant_type",
            format!("grant_type=client_credentials&grant_type=client_credentials&{creds}"),
        ),
        (
            "a repeated client_id",
            format!(
                "grant_type=client_credentials&client_id={}&{creds}",
                key.client_id
            ),
        ),
        (
            "a repeated scope",
            format!("grant_type=client_credentials&scope=a&scope=b&{creds}"),
        ),
    ];
    for (why, body) in cases {
        let response = app.post_token_form(&body, None).await;
        let error = assert_oauth_error(response, 400, "invalid_request").await;
        assert!(
            !error.to_string().contains(&key.client_secret),
            "{why} echoes the secret"
        );
    }
}

/// CC-09, ER-07.
async fn another_grant_type_is_unsupported(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    for grant in [
        "password",
        "authorization_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let body = format!(
            "grant_type={grant}&client_id={}&client_secret={}",
            key.client_id, key.client_secret
        );
        assert_oauth_error(
            app.post_token_form(&body, None).await,
            400,
            "unsupported_grant_type",
        )
        .await;
    }
}

/// CA-04, TOK-QS-01.
async fn credentials_in_the_url_are_refused_even_when_correct(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let url = app.url(&format!(
        "/v1/token?client_id={}&client_secret={}",
        key.client_id, key.client_secret
    ));
    let response = app
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 400, "invalid_request").await;
}

/// CA-05.
async fn two_authentication_methods_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let body = format!(
        "grant_type=client_credentials&client_secret={}",
        key.client_secret
    );
    let response = app
        .post_token_form(&body, Some((&key.client_id, &key.client_secret)))
        .await;
    assert_oauth_error(response, 400, "invalid_request").await;
}

/// CC-03, ER-04.
async fn missing_credentials_are_invalid_client_with_a_challenge(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_token_form("grant_type=client_credentials", None)
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"keygate\""
    );
    assert_oauth_error(response, 401, "invalid_client").await;
    let response = app.post_token_json(json!({})).await;
    assert_oauth_error(response, 401, "invalid_client").await;
}

/// TOK-CT-01, TOK-CT-02, ER-08.
async fn wrong_content_types_and_bodies_are_clear_4xx(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        key.client_id, key.client_secret
    );
    for content_type in [
        None,
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
    ] {
        let mut request = app.client.post(app.url("/v1/token")).body(form.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        assert_oauth_error(request.send().await.unwrap(), 400, "invalid_request").await;
    }
    let json_cases = [
        r#"{"client_id": ["a"], "client_secret": "b"}"#,
        r#"{"client_id": 7, "client_secret": "b"}"#,
        r#"{"client_id": "a", "client_id": "b", "client_secret": "c"}"#,
        r#"[1, 2]"#,
        r#"{"client_id": "#,
        "",
        "null",
    ];
    for body in json_cases {
        let response = app
            .client
            .post(app.url("/v1/token"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_oauth_error(response, 400, "invalid_request").await;
    }
}

/// TOK-SZ-01, TOK-SZ-03.
async fn an_oversized_body_is_413_in_the_documented_format(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = format!(
        "grant_type=client_credentials&padding={}",
        "x".repeat(64 * 1024)
    );
    let response = app.post_token_form(&body, None).await;
    assert_oauth_error(response, 413, "invalid_request").await;
    // Chunked, so no Content-Length announces the size.
    let stream =
        futures_util::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024])));
    let response = app
        .client
        .post(app.url("/v1/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 413, "invalid_request").await;
}

/// TE-01, TOK-QS-02.
async fn other_methods_and_paths_answer_in_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.client.get(app.url("/v1/token")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    assert_oauth_error(response, 405, "method_not_allowed").await;
    let response = app
        .client
        .delete(app.url("/v1/token"))
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 405, "method_not_allowed").await;
    let response = app
        .client
        .get(app.url("/v1/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_oauth_error(response, 404, "not_found").await;
}

/// CA-07, TOK-BF-01.
async fn repeated_failures_are_rate_limited_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit.failure_burst = 3;
        s.rate_limit.failures_per_minute = 1;
    })
    .await;
    let key = app.create_key(&["invoices:read"]);
    let other = app.create_key(&["invoices:read"]);
    let wrong = json!({ "client_id": key.client_id, "client_secret": other.client_secret });
    // A burst of three: exactly three failures, then 429.
    for _ in 0..3 {
        let response = app.post_token_json(wrong.clone()).await;
        assert_eq!(response.status(), 401);
    }
    let response = app.post_token_json(wrong.clone()).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_oauth_error(response, 429, "rate_limited").await;
    // While limited, even the right secret from that address waits.
    let right = json!({ "client_id": key.client_id, "client_secret": key.client_secret });
    assert_eq!(app.post_token_json(right).await.status(), 429);
}

/// A token request as if forwarded by a proxy for `client_address`.
async fn token_from(app: &TestApp, client_address: &str, body: Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/token"))
        .header("x-forwarded-for", client_address)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// An attacker guessing a client's secret from one address spends that address's budget
/// only: the client, presenting its right secret from its own address, is never locked out.
async fn an_attackers_failures_never_lock_out_the_client_elsewhere(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit.failure_burst = 3;
        s.rate_limit.failures_per_minute = 1;
        s.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let key = app.create_key(&["invoices:read"]);
    let guess =
        json!({ "client_id": key.client_id, "client_secret": mistyped(&key.client_secret) });
    let right = json!({ "client_id": key.client_id, "client_secret": key.client_secret });
    for _ in 0..3 {
        assert_eq!(
            token_from(&app, "203.0.113.9", guess.clone())
                .await
                .status(),
            401
        );
    }
    for _ in 0..5 {
        let attacker = token_from(&app, "203.0.113.9", guess.clone()).await;
        assert_oauth_error(attacker, 429, "rate_limited").await;
        let client = token_from(&app, "198.51.100.7", right.clone()).await;
        assert_eq!(client.status(), 200, "the client works on");
    }
}

/// Every token request counts against its client's and its address's request budgets,
/// whatever its outcome; past one, 429 with Retry-After, other clients and addresses unharmed.
async fn token_requests_are_limited_per_client_and_per_address(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit.client_requests_per_second = 1;
        s.rate_limit.client_request_burst = 3;
        s.rate_limit.address_requests_per_second = 1;
        s.rate_limit.address_request_burst = 8;
        s.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let busy = app.create_key(&["invoices:read"]);
    let calm = app.create_key(&["invoices:read"]);
    let body = |key: &crate::helpers::TestKey| json!({ "client_id": key.client_id, "client_secret": key.client_secret });
    // The budget refills at one a second, so count the answers until the first 429 rather
    // than assume the test runs within a second.
    let mut issued = 0;
    let limited = loop {
        let answer = token_from(&app, "198.51.100.1", body(&busy)).await;
        if answer.status() != 200 {
            break answer;
        }
        issued += 1;
        assert!(issued <= 10, "the client is never limited");
    };
    assert!(issued >= 3, "the burst is granted first ({issued})");
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_oauth_error(limited, 429, "rate_limited").await;
    assert_eq!(
        token_from(&app, "198.51.100.2", body(&calm)).await.status(),
        200,
        "another client is not limited"
    );

    // A flood of made-up client ids from one address spends that address's budget.
    let mut n = 0;
    loop {
        let made_up = json!({ "client_id": format!("kgc_{n:0>20}"), "client_secret": "x" });
        let answer = token_from(&app, "198.51.100.1", made_up).await;
        if answer.status() == 429 {
            break;
        }
        assert_eq!(answer.status(), 401);
        n += 1;
        assert!(n <= 30, "the address is never limited");
    }
    // Even the right secret waits there (a budget refilled meanwhile lets one through).
    let mut refused = false;
    for _ in 0..2 {
        refused |= token_from(&app, "198.51.100.1", body(&calm)).await.status() == 429;
    }
    assert!(refused, "the flooded address is limited for every client");
    assert_eq!(
        token_from(&app, "198.51.100.3", body(&calm)).await.status(),
        200,
        "another address is not limited"
    );
}

/// AT-01, JWT-23.
async fn tokens_of_every_algorithm_are_issued_and_accepted(backend: Backend) {
    for algorithm in ["EdDSA", "RS256", "HS256"] {
        let app =
            spawn_app_with(backend, |s| s.tokens.algorithm = algorithm.parse().unwrap()).await;
        let key = app.create_key(&["invoices:read"]);
        let token = app.token_for(&key).await;
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], algorithm);
        assert_eq!(
            app.get_with_token("/v1/me", &token).await.status(),
            200,
            "{algorithm}"
        );
        let jwks = app.get_json("/.well-known/jwks.json").await;
        if algorithm == "HS256" {
            assert_eq!(
                jwks["keys"],
                json!([]),
                "a symmetric key is never published"
            );
        } else {
            verify_with_jwks(&app, &token).await;
        }
    }
}

/// Sabotage: with the database broken, the answer is a bare server_error, nothing more.
async fn a_broken_database_is_a_server_error_without_detail(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    app.run_sql("DROP TABLE api_key_secrets");
    let response = app
        .post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "error": "server_error", "error_description": "internal error" })
    );
}

/// A test key's tokens carry their own audience: an API whose JWT library checks only `aud`
/// (for the live audience) refuses them, as it accepts live tokens.
/// AT-08, MD-10, JWT-19, TOK-EN-01.
async fn test_tokens_carry_their_own_audience(backend: Backend) {
    let app = spawn_app(backend).await;
    let live = app.create_key(&["invoices:read"]);
    let test = app.create_key_with(&["invoices:read"], &["--env", "test"]);
    let live_token = app.token_for(&live).await;
    let test_token = app.token_for(&test).await;
    let (_, claims) = verify_with_jwks(&app, &live_token).await;
    assert_eq!(claims["aud"], "keygate");
    assert_eq!(claims["env"], "live");

    let jwks: JwkSet =
        serde_json::from_value(app.get_json("/.well-known/jwks.json").await).unwrap();
    let header = jsonwebtoken::decode_header(&test_token).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut live_only = Validation::new(header.alg);
    live_only.set_audience(&["keygate"]);
    let refused = decode::<Value>(
        &test_token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &live_only,
    )
    .expect_err("a live-only API refuses a test token by its audience alone");
    assert_eq!(
        refused.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
    let mut test_only = Validation::new(header.alg);
    test_only.set_audience(&["keygate-test"]);
    let accepted = decode::<Value>(
        &test_token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &test_only,
    )
    .expect("a sandbox API takes it");
    assert_eq!(accepted.claims["env"], "test");

    // keygate's own routes serve both environments, each with its own audience.
    for token in [&live_token, &test_token] {
        let status = app
            .get_with_token("/v1/me/permissions", token)
            .await
            .status();
        assert_eq!(status, 200);
    }
}

/// `keygate_secret_checks_total` now.
async fn secret_checks(app: &TestApp) -> f64 {
    value(&metrics(app).await, "keygate_secret_checks_total", &[]).expect("the counter is exported")
}

/// Statuses of `count` token requests for (client_id, secret) sent at once.
async fn crowd(app: &TestApp, client_id: &str, secret: &str, count: usize) -> Vec<u16> {
    let requests = (0..count).map(|_| async {
        app.post_token_json(json!({ "client_id": client_id, "client_secret": secret }))
            .await
            .status()
            .as_u16()
    });
    futures_util::future::join_all(requests).await
}

/// A fleet of workers starting at once with the same credentials costs one bcrypt: checks of
/// the same client_id and secret that are in flight share one result, and a wrong secret
/// shares nothing with the right one. HERD-01.
async fn a_herd_presenting_the_same_credentials_costs_one_bcrypt(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.secrets.hashing_threads = 1).await;
    let key = app.create_key_at_cost(&["invoices:read"], 10);
    let before = secret_checks(&app).await;
    let statuses = crowd(&app, &key.client_id, &key.client_secret, 64).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(
        secret_checks(&app).await - before,
        1.0,
        "one bcrypt for the herd"
    );

    // Another key's right secret and a wrong one (well-formed: the first key's), at once:
    // each is judged on its own.
    let other = app.create_key_at_cost(&["invoices:read"], 10);
    let wrong = key.client_secret.clone();
    let before = secret_checks(&app).await;
    let (right, wrong) = tokio::join!(
        crowd(&app, &other.client_id, &other.client_secret, 32),
        crowd(&app, &other.client_id, &wrong, 8),
    );
    assert!(right.iter().all(|s| *s == 200), "{right:?}");
    assert!(wrong.iter().all(|s| *s == 401), "{wrong:?}");
    let checks = secret_checks(&app).await - before;
    assert!(
        (2.0..=9.0).contains(&checks),
        "one check for the right secret, at most one per wrong request: {checks}"
    );
}

backend_tests!(
    a_herd_presenting_the_same_credentials_costs_one_bcrypt,
    test_tokens_carry_their_own_audience,
    json_body_with_valid_credentials_returns_an_rfc_9068_token,
    fiskaly_aliases_are_accepted,
    client_secret_basic_and_client_secret_post_both_work,
    a_requested_scope_narrows_the_token,
    a_scope_the_key_was_not_granted_is_invalid_scope,
    every_credential_failure_is_the_same_invalid_client,
    a_key_expiring_soon_caps_the_token_lifetime,
    malformed_requests_get_invalid_request,
    another_grant_type_is_unsupported,
    credentials_in_the_url_are_refused_even_when_correct,
    two_authentication_methods_are_refused,
    missing_credentials_are_invalid_client_with_a_challenge,
    wrong_content_types_and_bodies_are_clear_4xx,
    an_oversized_body_is_413_in_the_documented_format,
    other_methods_and_paths_answer_in_json,
    repeated_failures_are_rate_limited_with_retry_after,
    an_attackers_failures_never_lock_out_the_client_elsewhere,
    token_requests_are_limited_per_client_and_per_address,
    tokens_of_every_algorithm_are_issued_and_accepted,
    a_broken_database_is_a_server_error_without_detail,
);
