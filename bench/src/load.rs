//! A closed-loop HTTP/1.1 load generator on hyper 1, in the manner of wrk: C keep-alive
//! connections, each sending its next request when the previous answer has arrived.
//! Latencies go to an HDR histogram in microseconds; answers that are not 2xx, and
//! connections that fail, are counted as errors and kept out of requests/s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout, timeout_at};

/// Builds the next request; called once per request, from any connection.
pub type MakeRequest = Arc<dyn Fn() -> Request<Full<Bytes>> + Send + Sync>;

/// Longest latency the histograms hold (60 s); longer ones are clamped.
const MAX_LATENCY_US: u64 = 60_000_000;
/// How long answers still in flight when a phase ends are awaited (not counted), so the
/// next phase does not start with the server still busy with this one's queue.
const DRAIN: Duration = Duration::from_secs(10);

/// A request template: method, path, headers and body, cloned for every request.
#[derive(Clone)]
pub struct Template {
    pub method: Method,
    pub path: String,
    pub host: HeaderValue,
    pub content_type: Option<&'static str>,
    pub authorization: Option<HeaderValue>,
    pub cookie: Option<HeaderValue>,
    pub body: Bytes,
}

impl Template {
    pub fn get(addr: SocketAddr, path: &str) -> Template {
        Template {
            method: Method::GET,
            path: path.to_owned(),
            host: HeaderValue::from_str(&addr.to_string()).expect("an address is a valid header"),
            content_type: None,
            authorization: None,
            cookie: None,
            body: Bytes::new(),
        }
    }

    pub fn post(addr: SocketAddr, path: &str, content_type: &'static str, body: Bytes) -> Template {
        Template {
            method: Method::POST,
            content_type: Some(content_type),
            body,
            ..Template::get(addr, path)
        }
    }

    pub fn patch(
        addr: SocketAddr,
        path: &str,
        content_type: &'static str,
        body: Bytes,
    ) -> Template {
        Template {
            method: Method::PATCH,
            ..Template::post(addr, path, content_type, body)
        }
    }

    pub fn bearer(mut self, token: &str) -> Template {
        self.authorization =
            Some(HeaderValue::from_str(&format!("Bearer {token}")).expect("a JWT is header-safe"));
        self
    }

    /// Sends `cookie` (a console session's `name=value`).
    pub fn cookie(mut self, cookie: &str) -> Template {
        self.cookie = Some(HeaderValue::from_str(cookie).expect("a cookie is header-safe"));
        self
    }

    pub fn authorization(mut self, value: &str) -> Template {
        self.authorization = Some(HeaderValue::from_str(value).expect("header-safe"));
        self
    }

    pub fn with_body(&self, body: Bytes) -> Template {
        Template {
            body,
            ..self.clone()
        }
    }

    pub fn request(&self) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(HOST, self.host.clone());
        if let Some(content_type) = self.content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        if let Some(cookie) = &self.cookie {
            builder = builder.header(COOKIE, cookie.clone());
        }
        builder
            .body(Full::new(self.body.clone()))
            .expect("a template makes a valid request")
    }

    /// The same request, every time.
    pub fn repeat(self) -> MakeRequest {
        Arc::new(move || self.request())
    }
}

/// One load phase: how hard and how long.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one phase measured.
pub struct Measured {
    /// 2xx answers completed inside the measured window.
    pub ok: u64,
    /// Non-2xx answers and failed connections or requests inside the window.
    pub errors: u64,
    pub seconds: f64,
    /// Latency of every answer in the window (2xx or not), microseconds.
    pub latency: Histogram<u64>,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
}

impl Measured {
    pub fn requests_per_second(&self) -> f64 {
        self.ok as f64 / self.seconds
    }

    /// A latency quantile in milliseconds (0 when nothing was answered).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            self.latency.value_at_quantile(q) as f64 / 1000.0
        }
    }
}

struct ConnectionStats {
    ok: u64,
    errors: u64,
    latency: Histogram<u64>,
    first_error: Option<String>,
}

