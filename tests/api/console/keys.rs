//! The API-key pages, worked as an operator would: the list (filters, orders, pages, "my keys"
//! or every key), create a key with a permission grid and its shortcuts, read its secret once
//! (copied with its button, and never again, not even with Back and Forward), rotate it with
//! and without a grace period, disable, enable, revoke and delete it, and the same without
//! JavaScript; a form with a tampered CSRF token changes nothing. Each outcome is checked where
//! apps see it, at `/v1/token` and `/v1/me/permissions`.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{Browser, assert_never_in_an_address, tools};
use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, Reply, TestApp, TestKey, assert_cli_ok, assert_oauth_error, eventually,
    spawn_app, token_reply, token_response,
};

/// An operator who may make keys with two API scopes, and nothing more.
const OPS: &str = "ops@example.com";
const OPS_PERMISSIONS: &str = "api_keys:read,api_keys:write,invoices:read,clients:read";
/// An operator who may also grant one write scope.
const WRITER: &str = "writer@example.com";
const WRITER_PERMISSIONS: &str =
    "api_keys:read,api_keys:write,invoices:read,invoices:write,clients:read";

fn key(client_id: &str, client_secret: &str) -> TestKey {
    TestKey {
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
    }
}

/// A token for `key`, which must be issued.
async fn token(app: &TestApp, key: &TestKey) -> Value {
    let reply = token_reply(app, key).await;
    assert_eq!(
        reply.status, 200,
        "a token for {}: {}",
        key.client_id, reply.text
    );
    reply.body
}

async fn assert_refused(app: &TestApp, key: &TestKey) {
    assert_oauth_error(token_response(app, key).await, 401, "invalid_client").await;
}

async fn permissions_status(app: &TestApp, token: &str) -> StatusCode {
    app.get_with_token("/v1/me/permissions", token)
        .await
        .status()
}

/// The values of the ticked boxes of the permission grid.
async fn ticked(browser: &Browser) -> Vec<String> {
    let values = browser
        .js("return [...document.querySelectorAll('input[name=scope]:checked')].map(b => b.value);")
        .await;
    let mut values: Vec<String> = serde_json::from_value(values).unwrap();
    values.sort();
    values
}

fn scope_box(scope: &str) -> String {
    format!("input[name=scope][value='{scope}']")
}

/// The status the key list shows for a key.
async fn listed_status(browser: &Browser, client_id: &str) -> String {
    browser.goto("/console/keys").await;
    browser
        .text(&format!("tr[data-client-id='{client_id}'] .status"))
        .await
}

