//! Keyset pagination of key lists: following `next_cursor` visits every key exactly once, in
//! the same order a single large page has, for every order and direction.

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, eventually, spawn_app};

fn client_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["client_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn following_cursors_visits_every_key_once_in_every_order(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("admin@example.com", &["--admin"]);
    let admin = app
        .token_as(
            "admin@example.com",
            &[
                "api_keys:read",
                "api_keys:write",
                "api_keys:manage",
                "invoices:read",
                "clients:read",
            ],
        )
        .await;
    // Seven keys with repeated names, both environments, a disabled one, and some used ones,
    // so that ties and never-used keys (last_used_at null) are crossed by page boundaries.
    for (i, name) in ["b", "a", "b", "c", "a", "b", "d"].iter().enumerate() {
        let env = if i % 2 == 0 { "live" } else { "test" };
        let scopes = if i % 3 == 1 {
            json!(["invoices:read", "clients:read"])
        } else {
            json!(["invoices:read"])
        };
        let mut body = json!({ "name": name, "scopes": scopes, "environment": env });
        if i % 3 != 0 {
            // Some keys expire, at midnight of one of two dates (ties), the rest never
            // (nulls): both to be crossed by page boundaries.
            let on = chrono::Utc::now() + chrono::Duration::days(30 * (i as i64 % 3));
            body["expires_on"] = json!(on.format("%Y-%m-%d").to_string());
        }
        let created = app
            .with_token(Method::POST, "/v1/api-keys", &admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        let created: Value = created.json().await.unwrap();
        if i == 3 {
            let path = format!("/v1/api-keys/{}", created["client_id"].as_str().unwrap());
            let response = app
                .with_token(Method::PATCH, &path, &admin)
                .json(&json!({ "status": "disabled" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        if i % 3 == 0 {
            let body = json!({ "client_id": created["client_id"], "client_secret": created["client_secret"] });
            let _ = app.post_token_json(body).await;
        }
    }
    let used = eventually(5, || async {
        let page: Value = app
            .with_token(Method::GET, "/v1/api-keys?order_by=last_used_at", &admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| !k["last_used_at"].is_null())
            .count()
            >= 2
    })
    .await;
    assert!(used, "last_used_at was not written");

    for order_by in [
        "name",
        "key_prefix",
        "environment",
        "scopes",
        "status",
        "created_at",
        "last_used_at",
        "expires_at",
    ] {
        for order in ["asc", "desc"] {
            let all: Value = app
                .with_token(
                    Method::GET,
                    &format!("/v1/api-keys?order_by={order_by}&order={order}&limit=100"),
                    &admin,
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let expected = client_ids(&all);
            assert_eq!(expected.len(), 8, "the seven keys and the management key");
            let mut visited = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..10 {
                let mut path = format!("/v1/api-keys?order_by={order_by}&order={order}&limit=3");
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={c}"));
                }
                let response = app
                    .with_token(Method::GET, &path, &admin)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{path}");
                let page: Value = response.json().await.unwrap();
                assert_eq!(page["count"], 8);
                visited.extend(client_ids(&page));
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            assert_eq!(visited, expected, "order_by={order_by}&order={order}");
        }
    }
    // A cursor belongs to its order.
    let page: Value = app
        .with_token(Method::GET, "/v1/api-keys?order_by=name&limit=3", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = page["next_cursor"].as_str().unwrap();
    let response = app
        .with_token(
            Method::GET,
            &format!("/v1/api-keys?order_by=status&cursor={cursor}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["field"], "cursor");
}

backend_tests!(following_cursors_visits_every_key_once_in_every_order);
