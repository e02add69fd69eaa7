//! Webhooks, with real local receivers: every key event arrives once, signed the Standard
//! Webhooks way; a receiver that fails for a while gets everything afterwards, in order; a
//! hanging receiver delays no other endpoint; private addresses are refused unless allowed;
//! and the endpoints API does what it says.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ChildGuard, Reply, ServerProcess, TestApp, TestKey, eventually, spawn_app,
    spawn_app_with,
};

/// The Rust verifier of docs/webhooks.md, compiled as written.
#[path = "../../docs/snippets/verify_webhook.rs"]
mod documented_rust;

/// One request a receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
    /// The status it answered.
    answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn delivered(&self) -> Vec<Received> {
        self.got()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

/// A receiver on the loopback interface that answers 500 to its first `failures` requests,
/// and takes `delay` over each.
pub async fn receiver(failures: usize, delay: Duration) -> Receiver {
    let got: Arc<Mutex<Vec<Received>>> = Arc::default();
    let left = Arc::new(AtomicUsize::new(failures));
    let state = (got.clone(), left);
    let server = HttpServer::new(move || {
        let (got, left) = state.clone();
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let (got, left) = (got.clone(), left.clone());
                async move {
                    actix_web::rt::time::sleep(delay).await;
                    let failing = left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let answered = if failing { 500 } else { 200 };
                    let header = |name: &str| {
                        req.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    got.lock().unwrap().push(Received {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body: String::from_utf8_lossy(&body).into_owned(),
                        answered,
                    });
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(answered).unwrap())
                        .body(if failing { "not now" } else { "ok" })
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/hook", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    Receiver { url, got }
}

/// Checks `webhook-signature` as the Standard Webhooks specification says a receiver should:
/// HMAC-SHA256 of `id.timestamp.body` under the secret's base64-decoded key, any of the
/// space-separated `v1,` signatures, and a timestamp within five minutes.
pub fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let content = format!("{}.{}.{}", received.id, received.timestamp, received.body);
    let expected = STANDARD
        .encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), content.as_bytes()).as_ref());
    let timestamp: i64 = received.timestamp.parse().unwrap();
    (chrono::Utc::now().timestamp() - timestamp).abs() <= 300
        && received
            .signature
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

/// An administrator, and a key of theirs that manages keys and webhooks (used directly as
/// the bearer credential).
fn manager(app: &TestApp) -> TestKey {
    app.create_user(ADMIN, &["--admin"]);
    app.create_key(&[
        "webhooks:manage",
        "api_keys:read",
        "api_keys:write",
        "invoices:read",
    ])
}

async fn call(
    app: &TestApp,
    manager: &TestKey,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app.with_token(method, path, &manager.client_secret);
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::send(request).await
}

/// Creates an endpoint; returns its id and secret.
async fn endpoint(app: &TestApp, manager: &TestKey, url: &str, events: Value) -> (String, String) {
    let created = call(
        app,
        manager,
        Method::POST,
        "/v1/webhook-endpoints",
        Some(json!({ "url": url, "events": events, "description": "test receiver" })),
    )
    .await;
    let body = created.expect(201);
    assert_eq!(created.header("cache-control"), Some("no-store"));
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

pub async fn until_delivered(receiver: &Receiver, count: usize, seconds: u64) -> Vec<Received> {
    let arrived = eventually(seconds, || async { receiver.delivered().len() >= count }).await;
    let delivered = receiver.delivered();
    assert!(
        arrived,
        "{} of {count} arrived: {delivered:?}",
        delivered.len()
    );
    delivered
}

async fn every_key_event_arrives_once_signed_and_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = manager(&app);
    let hook = receiver(0, Duration::ZERO).await;
    let (_, secret) = endpoint(&app, &manager, &hook.url, json!(["*"])).await;

    let created = call(
        &app,
        &manager,
        Method::POST,
        "/v1/api-keys",
        Some(json!({ "name": "Hooked", "scopes": ["invoices:read"] })),
    )
    .await
    .expect(201);
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    let client_secret = created["client_secret"].as_str().unwrap().to_owned();
    let key = format!("/v1/api-keys/{client_id}");
    for change in [
        json!({ "name": "Hooked again" }),
        json!({ "status": "disabled" }),
        json!({ "status": "enabled" }),
    ] {
        call(&app, &manager, Method::PATCH, &key, Some(change))
            .await
            .expect(200);
    }
    call(
        &app,
        &manager,
        Method::POST,
        &format!("{key}/rotate"),
        Some(json!({})),
    )
    .await
    .expect(200);
    call(&app, &manager, Method::POST, &format!("{key}/revoke"), None)
        .await
        .expect(200);
    call(&app, &manager, Method::DELETE, &key, None)
        .await
        .expect(200);

    let expected = [
        "api_key.created",
        "api_key.updated",
        "api_key.disabled",
        "api_key.enabled",
        "api_key.rotated",
        "api_key.revoked",
        "api_key.deleted",
    ];
    let delivered = until_delivered(&hook, expected.len(), 15).await;
    // Nothing more comes: each event once.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let delivered_now = hook.delivered();
    assert_eq!(delivered_now.len(), expected.len(), "{delivered_now:?}");
    let types: Vec<String> = delivered
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, expected);
    for received in &delivered {
        assert!(verify(&secret, received), "a bad signature: {received:?}");
        let event = received.json();
        assert_eq!(
            event["id"],
            received.id.as_str(),
            "webhook-id is the event's id"
        );
        assert!(received.id.starts_with("evt_"));
        assert_eq!(event["organization"], "default");
        assert_eq!(event["api_version"], "2026-12-01");
        assert_eq!(event["data"]["api_key"]["client_id"], client_id.as_str());
        assert!(
            !received.body.contains(&client_secret),
            "a secret in an event"
        );
        assert!(!received.body.contains("secret_hash"));
    }
    let statuses: Vec<String> = delivered
        .iter()
        .map(|r| {
            r.json()["data"]["api_key"]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(statuses[2], "disabled");
    assert_eq!(statuses[5], "revoked");
    assert_eq!(delivered[6].json()["data"]["api_key"]["deleted"], true);

    // A forged or stale signature does not verify.
    let mut forged = delivered[0].clone();
    forged.body = forged.body.replace("Hooked", "Hacked");
    assert!(!verify(&secret, &forged));
    let mut stale = delivered[0].clone();
    stale.timestamp = (chrono::Utc::now().timestamp() - 600).to_string();
    assert!(!verify(&secret, &stale));
}

async fn a_failing_receiver_gets_everything_afterwards_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = manager(&app);
    let hook = receiver(4, Duration::ZERO).await;
    let (endpoint_id, secret) =
        endpoint(&app, &manager, &hook.url, json!(["api_key.created"])).await;
    let mut made = Vec::new();
    for name in ["first", "second", "third"] {
        let created = call(
            &app,
            &manager,
            Method::POST,
            "/v1/api-keys",
            Some(json!({ "name": name, "scopes": ["invoices:read"] })),
        )
        .await
        .expect(201);
        made.push(created["client_id"].as_str().unwrap().to_owned());
    }
    let delivered = until_delivered(&hook, 3, 20).await;
    let order: Vec<String> = delivered
        .iter()
        .map(|r| {
            r.json()["data"]["api_key"]["client_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(order, made, "delivered in the order the keys were made");
    assert!(delivered.iter().all(|r| verify(&secret, r)));
    // The failures went to the first event only: the later ones waited their turn.
    let all = hook.got();
    assert_eq!(all.len(), 7, "{all:?}");
    assert!(all[..5].iter().all(|r| r.id == delivered[0].id), "{all:?}");

    let listed = call(
        &app,
        &manager,
        Method::GET,
        &format!("/v1/webhook-endpoints/{endpoint_id}/deliveries"),
        None,
    )
    .await
    .expect(200);
    let rows = listed["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let first = &rows[2];
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["attempts"], 5);
    let log = first["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 5);
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["response_body"], "not now");
    assert_eq!(log[4]["status_code"], 200);
    let succeeded = call(
        &app,
        &manager,
        Method::GET,
        &format!("/v1/webhook-endpoints/{endpoint_id}/deliveries?status=succeeded&limit=2"),
        None,
    )
    .await
    .expect(200);
    assert_eq!(succeeded["data"].as_array().unwrap().len(), 2);

    // A delivery sent again on request arrives again, with the same webhook-id.
    let again = call(
        &app,
        &manager,
        Method::POST,
        &format!(
            "/v1/webhook-deliveries/{}/retry",
            first["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(again.status, 202, "{}", again.text);
    let delivered = until_delivered(&hook, 4, 10).await;
    assert_eq!(delivered[3].id, delivered[0].id);
}

async fn a_hanging_receiver_does_not_delay_another_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = manager(&app);
    let slow = receiver(0, Duration::from_secs(30)).await;
    let quick = receiver(0, Duration::ZERO).await;
    endpoint(&app, &manager, &slow.url, json!(["*"])).await;
    endpoint(&app, &manager, &quick.url, json!(["*"])).await;
    let started = Instant::now();
    call(
        &app,
        &manager,
        Method::POST,
        "/v1/api-keys",
        Some(json!({ "name": "Both", "scopes": ["invoices:read"] })),
    )
    .await
    .expect(201);
    until_delivered(&quick, 1, 5).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the quick endpoint waited {:?} for the hanging one",
        started.elapsed()
    );
    assert!(slow.delivered().is_empty());
}

async fn private_addresses_are_refused_unless_allowed(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.webhooks.allowed_networks.clear();
    })
    .await;
    let manager = manager(&app);
    let hook = receiver(0, Duration::ZERO).await;
    let (endpoint_id, _) = endpoint(&app, &manager, &hook.url, json!(["*"])).await;
    call(
        &app,
        &manager,
        Method::POST,
        "/v1/api-keys",
        Some(json!({ "name": "Refused", "scopes": ["invoices:read"] })),
    )
    .await
    .expect(201);
    let deliveries = format!("/v1/webhook-endpoints/{endpoint_id}/deliveries");
    let refused = eventually(10, || async {
        let listed = call(&app, &manager, Method::GET, &deliveries, None)
            .await
            .expect(200);
        listed["data"][0]["attempt_log"]
            .as_array()
            .is_some_and(|log| !log.is_empty())
    })
    .await;
    assert!(refused, "no attempt was recorded");
    let listed = call(&app, &manager, Method::GET, &deliveries, None)
        .await
        .expect(200);
    let attempt = &listed["data"][0]["attempt_log"][0];
    assert!(attempt["status_code"].is_null(), "{attempt}");
    assert!(
        attempt["error"]
            .as_str()
            .unwrap()
            .contains("private address"),
        "{attempt}"
    );
    assert!(hook.got().is_empty(), "the private receiver was reached");
    // A name that resolves to the loopback interface is refused the same way.
    let named = hook.url.replace("127.0.0.1", "localhost");
    let (named_id, _) = endpoint(&app, &manager, &named, json!(["*"])).await;
    call(
        &app,
        &manager,
        Method::POST,
        &format!("/v1/webhook-endpoints/{named_id}/test"),
        None,
    )
    .await
    .expect(202);
    let path = format!("/v1/webhook-endpoints/{named_id}/deliveries");
    let refused = eventually(10, || async {
        let listed = call(&app, &manager, Method::GET, &path, None)
            .await
            .expect(200);
        listed["data"][0]["attempt_log"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("private addresses"))
    })
    .await;
    assert!(refused, "a name resolving to loopback was not refused");
    assert!(hook.got().is_empty());
}

async fn endpoints_are_managed_through_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = manager(&app);
    let hook = receiver(0, Duration::ZERO).await;
    let (id, secret) = endpoint(&app, &manager, &hook.url, json!(["api_key.revoked"])).await;
    assert!(secret.starts_with("whsec_"));
    let path = format!("/v1/webhook-endpoints/{id}");

    let shown = call(&app, &manager, Method::GET, &path, None).await;
    let body = shown.expect(200);
    assert!(!shown.text.contains(&secret), "the secret is shown once");
    assert_eq!(body["events"], json!(["api_key.revoked"]));
    assert_eq!(body["status"], "enabled");
    let listed = call(&app, &manager, Method::GET, "/v1/webhook-endpoints", None)
        .await
        .expect(200);
    assert_eq!(listed["data"][0]["id"], id.as_str());

    // Bad input is a 400 naming the field; no permission is a 403.
    for (body, field) in [
        (
            json!({ "url": "ftp://example.com/", "events": ["*"] }),
            "url",
        ),
        (json!({ "url": hook.url, "events": [] }), "events"),
        (
            json!({ "url": hook.url, "events": ["api_key.exploded"] }),
            "events",
        ),
        (
            json!({ "url": hook.url, "events": ["*"], "extra": 1 }),
            "extra",
        ),
    ] {
        let refused = call(
            &app,
            &manager,
            Method::POST,
            "/v1/webhook-endpoints",
            Some(body),
        )
        .await;
        let error = refused.expect_error(400, "invalid_request");
        assert_eq!(error["field"], field, "{error}");
    }
    let outsider = app.create_key(&["api_keys:read"]);
    call(&app, &outsider, Method::GET, "/v1/webhook-endpoints", None)
        .await
        .expect_error(403, "insufficient_scope");

    // A test event goes to this endpoint, signed.
    call(&app, &manager, Method::POST, &format!("{path}/test"), None)
        .await
        .expect(202);
    let delivered = until_delivered(&hook, 1, 10).await;
    assert_eq!(delivered[0].json()["type"], "webhook_endpoint.test");
    assert!(verify(&secret, &delivered[0]));

    // Rolled with a grace period: both secrets sign until it ends.
    let rolled = call(
        &app,
        &manager,
        Method::POST,
        &format!("{path}/roll-secret"),
        Some(json!({ "grace_period_seconds": 3600 })),
    )
    .await
    .expect(200);
    let new_secret = rolled["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rolled["previous_secret_expires_at"].is_string());
    call(&app, &manager, Method::POST, &format!("{path}/test"), None)
        .await
        .expect(202);
    let delivered = until_delivered(&hook, 2, 10).await;
    assert!(verify(&new_secret, &delivered[1]) && verify(&secret, &delivered[1]));

    // Disabled: a revocation queues nothing for it.
    call(
        &app,
        &manager,
        Method::PATCH,
        &path,
        Some(json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    let key = app.create_key(&["invoices:read"]);
    call(
        &app,
        &manager,
        Method::POST,
        &format!("/v1/api-keys/{}/revoke", key.client_id),
        None,
    )
    .await
    .expect(200);
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hook.delivered().len(), 2);
    // The event is listed all the same.
    let events = call(&app, &manager, Method::GET, "/v1/events?limit=5", None)
        .await
        .expect(200);
    assert_eq!(events["data"][0]["type"], "api_key.revoked");
    assert_eq!(
        events["data"][0]["payload"]["data"]["api_key"]["client_id"],
        key.client_id.as_str()
    );

    call(&app, &manager, Method::DELETE, &path, None)
        .await
        .expect(200);
    call(&app, &manager, Method::GET, &path, None)
        .await
        .expect_error(404, "not_found");
}

/// `keygate serve` as its own process on the app's database; with `slow`, its delivery
/// worker waits an hour between looks, so what it queues stays queued.
fn keygate_process(app: &TestApp, dir: &std::path::Path, slow: bool) -> ServerProcess {
    let mut command = app.serve_command(dir);
    if slow {
        command.env("KEYGATE_WEBHOOKS__POLL_INTERVAL_MS", "3600000");
    }
    ServerProcess::start(&mut command)
}

/// The event is written with the change: a keygate killed (SIGKILL) before sending it loses
/// nothing, and the next one to start sends it.
async fn a_killed_keygate_loses_no_event(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        // This in-process instance must not send it either.
        settings.webhooks.poll_interval_ms = 3_600_000;
    })
    .await;
    let manager = manager(&app);
    let hook = receiver(0, Duration::ZERO).await;
    let (_, secret) = endpoint(&app, &manager, &hook.url, json!(["api_key.revoked"])).await;
    let key = app.create_key(&["invoices:read"]);

    let dir = tempfile::tempdir().unwrap();
    let doomed = keygate_process(&app, dir.path(), true);
    let revoked = app
        .client
        .post(format!(
            "{}/v1/api-keys/{}/revoke",
            doomed.address, key.client_id
        ))
        .bearer_auth(&manager.client_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    doomed.kill();
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.got().is_empty(), "sent before the kill");

    let next = keygate_process(&app, dir.path(), false);
    let delivered = until_delivered(&hook, 1, 15).await;
    assert_eq!(delivered[0].json()["type"], "api_key.revoked");
    assert_eq!(
        delivered[0].json()["data"]["api_key"]["client_id"],
        key.client_id.as_str()
    );
    assert!(verify(&secret, &delivered[0]));
    next.kill();
}

/// Two instances on one database share the queue: each delivery goes out once.
async fn two_instances_send_each_delivery_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = app.spawn_sibling().await;
    let manager = manager(&app);
    let hooks = [
        receiver(0, Duration::ZERO).await,
        receiver(0, Duration::ZERO).await,
    ];
    for hook in &hooks {
        endpoint(&app, &manager, &hook.url, json!(["api_key.created"])).await;
    }
    let mut made = Vec::new();
    for i in 0..12 {
        let on = if i % 2 == 0 { &app } else { &sibling };
        let created = call(
            on,
            &manager,
            Method::POST,
            "/v1/api-keys",
            Some(json!({ "name": format!("key {i}"), "scopes": ["invoices:read"] })),
        )
        .await
        .expect(201);
        made.push(created["client_id"].as_str().unwrap().to_owned());
    }
    for hook in &hooks {
        until_delivered(hook, made.len(), 20).await;
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        let got = hook.got();
        let order: Vec<String> = got
            .iter()
            .map(|r| {
                r.json()["data"]["api_key"]["client_id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(order, made, "each once, in order");
    }
}

/// Runs a documented verifier (`python3` or `node`) on a delivery: whether it accepted it.
fn run_documented(program: &str, secret: &str, received: &Received) -> Option<bool> {
    let (snippet, driver) = match program {
        "python3" => (
            include_str!("../../docs/snippets/verify_webhook.py"),
            "import os, sys\nE = os.environ\nsys.exit(0 if verify(E['S'], E['I'], E['T'], E['G'], sys.stdin.buffer.read()) else 1)\n",
        ),
        _ => (
            include_str!("../../docs/snippets/verify_webhook.js"),
            "const E = process.env;\nprocess.exit(verify(E.S, E.I, E.T, E.G, require('node:fs').readFileSync(0)) ? 0 : 1);\n",
        ),
    };
    let flag = if program == "python3" { "-c" } else { "-e" };
    // Guarded: should writing its input panic, the verifier is killed rather than left running.
    let mut child = ChildGuard::try_spawn(
        std::process::Command::new(program)
            .args([flag, &format!("{snippet}\n{driver}")])
            .env("S", secret)
            .env("I", &received.id)
            .env("T", &received.timestamp)
            .env("G", &received.signature)
            .stdin(std::process::Stdio::piped()),
    )
    .ok()?;
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(received.body.as_bytes())
        .unwrap();
    Some(child.wait().unwrap().success())
}

/// The verifiers docs/webhooks.md shows, in Rust, Python and Node, accept a real delivery and
/// refuse it tampered with or replayed late.
async fn the_documented_verifiers_accept_real_deliveries(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = manager(&app);
    let hook = receiver(0, Duration::ZERO).await;
    let (id, secret) = endpoint(&app, &manager, &hook.url, json!(["*"])).await;
    call(
        &app,
        &manager,
        Method::POST,
        &format!("/v1/webhook-endpoints/{id}/test"),
        None,
    )
    .await
    .expect(202);
    let real = until_delivered(&hook, 1, 10).await.remove(0);
    let mut tampered = real.clone();
    tampered.body = tampered
        .body
        .replace("webhook_endpoint.test", "api_key.created");
    let mut late = real.clone();
    late.timestamp = (chrono::Utc::now().timestamp() - 301).to_string();

    let rust = |r: &Received| {
        documented_rust::verify(
            &secret,
            &r.id,
            &r.timestamp,
            &r.signature,
            r.body.as_bytes(),
        )
    };
    assert!(rust(&real));
    assert!(!rust(&tampered) && !rust(&late));
    for program in ["python3", "node"] {
        let Some(accepted) = run_documented(program, &secret, &real) else {
            eprintln!("NOTE: {program} is not installed: its documented verifier was not run");
            continue;
        };
        assert!(accepted, "{program} refused a real delivery");
        assert_eq!(
            run_documented(program, &secret, &tampered),
            Some(false),
            "{program}"
        );
        assert_eq!(
            run_documented(program, &secret, &late),
            Some(false),
            "{program}"
        );
    }
    // The document shows the very code run here.
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/webhooks.md")).unwrap();
    for snippet in [
        include_str!("../../docs/snippets/verify_webhook.rs"),
        include_str!("../../docs/snippets/verify_webhook.py"),
        include_str!("../../docs/snippets/verify_webhook.js"),
    ] {
        assert!(
            doc.contains(snippet.trim_end()),
            "docs/webhooks.md lacks:\n{snippet}"
        );
    }
}

/// Keys about to expire, expired keys and rotated-out secrets whose grace ended are announced
/// once each, though two instances look.
async fn scheduled_events_are_produced_once_by_two_instances(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = app.spawn_sibling().await;
    let manager = manager(&app);
    let hook = receiver(0, Duration::ZERO).await;
    let scheduled = json!([
        "api_key.expiring",
        "api_key.expired",
        "api_key.secret_expired"
    ]);
    let (_, secret) = endpoint(&app, &manager, &hook.url, scheduled).await;

    let soon = app.create_key_with(&["invoices:read"], &["--expires-in-days", "3"]);
    let past = (chrono::Utc::now() - chrono::Duration::seconds(60))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let gone = app.create_key(&["invoices:read"]);
    app.run_sql(&format!(
        "UPDATE api_keys SET expires_at = '{past}' WHERE client_id = '{}'",
        gone.client_id
    ));
    let rotated = app.create_key(&["invoices:read"]);
    let out = app.cli(&["api-keys", "rotate", &rotated.client_id, "--grace", "24h"]);
    assert!(out.status.success());
    app.run_sql(&format!(
        "UPDATE api_key_secrets SET expires_at = '{past}' WHERE expires_at IS NOT NULL \
         AND api_key_id = (SELECT id FROM api_keys WHERE client_id = '{}')",
        rotated.client_id
    ));

    until_delivered(&hook, 3, 15).await;
    // Both instances keep looking; nothing is announced twice.
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    let delivered = hook.delivered();
    let mut seen: Vec<(String, String)> = delivered
        .iter()
        .map(|r| {
            let event = r.json();
            (
                event["type"].as_str().unwrap().to_owned(),
                event["data"]["api_key"]["client_id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        ("api_key.expired".to_owned(), gone.client_id.clone()),
        ("api_key.expiring".to_owned(), soon.client_id.clone()),
        (
            "api_key.secret_expired".to_owned(),
            rotated.client_id.clone(),
        ),
    ];
    expected.sort();
    assert_eq!(seen, expected, "{delivered:?}");
    assert!(delivered.iter().all(|r| verify(&secret, r)));
    let ended = delivered
        .iter()
        .map(Received::json)
        .find(|e| e["type"] == "api_key.secret_expired")
        .unwrap();
    assert!(
        ended["data"]["secret"]["prefix"]
            .as_str()
            .unwrap()
            .starts_with("kgs_live_")
    );
    drop(sibling);
}

/// `keygate webhooks` does what the API does, on the same database: the running server sends
/// what the CLI queued.
async fn the_cli_manages_endpoints(backend: Backend) {
    let app = spawn_app(backend).await;
    let hook = receiver(0, Duration::ZERO).await;
    let cli = |args: &[&str]| {
        let out = app.cli(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let created: Value = serde_json::from_str(&cli(&[
        "webhooks",
        "create",
        "--url",
        &hook.url,
        "--events",
        "api_key.created,api_key.revoked",
        "--json",
    ]))
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        created["events"],
        json!(["api_key.created", "api_key.revoked"])
    );
    let listed: Value = serde_json::from_str(&cli(&["webhooks", "list", "--json"])).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&secret));

    cli(&["webhooks", "test", &id]);
    let delivered = until_delivered(&hook, 1, 10).await;
    assert!(verify(&secret, &delivered[0]));
    // The receiver's answer is recorded a moment after it is sent.
    let recorded = eventually(5, || async {
        let deliveries: Value =
            serde_json::from_str(&cli(&["webhooks", "deliveries", &id, "--json"])).unwrap();
        deliveries[0]["status"] == "succeeded"
    })
    .await;
    assert!(recorded, "the delivery was not recorded as succeeded");
    let deliveries: Value =
        serde_json::from_str(&cli(&["webhooks", "deliveries", &id, "--json"])).unwrap();
    assert_eq!(deliveries[0]["event_type"], "webhook_endpoint.test");

    let rolled = cli(&["webhooks", "roll-secret", &id, "--grace", "1h"]);
    assert!(rolled.starts_with("secret: whsec_"), "{rolled}");
    let disabled: Value =
        serde_json::from_str(&cli(&["webhooks", "update", &id, "--disable"])).unwrap();
    assert_eq!(disabled["status"], "disabled");
    cli(&["webhooks", "delete", &id]);
    let gone = app.cli(&["webhooks", "test", &id]);
    assert_eq!(gone.status.code(), Some(2));
    let refused = app.cli(&["webhooks", "create", "--url", "ftp://example.com/"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("url"));
}

/// A receiver that keeps failing gets its endpoint disabled after the configured run of
/// failures, in the audit trail; enabling it again sends what waited.
async fn an_endpoint_that_keeps_failing_is_disabled_and_audited(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.webhooks.failure_threshold = 3;
    })
    .await;
    let manager = manager(&app);
    let hook = receiver(3, Duration::ZERO).await;
    let (id, _) = endpoint(&app, &manager, &hook.url, json!(["*"])).await;
    let path = format!("/v1/webhook-endpoints/{id}");
    call(&app, &manager, Method::POST, &format!("{path}/test"), None)
        .await
        .expect(202);
    let disabled = eventually(10, || async {
        let shown = call(&app, &manager, Method::GET, &path, None)
            .await
            .expect(200);
        shown["status"] == "disabled"
    })
    .await;
    assert!(disabled, "the failing endpoint was not disabled");
    let shown = call(&app, &manager, Method::GET, &path, None)
        .await
        .expect(200);
    assert!(shown["failing_since"].is_string(), "{shown}");
    assert_eq!(shown["consecutive_failures"], 3);
    assert_eq!(hook.got().len(), 3);
    let auditor = app.create_key(&["audit:read"]);
    let events = crate::helpers::audit_events(
        &app,
        &app.token_for(&auditor).await,
        "action=webhook_endpoint.disabled",
    )
    .await;
    assert_eq!(events["data"][0]["target"], id.as_str(), "{events}");
    assert_eq!(events["data"][0]["actor"], "system");

    // Enabled again: the waiting test event goes out (the receiver answers now).
    call(
        &app,
        &manager,
        Method::PATCH,
        &path,
        Some(json!({ "status": "enabled" })),
    )
    .await
    .expect(200);
    let delivered = until_delivered(&hook, 1, 10).await;
    assert_eq!(delivered[0].json()["type"], "webhook_endpoint.test");
    let shown = call(&app, &manager, Method::GET, &path, None)
        .await
        .expect(200);
    assert!(shown["failing_since"].is_null());
}

/// Housekeeping deletes events older than `webhooks.retention_days` with their deliveries and
/// attempts, but keeps one whose delivery is still pending, and every recent one.
async fn old_finished_events_are_deleted_and_pending_ones_kept(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.feed.housekeeping_interval_seconds = 1;
        // The failing receiver's delivery stays pending, its next attempt an hour away.
        settings.webhooks.first_retry_ms = 3_600_000;
    })
    .await;
    let manager = manager(&app);
    let hook = receiver(0, Duration::ZERO).await;
    let failing = receiver(usize::MAX, Duration::ZERO).await;
    let (good, _) = endpoint(&app, &manager, &hook.url, json!(["*"])).await;
    let (bad, _) = endpoint(&app, &manager, &failing.url, json!(["*"])).await;
    let test = |id: String| {
        let (app, manager) = (&app, &manager);
        async move {
            let path = format!("/v1/webhook-endpoints/{id}/test");
            call(app, manager, Method::POST, &path, None)
                .await
                .expect(202)["delivery_id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let delivery = |id: String| {
        let (app, manager) = (&app, &manager);
        async move {
            let path = format!("/v1/webhook-deliveries/{id}");
            call(app, manager, Method::GET, &path, None).await
        }
    };
    let old_good = test(good.clone()).await;
    until_delivered(&hook, 1, 10).await;
    let old_bad = test(bad.clone()).await;
    let attempted = eventually(10, || async {
        delivery(old_bad.clone()).await.expect(200)["attempts"] == 1
    })
    .await;
    assert!(attempted, "the failing receiver was never tried");
    let old_good_event = delivery(old_good.clone()).await.expect(200)["event_id"].clone();
    let old_bad_event = delivery(old_bad.clone()).await.expect(200)["event_id"].clone();

    app.run_sql("UPDATE webhook_events SET created_at = '2000-01-01 00:00:00'");
    let recent = test(good.clone()).await;
    until_delivered(&hook, 2, 10).await;

    let pruned = eventually(10, || async {
        delivery(old_good.clone()).await.status == 404
    })
    .await;
    assert!(pruned, "the old delivered event was kept");
    let events = call(&app, &manager, Method::GET, "/v1/events", None)
        .await
        .expect(200);
    let listed: Vec<&Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert!(!listed.contains(&&old_good_event), "{listed:?}");
    assert!(
        listed.contains(&&old_bad_event),
        "a pending event went: {listed:?}"
    );
    let kept = delivery(old_bad).await.expect(200);
    assert_eq!(kept["status"], "pending");
    assert_eq!(kept["attempt_log"].as_array().unwrap().len(), 1, "{kept}");
    assert_eq!(delivery(recent).await.expect(200)["status"], "succeeded");
    let path = format!("/v1/webhook-endpoints/{good}/deliveries");
    let history = call(&app, &manager, Method::GET, &path, None)
        .await
        .expect(200);
    assert_eq!(history["data"].as_array().unwrap().len(), 1, "{history}");
}

backend_tests!(
    old_finished_events_are_deleted_and_pending_ones_kept,
    an_endpoint_that_keeps_failing_is_disabled_and_audited,
    the_cli_manages_endpoints,
    scheduled_events_are_produced_once_by_two_instances,
    the_documented_verifiers_accept_real_deliveries,
    a_killed_keygate_loses_no_event,
    two_instances_send_each_delivery_once,
    every_key_event_arrives_once_signed_and_in_order,
    a_failing_receiver_gets_everything_afterwards_in_order,
    a_hanging_receiver_does_not_delay_another_endpoint,
    private_addresses_are_refused_unless_allowed,
    endpoints_are_managed_through_the_api,
);
