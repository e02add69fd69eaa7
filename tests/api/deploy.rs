//! `deploy/compose.yaml` and its `Caddyfile`, kept in step with keygate: the instances share
//! one configuration that keygate accepts and serves with, the proxy sends traffic to every
//! instance on the port the image listens on and routes on the readiness probe, and only the
//! proxy's network is trusted to say where a request came from.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use yaml_serde::Value as Yaml;

use crate::cli::database::image_settings;
use crate::helpers::{Backend, ServerProcess, TestDatabase, keygate_command, stderr, stdout};

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");

fn compose() -> Yaml {
    let text = std::fs::read_to_string(format!("{DEPLOY}/compose.yaml")).unwrap();
    yaml_serde::from_str(&text).expect("compose.yaml is YAML")
}

fn caddyfile() -> String {
    std::fs::read_to_string(format!("{DEPLOY}/Caddyfile")).unwrap()
}

/// Replaces compose's `${NAME}`, `${NAME:-default}` and `${NAME:?message}` with `values`, or
/// the default; a required name without a value fails the test.
fn interpolate(text: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("a closed ${…}") + start;
        let inner = &rest[start + 2..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner.split_once(":?").map_or(inner, |(n, _)| n), None),
        };
        match (values.get(name), default) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => panic!("compose.yaml needs {name}"),
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The services built from this repository (the keygate instances) and their environments.
fn instances(compose: &Yaml) -> BTreeMap<String, BTreeMap<String, String>> {
    let services = compose["services"].as_mapping().expect("services");
    services
        .iter()
        .filter(|(_, service)| service["image"].as_str() == Some("keygate:latest"))
        .map(|(name, service)| {
            let environment = service["environment"]
                .as_mapping()
                .expect("an environment mapping")
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        Yaml::String(s) => s.clone(),
                        other => yaml_serde::to_string(other).unwrap().trim().to_owned(),
                    };
                    (k.as_str().unwrap().to_owned(), value)
                })
                .collect();
            (name.as_str().unwrap().to_owned(), environment)
        })
        .collect()
}

/// The port the image listens on (`KEYGATE_SERVER__BIND` in the Dockerfile).
fn image_port() -> String {
    let (env, _) = image_settings();
    let bind = env
        .iter()
        .find(|(name, _)| name == "KEYGATE_SERVER__BIND")
        .map(|(_, value)| value.clone())
        .expect("the image sets its bind address");
    bind.rsplit_once(':').unwrap().1.to_owned()
}

#[test]
fn the_proxy_the_database_and_the_instances_agree() {
    let compose = compose();
    let instances = instances(&compose);
    assert!(
        instances.len() >= 2,
        "at least two instances: {instances:?}"
    );
    let environments: Vec<_> = instances.values().collect();
    assert!(
        environments.windows(2).all(|pair| pair[0] == pair[1]),
        "every instance has the same settings"
    );
    let environment = environments[0];
    assert_eq!(environment["KEYGATE_PROFILE"], "production");

    let caddyfile = caddyfile();
    let upstreams: Vec<String> = caddyfile
        .lines()
        .find_map(|line| line.trim().strip_prefix("reverse_proxy "))
        .expect("a reverse_proxy")
        .trim_end_matches('{')
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let port = image_port();
    let expected: Vec<String> = instances
        .keys()
        .map(|name| format!("{name}:{port}"))
        .collect();
    assert_eq!(upstreams, expected, "the proxy reaches every instance");
    assert!(
        caddyfile.contains("health_uri /readyz"),
        "the proxy routes on readiness"
    );

    let subnet = compose["networks"]["keygate"]["ipam"]["config"][0]["subnet"]
        .as_str()
        .expect("the network's subnet");
    assert_eq!(
        environment["KEYGATE_RATE_LIMIT__TRUSTED_PROXIES"], subnet,
        "only the proxy's network is trusted"
    );

    let postgres = &compose["services"]["postgres"]["environment"];
    let values = BTreeMap::from([("POSTGRES_PASSWORD", "pw".to_owned())]);
    let url = interpolate(&environment["KEYGATE_DATABASE__URL"], &values);
    let expected = format!(
        "postgres://{}:pw@postgres:5432/{}",
        postgres["POSTGRES_USER"].as_str().unwrap(),
        postgres["POSTGRES_DB"].as_str().unwrap()
    );
    assert_eq!(
        url, expected,
        "the instances use the database compose makes"
    );
    assert!(
        interpolate(&environment["KEYGATE_TOKENS__ISSUER"], &BTreeMap::new())
            .starts_with("https://"),
        "the issuer is the proxy's HTTPS address"
    );
}

/// A `keygate` command with an instance's environment from compose.yaml, on `database`.
fn composed(
    environment: &BTreeMap<String, String>,
    database: &str,
    master_key: &str,
    args: &[&str],
) -> std::process::Command {
    let values = BTreeMap::from([
        ("POSTGRES_PASSWORD", String::new()),
        ("KEYGATE_MASTER_KEY", master_key.to_owned()),
    ]);
    let mut command = keygate_command();
    for (name, value) in environment {
        command.env(name, interpolate(value, &values));
    }
    command
        .env("KEYGATE_DATABASE__URL", database)
        .args(["--config", concat!(env!("CARGO_MANIFEST_DIR"), "/config")])
        .args(args);
    command
}

/// Two instances started with exactly the settings compose gives them (but on a test database
/// and a loopback port) are accepted, serve, and share keys and tokens.
#[actix_web::test]
#[cfg_attr(
    not(keygate_postgres_tests),
    ignore = "set KEYGATE_TEST_POSTGRES_URL to run the PostgreSQL variant"
)]
async fn instances_start_and_serve_with_the_composed_settings() {
    let db = TestDatabase::create(Backend::postgres());
    let master_key = keygate::tokens::MasterKey::generate_encoded();
    let instances = instances(&compose());
    let environment = instances.values().next().unwrap();
    let servers: Vec<ServerProcess> = (0..2)
        .map(|_| {
            ServerProcess::start(
                composed(environment, db.url(), &master_key, &["serve"])
                    .env("KEYGATE_SERVER__BIND", "127.0.0.1:0")
                    // The test stands where the proxy would: on loopback, saying HTTPS.
                    .env("KEYGATE_RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1/32"),
            )
        })
        .collect();
    let client = reqwest::Client::builder()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::HeaderName::from_static("x-forwarded-proto"),
            reqwest::header::HeaderValue::from_static("https"),
        )]))
        .build()
        .unwrap();
    for server in &servers {
        let ready = client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{}", server.log());
        let metadata: Value = client
            .get(server.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["issuer"], "https://localhost");
    }

    let out = composed(
        environment,
        db.url(),
        &master_key,
        &[
            "api-keys",
            "create",
            "--name",
            "composed",
            "--scopes",
            "invoices:read",
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let key: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let issued: Value = client
        .post(servers[0].url("/v1/token"))
        .json(&json!({ "client_id": key["client_id"], "client_secret": key["client_secret"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = issued["access_token"].as_str().expect("a token");
    let seen = client
        .get(servers[1].url("/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(seen.status(), 200, "the other instance takes the token");
}
