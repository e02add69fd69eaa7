//! `keygate signing-keys list|rotate`: only a key published ahead of use ever signs, also
//! across changes of the configured algorithm.

use std::process::Command;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use keygate::tokens::MasterKey;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, ServerProcess, TestApp, TestDatabase, assert_cli_ok, eventually, keygate_command,
    spawn_app, stdout,
};

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

/// A deployment of keygate processes on one database: the same master key and issuer at every
/// start, as an operator runs it (the port changes from start to start).
struct Deployment {
    db: TestDatabase,
    master_key: String,
    dir: tempfile::TempDir,
}

const ISSUER: &str = "https://auth.example.test";

impl Deployment {
    fn new(backend: Backend) -> Deployment {
        Deployment {
            db: TestDatabase::create(backend),
            master_key: MasterKey::generate_encoded(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `keygate ARGS` with `tokens.algorithm` set to `algorithm`.
    fn command(&self, algorithm: &str, args: &[&str]) -> Command {
        let mut command = keygate_command();
        command
            .current_dir(self.dir.path())
            .args(["--profile", "test", "--database", self.db.url()])
            .args(args)
            .env("KEYGATE_MASTER_KEY", &self.master_key)
            .env("KEYGATE_TOKENS__ISSUER", ISSUER)
            .env("KEYGATE_TOKENS__ALGORITHM", algorithm);
        command
    }

    fn serve(&self, algorithm: &str) -> ServerProcess {
        ServerProcess::start(
            self.command(algorithm, &["serve", "--bind", "127.0.0.1:0"])
                .env("RUST_LOG", "warn,keygate::startup=info"),
        )
    }

    fn cli(&self, algorithm: &str, args: &[&str]) -> Value {
        let out = self
            .command(algorithm, args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert_cli_ok(&out);
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    /// `signing-keys list --json`: (kid, algorithm, status) of every key, newest first.
    fn keys(&self) -> Vec<(String, String, String)> {
        let rows = self.cli("ES256", &["signing-keys", "list", "--json"]);
        rows.as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let field = |name: &str| k[name].as_str().unwrap().to_owned();
                (field("kid"), field("algorithm"), field("status"))
            })
            .collect()
    }
}

pub(super) async fn token_from(server: &ServerProcess, client_id: &str, secret: &str) -> String {
    let response = reqwest::Client::new()
        .post(server.url("/v1/token"))
        .json(&json!({ "client_id": client_id, "client_secret": secret }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn jwks_of(server: &ServerProcess) -> JwkSet {
    reqwest::get(server.url("/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The token's (kid, algorithm), once it verifies as a third party verifies it: with the
/// server's published JWKS only.
async fn verify_with_jwks(server: &ServerProcess, token: &str) -> (String, String) {
    let jwks = jwks_of(server).await;
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.clone().unwrap();
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("the token's key {kid} is not published"));
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["keygate"]);
    validation.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies with the published JWKS");
    (kid, format!("{:?}", header.alg))
}

/// keygate itself still takes the token.
pub(super) async fn accepted_by(server: &ServerProcess, token: &str) -> bool {
    reqwest::Client::new()
        .get(server.url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

/// keygate started with ES256, then restarted with EdDSA: the restart publishes a next key of
/// EdDSA beside the ES256 ones, the active ES256 key goes on signing, and what it signed still
/// verifies; the next rotation makes the EdDSA key sign, and the tokens signed before it keep
/// verifying until they expire.
async fn a_restart_with_another_algorithm_signs_with_it_from_the_next_rotation(backend: Backend) {
    let deployment = Deployment::new(backend);
    let first = deployment.serve("ES256");
    let key = deployment.cli(
        "ES256",
        &[
            "api-keys",
            "create",
            "--name",
            "billing",
            "--scopes",
            "invoices:read",
            "--json",
        ],
    );
    let (client_id, secret) = (
        key["client_id"].as_str().unwrap().to_owned(),
        key["client_secret"].as_str().unwrap().to_owned(),
    );
    let before = token_from(&first, &client_id, &secret).await;
    let (es256_kid, alg) = verify_with_jwks(&first, &before).await;
    assert_eq!(alg, "ES256");
    first.kill();

    let second = deployment.serve("EdDSA");
    let keys = deployment.keys();
    let next_eddsa: Vec<&String> = keys
        .iter()
        .filter(|(_, alg, status)| alg == "EdDSA" && status == "next")
        .map(|(kid, _, _)| kid)
        .collect();
    assert_eq!(next_eddsa.len(), 1, "one next key of EdDSA: {keys:?}");
    let next_eddsa = next_eddsa[0].clone();
    assert!(
        keys.contains(&(es256_kid.clone(), "ES256".into(), "active".into())),
        "the ES256 key is still the active one: {keys:?}"
    );
    let jwks = jwks_of(&second).await;
    assert!(
        jwks.find(&next_eddsa).is_some(),
        "the next EdDSA key is published ahead of its use"
    );
    assert_eq!(
        verify_with_jwks(&second, &before).await,
        (es256_kid.clone(), "ES256".into()),
        "a token from before the restart verifies with the new JWKS"
    );
    assert!(accepted_by(&second, &before).await, "and keygate takes it");
    let until_rotation = token_from(&second, &client_id, &secret).await;
    assert_eq!(
        verify_with_jwks(&second, &until_rotation).await,
        (es256_kid.clone(), "ES256".into()),
        "until a rotation, the active ES256 key signs"
    );

    let rotated = deployment.cli("EdDSA", &["signing-keys", "rotate", "--json"]);
    assert_eq!(
        rotated["active"], next_eddsa,
        "the rotation activates the EdDSA key published at the restart"
    );
    let switched = eventually(10, || async {
        let token = token_from(&second, &client_id, &secret).await;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        header.kid.as_deref() == Some(next_eddsa.as_str())
    })
    .await;
    assert!(
        switched,
        "the server signs with the EdDSA key after the rotation"
    );
    let after = token_from(&second, &client_id, &secret).await;
    assert_eq!(
        verify_with_jwks(&second, &after).await,
        (next_eddsa.clone(), "EdDSA".into())
    );
    for (what, token) in [
        ("before the restart", &before),
        ("before the rotation", &until_rotation),
    ] {
        assert_eq!(
            verify_with_jwks(&second, token).await.0,
            es256_kid,
            "a token signed {what} still verifies with the JWKS"
        );
        assert!(
            accepted_by(&second, token).await,
            "keygate still takes a token signed {what}"
        );
    }
    let keys = deployment.keys();
    assert!(
        keys.iter()
            .any(|(_, alg, status)| alg == "EdDSA" && status == "next"),
        "a new next key of EdDSA is published: {keys:?}"
    );
    assert!(
        !keys
            .iter()
            .any(|(_, alg, status)| alg == "ES256" && status == "next"),
        "the ES256 next key, which never signed, is withdrawn: {keys:?}"
    );
    second.kill();
}

backend_tests!(
    an_algorithm_change_goes_through_a_published_next_key,
    a_restart_with_another_algorithm_signs_with_it_from_the_next_rotation,
);
