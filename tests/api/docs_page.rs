//! The API reference at `/docs`: over plain HTTP, the page and each file it links, with their
//! types and headers; in a real headless Chromium (the console's harness), the page drawn from
//! `/openapi.json` under its own Content-Security-Policy, loading nothing from any other host.

use reqwest::Method;

use crate::console::{Browser, tools};
use crate::helpers::{Backend, Reply, spawn_app};

/// Every address the page links (`src` and `href`), as written in it.
fn links(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for rest in page.split(attribute).skip(1) {
            found.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    found
}

#[actix_web::test]
async fn the_page_and_its_files_answer_with_their_types_and_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = Reply::send(app.client.get(app.url("/docs"))).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let content_type = page.header("content-type").unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let csp = page
        .header("content-security-policy")
        .expect("a Content-Security-Policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "connect-src 'self';",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-"), "no inline code, no eval: {csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(page.text.contains("<title>keygate API reference</title>"));

    // Every link is relative to the page, so the page works under any host and path prefix.
    let links = links(&page.text);
    for link in &links {
        assert!(
            link == "data:," || !(link.starts_with('/') || link.contains(':')),
            "{link} is relative to the page"
        );
    }
    let files: Vec<&String> = links.iter().filter(|l| l.starts_with("docs/")).collect();
    let mut names: Vec<&str> = files
        .iter()
        .map(|l| l["docs/".len()..].split('?').next().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "docs.css",
            "docs.js",
            "swagger-ui-bundle.js",
            "swagger-ui.css"
        ],
        "the page links Swagger UI and keygate's script and stylesheet around it"
    );
    for link in files {
        let file = Reply::send(app.client.get(app.url(&format!("/{link}")))).await;
        assert_eq!(file.status, 200, "{link}");
        let expected = if link.contains(".js?") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(file.header("content-type"), Some(expected), "{link}");
        assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(
            file.header("cache-control"),
            Some("public, max-age=31536000, immutable"),
            "{link} is versioned by its checksum, so it may be kept for a year"
        );
        assert!(!file.text.is_empty(), "{link}");
    }

    // Nothing else is served there, Swagger UI's other files included.
    for path in [
        "/docs/index.html",
        "/docs/swagger-initializer.js",
        "/docs/oauth2-redirect.html",
        "/docs/",
    ] {
        let other = Reply::send(app.client.get(app.url(path))).await;
        assert_eq!(other.status, 404, "{path}");
        assert_eq!(other.body["error"], "not_found", "{path}");
    }
    let post = Reply::send(app.client.request(Method::POST, app.url("/docs"))).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET"));
}

#[actix_web::test]
async fn the_reference_shows_keygate_s_operations_and_asks_no_other_host() {
    let Some(tools) = tools() else { return };
    let app = spawn_app(Backend::Sqlite).await;
    let document = app.get_json("/openapi.json").await;
    let summary = document["paths"]["/v1/token"]["post"]["summary"]
        .as_str()
        .expect("POST /v1/token has a summary")
        .to_owned();
    let browser = Browser::open(&tools, &app).await;
    browser.goto("/docs").await;

    // Swagger UI draws each operation once it has fetched and read the document.
    let token = "#operations-tokens-issue_token";
    assert_eq!(
        browser
            .text(&format!("{token} .opblock-summary-path"))
            .await,
        "/v1/token"
    );
    assert_eq!(
        browser
            .text(&format!("{token} .opblock-summary-description"))
            .await,
        summary
    );
    let text = browser.page_text().await;
    assert!(text.contains("/v1/token") && text.contains(&summary));
    assert_eq!(
        browser.js("return document.title;").await,
        "keygate API reference"
    );

    // "Try it out" calls keygate from the page, as its policy allows.
    let live = "#operations-health-live";
    browser
        .click(&format!("{live} .opblock-summary-control"))
        .await;
    browser.click(&format!("{live} .try-out__btn")).await;
    browser.click(&format!("{live} .execute")).await;
    let answered = format!("{live} .live-responses-table tr.response .response-col_status");
    assert_eq!(browser.text(&answered).await, "200");
    let body = browser
        .text(&format!(
            "{live} .live-responses-table tr.response .microlight"
        ))
        .await;
    assert!(body.contains("\"ok\""), "{body}");

    // Everything the page loaded came from keygate: the page, Swagger UI, the document and
    // the call above.
    let loaded = browser
        .js("return [location.href]\
             .concat(performance.getEntriesByType('resource').map(e => e.name));")
        .await;
    let loaded: Vec<&str> = loaded
        .as_array()
        .expect("a list")
        .iter()
        .map(|url| url.as_str().expect("an address"))
        .collect();
    let keygate = format!("{}/", app.address);
    for url in &loaded {
        assert!(url.starts_with(&keygate), "{url} is not keygate's");
    }
    for wanted in ["/docs/swagger-ui-bundle.js?v=", "/openapi.json", "/healthz"] {
        assert!(
            loaded.iter().any(|url| url.contains(wanted)),
            "{wanted} among {loaded:?}"
        );
    }
    // And nothing was refused by the policy, nor failed in a script.
    let log = browser.console_log().await;
    let severe: Vec<_> = log.iter().filter(|(level, _)| level == "SEVERE").collect();
    assert!(severe.is_empty(), "the console has errors: {severe:?}");
    browser.close().await;
}
