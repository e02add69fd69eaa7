//! `Application`: bind, prepare the database, wire the state, serve. `main` and the tests
//! start keygate the same way (tests bind port 0).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, DefaultHeaders, Logger};
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use chrono::Utc;

use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::domain::Environment;
use crate::feed::{ChangeFeed, Housekeeping};
use crate::last_used::LastUsed;
use crate::routes;
use crate::service::signing_keys::RotationSchedule;
use crate::service::webhook_delivery::DeliveryWorker;
use crate::service::webhooks::Outbox;
use crate::service::{Service, signing_keys};
use crate::state::AppState;
use crate::tokens::{MasterKey, ValidationParams};
use crate::usage::UsageCounters;

pub struct Application {
    port: u16,
    issuer: String,
    server: Server,
    behind: WriteBehind,
    pool: DbPool,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // At every start, first: which database an instance uses (never its password) must be
        // plain from its log, also when the start fails.
        log::info!("keygate keeps its data in {}", settings.database.url);
        // Before anything listens: without a master key there is nothing to serve.
        let master_key = Arc::new(signing_keys::master_key(&settings)?);
        let bind = &settings.server.bind;
        let listener = TcpListener::bind(bind).map_err(|e| match e.kind() {
            std::io::ErrorKind::AddrInUse => anyhow::anyhow!(
                "cannot listen on {bind}: another program already does. Choose another address \
                 with `keygate serve --bind 127.0.0.1:8081` or KEYGATE_SERVER__BIND"
            ),
            _ => anyhow::anyhow!("cannot listen on {bind}: {e}"),
        })?;
        let address = listener.local_addr()?;
        let issuer = settings.issuer_for(address);
        // A certificate that does not load stops the start, before any database work.
        let tls = match settings.server.serves_tls() {
            true => Some(crate::tls::ReloadingCertificate::open(&settings.server)?),
            false => None,
        };

        let prepared = {
            let settings = settings.clone();
            let master_key = master_key.clone();
            let issuer = issuer.clone();
            actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<_> {
                let pool = prepare_database(&settings, Some(&master_key))?;
                // keygate's own routes (/v1/me, the management API) serve both environments.
                let tokens = &settings.tokens;
                let params = ValidationParams {
                    issuer,
                    audience: tokens.audience.clone(),
                    test_audience: tokens.test_audience.clone(),
                    leeway_seconds: tokens.leeway_seconds,
                    environments: vec![Environment::Live, Environment::Test],
                    cache_capacity: settings.cache.validated_tokens,
                    // keygate's own routes take API keys through the application layer.
                    accept_api_keys: false,
                };
                let feed = ChangeFeed::bootstrap(pool.clone(), params, Some(master_key.clone()))?
                    .with_housekeeping(Housekeeping::from_settings(&settings));
                Ok((pool, feed))
            })
            .await??
        };
        let (pool, feed) = prepared;
        let validator = feed.validator();

        DeliveryWorker::new(pool.clone(), master_key.clone(), &settings.webhooks)?
            .spawn(Outbox::new(&settings.webhooks));
        let service = Service::new(
            settings.clone(),
            issuer.clone(),
            pool.clone(),
            validator.clone(),
            Some(master_key.clone()),
        );
        // Every instance checks; one rotates. The feed brings the new key to all of them.
        if let Some(schedule) = RotationSchedule::new(
            pool.clone(),
            master_key,
            &settings,
            service.scheduled_rotations.clone(),
        ) {
            schedule.spawn();
        }
        feed.announce_to(service.followers.announcer())
            .spawn(Duration::from_millis(settings.feed.poll_interval_ms));
        let behind = WriteBehind {
            last_used: service.last_used.clone(),
            usage: service.usage.clone(),
        };
        spawn_write_behind(
            pool.clone(),
            behind.clone(),
            settings.server.last_used_flush_ms,
        );
        let flush_pool = pool;
        let metrics = crate::metrics::Metrics::new(&service)?;
        let state = web::Data::new(AppState { service, metrics });
        spawn_stale_sweep(state.clone());
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = serve(listener, tls, state, web::Data::new(validator), &settings)?;
        log::info!("keygate listening on {scheme}://{address} (issuer {issuer})");
        Ok(Application {
            port: address.port(),
            issuer,
            server,
            behind,
            pool: flush_pool,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Serves until the server stops (SIGINT, SIGTERM), then writes the last-used times
    /// still in memory.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        let (pool, behind) = (self.pool, self.behind);
        let _ = actix_web::rt::task::spawn_blocking(move || behind.flush(&pool)).await;
        served
    }
}