async fn a_new_key_shows_its_secret_once_and_gets_tokens(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let ops = app.create_user(OPS, &["--permissions", OPS_PERMISSIONS]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(OPS, &ops.password).await;
    assert!(browser.page_text().await.contains("No keys here yet"));

    browser.follow("#new-key").await;
    assert_eq!(browser.path().await, "/console/keys/new");
    for held in ["invoices:read", "clients:read"] {
        let field = browser.find(&scope_box(held)).await;
        assert!(field.is_enabled().await.unwrap(), "{held} may be granted");
    }
    for lacking in [
        "invoices:write",
        "payouts:read",
        "api_keys:manage",
        "audit:read",
    ] {
        let field = browser.find(&scope_box(lacking)).await;
        assert!(
            !field.is_enabled().await.unwrap(),
            "{lacking} is not held, so shown disabled"
        );
        let label = browser
            .find(&format!("label:has(> {})", scope_box(lacking)))
            .await;
        assert_eq!(
            label.attr("title").await.unwrap().as_deref(),
            Some(format!("You do not hold {lacking}").as_str())
        );
    }
    browser.screenshot("new-key-limited").await;
    // The shortcuts tick, in place, what the operator may grant.
    browser.click("#full-access").await;
    assert_eq!(ticked(&browser).await, ["clients:read", "invoices:read"]);
    assert_eq!(browser.path().await, "/console/keys/new", "no round trip");

    browser.goto("/console/keys/new").await;
    assert!(ticked(&browser).await.is_empty());
    browser.fill("#name", "Nightly export").await;
    browser.click(&scope_box("invoices:read")).await;
    browser.click(&scope_box("clients:read")).await;
    browser.follow("#create").await;

    let reveal = browser.path().await;
    assert!(reveal.starts_with("/console/reveal/"), "{reveal}");
    assert_eq!(browser.text("h1").await, "Nightly export");
    let client_id = browser.text("#client-id").await;
    let secret = browser.text("#client-secret").await;
    assert!(client_id.starts_with("kgc_"), "{client_id}");
    assert!(secret.starts_with("kgs_live_"), "{secret}");
    assert!(
        browser
            .find("#copy-secret")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "the console's script runs (it shows the copy buttons)"
    );
    assert!(browser.text("#curl-line").await.contains(&client_id));

    let issued = token(&app, &key(&client_id, &secret)).await;
    assert_eq!(issued["scope"], "clients:read invoices:read");
    let access = issued["access_token"].as_str().unwrap();
    let granted = Reply::send(
        app.client
            .get(app.url("/v1/me/permissions"))
            .bearer_auth(access),
    )
    .await
    .expect(200);
    assert_eq!(granted["client_id"], client_id.as_str());
    assert_eq!(
        granted["scopes"],
        serde_json::json!(["clients:read", "invoices:read"])
    );

    browser.reload().await;
    assert_eq!(browser.text("h1").await, "Shown once, already");
    assert!(!browser.exists("#client-secret").await);
    assert!(!browser.page_text().await.contains(&secret));

    assert_eq!(listed_status(&browser, &client_id).await, "enabled");
    let row = format!("tr[data-client-id='{client_id}']");
    assert_eq!(
        browser.text(&format!("{row} .key-link")).await,
        "Nightly export"
    );
    let scopes = browser
        .js_with(
            "return [...arguments[0].querySelectorAll('code')].map(c => c.textContent);",
            vec![browser.element_json(&format!("{row} .scopes")).await],
        )
        .await;
    assert_eq!(scopes, serde_json::json!(["clients:read", "invoices:read"]));

    let visited = browser.close().await;
    assert!(
        visited.iter().any(|url| url.contains(&reveal)),
        "the one-time view is in the history: {visited:?}"
    );
    assert_never_in_an_address(&visited, &[&secret]);
}

async fn rotation_keeps_the_old_secret_for_the_grace_chosen(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let first = app.create_key_with(&["invoices:read"], &["--owner", ADMIN]);
    let page = format!("/console/keys/{}", first.client_id);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;

    browser.goto(&page).await;
    browser.select("#grace", "3600").await;
    browser.follow("#rotate-key").await;
    assert!(browser.path().await.starts_with("/console/reveal/"));
    assert!(
        browser
            .page_text()
            .await
            .contains("The previous secret keeps working until "),
        "the grace is said"
    );
    assert_eq!(browser.text("#client-id").await, first.client_id);
    let second = key(&first.client_id, &browser.text("#client-secret").await);
    assert_ne!(second.client_secret, first.client_secret);
    token(&app, &first).await;
    token(&app, &second).await;

    browser.follow(&format!("main a[href='{page}']")).await;
    assert_eq!(browser.path().await, page);
    let states: Vec<String> = {
        let mut states = Vec::new();
        for cell in browser.find_all("#secrets tbody td:nth-child(3)").await {
            states.push(cell.text().await.unwrap());
        }
        states
    };
    assert_eq!(states.len(), 2, "{states:?}");
    assert!(states.iter().any(|s| s == "current"), "{states:?}");
    assert!(
        states.iter().any(|s| s.starts_with("works until ")),
        "{states:?}"
    );

    browser.select("#grace", "0").await;
    browser.follow("#rotate-key").await;
    let said = browser.page_text().await;
    assert!(
        said.contains("The previous secret no longer works."),
        "no grace is said: {said}"
    );
    let third = key(&first.client_id, &browser.text("#client-secret").await);
    token(&app, &third).await;
    assert_refused(&app, &second).await;
    assert_refused(&app, &first).await;

    let visited = browser.close().await;
    assert_never_in_an_address(
        &visited,
        &[
            &first.client_secret,
            &second.client_secret,
            &third.client_secret,
        ],
    );
}

async fn disable_enable_and_revoke_show_at_once_in_the_list_and_at_the_token_endpoint(
    backend: Backend,
) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let created = app.create_key_with(&["invoices:read", "clients:read"], &["--owner", ADMIN]);
    let id = created.client_id.clone();
    let page = format!("/console/keys/{id}");
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;
    assert_eq!(listed_status(&browser, &id).await, "enabled");

    browser
        .follow(&format!("tr[data-client-id='{id}'] .key-link"))
        .await;
    assert_eq!(browser.path().await, page);
    browser.follow("#disable-key").await;
    assert_eq!(browser.path().await, format!("{page}/disable"));
    assert_eq!(
        browser.text("#question").await,
        format!("Disable the API key \"test key\" ({id})?"),
        "the confirmation names the key"
    );
    browser.follow("#confirm").await;
    assert_eq!(browser.path().await, format!("{page}?done=key-disabled"));
    assert_eq!(browser.text("[role=status]").await, "The key is disabled.");
    assert_eq!(browser.text("#key-status").await, "disabled");
    assert_refused(&app, &created).await;
    assert_eq!(listed_status(&browser, &id).await, "disabled");

    browser.goto(&page).await;
    browser.follow("#enable-key").await;
    assert!(browser.text("#question").await.contains(&id));
    browser.follow("#confirm").await;
    assert_eq!(browser.text("#key-status").await, "enabled");
    let issued = token(&app, &created).await;
    let access = issued["access_token"].as_str().unwrap().to_owned();
    assert_eq!(permissions_status(&app, &access).await, 200);
    assert_eq!(listed_status(&browser, &id).await, "enabled");

    browser.goto(&page).await;
    browser.follow("#revoke-key").await;
    let confirm = browser.find("#confirm").await;
    assert_eq!(
        confirm.attr("class").await.unwrap().as_deref(),
        Some("danger")
    );
    browser.follow("#confirm").await;
    assert_eq!(browser.text("#key-status").await, "revoked");
    assert_eq!(
        browser.text("[role=status]").await,
        "The key is revoked. Its tokens no longer work."
    );
    assert!(
        !browser.exists("#rotate").await,
        "a revoked key is not rotated"
    );
    let refused = eventually(5, || async {
        permissions_status(&app, &access).await == 401
    })
    .await;
    assert!(refused, "a token issued before the revocation is refused");
    assert_refused(&app, &created).await;
    assert_eq!(listed_status(&browser, &id).await, "revoked");

    let visited = browser.close().await;
    assert_never_in_an_address(&visited, &[&created.client_secret, &access]);
}