impl ConnectionStats {
    fn error(&mut self, counted: bool, what: String) {
        if counted {
            self.errors += 1;
            if self.first_error.is_none() {
                self.first_error = Some(what);
            }
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Runs `phase` against `addr`: a warm-up, then the measured window. Bounded in time: no
/// request starts after the window, and answers still awaited are dropped after [`DRAIN`].
pub async fn run(addr: SocketAddr, make: MakeRequest, phase: Phase) -> Measured {
    let start = Instant::now();
    let measure_from = start + phase.warmup;
    let measure_until = measure_from + phase.duration;
    let tasks: Vec<_> = (0..phase.connections)
        .map(|_| {
            let make = make.clone();
            tokio::spawn(connection(addr, make, measure_from, measure_until))
        })
        .collect();
    let mut total = ConnectionStats {
        ok: 0,
        errors: 0,
        latency: histogram(),
        first_error: None,
    };
    for task in tasks {
        // A connection task never outlives measure_until + DRAIN; the extra second is slack.
        let joined = timeout_at(measure_until + DRAIN + Duration::from_secs(1), task).await;
        match joined {
            Ok(Ok(stats)) => {
                total.ok += stats.ok;
                total.errors += stats.errors;
                total.latency.add(&stats.latency).expect("same bounds");
                if total.first_error.is_none() {
                    total.first_error = stats.first_error;
                }
            }
            Ok(Err(e)) => total.error(true, format!("load task failed: {e}")),
            Err(_) => total.error(true, "load task did not stop in time".into()),
        }
    }
    Measured {
        ok: total.ok,
        errors: total.errors,
        seconds: phase.duration.as_secs_f64(),
        latency: total.latency,
        first_error: total.first_error,
    }
}

async fn connection(
    addr: SocketAddr,
    make: MakeRequest,
    measure_from: Instant,
    measure_until: Instant,
) -> ConnectionStats {
    let mut stats = ConnectionStats {
        ok: 0,
        errors: 0,
        latency: histogram(),
        first_error: None,
    };
    let in_window = |t: Instant| t >= measure_from && t <= measure_until;
    'connect: while Instant::now() < measure_until {
        let stream = match timeout_at(measure_until, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                stats.error(in_window(Instant::now()), format!("connect: {e}"));
                sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(_) => break,
        };
        let _ = stream.set_nodelay(true);
        let handshake = hyper::client::conn::http1::handshake(TokioIo::new(stream));
        let (mut sender, conn) = match timeout_at(measure_until, handshake).await {
            Err(_) => break,
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                stats.error(in_window(Instant::now()), format!("handshake: {e}"));
                sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        loop {
            if Instant::now() >= measure_until {
                driver.abort();
                break 'connect;
            }
            match timeout_at(measure_until + DRAIN, sender.ready()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    // The server closed the connection: open another one.
                    driver.abort();
                    continue 'connect;
                }
                Err(_) => {
                    driver.abort();
                    break 'connect;
                }
            }
            let request = make();
            let sent = Instant::now();
            let answer = timeout_at(measure_until + DRAIN, async {
                let response = sender.send_request(request).await?;
                let status = response.status();
                response.into_body().collect().await?;
                Ok::<StatusCode, hyper::Error>(status)
            })
            .await;
            let done = Instant::now();
            let counted = in_window(done);
            match answer {
                Ok(Ok(status)) => {
                    if counted {
                        let micros = done.duration_since(sent).as_micros() as u64;
                        stats
                            .latency
                            .saturating_record(micros.clamp(1, MAX_LATENCY_US));
                        if status.is_success() {
                            stats.ok += 1;
                        } else {
                            stats.error(true, format!("HTTP {status}"));
                        }
                    }
                }
                Ok(Err(e)) => {
                    stats.error(counted, format!("request: {e}"));
                    driver.abort();
                    continue 'connect;
                }
                Err(_) => {
                    driver.abort();
                    break 'connect;
                }
            }
        }
    }
    stats
}

/// One request on a new connection, for probes and set-up: the status and the whole body.
pub async fn once(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
    limit: Duration,
) -> anyhow::Result<(StatusCode, Bytes)> {
    let (status, _, body) = once_with_headers(addr, request, limit).await?;
    Ok((status, body))
}

/// [`once`], with the answer's headers.
pub async fn once_with_headers(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
    limit: Duration,
) -> anyhow::Result<(StatusCode, hyper::HeaderMap, Bytes)> {
    timeout(limit, async {
        let stream = TcpStream::connect(addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let response = sender.send_request(request).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await?.to_bytes();
        driver.abort();
        Ok::<_, anyhow::Error>((status, headers, body))
    })
    .await
    .with_context(|| format!("no answer from {addr} within {limit:?}"))?
}

/// One keep-alive connection for a sequence of requests, each awaited before the next (the
/// revocation scenarios' polls); opened again if the server closed it in between.
pub struct Connection {
    addr: SocketAddr,
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    driver: tokio::task::JoinHandle<()>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connection {
            addr,
            sender,
            driver,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `request` and reads the whole answer: status, headers and body.
    pub async fn send(
        &mut self,
        request: Request<Full<Bytes>>,
        limit: Duration,
    ) -> anyhow::Result<(StatusCode, hyper::HeaderMap, Bytes)> {
        if self.sender.ready().await.is_err() {
            *self = Connection::open(self.addr).await?;
        }
        let addr = self.addr;
        timeout(limit, async {
            let response = self.sender.send_request(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((status, headers, body))
        })
        .await
        .with_context(|| format!("no answer from {addr} within {limit:?}"))?
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
