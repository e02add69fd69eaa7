//! Organizations, users and sessions (CLI and `/v1/users`, `/v1/organizations`,
//! `/v1/session`), the audit trail (`/v1/audit-events`), and the RFC 7662 / RFC 7009
//! introspection and revocation endpoints, seen from outside as an operator or a client.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, Reply, TestApp, TestKey, TestSession, assert_oauth_error, eventually, spawn_app,
};

const ADMIN: &str = "admin@example.com";

// ---------------------------------------------------------------------------------------------
// Helpers private to this file.
// ---------------------------------------------------------------------------------------------

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_cli_ok(out: &Output) {
    assert!(
        out.status.success(),
        "the command failed: {}{}",
        stdout(out),
        stderr(out)
    );
}

/// Asserts the command failed and its error output mentions every one of `words`.
fn assert_cli_refused(out: &Output, words: &[&str]) {
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
fn cli_with_stdin(app: &TestApp, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keygate"))
        .args(["--profile", "test", "--database", app.db.url()])
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("KEYGATE_PROFILE")
        .env("KEYGATE_MASTER_KEY", &app.master_key)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the keygate binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `keygate organizations create NAME`.
fn create_organization(app: &TestApp, name: &str) {
    assert_cli_ok(&app.cli(&["organizations", "create", name]));
}

/// `POST /v1/session` without asserting anything.
async fn login(app: &TestApp, email: &str, password: &str) -> Reply {
    Reply::send(
        app.client
            .post(app.url("/v1/session"))
            .json(&json!({ "email": email, "password": password })),
    )
    .await
}

async fn token_reply(app: &TestApp, key: &TestKey) -> Reply {
    Reply::of(
        app.post_token_json(
            json!({ "client_id": key.client_id, "client_secret": key.client_secret }),
        )
        .await,
    )
    .await
}

/// `GET /v1/me` status with this token.
async fn me_status(app: &TestApp, token: &str) -> u16 {
    app.get_with_token("/v1/me", token).await.status().as_u16()
}

/// A key owned by `owner` with `scopes`, and a token for it.
async fn key_and_token(app: &TestApp, owner: &str, scopes: &[&str]) -> (TestKey, String) {
    let key = app.create_key_with(scopes, &["--owner", owner]);
    let token = app.token_for(&key).await;
    (key, token)
}

/// The claims of a compact JWS.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// `token` re-signed with the server's active key after `change` edits its claims: a token
/// that only the edited claims can make unacceptable.
fn resign(app: &TestApp, token: &str, change: impl FnOnce(&mut Value)) -> String {
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

fn fresh_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    serializer.finish()
}

/// How a client authenticates at `/v1/introspect` and `/v1/revoke`.
#[derive(Clone, Copy, Debug)]
enum ClientAuth<'a> {
    Basic(&'a TestKey),
    Form(&'a TestKey),
    Bearer(&'a str),
    Nothing,
}

async fn post_token_form(
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

async fn introspect(app: &TestApp, auth: ClientAuth<'_>, token: &str) -> Reply {
    post_token_form(app, "/v1/introspect", auth, &[("token", token)], None).await
}

async fn revoke(app: &TestApp, auth: ClientAuth<'_>, token: &str) -> Reply {
    post_token_form(app, "/v1/revoke", auth, &[("token", token)], None).await
}

fn assert_no_store(reply: &Reply) {
    assert_eq!(
        reply.header("cache-control"),
        Some("no-store"),
        "Cache-Control: no-store on HTTP {}",
        reply.status
    );
}

/// Asserts `{"active": false}` and nothing else.
fn assert_inactive(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 200, "{what}: {}", reply.text);
    assert_no_store(reply);
    assert_eq!(reply.json(), json!({ "active": false }), "{what}");
}

/// `GET /v1/audit-events?query` with a token holding `audit:read`.
async fn audit_events(app: &TestApp, token: &str, query: &str) -> Value {
    let path = if query.is_empty() {
        "/v1/audit-events".to_owned()
    } else {
        format!("/v1/audit-events?{query}")
    };
    Reply::send(app.with_token(Method::GET, &path, token))
        .await
        .expect(200)
}

/// Every event the caller may see, newest first, read page by page.
async fn all_audit_events(app: &TestApp, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let page = audit_events(app, token, &format!("limit=100&offset={}", events.len())).await;
        let data = page["data"].as_array().unwrap().clone();
        if data.is_empty() {
            return events;
        }
        events.extend(data);
    }
}

fn actions(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn targets(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

fn query(pairs: &[(&str, &str)]) -> String {
    form(pairs)
}

/// `POST /v1/users` with a token, answering the created user (and the generated password).
async fn create_user_via_token(app: &TestApp, token: &str, body: Value) -> Value {
    Reply::send(app.with_token(Method::POST, "/v1/users", token).json(&body))
        .await
        .expect(201)
}

fn emails_in(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 1. The command line: users, organizations, key owners.
// ---------------------------------------------------------------------------------------------

async fn cli_users_create_prints_a_generated_password_once_that_logs_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&["users", "create", "--email", "Ada@Example.com"]);
    assert_cli_ok(&out);
    let printed = stdout(&out);
    let password = printed
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("a `password: ...` line on stdout: {printed:?}"))
        .trim()
        .to_owned();
    assert!(password.len() >= 12, "a long generated password");
    assert_eq!(printed.matches(&password).count(), 1, "printed once");
    assert!(
        !stderr(&out).contains(&password),
        "the password goes to standard output only"
    );

    let reply = login(&app, "ada@example.com", &password).await;
    let body = reply.expect(200);
    assert_eq!(body["user"]["email"], "ada@example.com");

    // --json: one object, the password in it.
    let json_user = app.create_user("grace@example.com", &[]);
    assert!(json_user.password.len() >= 12);
    assert_ne!(json_user.password, password, "every password is generated");
    login(&app, &json_user.email, &json_user.password)
        .await
        .expect(200);

    // Nothing shows it again.
    let listed = app.cli(&["users", "list", "--json"]);
    assert_cli_ok(&listed);
    assert!(!stdout(&listed).contains(&password));
    assert!(!stdout(&listed).contains(&json_user.password));
}

async fn cli_users_create_reads_a_password_from_stdin(backend: Backend) {
    let app = spawn_app(backend).await;
    let password = "correct horse battery staple";
    let out = cli_with_stdin(
        &app,
        &[
            "users",
            "create",
            "--email",
            "bob@example.com",
            "--password-stdin",
        ],
        &format!("{password}\n"),
    );
    assert_cli_ok(&out);
    assert!(
        !stdout(&out).contains(password) && !stderr(&out).contains(password),
        "a chosen password is never echoed"
    );
    login(&app, "bob@example.com", password).await.expect(200);
    login(&app, "bob@example.com", &format!("{password}\n"))
        .await
        .expect_error(401, "invalid_credentials");

    let out = cli_with_stdin(
        &app,
        &[
            "users",
            "create",
            "--email",
            "carol@example.com",
            "--password-stdin",
            "--json",
        ],
        "another long passphrase",
    );
    assert_cli_ok(&out);
    let created: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(created["email"], "carol@example.com");
    assert!(
        created["password"].is_null(),
        "no password is shown when one was given: {created}"
    );
    login(&app, "carol@example.com", "another long passphrase")
        .await
        .expect(200);
}

async fn cli_users_create_refuses_a_duplicate_email_an_unknown_permission_and_a_short_password(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user("ada@example.com", &[]);

    let duplicate = app.cli(&["users", "create", "--email", "ada@example.com"]);
    assert_cli_refused(&duplicate, &["already exists"]);
    let same_but_case = app.cli(&["users", "create", "--email", "ADA@Example.COM"]);
    assert_cli_refused(&same_but_case, &["already exists"]);

    let unknown = app.cli(&[
        "users",
        "create",
        "--email",
        "bob@example.com",
        "--permissions",
        "invoices:read,bogus:perm",
    ]);
    assert_cli_refused(&unknown, &["bogus:perm"]);

    let short = cli_with_stdin(
        &app,
        &[
            "users",
            "create",
            "--email",
            "carol@example.com",
            "--password-stdin",
        ],
        "short\n",
    );
    assert_cli_refused(&short, &["password", "12"]);

    let bad_email = app.cli(&["users", "create", "--email", "not-an-email"]);
    assert_cli_refused(&bad_email, &["email"]);
    let unknown_org = app.cli(&[
        "users",
        "create",
        "--email",
        "dan@example.com",
        "--org",
        "nope",
    ]);
    assert_cli_refused(&unknown_org, &["nope"]);

    let listed = app.cli(&["users", "list", "--json"]);
    assert_cli_ok(&listed);
    let rows: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let emails: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["ada@example.com"], "no refused user was created");
}

async fn cli_users_list_shows_each_organizations_users_without_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.create_user("ada@example.com", &["--admin"]);
    let bob = app.create_user(
        "bob@example.com",
        &["--permissions", "invoices:read,audit:read"],
    );
    create_organization(&app, "acme");
    let carol = app.create_user("carol@acme.example", &["--org", "acme"]);

    let out = app.cli(&["users", "list", "--json"]);
    assert_cli_ok(&out);
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["email"], "ada@example.com");
    assert_eq!(rows[0]["id"], ada.id.as_str());
    assert_eq!(rows[0]["admin"], true);
    assert!(strings(&rows[0]["permissions"]).contains(&"users:manage".to_owned()));
    assert_eq!(rows[1]["email"], "bob@example.com");
    assert_eq!(rows[1]["admin"], false);
    assert_eq!(rows[1]["status"], "enabled");
    assert_eq!(
        strings(&rows[1]["permissions"]),
        ["audit:read", "invoices:read"]
    );
    let text = stdout(&out);
    for secret in [&ada.password, &bob.password] {
        assert!(!text.contains(secret.as_str()));
    }
    assert!(!text.contains("$2"), "no bcrypt hash is listed");

    let table = app.cli(&["users", "list"]);
    assert_cli_ok(&table);
    assert!(stdout(&table).contains("ada@example.com"));
    assert!(stdout(&table).contains("bob@example.com"));
    assert!(!stdout(&table).contains("carol@acme.example"));

    let acme = app.cli(&["users", "list", "--org", "acme", "--json"]);
    assert_cli_ok(&acme);
    let rows: Value = serde_json::from_slice(&acme.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["email"], carol.email.as_str());
}

