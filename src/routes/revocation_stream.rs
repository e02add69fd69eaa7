//! `GET /v1/revocation-stream`: Server-Sent Events that tell a resource server which keys and
//! tokens to refuse, for validators that know only keygate's URL (`revocations:read`). The
//! events are in `crate::tokens::stream_events`; a follower that reconnects with
//! `Last-Event-ID` gets everything after it.

use std::convert::Infallible;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::sync::{broadcast, mpsc};

use crate::auth::caller::{self, Operator, RevocationsRead};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ManagementErrors;
use crate::service::revocation_stream::{self, CatchUp, Following};
use crate::state::AppState;
use crate::tokens::stream_events::{self, SYNC, Sync};

/// How often an idle stream says it is alive and current (and the caller is checked again:
/// a revoked or expired credential ends its stream by the next one).
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a follower waits before reconnecting (the SSE `retry` field), in milliseconds.
const RECONNECT_MS: u32 = 1000;

/// One event of the revocation stream (WHATWG HTML section 9.2): its name, its data and its
/// position.
// For `text/event-stream` the document's schema describes each event, not the stream's text.
// Only the document uses this type: the events are written by `stream_events::frame`.
#[derive(utoipa::ToSchema)]
#[schema(as = RevocationStreamEvent)]
#[allow(dead_code)]
struct StreamEvent {
    #[schema(inline)]
    event: StreamEventName,
    /// The event's data: one JSON object, as the operation's description lists for its name.
    #[schema(content_media_type = "application/json")]
    data: String,
    /// The event's position in the change feed, to send back as `Last-Event-ID`.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum StreamEventName {
    KeyCut,
    TokenRevoked,
    SigningKeys,
    Sync,
}

#[utoipa::path(
    get,
    path = "/v1/revocation-stream",
    tag = "tokens",
    summary = "Revoked keys and tokens as they happen (Server-Sent Events)",
    description = "Needs `revocations:read`, which only the deployment's own organization can \
        hold. Events: `key_cut` `{client_id, issued_before, until}` (tokens of the key issued \
        before `issued_before` are refused until `until`), `token_revoked` `{jti, until}`, \
        `signing_keys` `{}` (fetch the JWKS again) and, at least every 15 seconds, `sync` \
        `{as_of}` (every change made before `as_of` was sent). Times are unix seconds. Without \
        `Last-Event-ID` the stream starts with every change still in force; with it, with \
        everything after it. The stream ends when the caller's credential stops standing.",
    security(("bearerAuth" = ["revocations:read"])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "The `id` of the last event received")),
    responses(
        ManagementErrors,
        (status = 200, description = "The event stream; the schema describes each event", content_type = "text/event-stream", body = StreamEvent),
        (status = 503, description = "This instance serves as many streams as it can; `Retry-After` says when to try again",
            body = ErrorBody),
    )
)]
pub async fn follow(
    operator: Operator<RevocationsRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let after = last_event_id(&req)?;
    let (following, caught_up) =
        revocation_stream::follow(&state.service, &operator.caller, after).await?;
    let (events, mut received) = mpsc::channel::<Bytes>(16);
    actix_web::rt::spawn(send_events(req, state, following, caught_up, events));
    let body = futures_util::stream::poll_fn(move |cx| {
        received
            .poll_recv(cx)
            .map(|bytes| bytes.map(Ok::<_, Infallible>))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        // Proxies that buffer answers (nginx) pass this one through as it comes.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body))
}

/// The position a reconnecting follower reached.
fn last_event_id(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(value) = req.headers().get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|id| *id >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::InvalidRequest(
                "Last-Event-ID must be the id of an event this stream sent".into(),
            )
        })
}

/// Writes the catch-up, then each poll of the change feed and a heartbeat, until the follower
/// leaves or its credential stops standing.
async fn send_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut following: Following,
    caught_up: CatchUp,
    out: mpsc::Sender<Bytes>,
) {
    let mut text = format!("retry: {RECONNECT_MS}\n\n");
    let mut position = caught_up.position;
    write_catch_up(&mut text, &caught_up);
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    loop {
        if out
            .send(Bytes::from(std::mem::take(&mut text)))
            .await
            .is_err()
        {
            return;
        }
        tokio::select! {
            _ = out.closed() => return,
            polled = following.polls.recv() => match polled {
                Ok(batch) => {
                    write_changes(&mut text, &batch.changes, &mut position);
                    write_sync(&mut text, position, batch.as_of);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    match revocation_stream::catch_up(&state.service, Some(position)).await {
                        Ok(caught_up) => {
                            write_catch_up(&mut text, &caught_up);
                            position = caught_up.position;
                        }
                        // The follower reconnects, and catches up then.
                        Err(_) => return,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = heartbeat.tick() => {
                if still_allowed(&req, &state).await.is_err() {
                    return;
                }
                // Read before draining: every poll that made it current was announced first.
                let as_of = state.service.validator.synced_as_of();
                while let Ok(batch) = following.polls.try_recv() {
                    write_changes(&mut text, &batch.changes, &mut position);
                }
                write_sync(&mut text, position, as_of);
            }
        }
    }
}

/// Whether the stream's credential still stands and still holds the permission.
async fn still_allowed(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let caller = caller::identify(req, state).await?;
    Ok(revocation_stream::may_follow(&caller)?)
}

/// The changes past `position`, as events, moving `position` past them. A catch-up's changes
/// are all new to the follower (`position` is then the feed's end as the catch-up read it).
fn write_changes(text: &mut String, changes: &[(i64, crate::tokens::Change)], position: &mut i64) {
    for (id, change) in changes {
        if *id <= *position {
            continue;
        }
        write_change(text, *id, change);
        *position = *id;
    }
}

fn write_change(text: &mut String, id: i64, change: &crate::tokens::Change) {
    if let Some((name, data)) = stream_events::encode(change) {
        stream_events::frame(text, Some(id), name, &data);
    }
}

fn write_catch_up(text: &mut String, caught_up: &CatchUp) {
    for (id, change) in &caught_up.changes {
        write_change(text, *id, change);
    }
    write_sync(text, caught_up.position, caught_up.as_of);
}

fn write_sync(text: &mut String, position: i64, as_of: i64) {
    let data = serde_json::to_string(&Sync { as_of }).expect("a plain struct serializes");
    stream_events::frame(text, Some(position), SYNC, &data);
}
