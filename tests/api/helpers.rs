//! `spawn_app()`, and the helpers the test modules share: the command line, sessions and
//! tokens, [`Reply`] (a response read once), and the assertions on the documented formats.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use keygate::Settings;
use keygate::tokens::MasterKey;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};

/// The PostgreSQL server for the `postgres` variants of the tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`. Unset: those variants are skipped.
pub const POSTGRES_URL_VAR: &str = "KEYGATE_TEST_POSTGRES_URL";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The PostgreSQL backend; its tests are `#[ignore]`d at build time unless the variable is
    /// set (build.rs), so reaching here without it means `--include-ignored` was asked for.
    pub fn postgres() -> Backend {
        assert!(
            std::env::var_os(POSTGRES_URL_VAR).is_some(),
            "set {POSTGRES_URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run the PostgreSQL variants"
        );
        Backend::Postgres
    }
}

/// Declares each listed `async fn name(backend: Backend)` as a test per backend:
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[cfg_attr(not(keygate_postgres_tests), ignore = "set KEYGATE_TEST_POSTGRES_URL to run the PostgreSQL variant")]
                async fn $name() {
                    super::$name($crate::helpers::Backend::postgres()).await
                }
            )+
        }
    };
}

/// A fresh database: a SQLite file in a temporary directory, or a PostgreSQL schema that is
/// dropped when the test ends.
pub enum TestDatabase {
    Sqlite {
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        admin_url: String,
        schema: String,
        url: String,
    },
}

impl TestDatabase {
    pub fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = dir.path().join("keygate.db").to_string_lossy().into_owned();
                TestDatabase::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => {
                let admin_url =
                    std::env::var(POSTGRES_URL_VAR).expect("checked by Backend::postgres");
                let schema = format!("kgtest_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin_url).expect("PostgreSQL reachable");
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create schema");
                let separator = if admin_url.contains('?') { '&' } else { '?' };
                let url = format!("{admin_url}{separator}options=-csearch_path%3D{schema}");
                TestDatabase::Postgres {
                    admin_url,
                    schema,
                    url,
                }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDatabase::Sqlite { url, .. } | TestDatabase::Postgres { url, .. } => url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres {
            admin_url, schema, ..
        } = self
            && let Ok(mut conn) = PgConnection::establish(admin_url)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub settings: Settings,
    pub master_key: String,
    pub backend: Backend,
    /// Shared with sibling instances (`spawn_sibling`); dropped with the last of them.
    pub db: std::sync::Arc<TestDatabase>,
}

/// An API key as its owner sees it after `api-keys create`.
#[derive(Clone, Debug)]
pub struct TestKey {
    pub client_id: String,
    pub client_secret: String,
}

pub fn test_settings(db: &TestDatabase, master_key: &str) -> Settings {
    let mut settings = Settings::for_tests();
    settings.server.bind = "127.0.0.1:0".into();
    settings.database.url = db.url().parse().unwrap();
    settings.master_key = Some(master_key.to_owned().into());
    settings
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts keygate with the test profile, adjusted by `customize`.
pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut Settings)) -> TestApp {
    let db = std::sync::Arc::new(TestDatabase::create(backend));
    spawn_app_on(db, customize).await
}

/// Starts keygate with the test profile on a database the test made (a SQLite file on a
/// small disk, a PostgreSQL schema reached through a proxy), adjusted by `customize`.
pub async fn spawn_app_on(
    db: std::sync::Arc<TestDatabase>,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let backend = match *db {
        TestDatabase::Sqlite { .. } => Backend::Sqlite,
        TestDatabase::Postgres { .. } => Backend::Postgres,
    };
    let master_key = MasterKey::generate_encoded();
    start(backend, db, master_key, customize).await
}

async fn start(
    backend: Backend,
    db: std::sync::Arc<TestDatabase>,
    master_key: String,
    customize: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(&db, &master_key);
    customize(&mut settings);
    let app = keygate::Application::build(settings.clone())
        .await
        .expect("keygate starts");
    let port = app.port();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        settings,
        master_key,
        backend,
        db,
    }
}