async fn cli_organizations_are_created_once_and_listed(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&["organizations", "create", "acme"]);
    assert_cli_ok(&out);
    assert_cli_refused(
        &app.cli(&["organizations", "create", "acme"]),
        &["already exists"],
    );
    assert_cli_refused(
        &app.cli(&["organizations", "create", "Not A Name"]),
        &["name"],
    );
    let listed = app.cli(&["organizations", "list"]);
    assert_cli_ok(&listed);
    let names: Vec<String> = stdout(&listed)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(names, ["default", "acme"]);

    // The new organization takes users and keys.
    app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);
    let key = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let token = app.token_for(&key).await;
    assert_eq!(claims_of(&token)["org"], "acme");
}

/// `keygate api-keys create --json` with these scopes and extra arguments, unchecked.
fn create_owned_key(app: &TestApp, scopes: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "api-keys", "create", "--name", "owned", "--scopes", scopes, "--json",
    ];
    args.extend_from_slice(extra);
    app.cli(&args)
}

async fn cli_api_keys_cannot_be_granted_a_scope_their_owner_lacks(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    app.create_user("ops@example.com", &["--permissions", "invoices:read"]);
    create_organization(&app, "acme");
    app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);

    let create = |scopes: &str, extra: &[&str]| create_owned_key(&app, scopes, extra);
    assert_cli_refused(
        &create(
            "invoices:read,payouts:write",
            &["--owner", "ops@example.com"],
        ),
        &["payouts:write", "ops@example.com"],
    );
    assert_cli_refused(
        &create("invoices:read", &["--owner", "nobody@example.com"]),
        &["nobody@example.com"],
    );
    // An owner must belong to the key's organization.
    assert_cli_refused(
        &create("invoices:read", &["--owner", "boss@acme.example"]),
        &["boss@acme.example"],
    );
    assert_cli_refused(
        &create(
            "invoices:read",
            &["--org", "acme", "--owner", "ops@example.com"],
        ),
        &["ops@example.com"],
    );
    assert_cli_refused(&create("invoices:read", &["--org", "nope"]), &["nope"]);
    // An administrator of an ordinary organization cannot manage organizations, so neither
    // can a key it owns (here by default: the organization's first admin).
    assert_cli_refused(
        &create("organizations:manage", &["--org", "acme"]),
        &["organizations:manage"],
    );

    let out = create("invoices:read", &["--owner", "ops@example.com"]);
    assert_cli_ok(&out);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let admin_token = app
        .token_as(ADMIN, &["api_keys:read", "api_keys:manage"])
        .await;
    let path = format!("/v1/api-keys/{}", created["client_id"].as_str().unwrap());
    let key = Reply::send(app.with_token(Method::GET, &path, &admin_token))
        .await
        .expect(200);
    assert_eq!(key["created_by"], "ops@example.com");
}

async fn cli_api_keys_without_an_owner_belong_to_the_organizations_first_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("ops@example.com", &["--permissions", "invoices:read"]);
    app.create_user("first@example.com", &["--admin"]);
    app.create_user("second@example.com", &["--admin"]);
    let key = app.create_key(&["payouts:write"]);

    let token = app
        .token_as("second@example.com", &["api_keys:read", "api_keys:manage"])
        .await;
    let path = format!("/v1/api-keys/{}", key.client_id);
    let view = Reply::send(app.with_token(Method::GET, &path, &token))
        .await
        .expect(200);
    assert_eq!(view["created_by"], "first@example.com");

    create_organization(&app, "acme");
    app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);
    let acme_key = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let boss_key = app.create_key_with(
        &["api_keys:read", "api_keys:manage"],
        &["--org", "acme", "--owner", "boss@acme.example"],
    );
    let boss_token = app.token_for(&boss_key).await;
    let path = format!("/v1/api-keys/{}", acme_key.client_id);
    let view = Reply::send(app.with_token(Method::GET, &path, &boss_token))
        .await
        .expect(200);
    assert_eq!(view["created_by"], "boss@acme.example");
}

async fn cli_api_keys_of_an_organization_without_users_have_no_owner_and_exactly_their_scopes(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    create_organization(&app, "acme");
    let scopes = ["api_keys:read", "invoices:read", "users:manage"];
    let key = app.create_key_with(&scopes, &["--org", "acme"]);
    let token = app.token_for(&key).await;
    assert_eq!(claims_of(&token)["scope"], scopes.join(" "));
    assert_eq!(claims_of(&token)["org"], "acme");

    // What the key is granted (/v1/me) and what its token carries (/v1/me/permissions).
    let me = Reply::send(app.with_token(Method::GET, "/v1/me", &token))
        .await
        .expect(200);
    assert_eq!(strings(&me["scopes"]), scopes);
    let permissions = Reply::send(app.with_token(Method::GET, "/v1/me/permissions", &token))
        .await
        .expect(200);
    assert_eq!(strings(&permissions["scopes"]), scopes);

    let path = format!("/v1/api-keys/{}", key.client_id);
    let view = Reply::send(app.with_token(Method::GET, &path, &token))
        .await
        .expect(200);
    assert!(view["created_by"].is_null(), "no owner: {view}");

    // It holds users:manage itself, narrowed by nobody.
    let users = Reply::send(app.with_token(Method::GET, "/v1/users", &token))
        .await
        .expect(200);
    assert_eq!(users["count"], 0);
}

// ---------------------------------------------------------------------------------------------
// 2. `/v1/users`.
// ---------------------------------------------------------------------------------------------

async fn an_admin_session_lists_creates_retrieves_and_updates_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);
    assert_eq!(list["count"], 1);
    assert_eq!(list["offset"], 0);
    assert!(list["limit"].is_i64());
    assert_eq!(list["data"][0]["id"], admin.id.as_str());
    assert_eq!(list["data"][0]["admin"], true);
    assert_eq!(list["data"][0]["organization"], "default");

    let created = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "Ops@Example.com", "permissions": ["invoices:read"] })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_no_store(&created);
    let user = created.json();
    assert_eq!(user["email"], "ops@example.com");
    assert_eq!(user["admin"], false);
    assert_eq!(user["status"], "enabled");
    assert_eq!(user["organization"], "default");
    assert_eq!(strings(&user["permissions"]), ["invoices:read"]);
    let id = user["id"].as_str().unwrap().to_owned();
    let password = user["password"]
        .as_str()
        .expect("a generated password")
        .to_owned();
    assert!(password.len() >= 12);
    login(&app, "ops@example.com", &password).await.expect(200);

    let path = format!("/v1/users/{id}");
    let retrieved = Reply::send(app.with_session(Method::GET, &path, &session)).await;
    let body = retrieved.expect(200);
    assert_eq!(body["email"], "ops@example.com");
    assert!(body.get("password").is_none(), "shown once: {body}");
    assert!(!retrieved.text.contains(&password));
    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session)).await;
    assert!(!list.text.contains(&password));
    assert_eq!(emails_in(&list.expect(200)), [ADMIN, "ops@example.com"]);

    let patch = |body: Value| {
        let request = app.with_session(Method::PATCH, &path, &session).json(&body);
        async move { Reply::send(request).await }
    };
    let updated = patch(json!({ "permissions": ["invoices:read", "invoices:write"] }))
        .await
        .expect(200);
    assert_eq!(
        strings(&updated["permissions"]),
        ["invoices:read", "invoices:write"]
    );
    let updated = patch(json!({ "admin": true })).await.expect(200);
    assert_eq!(updated["admin"], true);
    assert!(strings(&updated["permissions"]).contains(&"users:manage".to_owned()));
    let updated = patch(json!({ "admin": false })).await.expect(200);
    assert_eq!(updated["admin"], false);
    assert_eq!(
        strings(&updated["permissions"]),
        ["invoices:read", "invoices:write"]
    );
    let updated = patch(json!({ "status": "disabled" })).await.expect(200);
    assert_eq!(updated["status"], "disabled");
    let updated = patch(json!({ "status": "enabled" })).await.expect(200);
    assert_eq!(updated["status"], "enabled");
    let retrieved = Reply::send(app.with_session(Method::GET, &path, &session))
        .await
        .expect(200);
    assert_eq!(retrieved["status"], "enabled");
    assert_eq!(
        strings(&retrieved["permissions"]),
        ["invoices:read", "invoices:write"]
    );

    // A password given in the request is used, and not echoed.
    let chosen = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "dev@example.com", "password": "a chosen passphrase" })),
    )
    .await;
    let body = chosen.expect(201);
    assert!(body.get("password").is_none(), "{body}");
    assert!(!chosen.text.contains("a chosen passphrase"));
    login(&app, "dev@example.com", "a chosen passphrase")
        .await
        .expect(200);
}

