//! `/v1/api-keys`, the management API for keys, one file per action: create, list, manage
//! (retrieve, update, revoke, delete, rotate), permissions (who may act on which key, bearer
//! tokens acting with at most their creator's permissions, console sessions with a CSRF token)
//! and audit. The helpers below are the ones those files share.

mod audit;
mod create;
mod list;
mod manage;
mod permissions;

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, Reply, TestApp, TestKey, Who, assert_error, assert_oauth_error, key_and_token,
    token_response,
};

const USER_AGENT: &str = "keygate-management-tests/1.0";

fn request(app: &TestApp, who: &Who, method: Method, path: &str) -> RequestBuilder {
    app.request_as(who, method, path)
        .header("user-agent", USER_AGENT)
}

async fn get(app: &TestApp, who: &Who, path: &str) -> Reply {
    Reply::send(request(app, who, Method::GET, path)).await
}

async fn post(app: &TestApp, who: &Who, path: &str, body: Value) -> Reply {
    Reply::send(request(app, who, Method::POST, path).json(&body)).await
}

async fn patch(app: &TestApp, who: &Who, path: &str, body: Value) -> Reply {
    Reply::send(request(app, who, Method::PATCH, path).json(&body)).await
}

async fn delete(app: &TestApp, who: &Who, path: &str) -> Reply {
    Reply::send(request(app, who, Method::DELETE, path)).await
}

fn key_path(client_id: &str) -> String {
    format!("/v1/api-keys/{client_id}")
}

fn revoke_path(client_id: &str) -> String {
    format!("/v1/api-keys/{client_id}/revoke")
}

fn rotate_path(client_id: &str) -> String {
    format!("/v1/api-keys/{client_id}/rotate")
}

/// Asserts a 400 `invalid_request` whose `field` is `field`.
fn assert_invalid_field(answer: &Reply, field: &str) {
    assert_error(answer, 400, "invalid_request");
    assert_eq!(answer.body["field"], field, "{}", answer.text);
}

/// `POST /v1/api-keys`, which must answer 201; the created key with its secret.
async fn create(app: &TestApp, who: &Who, body: Value) -> Value {
    let answer = post(app, who, "/v1/api-keys", body).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.body
}

/// A key with `scopes` made through the API.
async fn create_named(app: &TestApp, who: &Who, name: &str, scopes: &[&str]) -> TestKey {
    credentials(&create(app, who, json!({ "name": name, "scopes": scopes })).await)
}

/// The credentials in a create or rotate answer.
fn credentials(answer: &Value) -> TestKey {
    TestKey {
        client_id: answer["client_id"].as_str().expect("client_id").to_owned(),
        client_secret: answer["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned(),
    }
}

/// An administrator of the default organization, logged in.
async fn admin_session(app: &TestApp) -> Who {
    let admin = app.create_user(ADMIN, &["--admin"]);
    Who::Session(app.log_in(&admin.email, &admin.password).await)
}

/// A key owned by `owner` holding `scopes` (its secret known), and a bearer token of it.
async fn management_key(app: &TestApp, owner: &str, scopes: &[&str]) -> (TestKey, Who) {
    let (key, token) = key_and_token(app, owner, scopes).await;
    (key, Who::Token(token))
}

/// Trades the key's secret for a token, which must work; the token response.
async fn assert_secret_works(app: &TestApp, key: &TestKey) -> Value {
    let response = token_response(app, key).await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        status, 200,
        "the secret of {} must work: {body}",
        key.client_id
    );
    body
}

async fn assert_invalid_client(app: &TestApp, key: &TestKey) {
    assert_oauth_error(token_response(app, key).await, 401, "invalid_client").await;
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("a time: {value}")))
        .unwrap_or_else(|e| panic!("an RFC 3339 time, {value}: {e}"))
        .with_timezone(&Utc)
}

/// The events of `/v1/audit-events?{query}`, oldest first.
async fn audit_trail(app: &TestApp, auditor: &Who, query: &str) -> Vec<Value> {
    let answer = get(app, auditor, &format!("/v1/audit-events?{query}")).await;
    let mut events = answer.rows();
    events.reverse();
    events
}

fn actions(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["action"].as_str().expect("an action"))
        .collect()
}

async fn sleep_ms(ms: u64) {
    actix_web::rt::time::sleep(StdDuration::from_millis(ms)).await;
}
