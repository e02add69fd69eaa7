//! `GET /v1/revocation-stream`: Server-Sent Events of revoked keys and tokens, for the keygate
//! deployment's own resource servers (`revocations:read`), resumed from `Last-Event-ID`.

use std::time::Duration;

use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::Method;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, ClientAuth, Reply, TestApp, assert_no_store, claims_of, create_organization,
    revoke, spawn_app,
};

const STREAM: &str = "/v1/revocation-stream";

type Events =
    BoxStream<'static, Result<Event, eventsource_stream::EventStreamError<reqwest::Error>>>;

/// Opens the stream with `token`, resuming after `last_event_id` when given.
async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Events {
    let mut request = app.with_token(Method::GET, STREAM, token);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/event-stream"));
    assert_eq!(header("cache-control"), "no-store");
    response.bytes_stream().eventsource().boxed()
}

/// The events up to the next `sync` (which ends the list).
async fn until_sync(events: &mut Events) -> Vec<Event> {
    let mut received = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream stays open")
            .expect("a well-formed event");
        let sync = event.event == "sync";
        received.push(event);
        if sync {
            return received;
        }
    }
}

/// The events up to the `sync` after the first event named `name` (a `sync` may come first:
/// one per poll of the change feed, and one at each heartbeat).
async fn until_heard(events: &mut Events, name: &str) -> Vec<Event> {
    let mut received = Vec::new();
    while !received.iter().any(|e: &Event| e.event == name) {
        received.extend(until_sync(events).await);
    }
    received
}

fn data(event: &Event) -> Value {
    serde_json::from_str(&event.data).unwrap()
}

/// The `jti`s of the `token_revoked` events.
fn revoked_jtis(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.event == "token_revoked")
        .map(|e| data(e)["jti"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_follower_catches_up_then_hears_revocations_as_they_happen(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let follower = app.token_as(ADMIN, &["revocations:read"]).await;
    let key = app.create_key(&["invoices:read"]);
    let before = app.token_for(&key).await;
    revoke(&app, ClientAuth::Basic(&key), &before)
        .await
        .expect_status_only(200);

    // A new follower hears every revocation still in force, then a sync.
    let mut events = open(&app, &follower, None).await;
    let caught_up = until_sync(&mut events).await;
    let before_jti = claims_of(&before)["jti"].as_str().unwrap().to_owned();
    assert_eq!(revoked_jtis(&caught_up), std::slice::from_ref(&before_jti));
    let revoked = caught_up
        .iter()
        .find(|e| e.event == "token_revoked")
        .unwrap();
    assert!(
        data(revoked)["until"].as_i64() >= claims_of(&before)["exp"].as_i64(),
        "refused until the token expires: {}",
        revoked.data
    );
    let sync = caught_up.last().unwrap();
    let position: i64 = sync
        .id
        .parse()
        .expect("a sync carries the position reached");
    assert!(data(sync)["as_of"].as_i64().unwrap() > 0);

    // Then each revocation as it happens: a token, then the whole key.
    let after = app.token_for(&key).await;
    revoke(&app, ClientAuth::Basic(&key), &after)
        .await
        .expect_status_only(200);
    let heard = until_heard(&mut events, "token_revoked").await;
    let after_jti = claims_of(&after)["jti"].as_str().unwrap().to_owned();
    assert_eq!(revoked_jtis(&heard), std::slice::from_ref(&after_jti));
    let token_event = heard.iter().find(|e| e.event == "token_revoked").unwrap();
    assert!(
        token_event.id.parse::<i64>().unwrap() > position,
        "event ids grow"
    );

    assert!(
        app.cli(&["api-keys", "revoke", &key.client_id])
            .status
            .success()
    );
    let heard = until_heard(&mut events, "key_cut").await;
    let cut = heard
        .iter()
        .find(|e| e.event == "key_cut")
        .expect("the key's revocation is heard");
    assert_eq!(data(cut)["client_id"], key.client_id.as_str());
    assert!(
        data(cut)["issued_before"].as_i64().unwrap() > claims_of(&after)["iat"].as_i64().unwrap()
    );

    // A follower that lost its connection resumes after the last event it received: the
    // token revoked before it is not sent again, the later changes are.
    let mut resumed = open(&app, &follower, Some(&position.to_string())).await;
    let missed = until_heard(&mut resumed, "key_cut").await;
    assert_eq!(revoked_jtis(&missed), [after_jti]);
    assert!(missed.iter().any(|e| e.event == "key_cut"));
    // Resuming from the end hears nothing but the sync.
    let end = missed.last().unwrap().id.clone();
    let mut current = open(&app, &follower, Some(&end)).await;
    let nothing = until_sync(&mut current).await;
    assert_eq!(nothing.len(), 1, "{nothing:?}");
    assert_eq!(nothing[0].id, end);
}

async fn the_stream_is_for_the_deployments_own_keys_with_revocations_read(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let send = |token: &str, last_event_id: Option<&str>| {
        let mut request = app.with_token(Method::GET, STREAM, token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        Reply::send(request)
    };
    Reply::send(app.client.get(app.url(STREAM)))
        .await
        .expect_status_only(401);
    let reader = app.token_as(ADMIN, &["api_keys:read"]).await;
    let refused = send(&reader, None).await;
    refused.expect_error(403, "insufficient_scope");
    assert_no_store(&refused);

    // Another organization's keys cannot hold the permission at all.
    create_organization(&app, "acme");
    let out = app.cli(&[
        "api-keys",
        "create",
        "--name",
        "acme follower",
        "--scopes",
        "revocations:read",
        "--org",
        "acme",
        "--json",
    ]);
    assert!(
        !out.status.success(),
        "an organization's key got revocations:read"
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("revocations:read"), "{said}");

    // A position the stream never gave is refused, not guessed at.
    let follower = app.token_as(ADMIN, &["revocations:read"]).await;
    for bad in ["x", "-1", "1.5", "99999999999999999999"] {
        send(&follower, Some(bad))
            .await
            .expect_error(400, "invalid_request");
    }
    // A position past the feed's end (a database restored from a backup): everything in
    // force, as for a new follower.
    let mut events = open(&app, &follower, Some("999999999")).await;
    assert_eq!(until_sync(&mut events).await.last().unwrap().event, "sync");
}

backend_tests!(
    a_follower_catches_up_then_hears_revocations_as_they_happen,
    the_stream_is_for_the_deployments_own_keys_with_revocations_read,
);
