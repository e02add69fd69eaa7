//! Mistakes a person makes configuring keygate get one clear message they can act on: a
//! misspelled setting (in a file or a variable) names the closest real one, an unknown profile
//! or a wrong value says what is allowed, a taken port says how to pick another, an unreachable
//! database is one error, not one per attempt.

use std::net::TcpListener;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDatabase, keygate_command, spawn_app, stderr, stdout};

/// `keygate migrate` with these variables set; its standard error, which must be a failure.
fn refused_migrate(app: &TestApp, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut command = app.cli_command(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let out = command.arg("migrate").output().unwrap();
    assert!(!out.status.success(), "refused: {}", stdout(&out));
    let message = stderr(&out);
    assert_eq!(
        message.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "one line: {message}"
    );
    message
}

async fn misspelled_settings_are_refused_with_the_closest_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let message = refused_migrate(&app, &[("KEYGATE_TOKENS__LIFETIME", "600")], &[]);
    assert!(
        message.contains("KEYGATE_TOKENS__LIFETIME_SECONDS"),
        "{message}"
    );
    let message = refused_migrate(&app, &[("KEYGATE_TOKEN__LIFETIME_SECONDS", "600")], &[]);
    assert!(
        message.contains("did you mean KEYGATE_TOKENS__LIFETIME_SECONDS"),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("default.toml"),
        "[tokens]\nlifetime = 600\n",
    )
    .unwrap();
    let config = dir.path().to_str().unwrap();
    let message = refused_migrate(&app, &[], &["--config", config]);
    assert!(message.contains("`tokens.lifetime_seconds`"), "{message}");

    let message = refused_migrate(&app, &[("KEYGATE_TOKENS__ALGORITHM", "HS512")], &[]);
    assert!(
        message.contains("`ES256`, `EdDSA`, `RS256` or `HS256`"),
        "{message}"
    );

    let out = keygate_command()
        .args(["--profile", "prod", "--database", app.db.url(), "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no profile \"prod\""),
        "{}",
        stderr(&out)
    );

    // Variables that name no section are not keygate's to judge.
    let out = app
        .cli_command(&["migrate"])
        .env("KEYGATE_SOMETHING_ELSE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `signing.rotate_every_days` outside 0 to 3650 stops keygate at start, naming the setting
/// and the range, from a variable or from a file.
async fn a_rotation_period_out_of_range_is_refused_at_start(backend: Backend) {
    let app = spawn_app(backend).await;
    for days in ["-1", "3651", "100000"] {
        let out = app
            .cli_command(&["serve", "--bind", "127.0.0.1:0"])
            .env("KEYGATE_SIGNING__ROTATE_EVERY_DAYS", days)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{days}: refused");
        let message = stderr(&out);
        assert!(
            message.contains("signing.rotate_every_days must be between 0")
                && message.contains("3650")
                && message.contains(&format!("not {days}")),
            "{days}: {message}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("test.toml"),
        "[signing]\nrotate_every_days = -30\n",
    )
    .unwrap();
    let config = dir.path().to_str().unwrap();
    let message = refused_migrate(&app, &[], &["--config", config]);
    assert!(
        message.contains("signing.rotate_every_days must be between 0 (rotate by hand only)"),
        "{message}"
    );
}

async fn a_taken_port_says_how_to_choose_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = app.cli(&["serve", "--bind", &address]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("--bind") && message.contains("KEYGATE_SERVER__BIND"),
        "{message}"
    );
}

/// The first `migrate` says what it applied, the second that there was nothing to do; an
/// unreachable PostgreSQL is one clear error.
async fn migrate_says_what_it_did_and_an_unreachable_database_is_one_error(backend: Backend) {
    let db = TestDatabase::create(backend);
    let migrate = || {
        keygate_command()
            .args(["--profile", "test", "--database", db.url(), "migrate"])
            .output()
            .unwrap()
    };
    let first = migrate();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stdout(&first).contains("applied"), "{}", stdout(&first));
    let second = migrate();
    assert!(
        stdout(&second).contains("no migration to apply"),
        "{}",
        stdout(&second)
    );

    let out = keygate_command()
        .args([
            "--profile",
            "test",
            "--database",
            "postgres://keygate@127.0.0.1:1/nowhere",
        ])
        .env("KEYGATE_DATABASE__CONNECT_TIMEOUT_SECONDS", "1")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let message = stderr(&out);
    // libpq's own message may span lines; there is one error, and nothing logged before it.
    let errors: Vec<&str> = message
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("error"))
        .collect();
    assert_eq!(errors.len(), 1, "one error, not one per attempt: {message}");
    assert!(
        errors[0].contains("PostgreSQL at 127.0.0.1:1/nowhere"),
        "{message}"
    );
}

backend_tests!(
    misspelled_settings_are_refused_with_the_closest_name,
    a_taken_port_says_how_to_choose_another,
    a_rotation_period_out_of_range_is_refused_at_start,
    migrate_says_what_it_did_and_an_unreachable_database_is_one_error,
);