async fn a_users_manage_token_lists_creates_retrieves_and_updates_users(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app
        .token_as(ADMIN, &["users:manage", "invoices:read", "invoices:write"])
        .await;

    let list = Reply::send(app.with_token(Method::GET, "/v1/users", &token))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);

    let created = Reply::send(
        app.with_token(Method::POST, "/v1/users", &token)
            .json(&json!({ "email": "ops@example.com", "permissions": ["invoices:read"] })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_no_store(&created);
    let user = created.json();
    let password = user["password"].as_str().unwrap();
    login(&app, "ops@example.com", password).await.expect(200);

    let path = format!("/v1/users/{}", user["id"].as_str().unwrap());
    let retrieved = Reply::send(app.with_token(Method::GET, &path, &token))
        .await
        .expect(200);
    assert_eq!(retrieved["email"], "ops@example.com");
    let updated = Reply::send(
        app.with_token(Method::PATCH, &path, &token)
            .json(&json!({ "permissions": ["invoices:write"] })),
    )
    .await
    .expect(200);
    assert_eq!(strings(&updated["permissions"]), ["invoices:write"]);
    let updated = Reply::send(
        app.with_token(Method::PATCH, &path, &token)
            .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    assert_eq!(updated["status"], "disabled");
    login(&app, "ops@example.com", password)
        .await
        .expect_error(401, "invalid_credentials");
}

async fn disabling_a_user_ends_their_sessions_keys_and_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let admin = app
        .token_as(ADMIN, &["users:manage", "invoices:read", "audit:read"])
        .await;
    let ops = create_user_via_token(
        &app,
        &admin,
        json!({ "email": "ops@example.com", "permissions": ["invoices:read"] }),
    )
    .await;
    let (ops_id, password) = (
        ops["id"].as_str().unwrap().to_owned(),
        ops["password"].as_str().unwrap().to_owned(),
    );
    let session = app.log_in("ops@example.com", &password).await;
    let (key, token) = key_and_token(&app, "ops@example.com", &["invoices:read"]).await;
    Reply::send(app.with_session(Method::GET, "/v1/session", &session))
        .await
        .expect(200);
    assert_eq!(me_status(&app, &token).await, 200);

    let path = format!("/v1/users/{ops_id}");
    let disabled = Reply::send(
        app.with_token(Method::PATCH, &path, &admin)
            .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    assert_eq!(disabled["status"], "disabled");

    Reply::send(app.with_session(Method::GET, "/v1/session", &session))
        .await
        .expect_error(401, "invalid_token");
    Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(401);
    assert_oauth_error(
        app.post_token_json(
            json!({ "client_id": key.client_id, "client_secret": key.client_secret }),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    assert!(
        eventually(1, || async { me_status(&app, &token).await == 401 }).await,
        "a token of a disabled user's key is still accepted after a second"
    );
    login(&app, "ops@example.com", &password)
        .await
        .expect_error(401, "invalid_credentials");

    // Disabling is not final: enabled again, the key gets tokens again.
    Reply::send(
        app.with_token(Method::PATCH, &path, &admin)
            .json(&json!({ "status": "enabled" })),
    )
    .await
    .expect(200);
    token_reply(&app, &key).await.expect(200);
}

async fn removing_a_permission_from_a_user_narrows_their_keys_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let admin = app
        .token_as(ADMIN, &["users:manage", "invoices:read"])
        .await;
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let (key, token) =
        key_and_token(&app, &manager.email, &["users:manage", "invoices:read"]).await;
    Reply::send(app.with_token(Method::GET, "/v1/users", &token))
        .await
        .expect(200);

    let path = format!("/v1/users/{}", manager.id);
    Reply::send(
        app.with_token(Method::PATCH, &path, &admin)
            .json(&json!({ "permissions": ["invoices:read"] })),
    )
    .await
    .expect(200);
    let after = Reply::send(app.with_token(Method::GET, "/v1/users", &token)).await;
    assert_eq!(
        after.status, 401,
        "a token issued before the narrowing: {}",
        after.text
    );
    // The cut is the next whole second (token `iat` has one-second resolution): a token
    // issued in the same second as the change is refused too, so renew after it.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let renewed = token_reply(&app, &key).await.expect(200);
    assert_eq!(renewed["scope"], "invoices:read");
    let renewed = renewed["access_token"].as_str().unwrap();
    Reply::send(app.with_token(Method::GET, "/v1/users", renewed))
        .await
        .expect_error(403, "insufficient_scope");
}

async fn a_caller_cannot_grant_a_permission_it_does_not_hold(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let target = app.create_user("target@example.com", &["--permissions", "invoices:read"]);
    let session = app.log_in(&manager.email, &manager.password).await;

    let refused = Reply::send(app.with_session(Method::POST, "/v1/users", &session).json(
        &json!({ "email": "new@example.com", "permissions": ["invoices:read", "payouts:write"] }),
    ))
    .await
    .expect_error(403, "forbidden");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("payouts:write"),
        "{refused}"
    );
    let path = format!("/v1/users/{}", target.id);
    let refused = Reply::send(
        app.with_session(Method::PATCH, &path, &session)
            .json(&json!({ "permissions": ["payouts:write"] })),
    )
    .await
    .expect_error(403, "forbidden");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("payouts:write")
    );
    // Nor to itself.
    let own = format!("/v1/users/{}", manager.id);
    Reply::send(
        app.with_session(Method::PATCH, &own, &session)
            .json(&json!({ "permissions": ["users:manage", "invoices:read", "audit:read"] })),
    )
    .await
    .expect_error(403, "forbidden");

    // An administrator's key acts with its own scopes, not all of its owner's.
    let narrow = app.token_as(ADMIN, &["users:manage"]).await;
    let refused = Reply::send(
        app.with_token(Method::POST, "/v1/users", &narrow)
            .json(&json!({ "email": "new@example.com", "permissions": ["invoices:read"] })),
    )
    .await
    .expect_error(403, "forbidden");
    assert!(
        refused["error_description"]
            .as_str()
            .unwrap()
            .contains("invoices:read")
    );

    let admin = app.token_as(ADMIN, &["users:manage"]).await;
    let list = Reply::send(app.with_token(Method::GET, "/v1/users", &admin))
        .await
        .expect(200);
    assert!(!emails_in(&list).contains(&"new@example.com".to_owned()));
    let target_now = Reply::send(app.with_token(Method::GET, &path, &admin))
        .await
        .expect(200);
    assert_eq!(strings(&target_now["permissions"]), ["invoices:read"]);

    // What it holds, it may grant.
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "new@example.com", "permissions": ["invoices:read"] })),
    )
    .await
    .expect(201);
}

async fn only_an_administrator_can_make_an_administrator(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", "users:manage,invoices:read"],
    );
    let target = app.create_user("target@example.com", &["--permissions", "invoices:read"]);
    let session = app.log_in(&manager.email, &manager.password).await;

    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "new@example.com", "admin": true })),
    )
    .await
    .expect_error(403, "forbidden");
    for id in [&target.id, &manager.id] {
        Reply::send(
            app.with_session(Method::PATCH, &format!("/v1/users/{id}"), &session)
                .json(&json!({ "admin": true })),
        )
        .await
        .expect_error(403, "forbidden");
    }
    let narrow = app.token_as(ADMIN, &["users:manage"]).await;
    Reply::send(
        app.with_token(Method::POST, "/v1/users", &narrow)
            .json(&json!({ "email": "new@example.com", "admin": true })),
    )
    .await
    .expect_error(403, "forbidden");

    let admin_session = app.log_in(ADMIN, &admin.password).await;
    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &admin_session))
        .await
        .expect(200);
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["admin"] == (u["email"] == ADMIN)),
        "nobody was made an administrator: {list}"
    );
    let made = Reply::send(
        app.with_session(Method::POST, "/v1/users", &admin_session)
            .json(&json!({ "email": "new@example.com", "admin": true })),
    )
    .await
    .expect(201);
    assert_eq!(made["admin"], true);
    let promoted = Reply::send(
        app.with_session(
            Method::PATCH,
            &format!("/v1/users/{}", target.id),
            &admin_session,
        )
        .json(&json!({ "admin": true })),
    )
    .await
    .expect(200);
    assert_eq!(promoted["admin"], true);
}

async fn another_organizations_user_is_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let bob = app.create_user("bob@acme.example", &["--org", "acme", "--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    let foreign = format!("/v1/users/{}", bob.id);
    let unknown = "/v1/users/usr_0000000000000000";
    let foreign_get = Reply::send(app.with_session(Method::GET, &foreign, &session)).await;
    let unknown_get = Reply::send(app.with_session(Method::GET, unknown, &session)).await;
    foreign_get.expect_error(404, "not_found");
    assert_eq!(foreign_get.text, unknown_get.text, "no existence oracle");
    let foreign_patch = Reply::send(
        app.with_session(Method::PATCH, &foreign, &session)
            .json(&json!({ "status": "disabled" })),
    )
    .await;
    let unknown_patch = Reply::send(
        app.with_session(Method::PATCH, unknown, &session)
            .json(&json!({ "status": "disabled" })),
    )
    .await;
    foreign_patch.expect_error(404, "not_found");
    assert_eq!(foreign_patch.text, unknown_patch.text);

    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);
    // bob is untouched.
    login(&app, &bob.email, &bob.password).await.expect(200);

    // The other way round too, with a token.
    let bob_key = app.create_key_with(&["users:manage"], &["--org", "acme"]);
    let bob_token = app.token_for(&bob_key).await;
    Reply::send(app.with_token(Method::GET, &format!("/v1/users/{}", admin.id), &bob_token))
        .await
        .expect_error(404, "not_found");
    let list = Reply::send(app.with_token(Method::GET, "/v1/users", &bob_token))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), ["bob@acme.example"]);
}

