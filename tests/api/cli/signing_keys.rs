//! `keygate signing-keys list|rotate`: only a key published ahead of use ever signs, also
//! across changes of the configured algorithm.

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_cli_ok, eventually, spawn_app, stdout};

/// `signing-keys list --json`: (kid, algorithm, status) of every key, newest first.
fn keys(app: &TestApp) -> Vec<(String, String, String)> {
    let out = app.cli(&["signing-keys", "list", "--json"]);
    assert_cli_ok(&out);
    let rows: Vec<Value> = serde_json::from_str(&stdout(&out)).unwrap();
    rows.iter()
        .map(|k| {
            let field = |name: &str| k[name].as_str().unwrap().to_owned();
            (field("kid"), field("algorithm"), field("status"))
        })
        .collect()
}

fn with_status(keys: &[(String, String, String)], status: &str) -> Vec<(String, String)> {
    keys.iter()
        .filter(|(_, _, s)| s == status)
        .map(|(kid, alg, _)| (kid.clone(), alg.clone()))
        .collect()
}

/// `signing-keys rotate` with `tokens.algorithm` set to `algorithm`; the key it activated.
fn rotate(app: &TestApp, algorithm: &str) -> String {
    let out = app
        .cli_command(&["signing-keys", "rotate", "--json"])
        .env("KEYGATE_TOKENS__ALGORITHM", algorithm)
        .output()
        .unwrap();
    assert_cli_ok(&out);
    let rotated: Value = serde_json::from_str(&stdout(&out)).unwrap();
    rotated["active"].as_str().unwrap().to_owned()
}

/// ES256 to RS256, then to HS256: each rotation activates a key that was already `next`, and
/// the first of a new algorithm is published as `next` before any rotation makes it sign.
async fn an_algorithm_change_goes_through_a_published_next_key(backend: Backend) {
    let app = spawn_app(backend).await;
    for algorithm in ["RS256", "RS256", "HS256", "HS256"] {
        let before = keys(&app);
        let published = with_status(&before, "next");
        assert!(
            !published.is_empty(),
            "a next key is always published: {before:?}"
        );
        let activated = rotate(&app, algorithm);
        assert!(
            published.iter().any(|(kid, _)| *kid == activated),
            "{algorithm}: activated {activated}, which was not published as next: {before:?}"
        );
        let after = keys(&app);
        let next = with_status(&after, "next");
        assert!(
            next.iter().any(|(_, alg)| alg == algorithm),
            "{algorithm}: a next key of the configured algorithm is published: {after:?}"
        );
        assert_eq!(with_status(&after, "active").len(), 1, "{after:?}");
    }
    let after = keys(&app);
    let active = with_status(&after, "active");
    assert_eq!(
        active[0].1, "HS256",
        "two rotations later, HS256 signs: {after:?}"
    );

    // The running server follows: its JWKS publishes the asymmetric keys still verifying,
    // and its tokens are signed by the active key.
    let key = app.create_key(&["invoices:read"]);
    let switched = eventually(5, || async {
        let token = app.token_for(&key).await;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        header.kid.as_deref() == Some(active[0].0.as_str())
    })
    .await;
    assert!(switched, "the server signs with the newly active key");
}

backend_tests!(an_algorithm_change_goes_through_a_published_next_key);
