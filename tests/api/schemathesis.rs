//! schemathesis (an OpenAPI fuzzer, `scripts/install-schemathesis`) against keygate's own
//! `/openapi.json`, with real credentials: every documented operation gets generated requests,
//! valid and invalid, and every answer must be no 5xx, of a status and content type the
//! document lists for the operation, and valid against the schema it gives that status.
//!
//! Nothing a request does may end the credentials the rest of the run depends on, so the run is
//! two passes. The first covers every operation except [`CALLER_ENDING`] (those that can revoke,
//! rotate, disable or narrow the caller's own key, its owner or its organization, or end the
//! session), using identifiers schemathesis learns from earlier answers. The second covers only
//! those, with every path identifier pinned to a spare user, key and organization made for them.
//! Afterwards the run's token must still be accepted.
//!
//! schemathesis is found as `SCHEMATHESIS` names it, where `scripts/install-schemathesis` puts it,
//! or on `PATH`. Without it the test says so on standard error and passes without running, unless
//! `KEYGATE_SCHEMATHESIS=required` makes that an error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, TestApp, create_organization, spawn_app_with};

/// `required`: a machine without schemathesis fails the test instead of skipping it.
pub const SCHEMATHESIS_VAR: &str = "KEYGATE_SCHEMATHESIS";

/// The checks every answer is held to.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Generated cases per operation and phase: enough to reach every parameter and field, few
/// enough that both passes take seconds.
const MAX_EXAMPLES: &str = "20";

/// The operations (`operationId`s) that can end the run's own credentials: the second pass.
const CALLER_ENDING: &[&str] = &[
    "update_user",
    "update_api_key",
    "delete_api_key",
    "revoke_api_key",
    "rotate_api_key",
    "update_organization",
    "delete_organization",
    "log_out",
];

/// The schemathesis program, or `None` (after saying why, loudly) when it is not installed;
/// with `KEYGATE_SCHEMATHESIS=required`, its absence fails the test.
fn program() -> Option<PathBuf> {
    let named = std::env::var_os("SCHEMATHESIS").map(PathBuf::from);
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")));
    let installed = cache.map(|dir| dir.join("keygate/schemathesis/bin/schemathesis"));
    let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("schemathesis"))
        .collect::<Vec<_>>();
    let found = named
        .into_iter()
        .chain(installed)
        .chain(on_path)
        .find(|path| is_executable(path));
    if found.is_some() {
        return found;
    }
    let why = "schemathesis is not installed (bash scripts/install-schemathesis)";
    let required = std::env::var(SCHEMATHESIS_VAR).is_ok_and(|v| v == "required");
    assert!(!required, "{SCHEMATHESIS_VAR}=required, but {why}");
    static SAID: Once = Once::new();
    SAID.call_once(|| {
        // Straight to the process's standard error: the test harness captures `eprintln!`
        // of passing tests, and this must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "\n\
             ************************************************************************\n\
             SKIPPED: {why}; set {SCHEMATHESIS_VAR}=required to make this an error\n\
             ************************************************************************\n"
        );
    });
    None
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A TOML string (a JSON string is one, for the plain text of tokens and identifiers).
fn toml(value: &str) -> String {
    Value::from(value).to_string()
}

/// Logs `email` in: the session cookie's value, the CSRF token, and the user's permissions.
async fn session(app: &TestApp, email: &str, password: &str) -> (String, String, Vec<String>) {
    let response = app
        .client
        .post(app.url("/v1/session"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = Reply::of(response).await.expect(200);
    let value = cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .unwrap()
        .1
        .to_owned();
    let permissions = body["user"]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    (
        value,
        body["csrf_token"].as_str().unwrap().to_owned(),
        permissions,
    )
}

/// Runs schemathesis with `config` on `operations` (`--include-…`/`--exclude-…` options),
/// off the test's runtime, which serves the in-process keygate meanwhile.
async fn run(
    program: &Path,
    app: &TestApp,
    dir: &Path,
    config: &str,
    operations: &[String],
) -> Output {
    let file = dir.join("schemathesis.toml");
    std::fs::write(&file, config).unwrap();
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .arg("--config-file")
        .arg(&file)
        .args(["run", &app.url("/openapi.json")])
        .args(["--checks", CHECKS, "--max-examples", MAX_EXAMPLES])
        // The same cases every run, one at a time.
        .args(["--generation-deterministic", "--workers", "1"])
        // Credentials come from the configuration; made-up ones would only be refused.
        .args(["--generation-with-security-parameters", "false"])
        .args(["--request-timeout", "10", "--no-color"])
        .args(operations);
    actix_web::rt::task::spawn_blocking(move || command.output().expect("schemathesis runs"))
        .await
        .unwrap()
}

fn assert_passed(pass: &str, out: &Output) {
    assert!(
        out.status.success(),
        "schemathesis ({pass}) failed with {}:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn schemathesis_finds_nothing_to_fault(backend: Backend) {
    let Some(program) = program() else { return };
    // The token endpoint's limits have tests of their own; here they would only turn the
    // fuzzing of credentials into 429s.
    let app = spawn_app_with(backend, |s| s.rate_limit.enabled = false).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let (cookie, csrf, permissions) = session(&app, ADMIN, &admin.password).await;
    let permissions: Vec<&str> = permissions.iter().map(String::as_str).collect();
    let key = app.create_key_with(&permissions, &["--owner", ADMIN]);
    let token = app.token_for(&key).await;
    // What the second pass may revoke, rotate, disable, narrow or delete.
    let spare_user = app.create_user("spare@example.com", &[]);
    let spare_key = app.create_key(&["invoices:read"]);
    create_organization(&app, "spare-org");

    let config = format!(
        "max-stream-events = 2\n\
         warnings = {{ fail-on = [\"missing_auth\"] }}\n\
         [auth.openapi.bearerAuth]\nbearer = {}\n\
         [auth.openapi.clientBasic]\nusername = {}\npassword = {}\n\
         [auth.openapi.sessionCookie]\napi_key = {}\n\
         [auth.openapi.csrfHeader]\napi_key = {}\n",
        toml(&token),
        toml(&key.client_id),
        toml(&key.client_secret),
        toml(&cookie),
        toml(&csrf),
    );
    let pinned = format!(
        "{config}[parameters]\nuser_id = {}\nclient_id = {}\nname = \"spare-org\"\n",
        toml(&spare_user.id),
        toml(&spare_key.client_id),
    );
    let option = |flag: &str| {
        CALLER_ENDING
            .iter()
            .flat_map(|id| [flag.to_owned(), (*id).to_owned()])
            .collect::<Vec<_>>()
    };

    let first = tempfile::tempdir().unwrap();
    let out = run(
        &program,
        &app,
        first.path(),
        &config,
        &option("--exclude-operation-id"),
    )
    .await;
    assert_passed(
        "every operation but those ending the caller's credentials",
        &out,
    );
    let second = tempfile::tempdir().unwrap();
    let out = run(
        &program,
        &app,
        second.path(),
        &pinned,
        &option("--include-operation-id"),
    )
    .await;
    assert_passed("the operations ending credentials, on spare rows", &out);

    let me = Reply::send(app.with_token(Method::GET, "/v1/me", &token)).await;
    assert_eq!(
        me.status, 200,
        "the run's own token stayed valid, so every request ran as intended: {}",
        me.text
    );
}

backend_tests!(schemathesis_finds_nothing_to_fault);