async fn user_requests_with_unknown_fields_or_bad_values_are_refused_naming_the_field(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let post = |body: Value| {
        let request = app
            .with_session(Method::POST, "/v1/users", &session)
            .json(&body);
        async move { Reply::send(request).await }
    };
    post(json!({ "email": "x@example.com", "role": "owner" }))
        .await
        .expect_field_error("role");
    post(json!({ "email": "not-an-email" }))
        .await
        .expect_field_error("email");
    post(json!({ "email": 42 }))
        .await
        .expect_field_error("email");
    post(json!({ "email": "x@example.com", "admin": "yes" }))
        .await
        .expect_field_error("admin");
    post(json!({ "email": "x@example.com", "password": "short" }))
        .await
        .expect_field_error("password");
    post(json!({ "email": "x@example.com", "permissions": "invoices:read" }))
        .await
        .expect_field_error("permissions");
    post(json!({ "email": "x@example.com", "permissions": ["has space"] }))
        .await
        .expect_field_error("permissions");
    let missing = post(json!({})).await.expect_error(400, "invalid_request");
    assert!(
        missing["error_description"]
            .as_str()
            .unwrap()
            .contains("email"),
        "{missing}"
    );
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .header("content-type", "application/json")
            .body("{\"email\": "),
    )
    .await
    .expect_error(400, "invalid_request");
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .header("content-type", "text/plain")
            .body("{\"email\": \"x@example.com\"}"),
    )
    .await
    .expect_error(400, "invalid_request");
    let conflict = post(json!({ "email": "ADMIN@example.com" })).await;
    conflict.expect_error(409, "conflict");

    let path = format!("/v1/users/{}", admin.id);
    let patch = |body: Value| {
        let request = app.with_session(Method::PATCH, &path, &session).json(&body);
        async move { Reply::send(request).await }
    };
    patch(json!({ "status": "paused" }))
        .await
        .expect_field_error("status");
    patch(json!({ "nickname": "x" }))
        .await
        .expect_field_error("nickname");
    patch(json!({ "email": "new@example.com" }))
        .await
        .expect_field_error("email");
    patch(json!({ "admin": 1 }))
        .await
        .expect_field_error("admin");
    patch(json!({ "permissions": [1] }))
        .await
        .expect_field_error("permissions[0]");
    patch(json!({})).await.expect_error(400, "invalid_request");

    let list = Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN], "nothing was created");
    assert_eq!(list["data"][0]["status"], "enabled");
}

async fn an_unknown_permission_is_refused_as_a_bad_value_naming_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let created = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "x@example.com", "permissions": ["bogus:perm"] })),
    )
    .await;
    let body = created.expect_field_error("permissions");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("bogus:perm"),
        "{body}"
    );
    let path = format!("/v1/users/{}", admin.id);
    let updated = Reply::send(
        app.with_session(Method::PATCH, &path, &session)
            .json(&json!({ "permissions": ["bogus:perm"] })),
    )
    .await;
    updated.expect_field_error("permissions");
}

async fn the_users_api_without_users_manage_is_insufficient_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let reader = app.create_user(
        "reader@example.com",
        &["--permissions", "invoices:read,audit:read"],
    );
    let token = app.token_as(ADMIN, &["invoices:read", "audit:read"]).await;
    let session = app.log_in(&reader.email, &reader.password).await;
    let user_path = format!("/v1/users/{}", admin.id);
    let requests: Vec<(&str, RequestBuilder)> = vec![
        (
            "list with a token",
            app.with_token(Method::GET, "/v1/users", &token),
        ),
        (
            "create with a token",
            app.with_token(Method::POST, "/v1/users", &token)
                .json(&json!({ "email": "x@example.com" })),
        ),
        (
            "retrieve with a token",
            app.with_token(Method::GET, &user_path, &token),
        ),
        (
            "update with a token",
            app.with_token(Method::PATCH, &user_path, &token)
                .json(&json!({ "status": "disabled" })),
        ),
        (
            "list in a session",
            app.with_session(Method::GET, "/v1/users", &session),
        ),
        (
            "create in a session",
            app.with_session(Method::POST, "/v1/users", &session)
                .json(&json!({ "email": "x@example.com" })),
        ),
        (
            "update in a session",
            app.with_session(Method::PATCH, &user_path, &session)
                .json(&json!({ "status": "disabled" })),
        ),
    ];
    for (what, request) in requests {
        let reply = Reply::send(request).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.text);
        assert_eq!(reply.json()["error"], "insufficient_scope", "{what}");
        let challenge = reply.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("scope=\"users:manage\""),
            "{what}: {challenge}"
        );
    }
    Reply::send(app.client.get(app.url("/v1/users")))
        .await
        .expect(401);
    login(&app, ADMIN, &admin.password).await.expect(200);
}

// ---------------------------------------------------------------------------------------------
// 3. `/v1/organizations`.
// ---------------------------------------------------------------------------------------------

async fn a_deployment_admin_lists_creates_and_retrieves_organizations(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    let list = Reply::send(app.with_session(Method::GET, "/v1/organizations", &session))
        .await
        .expect(200);
    let names = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&list), ["default"]);
    assert_eq!(list["count"], 1);

    let post = |body: Value| {
        let request = app
            .with_session(Method::POST, "/v1/organizations", &session)
            .json(&body);
        async move { Reply::send(request).await }
    };
    let created = post(json!({ "name": "acme" })).await.expect(201);
    assert_eq!(created["name"], "acme");
    assert!(created["created_at"].is_string());
    post(json!({ "name": "acme" }))
        .await
        .expect_error(409, "conflict");
    post(json!({ "name": "Acme Corp" }))
        .await
        .expect_field_error("name");
    post(json!({ "name": "ab" }))
        .await
        .expect_field_error("name");
    post(json!({ "name": "globex", "plan": "gold" }))
        .await
        .expect_field_error("plan");

    let acme = Reply::send(app.with_session(Method::GET, "/v1/organizations/acme", &session))
        .await
        .expect(200);
    assert_eq!(acme["name"], "acme");
    Reply::send(app.with_session(Method::GET, "/v1/organizations/nope", &session))
        .await
        .expect_error(404, "not_found");

    // With a token of the same admin holding organizations:manage.
    let token = app.token_as(ADMIN, &["organizations:manage"]).await;
    Reply::send(
        app.with_token(Method::POST, "/v1/organizations", &token)
            .json(&json!({ "name": "globex" })),
    )
    .await
    .expect(201);
    let list = Reply::send(app.with_token(Method::GET, "/v1/organizations", &token))
        .await
        .expect(200);
    assert_eq!(names(&list), ["default", "acme", "globex"]);

    // A new organization takes users at once.
    assert_cli_ok(&app.cli(&[
        "users",
        "create",
        "--email",
        "boss@acme.example",
        "--org",
        "acme",
    ]));
}

async fn an_admin_of_another_organization_cannot_manage_organizations(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let boss = app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);
    let session = app.log_in(&boss.email, &boss.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/organizations", &session))
        .await
        .expect_error(403, "insufficient_scope");
    Reply::send(
        app.with_session(Method::POST, "/v1/organizations", &session)
            .json(&json!({ "name": "globex" })),
    )
    .await
    .expect_error(403, "insufficient_scope");
    Reply::send(app.with_session(Method::GET, "/v1/organizations/acme", &session))
        .await
        .expect_error(403, "insufficient_scope");

    // Nor a user of the deployment's organization without the permission.
    let ops = app.create_user("ops@example.com", &["--permissions", "users:manage"]);
    let session = app.log_in(&ops.email, &ops.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/organizations", &session))
        .await
        .expect_error(403, "insufficient_scope");

    let token = app.token_as(ADMIN, &["organizations:manage"]).await;
    let list = Reply::send(app.with_token(Method::GET, "/v1/organizations", &token))
        .await
        .expect(200);
    assert_eq!(list["count"], 2, "globex was not created: {list}");
}

// ---------------------------------------------------------------------------------------------
// 4. Sessions.
// ---------------------------------------------------------------------------------------------

async fn login_sets_an_http_only_same_site_strict_cookie_without_secure_over_http(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let reply = login(&app, ADMIN, &admin.password).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_no_store(&reply);
    let cookies: Vec<&str> = reply
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let mut parts = cookies[0].split(';').map(str::trim);
    let pair = parts.next().unwrap();
    let value = pair
        .strip_prefix("keygate_session=")
        .unwrap_or_else(|| panic!("the keygate_session cookie: {pair}"));
    assert!(value.len() >= 32, "a long random session token");
    let attributes: Vec<String> = parts.map(|p| p.to_ascii_lowercase()).collect();
    assert!(
        attributes.contains(&"httponly".to_owned()),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&"samesite=strict".to_owned()),
        "{attributes:?}"
    );
    assert!(attributes.contains(&"path=/".to_owned()), "{attributes:?}");
    assert!(
        !attributes.iter().any(|a| a == "secure"),
        "no Secure over plain http: {attributes:?}"
    );

    let body = reply.json();
    let csrf = body["csrf_token"].as_str().expect("csrf_token").to_owned();
    assert!(csrf.len() >= 16);
    assert_eq!(body["user"]["email"], ADMIN);
    assert_eq!(body["user"]["id"], admin.id.as_str());
    assert_eq!(body["user"]["admin"], true);
    assert!(
        !reply.text.contains(value),
        "the session token only travels in the cookie"
    );

    let session = TestSession {
        cookie: pair.to_owned(),
        csrf: csrf.clone(),
    };
    let current = Reply::send(app.with_cookie(Method::GET, "/v1/session", &session)).await;
    let current_body = current.expect(200);
    assert_eq!(current_body["csrf_token"], csrf.as_str());
    assert_eq!(current_body["user"]["email"], ADMIN);
    for field in [
        "id",
        "email",
        "organization",
        "admin",
        "permissions",
        "status",
    ] {
        assert_eq!(current_body["user"][field], body["user"][field], "{field}");
    }

    Reply::send(app.client.get(app.url("/v1/session")))
        .await
        .expect(401);
    Reply::send(
        app.client
            .get(app.url("/v1/session"))
            .header("cookie", "keygate_session=forged"),
    )
    .await
    .expect(401);
}

