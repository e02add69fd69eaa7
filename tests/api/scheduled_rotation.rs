//! `signing.rotate_every_days`: keygate rotates its signing key by itself once the active key
//! has signed a whole period, through the same rotation as `signing-keys rotate` (the published
//! next key signs, a new one is published, the old one verifies out its window), once however
//! many instances share the database, and never when the period is 0.
//!
//! The tests make the keys old rather than wait: they set `activated_at` and `created_at` back
//! thirty-one days, and the test profile checks every 100 ms.

use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use jsonwebtoken::decode_header;
use keygate::db::schema::audit_events::dsl as ae;
use keygate::domain::SigningAlgorithm;
use keygate::service::signing_keys::rotate_if_due;
use keygate::tokens::MasterKey;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{
    Backend, TestApp, assert_cli_ok, eventually, spawn_app, spawn_app_with, stdout,
};

/// Thirty-one days ago, as the database stores times (UTC).
fn month_ago() -> String {
    (chrono::Utc::now() - chrono::Duration::days(31))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Makes the keys as old as if the last rotation had been a month ago: the active key signed
/// since, and the next key was published then.
fn age_keys(app: &TestApp) {
    let then = month_ago();
    app.run_sql(&format!(
        "UPDATE signing_keys SET created_at = '{then}';
         UPDATE signing_keys SET activated_at = '{then}' WHERE status = 'active';"
    ));
}

/// `signing-keys list --json`.
fn listed(app: &TestApp) -> Vec<Value> {
    let out = app.cli(&["signing-keys", "list", "--json"]);
    assert_cli_ok(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The kids of the listed keys in `status`.
fn kids_with(keys: &[Value], status: &str) -> Vec<String> {
    keys.iter()
        .filter(|k| k["status"] == status)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// The `signing_keys.rotated` audit events: (actor, target, details). They belong to no
/// organization, so no organization's audit trail lists them: read from the table.
fn rotation_events(app: &TestApp) -> Vec<(String, Option<String>, Value)> {
    let pool = keygate::db::connect(&app.settings.database).unwrap();
    let mut conn = pool.get().unwrap();
    let rows: Vec<(String, Option<String>, String)> = ae::audit_events
        .filter(ae::action.eq("signing_keys.rotated"))
        .order(ae::id.asc())
        .select((ae::actor, ae::target, ae::details))
        .load(&mut conn)
        .unwrap();
    rows.into_iter()
        .map(|(actor, target, details)| (actor, target, serde_json::from_str(&details).unwrap()))
        .collect()
}

fn kid_of(token: &str) -> String {
    decode_header(token).unwrap().kid.unwrap()
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks = app.get_json("/.well-known/jwks.json").await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// A key that signed for longer than the period is rotated without anyone asking: the key
/// published ahead signs, the old one's tokens still verify, a new next key is published, and
/// the audit trail says the schedule did it.
async fn a_key_older_than_the_period_is_rotated_by_itself(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.settings.signing.rotate_every_days, 30, "the default");
    let key = app.create_key(&["invoices:read"]);
    let old_token = app.token_for(&key).await;
    let old_kid = kid_of(&old_token);
    let keys = listed(&app);
    let next_kid = kids_with(&keys, "next")[0].clone();
    assert_eq!(kids_with(&keys, "active"), std::slice::from_ref(&old_kid));
    assert!(
        rotation_events(&app).is_empty(),
        "a fresh key is not rotated"
    );

    age_keys(&app);
    let rotated = eventually(5, || async {
        kid_of(&app.token_for(&key).await) == next_kid
    })
    .await;
    assert!(
        rotated,
        "new tokens are signed by the key that was published next"
    );

    let keys = listed(&app);
    assert_eq!(kids_with(&keys, "active"), std::slice::from_ref(&next_kid));
    assert_eq!(kids_with(&keys, "retired"), std::slice::from_ref(&old_kid));
    let new_next = kids_with(&keys, "next");
    assert_eq!(new_next.len(), 1, "a new next key is published: {keys:?}");
    assert!(new_next[0] != old_kid && new_next[0] != next_kid);
    let active = keys.iter().find(|k| k["kid"] == next_kid.as_str()).unwrap();
    let activated_at: chrono::DateTime<chrono::Utc> =
        active["activated_at"].as_str().unwrap().parse().unwrap();
    assert!(
        chrono::Utc::now() - activated_at < chrono::Duration::minutes(1),
        "the period starts again from the rotation: {active}"
    );

    let published = jwks_kids(&app).await;
    for kid in [&old_kid, &next_kid, &new_next[0]] {
        assert!(
            published.contains(kid),
            "{kid} is in the JWKS: {published:?}"
        );
    }
    assert_eq!(
        app.get_with_token("/v1/me", &old_token).await.status(),
        200,
        "a token signed before the rotation still verifies"
    );

    let events = rotation_events(&app);
    assert_eq!(events.len(), 1, "{events:?}");
    let (actor, target, details) = &events[0];
    assert_eq!(actor, "schedule");
    assert_eq!(target.as_deref(), Some(next_kid.as_str()));
    assert_eq!(details["retired"], serde_json::json!([old_kid]));
    assert_eq!(details["rotate_every_days"], 30);
}

/// Two instances on one database both see the old key; one rotates, the other then sees the
/// fresh key and leaves it.
async fn two_instances_rotate_once_not_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let sibling = app.spawn_sibling().await;
    let key = app.create_key(&["invoices:read"]);
    let before = listed(&app);
    let next_kid = kids_with(&before, "next")[0].clone();

    age_keys(&app);
    let rotated = eventually(5, || async {
        kid_of(&sibling.token_for(&key).await) == next_kid
            && kid_of(&app.token_for(&key).await) == next_kid
    })
    .await;
    assert!(rotated, "both instances sign with the new key");
    // Several more checks of both instances: none rotates again.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(600)).await;

    let keys = listed(&app);
    assert_eq!(keys.len(), 3, "retired, active, next: {keys:?}");
    assert_eq!(kids_with(&keys, "active"), std::slice::from_ref(&next_kid));
    assert_eq!(kids_with(&keys, "retired").len(), 1, "{keys:?}");
    let events = rotation_events(&app);
    assert_eq!(events.len(), 1, "one rotation: {events:?}");
    assert_eq!(events[0].0, "schedule");
}

/// Several checks that all find the rotation due at once (the cheap read passes for each)
/// make one rotation: whoever takes the lock second finds the fresh key.
async fn checks_racing_for_a_due_rotation_rotate_once(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.signing.rotate_every_days = 0).await;
    age_keys(&app);
    let racers = 4;
    let barrier = Arc::new(Barrier::new(racers));
    let threads: Vec<_> = (0..racers)
        .map(|_| {
            let (settings, barrier) = (app.settings.database.clone(), barrier.clone());
            let master = MasterKey::parse(&app.master_key).unwrap();
            std::thread::spawn(move || {
                let pool = keygate::db::connect(&settings).unwrap();
                let mut conn = pool.get().unwrap();
                barrier.wait();
                let overlap = chrono::Duration::seconds(960);
                rotate_if_due(&mut conn, &master, SigningAlgorithm::ES256, overlap, 30)
                    .unwrap()
                    .map(|rotation| rotation.activated)
            })
        })
        .collect();
    let rotations: Vec<String> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        rotations.len(),
        1,
        "one of {racers} checks rotates: {rotations:?}"
    );
    let keys = listed(&app);
    assert_eq!(kids_with(&keys, "active"), rotations);
    assert_eq!(rotation_events(&app).len(), 1);
}

/// `rotate_every_days = 0`: an old key stays active through many checks.
async fn a_period_of_zero_never_rotates(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.signing.rotate_every_days = 0).await;
    let key = app.create_key(&["invoices:read"]);
    let active = kid_of(&app.token_for(&key).await);
    age_keys(&app);
    // Six check intervals of the test profile.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(kid_of(&app.token_for(&key).await), active);
    assert_eq!(kids_with(&listed(&app), "active"), [active]);
    assert!(rotation_events(&app).is_empty());
}

/// A next key published less than a period ago (as after a change of algorithm, which
/// publishes one at start) does not sign yet, however old the active key.
async fn a_next_key_waits_a_whole_period_in_the_jwks(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read"]);
    let active = kid_of(&app.token_for(&key).await);
    let then = month_ago();
    app.run_sql(&format!(
        "UPDATE signing_keys SET created_at = '{then}', activated_at = '{then}'
         WHERE status = 'active';"
    ));
    actix_web::rt::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(kid_of(&app.token_for(&key).await), active);
    assert!(rotation_events(&app).is_empty());

    // Once it has been published a period, it signs.
    app.run_sql(&format!(
        "UPDATE signing_keys SET created_at = '{then}' WHERE status = 'next';"
    ));
    let rotated = eventually(5, || async { kid_of(&app.token_for(&key).await) != active }).await;
    assert!(rotated);
}

backend_tests!(
    a_key_older_than_the_period_is_rotated_by_itself,
    two_instances_rotate_once_not_twice,
    checks_racing_for_a_due_rotation_rotate_once,
    a_period_of_zero_never_rotates,
    a_next_key_waits_a_whole_period_in_the_jwks,
);
