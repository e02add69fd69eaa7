//! What keygate measures, in the Prometheus text format at `GET /metrics`: token requests by
//! outcome, validations by outcome, request latency per route (actix-web-prom), the caches'
//! hits and misses, and, read at each scrape, the hashing queue, the database pool, the
//! change feed's lag, the webhook backlog, the revocation stream's followers and the
//! scheduled rotations. Each server has its own registry, so two in one process (the tests)
//! count apart.

use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};
use prometheus::{Encoder, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use crate::db;
use crate::error::ApiError;
use crate::service::Service;

/// Latency buckets of the request histograms, in seconds: from a validation served from
/// memory (well under a millisecond) to a cold bcrypt behind a queue.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub struct Metrics {
    registry: Registry,
    /// The request metrics middleware (`keygate_http_requests_total`,
    /// `keygate_http_requests_duration_seconds{endpoint, method, status}`).
    pub requests: PrometheusMetrics,
    tokens_issued: IntCounter,
    tokens_refused: IntCounterVec,
    gauges: Gauges,
}

/// Values read at each scrape.
struct Gauges {
    hashing_waiting: IntGauge,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    feed_lag: IntGauge,
    webhook_backlog: IntGauge,
    stream_followers: IntGauge,
    scheduled_rotations: IntGauge,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> anyhow::Result<IntGauge> {
    let gauge = IntGauge::new(name, help)?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

impl Metrics {
    pub fn new(service: &Service) -> anyhow::Result<Metrics> {
        let registry = Registry::new();
        let requests = PrometheusMetricsBuilder::new("keygate")
            .registry(registry.clone())
            .buckets(LATENCY_BUCKETS)
            // Paths that match no route would each be a series of their own.
            .mask_unmatched_patterns("UNKNOWN")
            .build()
            .map_err(|e| anyhow::anyhow!("request metrics: {e}"))?;
        let tokens_issued = IntCounter::new(
            "keygate_tokens_issued_total",
            "Access tokens issued at /v1/token",
        )?;
        let tokens_refused = IntCounterVec::new(
            Opts::new(
                "keygate_tokens_refused_total",
                "Token requests refused, by error code",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(tokens_issued.clone()))?;
        registry.register(Box::new(tokens_refused.clone()))?;
        let validation = service.validator.metrics();
        registry.register(Box::new(validation.outcomes.clone()))?;
        registry.register(Box::new(validation.seen_cache.clone()))?;
        registry.register(Box::new(service.verified.lookups.clone()))?;
        registry.register(Box::new(service.hasher.secret_checks.clone()))?;
        let gauges = Gauges {
            hashing_waiting: gauge(
                &registry,
                "keygate_hashing_queue_depth",
                "Token requests waiting for a bcrypt thread",
            )?,
            pool_connections: gauge(
                &registry,
                "keygate_db_pool_connections",
                "Database connections open",
            )?,
            pool_idle: gauge(
                &registry,
                "keygate_db_pool_idle_connections",
                "Database connections open and idle",
            )?,
            pool_max: gauge(
                &registry,
                "keygate_db_pool_max_connections",
                "The database pool's size (database.pool_size)",
            )?,
            feed_lag: gauge(
                &registry,
                "keygate_change_feed_lag_seconds",
                "Seconds since the change feed was last read to its end",
            )?,
            webhook_backlog: gauge(
                &registry,
                "keygate_webhook_backlog",
                "Webhook deliveries not made yet",
            )?,
            stream_followers: gauge(
                &registry,
                "keygate_revocation_stream_followers",
                "Resource servers following the revocation stream on this instance",
            )?,
            scheduled_rotations: gauge(
                &registry,
                "keygate_scheduled_signing_key_rotations",
                "Signing-key rotations this instance made on schedule since it started",
            )?,
        };
        Ok(Metrics {
            registry,
            requests,
            tokens_issued,
            tokens_refused,
            gauges,
        })
    }

    /// Counts a token request's answer.
    pub fn count_token_answer<T>(&self, answer: &Result<T, ApiError>) {
        match answer {
            Ok(_) => self.tokens_issued.inc(),
            Err(error) => self.tokens_refused.with_label_values(&[error.code()]).inc(),
        }
    }

    /// Every metric, as of now, in the text format.
    pub async fn render(&self, service: &Service) -> Result<String, ApiError> {
        let backlog = db::run(&service.pool, |conn| {
            db::webhooks::backlog(conn).map_err(crate::service::Error::from)
        })
        .await?;
        let gauges = &self.gauges;
        let pool = service.pool.state();
        gauges.hashing_waiting.set(service.hasher.waiting() as i64);
        gauges.pool_connections.set(i64::from(pool.connections));
        gauges.pool_idle.set(i64::from(pool.idle_connections));
        gauges.pool_max.set(i64::from(service.pool.max_size()));
        gauges.feed_lag.set(service.validator.seconds_since_sync());
        gauges.webhook_backlog.set(backlog);
        gauges
            .stream_followers
            .set(service.followers.count() as i64);
        gauges
            .scheduled_rotations
            .set(service.scheduled_rotations.get() as i64);
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding the metrics: {e}")))?;
        Ok(String::from_utf8(text).expect("the text format is UTF-8"))
    }
}
