//! Properties of the token endpoint that no single route's tests show: nothing secret reaches
//! the log even at `trace`, an unknown `client_id` costs what a wrong secret costs, and a
//! secret is compared whole (bcrypt reads only 72 bytes).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, ServerProcess, TestKey, spawn_app, spawn_app_with};

/// TOK-LG-01, TOK-LG-02, TOK-QS-01: a keygate process logging at `trace` serves a token
/// request (HTTP Basic and JSON), a wrong secret, credentials in the URL, a bearer call, an
/// introspection, a revocation and a token request whose handler panics (a fault only debug
/// builds can inject) with the parsed credentials in its message; its log holds no secret,
/// token, Authorization value or bcrypt hash. The panic is answered with the documented 500
/// and the process goes on serving.
async fn nothing_secret_reaches_the_log_even_at_trace(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "tokens:introspect"]);
    let other = app.create_key(&["invoices:read"]);
    let doomed = app.create_key(&["invoices:read"]);
    let dir = tempfile::tempdir().unwrap();
    let mut command = app.serve_command(dir.path());
    command
        .env("RUST_LOG", "trace")
        .env("KEYGATE_PANIC_ON_CLIENT_ID", &doomed.client_id);
    let server = actix_web::rt::task::spawn_blocking(move || ServerProcess::start(&mut command))
        .await
        .unwrap();
    let client = reqwest::Client::new();

    let issued: Value = client
        .post(server.url("/v1/token"))
        .basic_auth(&key.client_id, Some(&key.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["access_token"].as_str().expect("a token").to_owned();
    let json_token: Value = client
        .post(server.url("/v1/token"))
        .json(&json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let json_token = json_token["access_token"].as_str().unwrap().to_owned();
    let wrong = client
        .post(server.url("/v1/token"))
        .json(&json!({ "client_id": key.client_id, "client_secret": other.client_secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let in_url = client
        .post(server.url(&format!(
            "/v1/token?client_id={}&client_secret={}",
            other.client_id, other.client_secret
        )))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(in_url.status(), 400, "credentials in the URL are refused");
    let me = client
        .get(server.url("/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let introspected = client
        .post(server.url("/v1/introspect"))
        .basic_auth(&key.client_id, Some(&key.client_secret))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(introspected.status(), 200);
    let revoked = client
        .post(server.url("/v1/revoke"))
        .bearer_auth(&json_token)
        .form(&[("token", json_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    for _ in 0..2 {
        let panicked = client
            .post(server.url("/v1/token"))
            .basic_auth(&doomed.client_id, Some(&doomed.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("a panicking handler still answers");
        assert_eq!(panicked.status(), 500);
        assert_eq!(panicked.headers()["cache-control"], "no-store");
        let body: Value = panicked.json().await.unwrap();
        assert_eq!(body["error"], "server_error", "{body}");
    }
    let after = client
        .get(server.url("/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the process serves on after a panic");

    let log = server.kill();
    assert!(
        log.lines().count() > 20,
        "the process logged at trace level:\n{log}"
    );
    assert!(
        log.contains("panicked at") && log.contains(&doomed.client_id),
        "the panic is logged, with the client_id its message names:\n{log}"
    );
    let basic = |k: &TestKey| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", k.client_id, k.client_secret))
    };
    let signature = |t: &str| t.rsplit('.').next().unwrap().to_owned();
    for (what, needle) in [
        ("the secret", key.client_secret.clone()),
        ("the other secret", other.client_secret.clone()),
        (
            "the secret in the panicking request",
            doomed.client_secret.clone(),
        ),
        ("the panicking request's Basic credentials", basic(&doomed)),
        ("the Basic credentials", basic(&key)),
        ("the token", token.clone()),
        ("the token's signature", signature(&token)),
        ("the JSON-issued token", json_token.clone()),
        ("a bcrypt hash", "$2b$".to_owned()),
        ("a bcrypt hash", "$2y$".to_owned()),
        ("a private key", "PRIVATE KEY".to_owned()),
    ] {
        assert!(!log.contains(&needle), "the log shows {what}:\n{log}");
    }
}

/// TOK-TM-01, ER-09: an unknown `client_id` is checked against a dummy hash of the same
/// bcrypt cost, so it takes as long as a known one with a wrong secret; the answers are the
/// same bytes. (Without the dummy hash an unknown id would answer many times faster.)
async fn an_unknown_client_id_costs_what_a_wrong_secret_costs(backend: Backend) {
    const COST: &str = "8";
    let app = spawn_app_with(backend, |s| {
        s.secrets.bcrypt_cost = COST.parse().unwrap();
        s.rate_limit.enabled = false;
    })
    .await;
    // Keys hashed at the server's cost, as in production (the test profile's is lower).
    let create = |name: &str| {
        let out = app
            .cli_command(&[
                "api-keys",
                "create",
                "--name",
                name,
                "--scopes",
                "invoices:read",
                "--json",
            ])
            .env("KEYGATE_SECRETS__BCRYPT_COST", COST)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: Value = serde_json::from_slice(&out.stdout).unwrap();
        TestKey {
            client_id: created["client_id"].as_str().unwrap().to_owned(),
            client_secret: created["client_secret"].as_str().unwrap().to_owned(),
        }
    };
    let known = create("known");
    let other = create("other");
    let unknown_id = "kgc_00000000000000000000";
    let attempt = |client_id: &str| {
        let body = json!({ "client_id": client_id, "client_secret": other.client_secret });
        let app = &app;
        async move {
            let started = Instant::now();
            let response = app.post_token_json(body).await;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (started.elapsed(), status, text)
        }
    };
    // Warm up both paths (the dummy hash is made on first use).
    attempt(unknown_id).await;
    attempt(&known.client_id).await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        let (took, status, text) = attempt(unknown_id).await;
        assert_eq!(status, 401);
        unknown.push((took, text));
        let (took, status, text) = attempt(&known.client_id).await;
        assert_eq!(status, 401);
        wrong.push((took, text));
    }
    assert_eq!(unknown[0].1, wrong[0].1, "the same answer");
    let median = |samples: &mut Vec<(Duration, String)>| {
        samples.sort_by_key(|(took, _)| *took);
        samples[samples.len() / 2].0.as_secs_f64()
    };
    let (unknown, wrong) = (median(&mut unknown), median(&mut wrong));
    let ratio = unknown / wrong;
    assert!(
        (0.5..2.0).contains(&ratio),
        "median unknown client_id {:.1} ms, known with a wrong secret {:.1} ms",
        unknown * 1e3,
        wrong * 1e3
    );
}

/// TOK-BC-01, TOK-BF-04: secrets are 66 characters, under bcrypt's 72-byte limit (asserted at
/// compile time in src/domain/secret.rs), and compared whole: the right secret with anything
/// after it, or cut short, is refused.
async fn a_secret_is_compared_whole(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    assert!(key.client_secret.len() <= 72, "{}", key.client_secret.len());
    assert!(
        key.client_secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "a URL-safe alphabet: {}",
        key.client_secret
    );
    let padded = format!("{}{}", key.client_secret, "x".repeat(80));
    let cut = &key.client_secret[..key.client_secret.len() - 1];
    for (why, secret) in [("extra bytes", padded.as_str()), ("cut short", cut)] {
        let response = app
            .post_token_json(json!({ "client_id": key.client_id, "client_secret": secret }))
            .await;
        assert_eq!(response.status(), 401, "{why}");
    }
    let response = app
        .post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .await;
    assert_eq!(response.status(), 200);
}

/// TOK-BC-02: a burst of concurrent token requests, each costing a slow bcrypt verification,
/// fills the bounded hashing queue: the overflow is refused at once with 503
/// `temporarily_unavailable` and `Retry-After`, and token validation (which never hashes)
/// keeps answering quickly meanwhile.
async fn a_burst_of_bcrypt_work_overflows_to_503_and_validation_keeps_serving(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        // ~100 ms or more per verification (the dummy hash of an unknown client_id).
        s.secrets.bcrypt_cost = 12;
        s.secrets.hashing_threads = 1;
        s.secrets.max_pending_hashes = 2;
        s.rate_limit.enabled = false;
    })
    .await;
    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    // Twelve different unknown client_ids: requests with the same credentials would share
    // one check.
    let burst = futures_util::future::join_all((0..12).map(|i| {
        let unknown = json!({
            "client_id": format!("kgc_{i:020}"),
            "client_secret": key.client_secret,
        });
        let response = app.post_token_json(unknown);
        async move {
            let response = response.await;
            let status = response.status().as_u16();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        }
    }));
    let during = async {
        // While the burst hashes: a token is still validated, from memory.
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let status = app
            .get_with_token("/v1/me/permissions", &token)
            .await
            .status();
        (status.as_u16(), started.elapsed())
    };
    let (answers, (status, took)) = futures_util::join!(burst, during);
    let refused: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        !refused.is_empty(),
        "some of the burst overflows the queue: {:?}",
        answers.iter().map(|(s, _, _)| s).collect::<Vec<_>>()
    );
    for (_, retry_after, body) in &refused {
        assert!(retry_after.is_some(), "503 with Retry-After");
        assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    }
    assert!(
        answers.iter().all(|(s, _, _)| *s == 401 || *s == 503),
        "{:?}",
        answers.iter().map(|(s, _, _)| s).collect::<Vec<_>>()
    );
    assert_eq!(status, 200, "validation during the burst");
    assert!(took < Duration::from_secs(1), "validation took {took:?}");
}

/// CRC-32 (IEEE), for a gzip trailer.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `data` as a gzip member holding one stored (uncompressed) deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).unwrap();
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1];
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// TOK-SZ-02: keygate never decompresses a request body, so no compressed body can grow past
/// the 4 KiB bound: a valid token request sent gzip-encoded is read as the bytes it is (not a
/// form), a 400 `invalid_request`, never a token.
async fn a_compressed_body_is_never_inflated(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        key.client_id, key.client_secret
    );
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the CRC-32 check value");
    let response = app
        .client
        .post(app.url("/v1/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-encoding", "gzip")
        .body(gzip_stored(form.as_bytes()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!(
        (400..500).contains(&status),
        "a gzip body is not inflated into a token request: HTTP {status}"
    );
    // The same bytes unencoded get a token: the request itself was good.
    let plain = app.post_token_form(&form, None).await;
    assert_eq!(plain.status(), 200);
}

backend_tests!(
    nothing_secret_reaches_the_log_even_at_trace,
    an_unknown_client_id_costs_what_a_wrong_secret_costs,
    a_secret_is_compared_whole,
    a_burst_of_bcrypt_work_overflows_to_503_and_validation_keeps_serving,
    a_compressed_body_is_never_inflated,
);
