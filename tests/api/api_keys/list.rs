//! `GET /v1/api-keys`: every column, filters by environment and status, every order both
//! ways, paging with limit and offset, and the refusal of bad parameters.

use serde_json::json;

use super::{
    admin_session, assert_invalid_field, assert_secret_works, create, create_named, credentials,
    delete, get, key_path, patch, post, revoke_path, sleep_ms, time,
};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, eventually, spawn_app};

async fn the_list_answers_data_count_limit_offset_with_every_column(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let alpha = create(
        &app,
        &admin,
        json!({ "name": "alpha", "scopes": ["invoices:read", "clients:read"] }),
    )
    .await;
    let bravo = create(
        &app,
        &admin,
        json!({ "name": "bravo", "scopes": ["payouts:read"], "environment": "test", "expires_in_days": 30 }),
    )
    .await;
    let listed = get(&app, &admin, "/v1/api-keys").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["count"], 2);
    assert_eq!(listed.body["limit"], 100, "the default limit");
    assert_eq!(listed.body["offset"], 0);
    assert_eq!(listed.rows().len(), 2);
    for created in [&alpha, &bravo] {
        let secret = created["client_secret"].as_str().unwrap();
        let row = listed
            .row_of(created["client_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("listed: {}", listed.text));
        for column in [
            "name",
            "client_id",
            "key_prefix",
            "environment",
            "scopes",
            "status",
            "created_at",
            "last_used_at",
            "expires_at",
            "created_by",
        ] {
            assert!(row.get(column).is_some(), "{column} in {row}");
        }
        assert!(row.get("client_secret").is_none(), "{row}");
        let prefix = row["key_prefix"].as_str().expect("a prefix");
        assert_eq!(prefix.len(), 17, "{row}");
        assert!(secret.starts_with(prefix), "{prefix} prefixes the secret");
        assert!(
            prefix.starts_with(&format!(
                "kgs_{}_",
                created["environment"].as_str().unwrap()
            )),
            "{row}"
        );
        for column in ["name", "environment", "scopes", "status", "expires_at"] {
            assert_eq!(row[column], created[column], "{column}");
        }
        assert_eq!(time(&row["created_at"]), time(&created["created_at"]));
        assert!(row["last_used_at"].is_null());
        assert_eq!(row["created_by"], ADMIN);
    }
    assert!(listed.row_of(bravo["client_id"].as_str().unwrap()).unwrap()["expires_at"].is_string());
}

async fn the_list_filters_by_environment_and_status_repeatably(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    let mut ids = Vec::new();
    for (name, environment) in [
        ("a", "live"),
        ("b", "live"),
        ("c", "test"),
        ("d", "test"),
        ("e", "live"),
    ] {
        let created = create(
            &app,
            &admin,
            json!({ "name": name, "scopes": ["invoices:read"], "environment": environment }),
        )
        .await;
        ids.push(created["client_id"].as_str().unwrap().to_owned());
    }
    let disabled = patch(
        &app,
        &admin,
        &key_path(&ids[1]),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let revoked = post(&app, &admin, &revoke_path(&ids[3]), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let deleted = delete(&app, &admin, &key_path(&ids[4])).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);

    for (query, expected) in [
        ("", vec!["a", "b", "c", "d"]),
        ("environment=test", vec!["c", "d"]),
        ("environment=live", vec!["a", "b"]),
        (
            "environment=live&environment=test",
            vec!["a", "b", "c", "d"],
        ),
        ("status=enabled", vec!["a", "c"]),
        ("status=enabled&status=disabled", vec!["a", "b", "c"]),
        ("status=revoked", vec!["d"]),
        ("status=disabled&status=revoked", vec!["b", "d"]),
        ("environment=live&status=disabled", vec!["b"]),
        (
            "environment=test&status=enabled&status=revoked",
            vec!["c", "d"],
        ),
        ("environment=live&status=revoked", vec![]),
        // `kind` is a synonym of `environment`, as a filter and as an order.
        ("kind=test", vec!["c", "d"]),
        ("kind=live&environment=test", vec!["a", "b", "c", "d"]),
        ("kind=live&status=disabled&order_by=kind", vec!["b"]),
    ] {
        let listed = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        let mut names = listed.names();
        names.sort();
        assert_eq!(names, expected, "?{query}: {}", listed.text);
        assert_eq!(listed.body["count"], expected.len(), "?{query}");
    }
}

async fn the_list_orders_by_each_column_both_ways(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    // Created in this order; each differs in every column.
    let charlie = create_named(&app, &admin, "charlie", &["invoices:read"]).await;
    let alpha = credentials(
        &create(
            &app,
            &admin,
            json!({ "name": "alpha", "scopes": ["invoices:read"], "environment": "test" }),
        )
        .await,
    );
    let bravo = create_named(&app, &admin, "bravo", &["invoices:read"]).await;
    // Used: alpha, then bravo; charlie never.
    assert_secret_works(&app, &alpha).await;
    sleep_ms(50).await;
    assert_secret_works(&app, &bravo).await;
    let flushed = eventually(5, || async {
        let listed = get(&app, &admin, "/v1/api-keys").await;
        [&alpha, &bravo].iter().all(|k| {
            listed
                .row_of(&k.client_id)
                .is_some_and(|row| row["last_used_at"].is_string())
        })
    })
    .await;
    assert!(flushed, "last_used_at was never written");
    let disabled = patch(
        &app,
        &admin,
        &key_path(&bravo.client_id),
        json!({ "status": "disabled" }),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let revoked = post(&app, &admin, &revoke_path(&charlie.client_id), json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);

    for (query, expected) in [
        ("", ["charlie", "alpha", "bravo"]),
        ("order=desc", ["bravo", "alpha", "charlie"]),
        ("order_by=created_at", ["charlie", "alpha", "bravo"]),
        (
            "order_by=created_at&order=asc",
            ["charlie", "alpha", "bravo"],
        ),
        (
            "order_by=created_at&order=desc",
            ["bravo", "alpha", "charlie"],
        ),
        ("order_by=name", ["alpha", "bravo", "charlie"]),
        ("order_by=name&order=desc", ["charlie", "bravo", "alpha"]),
        // live before test; ties in creation order (reversed when descending).
        ("order_by=environment", ["charlie", "bravo", "alpha"]),
        (
            "order_by=environment&order=desc",
            ["alpha", "bravo", "charlie"],
        ),
        // disabled < enabled < revoked.
        ("order_by=status", ["bravo", "alpha", "charlie"]),
        ("order_by=status&order=desc", ["charlie", "alpha", "bravo"]),
        // Never-used keys last either way.
        ("order_by=last_used_at", ["alpha", "bravo", "charlie"]),
        (
            "order_by=last_used_at&order=desc",
            ["bravo", "alpha", "charlie"],
        ),
    ] {
        let listed = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        assert_eq!(listed.names(), expected, "?{query}: {}", listed.text);
    }
}

async fn the_list_pages_with_limit_and_offset(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for name in ["k1", "k2", "k3", "k4", "k5"] {
        create_named(&app, &admin, name, &["invoices:read"]).await;
    }
    for (query, expected) in [
        ("limit=2", vec!["k1", "k2"]),
        ("limit=2&offset=2", vec!["k3", "k4"]),
        ("limit=2&offset=4", vec!["k5"]),
        ("offset=5", vec![]),
        ("offset=1&limit=1&order_by=name&order=desc", vec!["k4"]),
        ("limit=100", vec!["k1", "k2", "k3", "k4", "k5"]),
        ("limit=1", vec!["k1"]),
    ] {
        let listed = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        assert_eq!(listed.names(), expected, "?{query}: {}", listed.text);
        assert_eq!(listed.body["count"], 5, "count is every match: ?{query}");
    }
    let listed = get(&app, &admin, "/v1/api-keys?limit=2&offset=4").await;
    assert_eq!(listed.body["limit"], 2);
    assert_eq!(listed.body["offset"], 4);
}

async fn bad_list_parameters_are_400_naming_the_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = admin_session(&app).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("order=up", "order"),
        ("order=DESC", "order"),
        ("order_by=secret", "order_by"),
        ("order_by=client_secret", "order_by"),
        ("status=active", "status"),
        ("status=enabled&status=deleted", "status"),
        ("environment=prod", "environment"),
        ("colour=blue", "colour"),
        ("status=enabled&page=2", "page"),
    ] {
        let refused = get(&app, &admin, &format!("/v1/api-keys?{query}")).await;
        assert_invalid_field(&refused, field);
    }
}

backend_tests!(
    the_list_answers_data_count_limit_offset_with_every_column,
    the_list_filters_by_environment_and_status_repeatably,
    the_list_orders_by_each_column_both_ways,
    the_list_pages_with_limit_and_offset,
    bad_list_parameters_are_400_naming_the_parameter,
);
