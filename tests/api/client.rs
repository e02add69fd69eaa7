//! The token client, as an app uses it against a real keygate: one token for many callers at
//! once, renewed once when an API answers 401, `Retry-After` honoured on 503, and `keygate
//! token` for scripts. The client speaks HTTP only, so one storage engine is enough here.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use keygate::client::{ClientError, TokenSource};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{
    ADMIN, Backend, Reply, TestApp, TestKey, eventually, example_binary, keygate_command, spawn_app,
};

/// Runs a process off the test's runtime, which serves the in-process keygate meanwhile.
async fn output_of(mut command: std::process::Command) -> std::process::Output {
    actix_web::rt::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn source_for(app: &TestApp, key: &TestKey) -> TokenSource {
    TokenSource::builder(&app.address)
        .client_id(&key.client_id)
        .client_secret(SecretString::from(key.client_secret.clone()))
        .build()
        .unwrap()
}

/// The scopes keygate sees in a token, or the status it answers.
async fn scopes_of(app: &TestApp, token: &str) -> Result<Value, u16> {
    let reply = Reply::send(app.with_token(Method::GET, "/v1/me/permissions", token)).await;
    match reply.status {
        200 => Ok(reply.body["scopes"].clone()),
        status => Err(status),
    }
}

#[actix_web::test]
async fn one_token_serves_concurrent_callers() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read", "payouts:read"]);
    let reader = app.create_key(&["api_keys:read"]);
    let source = source_for(&app, &key);
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let source = source.clone();
            actix_web::rt::spawn(async move { source.token().await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().secret().to_owned());
    }
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "callers got different tokens"
    );
    assert_eq!(
        scopes_of(&app, &tokens[0]).await,
        Ok(serde_json::json!(["invoices:read", "payouts:read"]))
    );
    // Asked again later, the kept token is handed out: still one grant in all.
    assert_eq!(source.token().await.unwrap().secret(), tokens[0]);
    let usage = format!("/v1/api-keys/{}/usage", key.client_id);
    let counted = eventually(10, || async {
        let summary = Reply::send(app.with_token(Method::GET, &usage, &reader.client_secret))
            .await
            .expect(200);
        summary["totals"]["tokens_issued"] == 1
    })
    .await;
    assert!(counted, "keygate did not count exactly one grant");
    // A narrower scope is asked for when configured.
    let narrow = TokenSource::builder(&app.address)
        .client_id(&key.client_id)
        .client_secret(SecretString::from(key.client_secret.clone()))
        .scope("payouts:read")
        .build()
        .unwrap();
    let token = narrow.token().await.unwrap();
    assert_eq!(token.scope.as_deref(), Some("payouts:read"));
    assert_eq!(
        scopes_of(&app, token.secret()).await,
        Ok(serde_json::json!(["payouts:read"]))
    );
}

#[actix_web::test]
async fn a_wrong_secret_is_refused_without_showing_it() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.create_key(&["invoices:read"]);
    let wrong = TestKey {
        client_id: key.client_id.clone(),
        client_secret: format!("{}x", &key.client_secret[..key.client_secret.len() - 1]),
    };
    let error = source_for(&app, &wrong).token().await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Refused { status: 401, error, .. } if error == "invalid_client"),
        "{error:?}"
    );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(&wrong.client_secret), "{shown}");
}

/// What a test API saw: the bearer token of each request, by path.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    fn of(&self, path: &str) -> Vec<String> {
        let seen = self.0.lock().unwrap();
        seen.iter()
            .filter(|(p, _)| p == path)
            .map(|(_, t)| t.clone())
            .collect()
    }
}