/// The HTTP server: every route, the extractor configurations, the headers every answer
/// carries, and the access log.
fn serve(
    listener: TcpListener,
    tls: Option<Arc<crate::tls::ReloadingCertificate>>,
    state: web::Data<AppState>,
    validator: web::Data<crate::tokens::TokenValidator>,
    settings: &Settings,
) -> anyhow::Result<Server> {
    let max_body = settings.server.max_body_bytes;
    let workers = match settings.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let access_log = log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info);
    let server = HttpServer::new(move || {
        let (json, query, path) = routes::extractor_configs(max_body);
        App::new()
            .app_data(state.clone())
            .app_data(validator.clone())
            .app_data(json)
            .app_data(query)
            .app_data(path)
            .app_data(web::PayloadConfig::new(max_body))
            .wrap(actix_web::middleware::from_fn(crate::https::middleware))
            .wrap(state.metrics.requests.clone())
            .wrap(actix_web::middleware::from_fn(
                crate::request_id::middleware,
            ))
            .wrap(
                DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Referrer-Policy", "no-referrer")),
            )
            // The path only: a query string may carry what must never be logged, and so may
            // an invitation link's path (its token is masked). Off when the log level would
            // drop its lines anyway, as it renders some of every request up front.
            .wrap(Condition::new(
                access_log,
                Logger::new("%a \"%{method}xi %{path}xi\" %s %b %Dms request_id=%{x-request-id}o")
                    .custom_request_replace("method", |req| req.method().to_string())
                    .custom_request_replace("path", |req| {
                        crate::console::loggable_path(req.path()).into_owned()
                    }),
            ))
            .wrap(actix_web::middleware::from_fn(crate::panics::middleware))
            .configure(crate::console::configure)
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .workers(workers)
    // Blocking work waits for a pooled connection anyway (bcrypt has threads of its own); more
    // threads than that would only hold memory.
    .worker_max_blocking_threads(settings.database.pool_size as usize + 4)
    .shutdown_timeout(10);
    let server = match tls {
        Some(certificate) => {
            let config = certificate.server_config()?;
            certificate.spawn_watch();
            server.listen_rustls_0_23(listener, config)?
        }
        None => server.listen(listener)?,
    };
    Ok(server.run())
}

/// What is counted in memory and written behind: last-used times and usage counters.
#[derive(Clone)]
pub(crate) struct WriteBehind {
    pub(crate) last_used: Arc<LastUsed>,
    pub(crate) usage: Arc<UsageCounters>,
}

impl WriteBehind {
    fn flush(&self, pool: &DbPool) {
        if self.last_used.pending() == 0 && self.usage.pending() == 0 {
            return;
        }
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("could not write last-used times and usage (will retry): {e:#}");
                return;
            }
        };
        match self.last_used.flush(&mut conn) {
            Ok(n) => log::debug!("wrote last-used times of {n} key(s)"),
            Err(e) => log::warn!("could not write last-used times (will retry): {e:#}"),
        }
        match self.usage.flush(&mut conn) {
            Ok(n) => log::debug!("wrote {n} usage counter(s)"),
            Err(e) => log::warn!("could not write usage counters (will retry): {e:#}"),
        }
    }
}

/// Once a minute, verified secrets past their age are forgotten: the cache evicts only when
/// full, and would otherwise hold every client it has seen, up to its capacity.
fn spawn_stale_sweep(state: web::Data<AppState>) {
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(Duration::from_secs(60));
        loop {
            ticker.tick().await;
            state.service.verified.forget_stale(chrono::Utc::now());
        }
    });
}

pub(crate) fn spawn_write_behind(pool: DbPool, behind: WriteBehind, interval_ms: u64) {
    actix_web::rt::spawn(async move {
        // The first write is one period after the start, not at once: by the time this task
        // first runs, the server may already be answering, and a time noted then belongs to
        // the next write.
        let period = Duration::from_millis(interval_ms.max(10));
        let first = actix_web::rt::time::Instant::now() + period;
        let mut ticker = actix_web::rt::time::interval_at(first, period);
        loop {
            ticker.tick().await;
            let (pool, behind) = (pool.clone(), behind.clone());
            let _ = actix_web::rt::task::spawn_blocking(move || behind.flush(&pool)).await;
        }
    });
}

/// Opens the pool and, under the bootstrap lock, applies migrations and (given the master
/// key) makes sure signing keys exist. Blocking.
pub fn prepare_database(
    settings: &Settings,
    master_key: Option<&MasterKey>,
) -> anyhow::Result<DbPool> {
    prepare(settings, master_key, &mut |step| {
        log::info!(
            "applying migration {} of {}: {}",
            step.index + 1,
            step.total,
            step.name
        );
    })
    .map(|(pool, _)| pool)
}

/// [`prepare_database`], telling `before_each` which migration runs next; and how many it
/// applied.
pub fn prepare(
    settings: &Settings,
    master_key: Option<&MasterKey>,
    before_each: &mut dyn FnMut(db::MigrationStep<'_>),
) -> anyhow::Result<(DbPool, usize)> {
    let target = &settings.database.url;
    let pool = db::connect(&settings.database)?;
    let mut conn = pool
        .get()
        .with_context(|| format!("cannot connect to {target}"))?;
    let applied = db::with_bootstrap_lock(&mut conn, |conn| {
        let applied = db::run_migrations_telling(conn, before_each)?;
        if applied > 0 {
            log::info!("applied {applied} migration(s) to {target}");
        }
        if let Some(master_key) = master_key {
            signing_keys::ensure(conn, master_key, settings.tokens.algorithm, Utc::now())?;
        }
        Ok(applied)
    })?;
    drop(conn);
    Ok((pool, applied))
}