impl TestApp {
    /// Another keygate instance on the same database, master key and issuer, as behind a
    /// load balancer.
    pub async fn spawn_sibling(&self) -> TestApp {
        let issuer = self.address.clone();
        let same_issuer = |s: &mut Settings| s.tokens.issuer = issuer;
        start(
            self.backend,
            self.db.clone(),
            self.master_key.clone(),
            same_issuer,
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Runs the real `keygate` binary against this app's database.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_command(args)
            .output()
            .expect("the keygate binary runs")
    }

    /// The `keygate` command [`TestApp::cli`] runs.
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = keygate_command();
        command
            .args(["--profile", "test", "--database", self.db.url()])
            .args(args)
            .env("KEYGATE_MASTER_KEY", &self.master_key)
            .env("RUST_LOG", "warn");
        command
    }

    /// `keygate serve` on this app's database and master key, as a process of its own that
    /// binds a port of its choosing (for [`ServerProcess::start`]), run in `dir`.
    pub fn serve_command(&self, dir: &std::path::Path) -> Command {
        self.serve_command_on(dir, "127.0.0.1:0")
    }

    /// [`TestApp::serve_command`] bound to `bind` (to come back on the port it had).
    pub fn serve_command_on(&self, dir: &std::path::Path, bind: &str) -> Command {
        let mut command = keygate_command();
        command
            .current_dir(dir)
            .args([
                "--profile",
                "test",
                "--database",
                self.db.url(),
                "serve",
                "--bind",
                bind,
            ])
            .env("KEYGATE_MASTER_KEY", &self.master_key)
            .env("RUST_LOG", "warn,keygate::startup=info");
        command
    }

    /// `keygate api-keys create --json` with these scopes (and any extra arguments).
    pub fn create_key_with(&self, scopes: &[&str], extra: &[&str]) -> TestKey {
        created_key(&mut self.create_key_command(scopes, extra))
    }

    pub fn create_key(&self, scopes: &[&str]) -> TestKey {
        self.create_key_with(scopes, &[])
    }

    /// A key whose secret is stored at bcrypt `cost` (the test profile's is 4): at a
    /// production cost a check takes long enough for a crowd of requests to arrive meanwhile.
    pub fn create_key_at_cost(&self, scopes: &[&str], cost: u32) -> TestKey {
        created_key(
            self.create_key_command(scopes, &[])
                .env("KEYGATE_SECRETS__BCRYPT_COST", cost.to_string()),
        )
    }

    /// The `keygate api-keys create --json` command [`TestApp::create_key_with`] runs.
    fn create_key_command(&self, scopes: &[&str], extra: &[&str]) -> Command {
        let scopes = scopes.join(",");
        let mut args = vec![
            "api-keys", "create", "--name", "test key", "--scopes", &scopes, "--json",
        ];
        args.extend_from_slice(extra);
        self.cli_command(&args)
    }

