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

/// The variables the image sets (its Dockerfile's `ENV` instructions), and its volume.
pub(crate) fn image_settings() -> (Vec<(String, String)>, String) {
    let dockerfile =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Dockerfile")).unwrap();
    let mut env = Vec::new();
    let mut volume = None;
    let mut lines = dockerfile.lines();
    while let Some(line) = lines.next() {
        if let Some(rest) = line.strip_prefix("VOLUME ") {
            volume = Some(rest.trim_matches(|c| " []\"".contains(c)).to_owned());
        }
        let Some(mut rest) = line.strip_prefix("ENV ") else {
            continue;
        };
        loop {
            let continued = rest.trim_end().ends_with('\\');
            for pair in rest.trim_end().trim_end_matches('\\').split_whitespace() {
                let (name, value) = pair.split_once('=').expect("ENV NAME=VALUE");
                env.push((name.to_owned(), value.to_owned()));
            }
            match lines.next() {
                Some(next) if continued => rest = next,
                _ => break,
            }
        }
    }
    (env, volume.expect("the image declares a volume"))
}

/// The image's dependency stage builds from the manifests alone, with a stub for every target
/// Cargo.toml names (Cargo refuses a manifest whose targets are missing): each example and
/// bench has its stub.
#[test]
fn the_images_dependency_stage_stubs_every_named_target() {
    let root = env!("CARGO_MANIFEST_DIR");
    let dockerfile = std::fs::read_to_string(format!("{root}/Dockerfile")).unwrap();
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let mut section = "";
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if let Some(name) = line.strip_prefix("name = ")
            && (section == "[[example]]" || section == "[[bench]]")
        {
            let dir = if section == "[[example]]" {
                "examples"
            } else {
                "benches"
            };
            let stub = format!("> {dir}/{}.rs", name.trim_matches('"'));
            assert!(dockerfile.contains(&stub), "the Dockerfile lacks `{stub}`");
        }
    }
}

/// In the image, SQLite lives in the volume by default; `DATABASE_URL` or
/// `KEYGATE_DATABASE__URL` given at `docker run` choose another database. Run here with the
/// image's variables and configuration, its absolute paths under a temporary root.
#[test]
fn the_image_keeps_sqlite_in_its_volume_unless_given_a_database_url() {
    let (image_env, volume) = image_settings();
    for (name, _) in &image_env {
        assert!(
            name != "DATABASE_URL" && name != "KEYGATE_DATABASE__URL",
            "the image sets {name}: it would hide the URL a user gives at docker run"
        );
    }
    let root = tempfile::tempdir().unwrap();
    let inside = |path: &str| root.path().join(path.trim_start_matches('/'));
    let migrate = |given: &[(&str, &str)]| -> String {
        let mut command = keygate_command();
        command.env_remove("XDG_DATA_HOME");
        for (name, value) in &image_env {
            match value.starts_with('/') {
                true => command.env(name, inside(value)),
                false => command.env(name, value),
            };
        }
        let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
        // The image's user has its home in the volume; never the home of whoever runs this.
        let out = command
            .current_dir(root.path())
            .env("HOME", inside(&volume))
            .envs(given.iter().copied())
            .env("KEYGATE_TOKENS__ISSUER", "https://auth.example.test")
            .args(["--config", config, "migrate"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };

    let in_volume = inside(&volume).join("keygate.db");
    let used = migrate(&[]);
    assert!(
        used.contains(&format!("using SQLite at {}", in_volume.display())),
        "{used}"
    );
    assert!(in_volume.is_file());

    let elsewhere = tempfile::tempdir().unwrap();
    let given = elsewhere.path().join("given.db");
    let given = given.to_str().unwrap();
    let used = migrate(&[("DATABASE_URL", given)]);
    assert!(used.contains(&format!("using SQLite at {given}")), "{used}");
    let preferred = elsewhere.path().join("preferred.db");
    let preferred = preferred.to_str().unwrap();
    let used = migrate(&[
        ("DATABASE_URL", given),
        ("KEYGATE_DATABASE__URL", preferred),
    ]);
    assert!(
        used.contains(&format!("using SQLite at {preferred}")),
        "KEYGATE_DATABASE__URL comes first: {used}"
    );
}