async fn logging_out_needs_the_csrf_token_and_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;

    Reply::send(app.with_cookie(Method::DELETE, "/v1/session", &session))
        .await
        .expect_error(403, "forbidden");
    Reply::send(
        app.with_cookie(Method::DELETE, "/v1/session", &session)
            .header("x-csrf-token", "not-the-token"),
    )
    .await
    .expect_error(403, "forbidden");
    Reply::send(app.with_cookie(Method::GET, "/v1/session", &session))
        .await
        .expect(200);

    let out = Reply::send(app.with_session(Method::DELETE, "/v1/session", &session)).await;
    assert!(
        out.status == 204 || out.status == 200,
        "logout: HTTP {} {}",
        out.status,
        out.text
    );
    Reply::send(app.with_cookie(Method::GET, "/v1/session", &session))
        .await
        .expect_error(401, "invalid_token");
    Reply::send(app.with_session(Method::GET, "/v1/users", &session))
        .await
        .expect(401);
    Reply::send(app.with_session(Method::DELETE, "/v1/session", &session))
        .await
        .expect(401);
}

async fn a_state_changing_call_with_a_session_but_without_the_right_csrf_token_is_forbidden(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let other = app.log_in(ADMIN, &admin.password).await;
    assert_ne!(session.csrf, other.csrf, "each session has its own token");
    let body = json!({ "email": "new@example.com" });
    let own = format!("/v1/users/{}", admin.id);

    let attempts: Vec<(&str, RequestBuilder)> = vec![
        (
            "POST without a CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .json(&body),
        ),
        (
            "POST with a wrong CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .header("x-csrf-token", "wrong")
                .json(&body),
        ),
        (
            "POST with another session's CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .header("x-csrf-token", &other.csrf)
                .json(&body),
        ),
        (
            "POST with an empty CSRF token",
            app.with_cookie(Method::POST, "/v1/users", &session)
                .header("x-csrf-token", "")
                .json(&body),
        ),
        (
            "PATCH without a CSRF token",
            app.with_cookie(Method::PATCH, &own, &session)
                .json(&json!({ "status": "disabled" })),
        ),
        (
            "POST /v1/organizations without a CSRF token",
            app.with_cookie(Method::POST, "/v1/organizations", &session)
                .json(&json!({ "name": "acme" })),
        ),
    ];
    for (what, request) in attempts {
        let reply = Reply::send(request).await;
        assert_eq!(reply.status, 403, "{what}: {}", reply.text);
        assert_eq!(reply.json()["error"], "forbidden", "{what}");
    }

    // Reading needs no CSRF token, and nothing was changed.
    let list = Reply::send(app.with_cookie(Method::GET, "/v1/users", &session))
        .await
        .expect(200);
    assert_eq!(emails_in(&list), [ADMIN]);
    assert_eq!(list["data"][0]["status"], "enabled");
    let orgs = Reply::send(app.with_cookie(Method::GET, "/v1/organizations", &session))
        .await
        .expect(200);
    assert_eq!(orgs["count"], 1);
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&body),
    )
    .await
    .expect(201);
}

async fn a_wrong_password_and_an_unknown_email_get_the_same_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let wrong = login(&app, ADMIN, "not the right password").await;
    let unknown = login(&app, "nobody@example.com", "not the right password").await;
    let malformed = login(&app, "nobody", "not the right password").await;
    for (what, reply) in [
        ("wrong password", &wrong),
        ("unknown email", &unknown),
        ("not an email", &malformed),
    ] {
        assert_eq!(reply.status, 401, "{what}: {}", reply.text);
        assert_eq!(reply.json()["error"], "invalid_credentials", "{what}");
        assert!(reply.header("set-cookie").is_none(), "{what}: no cookie");
    }
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.text, malformed.text);
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
    login(&app, ADMIN, &admin.password).await.expect(200);
    // Upper-case email logs in too (emails are compared case-insensitively).
    login(&app, "ADMIN@Example.com", &admin.password)
        .await
        .expect(200);
}

async fn five_wrong_passwords_lock_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let victim = app.create_user("victim@example.com", &[]);
    for attempt in 1..=5 {
        login(&app, &victim.email, &format!("wrong password {attempt}"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    let locked = login(&app, &victim.email, &victim.password).await;
    locked.expect_error(429, "rate_limited");
    let retry_after: u64 = locked
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        (1..=15 * 60).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    login(&app, &victim.email, "wrong password 6")
        .await
        .expect_error(429, "rate_limited");
    // The account is locked, not the address: another user logs in from it.
    login(&app, ADMIN, &admin.password).await.expect(200);
}

async fn logins_are_audited_with_their_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let ops = app.create_user("ops@example.com", &[]);
    let token = app.token_as(ADMIN, &["audit:read"]).await;
    login(&app, &ops.email, "a wrong password")
        .await
        .expect(401);
    login(&app, &ops.email, &ops.password).await.expect(200);

    let page = audit_events(
        &app,
        &token,
        &query(&[("action", "session.login"), ("target", &ops.id)]),
    )
    .await;
    let events = page["data"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{page}");
    assert_eq!(events[0]["outcome"], "success");
    assert_eq!(events[1]["outcome"], "wrong_password");
    for event in events {
        assert_eq!(event["actor"], "user:ops@example.com");
        assert_eq!(event["target"], ops.id.as_str());
    }
}

// ---------------------------------------------------------------------------------------------
// 5. The audit trail.
// ---------------------------------------------------------------------------------------------

async fn audit_events_filter_by_actor_action_and_target_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key_with(
        &["audit:read", "users:manage", "invoices:read"],
        &["--owner", ADMIN],
    );
    let token = app.token_for(&key).await;
    let key_actor = format!("api_key:{}", key.client_id);
    let session = app.log_in(ADMIN, &admin.password).await;

    let u1 = create_user_via_token(&app, &token, json!({ "email": "u1@example.com" })).await;
    let u2 = create_user_via_token(&app, &token, json!({ "email": "u2@example.com" })).await;
    let u3 = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "u3@example.com" })),
    )
    .await
    .expect(201);
    let u1_id = u1["id"].as_str().unwrap();
    Reply::send(
        app.with_token(Method::PATCH, &format!("/v1/users/{u1_id}"), &token)
            .json(&json!({ "permissions": ["invoices:read"] })),
    )
    .await
    .expect(200);

    let everything = audit_events(&app, &token, "").await;
    assert_eq!(everything["limit"], 100);
    assert_eq!(everything["offset"], 0);
    let data = everything["data"].as_array().unwrap();
    assert_eq!(everything["count"].as_u64().unwrap() as usize, data.len());
    let all_ids = ids(data);
    let mut sorted = all_ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(all_ids, sorted, "newest first");
    let times: Vec<chrono::DateTime<chrono::Utc>> = data
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    for event in data {
        for field in ["id", "occurred_at", "actor", "action", "outcome"] {
            assert!(!event[field].is_null(), "{field} in {event}");
        }
    }

    let by_key = audit_events(
        &app,
        &token,
        &query(&[("actor", &key_actor), ("action", "user.created")]),
    )
    .await;
    assert_eq!(by_key["count"], 2);
    assert_eq!(
        targets(&by_key),
        [u2["id"].as_str().unwrap(), u1_id],
        "newest first"
    );
    let by_user = audit_events(
        &app,
        &token,
        &query(&[
            ("actor", "user:admin@example.com"),
            ("action", "user.created"),
        ]),
    )
    .await;
    assert_eq!(targets(&by_user), [u3["id"].as_str().unwrap()]);
    let about_u1 = audit_events(&app, &token, &query(&[("target", u1_id)])).await;
    assert_eq!(actions(&about_u1), ["user.updated", "user.created"]);
    let logins = audit_events(&app, &token, &query(&[("action", "session.login")])).await;
    assert_eq!(logins["count"], 1);
    assert_eq!(logins["data"][0]["target"], admin.id.as_str());
    let nothing = audit_events(
        &app,
        &token,
        &query(&[("actor", "user:nobody@example.com")]),
    )
    .await;
    assert_eq!(nothing["count"], 0);
    assert_eq!(nothing["data"], json!([]));
}

async fn audit_events_filter_by_time_range(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app.token_as(ADMIN, &["audit:read", "users:manage"]).await;
    let pause = || actix_web::rt::time::sleep(Duration::from_millis(60));
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    let a = create_user_via_token(&app, &token, json!({ "email": "a@example.com" })).await;
    pause().await;
    let t1 = chrono::Utc::now();
    pause().await;
    let b = create_user_via_token(&app, &token, json!({ "email": "b@example.com" })).await;
    pause().await;
    let t2 = chrono::Utc::now();
    pause().await;
    let c = create_user_via_token(&app, &token, json!({ "email": "c@example.com" })).await;
    let id = |u: &Value| u["id"].as_str().unwrap().to_owned();

    let since = audit_events(
        &app,
        &token,
        &query(&[("action", "user.created"), ("since", &stamp(t1))]),
    )
    .await;
    assert_eq!(targets(&since), [id(&c), id(&b)]);
    let until = audit_events(
        &app,
        &token,
        &query(&[("action", "user.created"), ("until", &stamp(t1))]),
    )
    .await;
    let until_targets = targets(&until);
    assert!(until_targets.contains(&id(&a)), "{until}");
    assert!(!until_targets.contains(&id(&b)) && !until_targets.contains(&id(&c)));
    let between = audit_events(
        &app,
        &token,
        &query(&[
            ("action", "user.created"),
            ("since", &stamp(t1)),
            ("until", &stamp(t2)),
        ]),
    )
    .await;
    assert_eq!(targets(&between), [id(&b)]);
    assert_eq!(between["count"], 1);

    // The same instants written with an offset.
    let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let with_offset = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
    };
    let between = audit_events(
        &app,
        &token,
        &query(&[
            ("action", "user.created"),
            ("since", &with_offset(t1)),
            ("until", &with_offset(t2)),
        ]),
    )
    .await;
    assert_eq!(targets(&between), [id(&b)]);
}

