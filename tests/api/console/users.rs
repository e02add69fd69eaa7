//! The user pages: nobody grants a permission they do not hold, neither through the form (its
//! box is disabled) nor by a form changed in the browser; a user made within one's own
//! permissions gets a password shown once, that logs in; a user's permissions changed, and the
//! user disabled and enabled again, each taking effect at once.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Browser, assert_never_in_an_address, tools};
use crate::backend_tests;
use crate::helpers::{
    Backend, Reply, TestApp, TestSession, eventually, key_and_token, login, me_status, spawn_app,
    stdout, token_reply,
};

/// An operator who manages users, and holds one API scope.
const LEAD: &str = "lead@example.com";
const LEAD_PERMISSIONS: &str = "users:manage,api_keys:read,api_keys:write,invoices:read";
const NEWCOMER: &str = "newcomer@example.com";

fn permission_box(permission: &str) -> String {
    format!("input[name=permission][value='{permission}']")
}

async fn nobody_grants_a_permission_they_lack_even_with_a_changed_form(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let lead = app.create_user(LEAD, &["--permissions", LEAD_PERMISSIONS]);
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(LEAD, &lead.password).await;

    browser.follow("#nav-users").await;
    assert_eq!(browser.path().await, "/console/users");
    assert!(browser.page_text().await.contains(LEAD));
    browser.follow("#new-user").await;
    assert_eq!(browser.path().await, "/console/users/new");
    for held in ["invoices:read", "users:manage"] {
        let field = browser.find(&permission_box(held)).await;
        assert!(field.is_enabled().await.unwrap(), "{held} may be granted");
    }
    for lacking in ["invoices:write", "audit:read", "api_keys:manage"] {
        let field = browser.find(&permission_box(lacking)).await;
        assert!(!field.is_enabled().await.unwrap(), "{lacking} is disabled");
    }

    // The box is enabled and ticked by a script, as anyone can in their own browser: the
    // server still refuses, and says why on the page.
    browser.fill("#email", NEWCOMER).await;
    browser.click(&permission_box("invoices:read")).await;
    let lacking = browser
        .element_json(&permission_box("invoices:write"))
        .await;
    browser
        .js_with(
            "arguments[0].disabled = false; arguments[0].checked = true;",
            vec![lacking],
        )
        .await;
    browser.follow("#create-user").await;
    assert_eq!(browser.path().await, "/console/users", "the form again");
    assert_eq!(browser.text("h1").await, "New user");
    let problem = browser.text("[role=alert]").await;
    assert!(
        problem.contains("invoices:write"),
        "the refusal names the permission: {problem}"
    );
    assert!(
        !problem.contains('`') && problem.starts_with(char::is_uppercase) && problem.ends_with('.'),
        "a sentence, not a code message: {problem}"
    );
    let ticked = browser
        .js("return [...document.querySelectorAll('input[name=permission]:checked')].map(b => b.value);")
        .await;
    assert_eq!(
        ticked,
        serde_json::json!(["invoices:read"]),
        "what may be granted stays ticked; the box that may not is no longer ticked"
    );
    let kept = browser.find("#email").await.prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some(NEWCOMER), "what was typed is kept");
    assert!(
        !browser
            .find(&permission_box("invoices:write"))
            .await
            .is_enabled()
            .await
            .unwrap(),
        "and the box is disabled again"
    );
    browser.screenshot("new-user-refused").await;
    let listed = stdout(&app.cli(&["users", "list"]));
    assert!(!listed.contains(NEWCOMER), "no user was made: {listed}");

    // Within the operator's own permissions, the user is made, with a password shown once.
    browser.goto("/console/users/new").await;
    browser.fill("#email", NEWCOMER).await;
    browser.click(&permission_box("invoices:read")).await;
    browser.follow("#create-user").await;
    assert!(browser.path().await.starts_with("/console/reveal/"));
    assert_eq!(browser.text("h1").await, NEWCOMER);
    let password = browser.text("#password").await;
    assert_eq!(login(&app, NEWCOMER, &password).await.status, 200);
    browser.reload().await;
    assert_eq!(browser.text("h1").await, "Shown once, already");

    browser.goto("/console/users").await;
    let mut rows = Vec::new();
    for row in browser.find_all("#users tbody tr").await {
        rows.push(row.text().await.unwrap());
    }
    assert!(
        rows.iter()
            .any(|r| r.contains(NEWCOMER) && r.contains("invoices:read")),
        "the list shows the new user and what they hold: {rows:?}"
    );
    let href = browser
        .js_with(
            "return [...document.querySelectorAll('#users a')]
                .find(a => a.textContent === arguments[0]).getAttribute('href');",
            vec![NEWCOMER.into()],
        )
        .await;
    browser
        .goto(href.as_str().expect("a link to the user"))
        .await;
    assert_eq!(browser.text("#user-email").await, NEWCOMER);
    let held = browser
        .js("return [...document.querySelectorAll('input[name=permission]:checked')].map(b => b.value);")
        .await;
    assert_eq!(held, serde_json::json!(["invoices:read"]));
    let visited = browser.close().await;
    assert_never_in_an_address(&visited, &[&password, &lead.password]);
}

