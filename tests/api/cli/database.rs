//! Which database a command uses: by default the same file whatever the directory it is run
//! from (in the user's data directory), named on every command; and a command that only reads
//! never creates one.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::{ServerProcess, keygate_command, stderr, stdout};

/// `keygate` run from `cwd` for a user whose home is `home`, with no database named.
fn keygate_at(home: &Path, cwd: &Path) -> Command {
    let mut command = keygate_command();
    command
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .args(["--profile", "development"]);
    command
}

/// SQLite only: the default database is a SQLite file.
#[actix_web::test]
async fn the_cli_and_the_server_find_the_same_database_from_any_directory() {
    let home = tempfile::tempdir().unwrap();
    let (here, there) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let database = home.path().join(".local/share/keygate/keygate.db");

    let listed = keygate_at(home.path(), here.path())
        .args(["api-keys", "list"])
        .output()
        .unwrap();
    assert!(
        !listed.status.success(),
        "a read-only command on no database"
    );
    let message = stderr(&listed);
    assert!(message.contains("no database yet"), "{message}");
    assert!(
        message.contains(&database.display().to_string()),
        "names it: {message}"
    );
    assert!(!database.exists(), "and never creates it");

    let created = keygate_at(home.path(), here.path())
        .args([
            "api-keys",
            "create",
            "--name",
            "anywhere",
            "--scopes",
            "invoices:read",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(stderr(&created).contains(&format!("using SQLite at {}", database.display())));
    let key: Value = serde_json::from_str(&stdout(&created)).unwrap();

    // The server, started from another directory, serves that key.
    let server = ServerProcess::start(keygate_at(home.path(), there.path()).args([
        "serve",
        "--bind",
        "127.0.0.1:0",
    ]));
    let response = reqwest::Client::new()
        .post(server.url("/v1/token"))
        .json(&json!({ "client_id": key["client_id"], "client_secret": key["client_secret"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", server.log());
    assert!(!there.path().join("data").exists() && !here.path().join("data").exists());
}
