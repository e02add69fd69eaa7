//! `keygate api-keys`: keys created (and their secret printed once), listed, shown, rotated and
//! revoked from the command line, and owned by a user whose permissions bound their scopes.

use std::process::Output;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, TestApp, assert_cli_ok, assert_cli_refused, claims_of,
    create_organization, spawn_app, stderr, stdout, strings,
};

async fn create_prints_the_secret_once_and_nothing_shows_it_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "Nightly export",
        "--scopes",
        "invoices:read,clients:read",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let client_id = printed
        .lines()
        .find_map(|l| l.strip_prefix("client_id:"))
        .unwrap()
        .trim()
        .to_owned();
    let secret = printed
        .lines()
        .find_map(|l| l.strip_prefix("client_secret:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(client_id.starts_with("kgc_"));
    assert!(secret.starts_with("kgs_live_"));
    assert!(
        !stderr(&out).contains(&secret),
        "the secret goes to stdout only"
    );

    for args in [
        &["api-keys", "list"][..],
        &["api-keys", "list", "--json"][..],
    ] {
        let listed = app.cli(args);
        assert!(stdout(&listed).contains(&client_id));
        assert!(
            !stdout(&listed).contains(&secret[9..]),
            "list never shows a secret"
        );
    }
    let rows: Value =
        serde_json::from_slice(&app.cli(&["api-keys", "list", "--json"]).stdout).unwrap();
    assert_eq!(rows[0]["name"], "Nightly export");
    assert_eq!(rows[0]["scopes"], json!(["clients:read", "invoices:read"]));
    assert_eq!(rows[0]["status"], "enabled");

    // The secret printed is the one that works.
    let response = app
        .post_token_json(json!({ "client_id": client_id, "client_secret": secret }))
        .await;
    assert_eq!(response.status(), 200);
}

async fn create_refuses_bad_input_with_a_clear_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "an unknown scope",
            &["--scopes", "invoices:read,nope:read"],
            "nope:read",
        ),
        (
            "a past date",
            &["--scopes", "invoices:read", "--expires-on", "2020-01-01"],
            "expires_on",
        ),
        (
            "a malformed date",
            &["--scopes", "invoices:read", "--expires-on", "01/02/2027"],
            "YYYY-MM-DD",
        ),
        (
            "both expiry flags",
            &[
                "--scopes",
                "invoices:read",
                "--expires-on",
                "2099-01-01",
                "--expires-in-days",
                "3",
            ],
            "cannot be used with",
        ),
        (
            "an unknown environment",
            &["--scopes", "invoices:read", "--env", "prod"],
            "live",
        ),
        ("no scopes", &["--scopes", ""], "scope"),
    ];
    for (why, args, expected) in cases {
        let mut full = vec!["api-keys", "create", "--name", "x"];
        full.extend_from_slice(args);
        let out = app.cli(&full);
        assert!(!out.status.success(), "{why} was accepted");
        assert!(stderr(&out).contains(expected), "{why}: {}", stderr(&out));
    }
    let listed: Value =
        serde_json::from_slice(&app.cli(&["api-keys", "list", "--json"]).stdout).unwrap();
    assert_eq!(listed, json!([]), "nothing was created");
}

async fn expiry_on_a_date_means_midnight_utc_and_test_keys_are_tagged(backend: Backend) {
    let app = spawn_app(backend).await;
    let date = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "sandbox",
        "--scopes",
        "invoices:read",
        "--env",
        "test",
        "--expires-on",
        &date,
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["expires_at"], format!("{date}T00:00:00Z"));
    assert_eq!(created["environment"], "test");
    assert!(
        created["client_secret"]
            .as_str()
            .unwrap()
            .starts_with("kgs_test_")
    );
    assert!(
        created["key_prefix"]
            .as_str()
            .unwrap()
            .starts_with("kgs_test_")
    );
    let token = app
        .token_for(&crate::helpers::TestKey {
            client_id: created["client_id"].as_str().unwrap().into(),
            client_secret: created["client_secret"].as_str().unwrap().into(),
        })
        .await;
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
    assert_eq!(claims["env"], "test");
}

