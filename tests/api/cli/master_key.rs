//! Changing the master key: with the old key given as `KEYGATE_PREVIOUS_MASTER_KEY`, keygate
//! opens what it sealed, and `signing-keys rewrap` seals everything again under the new key in
//! one step; after it, the new key alone opens everything and the old one nothing. No token,
//! API key or webhook secret is lost on the way.

use diesel::prelude::*;
use keygate::db::schema::{audit_events, signing_keys, webhook_endpoints};
use keygate::service::webhooks::SECRET_CONTEXT;
use keygate::tokens::MasterKey;
use serde_json::Value;

use super::serve::refused;
use super::signing_keys::{accepted_by, token_from};
use crate::backend_tests;
use crate::helpers::{Backend, ServerProcess, TestApp, assert_cli_ok, spawn_app, stdout};

/// Every sealed value in the database: (context it was sealed for, sealed).
fn sealed_values(app: &TestApp) -> Vec<(String, String)> {
    let pool = keygate::db::connect(&app.settings.database).unwrap();
    let mut conn = pool.get().unwrap();
    let mut values: Vec<(String, String)> = signing_keys::table
        .filter(signing_keys::private_key.ne(""))
        .select((signing_keys::kid, signing_keys::private_key))
        .load(&mut conn)
        .unwrap();
    let secrets: Vec<String> = webhook_endpoints::table
        .select(webhook_endpoints::secret)
        .load(&mut conn)
        .unwrap();
    values.extend(secrets.into_iter().map(|s| (SECRET_CONTEXT.to_owned(), s)));
    values
}

fn opens_all(key: &str, values: &[(String, String)]) -> bool {
    let key = MasterKey::parse(key).unwrap();
    values
        .iter()
        .all(|(context, sealed)| key.open(context, sealed).is_ok())
}

fn opens_none(key: &str, values: &[(String, String)]) -> bool {
    let key = MasterKey::parse(key).unwrap();
    values
        .iter()
        .all(|(context, sealed)| key.open(context, sealed).is_err())
}

/// `keygate serve` on the app's database, signing as the app does (its issuer).
fn serve(app: &TestApp, dir: &std::path::Path) -> std::process::Command {
    let mut command = app.serve_command(dir);
    command.env("KEYGATE_TOKENS__ISSUER", &app.address);
    command
}

async fn the_master_key_changes_and_nothing_sealed_is_lost(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let hook = app.cli(&[
        "webhooks",
        "create",
        "--url",
        "https://hooks.example.test/keygate",
        "--json",
    ]);
    assert_cli_ok(&hook);
    let before_change = app.post_token_json(serde_json::json!({
        "client_id": key.client_id, "client_secret": key.client_secret,
    }));
    let before_change: Value = before_change.await.json().await.unwrap();
    let before_change = before_change["access_token"].as_str().unwrap().to_owned();
    let old = app.master_key.clone();
    let new = MasterKey::generate_encoded();
    let sealed = sealed_values(&app);
    assert_eq!(sealed.len(), 3, "two signing keys and a webhook secret");
    assert!(opens_all(&old, &sealed));

    let dir = tempfile::tempdir().unwrap();
    let message = refused(serve(&app, dir.path()).env("KEYGATE_MASTER_KEY", &new));
    assert!(
        message.contains("KEYGATE_PREVIOUS_MASTER_KEY"),
        "a start with only the new key says how to change it: {message}"
    );

    let wrong = MasterKey::generate_encoded();
    let out = app
        .cli_command(&["signing-keys", "rewrap"])
        .env("KEYGATE_MASTER_KEY", &new)
        .env("KEYGATE_PREVIOUS_MASTER_KEY", &wrong)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong previous key opens nothing");
    assert_eq!(sealed_values(&app), sealed, "and changes nothing");

    // The rolling step: instances run with the new key and the old one beside it.
    let during = ServerProcess::start(
        serve(&app, dir.path())
            .env("KEYGATE_MASTER_KEY", &new)
            .env("KEYGATE_PREVIOUS_MASTER_KEY", &old),
    );
    assert!(accepted_by(&during, &before_change).await);
    let during_change = token_from(&during, &key.client_id, &key.client_secret).await;

    let out = app
        .cli_command(&["signing-keys", "rewrap", "--json"])
        .env("KEYGATE_MASTER_KEY", &new)
        .env("KEYGATE_PREVIOUS_MASTER_KEY", &old)
        .output()
        .unwrap();
    assert_cli_ok(&out);
    let done: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        done,
        serde_json::json!({
            "signing_keys": 2, "webhook_secrets": 1, "reveals": 0, "were_under_previous_key": 3,
        })
    );
    let resealed = sealed_values(&app);
    assert!(opens_all(&new, &resealed), "the new key alone opens all");
    assert!(opens_none(&old, &resealed), "the old key opens nothing");
    during.kill();

    let after = ServerProcess::start(serve(&app, dir.path()).env("KEYGATE_MASTER_KEY", &new));
    for token in [&before_change, &during_change] {
        assert!(
            accepted_by(&after, token).await,
            "tokens signed before the change still work"
        );
    }
    let fresh = token_from(&after, &key.client_id, &key.client_secret).await;
    assert!(accepted_by(&after, &fresh).await);
    after.kill();

    let message = refused(&mut serve(&app, dir.path()));
    assert!(
        message.contains("does not open"),
        "the old key alone is refused: {message}"
    );
    let pool = keygate::db::connect(&app.settings.database).unwrap();
    let recorded: i64 = audit_events::table
        .filter(audit_events::action.eq("master_key.rewrapped"))
        .count()
        .get_result(&mut pool.get().unwrap())
        .unwrap();
    assert_eq!(recorded, 1, "the change is in the audit trail");
}

backend_tests!(the_master_key_changes_and_nothing_sealed_is_lost);
