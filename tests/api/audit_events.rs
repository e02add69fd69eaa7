//! `/v1/audit-events`: the audit trail, filtered (actor, action, target, time) and paged,
//! confined to the caller's organization, recording where each call came from, and never
//! holding a password or a secret.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ClientAuth, Reply, TestApp, TestKey, assert_cli_ok, assert_error, audit_events,
    cli_with_stdin, create_organization, create_user_via_token, eventually, introspect, login,
    post_form, query, revoke, spawn_app, stdout, token_reply,
};

/// Every event the caller may see, newest first, read page by page.
async fn all_audit_events(app: &TestApp, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let page = audit_events(app, token, &format!("limit=100&offset={}", events.len())).await;
        let data = page["data"].as_array().unwrap().clone();
        if data.is_empty() {
            return events;
        }
        events.extend(data);
    }
}

fn actions(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

fn targets(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

async fn audit_events_filter_by_actor_action_and_target_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key_with(
        &["audit:read", "users:manage", "invoices:read"],
        &["--owner", ADMIN],
    );
    let token = app.token_for(&key).await;
    let key_actor = format!("api_key:{}", key.client_id);
    let session = app.log_in(ADMIN, &admin.password).await;

    let u1 = create_user_via_token(&app, &token, json!({ "email": "u1@example.com" })).await;
    let u2 = create_user_via_token(&app, &token, json!({ "email": "u2@example.com" })).await;
    let u3 = Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .json(&json!({ "email": "u3@example.com" })),
    )
    .await
    .expect(201);
    let u1_id = u1["id"].as_str().unwrap();
    Reply::send(
        app.with_token(Method::PATCH, &format!("/v1/users/{u1_id}"), &token)
            .json(&json!({ "permissions": ["invoices:read"] })),
    )
    .await
    .expect(200);

    let everything = audit_events(&app, &token, "").await;
    assert_eq!(everything["limit"], 100);
    assert_eq!(everything["offset"], 0);
    let data = everything["data"].as_array().unwrap();
    assert_eq!(everything["count"].as_u64().unwrap() as usize, data.len());
    let all_ids = ids(data);
    let mut sorted = all_ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(all_ids, sorted, "newest first");
    let times: Vec<chrono::DateTime<chrono::Utc>> = data
        .iter()
        .map(|e| e["occurred_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    for event in data {
        for field in ["id", "occurred_at", "actor", "action", "outcome"] {
            assert!(!event[field].is_null(), "{field} in {event}");
        }
    }

    let by_key = audit_events(
        &app,
        &token,
        &query(&[("actor", &key_actor), ("action", "user.created")]),
    )
    .await;
    assert_eq!(by_key["count"], 2);
    assert_eq!(
        targets(&by_key),
        [u2["id"].as_str().unwrap(), u1_id],
        "newest first"
    );
    let by_user = audit_events(
        &app,
        &token,
        &query(&[
            ("actor", "user:admin@example.com"),
            ("action", "user.created"),
        ]),
    )
    .await;
    assert_eq!(targets(&by_user), [u3["id"].as_str().unwrap()]);
    let about_u1 = audit_events(&app, &token, &query(&[("target", u1_id)])).await;
    assert_eq!(actions(&about_u1), ["user.updated", "user.created"]);
    let logins = audit_events(&app, &token, &query(&[("action", "session.login")])).await;
    assert_eq!(logins["count"], 1);
    assert_eq!(logins["data"][0]["target"], admin.id.as_str());
    let nothing = audit_events(
        &app,
        &token,
        &query(&[("actor", "user:nobody@example.com")]),
    )
    .await;
    assert_eq!(nothing["count"], 0);
    assert_eq!(nothing["data"], json!([]));
}

async fn audit_events_filter_by_time_range(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app.token_as(ADMIN, &["audit:read", "users:manage"]).await;
    let pause = || actix_web::rt::time::sleep(Duration::from_millis(60));
    let stamp =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    let a = create_user_via_token(&app, &token, json!({ "email": "a@example.com" })).await;
    pause().await;
    let t1 = chrono::Utc::now();
    pause().await;
    let b = create_user_via_token(&app, &token, json!({ "email": "b@example.com" })).await;
    pause().await;
    let t2 = chrono::Utc::now();
    pause().await;
    let c = create_user_via_token(&app, &token, json!({ "email": "c@example.com" })).await;
    let id = |u: &Value| u["id"].as_str().unwrap().to_owned();

    let since = audit_events(
        &app,
        &token,
        &query(&[("action", "user.created"), ("since", &stamp(t1))]),
    )
    .await;
    assert_eq!(targets(&since), [id(&c), id(&b)]);
    let until = audit_events(
        &app,
        &token,
        &query(&[("action", "user.created"), ("until", &stamp(t1))]),
    )
    .await;
    let until_targets = targets(&until);
    assert!(until_targets.contains(&id(&a)), "{until}");
    assert!(!until_targets.contains(&id(&b)) && !until_targets.contains(&id(&c)));
    let between = audit_events(
        &app,
        &token,
        &query(&[
            ("action", "user.created"),
            ("since", &stamp(t1)),
            ("until", &stamp(t2)),
        ]),
    )
    .await;
    assert_eq!(targets(&between), [id(&b)]);
    assert_eq!(between["count"], 1);

    // The same instants written with an offset.
    let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let with_offset = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&offset)
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
    };
    let between = audit_events(
        &app,
        &token,
        &query(&[
            ("action", "user.created"),
            ("since", &with_offset(t1)),
            ("until", &with_offset(t2)),
        ]),
    )
    .await;
    assert_eq!(targets(&between), [id(&b)]);
}