/// `--disabled`: the key exists, but gets no token until it is enabled.
async fn a_key_created_disabled_gets_no_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "later",
        "--scopes",
        "invoices:read",
        "--disabled",
        "--json",
    ]);
    assert_cli_ok(&out);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["status"], "disabled", "{created}");
    let shown = app.cli(&[
        "api-keys",
        "show",
        created["client_id"].as_str().unwrap(),
        "--json",
    ]);
    assert_cli_ok(&shown);
    assert!(
        stdout(&shown).contains("\"disabled\""),
        "{}",
        stdout(&shown)
    );
    let response = app
        .post_token_json(json!({
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
        }))
        .await;
    assert_eq!(response.status(), 401);
}

/// The README walkthrough evaluates `--shell` output; it must be exactly two export lines.
async fn shell_output_exports_the_credentials(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "w",
        "--scopes",
        "invoices:read",
        "--shell",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    let client_id = lines[0]
        .strip_prefix("export CLIENT_ID=")
        .expect("first line exports CLIENT_ID");
    let secret = lines[1]
        .strip_prefix("export CLIENT_SECRET=")
        .expect("second line exports CLIENT_SECRET");
    assert!(
        secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "safe for eval"
    );
    let response = app
        .post_token_json(json!({ "client_id": client_id, "client_secret": secret }))
        .await;
    assert_eq!(response.status(), 200);
}

async fn after_a_cli_revoke_me_refuses_the_token_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let token = app.token_for(&key).await;
    assert_eq!(app.get_with_token("/v1/me", &token).await.status(), 200);
    assert!(
        app.cli(&["api-keys", "revoke", &key.client_id])
            .status
            .success()
    );
    // /v1/me reads the key, so it refuses at once; routes that only validate the token hear
    // of the revocation from the change feed.
    assert_eq!(app.get_with_token("/v1/me", &token).await.status(), 401);
    let refused = crate::helpers::eventually(1, || async {
        app.get_with_token("/v1/me/permissions", &token)
            .await
            .status()
            == 401
    })
    .await;
    assert!(
        refused,
        "/v1/me/permissions still accepts the revoked key's token"
    );
}

/// `api-keys rotate --json` names the new secret's public prefix (what lists and logs show
/// of it): the start of the new secret, not of the one it replaces.
fn assert_prefix_of_new_secret(rotated: &Value, previous_secret: &str) {
    let prefix = rotated["key_prefix"].as_str().expect("key_prefix");
    let secret = rotated["client_secret"].as_str().unwrap();
    assert!(prefix.starts_with("kgs_live_"), "{rotated}");
    assert!(
        secret.starts_with(prefix) && secret.len() > prefix.len(),
        "{rotated}"
    );
    assert!(!previous_secret.starts_with(prefix), "{rotated}");
}

