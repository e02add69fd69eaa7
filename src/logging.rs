//! keygate's log lines: env_logger, as text (the default) or one JSON object per line
//! (`KEYGATE_LOG_FORMAT=json`), each carrying the id of the request it was written for.

use std::io::Write;
use std::sync::Arc;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `work` (a request's handling) with `id` as the request id of its log lines.
pub async fn with_request_id<F: Future>(id: Arc<str>, work: F) -> F::Output {
    REQUEST_ID.scope(id, work).await
}

/// Runs `work` (blocking work done for a request, on another thread) with the request's id,
/// if it has one.
pub fn in_request<T>(id: Option<Arc<str>>, work: impl FnOnce() -> T) -> T {
    match id {
        Some(id) => REQUEST_ID.sync_scope(id, work),
        None => work(),
    }
}

/// The id of the request being served, if any.
pub fn request_id() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `KEYGATE_LOG_FORMAT`: `text` (or unset) or `json`.
    pub fn from_env() -> Result<LogFormat, String> {
        match std::env::var("KEYGATE_LOG_FORMAT").as_deref() {
            Err(_) | Ok("") | Ok("text") => Ok(LogFormat::Text),
            Ok("json") => Ok(LogFormat::Json),
            Ok(other) => Err(format!(
                "KEYGATE_LOG_FORMAT must be text or json, not {other:?}"
            )),
        }
    }
}

/// Installs the logger: `RUST_LOG` filters (default `info`), `format` shapes each line.
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    match format {
        LogFormat::Text => builder.format(|buf, record| {
            write!(
                buf,
                "[{} {:<5} {}",
                buf.timestamp(),
                record.level(),
                record.target()
            )?;
            if let Some(id) = request_id() {
                write!(buf, " request_id={id}")?;
            }
            writeln!(buf, "] {}", record.args())
        }),
        LogFormat::Json => builder.format(|buf, record| {
            let line = serde_json::json!({
                "time": buf.timestamp().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "request_id": request_id().as_deref(),
                "message": record.args().to_string(),
            });
            writeln!(buf, "{line}")
        }),
    };
    builder.init();
}