async fn audit_events_are_paged_with_limit_and_offset(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app
        .token_as(ADMIN, &["audit:read", "api_keys:write", "invoices:read"])
        .await;
    for i in 0..5 {
        Reply::send(
            app.with_token(Method::POST, "/v1/api-keys", &token)
                .json(&json!({ "name": format!("key {i}"), "scopes": ["invoices:read"] })),
        )
        .await
        .expect(201);
    }
    let by_action = |extra: &[(&str, &str)]| {
        let mut pairs = vec![("action", "api_key.created")];
        pairs.extend_from_slice(extra);
        query(&pairs)
    };
    let all = audit_events(&app, &token, &by_action(&[])).await;
    // The key behind `token` was made by the CLI: six in all.
    assert_eq!(all["count"], 6);
    let all_ids = ids(all["data"].as_array().unwrap());

    let mut paged = Vec::new();
    for offset in ["0", "2", "4"] {
        let page = audit_events(
            &app,
            &token,
            &by_action(&[("limit", "2"), ("offset", offset)]),
        )
        .await;
        assert_eq!(page["count"], 6, "count is every match");
        assert_eq!(page["limit"], 2);
        assert_eq!(page["offset"], offset.parse::<i64>().unwrap());
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        paged.extend(ids(page["data"].as_array().unwrap()));
    }
    assert_eq!(paged, all_ids, "the pages add up to the whole, in order");
    let beyond = audit_events(&app, &token, &by_action(&[("offset", "6")])).await;
    assert_eq!(beyond["data"], json!([]));
    assert_eq!(beyond["count"], 6);
    let one = audit_events(&app, &token, &by_action(&[("limit", "1")])).await;
    assert_eq!(ids(one["data"].as_array().unwrap()), [all_ids[0]]);
    let hundred = audit_events(&app, &token, &by_action(&[("limit", "100")])).await;
    assert_eq!(hundred["limit"], 100);
}

async fn audit_events_refuse_bad_query_parameters_naming_them(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app.token_as(ADMIN, &["audit:read"]).await;
    let cases = [
        ("since=yesterday", "since"),
        ("since=2026-11-25", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("colour=blue", "colour"),
    ];
    for (query, field) in cases {
        let reply =
            Reply::send(app.with_token(Method::GET, &format!("/v1/audit-events?{query}"), &token))
                .await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text);
        let body = reply.json();
        assert_eq!(body["error"], "invalid_request", "{query}");
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}

async fn an_audit_search_for_a_nul_byte_target_is_not_a_server_error(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let auditor = app.token_as(ADMIN, &["audit:read"]).await;
    for query in ["target=%00", "actor=%00", "action=%00"] {
        let answer = Reply::send(app.with_token(
            Method::GET,
            &format!("/v1/audit-events?{query}"),
            &auditor,
        ))
        .await;
        assert_ne!(answer.status, 500, "?{query}: {}", answer.text);
        match answer.status {
            200 => assert_eq!(answer.body["count"], 0, "?{query}"),
            _ => assert_error(&answer, 400, "invalid_request"),
        }
    }
}

async fn audit_events_need_audit_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let ops = app.create_user("ops@example.com", &["--permissions", "users:manage"]);
    let token = app.token_as(ADMIN, &["users:manage"]).await;
    let reply = Reply::send(app.with_token(Method::GET, "/v1/audit-events", &token)).await;
    reply.expect_error(403, "insufficient_scope");
    assert!(
        reply
            .header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"audit:read\"")
    );
    let session = app.log_in(&ops.email, &ops.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/audit-events", &session))
        .await
        .expect_error(403, "insufficient_scope");
    Reply::send(app.client.get(app.url("/v1/audit-events")))
        .await
        .expect(401);
    let session = app.log_in(ADMIN, &admin.password).await;
    Reply::send(app.with_session(Method::GET, "/v1/audit-events", &session))
        .await
        .expect(200);
}