async fn a_key_name_with_html_in_it_shows_as_text(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;
    let name = "<script>alert(1)</script>";

    browser.goto("/console/keys/new").await;
    browser.fill("#name", name).await;
    browser.click(&scope_box("invoices:read")).await;
    browser.follow("#create").await;
    assert_eq!(browser.text("h1").await, name, "the one-time view");
    let id = browser.text("#client-id").await;
    assert_only_the_console_script(&browser).await;

    browser.goto(&format!("/console/keys/{id}")).await;
    assert_eq!(browser.text("#key-name").await, name, "the key's page");
    assert_eq!(
        browser.js("return document.title;").await,
        format!("{name} · keygate")
    );
    assert_only_the_console_script(&browser).await;

    browser.goto("/console/keys").await;
    assert_eq!(
        browser
            .text(&format!("tr[data-client-id='{id}'] .key-link"))
            .await,
        name,
        "the list"
    );
    assert_only_the_console_script(&browser).await;

    browser.goto(&format!("/console/keys/{id}/disable")).await;
    assert!(browser.text("h1").await.contains(name), "the confirmation");
    assert_only_the_console_script(&browser).await;
    browser.close().await;
}

/// A key made with refresh tokens from the form says so on its page, and the page charts the
/// key's use: a bar per hour (or per day), with the totals in words.
async fn a_key_page_charts_its_usage_and_a_key_can_get_refresh_tokens(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let ops = app.create_user(OPS, &["--permissions", OPS_PERMISSIONS]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(OPS, &ops.password).await;

    browser.goto("/console/keys/new").await;
    browser.fill("#name", "Refreshing").await;
    browser.click(&scope_box("invoices:read")).await;
    browser.click("#refresh-tokens").await;
    browser.follow("#create").await;
    let made = key(
        &browser.text("#client-id").await,
        &browser.text("#client-secret").await,
    );
    let answer = token(&app, &made).await;
    assert!(
        answer["refresh_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("kgr_")),
        "{answer}"
    );
    token(&app, &made).await;
    let wrong = key(
        &made.client_id,
        &crate::helpers::mistyped(&made.client_secret),
    );
    assert_refused(&app, &wrong).await;

    let page = format!("/console/keys/{}", made.client_id);
    browser.goto(&page).await;
    assert!(
        browser
            .text("#key-use")
            .await
            .contains("gets refresh tokens")
    );
    let counted = eventually(10, || async {
        browser.goto(&page).await;
        browser.text("#usage-tokens").await == "2"
    })
    .await;
    assert!(counted, "the page never showed the two tokens");
    assert_eq!(browser.text("#usage-refused").await, "1");
    assert!(
        browser
            .text("#usage-summary")
            .await
            .contains("malformed secret: 1")
    );
    let bars = browser.find_all("#usage svg rect.used").await;
    assert_eq!(bars.len(), 24, "a bar per hour of the last day");
    let heights = browser
        .js("return [...document.querySelectorAll('#usage rect.used')].map(r => Number(r.getAttribute('height')));")
        .await;
    let heights: Vec<f64> = serde_json::from_value(heights).unwrap();
    assert!(heights.iter().any(|h| *h > 0.0), "{heights:?}");
    browser.screenshot("key-usage").await;

    browser.follow("#usage a[href='?usage=day']").await;
    assert_eq!(browser.find_all("#usage svg rect.used").await.len(), 30);
    assert_eq!(browser.text("#usage-tokens").await, "2");
    assert_only_the_console_script(&browser).await;
    browser.close().await;
}

/// No dialog opened, and the page has no script but the console's own.
async fn assert_only_the_console_script(browser: &Browser) {
    assert!(!browser.dialog_open().await, "no dialog");
    let sources = browser
        .js("return [...document.scripts].map(s => s.getAttribute('src'));")
        .await;
    assert_eq!(
        sources,
        serde_json::json!(["/console/assets/console.js"]),
        "on {}",
        browser.path().await
    );
}

/// `keygate api-keys create` of a key called `name`, owned by `owner`, with `extra` arguments.
fn named_key(app: &TestApp, name: &str, owner: &str, extra: &[&str]) -> TestKey {
    let mut args = vec![
        "api-keys",
        "create",
        "--name",
        name,
        "--scopes",
        "invoices:read",
        "--owner",
        owner,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = app.cli(&args);
    assert_cli_ok(&out);
    let created: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    key(
        created["client_id"].as_str().unwrap(),
        created["client_secret"].as_str().unwrap(),
    )
}

/// The names the key list shows, top to bottom.
async fn names(browser: &Browser) -> Vec<String> {
    let names = browser
        .js("return [...document.querySelectorAll('#keys .key-link')].map(a => a.textContent);")
        .await;
    serde_json::from_value(names).unwrap()
}

/// Clicks the header of `column` (as the list's address names it) and answers how the header
/// then says the list is sorted.
async fn sort_by(browser: &Browser, column: &str) -> (String, Option<String>) {
    let header = format!("#keys thead th:has(a[href*='order_by={column}&'])");
    browser.follow(&format!("{header} a")).await;
    let th = browser.find(&header).await;
    (
        th.text().await.unwrap(),
        th.attr("aria-sort").await.unwrap(),
    )
}

/// Chooses `value` in each filter `(select, value)` and shows the list.
async fn filter(browser: &Browser, filters: &[(&str, &str)]) {
    for (select, value) in filters {
        browser.select(select, value).await;
    }
    browser.follow("#apply-filters").await;
}

async fn the_list_filters_sorts_and_shows_my_keys_or_every_key(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let ops = app.create_user(OPS, &["--permissions", OPS_PERMISSIONS]);
    // Made in an order that is not the names' order.
    named_key(&app, "Alpha", ADMIN, &[]);
    named_key(&app, "Charlie", ADMIN, &["--env", "test"]);
    let bravo = named_key(&app, "Bravo", ADMIN, &[]);
    let delta = named_key(&app, "Delta", OPS, &[]);
    let echo = named_key(&app, "Echo", OPS, &[]);
    let session = app.log_in(ADMIN, &admin.password).await;
    Reply::send(
        app.with_session(
            Method::PATCH,
            &format!("/v1/api-keys/{}", bravo.client_id),
            &session,
        )
        .json(&serde_json::json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    assert_cli_ok(&app.cli(&["api-keys", "revoke", &echo.client_id]));

    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;
    assert_eq!(browser.text("#key-count").await, "5 keys");
    assert_eq!(
        names(&browser).await,
        ["Echo", "Delta", "Bravo", "Charlie", "Alpha"],
        "newest first"
    );
    let created = browser
        .find("#keys thead th:has(a[href*='order_by=created_at&'])")
        .await;
    assert_eq!(
        created.attr("aria-sort").await.unwrap().as_deref(),
        Some("descending")
    );

    let (header, sort) = sort_by(&browser, "name").await;
    assert_eq!(
        (header.as_str(), sort.as_deref()),
        ("Name ↑", Some("ascending"))
    );
    assert_eq!(
        names(&browser).await,
        ["Alpha", "Bravo", "Charlie", "Delta", "Echo"]
    );
    let (header, sort) = sort_by(&browser, "name").await;
    assert_eq!(
        (header.as_str(), sort.as_deref()),
        ("Name ↓", Some("descending"))
    );
    assert_eq!(
        names(&browser).await,
        ["Echo", "Delta", "Charlie", "Bravo", "Alpha"]
    );
    sort_by(&browser, "status").await;
    let statuses = browser
        .js("return [...document.querySelectorAll('#keys .status')].map(s => s.textContent);")
        .await;
    let statuses: Vec<String> = serde_json::from_value(statuses).unwrap();
    let mut sorted = statuses.clone();
    sorted.sort();
    assert_eq!(statuses, sorted, "in the order of the status column");

    // The filters, alone and together; the order chosen stays as they change.
    sort_by(&browser, "name").await;
    filter(&browser, &[("#filter-environment", "test")]).await;
    assert_eq!(names(&browser).await, ["Charlie"]);
    assert_eq!(browser.text("#key-count").await, "1 key");
    filter(
        &browser,
        &[("#filter-environment", ""), ("#filter-status", "disabled")],
    )
    .await;
    assert_eq!(names(&browser).await, ["Bravo"]);
    filter(&browser, &[("#filter-status", "revoked")]).await;
    assert_eq!(names(&browser).await, ["Echo"]);
    filter(
        &browser,
        &[
            ("#filter-environment", "live"),
            ("#filter-status", "enabled"),
        ],
    )
    .await;
    assert_eq!(names(&browser).await, ["Alpha", "Delta"], "by name still");
    let path = browser.path().await;
    assert!(
        path.contains("environment=live") && path.contains("order_by=name"),
        "{path}"
    );
    let selected = browser
        .find("#filter-status")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(selected.as_deref(), Some("enabled"), "the filter is kept");

    // An operator who may see every key chooses between theirs and everyone's.
    browser.goto("/console/keys").await;
    filter(&browser, &[("#filter-owner", "mine")]).await;
    assert!(browser.path().await.contains("owner=mine"));
    assert_eq!(names(&browser).await, ["Bravo", "Charlie", "Alpha"]);
    filter(&browser, &[("#filter-owner", "all")]).await;
    assert_eq!(names(&browser).await.len(), 5);

    // One who may not sees only their own keys, with no such choice.
    browser.follow("#log-out").await;
    browser.log_in(OPS, &ops.password).await;
    assert!(!browser.exists("#filter-owner").await);
    assert_eq!(names(&browser).await, ["Echo", "Delta"]);
    browser.goto("/console/keys?owner=all").await;
    assert_eq!(names(&browser).await, ["Echo", "Delta"]);
    browser
        .goto(&format!("/console/keys/{}", delta.client_id))
        .await;
    assert!(
        !browser.exists("#events").await && !browser.page_text().await.contains("Audit trail"),
        "no audit trail without audit:read"
    );
    browser.close().await;
}

/// More keys than a page holds: the next page continues where the first ended, in the order
/// and with the filters chosen, and the first page is a click away.
async fn a_long_list_pages_by_cursor_in_the_order_and_filters_chosen(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let session = app.log_in(ADMIN, &admin.password).await;
    let all: Vec<String> = (0..105).map(|i| format!("key {i:03}")).collect();
    for (i, name) in all.iter().enumerate() {
        // Three test keys among them.
        let environment = if i % 50 == 0 { "test" } else { "live" };
        let body = serde_json::json!({
            "name": name, "scopes": ["invoices:read"], "environment": environment,
        });
        Reply::send(
            app.with_session(Method::POST, "/v1/api-keys", &session)
                .json(&body),
        )
        .await
        .expect(201);
    }
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;

    assert_eq!(browser.text("#key-count").await, "105 keys");
    let first = names(&browser).await;
    assert_eq!(first.len(), 100, "a page holds 100 keys");
    assert!(!browser.exists("#first-page").await);
    browser.follow("#next-page").await;
    assert!(browser.path().await.contains("cursor="));
    let second = names(&browser).await;
    assert_eq!(second.len(), 5);
    assert!(!browser.exists("#next-page").await, "the last page");
    let mut seen: Vec<String> = first.iter().chain(&second).cloned().collect();
    seen.sort();
    assert_eq!(seen, all, "every key once across the pages");

    sort_by(&browser, "name").await;
    assert!(
        !browser.path().await.contains("cursor="),
        "a new order starts at the top"
    );
    assert_eq!(names(&browser).await, all[..100]);
    browser.follow("#next-page").await;
    assert_eq!(names(&browser).await, all[100..]);

    browser.follow("#first-page").await;
    filter(&browser, &[("#filter-environment", "live")]).await;
    assert_eq!(browser.text("#key-count").await, "102 keys");
    let live: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 50 != 0)
        .map(|(_, name)| name.clone())
        .collect();
    assert_eq!(names(&browser).await, live[..100]);
    browser.follow("#next-page").await;
    let path = browser.path().await;
    assert!(
        path.contains("environment=live")
            && path.contains("order_by=name")
            && path.contains("cursor="),
        "{path}"
    );
    assert_eq!(names(&browser).await, live[100..]);
    browser.follow("#first-page").await;
    assert_eq!(names(&browser).await, live[..100]);
    assert!(!browser.path().await.contains("cursor="));
    browser.close().await;
}

/// The one-time view, left and come back to with the browser's Back and Forward buttons (which
/// may restore a page as it was, from the back/forward cache): the secret is not shown again.
async fn back_and_forward_never_show_a_secret_again(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let ops = app.create_user(OPS, &["--permissions", OPS_PERMISSIONS]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(OPS, &ops.password).await;
    let gone = |secret: String| {
        let browser = &browser;
        async move {
            assert_eq!(browser.text("h1").await, "Shown once, already");
            assert!(!browser.exists("#client-secret").await);
            assert!(!browser.page_text().await.contains(&secret));
        }
    };

    browser.goto("/console/keys/new").await;
    browser.fill("#name", "Shown once").await;
    browser.click(&scope_box("invoices:read")).await;
    browser.follow("#create").await;
    let reveal = browser.path().await;
    let made = key(
        &browser.text("#client-id").await,
        &browser.text("#client-secret").await,
    );
    let page = format!("/console/keys/{}", made.client_id);
    browser.follow(&format!("main a[href='{page}']")).await;
    browser.back().await;
    assert_eq!(browser.path().await, reveal);
    gone(made.client_secret.clone()).await;
    browser.forward().await;
    assert_eq!(browser.path().await, page);
    assert_eq!(browser.text("#key-name").await, "Shown once");
    browser.back().await;
    gone(made.client_secret.clone()).await;
    // Back to the form the key was made with, and forward to the view again.
    browser.back().await;
    assert_eq!(browser.path().await, "/console/keys/new");
    browser.forward().await;
    assert_eq!(browser.path().await, reveal);
    gone(made.client_secret.clone()).await;

    // A rotated secret, likewise.
    browser.goto(&page).await;
    browser.follow("#rotate-key").await;
    let rotated = browser.text("#client-secret").await;
    assert_ne!(rotated, made.client_secret);
    browser.back().await;
    assert_eq!(browser.path().await, page);
    browser.forward().await;
    gone(rotated.clone()).await;
    browser.back().await;
    browser.forward().await;
    gone(rotated.clone()).await;
    token(&app, &key(&made.client_id, &rotated)).await;
    let visited = browser.close().await;
    assert_never_in_an_address(&visited, &[&made.client_secret, &rotated]);

    // Over HTTP: no cache may keep the view, the first time or after.
    let session = app.log_in(OPS, &ops.password).await;
    let form = crate::helpers::form(&[
        ("csrf", &session.csrf),
        ("name", "Over HTTP"),
        ("scope", "invoices:read"),
    ]);
    let created = Reply::send(
        app.with_cookie(Method::POST, "/console/keys", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let location = created
        .header("location")
        .expect("the one-time view")
        .to_owned();
    for status in [200, 410] {
        let shown = Reply::send(app.with_cookie(Method::GET, &location, &session)).await;
        assert_eq!(shown.status, status);
        assert_eq!(shown.header("cache-control"), Some("no-store"));
    }
}

/// Without JavaScript (the browser runs no script of the pages), an operator logs in, ticks
/// read-only permissions with the shortcut (a round trip instead), makes a key, reads its
/// secret and revokes it.
async fn without_javascript_an_operator_logs_in_makes_and_revokes_a_key(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let writer = app.create_user(WRITER, &["--permissions", WRITER_PERMISSIONS]);
    let browser = Browser::open_without_javascript(&tools, &app).await;
    browser.log_in(WRITER, &writer.password).await;

    browser.follow("#new-key").await;
    assert!(
        browser
            .find("#expires-on")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "no script runs to hide the date field"
    );
    browser.fill("#name", "Made without scripts").await;
    browser.follow("#read-only").await;
    assert_eq!(browser.text("h1").await, "New API key", "the form again");
    assert_eq!(ticked(&browser).await, ["clients:read", "invoices:read"]);
    let name = browser.find("#name").await.prop("value").await.unwrap();
    assert_eq!(
        name.as_deref(),
        Some("Made without scripts"),
        "what was typed is kept"
    );
    browser.follow("#full-access").await;
    assert_eq!(
        ticked(&browser).await,
        ["clients:read", "invoices:read", "invoices:write"]
    );
    browser.click(&scope_box("invoices:write")).await;
    browser.follow("#create").await;

    assert!(browser.path().await.starts_with("/console/reveal/"));
    assert!(
        !browser
            .find("#copy-secret")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "no script runs, so no copy button that would do nothing"
    );
    let made = key(
        &browser.text("#client-id").await,
        &browser.text("#client-secret").await,
    );
    let issued = token(&app, &made).await;
    assert_eq!(issued["scope"], "clients:read invoices:read");

    browser
        .follow(&format!("main a[href='/console/keys/{}']", made.client_id))
        .await;
    browser.follow("#revoke-key").await;
    browser.follow("#confirm").await;
    assert_eq!(browser.text("#key-status").await, "revoked");
    assert_refused(&app, &made).await;
    browser.close().await;
}

/// With JavaScript: the shortcuts tick in place, and the copy buttons copy.
async fn the_shortcuts_tick_in_place_and_the_copy_buttons_copy(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let writer = app.create_user(WRITER, &["--permissions", WRITER_PERMISSIONS]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(WRITER, &writer.password).await;

    browser.goto("/console/keys/new").await;
    // A mark on this page's window: gone if the page were loaded again.
    browser.js("window.__sameForm = true;").await;
    browser.click("#read-only").await;
    assert_eq!(ticked(&browser).await, ["clients:read", "invoices:read"]);
    browser.click("#full-access").await;
    assert_eq!(
        ticked(&browser).await,
        ["clients:read", "invoices:read", "invoices:write"]
    );
    browser.click("#read-only").await;
    assert_eq!(
        ticked(&browser).await,
        ["clients:read", "invoices:read"],
        "read only unticks the write scope"
    );
    assert_eq!(
        browser.js("return window.__sameForm === true;").await,
        Value::Bool(true),
        "no round trip"
    );
    browser.fill("#name", "Copied").await;
    browser.follow("#create").await;

    let made = key(
        &browser.text("#client-id").await,
        &browser.text("#client-secret").await,
    );
    browser.allow_clipboard_reading().await;
    for (button, label, copied) in [
        ("#copy-secret", "Copy secret", &made.client_secret),
        ("button[data-copy=client-id]", "Copy", &made.client_id),
    ] {
        assert_eq!(browser.text(button).await, label);
        browser.click(button).await;
        let said = eventually(5, || async { browser.text(button).await == "Copied" }).await;
        assert!(said, "{button} says it copied");
        assert_eq!(&browser.clipboard().await, copied);
        let back = eventually(10, || async { browser.text(button).await == label }).await;
        assert!(back, "{button} reads {label:?} again");
    }
    let issued = token(&app, &made).await;
    assert_eq!(issued["scope"], "clients:read invoices:read");
    browser.close().await;
}

/// Deleting asks first (and can be cancelled), then the key is gone from the list and from
/// `/v1/token`; its page showed its audit trail, newest first, up to then.
async fn deleting_a_key_asks_first_and_its_page_shows_its_audit_trail(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let created = app.create_key_with(&["invoices:read"], &["--owner", ADMIN]);
    let id = created.client_id.clone();
    let page = format!("/console/keys/{id}");
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;
    let events = || async {
        let rows = browser
            .js("return [...document.querySelectorAll('#events tbody tr')].map(r => [...r.cells].map(c => c.textContent));")
            .await;
        serde_json::from_value::<Vec<Vec<String>>>(rows).unwrap()
    };

    browser.goto(&page).await;
    let trail = events().await;
    assert_eq!(trail.len(), 1, "{trail:?}");
    assert_eq!(trail[0][2], "api_key.created");
    browser.follow("#disable-key").await;
    browser.follow("#confirm").await;
    let trail = events().await;
    let actions: Vec<&str> = trail.iter().map(|row| row[2].as_str()).collect();
    assert_eq!(
        actions,
        ["api_key.disabled", "api_key.created"],
        "newest first"
    );
    assert_eq!(trail[0][1], format!("user:{ADMIN}"), "who did it");
    assert_eq!(trail[0][3], "success");
    browser
        .follow(&format!("a[href='/console/audit?target={id}']"))
        .await;
    assert_eq!(browser.path().await, format!("/console/audit?target={id}"));
    let targets = browser
        .js("return [...document.querySelectorAll('#events tbody td[data-label=Target]')].map(c => c.textContent);")
        .await;
    assert_eq!(targets, serde_json::json!([id, id]));

    browser.goto(&page).await;
    browser.follow("#delete-key").await;
    assert_eq!(
        browser.text("#question").await,
        format!("Delete the API key \"test key\" ({id})?")
    );
    assert_eq!(
        browser
            .find("#confirm")
            .await
            .attr("class")
            .await
            .unwrap()
            .as_deref(),
        Some("danger")
    );
    browser.follow("#confirm-form a").await;
    assert_eq!(browser.path().await, page, "cancelled");
    assert_eq!(browser.text("#key-status").await, "disabled");

    browser.follow("#delete-key").await;
    browser.follow("#confirm").await;
    assert_eq!(browser.path().await, "/console/keys?done=key-deleted");
    assert_eq!(browser.text("[role=status]").await, "The key is deleted.");
    assert!(!browser.exists(&format!("tr[data-client-id='{id}']")).await);
    browser.goto(&page).await;
    assert_eq!(browser.text("h1").await, "Not found");
    browser.goto(&format!("/console/audit?target={id}")).await;
    let actions = browser
        .js("return [...document.querySelectorAll('#events tbody td[data-label=Action]')].map(c => c.textContent);")
        .await;
    assert_eq!(
        actions,
        serde_json::json!([
            "api_key.deleted",
            "api_key.revoked",
            "api_key.disabled",
            "api_key.created"
        ]),
        "the trail stays"
    );
    assert_refused(&app, &created).await;
    browser.close().await;
}

/// A form whose CSRF token was changed or removed (as a forged form would have it) is refused
/// with a page that says so, and changes nothing.
async fn a_form_with_a_wrong_or_missing_csrf_token_changes_nothing(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let created = app.create_key_with(&["invoices:read"], &["--owner", ADMIN]);
    let id = created.client_id.clone();
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(ADMIN, &admin.password).await;
    let refused = || async {
        assert_eq!(browser.text("h1").await, "This form has expired");
        assert!(
            browser
                .text("[role=alert]")
                .await
                .contains("reload the page"),
            "says what to do"
        );
    };

    browser.goto(&format!("/console/keys/{id}/revoke")).await;
    browser
        .js("document.querySelector('#confirm-form input[name=csrf]').value = 'forged';")
        .await;
    browser.follow("#confirm").await;
    refused().await;
    assert_eq!(listed_status(&browser, &id).await, "enabled");
    token(&app, &created).await;

    browser.goto("/console/keys/new").await;
    browser.fill("#name", "Forged").await;
    browser.click(&scope_box("invoices:read")).await;
    browser
        .js("document.querySelector('#new-key input[name=csrf]').remove();")
        .await;
    browser.follow("#create").await;
    refused().await;
    browser.goto("/console/keys").await;
    assert_eq!(names(&browser).await, ["test key"], "no key was made");

    browser
        .js("document.querySelector('form.account input[name=csrf]').value = '';")
        .await;
    browser.follow("#log-out").await;
    refused().await;
    browser.goto("/console/keys").await;
    assert_eq!(browser.path().await, "/console/keys", "still logged in");
    assert_eq!(browser.text("#current-user").await, ADMIN);
    browser.close().await;
}

backend_tests!(
    a_new_key_shows_its_secret_once_and_gets_tokens,
    rotation_keeps_the_old_secret_for_the_grace_chosen,
    disable_enable_and_revoke_show_at_once_in_the_list_and_at_the_token_endpoint,
    a_key_name_with_html_in_it_shows_as_text,
    a_key_page_charts_its_usage_and_a_key_can_get_refresh_tokens,
    the_list_filters_sorts_and_shows_my_keys_or_every_key,
    a_long_list_pages_by_cursor_in_the_order_and_filters_chosen,
    back_and_forward_never_show_a_secret_again,
    without_javascript_an_operator_logs_in_makes_and_revokes_a_key,
    the_shortcuts_tick_in_place_and_the_copy_buttons_copy,
    deleting_a_key_asks_first_and_its_page_shows_its_audit_trail,
    a_form_with_a_wrong_or_missing_csrf_token_changes_nothing,
);