    pub async fn post_token_json(&self, body: Value) -> Response {
        self.client
            .post(self.url("/v1/token"))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// A form-encoded token request, with HTTP Basic credentials when given.
    pub async fn post_token_form(&self, body: &str, basic: Option<(&str, &str)>) -> Response {
        let mut request = self
            .client
            .post(self.url("/v1/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        request.send().await.expect("request sent")
    }

    /// A token for `key` (all of its scopes).
    pub async fn token_for(&self, key: &TestKey) -> String {
        self.token_with_scope(key, None).await
    }

    pub async fn token_with_scope(&self, key: &TestKey, scope: Option<&str>) -> String {
        let mut body = json!({ "client_id": key.client_id, "client_secret": key.client_secret });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        let response = self.post_token_json(body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get_with_token(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    /// Runs SQL on this app's database: setting up what the API cannot (an expired key,
    /// a broken table).
    pub fn run_sql(&self, sql: &str) {
        let pool = keygate::db::connect(&self.settings.database).unwrap();
        pool.get().unwrap().batch_execute(sql).unwrap();
    }

    /// The active signing key's id and private key (PKCS#8, or the HMAC secret), read from the
    /// database with the master key: lets attack tests forge tokens that only a wrong claim
    /// makes invalid.
    pub fn active_signing_key(&self) -> (String, String, Vec<u8>) {
        use diesel::prelude::*;
        use keygate::db::schema::signing_keys::dsl as sk;
        let pool = keygate::db::connect(&self.settings.database).unwrap();
        let mut conn = pool.get().unwrap();
        let (kid, algorithm, sealed): (String, String, String) = sk::signing_keys
            .filter(sk::status.eq("active"))
            .select((sk::kid, sk::algorithm, sk::private_key))
            .first(&mut conn)
            .unwrap();
        let master = MasterKey::parse(&self.master_key).unwrap();
        let private = master.open(&kid, &sealed).unwrap();
        (kid, algorithm, private)
    }
}

/// Runs an `api-keys create --json` command; the key it printed.
fn created_key(command: &mut Command) -> TestKey {
    let out = command.output().expect("the keygate binary runs");
    assert!(
        out.status.success(),
        "api-keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    TestKey {
        client_id: created["client_id"].as_str().unwrap().to_owned(),
        client_secret: created["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// Asserts an RFC 6749 error response: status, `error`, JSON, and no caching.
pub async fn assert_oauth_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    assert_eq!(
        headers.get("pragma").map(|v| v.to_str().unwrap()),
        Some("no-cache")
    );
    assert!(
        headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "error bodies are JSON"
    );
    let body: Value = response.json().await.expect("a JSON error body");
    assert_eq!(body["error"], code, "{body}");
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        description.bytes().all(|b| b == 0x20
            || b == 0x21
            || (0x23..=0x5B).contains(&b)
            || (0x5D..=0x7E).contains(&b)),
        "RFC 6749 5.2 characters only: {description:?}"
    );
    body
}

/// Polls `check` until it holds or `seconds` pass.
pub async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Users, sessions, and requests as a token or a session.
// ---------------------------------------------------------------------------------------------

/// A console user made with `keygate users create`.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub password: String,
}

/// A logged-in console session: the cookie and the CSRF token.
#[derive(Clone, Debug)]
pub struct TestSession {
    pub cookie: String,
    pub csrf: String,
}

impl TestApp {
    /// `keygate users create --json` with these extra arguments (`--admin`, `--org`,
    /// `--permissions a,b`).
    pub fn create_user(&self, email: &str, extra: &[&str]) -> TestUser {
        let mut args = vec!["users", "create", "--email", email, "--json"];
        args.extend_from_slice(extra);
        let out = self.cli(&args);
        assert!(
            out.status.success(),
            "users create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let created: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        TestUser {
            id: created["id"].as_str().unwrap().to_owned(),
            email: created["email"].as_str().unwrap().to_owned(),
            password: created["password"].as_str().unwrap().to_owned(),
        }
    }

    /// A token of a key owned by `owner` (by email) holding `scopes`: the management API's
    /// bearer credentials.
    pub async fn token_as(&self, owner: &str, scopes: &[&str]) -> String {
        key_and_token(self, owner, scopes).await.1
    }

    pub async fn log_in(&self, email: &str, password: &str) -> TestSession {
        let response = self
            .client
            .post(self.url("/v1/session"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        let cookie = response
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        TestSession {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A request with a bearer token.
    pub fn with_token(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// A request in a console session (cookie and CSRF header).
    pub fn with_session(
        &self,
        method: Method,
        path: &str,
        session: &TestSession,
    ) -> RequestBuilder {
        self.with_cookie(method, path, session)
            .header("x-csrf-token", &session.csrf)
    }

    /// A request carrying only the session cookie (no CSRF header).
    pub fn with_cookie(&self, method: Method, path: &str, session: &TestSession) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("cookie", &session.cookie)
    }

    /// A request as `who`: with its bearer token, or in its console session.
    pub fn request_as(&self, who: &Who, method: Method, path: &str) -> RequestBuilder {
        match who {
            Who::Token(token) => self.with_token(method, path, token),
            Who::Session(session) => self.with_session(method, path, session),
        }
    }
}

/// Who calls the management API: an API key's bearer token, or a console session (which
/// sends its CSRF token). For tests that make the same calls both ways.
#[derive(Clone, Debug)]
pub enum Who {
    Token(String),
    Session(TestSession),
}

// ---------------------------------------------------------------------------------------------
// Responses.
// ---------------------------------------------------------------------------------------------

/// A response read once: status, headers, the body's text, and the body as JSON (`Null` when
/// it is not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub async fn of(response: Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        Reply::new(status, headers, text)
    }

    /// Like [`Reply::of`], but a body that cannot be read counts as empty: for answers to
    /// requests a server may refuse by closing the connection.
    pub async fn of_lossy(response: Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Reply::new(status, headers, text)
    }

    pub async fn send(request: RequestBuilder) -> Reply {
        Reply::of(request.send().await.expect("request sent")).await
    }

    fn new(status: u16, headers: HeaderMap, text: String) -> Reply {
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// The body as JSON; panics when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|_| panic!("a JSON body, got HTTP {}: {:?}", self.status, self.text))
    }

    /// A header's value; panics when it is not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| {
            v.to_str()
                .unwrap_or_else(|_| panic!("the {name} header is not visible ASCII: {v:?}"))
        })
    }

    /// Asserts the status and returns the JSON body.
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "HTTP {}: {}", self.status, self.text);
        self.json()
    }

    /// Asserts the status of a response whose body may be empty.
    pub fn expect_status_only(&self, status: u16) {
        assert_eq!(self.status, status, "HTTP {}: {}", self.status, self.text);
    }

    /// Asserts an error: status and `error` code; returns the body. [`assert_error`] also
    /// holds it to the documented format.
    pub fn expect_error(&self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["error"], code, "{body}");
        body
    }

    /// Asserts a 400 naming `field` (in `field` and in the description).
    pub fn expect_field_error(&self, field: &str) -> Value {
        let body = self.expect_error(400, "invalid_request");
        assert_eq!(body["field"], field, "{body}");
        assert!(
            body["error_description"].as_str().unwrap().contains(field),
            "the description names {field}: {body}"
        );
        body
    }

    /// The `data` of a list answer, which must be 200.
    pub fn rows(&self) -> Vec<Value> {
        assert_eq!(self.status, 200, "{}", self.text);
        self.body["data"].as_array().expect("data").clone()
    }

    /// The `name`s of a list answer's rows, in the order given.
    pub fn names(&self) -> Vec<String> {
        self.rows()
            .iter()
            .map(|row| row["name"].as_str().expect("a name").to_owned())
            .collect()
    }

    /// The row of a list of API keys with this `client_id`.
    pub fn row_of(&self, client_id: &str) -> Option<Value> {
        self.rows()
            .into_iter()
            .find(|row| row["client_id"] == client_id)
    }
}

/// Asserts an error in the documented format: this status, JSON `{"error", "error_description",
/// "field"?}` with this code, and nothing else.
pub fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(
        reply.status, status,
        "expected {status} {code}, got: {}",
        reply.text
    );
    assert!(
        reply
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json")),
        "errors are JSON: {:?}",
        reply.headers
    );
    assert_eq!(reply.body["error"], code, "{}", reply.text);
    assert!(
        reply.body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "a description: {}",
        reply.text
    );
    let object = reply.body.as_object().expect("a JSON object");
    assert!(
        object
            .keys()
            .all(|k| ["error", "error_description", "field"].contains(&k.as_str())),
        "only the documented members: {}",
        reply.text
    );
}

// ---------------------------------------------------------------------------------------------
// Shared by the test modules of the management API and the command line.
// ---------------------------------------------------------------------------------------------

/// The administrator most tests make first.
pub const ADMIN: &str = "admin@example.com";

/// What a command printed on standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command printed on standard error.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the command succeeded.
pub fn assert_cli_ok(out: &Output) {
    assert!(
        out.status.success(),
        "the command failed: {}{}",
        stdout(out),
        stderr(out)
    );
}

/// Asserts the command failed and its error output mentions every one of `words`.
pub fn assert_cli_refused(out: &Output, words: &[&str]) {
    assert!(
        !out.status.success(),
        "the command should have failed: {}",
        stdout(out)
    );
    let err = stderr(out);
    for word in words {
        assert!(err.contains(word), "the error should name {word:?}: {err}");
    }
}

/// Runs the `keygate` binary as `TestApp::cli` does, with `input` on its standard input.
pub fn cli_with_stdin(app: &TestApp, args: &[&str], input: &str) -> Output {
    let mut child = ChildGuard::spawn(
        app.cli_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output()
}

/// `keygate organizations create NAME`.
pub fn create_organization(app: &TestApp, name: &str) {
    assert_cli_ok(&app.cli(&["organizations", "create", name]));
}

/// `POST /v1/session` without asserting anything.
pub async fn login(app: &TestApp, email: &str, password: &str) -> Reply {
    Reply::send(
        app.client
            .post(app.url("/v1/session"))
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

/// `POST /v1/token` with the key's credentials in a JSON body, unchecked.
pub async fn token_response(app: &TestApp, key: &TestKey) -> Response {
    app.post_token_json(json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
        .await
}

/// [`token_response`], read.
pub async fn token_reply(app: &TestApp, key: &TestKey) -> Reply {
    Reply::of(token_response(app, key).await).await
}

/// `GET /v1/me` status with this token.
pub async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get_with_token("/v1/me", token).await.status().as_u16()
}

/// A key owned by `owner` with `scopes`, and a token for it.
pub async fn key_and_token(app: &TestApp, owner: &str, scopes: &[&str]) -> (TestKey, String) {
    let key = app.create_key_with(scopes, &["--owner", owner]);
    let token = app.token_for(&key).await;
    (key, token)
}

/// The claims of a compact JWS.
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `token` re-signed with the server's active key after `change` edits its claims: a token
/// that only the edited claims can make unacceptable.
pub fn resign(app: &TestApp, token: &str, change: impl FnOnce(&mut Value)) -> String {
    let (kid, algorithm, pkcs8) = app.active_signing_key();
    assert_eq!(algorithm, "ES256", "the test profile signs with ES256");
    let header = token.split('.').next().unwrap();
    let decoded: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(decoded["kid"], kid.as_str(), "signed by the active key");
    let mut claims = claims_of(token);
    change(&mut claims);
    let input = format!(
        "{header}.{}",
        URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
    );
    let signer = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).unwrap();
    let signature = signer.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// A `jti` no token has.
/// The secret with its last character changed: a typo that always differs from the original
/// (replacing it with a fixed letter would leave it unchanged when it already ends in that letter).
pub fn mistyped(secret: &str) -> String {
    let (head, last) = secret.split_at(secret.len() - 1);
    let replacement = if last == "x" { "y" } else { "x" };
    format!("{head}{replacement}")
}

pub fn fresh_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `application/x-www-form-urlencoded` pairs.
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// How a client authenticates at `/v1/introspect` and `/v1/revoke`.
#[derive(Clone, Copy, Debug)]
pub enum ClientAuth<'a> {
    Basic(&'a TestKey),
    Form(&'a TestKey),
    Bearer(&'a str),
    Nothing,
}

/// A form `POST` to `path` (`/v1/introspect`, `/v1/revoke`) authenticated as `auth`.
pub async fn post_form(
    app: &TestApp,
    path: &str,
    auth: ClientAuth<'_>,
    params: &[(&str, &str)],
    user_agent: Option<&str>,
) -> Reply {
    let mut pairs: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded");
    match auth {
        ClientAuth::Basic(key) => {
            request = request.basic_auth(&key.client_id, Some(&key.client_secret));
        }
        ClientAuth::Form(key) => {
            pairs.push(("client_id".into(), key.client_id.clone()));
            pairs.push(("client_secret".into(), key.client_secret.clone()));
        }
        ClientAuth::Bearer(token) => request = request.bearer_auth(token),
        ClientAuth::Nothing => {}
    }
    if let Some(agent) = user_agent {
        request = request.header("user-agent", agent);
    }
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Reply::send(request.body(form(&borrowed))).await
}

pub async fn introspect(app: &TestApp, auth: ClientAuth<'_>, token: &str) -> Reply {
    post_form(app, "/v1/introspect", auth, &[("token", token)], None).await
}

pub async fn revoke(app: &TestApp, auth: ClientAuth<'_>, token: &str) -> Reply {
    post_form(app, "/v1/revoke", auth, &[("token", token)], None).await
}

/// Asserts `Cache-Control: no-store`.
pub fn assert_no_store(reply: &Reply) {
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "Cache-Control: no-store on HTTP {}",
        reply.status
    );
}

/// `GET /v1/audit-events?query` with a token holding `audit:read`.
pub async fn audit_events(app: &TestApp, token: &str, query: &str) -> Value {
    let path = if query.is_empty() {
        "/v1/audit-events".to_owned()
    } else {
        format!("/v1/audit-events?{query}")
    };
    Reply::send(app.with_token(Method::GET, &path, token))
        .await
        .expect(200)
}

/// A query string.
pub fn query(pairs: &[(&str, &str)]) -> String {
    form(pairs)
}

/// `POST /v1/users` with a token, answering the created user (and the generated password).
pub async fn create_user_via_token(app: &TestApp, token: &str, body: Value) -> Value {
    Reply::send(app.with_token(Method::POST, "/v1/users", token).json(&body))
        .await
        .expect(201)
}

/// The emails of a page of users.
pub fn emails_in(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

/// A JSON array of strings.
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Child processes: the `keygate` binary, run by a test.
// ---------------------------------------------------------------------------------------------

/// The `keygate` binary, with none of the test process's own configuration: no inherited
/// `KEYGATE_*` variable, `DATABASE_URL` or `RUST_LOG` reaches it, only what the test sets.
pub fn keygate_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keygate"));
    for (name, _) in std::env::vars_os() {
        let inherited = name.to_string_lossy();
        if inherited.starts_with("KEYGATE_")
            || inherited == "DATABASE_URL"
            || inherited == "RUST_LOG"
        {
            command.env_remove(&name);
        }
    }
    command
}

/// The example program `name` (examples/NAME.rs), as `cargo test` built it.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    let tests = std::env::current_exe().unwrap();
    let example = tests
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .unwrap();
    assert!(
        example.exists(),
        "`cargo test` builds the examples: {} is missing",
        example.display()
    );
    example
}

/// A child process that is killed and reaped when the guard is dropped, so that a test that
/// fails (panics) before its own `kill`/`wait` does not leave it running.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn spawn(command: &mut Command) -> ChildGuard {
        ChildGuard::try_spawn(command).expect("the child process starts")
    }

    /// For a program the machine may lack: the error says why it did not start.
    pub fn try_spawn(command: &mut Command) -> std::io::Result<ChildGuard> {
        command.spawn().map(|child| ChildGuard(Some(child)))
    }

    /// Closes the child's standard input and collects its exit status and output.
    pub fn wait_with_output(mut self) -> Output {
        let child = self.0.take().expect("a child");
        child.wait_with_output().expect("the child's output")
    }
}

impl Deref for ChildGuard {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a child")
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // A child already waited for is not signalled again (std remembers its status).
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `keygate` logs once it is bound; the address follows.
const LISTENING: &str = "keygate listening on http://";

/// The `keygate` binary serving on a port of its own choosing: the test configures it to bind
/// 127.0.0.1:0 and reads the address from its log, so no other test can take the port between
/// the choice and the bind (as with a port found free and released first). Everything it
/// logs, on either stream, is kept; it is killed when dropped.
pub struct ServerProcess {
    child: ChildGuard,
    /// `http://127.0.0.1:PORT`
    pub address: String,
    log: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl ServerProcess {
    /// Starts `command`, which must make keygate bind 127.0.0.1:0 and log `keygate::startup`
    /// at `info`, and waits for the address it listens on.
    pub fn start(command: &mut Command) -> ServerProcess {
        ServerProcess::start_announced(command, LISTENING)
    }

    /// Starts a server process that prints `announcement` followed by its address once bound
    /// (`keygate listening on http://` for keygate), and waits for the address.
    pub fn start_announced(command: &mut Command, announcement: &'static str) -> ServerProcess {
        // The test talks to it with reqwest, built without a default TLS crypto provider: in a
        // test that starts no in-process keygate (which installs one), nothing else would.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut child = ChildGuard::spawn(command.stdout(Stdio::piped()).stderr(Stdio::piped()));
        let log = Arc::new(Mutex::new(String::new()));
        let (bound, address) = mpsc::channel();
        let streams: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        let readers = streams
            .into_iter()
            .map(|stream| {
                let (log, bound) = (log.clone(), bound.clone());
                std::thread::spawn(move || {
                    let mut stream = BufReader::new(stream);
                    let mut line = Vec::new();
                    while stream.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                        let text = String::from_utf8_lossy(&line);
                        if let Some((_, rest)) = text.split_once(announcement) {
                            let address = rest.split_whitespace().next().unwrap_or_default();
                            let _ = bound.send(format!("http://{address}"));
                        }
                        log.lock().unwrap().push_str(&text);
                        line.clear();
                    }
                })
            })
            .collect();
        drop(bound);
        let mut server = ServerProcess {
            child,
            address: String::new(),
            log,
            readers,
        };
        match address.recv_timeout(Duration::from_secs(30)) {
            Ok(address) => ServerProcess { address, ..server },
            Err(_) => {
                let status = server.child.try_wait();
                panic!(
                    "the server logged no {announcement}ADDR line (exit status: {status:?}); its log:\n{}",
                    server.log()
                )
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// What it logged so far, both streams, line by line as it came.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends it a signal by name (`HUP`, `TERM`), as `kill -NAME` does.
    pub fn signal(&self, name: &str) {
        let signalled = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(signalled.success(), "kill -{name} failed");
    }

    /// Stops it as an orchestrator does (SIGTERM), and waits for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.child.wait().expect("the server exits")
    }

    /// Waits for it to exit (after [`ServerProcess::signal`]).
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("the server exits")
    }

    /// Kills it, and answers everything it logged.
    pub fn kill(mut self) -> String {
        self.child.kill().expect("the server is killed");
        self.child.wait().expect("the server exits");
        for reader in std::mem::take(&mut self.readers) {
            reader.join().expect("the log reader");
        }
        self.log()
    }
}
