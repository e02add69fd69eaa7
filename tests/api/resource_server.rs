//! examples/resource_server.rs as an API team runs it: a process of its own that knows only
//! keygate's URL (discovery, JWKS, the revocation stream), against keygate as a process of its
//! own. Scopes are enforced, a revoke reaches it within a second, it keeps validating while
//! keygate is down and catches up when keygate is back, and made-up `kid`s do not make it
//! hammer keygate's JWKS.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, ServerProcess, TestApp, TestKey, eventually, example_binary, spawn_app,
};

const KEYGATE_LISTENING: &str = "keygate listening on http://";
const API_LISTENING: &str = "resource server listening on http://";

/// Starts a server process off the test's runtime, which serves the in-process keygate
/// meanwhile.
async fn start(mut command: Command, announcement: &'static str) -> ServerProcess {
    actix_web::rt::task::spawn_blocking(move || {
        ServerProcess::start_announced(&mut command, announcement)
    })
    .await
    .unwrap()
}

/// The example, configured as its README section says.
fn resource_server(keygate: &str, issuer: Option<&str>, follower: Option<&TestKey>) -> Command {
    let mut command = Command::new(example_binary("resource_server"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("KEYGATE_") {
            command.env_remove(&name);
        }
    }
    command
        .env("KEYGATE_URL", keygate)
        .env("BIND", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    if let Some(issuer) = issuer {
        command.env("KEYGATE_ISSUER", issuer);
    }
    if let Some(key) = follower {
        command
            .env("KEYGATE_CLIENT_ID", &key.client_id)
            .env("KEYGATE_CLIENT_SECRET", &key.client_secret);
    }
    command
}

/// A token from the token endpoint at `keygate` (client_secret_basic).
async fn token_from(keygate: &str, key: &TestKey) -> String {
    let response = reqwest::Client::new()
        .post(format!("{keygate}/v1/token"))
        .basic_auth(&key.client_id, Some(&key.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// The API's answer: status, and the `WWW-Authenticate` header or the JSON body.
async fn call(
    api: &ServerProcess,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .request(method, api.url(path))
        .timeout(Duration::from_secs(5));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.unwrap();
    (status, challenge.unwrap_or(body))
}

/// Calls `method path` with `token` until the API refuses it (401), and says how long that
/// took; fails if it is still accepted after `limit`.
async fn refused_within(
    api: &ServerProcess,
    method: Method,
    path: &str,
    token: &str,
    limit: Duration,
) -> Duration {
    let began = Instant::now();
    loop {
        let (status, said) = call(api, method.clone(), path, Some(token)).await;
        if status == 401 {
            assert!(said.contains("revoked"), "{said}");
            return began.elapsed();
        }
        assert!(status < 300, "{method} {path}: {status} {said}");
        assert!(
            began.elapsed() < limit,
            "{method} {path} still accepted {:?} after the revoke",
            began.elapsed()
        );
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

/// BR-07, RV-06, JWT-18.
async fn the_api_enforces_scopes_and_hears_a_revoke_within_a_second(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let keygate = start(app.serve_command(dir.path()), KEYGATE_LISTENING).await;
    let follower = app.create_key(&["revocations:read"]);
    let reader = app.create_key(&["invoices:read"]);
    let writer = app.create_key(&["payouts:write"]);
    let api = start(
        resource_server(&keygate.address, None, Some(&follower)),
        API_LISTENING,
    )
    .await;

    let reading = token_from(&keygate.address, &reader).await;
    let writing = token_from(&keygate.address, &writer).await;
    let (status, said) = call(&api, Method::GET, "/invoices", None).await;
    assert_eq!((status, said.as_str()), (401, r#"Bearer realm="keygate""#));
    let (status, said) = call(&api, Method::GET, "/invoices", Some(&reading)).await;
    assert_eq!(status, 200, "{said}");
    assert!(said.contains(&reader.client_id), "{said}");
    let (status, said) = call(&api, Method::POST, "/payouts", Some(&reading)).await;
    assert_eq!(status, 403);
    assert!(
        said.contains("insufficient_scope") && said.contains("payouts:write"),
        "{said}"
    );
    let (status, _) = call(&api, Method::POST, "/payouts", Some(&writing)).await;
    assert_eq!(status, 201);

    // One token revoked (RFC 7009) at keygate.
    let revoked = reqwest::Client::new()
        .post(keygate.url("/v1/revoke"))
        .basic_auth(&reader.client_id, Some(&reader.client_secret))
        .form(&[("token", reading.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let token_revoke = refused_within(
        &api,
        Method::GET,
        "/invoices",
        &reading,
        Duration::from_secs(1),
    )
    .await;
    let fresh = token_from(&keygate.address, &reader).await;
    assert_eq!(
        call(&api, Method::GET, "/invoices", Some(&fresh)).await.0,
        200
    );

    // A whole key revoked by an operator.
    assert!(
        app.cli(&["api-keys", "revoke", &writer.client_id])
            .status
            .success()
    );
    let key_revoke = refused_within(
        &api,
        Method::POST,
        "/payouts",
        &writing,
        Duration::from_secs(1),
    )
    .await;
    eprintln!("revoke to refusal: token {token_revoke:?}, key {key_revoke:?}");

    let logged = api.kill();
    assert!(!logged.contains(&follower.client_secret), "{logged}");
    assert!(!logged.contains(&reading), "{logged}");
}

async fn known_keys_keep_validating_while_keygate_is_down_and_revocations_catch_up(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let keygate = start(app.serve_command(dir.path()), KEYGATE_LISTENING).await;
    let follower = app.create_key(&["revocations:read"]);
    let reader = app.create_key(&["invoices:read"]);
    let api = start(
        resource_server(&keygate.address, None, Some(&follower)),
        API_LISTENING,
    )
    .await;
    let seen = token_from(&keygate.address, &reader).await;
    let unseen = token_from(&keygate.address, &reader).await;
    assert_eq!(
        call(&api, Method::GET, "/invoices", Some(&seen)).await.0,
        200
    );

    let bind = keygate.address.trim_start_matches("http://").to_owned();
    keygate.kill();
    // keygate is gone: tokens of the keys in hand keep validating, seen before or not.
    for token in [&seen, &unseen] {
        assert_eq!(
            call(&api, Method::GET, "/invoices", Some(token)).await.0,
            200
        );
    }
    // Revoked while keygate is down (the CLI writes to the database), heard once it is back
    // on the same address: the API resumes the stream from the last event it received.
    assert!(
        app.cli(&["api-keys", "revoke", &reader.client_id])
            .status
            .success()
    );
    assert_eq!(
        call(&api, Method::GET, "/invoices", Some(&seen)).await.0,
        200
    );
    let _keygate = start(app.serve_command_on(dir.path(), &bind), KEYGATE_LISTENING).await;
    // The API tries again after 1, 2, 4, … seconds (at most 30).
    let caught_up = refused_within(
        &api,
        Method::GET,
        "/invoices",
        &unseen,
        Duration::from_secs(40),
    )
    .await;
    eprintln!("refused {caught_up:?} after keygate came back");
    let logged = api.kill();
    assert!(logged.contains("reconnecting"), "{logged}");
}

/// A stand-in for keygate's public address that counts the fetches of the JWKS it passes on
/// from keygate. Its discovery document names keygate's issuer and its own JWKS.
struct CountingMirror {
    address: String,
    jwks_fetches: Arc<AtomicUsize>,
}

async fn counting_mirror(keygate: &TestApp) -> CountingMirror {
    let jwks_fetches = Arc::new(AtomicUsize::new(0));
    let (issuer, counted) = (keygate.address.clone(), jwks_fetches.clone());
    let server = HttpServer::new(move || {
        let issuer = issuer.clone();
        let counted = counted.clone();
        App::new()
            .route(
                "/.well-known/oauth-authorization-server",
                web::get().to({
                    let issuer = issuer.clone();
                    move |req: HttpRequest| {
                        let own = format!("http://{}", req.connection_info().host());
                        let issuer = issuer.clone();
                        async move {
                            HttpResponse::Ok().json(json!({
                                "issuer": issuer,
                                "jwks_uri": format!("{own}/jwks"),
                            }))
                        }
                    }
                }),
            )
            .route(
                "/jwks",
                web::get().to(move || {
                    let (issuer, counted) = (issuer.clone(), counted.clone());
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                        let jwks = reqwest::get(format!("{issuer}/.well-known/jwks.json"))
                            .await
                            .unwrap()
                            .text()
                            .await
                            .unwrap();
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .insert_header(("cache-control", "public, max-age=300"))
                            .body(jwks)
                    }
                }),
            )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    CountingMirror {
        address,
        jwks_fetches,
    }
}

/// `token` with its header's `kid` replaced: a token no key signed.
fn with_made_up_kid(token: &str, kid: &str) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": kid });
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[actix_web::test]
/// JW-08, JWT-04.
async fn made_up_kids_cost_one_jwks_fetch_per_cooldown_and_a_new_key_is_fetched() {
    let app = spawn_app(Backend::Sqlite).await;
    let mirror = counting_mirror(&app).await;
    let began = Instant::now();
    let api = start(
        resource_server(&mirror.address, Some(&app.address), None),
        API_LISTENING,
    )
    .await;
    assert_eq!(mirror.jwks_fetches.load(Ordering::SeqCst), 1);
    let reader = app.create_key(&["invoices:read"]);
    let token = app.token_for(&reader).await;
    assert_eq!(
        call(&api, Method::GET, "/invoices", Some(&token)).await.0,
        200
    );

    // 400 tokens naming keys that do not exist, 20 at a time, over more than one cooldown.
    let flood = Instant::now();
    let mut refused = 0;
    while flood.elapsed() < Duration::from_secs(6) {
        let batch: Vec<_> = (0..20)
            .map(|_| {
                let forged = with_made_up_kid(&token, &uuid::Uuid::new_v4().simple().to_string());
                let api = api.url("/invoices");
                async move {
                    let response = reqwest::Client::new()
                        .get(api)
                        .bearer_auth(forged)
                        .send()
                        .await
                        .unwrap();
                    response.status().as_u16()
                }
            })
            .collect();
        for status in futures_util::future::join_all(batch).await {
            assert_eq!(status, 401);
            refused += 1;
        }
        actix_web::rt::time::sleep(Duration::from_millis(250)).await;
    }

    // A key published after the API read the JWKS: two rotations make a key it never saw
    // the active one, and its first token makes the API fetch the JWKS again.
    for _ in 0..2 {
        assert!(app.cli(&["signing-keys", "rotate"]).status.success());
    }
    let newer = app.token_for(&reader).await;
    let accepted = eventually(10, || async {
        let accepted = call(&api, Method::GET, "/invoices", Some(&newer)).await.0 == 200;
        if !accepted {
            actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        }
        accepted
    })
    .await;
    assert!(accepted, "a token of a new signing key was never accepted");

    let fetches = mirror.jwks_fetches.load(Ordering::SeqCst);
    let cooldowns = began.elapsed().as_secs() / 5 + 1;
    eprintln!(
        "{refused} made-up kids, {fetches} JWKS fetches in {:?}",
        began.elapsed()
    );
    assert!(
        fetches as u64 <= 1 + cooldowns,
        "{fetches} JWKS fetches in {:?} for {refused} made-up kids",
        began.elapsed()
    );
}

backend_tests!(
    the_api_enforces_scopes_and_hears_a_revoke_within_a_second,
    known_keys_keep_validating_while_keygate_is_down_and_revocations_catch_up,
);