async fn audit_events_of_another_organization_are_never_returned(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    create_organization(&app, "acme");
    let boss = app.create_user("boss@acme.example", &["--org", "acme", "--admin"]);
    let token = app.token_as(ADMIN, &["audit:read", "users:manage"]).await;
    create_user_via_token(&app, &token, json!({ "email": "mine@example.com" })).await;
    login(&app, ADMIN, &admin.password).await.expect(200);

    // Things happen in acme.
    let boss_session = app.log_in(&boss.email, &boss.password).await;
    login(&app, &boss.email, "a wrong password")
        .await
        .expect(401);
    let theirs = Reply::send(
        app.with_session(Method::POST, "/v1/users", &boss_session)
            .json(&json!({ "email": "theirs@acme.example" })),
    )
    .await
    .expect(201);
    let theirs_id = theirs["id"].as_str().unwrap().to_owned();
    Reply::send(
        app.with_session(
            Method::PATCH,
            &format!("/v1/users/{theirs_id}"),
            &boss_session,
        )
        .json(&json!({ "status": "disabled" })),
    )
    .await
    .expect(200);
    let acme_key = app.create_key_with(&["invoices:read"], &["--org", "acme"]);
    let acme_token = app.token_for(&acme_key).await;
    let bad = TestKey {
        client_id: acme_key.client_id.clone(),
        client_secret: app.create_key(&["invoices:read"]).client_secret,
    };
    token_reply(&app, &bad).await.expect(401);
    revoke(&app, ClientAuth::Basic(&acme_key), &acme_token)
        .await
        .expect_status_only(200);

    let acme_ids = [
        boss.id.as_str(),
        theirs_id.as_str(),
        acme_key.client_id.as_str(),
    ];
    let acme_audit = app.create_key_with(&["audit:read"], &["--org", "acme"]);
    let acme_audit_token = app.token_for(&acme_audit).await;
    // Some of acme's events are written after the response: wait until acme sees them all.
    assert!(
        eventually(2, || async {
            let events = all_audit_events(&app, &acme_audit_token).await;
            let has = |action: &str| events.iter().any(|e| e["action"] == action);
            has("session.login")
                && has("user.disabled")
                && has("token.revoked")
                && has("token.denied")
        })
        .await,
        "acme's own events are visible to acme"
    );

    let events = all_audit_events(&app, &token).await;
    assert!(!events.is_empty());
    for event in &events {
        let target = event["target"].as_str().unwrap_or("");
        let actor = event["actor"].as_str().unwrap_or("");
        assert!(
            !acme_ids.contains(&target)
                && !actor.contains("acme")
                && !actor.contains(&acme_key.client_id),
            "default sees an event of acme: {event}"
        );
    }
    for filter in [
        query(&[("target", &theirs_id)]),
        query(&[("target", &boss.id)]),
        query(&[("target", &acme_key.client_id)]),
        query(&[("actor", "user:boss@acme.example")]),
        query(&[("actor", &format!("api_key:{}", acme_key.client_id))]),
    ] {
        let page = audit_events(&app, &token, &filter).await;
        assert_eq!(page["count"], 0, "{filter}: {page}");
    }
    // And acme sees none of default's.
    for event in all_audit_events(&app, &acme_audit_token).await {
        assert_ne!(event["target"], admin.id.as_str(), "{event}");
        assert_ne!(event["actor"], "user:admin@example.com", "{event}");
    }
}