async fn audit_events_are_paged_with_limit_and_offset(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app
        .token_as(ADMIN, &["audit:read", "api_keys:write", "invoices:read"])
        .await;
    for i in 0..5 {
        Reply::send(
            app.with_token(Method::POST, "/v1/api-keys", &token)
                .json(&json!({ "name": format!("key {i}"), "scopes": ["invoices:read"] })),
        )
        .await
        .expect(201);
    }
    let by_action = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("action", "api_key.created")];
        pairs.extend_from_slice(extra);
        query(&pairs)
    };
    let all = audit_events(&app, &token, &by_action(&[])).await;
    // The key behind `token` was made by the CLI: six in all.
    assert_eq!(all["count"], 6);
    let all_ids = ids(all["data"].as_array().unwrap());

    let mut paged = Vec::new();
    for offset in ["0", "2", "4"] {
        let page = audit_events(
            &app,
            &token,
            &by_action(&[("limit", "2"), ("offset", offset)]),
        )
        .await;
        assert_eq!(page["count"], 6, "count is every match");
        assert_eq!(page["limit"], 2);
        assert_eq!(page["offset"], offset.parse::<i64>().unwrap());
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        paged.extend(ids(page["data"].as_array().unwrap()));
    }
    assert_eq!(paged, all_ids, "the pages add up to the whole, in order");
    let beyond = audit_events(&app, &token, &by_action(&[("offset", "6")])).await;
    assert_eq!(beyond["data"], json!([]));
    assert_eq!(beyond["count"], 6);
    let one = audit_events(&app, &token, &by_action(&[("limit", "1")])).await;
    assert_eq!(ids(one["data"].as_array().unwrap()), [all_ids[0]]);
    let hundred = audit_events(&app, &token, &by_action(&[("limit", "100")])).await;
    assert_eq!(hundred["limit"], 100);
}

