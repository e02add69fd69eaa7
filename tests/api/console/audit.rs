//! The audit log page, for holders of `audit:read`: the organization's trail narrowed by actor
//! (a bare email means that user however they acted), action, target and time range, each
//! alone and together, the form keeping what was asked.

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::{Browser, tools};
use crate::backend_tests;
use crate::helpers::{ADMIN, Backend, Reply, TestApp, TestSession, spawn_app};

const OPS: &str = "ops@example.com";

/// A key made over the management API in `session`; its client_id.
async fn made_key(app: &TestApp, session: &TestSession, name: &str) -> String {
    let body = json!({ "name": name, "scopes": ["invoices:read"] });
    let made = Reply::send(
        app.with_session(Method::POST, "/v1/api-keys", session)
            .json(&body),
    )
    .await
    .expect(201);
    made["client_id"].as_str().unwrap().to_owned()
}

/// The rows the log shows: each event's actor, action and target.
async fn rows(browser: &Browser) -> Vec<(String, String, String)> {
    let rows = browser
        .js("return [...document.querySelectorAll('#events tbody tr')].map(r =>
                ['Actor', 'Action', 'Target'].map(l => r.querySelector(`td[data-label=${l}]`).textContent));")
        .await;
    let rows: Vec<Vec<String>> = serde_json::from_value(rows).unwrap();
    rows.into_iter()
        .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
        .collect()
}

/// Fills the filter form (every field: blank clears it) and shows the log.
async fn filter(browser: &Browser, actor: &str, action: &str, target: &str, range: [&str; 2]) {
    browser.fill("#actor", actor).await;
    browser.fill("#action", action).await;
    browser.fill("#target", target).await;
    // As a date picker would set them: `datetime-local` values, in UTC.
    browser
        .js_with(
            "document.querySelector('#since').value = arguments[0];
             document.querySelector('#until').value = arguments[1];",
            vec![range[0].into(), range[1].into()],
        )
        .await;
    browser.follow("#apply-audit-filter").await;
}

async fn the_audit_log_filters_by_actor_action_target_and_time(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let ops = app.create_user(
        OPS,
        &[
            "--permissions",
            "api_keys:read,api_keys:write,invoices:read",
        ],
    );
    let ops_session = app.log_in(OPS, &ops.password).await;
    let theirs = made_key(&app, &ops_session, "Ops's key").await;
    let admin_session = app.log_in(ADMIN, &admin.password).await;
    let mine = made_key(&app, &admin_session, "Admin's key").await;
    Reply::send(app.with_session(
        Method::POST,
        &format!("/v1/api-keys/{mine}/revoke"),
        &admin_session,
    ))
    .await
    .expect(200);

    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;
    browser.follow("#nav-audit").await;
    assert_eq!(browser.path().await, "/console/audit");
    let everything = rows(&browser).await;
    assert!(everything.len() >= 5, "{everything:?}");
    assert_eq!(
        everything[0].1, "session.login",
        "newest first: the log-in that opened this page"
    );

    filter(&browser, OPS, "", "", ["", ""]).await;
    let by_ops = rows(&browser).await;
    assert!(
        by_ops
            .iter()
            .all(|(actor, ..)| actor == "user:ops@example.com"),
        "{by_ops:?}"
    );
    let actions: Vec<&str> = by_ops
        .iter()
        .map(|(_, action, _)| action.as_str())
        .collect();
    assert_eq!(actions, ["api_key.created", "session.login"]);
    let kept = browser.find("#actor").await.prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some(OPS), "the form keeps what was asked");

    filter(&browser, "", "api_key.revoked", "", ["", ""]).await;
    assert_eq!(
        rows(&browser).await,
        [(
            format!("user:{ADMIN}"),
            "api_key.revoked".to_owned(),
            mine.clone()
        )]
    );

    filter(&browser, "", "", &theirs, ["", ""]).await;
    assert_eq!(
        rows(&browser).await,
        [(
            format!("user:{OPS}"),
            "api_key.created".to_owned(),
            theirs.clone()
        )]
    );

    filter(&browser, ADMIN, "api_key.created", "", ["", ""]).await;
    let together = rows(&browser).await;
    assert_eq!(together.len(), 1, "{together:?}");
    assert_eq!(together[0].2, mine, "both filters at once");

    filter(&browser, "", "session.logout", "", ["", ""]).await;
    assert!(browser.page_text().await.contains("No events match."));

    let minute = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let (before, after) = (
        minute(Utc::now() - Duration::hours(1)),
        minute(Utc::now() + Duration::hours(1)),
    );
    filter(&browser, "", "", "", [&before, &after]).await;
    assert_eq!(
        rows(&browser).await,
        everything,
        "all of it happened within"
    );
    let since: Value = browser
        .find("#since")
        .await
        .prop("value")
        .await
        .unwrap()
        .into();
    assert_eq!(since, json!(before), "the range is kept");
    filter(&browser, "", "", "", [&after, ""]).await;
    assert!(browser.page_text().await.contains("No events match."));
    filter(&browser, "", "", "", ["", &before]).await;
    assert!(browser.page_text().await.contains("No events match."));
    filter(&browser, OPS, "", "", [&before, &after]).await;
    assert_eq!(rows(&browser).await, by_ops);
    browser.close().await;
}

backend_tests!(the_audit_log_filters_by_actor_action_target_and_time);
