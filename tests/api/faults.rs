//! Faults keygate survives, each against a real database: PostgreSQL going away and coming
//! back (through a TCP proxy the test controls), a process killed in the middle of writes, a
//! graceful stop with requests in flight, and a full disk under SQLite.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, RunQueryDsl};
use reqwest::Method;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    ADMIN, Backend, POSTGRES_URL_VAR, Reply, ServerProcess, TestApp, TestDatabase, eventually,
    spawn_app, spawn_app_on,
};

// ---------------------------------------------------------------------------------------------
// The database going away.
// ---------------------------------------------------------------------------------------------

/// What the proxy does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Carries them to PostgreSQL.
    Forward,
    /// Closes the ones it carries and every new one: a server that is down.
    Refuse,
    /// Closes the ones it carries, accepts new ones and never answers: a host that vanished
    /// from the network (packets dropped). Connections it held stay unanswered.
    Silent,
}

struct Proxied {
    mode: Mode,
    carried: Vec<TcpStream>,
    held: Vec<TcpStream>,
}

/// A TCP proxy in front of PostgreSQL, on a loopback port of its own.
struct DbProxy {
    port: u16,
    state: Arc<Mutex<Proxied>>,
}

impl DbProxy {
    fn start(upstream: String) -> DbProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(Proxied {
            mode: Mode::Forward,
            carried: Vec::new(),
            held: Vec::new(),
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let mut state = shared.lock().unwrap();
                match state.mode {
                    Mode::Refuse => drop(client),
                    Mode::Silent => state.held.push(client),
                    Mode::Forward => {
                        let Ok(server) = TcpStream::connect(&upstream) else {
                            continue;
                        };
                        state.carried.push(client.try_clone().unwrap());
                        state.carried.push(server.try_clone().unwrap());
                        pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                        pipe(server, client);
                    }
                }
            }
        });
        DbProxy { port, state }
    }

    fn set(&self, mode: Mode) {
        let mut state = self.state.lock().unwrap();
        state.mode = mode;
        if mode != Mode::Forward {
            for stream in state.carried.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Copies one direction of a connection until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

/// `host:port` of the PostgreSQL server the tests use.
fn postgres_authority() -> String {
    let url = std::env::var(POSTGRES_URL_VAR).expect("checked by Backend::postgres");
    let parsed = reqwest::Url::parse(&url).expect("a PostgreSQL URL");
    format!(
        "{}:{}",
        parsed.host_str().expect("a host"),
        parsed.port().unwrap_or(5432)
    )
}

/// `POST /v1/api-keys` as `token`.
fn create_request(app: &TestApp, base: &str, token: &str) -> reqwest::RequestBuilder {
    app.client
        .request(Method::POST, format!("{base}/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": "victim", "scopes": ["invoices:read"] }))
}

/// A cold token request: its secret was never verified on this instance.
fn token_request(app: &TestApp, client_id: &str, secret: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/v1/token"))
        .json(&json!({ "client_id": client_id, "client_secret": secret }))
}

/// With PostgreSQL down or silent: tokens issued keep validating, clients verified recently
/// keep getting tokens, what needs the database answers 503 with Retry-After within the
/// connect timeout, and everything recovers unaided when the database is back. FAULT-DB-01.
#[actix_web::test]
#[cfg_attr(
    not(keygate_postgres_tests),
    ignore = "set KEYGATE_TEST_POSTGRES_URL to run the PostgreSQL variant"
)]
async fn the_database_going_away_and_coming_back() {
    const CONNECT_TIMEOUT: u64 = 2;
    let db = Arc::new(TestDatabase::create(Backend::postgres()));
    let direct = postgres_authority();
    let proxy = DbProxy::start(direct.clone());
    assert!(db.url().contains(&direct), "{}", db.url());
    let proxied = db
        .url()
        .replacen(&direct, &format!("127.0.0.1:{}", proxy.port), 1);
    let app = spawn_app_on(db, |s| {
        s.database.url = proxied.parse().unwrap();
        s.database.connect_timeout_seconds = CONNECT_TIMEOUT;
    })
    .await;
    app.create_user(ADMIN, &["--admin"]);
    let manager = app
        .token_as(ADMIN, &["api_keys:write", "invoices:read"])
        .await;
    let warm = app.create_key(&["invoices:read"]);
    app.token_for(&warm).await;

    for outage in [Mode::Refuse, Mode::Silent] {
        // The CLI reaches the database directly.
        let cold = app.create_key(&["invoices:read"]);
        proxy.set(outage);

        let validated = app.get_with_token("/v1/me/permissions", &manager).await;
        assert_eq!(
            validated.status(),
            200,
            "{outage:?}: validation needs no database"
        );
        app.token_for(&warm).await;

        let needs_the_database = [
            token_request(&app, &cold.client_id, &cold.client_secret),
            create_request(&app, &app.address, &manager),
            app.client.get(app.url("/readyz")),
        ];
        for request in needs_the_database {
            let started = Instant::now();
            let answer = Reply::send(request).await;
            let took = started.elapsed();
            assert_eq!(answer.status, 503, "{outage:?}: {}", answer.text);
            assert!(answer.header("retry-after").is_some(), "{outage:?}");
            assert!(
                took < Duration::from_secs(CONNECT_TIMEOUT + 3),
                "{outage:?}: answered after {took:?}"
            );
        }

        proxy.set(Mode::Forward);
        let recovered = eventually(30, || async {
            let answer = token_request(&app, &cold.client_id, &cold.client_secret)
                .send()
                .await
                .unwrap();
            answer.status() == 200
        })
        .await;
        assert!(recovered, "{outage:?}: token requests recover unaided");
        let created = Reply::send(create_request(&app, &app.address, &manager)).await;
        assert_eq!(created.status, 201, "{outage:?}: {}", created.text);
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{outage:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// A process killed mid-write; a graceful stop.
// ---------------------------------------------------------------------------------------------

/// What the server confirmed to its clients.
#[derive(Default)]
struct Told {
    created: BTreeSet<String>,
    rotations: BTreeMap<String, i64>,
    revoked: BTreeSet<String>,
}

/// Creates, rotates and revokes keys on `base` until the server stops answering, recording
/// what it confirmed. Any answer other than success is a failure.
async fn write_until_killed(app: &TestApp, base: &str, token: &str, told: &Mutex<Told>) {
    loop {
        let Ok(created) = create_request(app, base, token).send().await else {
            return;
        };
        let status = created.status().as_u16();
        let Ok(body) = created.json::<Value>().await else {
            return;
        };
        assert_eq!(status, 201, "{body}");
        let client_id = body["client_id"].as_str().unwrap().to_owned();
        told.lock().unwrap().created.insert(client_id.clone());
        for action in ["rotate", "revoke"] {
            let path = format!("{base}/v1/api-keys/{client_id}/{action}");
            let sent = app
                .client
                .post(path)
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await;
            let Ok(answer) = sent else { return };
            let status = answer.status().as_u16();
            let Ok(text) = answer.text().await else {
                return;
            };
            assert_eq!(status, 200, "{action}: {text}");
            let mut told = told.lock().unwrap();
            match action {
                "rotate" => *told.rotations.entry(client_id.clone()).or_default() += 1,
                _ => drop(told.revoked.insert(client_id.clone())),
            }
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Named {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Keys of `sql` (a query selecting `name`) in the app's database.
fn names(app: &TestApp, sql: &str) -> Vec<String> {
    let pool = keygate::db::connect(&app.settings.database).unwrap();
    let mut conn = pool.get().unwrap();
    diesel::sql_query(sql)
        .load::<Named>(&mut *conn)
        .unwrap()
        .into_iter()
        .map(|row| row.name)
        .collect()
}

fn count(app: &TestApp, sql: &str) -> i64 {
    let pool = keygate::db::connect(&app.settings.database).unwrap();
    let mut conn = pool.get().unwrap();
    diesel::sql_query(sql)
        .get_result::<Count>(&mut *conn)
        .unwrap()
        .n
}

/// Keys whose rows disagree with their audit trail: each key made once with its first
/// secret, one more secret per rotation, each revoked key's revocation recorded.
const INCONSISTENT_KEYS: &str = "SELECT k.client_id AS name FROM api_keys k WHERE \
    (SELECT COUNT(*) FROM audit_events a WHERE a.action = 'api_key.created' AND a.target = k.client_id) <> 1 \
    OR (SELECT COUNT(*) FROM api_key_secrets s WHERE s.api_key_id = k.id) <> 1 + \
       (SELECT COUNT(*) FROM audit_events a WHERE a.action = 'api_key.rotated' AND a.target = k.client_id) \
    OR (k.status = 'revoked' AND NOT EXISTS \
       (SELECT 1 FROM audit_events a WHERE a.action = 'api_key.revoked' AND a.target = k.client_id))";

/// SIGKILL in the middle of creates, rotations and revocations, four times: every key a
/// client was told of exists in the state it was told, and the rows agree with the audit
/// trail (a write and its audit event commit together or not at all). FAULT-KILL-01.
async fn a_process_killed_mid_write_leaves_the_database_consistent(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(ADMIN, &["--admin"]);
    let manager = app.create_key_with(&["api_keys:write", "invoices:read"], &["--owner", ADMIN]);
    let dir = tempfile::tempdir().unwrap();
    let told = Mutex::new(Told::default());
    for round in 0..4u64 {
        let server = ServerProcess::start(&mut app.serve_command(dir.path()));
        let base = server.address.clone();
        // A token of this process's issuer.
        let issued: Value = Reply::send(app.client.post(server.url("/v1/token")).json(
            &json!({ "client_id": manager.client_id, "client_secret": manager.client_secret }),
        ))
        .await
        .expect(200);
        let token = issued["access_token"].as_str().unwrap().to_owned();
        let writers = futures_util::future::join_all(
            (0..4).map(|_| write_until_killed(&app, &base, &token, &told)),
        );
        let killer = async {
            actix_web::rt::time::sleep(Duration::from_millis(400 + 150 * round)).await;
            server.kill()
        };
        let (_, log) = futures_util::future::join(writers, killer).await;
        assert!(!log.contains("panicked"), "{log}");

        let inconsistent = names(&app, INCONSISTENT_KEYS);
        assert!(inconsistent.is_empty(), "round {round}: {inconsistent:?}");
        let told = told.lock().unwrap();
        let stored: BTreeSet<String> = names(&app, "SELECT client_id AS name FROM api_keys")
            .into_iter()
            .collect();
        let lost: Vec<_> = told.created.difference(&stored).collect();
        assert!(
            lost.is_empty(),
            "round {round}: created, then lost: {lost:?}"
        );
        let revoked: BTreeSet<String> = names(
            &app,
            "SELECT client_id AS name FROM api_keys WHERE status = 'revoked'",
        )
        .into_iter()
        .collect();
        let unrevoked: Vec<_> = told.revoked.difference(&revoked).collect();
        assert!(unrevoked.is_empty(), "round {round}: {unrevoked:?}");
        for (client_id, rotations) in &told.rotations {
            let recorded = count(
                &app,
                &format!(
                    "SELECT COUNT(*) AS n FROM audit_events \
                     WHERE action = 'api_key.rotated' AND target = '{client_id}'"
                ),
            );
            assert!(recorded >= *rotations, "round {round}: {client_id}");
        }
    }
    let told = told.into_inner().unwrap();
    assert!(
        told.created.len() >= 8 && !told.revoked.is_empty(),
        "the writers wrote: {} created, {} revoked",
        told.created.len(),
        told.revoked.len()
    );
}

/// SIGTERM with token requests in flight (queued behind one hashing thread): every one is
/// answered, the process exits cleanly, and the last-used times still in memory are
/// written. FAULT-TERM-01.
async fn a_graceful_stop_answers_the_requests_in_flight(backend: Backend) {
    let app = spawn_app(backend).await;
    let keys: Vec<_> = (0..6)
        .map(|_| app.create_key_at_cost(&["invoices:read"], 10))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        app.serve_command(dir.path())
            .env("KEYGATE_SECRETS__HASHING_THREADS", "1")
            // Only the stop writes last-used times.
            .env("KEYGATE_SERVER__LAST_USED_FLUSH_MS", "600000"),
    );
    let base = server.address.clone();
    let requests = futures_util::future::join_all(keys.iter().map(|key| {
        app.client
            .post(format!("{base}/v1/token"))
            .json(&json!({ "client_id": key.client_id, "client_secret": key.client_secret }))
            .send()
    }));
    let stop = async {
        actix_web::rt::time::sleep(Duration::from_millis(150)).await;
        server.signal("TERM");
    };
    let (answers, ()) = futures_util::future::join(requests, stop).await;
    for answer in answers {
        let answer = answer.expect("a request in flight is answered");
        assert_eq!(answer.status(), 200);
    }
    let status = server.wait();
    assert!(status.success(), "{status:?}: {}", server.log());
    assert!(
        app.client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "the stopped server accepts nothing"
    );
    let used = count(
        &app,
        "SELECT COUNT(*) AS n FROM api_keys WHERE last_used_at IS NOT NULL",
    );
    assert_eq!(used, keys.len() as i64, "{}", server.log());
}

backend_tests!(
    a_process_killed_mid_write_leaves_the_database_consistent,
    a_graceful_stop_answers_the_requests_in_flight,
);

// ---------------------------------------------------------------------------------------------
// A full disk.
// ---------------------------------------------------------------------------------------------

/// A small tmpfs, mounted for the test and unmounted after it.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None when this process may not mount (it needs root).
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .ok()?;
        mounted.status.success().then_some(SmallDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills `dir`'s disk to the last byte with one file.
fn fill(file: &std::path::Path) {
    use std::io::Write;
    let mut filler = std::fs::File::create(file).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while filler.write_all(&chunk).is_ok() {}
    for size in [1024, 64, 1] {
        while filler.write_all(&chunk[..size]).is_ok() {}
    }
    let _ = filler.sync_all();
}

/// SQLite on a full disk: writes answer 503 with Retry-After (never 500, never a corrupt
/// file), writes succeed again once space is freed, and nothing written before is lost.
/// FAULT-DISK-01.
#[actix_web::test]
async fn a_full_disk_gives_clean_errors_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("skipped: mounting a small tmpfs for the full disk needs root");
        return;
    };
    let dir = tempfile::tempdir_in(disk.path()).unwrap();
    let url = dir.path().join("keygate.db").to_string_lossy().into_owned();
    let app = spawn_app_on(Arc::new(TestDatabase::Sqlite { _dir: dir, url }), |_| {}).await;
    app.create_user(ADMIN, &["--admin"]);
    let token = app
        .token_as(ADMIN, &["api_keys:write", "invoices:read"])
        .await;
    let mut told = Vec::new();
    let mut create = async || {
        let answer = Reply::send(create_request(&app, &app.address, &token)).await;
        match answer.status {
            201 => told.push(answer.body["client_id"].as_str().unwrap().to_owned()),
            503 => assert!(answer.header("retry-after").is_some(), "{}", answer.text),
            _ => panic!(
                "a write on a full disk answered {}: {}",
                answer.status, answer.text
            ),
        }
        answer.status
    };
    for _ in 0..5 {
        assert_eq!(create().await, 201);
    }

    let filler = disk.path().join("filler");
    fill(&filler);
    let mut refused = 0;
    for _ in 0..40 {
        if create().await == 503 {
            refused += 1;
        }
    }
    assert!(refused > 0, "the full disk refused no write");

    std::fs::remove_file(&filler).unwrap();
    let mut recovered = false;
    for _ in 0..100 {
        if create().await == 201 {
            recovered = true;
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "writes succeed once space is freed");

    let stored: BTreeSet<String> = names(&app, "SELECT client_id AS name FROM api_keys")
        .into_iter()
        .collect();
    let lost: Vec<_> = told.iter().filter(|c| !stored.contains(*c)).collect();
    assert!(lost.is_empty(), "created, then lost: {lost:?}");
    let check = names(
        &app,
        "SELECT integrity_check AS name FROM pragma_integrity_check",
    );
    assert_eq!(check, ["ok"]);
}