async fn audit_events_record_the_callers_address_and_user_agent(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key_with(
        &["audit:read", "users:manage", "tokens:revoke"],
        &["--owner", ADMIN],
    );
    let token = app.token_for(&key).await;

    // A login.
    Reply::send(
        app.client
            .post(app.url("/v1/session"))
            .header("user-agent", "agent-login/1.0")
            .json(&json!({ "email": ADMIN, "password": admin.password })),
    )
    .await
    .expect(200);
    let session = app.log_in(ADMIN, &admin.password).await;
    // A user change in a session, and one with a token.
    Reply::send(
        app.with_session(Method::POST, "/v1/users", &session)
            .header("user-agent", "agent-session/1.0")
            .json(&json!({ "email": "s@example.com" })),
    )
    .await
    .expect(201);
    Reply::send(
        app.with_token(Method::POST, "/v1/users", &token)
            .header("user-agent", "agent-token/1.0")
            .json(&json!({ "email": "t@example.com" })),
    )
    .await
    .expect(201);
    // A token revoked through RFC 7009 with client credentials.
    let victim = app.create_key(&["invoices:read"]);
    let victim_token = app.token_for(&victim).await;
    post_form(
        &app,
        "/v1/revoke",
        ClientAuth::Basic(&key),
        &[("token", &victim_token)],
        Some("agent-revoke/1.0"),
    )
    .await
    .expect_status_only(200);
    // A failed client authentication of an existing key.
    let wrong = app.create_key(&["invoices:read"]);
    Reply::send(
        app.client
            .post(app.url("/v1/token"))
            .header("user-agent", "agent-denied/1.0")
            .json(&json!({ "client_id": victim.client_id, "client_secret": wrong.client_secret })),
    )
    .await
    .expect(401);

    let expected = [
        ("session.login", "agent-login/1.0"),
        ("user.created", "agent-session/1.0"),
        ("user.created", "agent-token/1.0"),
        ("token.revoked", "agent-revoke/1.0"),
        ("token.denied", "agent-denied/1.0"),
    ];
    // token.denied is written after the response.
    let _ = eventually(2, || async {
        audit_events(&app, &token, &query(&[("action", "token.denied")])).await["count"] == 1
    })
    .await;
    let events = all_audit_events(&app, &token).await;
    let mut failures = Vec::new();
    for (action, agent) in expected {
        let of_action: Vec<&Value> = events.iter().filter(|e| e["action"] == action).collect();
        if of_action.is_empty() {
            failures.push(format!("no {action} event"));
            continue;
        }
        match of_action.iter().find(|e| e["user_agent"] == agent) {
            Some(event) => {
                if event["client_ip"] != "127.0.0.1" {
                    failures.push(format!("{action}: client_ip {}", event["client_ip"]));
                }
            }
            None => failures.push(format!(
                "{action}: no event with user_agent {agent:?}; got {:?}",
                of_action
                    .iter()
                    .map(|e| (e["user_agent"].clone(), e["client_ip"].clone()))
                    .collect::<Vec<_>>()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "events without the caller's address or user agent:\n  {}",
        failures.join("\n  ")
    );
}

async fn audit_events_never_contain_a_password_or_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let mut secrets: Vec<(String, String)> =
        vec![("admin's password".into(), admin.password.clone())];

    let out = app.cli(&["users", "create", "--email", "cli@example.com"]);
    assert_cli_ok(&out);
    let cli_password = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap()
        .trim()
        .to_owned();
    secrets.push(("a CLI-generated password".into(), cli_password));
    let chosen = "a passphrase from stdin";
    assert_cli_ok(&cli_with_stdin(
        &app,
        &[
            "users",
            "create",
            "--email",
            "stdin@example.com",
            "--password-stdin",
        ],
        chosen,
    ));
    secrets.push(("a password from stdin".into(), chosen.into()));

    let key = app.create_key_with(
        &[
            "audit:read",
            "users:manage",
            "api_keys:write",
            "api_keys:read",
            "invoices:read",
            "tokens:revoke",
        ],
        &["--owner", ADMIN],
    );
    secrets.push(("a CLI key's secret".into(), key.client_secret.clone()));
    let token = app.token_for(&key).await;
    secrets.push(("an access token".into(), token.clone()));

    let rest_user =
        create_user_via_token(&app, &token, json!({ "email": "rest@example.com" })).await;
    secrets.push((
        "a REST-generated password".into(),
        rest_user["password"].as_str().unwrap().to_owned(),
    ));
    create_user_via_token(
        &app,
        &token,
        json!({ "email": "given@example.com", "password": "a password given in JSON" }),
    )
    .await;
    secrets.push((
        "a password given in JSON".into(),
        "a password given in JSON".into(),
    ));

    let session = app.log_in(ADMIN, &admin.password).await;
    secrets.push(("a session cookie".into(), session.cookie.clone()));
    secrets.push(("a CSRF token".into(), session.csrf.clone()));
    let wrong_password = "the wrong password typed";
    login(&app, ADMIN, wrong_password).await.expect(401);
    secrets.push(("a wrong password".into(), wrong_password.into()));

    let created = Reply::send(
        app.with_token(Method::POST, "/v1/api-keys", &token)
            .json(&json!({ "name": "rest key", "scopes": ["invoices:read"] })),
    )
    .await
    .expect(201);
    let rest_key = TestKey {
        client_id: created["client_id"].as_str().unwrap().to_owned(),
        client_secret: created["client_secret"].as_str().unwrap().to_owned(),
    };
    secrets.push(("a REST key's secret".into(), rest_key.client_secret.clone()));
    let rotated = Reply::send(
        app.with_token(
            Method::POST,
            &format!("/v1/api-keys/{}/rotate", rest_key.client_id),
            &token,
        )
        .json(&json!({ "grace_period_seconds": 60 })),
    )
    .await
    .expect(200);
    secrets.push((
        "a rotated secret".into(),
        rotated["client_secret"].as_str().unwrap().to_owned(),
    ));
    // Another key's real secret presented for rest_key: a failure whose secret is valuable.
    let misused = TestKey {
        client_id: rest_key.client_id.clone(),
        client_secret: key.client_secret.clone(),
    };
    token_reply(&app, &misused).await.expect(401);
    let rest_token = app
        .token_for(&TestKey {
            client_id: rest_key.client_id.clone(),
            client_secret: rotated["client_secret"].as_str().unwrap().to_owned(),
        })
        .await;
    secrets.push(("a revoked access token".into(), rest_token.clone()));
    revoke(&app, ClientAuth::Basic(&key), &rest_token)
        .await
        .expect_status_only(200);
    introspect(&app, ClientAuth::Form(&key), &rest_token).await;

    let _ = eventually(2, || async {
        audit_events(&app, &token, &query(&[("action", "token.denied")])).await["count"] == 1
    })
    .await;
    let mut text = String::new();
    let mut offset = 0;
    loop {
        let reply = Reply::send(app.with_token(
            Method::GET,
            &format!("/v1/audit-events?limit=100&offset={offset}"),
            &token,
        ))
        .await;
        let page = reply.expect(200);
        let n = page["data"].as_array().unwrap().len();
        text.push_str(&reply.text);
        if n == 0 {
            break;
        }
        offset += n;
    }
    assert!(offset >= 10, "the trail has the events above: {offset}");
    let leaked: Vec<&str> = secrets
        .iter()
        .filter(|(_, secret)| text.contains(secret.as_str()))
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(leaked.is_empty(), "the audit trail holds: {leaked:?}");
}

/// The `actor` filter takes the label as recorded (`user:…`, `api_key:…`) or just the email or
/// client_id behind it.
async fn the_actor_filter_takes_a_bare_email_or_client_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.create_user(ADMIN, &["--admin"]);
    let key = app.create_key_with(&["audit:read", "users:manage"], &["--owner", ADMIN]);
    let token = app.token_for(&key).await;
    create_user_via_token(&app, &token, json!({ "email": "made-by-key@example.com" })).await;
    app.log_in(ADMIN, &admin.password).await;

    let actions_of = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let by_label = audit_events(
        &app,
        &token,
        &query(&[("actor", &format!("api_key:{}", key.client_id))]),
    )
    .await;
    let by_id = audit_events(&app, &token, &query(&[("actor", &key.client_id)])).await;
    assert_eq!(actions_of(&by_id), ["user.created"], "{by_id}");
    assert_eq!(by_id["data"], by_label["data"]);
    let by_email = audit_events(&app, &token, &query(&[("actor", ADMIN)])).await;
    assert_eq!(actions_of(&by_email), ["session.login"], "{by_email}");
    let prefixed = audit_events(&app, &token, &query(&[("actor", &format!("user:{ADMIN}"))])).await;
    assert_eq!(prefixed["data"], by_email["data"]);
}

backend_tests!(
    the_actor_filter_takes_a_bare_email_or_client_id,
    audit_events_filter_by_actor_action_and_target_newest_first,
    audit_events_filter_by_time_range,
    audit_events_are_paged_with_limit_and_offset,
    audit_events_refuse_bad_query_parameters_naming_them,
    an_audit_search_for_a_nul_byte_target_is_not_a_server_error,
    audit_events_need_audit_read,
    audit_events_of_another_organization_are_never_returned,
    audit_events_record_the_callers_address_and_user_agent,
    audit_events_never_contain_a_password_or_secret,
);