async fn audit_events_refuse_bad_query_parameters_naming_them(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app.token_as(ADMIN, &["audit:read"]).await;
    let cases = [
        ("since=yesterday", "since"),
        ("since=2026-11-25", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("colour=blue", "colour"),
    ];
    for (query, field) in cases {
        let reply =
            Reply::send(app.with_token(Method::GET, &format!("/v1/audit-events?{query}"), &token))
                .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        let body = reply.json();
        assert_eq!(body["error"], "invalid_request", "{query}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}

async fn audit_events_need_audit_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let ops = app.create_user("ops@example.com", &["--permissions", "users:manage"]);
    let token = app.token_as(ADMIN, &["users:manage"]).await;
    let reply = Reply::send(app.with_token(Method::GET, "/v1/audit-events", &token)).await;
    reply.expect_error(403, "insufficient_scope");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"audit:read\"")
    );
    let session = app.log_in(&ops.email, &ops.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/audit-events", &session))
        .await
        .expect_error(403, "insufficient_scope");
    Reply::send(app.client.get(app.url("/v1/audit-events")))
        .await
        .expect(401);
    let session = app.log_in(ADMIN, &admin.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/audit-events", &session))
        .await
        .expect(200);
}

async fn audit_events_of_another_organization_are_never_returned(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let boss = app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);
    let token = app.token_as(ADMIN, &["audit:read", "users:manage"]).await;
    create_user_via_token(&app, &token, json!({ "email": "mine@example.com" })).await;
    login(&app, ADMIN, &admin.password).await.expect(200);

    // Things happen in acme.
    let boss_session = app.log_in(&boss.email, &boss.password).await;
    login(&app, &boss.email, "a wrong password")
        .await
        .expect(401);
    let theirs = Reply::send(
        app.with_session(Method::POST, "/v1/users", &boss_session)
            .json(&json!({ "email": "theirs@acme.example" })),
    )
    .await
    .expect(201);
    let theirs_id = theirs["id"].as_str().unwrap().to_owned();
    Reply::send(
        app.with_session(
            Method::PATCH,
            &format!("/v1/users/{theirs_id}"),
            &boss_session,
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    let acme_key = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let acme_token = app.token_for(&acme_key).await;
    let bad = TestKey {
        client_id: acme_key.client_id.clone(),
        client_secret: app.create_key(&["invoices:read"]).client_secret,
    };
    token_reply(&app, &bad).await.expect(401);
    revoke(&app, ClientAuth::Basic(&acme_key), &acme_token)
        .await
        .expect_status_only(200);

    let acme_ids = [
        boss.id.as_str(),
        theirs_id.as_str(),
        acme_key.client_id.as_str(),
    ];
    let acme_audit = app.create_key_with(&["audit:read"], &["--org", "acme"]);
    let acme_audit_token = app.token_for(&acme_audit).await;
    // Some of acme's events are written after the response: wait until acme sees them all.
    assert!(
        eventually(2, || async {
            let events = all_audit_events(&app, &acme_audit_token).await;
            let has = |action: &str| events.iter().any(|e| e["action"] == action);
            has("session.login")
                && has("user.disabled")
                && has("token.revoked")
                && has("token.denied")
        })
        .await,
        "acme's own events are visible to acme"
    );

    let events = all_audit_events(&app, &token).await;
    assert!(!events.is_empty());
    for event in &events {
        let target = event["target"].as_str().unwrap_or("");
        let actor = event["actor"].as_str().unwrap_or("");
        assert!(
            !acme_ids.contains(&target)
                && !actor.contains("acme")
                && !actor.contains(&acme_key.client_id),
            "default sees an event of acme: {event}"
        );
    }
    for filter in [
        query(&[("target", &theirs_id)]),
        query(&[("target", &boss.id)]),
        query(&[("target", &acme_key.client_id)]),
        query(&[("actor", "user:boss@acme.example")]),
        query(&[("actor", &format!("api_key:{}", acme_key.client_id))]),
    ] {
        let page = audit_events(&app, &token, &filter).await;
        assert_eq!(page["count"], 0, "{filter}: {page}");
    }
    // And acme sees none of default's.
    for event in all_audit_events(&app, &acme_audit_token).await {
        assert_ne!(event["target"], admin.id.as_str(), "{event}");
        assert_ne!(event["actor"], "user:admin@example.com", "{event}");
    }
}

async fn audit_events_record_the_callers_address_and_user_agent(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key_with(
        &["audit:read", "users:manage", "tokens:revoke"],
        &["--owner", ADMIN],
    );
    let token = app.token_for(&key).await;

    // A login.
    Reply::send(
        app.client
            .post(app.url("/v1/session"))
            .header("user-agent", "agent-login/1.0")
            .json(&json!({ "email": ADMIN, "password": admin.password })),
    )
    .await
    .expect(200);
    let session = app.log_in(ADMIN, &admin.password).await;
    // A user change in a session, and one with a token.
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .header("user-agent", "agent-session/1.0")
            .json(&json!({ "email": "s@example.com" })),
    )
    .await
    .expect(201);
    Reply::send(
        app.with_token(Method::POST, "/v1/users", &token)
            .header("user-agent", "agent-token/1.0")
            .json(&json!({ "email": "t@example.com" })),
    )
    .await
    .expect(201);
    // A token revoked through RFC 7009 with client credentials.
    let victim = app.create_key(&["invoices:read"]);
    let victim_token = app.token_for(&victim).await;
    post_token_form(
        &app,
        "/v1/revoke",
        ClientAuth::Basic(&key),
        &[("token", &victim_token)],
        Some("agent-revoke/1.0"),
    )
    .await
    .expect_status_only(200);
    // A failed client authentication of an existing key.
    let wrong = app.create_key(&["invoices:read"]);
    Reply::send(
        app.client
            .post(app.url("/v1/token"))
            .header("user-agent", "agent-denied/1.0")
            .json(&json!({ "client_id": victim.client_id, "client_secret": wrong.client_secret })),
    )
    .await
    .expect(401);

    let expected = [
        ("session.login", "agent-login/1.0"),
        ("user.created", "agent-session/1.0"),
        ("user.created", "agent-token/1.0"),
        ("token.revoked", "agent-revoke/1.0"),
        ("token.denied", "agent-denied/1.0"),
    ];
    // token.denied is written after the response.
    let _ = eventually(2, || async {
        audit_events(&app, &token, &query(&[("action", "token.denied")])).await["count"] == 1
    })
    .await;
    let events = all_audit_events(&app, &token).await;
    let mut failures = Vec::new();
    for (action, agent) in expected {
        let of_action: Vec<&Value> = events.iter().filter(|e| e["action"] == action).collect();
        if of_action.is_empty() {
            failures.push(format!("no {action} event"));
            continue;
        }
        match of_action.iter().find(|e| e["user_agent"] == agent) {
            Some(event) => {
                if event["client_ip"] != "127.0.0.1" {
                    failures.push(format!("{action}: client_ip {}", event["client_ip"]));
                }
            }
            None => failures.push(format!(
                "{action}: no event with user_agent {agent:?}; got {:?}",
                of_action
                    .iter()
                    .map(|e| (e["user_agent"].clone(), e["client_ip"].clone()))
                    .collect::<Vec<_>>()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "events without the caller's address or user agent:\n  {}",
        failures.join("\n  ")
    );
}

async fn audit_events_never_contain_a_password_or_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let mut secrets: Vec<(String, String)> =
        vec![("admin's password".into(), admin.password.clone())];

    let out = app.cli(&["users", "create", "--email", "cli@example.com"]);
    assert_cli_ok(&out);
    let cli_password = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .trim()
        .to_owned();
    secrets.push(("a CLI-generated password".into(), cli_password));
    let chosen = "a passphrase from stdin";
    assert_cli_ok(&cli_with_stdin(
        &app,
        &[
            "users",
            "create",
            "--email",
            "stdin@example.com",
            "--password-stdin",
        ],
        chosen,
    ));
    secrets.push(("a password from stdin".into(), chosen.into()));

    let key = app.create_key_with(
        &[
            "audit:read",
            "users:manage",
            "api_keys:write",
            "api_keys:read",
            "invoices:read",
            "tokens:revoke",
        ],
        &["--owner", ADMIN],
    );
    secrets.push(("a CLI key's secret".into(), key.client_secret.clone()));
    let token = app.token_for(&key).await;
    secrets.push(("an access token".into(), token.clone()));

    let rest_user =
        create_user_via_token(&app, &token, json!({ "email": "rest@example.com" })).await;
    secrets.push((
        "a REST-generated password".into(),
        rest_user["password"].as_str().unwrap().to_owned(),
    ));
    create_user_via_token(
        &app,
        &token,
        json!({ "email": "given@example.com", "password": "a password given in JSON" }),
    )
    .await;
    secrets.push((
        "a password given in JSON".into(),
        "a password given in JSON".into(),
    ));

    let session = app.log_in(ADMIN, &admin.password).await;
    secrets.push(("a session cookie".into(), session.cookie.clone()));
    secrets.push(("a CSRF token".into(), session.csrf.clone()));
    let wrong_password = "the wrong password typed";
    login(&app, ADMIN, wrong_password).await.expect(401);
    secrets.push(("a wrong password".into(), wrong_password.into()));

    let created = Reply::send(
        app.with_token(Method::POST, "/v1/api-keys", &token)
            .json(&json!({ "name": "rest key", "scopes": ["invoices:read"] })),
    )
    .await
    .expect(201);
    let rest_key = TestKey {
        client_id: created["client_id"].as_str().unwrap().to_owned(),
        client_secret: created["client_secret"].as_str().unwrap().to_owned(),
    };
    secrets.push(("a REST key's secret".into(), rest_key.client_secret.clone()));
    let rotated = Reply::send(
        app.with_token(
            Method::POST,
            &format!("/v1/api-keys/{}/rotate", rest_key.client_id),
            &token,
        )
        .json(&json!({ "grace_period_seconds": 60 })),
    )
    .await
    .expect(200);
    secrets.push((
        "a rotated secret".into(),
        rotated["client_secret"].as_str().unwrap().to_owned(),
    ));
    // Another key's real secret presented for rest_key: a failure whose secret is valuable.
    let misused = TestKey {
        client_id: rest_key.client_id.clone(),
        client_secret: key.client_secret.clone(),
    };
    token_reply(&app, &misused).await.expect(401);
    let rest_token = app
        .token_for(&TestKey {
            client_id: rest_key.client_id.clone(),
            client_secret: rotated["client_secret"].as_str().unwrap().to_owned(),
        })
        .await;
    secrets.push(("a revoked access token".into(), rest_token.clone()));
    revoke(&app, ClientAuth::Basic(&key), &rest_token)
        .await
        .expect_status_only(200);
    introspect(&app, ClientAuth::Form(&key), &rest_token).await;

    let _ = eventually(2, || async {
        audit_events(&app, &token, &query(&[("action", "token.denied")])).await["count"] == 1
    })
    .await;
    let mut text = String::new();
    let mut offset = 0;
    loop {
        let reply = Reply::send(app.with_token(
            Method::GET,
            &format!("/v1/audit-events?limit=100&offset={offset}"),
            &token,
        ))
        .await;
        let page = reply.expect(200);
        let n = page["data"].as_array().unwrap().len();
        text.push_str(&reply.text);
        if n == 0 {
            break;
        }
        offset += n;
    }
    assert!(offset >= 10, "the trail has the events above: {offset}");
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|(_, secret)| text.contains(secret.as_str()))
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(leaked.is_empty(), "the audit trail holds: {leaked:?}");
}

// ---------------------------------------------------------------------------------------------
// 6. RFC 7662 introspection.
// ---------------------------------------------------------------------------------------------

async fn introspection_of_an_active_token_returns_its_claims(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let introspector = app.create_key(&["tokens:introspect"]);
    let introspector_token = app.token_for(&introspector).await;
    let subject = app.create_key(&["invoices:read", "clients:read"]);
    let token = app.token_for(&subject).await;
    let claims = claims_of(&token);

    for auth in [
        ClientAuth::Basic(&introspector),
        ClientAuth::Form(&introspector),
        ClientAuth::Bearer(&introspector_token),
    ] {
        let reply = introspect(&app, auth, &token).await;
        assert_eq!(reply.status, 200, "{auth:?}: {}", reply.text);
        assert_no_store(&reply);
        let body = reply.json();
        assert_eq!(body["active"], true, "{auth:?}: {body}");
        assert_eq!(body["token_type"], "Bearer");
        for claim in [
            "scope",
            "client_id",
            "exp",
            "iat",
            "sub",
            "aud",
            "iss",
            "jti",
        ] {
            assert!(!claims[claim].is_null(), "the JWT has {claim}");
            assert_eq!(body[claim], claims[claim], "{auth:?}: {claim}");
        }
        assert_eq!(body["client_id"], subject.client_id.as_str());
        assert_eq!(body["scope"], "clients:read invoices:read");
    }
    // A key may introspect its own token, too.
    let own = introspect(&app, ClientAuth::Basic(&introspector), &introspector_token)
        .await
        .expect(200);
    assert_eq!(own["active"], true);
    // token_type_hint is accepted and looked past.
    let hinted = post_token_form(
        &app,
        "/v1/introspect",
        ClientAuth::Basic(&introspector),
        &[("token", &token), ("token_type_hint", "refresh_token")],
        None,
    )
    .await
    .expect(200);
    assert_eq!(hinted["active"], true);
}

async fn introspection_of_expired_garbage_revoked_or_foreign_tokens_is_inactive(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let introspector = app.create_key(&["tokens:introspect"]);
    let subject = app.create_key(&["invoices:read"]);
    let token = app.token_for(&subject).await;

    // A re-signed copy is active (so the forgery works), an expired one is not.
    let copy = resign(&app, &token, |c| c["jti"] = json!(fresh_jti()));
    let active = introspect(&app, ClientAuth::Basic(&introspector), &copy)
        .await
        .expect(200);
    assert_eq!(active["active"], true, "a re-signed copy: {active}");
    let expired = resign(&app, &token, |c| {
        let past = chrono::Utc::now().timestamp() - 3600;
        c["iat"] = json!(past);
        c["nbf"] = json!(past);
        c["exp"] = json!(past + 900);
        c["jti"] = json!(fresh_jti());
    });
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &expired).await,
        "an expired token",
    );

    for (what, garbage) in [
        ("garbage", "not-a-token"),
        ("three dots", "a.b.c"),
        ("a truncated token", &token[..token.len() - 5]),
        ("a client secret", subject.client_secret.as_str()),
    ] {
        assert_inactive(
            &introspect(&app, ClientAuth::Basic(&introspector), garbage).await,
            what,
        );
    }

    // Another organization's token: inactive here, active there.
    create_organization(&app, "acme");
    let acme_subject = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let acme_introspector = app.create_key_with(&["tokens:introspect"], &["--org", "acme"]);
    let acme_token = app.token_for(&acme_subject).await;
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &acme_token).await,
        "another organization's token",
    );
    let there = introspect(&app, ClientAuth::Basic(&acme_introspector), &acme_token)
        .await
        .expect(200);
    assert_eq!(there["active"], true);
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&acme_introspector), &token).await,
        "the default organization's token, asked by acme",
    );

    // A token revoked with RFC 7009, and one whose key the CLI revoked.
    let revoked_one = app.token_for(&subject).await;
    revoke(&app, ClientAuth::Basic(&subject), &revoked_one)
        .await
        .expect_status_only(200);
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &revoked_one).await,
        "a token revoked at /v1/revoke",
    );
    assert_eq!(
        introspect(&app, ClientAuth::Basic(&introspector), &token)
            .await
            .expect(200)["active"],
        true
    );
    assert_cli_ok(&app.cli(&["api-keys", "revoke", &subject.client_id]));
    let inactive = eventually(1, || async {
        introspect(&app, ClientAuth::Basic(&introspector), &token)
            .await
            .json()
            == json!({ "active": false })
    })
    .await;
    assert!(
        inactive,
        "a token of a key revoked by the CLI is still active"
    );
    assert_inactive(
        &introspect(&app, ClientAuth::Basic(&introspector), &token).await,
        "a token of a revoked key",
    );
}

