//! `keygate users` and `keygate organizations`: operators created with a generated or a chosen
//! password (shown once, never listed), and tenants.

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{
    Backend, assert_cli_ok, assert_cli_refused, claims_of, cli_with_stdin, create_organization,
    login, spawn_app, stderr, stdout, strings,
};

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

backend_tests!(
    cli_users_create_prints_a_generated_password_once_that_logs_in,
    cli_users_create_reads_a_password_from_stdin,
    cli_users_create_refuses_a_duplicate_email_an_unknown_permission_and_a_short_password,
    cli_users_list_shows_each_organizations_users_without_secrets,
    cli_organizations_are_created_once_and_listed,
);
