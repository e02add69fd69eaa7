//! Running keygate in production: `/metrics`, the request id on every answer and log line,
//! what `/readyz` checks, and JSON logs.

use std::collections::BTreeMap;

use reqwest::Method;

use crate::backend_tests;
use crate::helpers::{
    Backend, Reply, ServerProcess, TestApp, keygate_command, me_status, mistyped, spawn_app,
    spawn_app_with,
};

/// The samples of a Prometheus text exposition: (name, labels, value).
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.trim_end_matches('}');
                    let labels = labels
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').unwrap();
                            (k.to_owned(), v.trim_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            (name, labels, value.parse().expect("a number"))
        })
        .collect()
}

/// The sum of the samples named `name` that carry `labels`; None when there is none.
pub(crate) fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<f64> = samples(text)
        .into_iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).is_some_and(|have| have == v))
        })
        .map(|(_, _, v)| v)
        .collect();
    (!found.is_empty()).then(|| found.iter().sum())
}

pub(crate) async fn metrics(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

async fn metrics_count_tokens_validations_caches_and_requests_per_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    let second = app.token_for(&key).await;
    let refused = app
        .client
        .post(app.url("/v1/token"))
        .basic_auth(&key.client_id, Some(mistyped(&key.client_secret)))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    for _ in 0..2 {
        assert_eq!(me_status(&app, &token).await, 200);
    }
    assert_eq!(me_status(&app, &second).await, 200);
    assert_eq!(me_status(&app, "not-a-token").await, 401);
    Reply::send(app.client.get(app.url("/no/such/path")))
        .await
        .expect_status_only(404);

    let text = metrics(&app).await;
    let metric = |name: &str, labels: &[(&str, &str)]| {
        value(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    assert_eq!(metric("keygate_tokens_issued_total", &[]), 2.0);
    assert_eq!(
        metric(
            "keygate_tokens_refused_total",
            &[("reason", "invalid_client")]
        ),
        1.0
    );
    let validations = "keygate_token_validations_total";
    assert_eq!(metric(validations, &[("outcome", "valid")]), 3.0);
    assert_eq!(metric(validations, &[("outcome", "malformed")]), 1.0);
    assert_eq!(metric(validations, &[("outcome", "revoked")]), 0.0);
    // The first token was validated twice: once in full, once from the cache.
    assert_eq!(
        metric("keygate_seen_token_cache_total", &[("result", "hit")]),
        1.0
    );
    // The first grant paid the bcrypt, the second found the verified secret; the mistyped
    // secret was refused by its checksum before any lookup.
    let verified = "keygate_verified_secret_cache_total";
    assert_eq!(metric(verified, &[("result", "hit")]), 1.0);
    assert_eq!(metric(verified, &[("result", "miss")]), 1.0);

    let requests = "keygate_http_requests_duration_seconds_count";
    let token_route = [("endpoint", "/v1/token"), ("method", "POST")];
    assert_eq!(metric(requests, &token_route), 3.0);
    assert_eq!(
        metric(requests, &[("endpoint", "/v1/token"), ("status", "401")]),
        1.0
    );
    assert_eq!(metric(requests, &[("endpoint", "/v1/me")]), 4.0);
    // Unknown paths share one series, whatever they are.
    assert_eq!(metric(requests, &[("endpoint", "UNKNOWN")]), 1.0);
    assert!(
        value(
            &text,
            "keygate_http_requests_duration_seconds_bucket",
            &[("endpoint", "/v1/token"), ("le", "+Inf")]
        )
        .is_some()
    );

    assert_eq!(
        metric("keygate_db_pool_max_connections", &[]),
        f64::from(app.settings.database.pool_size)
    );
    assert!(metric("keygate_db_pool_connections", &[]) >= 1.0);
    assert_eq!(metric("keygate_hashing_queue_depth", &[]), 0.0);
    assert!(metric("keygate_change_feed_lag_seconds", &[]) <= 5.0);
    assert_eq!(metric("keygate_webhook_backlog", &[]), 0.0);
    assert_eq!(metric("keygate_revocation_stream_followers", &[]), 0.0);
    assert_eq!(metric("keygate_scheduled_signing_key_rotations", &[]), 0.0);
    // Nothing that identifies a client.
    assert!(!text.contains(&key.client_id));
}

/// The `X-Request-Id` of an answer.
fn request_id(reply: &Reply) -> String {
    reply
        .header("x-request-id")
        .unwrap_or_else(|| panic!("no X-Request-Id on HTTP {}", reply.status))
        .to_owned()
}

async fn every_answer_carries_a_request_id_that_only_a_trusted_proxy_chooses(backend: Backend) {
    let app = spawn_app(backend).await;
    let get = |path: &str, id: Option<&str>| {
        let mut request = app.client.request(Method::GET, app.url(path));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        Reply::send(request)
    };
    let mut seen = Vec::new();
    for path in [
        "/healthz",
        "/healthz",
        "/v1/me",
        "/no/such/path",
        "/console/login",
    ] {
        let id = request_id(&get(path, None).await);
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{path}: {id}"
        );
        assert!(!seen.contains(&id), "{id} twice");
        seen.push(id);
    }
    // A client's own id is not taken.
    let chosen = request_id(&get("/healthz", Some("lb-7:42")).await);
    assert_ne!(chosen, "lb-7:42");

    // Behind a trusted proxy, its id is kept, if it is a sensible one.
    let behind = spawn_app_with(backend, |s| {
        s.rate_limit.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let via_proxy = |id: &'static str| {
        Reply::send(
            behind
                .client
                .get(behind.url("/v1/me"))
                .header("x-request-id", id),
        )
    };
    assert_eq!(request_id(&via_proxy("lb-7:42").await), "lb-7:42");
    let odd = request_id(&via_proxy("two words").await);
    assert!(odd.len() == 32 && odd != "two words", "{odd}");
}

async fn readiness_needs_current_migrations_and_an_active_signing_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let ready = || Reply::send(app.client.get(app.url("/readyz")));
    ready().await.expect(200);

    let (kid, _, _) = app.active_signing_key();
    app.run_sql("UPDATE signing_keys SET status = 'retired' WHERE status = 'active'");
    let refused = ready().await;
    refused.expect_error(503, "temporarily_unavailable");
    assert!(refused.header("retry-after").is_some());
    app.run_sql(&format!(
        "UPDATE signing_keys SET status = 'active' WHERE kid = '{kid}'"
    ));
    ready().await.expect(200);

    // A binary newer than its database: the schema lacks its latest migration.
    app.run_sql(
        "DELETE FROM __diesel_schema_migrations WHERE version = \
         (SELECT MAX(version) FROM __diesel_schema_migrations)",
    );
    ready().await.expect_error(503, "temporarily_unavailable");
}

/// `KEYGATE_LOG_FORMAT=json`: one JSON object per line, the request's id in those written
/// for it.
#[actix_web::test]
async fn json_logs_carry_the_request_id() {
    let app = spawn_app(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = app.serve_command(dir.path());
    command
        .env("KEYGATE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let server = actix_web::rt::task::spawn_blocking(move || ServerProcess::start(&mut command))
        .await
        .unwrap();
    let answer = reqwest::get(server.url("/v1/me")).await.unwrap();
    assert_eq!(answer.status(), 401);
    let id = answer.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let logged = server.kill();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for line in &lines {
        for member in ["time", "level", "target", "message"] {
            assert!(line[member].is_string(), "{member} in {line}");
        }
    }
    let access = lines
        .iter()
        .find(|line| line["message"].as_str().unwrap().contains("/v1/me"))
        .expect("the request's access log line");
    assert!(
        access["message"].as_str().unwrap().contains(&id),
        "{access}"
    );

    let mut wrong = keygate_command();
    let refused = wrong
        .env("KEYGATE_LOG_FORMAT", "yaml")
        .arg("--help")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("KEYGATE_LOG_FORMAT must be text or json"),
        "{said}"
    );
}

backend_tests!(
    metrics_count_tokens_validations_caches_and_requests_per_route,
    every_answer_carries_a_request_id_that_only_a_trusted_proxy_chooses,
    readiness_needs_current_migrations_and_an_active_signing_key,
);