async fn introspection_needs_credentials_holding_tokens_introspect(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let subject = app.create_key(&["invoices:read"]);
    let token = app.token_for(&subject).await;

    let nobody = introspect(&app, ClientAuth::Nothing, &token).await;
    nobody.expect_error(401, "invalid_client");
    assert_no_store(&nobody);
    let wrong = TestKey {
        client_id: subject.client_id.clone(),
        client_secret: app.create_key(&["invoices:read"]).client_secret,
    };
    introspect(&app, ClientAuth::Basic(&wrong), &token)
        .await
        .expect_error(401, "invalid_client");
    introspect(&app, ClientAuth::Bearer("not-a-token"), &token)
        .await
        .expect_error(401, "invalid_token");

    let plain = app.create_key(&["invoices:read", "tokens:revoke"]);
    let plain_token = app.token_for(&plain).await;
    for auth in [
        ClientAuth::Basic(&plain),
        ClientAuth::Form(&plain),
        ClientAuth::Bearer(&plain_token),
    ] {
        let reply = introspect(&app, auth, &token).await;
        reply.expect_error(403, "insufficient_scope");
        assert_no_store(&reply);
        assert!(!reply.text.contains("active"), "{auth:?}: {}", reply.text);
    }
    // A token narrowed below tokens:introspect cannot introspect, though its key could.
    let both = app.create_key(&["invoices:read", "tokens:introspect"]);
    let narrowed = app.token_with_scope(&both, Some("invoices:read")).await;
    introspect(&app, ClientAuth::Bearer(&narrowed), &token)
        .await
        .expect_error(403, "insufficient_scope");
    introspect(&app, ClientAuth::Basic(&both), &token)
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------------------------
// 7. RFC 7009 revocation.
// ---------------------------------------------------------------------------------------------

async fn a_client_revokes_its_own_token_at_once_while_its_other_tokens_keep_working(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let first = app.token_for(&key).await;
    let second = app.token_for(&key).await;
    let third = app.token_for(&key).await;
    let fourth = app.token_for(&key).await;

    let reply = revoke(&app, ClientAuth::Basic(&key), &first).await;
    reply.expect_status_only(200);
    assert_no_store(&reply);
    assert_eq!(me_status(&app, &first).await, 401, "revoked at once");
    assert_eq!(me_status(&app, &second).await, 200);

    let reply = post_token_form(
        &app,
        "/v1/revoke",
        ClientAuth::Form(&key),
        &[("token", &second), ("token_type_hint", "access_token")],
        None,
    )
    .await;
    reply.expect_status_only(200);
    assert_eq!(me_status(&app, &second).await, 401);
    let reply = post_token_form(
        &app,
        "/v1/revoke",
        ClientAuth::Bearer(&fourth),
        &[("token", &third), ("token_type_hint", "refresh_token")],
        None,
    )
    .await;
    reply.expect_status_only(200);
    assert_eq!(me_status(&app, &third).await, 401);
    assert_eq!(me_status(&app, &fourth).await, 200);

    // Still refused a moment later (the feed agrees), and the key still gets new tokens.
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(me_status(&app, &first).await, 401);
    let fresh = app.token_for(&key).await;
    assert_eq!(me_status(&app, &fresh).await, 200);
    // Revoking twice is fine.
    revoke(&app, ClientAuth::Basic(&key), &first)
        .await
        .expect_status_only(200);
}

async fn revoking_another_clients_token_needs_tokens_revoke(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let victim = app.create_key(&["invoices:read"]);
    let token = app.token_for(&victim).await;
    let bystander = app.create_key(&["invoices:read", "tokens:introspect"]);
    let bystander_token = app.token_for(&bystander).await;

    for auth in [
        ClientAuth::Basic(&bystander),
        ClientAuth::Form(&bystander),
        ClientAuth::Bearer(&bystander_token),
    ] {
        revoke(&app, auth, &token).await.expect_status_only(200);
    }
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        me_status(&app, &token).await,
        200,
        "revoked by a client without tokens:revoke"
    );

    let revoker = app.create_key(&["tokens:revoke"]);
    revoke(&app, ClientAuth::Basic(&revoker), &token)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &token).await, 401);
    let other = app.token_for(&victim).await;
    let revoker_token = app.token_for(&revoker).await;
    revoke(&app, ClientAuth::Bearer(&revoker_token), &other)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &other).await, 401);
}

async fn revoking_a_garbage_token_answers_200_and_revocation_needs_client_authentication(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    for garbage in ["garbage", "a.b.c", &token[..token.len() - 4]] {
        let reply = revoke(&app, ClientAuth::Basic(&key), garbage).await;
        reply.expect_status_only(200);
        assert_no_store(&reply);
    }
    let expired = resign(&app, &token, |c| {
        let past = chrono::Utc::now().timestamp() - 3600;
        c["iat"] = json!(past);
        c["nbf"] = json!(past);
        c["exp"] = json!(past + 900);
        c["jti"] = json!(fresh_jti());
    });
    revoke(&app, ClientAuth::Basic(&key), &expired)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &token).await, 200);

    revoke(&app, ClientAuth::Nothing, &token)
        .await
        .expect_error(401, "invalid_client");
    let wrong = TestKey {
        client_id: key.client_id.clone(),
        client_secret: app.create_key(&["invoices:read"]).client_secret,
    };
    revoke(&app, ClientAuth::Basic(&wrong), &token)
        .await
        .expect_error(401, "invalid_client");
    assert_eq!(me_status(&app, &token).await, 200, "still valid");
}

async fn a_token_of_another_organization_is_never_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let ours = app.create_key(&["invoices:read"]);
    let our_token = app.token_for(&ours).await;
    let our_revoker = app.create_key(&["tokens:revoke"]);
    let acme = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let acme_token = app.token_for(&acme).await;
    let acme_revoker = app.create_key_with(&["tokens:revoke"], &["--org", "acme"]);
    let acme_revoker_token = app.token_for(&acme_revoker).await;

    revoke(&app, ClientAuth::Basic(&our_revoker), &acme_token)
        .await
        .expect_status_only(200);
    revoke(&app, ClientAuth::Basic(&acme_revoker), &our_token)
        .await
        .expect_status_only(200);
    revoke(&app, ClientAuth::Bearer(&acme_revoker_token), &our_token)
        .await
        .expect_status_only(200);
    // The owner of a token cannot be impersonated across organizations either.
    revoke(&app, ClientAuth::Basic(&acme), &our_token)
        .await
        .expect_status_only(200);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(me_status(&app, &acme_token).await, 200);
    assert_eq!(me_status(&app, &our_token).await, 200);

    // Within their organizations, the same revokers succeed.
    revoke(&app, ClientAuth::Basic(&acme_revoker), &acme_token)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &acme_token).await, 401);
    revoke(&app, ClientAuth::Basic(&our_revoker), &our_token)
        .await
        .expect_status_only(200);
    assert_eq!(me_status(&app, &our_token).await, 401);
}

/// A user manager who is not an administrator cannot disable, demote or narrow one, and in
/// the deployment's organization cannot make an administrator (who would also manage
/// organizations) without holding `organizations:manage` itself.
async fn a_user_manager_cannot_act_on_someone_more_powerful(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user("admin@example.com", &["--admin"]);
    let everything_but_organizations: Vec<&str> = keygate::domain::MANAGEMENT_PERMISSIONS
        .iter()
        .copied()
        .chain([
            "invoices:read",
            "invoices:write",
            "payment-links:read",
            "payment-links:write",
            "clients:read",
            "clients:write",
            "payouts:read",
            "payouts:write",
            "disbursements:read",
            "disbursements:write",
            "webhooks:read",
            "webhooks:write",
        ])
        .collect();
    let manager = app.create_user(
        "manager@example.com",
        &["--permissions", &everything_but_organizations.join(",")],
    );
    let session = app.log_in(&manager.email, &manager.password).await;
    let admin_path = format!("/v1/users/{}", admin.id);
    for change in [
        json!({ "status": "disabled" }),
        json!({ "admin": false }),
        json!({ "permissions": ["invoices:read"] }),
    ] {
        let response = app
            .with_session(Method::PATCH, &admin_path, &session)
            .json(&change)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{change}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("organizations:manage"),
            "{body}"
        );
    }
    let response = app
        .with_session(Method::POST, "/v1/users", &session)
        .json(&json!({ "email": "new-admin@example.com", "admin": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "a non-administrator made an administrator"
    );
    // A peer (who holds nothing the manager lacks) can still be managed.
    let peer = app.create_user("peer@example.com", &["--permissions", "invoices:read"]);
    let response = app
        .with_session(Method::PATCH, &format!("/v1/users/{}", peer.id), &session)
        .json(&json!({ "status": "disabled" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

backend_tests!(
    a_user_manager_cannot_act_on_someone_more_powerful,
    cli_users_create_prints_a_generated_password_once_that_logs_in,
    cli_users_create_reads_a_password_from_stdin,
    cli_users_create_refuses_a_duplicate_email_an_unknown_permission_and_a_short_password,
    cli_users_list_shows_each_organizations_users_without_secrets,
    cli_organizations_are_created_once_and_listed,
    cli_api_keys_cannot_be_granted_a_scope_their_owner_lacks,
    cli_api_keys_without_an_owner_belong_to_the_organizations_first_admin,
    cli_api_keys_of_an_organization_without_users_have_no_owner_and_exactly_their_scopes,
    an_admin_session_lists_creates_retrieves_and_updates_users,
    a_users_manage_token_lists_creates_retrieves_and_updates_users,
    disabling_a_user_ends_their_sessions_keys_and_tokens,
    removing_a_permission_from_a_user_narrows_their_keys_at_once,
    a_caller_cannot_grant_a_permission_it_does_not_hold,
    only_an_administrator_can_make_an_administrator,
    another_organizations_user_is_not_found,
    user_requests_with_unknown_fields_or_bad_values_are_refused_naming_the_field,
    an_unknown_permission_is_refused_as_a_bad_value_naming_the_field,
    the_users_api_without_users_manage_is_insufficient_scope,
    a_deployment_admin_lists_creates_and_retrieves_organizations,
    an_admin_of_another_organization_cannot_manage_organizations,
    login_sets_an_http_only_same_site_strict_cookie_without_secure_over_http,
    logging_out_needs_the_csrf_token_and_ends_the_session,
    a_state_changing_call_with_a_session_but_without_the_right_csrf_token_is_forbidden,
    a_wrong_password_and_an_unknown_email_get_the_same_answer,
    five_wrong_passwords_lock_the_account,
    logins_are_audited_with_their_outcome,
    audit_events_filter_by_actor_action_and_target_newest_first,
    audit_events_filter_by_time_range,
    audit_events_are_paged_with_limit_and_offset,
    audit_events_refuse_bad_query_parameters_naming_them,
    audit_events_need_audit_read,
    audit_events_of_another_organization_are_never_returned,
    audit_events_record_the_callers_address_and_user_agent,
    audit_events_never_contain_a_password_or_secret,
    introspection_of_an_active_token_returns_its_claims,
    introspection_of_expired_garbage_revoked_or_foreign_tokens_is_inactive,
    introspection_needs_credentials_holding_tokens_introspect,
    a_client_revokes_its_own_token_at_once_while_its_other_tokens_keep_working,
    revoking_another_clients_token_needs_tokens_revoke,
    revoking_a_garbage_token_answers_200_and_revocation_needs_client_authentication,
    a_token_of_another_organization_is_never_revoked,
);
