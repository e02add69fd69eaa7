//! The database uses an index for what must stay fast at a million keys: finding a key by
//! client_id, its secrets by prefix, and each page of a key list in every indexed order (with
//! offset or cursor). The SQL mirrors what `db::api_keys` builds.

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};

use crate::backend_tests;
use crate::helpers::{Backend, spawn_app};

#[derive(QueryableByName)]
struct SqlitePlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct PostgresPlanRow {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    plan: String,
}

const COLUMNS: &str = "id, client_id, name, environment, scopes, status, created_at, last_used_at";

fn queries() -> Vec<(&'static str, String, &'static str)> {
    let list = |order: &str| {
        format!(
            "SELECT {COLUMNS} FROM api_keys WHERE organization_id = 1 AND deleted_at IS NULL ORDER BY {order} LIMIT 100"
        )
    };
    vec![
        ("a key by client_id", format!("SELECT {COLUMNS} FROM api_keys WHERE client_id = 'kgc_x'"), "api_keys"),
        (
            "a key's secrets by prefix",
            "SELECT id FROM api_key_secrets WHERE api_key_id = 7 AND prefix = 'kgs_live_x' AND revoked_at IS NULL".into(),
            // The key's index or the prefix's: either finds the few rows at once.
            "api_key_secrets_",
        ),
        (
            "the keys of a secret prefix (an API key sent alone)",
            "SELECT api_key_id FROM api_key_secrets WHERE prefix = 'kgs_live_x' AND revoked_at IS NULL".into(),
            "api_key_secrets_prefix",
        ),
        ("list by created_at", list("created_at ASC, id ASC"), "api_keys_list_created"),
        ("list by created_at, newest first", list("created_at DESC, id DESC"), "api_keys_list_created"),
        ("list by name", list("name ASC, id ASC"), "api_keys_list_name"),
        ("list by status", list("status DESC, id DESC"), "api_keys_list_status"),
        ("list by environment", list("environment ASC, id ASC"), "api_keys_list_environment"),
        ("list by key prefix", list("key_prefix ASC, id ASC"), "api_keys_list_prefix"),
        ("list by scopes", list("scopes DESC, id DESC"), "api_keys_list_scopes"),
        (
            "a user's own keys by created_at",
            format!(
                "SELECT {COLUMNS} FROM api_keys WHERE organization_id = 1 AND deleted_at IS NULL \
                 AND created_by = 3 ORDER BY created_at DESC, id DESC LIMIT 100"
            ),
            "api_keys_owner_created",
        ),
        (
            "a user's own keys by name",
            format!(
                "SELECT {COLUMNS} FROM api_keys WHERE organization_id = 1 AND deleted_at IS NULL \
                 AND created_by = 3 ORDER BY name ASC, id ASC LIMIT 100"
            ),
            "api_keys_owner_name",
        ),
        (
            "a later page by cursor",
            format!(
                "SELECT {COLUMNS} FROM api_keys WHERE organization_id = 1 AND deleted_at IS NULL \
                 AND created_at >= '2026-01-01 00:00:00' AND (created_at > '2026-01-01 00:00:00' OR id > 42) \
                 ORDER BY created_at ASC, id ASC LIMIT 100"
            ),
            "api_keys_list_created",
        ),
    ]
}

async fn lookups_and_list_pages_use_an_index_and_no_sort(backend: Backend) {
    let app = spawn_app(backend).await;
    let pool = keygate::db::connect(&app.settings.database).unwrap();
    let mut conn = pool.get().unwrap();
    let postgres = backend == Backend::Postgres;
    if postgres {
        // A near-empty table is cheapest to scan whole; forbid that, so the plan shows
        // whether an index can answer the query at all.
        conn.batch_execute("SET enable_seqscan = off").unwrap();
    }
    for (what, sql, index) in queries() {
        let plan: Vec<String> = if postgres {
            diesel::sql_query(format!("EXPLAIN {sql}"))
                .load::<PostgresPlanRow>(&mut conn)
                .unwrap()
                .into_iter()
                .map(|r| r.plan)
                .collect()
        } else {
            diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load::<SqlitePlanRow>(&mut conn)
                .unwrap()
                .into_iter()
                .map(|r| r.detail)
                .collect()
        };
        let text = plan.join("\n");
        let indexed = if index == "api_keys" {
            // The unique constraint's index, whatever the backend named it.
            text.contains("INDEX") || text.contains("Index")
        } else {
            text.contains(index)
        };
        assert!(indexed, "{what}: no index in the plan:\n{text}");
        if what.contains("cursor") && !postgres {
            // The cursor's bound must be a range the index seeks to, not a filter on every
            // row from the start.
            assert!(
                text.contains("created_at>?"),
                "{what}: the cursor does not seek:\n{text}"
            );
        }
        let sorts = text.contains("TEMP B-TREE")
            || text
                .lines()
                .any(|l| l.trim_start().starts_with("Sort") || l.contains("->  Sort"));
        assert!(
            !sorts,
            "{what}: the plan sorts instead of reading the index in order:\n{text}"
        );
        assert!(
            !text.contains("SCAN api_keys\n") && !text.ends_with("SCAN api_keys"),
            "{what}: a full scan:\n{text}"
        );
    }
}

backend_tests!(lookups_and_list_pages_use_an_index_and_no_sort);