/// The permissions ticked in the grid of the page.
async fn ticked(browser: &Browser) -> Vec<String> {
    let values = browser
        .js("return [...document.querySelectorAll('input[name=permission]:checked')].map(b => b.value);")
        .await;
    let mut values: Vec<String> = serde_json::from_value(values).unwrap();
    values.sort();
    values
}

/// What `/v1/session` says the user of `session` holds, or its status when it is refused.
async fn held(app: &TestApp, session: &TestSession) -> Result<Value, u16> {
    let reply = Reply::send(app.with_cookie(Method::GET, "/v1/session", session)).await;
    match reply.status {
        200 => Ok(reply.json()["user"]["permissions"].clone()),
        status => Err(status),
    }
}

/// A user's permissions changed on their page take effect at once (tokens of their keys issued
/// before a narrowing stop working); disabling logs them out and stops their keys, enabling lets
/// them back in.
async fn an_operator_changes_permissions_and_disables_and_enables_a_user(backend: Backend) {
    let Some(tools) = tools() else { return };
    let app = spawn_app(backend).await;
    let lead = app.create_user(LEAD, &["--permissions", LEAD_PERMISSIONS]);
    let newcomer = app.create_user(
        NEWCOMER,
        &[
            "--permissions",
            "api_keys:read,api_keys:write,invoices:read",
        ],
    );
    let (key, access) = key_and_token(&app, NEWCOMER, &["invoices:read"]).await;
    let session = app.log_in(NEWCOMER, &newcomer.password).await;
    let browser = Browser::open(&tools, &app).await;
    browser.log_in(LEAD, &lead.password).await;

    browser.goto("/console/users").await;
    browser
        .follow(&format!("tr[data-user-id='{}'] a", newcomer.id))
        .await;
    let page = format!("/console/users/{}", newcomer.id);
    assert_eq!(browser.path().await, page);
    assert_eq!(browser.text("#user-status").await, "enabled");
    assert_eq!(
        ticked(&browser).await,
        ["api_keys:read", "api_keys:write", "invoices:read"]
    );

    browser.click(&permission_box("invoices:read")).await;
    browser.follow("#save-permissions").await;
    assert_eq!(browser.path().await, format!("{page}?done=user-updated"));
    assert_eq!(browser.text("[role=status]").await, "The user is updated.");
    assert_eq!(ticked(&browser).await, ["api_keys:read", "api_keys:write"]);
    assert_eq!(
        held(&app, &session).await,
        Ok(json!(["api_keys:read", "api_keys:write"]))
    );
    let cut = eventually(5, || async { me_status(&app, &access).await == 401 }).await;
    assert!(cut, "a token issued while the owner held more is refused");
    browser.goto("/console/users").await;
    let listed = browser
        .text(&format!("tr[data-user-id='{}'] .scopes", newcomer.id))
        .await;
    assert!(!listed.contains("invoices:read"), "{listed}");

    browser.goto(&page).await;
    browser.click(&permission_box("invoices:read")).await;
    browser.follow("#save-permissions").await;
    assert_eq!(
        ticked(&browser).await,
        ["api_keys:read", "api_keys:write", "invoices:read"]
    );
    token_reply(&app, &key).await.expect(200);

    browser.follow("#disable-user").await;
    assert_eq!(
        browser.text("[role=status]").await,
        "The user is disabled and logged out."
    );
    assert_eq!(browser.text("#user-status").await, "disabled");
    assert_eq!(held(&app, &session).await, Err(401), "logged out");
    assert_eq!(login(&app, NEWCOMER, &newcomer.password).await.status, 401);
    token_reply(&app, &key)
        .await
        .expect_error(401, "invalid_client");

    browser.follow("#enable-user").await;
    assert_eq!(browser.text("[role=status]").await, "The user is enabled.");
    assert_eq!(browser.text("#user-status").await, "enabled");
    assert_eq!(login(&app, NEWCOMER, &newcomer.password).await.status, 200);
    token_reply(&app, &key).await.expect(200);
    browser.goto("/console/users").await;
    assert_eq!(
        browser
            .text(&format!("tr[data-user-id='{}'] .status", newcomer.id))
            .await,
        "enabled"
    );
    browser.close().await;
}

backend_tests!(
    nobody_grants_a_permission_they_lack_even_with_a_changed_form,
    an_operator_changes_permissions_and_disables_and_enables_a_user,
);
