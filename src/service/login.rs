//! Operators' console log-in and log-out. A session is a 256-bit random token (only its SHA-256
//! is stored) and a CSRF token that state-changing requests must send back.
//!
//! Every attempt counts before its password is checked: per source address (too many answer
//! `429`), and per account and source address, so that guesses sent at once are all counted
//! and an attacker elsewhere cannot lock an operator out. Five failures in a row lock the
//! account for that source for fifteen minutes; a locked account answers exactly like a wrong
//! password, after the same work, so an answer never tells which emails exist.

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, Event};
use super::callers::LiveSession;
use super::users::UserRecord;
use super::{Actor, Error, Origin, Service, policy};
use crate::auth::rate_limit::source_key;
use crate::db::login_failures::{self, Attempts};
use crate::db::organizations::DEFAULT_ORGANIZATION;
use crate::db::sessions::NewSession;
use crate::db::users::User;
use crate::db::{self, write_transaction};
use crate::domain::{AuditAction, Email, Outcome, random};

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 8;
/// Failures in a row, from one source, that lock an account for that source.
const MAX_FAILURES: i32 = 5;
const LOCK_MINUTES: i64 = 15;

/// A new session: the cookie's value (never stored), its CSRF token, and the user.
pub struct LoggedIn {
    pub token: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub record: UserRecord,
}

/// Logs an operator in. Every failure is the same `invalid_credentials`.
pub async fn log_in(
    service: &Service,
    email: &str,
    password: &str,
    origin: &Origin,
) -> Result<LoggedIn, Error> {
    let email = Email::parse(email).map_err(|_| Error::InvalidCredentials)?;
    service.login_limiter.admit(origin.address)?;
    let source = source_key(origin.address).to_string();
    let now = Utc::now();
    let (user, attempts, organization_open) = {
        let (email, source) = (email.clone(), source.clone());
        service
            .db(move |conn| {
                let Some(user) = db::users::find_by_email(conn, email.as_str())? else {
                    return Ok((None, None, true));
                };
                let attempts =
                    login_failures::count_attempt(conn, user.id, &source, now.naive_utc())?;
                let open = db::organizations::find(conn, user.organization_id)?.is_enabled();
                Ok((Some(user), Some(attempts), open))
            })
            .await?
    };
    let matched = service
        .hasher
        .verify_password(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let outcome = match judge(user.as_ref(), attempts.as_ref(), matched, now) {
        Outcome::Success if !organization_open => Outcome::OrganizationDisabled,
        judged => judged,
    };
    let actor = origin.actor(format!("user:{email}"));
    match (outcome, user) {
        (Outcome::Success, Some(user)) => start_session(service, user, source, actor, now).await,
        (outcome, user) => {
            let lock = attempts.is_some_and(|a| a.failures >= MAX_FAILURES);
            record_failure(service, user.as_ref(), source, lock, actor, outcome).await?;
            Err(Error::InvalidCredentials)
        }
    }
}

/// How an attempt ends: the password counts only for an enabled account that is not locked.
fn judge(
    user: Option<&User>,
    attempts: Option<&Attempts>,
    matched: bool,
    now: DateTime<Utc>,
) -> Outcome {
    let locked = attempts.is_some_and(|a| {
        a.failures > MAX_FAILURES || a.locked_until.is_some_and(|t| t.and_utc() > now)
    });
    match user {
        None => Outcome::UnknownEmail,
        Some(_) if locked => Outcome::Locked,
        Some(u) if !policy::may_log_in(u) => Outcome::Disabled,
        Some(_) if !matched => Outcome::WrongPassword,
        Some(_) => Outcome::Success,
    }
}

/// Records a failed attempt in the audit trail (an unknown email in the deployment's own
/// organization, whose administrators watch the whole deployment), and locks the account for
/// this source once it has failed too often.
async fn record_failure(
    service: &Service,
    user: Option<&User>,
    source: String,
    lock: bool,
    actor: Actor,
    outcome: Outcome,
) -> Result<(), Error> {
    let user = user.map(|u| (u.id, u.organization_id, u.public_id.clone()));
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let now = Utc::now();
                if let (Some((id, _, _)), true) = (&user, lock) {
                    let until = now + Duration::minutes(LOCK_MINUTES);
                    login_failures::lock(conn, *id, &source, until.naive_utc())?;
                }
                let organization_id = match &user {
                    Some((_, organization, _)) => Some(*organization),
                    None => {
                        db::organizations::find_by_name(conn, DEFAULT_ORGANIZATION)?.map(|o| o.id)
                    }
                };
                let event = Event {
                    organization_id,
                    action: AuditAction::SessionLogin,
                    target: user
                        .as_ref()
                        .and_then(|(_, _, public_id)| public_id.as_deref()),
                    outcome,
                    details: serde_json::json!({}),
                };
                Ok(audit::record(conn, &actor, event, now)?)
            })
        })
        .await
}

async fn start_session(
    service: &Service,
    user: User,
    source: String,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<LoggedIn, Error> {
    let token = random::base62(43);
    let csrf_token = random::base62(32);
    let expires_at = now + Duration::hours(SESSION_HOURS);
    let (hash, csrf) = (session_hash(&token), csrf_token.clone());
    let record = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                login_failures::clear(conn, user.id, &source)?;
                db::users::record_login(conn, user.id, now.naive_utc())?;
                db::sessions::insert(
                    conn,
                    &NewSession {
                        token_hash: &hash,
                        user_id: user.id,
                        csrf_token: &csrf,
                        created_at: now.naive_utc(),
                        expires_at: expires_at.naive_utc(),
                    },
                )?;
                let target = user.public_id.clone().unwrap_or_default();
                let event =
                    Event::success(user.organization_id, AuditAction::SessionLogin, &target);
                audit::record(conn, &actor, event, now)?;
                let user = db::users::find(conn, user.id)?.ok_or(Error::NotFound)?;
                let organization = db::organizations::find(conn, user.organization_id)?;
                Ok(UserRecord { user, organization })
            })
        })
        .await?;
    Ok(LoggedIn {
        token,
        csrf_token,
        expires_at,
        record,
    })
}

/// Ends a session.
pub async fn log_out(service: &Service, live: LiveSession, origin: &Origin) -> Result<(), Error> {
    let actor = origin.actor(format!("user:{}", live.user.email));
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                db::sessions::delete(conn, &live.session.token_hash)?;
                let target = live.user.public_id.clone().unwrap_or_default();
                let event = Event::success(
                    live.user.organization_id,
                    AuditAction::SessionLogout,
                    &target,
                );
                Ok(audit::record(conn, &actor, event, Utc::now())?)
            })
        })
        .await
}

/// The stored form of a session token: hex SHA-256.
pub fn session_hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