/// An API on the loopback interface: `/invoices` refuses the first token it sees (as an API
/// does once keygate has revoked it) and takes any other; `/broken` refuses every token;
/// `/busy` answers 503 with `Retry-After: 1` once.
async fn test_api() -> (String, Seen) {
    let seen = Seen::default();
    let state = seen.clone();
    let server = HttpServer::new(move || {
        let seen = state.clone();
        App::new().default_service(web::to(move |req: HttpRequest| {
            let seen = seen.clone();
            async move {
                let token = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_owned();
                let path = req.path().to_owned();
                let earlier = seen.of(&path);
                seen.0.lock().unwrap().push((path.clone(), token.clone()));
                match path.as_str() {
                    "/invoices" if earlier.first().is_none_or(|first| first == &token) => {
                        HttpResponse::Unauthorized().finish()
                    }
                    "/broken" => HttpResponse::Unauthorized().finish(),
                    "/busy" if earlier.is_empty() => HttpResponse::ServiceUnavailable()
                        .insert_header(("retry-after", "1"))
                        .finish(),
                    _ => HttpResponse::Ok().body("ok"),
                }
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    (url, seen)
}

#[actix_web::test]
async fn the_middleware_renews_once_on_401_and_waits_on_503() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.create_key(&["invoices:read"]);
    let source = source_for(&app, &key);
    let (api, seen) = test_api().await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(source.clone())
        .build();

    let answered = client.get(format!("{api}/invoices")).send().await.unwrap();
    assert_eq!(answered.status(), 200);
    let sent = seen.of("/invoices");
    assert_eq!(sent.len(), 2, "one renewal, one retry");
    assert_ne!(sent[0], sent[1], "the retry carries a new token");
    for token in &sent {
        assert!(
            scopes_of(&app, token).await.is_ok(),
            "both are keygate's tokens"
        );
    }
    // The renewed token is kept for the next request.
    client.get(format!("{api}/invoices")).send().await.unwrap();
    assert_eq!(seen.of("/invoices")[2], sent[1]);

    // An API that refuses every token gets two tries, not a loop.
    let refused = client.get(format!("{api}/broken")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(seen.of("/broken").len(), 2);

    let started = Instant::now();
    let waited = client.get(format!("{api}/busy")).send().await.unwrap();
    assert_eq!(waited.status(), 200);
    assert_eq!(seen.of("/busy").len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured ({:?})",
        started.elapsed()
    );
}

#[actix_web::test]
async fn keygate_token_prints_a_token_for_scripts() {
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.create_key(&["invoices:read", "payouts:read"]);
    let dir = tempfile::tempdir().unwrap();
    let token_command = |secret: Option<&str>| {
        let mut command = keygate_command();
        command
            .current_dir(dir.path())
            .env("KEYGATE_URL", &app.address)
            .env("KEYGATE_CLIENT_ID", &key.client_id)
            .arg("token");
        if let Some(secret) = secret {
            command.env("KEYGATE_CLIENT_SECRET", secret);
        }
        command
    };

    let mut narrow = token_command(Some(&key.client_secret));
    narrow.args(["--scope", "invoices:read"]);
    let printed = output_of(narrow).await;
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let token = String::from_utf8(printed.stdout).unwrap().trim().to_owned();
    assert_eq!(
        scopes_of(&app, &token).await,
        Ok(serde_json::json!(["invoices:read"]))
    );

    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{}\n", key.client_secret)).unwrap();
    let mut with_file = token_command(None);
    with_file.arg("--secret-file").arg(&file);
    let from_file = output_of(with_file).await;
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    let token = String::from_utf8(from_file.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert!(scopes_of(&app, &token).await.is_ok());

    let wrong = format!("{}x", &key.client_secret[..key.client_secret.len() - 1]);
    let refused = output_of(token_command(Some(&wrong))).await;
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("invalid_client"), "{said}");
    assert!(!said.contains(&wrong), "the secret was echoed: {said}");
    assert!(refused.stdout.is_empty());

    let unset = output_of(token_command(None)).await;
    assert!(!unset.status.success());
    let said = String::from_utf8_lossy(&unset.stderr);
    assert!(said.contains("KEYGATE_CLIENT_SECRET is not set"), "{said}");
}

/// `examples/token_client.rs` (the Rust example of docs/clients.md), as `cargo test` built it,
/// run as its own process against keygate.
#[actix_web::test]
async fn the_rust_example_calls_an_api_with_a_token() {
    let example = example_binary("token_client");
    let app = spawn_app(Backend::Sqlite).await;
    let key = app.create_key(&["invoices:read"]);
    let mut command = std::process::Command::new(&example);
    command
        .env("KEYGATE_URL", &app.address)
        .env("KEYGATE_CLIENT_ID", &key.client_id)
        .env("KEYGATE_CLIENT_SECRET", &key.client_secret);
    let ran = output_of(command).await;
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let printed = String::from_utf8(ran.stdout).unwrap();
    assert!(
        printed.starts_with("200 ") && printed.contains(r#""scopes":["invoices:read"]"#),
        "{printed}"
    );
}