async fn rotate_prints_a_new_secret_and_honours_the_grace_period(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let body = |secret: &str| json!({ "client_id": key.client_id, "client_secret": secret });

    let out = app.cli(&[
        "api-keys",
        "rotate",
        &key.client_id,
        "--grace",
        "2s",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_secret_expires_at"].is_string());
    assert_prefix_of_new_secret(&rotated, &key.client_secret);
    assert_eq!(app.post_token_json(body(&second)).await.status(), 200);
    assert_eq!(
        app.post_token_json(body(&key.client_secret)).await.status(),
        200,
        "inside the grace period"
    );
    let expired = crate::helpers::eventually(5, || async {
        app.post_token_json(body(&key.client_secret)).await.status() == 401
    })
    .await;
    assert!(expired, "the old secret outlived its grace period");

    let out = app.cli(&["api-keys", "rotate", &key.client_id, "--json"]);
    let third: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(third["previous_secret_expires_at"].is_null());
    assert_prefix_of_new_secret(&third, &second);
    // The CLI is another process: the server hears of the rotation through the change feed.
    let stopped = crate::helpers::eventually(1, || async {
        app.post_token_json(body(&second)).await.status() == 401
    })
    .await;
    assert!(
        stopped,
        "no grace: the old secret stops within a feed interval"
    );
    assert_eq!(
        app.post_token_json(body(third["client_secret"].as_str().unwrap()))
            .await
            .status(),
        200
    );

    for bad in ["8d", "soon", "-1"] {
        let out = app.cli(&["api-keys", "rotate", &key.client_id, "--grace", bad]);
        assert!(!out.status.success(), "--grace {bad} was accepted");
    }
    let shown = app.cli(&["api-keys", "show", &key.client_id, "--json"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["client_id"], key.client_id.as_str());
    assert!(
        !String::from_utf8_lossy(&app.cli(&["api-keys", "show", &key.client_id]).stdout)
            .contains("kgs_")
    );
}

async fn revoking_an_unknown_key_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let out = app.cli(&["api-keys", "revoke", "kgc_00000000000000000000"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no API key"));
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

    // Nobody's own, so only a key with api_keys:manage sees it.
    let path = format!("/v1/api-keys/{}", key.client_id);
    Reply::send(app.with_token(Method::GET, &path, &token))
        .await
        .expect_error(404, "not_found");
    let manager = app.create_key_with(&["api_keys:read", "api_keys:manage"], &["--org", "acme"]);
    let manager_token = app.token_for(&manager).await;
    let view = Reply::send(app.with_token(Method::GET, &path, &manager_token))
        .await
        .expect(200);
    assert!(view["created_by"].is_null(), "no owner: {view}");

    // It holds users:manage itself, narrowed by nobody.
    let users = Reply::send(app.with_token(Method::GET, "/v1/users", &token))
        .await
        .expect(200);
    assert_eq!(users["count"], 0);
}

/// `api-keys list` lists any organization (`--org`), with the API's filters and orders.
async fn list_takes_the_organization_and_the_apis_filters_and_orders(backend: Backend) {
    let app = spawn_app(backend).await;
    crate::helpers::create_organization(&app, "acme");
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["api-keys", "list", "--json"];
        all.extend_from_slice(args);
        let out = app.cli(&all);
        assert!(out.status.success(), "{}", stderr(&out));
        let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
        rows.iter()
            .map(|r| r["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for (name, org, env) in [
        ("b", "acme", "live"),
        ("a", "acme", "test"),
        ("c", "default", "live"),
    ] {
        let out = app.cli(&[
            "api-keys",
            "create",
            "--name",
            name,
            "--scopes",
            "invoices:read",
            "--org",
            org,
            "--env",
            env,
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    assert_eq!(listed(&[]), ["c"]);
    assert_eq!(listed(&["--org", "acme", "--order-by", "name"]), ["a", "b"]);
    assert_eq!(
        listed(&["--org", "acme", "--order-by", "name", "--desc"]),
        ["b", "a"]
    );
    assert_eq!(listed(&["--org", "acme", "--env", "test"]), ["a"]);
    assert!(listed(&["--org", "acme", "--status", "revoked"]).is_empty());
    let refused = app.cli(&["api-keys", "list", "--status", "paused"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("enabled"), "{}", stderr(&refused));
    let unknown = app.cli(&["api-keys", "list", "--org", "nobody"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no organization"),
        "{}",
        stderr(&unknown)
    );
}

/// The client_ids of the default organization's keys.
fn listed_ids(app: &TestApp) -> Vec<String> {
    let out = app.cli(&["api-keys", "list", "--json"]);
    assert_cli_ok(&out);
    let keys: Value = serde_json::from_str(&stdout(&out)).unwrap();
    keys.as_array()
        .unwrap()
        .iter()
        .map(|k| k["client_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn import_creates_every_key_of_a_file_or_none(backend: Backend) {
    let app = spawn_app(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keys.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"name": "billing sync", "scopes": ["invoices:read"], "metadata": {"team": "billing"}}"#,
            "\n\n",
            r#"{"name": "payouts", "scopes": ["payouts:write", "invoices:read"], "environment": "test", "expires_in_days": 30}"#,
            "\n",
            r#"{"name": "dormant", "scopes": ["invoices:read"], "disabled": true, "token_only": true}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = app.cli(&["api-keys", "import", file.to_str().unwrap()]);
    assert_cli_ok(&out);
    let created: Vec<Value> = stdout(&out)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = created
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["billing sync", "payouts", "dormant"]);
    assert_eq!(created[1]["environment"], "test");
    assert!(created[1]["expires_at"].is_string());
    assert_eq!(created[2]["status"], "disabled");
    assert!(
        stderr(&out).contains("shown only this once"),
        "{}",
        stderr(&out)
    );
    // Each secret works, once printed.
    let first = crate::helpers::TestKey {
        client_id: created[0]["client_id"].as_str().unwrap().to_owned(),
        client_secret: created[0]["client_secret"].as_str().unwrap().to_owned(),
    };
    let token = app.token_for(&first).await;
    assert_eq!(claims_of(&token)["scope"], "invoices:read");
    let shown = app.cli(&["api-keys", "show", &first.client_id, "--json"]);
    assert!(stdout(&shown).contains("billing"), "{}", stdout(&shown));
    let before = listed_ids(&app);
    assert_eq!(before.len(), 3);

    // A file with any bad line makes nothing, and says which lines are wrong.
    std::fs::write(
        &file,
        concat!(
            r#"{"name": "fine", "scopes": ["invoices:read"]}"#,
            "\n",
            r#"{"name": "unknown scope", "scopes": ["invoices:burn"]}"#,
            "\n",
            "not json\n",
            r#"{"name": "typo", "scopes": ["invoices:read"], "enviroment": "test"}"#,
            "\n",
        ),
    )
    .unwrap();
    let refused = app.cli(&["api-keys", "import", file.to_str().unwrap()]);
    assert_cli_refused(
        &refused,
        &["nothing was imported", "line 2", "line 3", "line 4"],
    );
    assert!(
        !stderr(&refused).contains("line 1:"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(listed_ids(&app), before);

    // From standard input.
    let piped = crate::helpers::cli_with_stdin(
        &app,
        &["api-keys", "import", "-"],
        "{\"name\": \"piped\", \"scopes\": [\"invoices:read\"]}\n",
    );
    assert_cli_ok(&piped);
    assert_eq!(stdout(&piped).lines().count(), 1);
    let missing = app.cli(&["api-keys", "import", "/no/such/file.jsonl"]);
    assert_cli_refused(&missing, &["cannot read"]);
}

backend_tests!(
    import_creates_every_key_of_a_file_or_none,
    a_key_created_disabled_gets_no_token,
    list_takes_the_organization_and_the_apis_filters_and_orders,
    create_prints_the_secret_once_and_nothing_shows_it_again,
    create_refuses_bad_input_with_a_clear_message,
    expiry_on_a_date_means_midnight_utc_and_test_keys_are_tagged,
    shell_output_exports_the_credentials,
    after_a_cli_revoke_me_refuses_the_token_at_once,
    rotate_prints_a_new_secret_and_honours_the_grace_period,
    revoking_an_unknown_key_fails,
    cli_api_keys_cannot_be_granted_a_scope_their_owner_lacks,
    cli_api_keys_without_an_owner_belong_to_the_organizations_first_admin,
    cli_api_keys_of_an_organization_without_users_have_no_owner_and_exactly_their_scopes,
);
