//! One-time views for console sessions. A secret made for an operator (a new key's, a
//! rotation's, a generated password) is sealed with the master key and kept, for at most two
//! minutes, until that session's next page shows it; the page that shows it deletes it, so a
//! reload or the back button never shows it again, and no secret travels in a URL. Ending the
//! session deletes its views.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{Error, Service};
use crate::db::reveals::{self, NewReveal};
use crate::domain::random;
use crate::tokens::MasterKey;

/// How long a view waits to be shown.
const KEPT_SECONDS: i64 = 120;

/// What a one-time view shows.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Revealed {
    /// A new key, or a new secret of a rotated one.
    ApiKey {
        client_id: String,
        name: String,
        client_secret: String,
        /// After a rotation: when the previous secret stops working (`None`: it already has).
        /// Kept apart from "not a rotation" when stored: a missing field is no rotation, `null`
        /// a rotation without grace.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::domain::present"
        )]
        rotated: Option<Option<DateTime<Utc>>>,
    },
    /// A new user's generated password.
    Password {
        user_id: String,
        email: String,
        password: String,
    },
    /// An invited user's one-time link.
    Invitation {
        user_id: String,
        email: String,
        url: String,
    },
    /// A webhook endpoint's new signing secret.
    WebhookSecret {
        endpoint_id: String,
        url: String,
        secret: String,
    },
}

impl std::fmt::Debug for Revealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Revealed::ApiKey { client_id, .. } => {
                write!(f, "Revealed::ApiKey({client_id}, [redacted])")
            }
            Revealed::Password { user_id, .. } => {
                write!(f, "Revealed::Password({user_id}, [redacted])")
            }
            Revealed::Invitation { user_id, .. } => {
                write!(f, "Revealed::Invitation({user_id}, [redacted])")
            }
            Revealed::WebhookSecret { endpoint_id, .. } => {
                write!(f, "Revealed::WebhookSecret({endpoint_id}, [redacted])")
            }
        }
    }
}

fn master(service: &Service) -> Result<&MasterKey, Error> {
    service
        .master_key
        .as_deref()
        .ok_or_else(|| Error::internal(anyhow::anyhow!("one-time views need the master key")))
}

fn handle_hash(handle: &str) -> String {
    super::login::session_hash(handle)
}

/// Keeps `revealed` for the session `session_id`; the handle its page is reached by.
pub async fn stash(
    service: &Service,
    session_id: i64,
    revealed: &Revealed,
) -> Result<String, Error> {
    let handle = random::base62(32);
    let hash = handle_hash(&handle);
    let plain = serde_json::to_vec(revealed).map_err(Error::internal)?;
    let sealed = master(service)?.seal(&format!("reveal:{hash}"), &plain);
    let now = Utc::now();
    service
        .db(move |conn| {
            Ok(reveals::insert(
                conn,
                &NewReveal {
                    handle_hash: &hash,
                    session_id,
                    sealed: &sealed,
                    created_at: now.naive_utc(),
                    expires_at: (now + Duration::seconds(KEPT_SECONDS)).naive_utc(),
                },
            )?)
        })
        .await?;
    Ok(handle)
}

/// The view behind `handle`, if this session has not seen it yet; it is gone afterwards.
pub async fn take(
    service: &Service,
    session_id: i64,
    handle: &str,
) -> Result<Option<Revealed>, Error> {
    if handle.len() != 32 || !random::is_base62(handle) {
        return Ok(None);
    }
    let hash = handle_hash(handle);
    let now = Utc::now().naive_utc();
    let context = format!("reveal:{hash}");
    let Some(sealed) = service
        .db(move |conn| Ok(reveals::take(conn, &hash, session_id, now)?))
        .await?
    else {
        return Ok(None);
    };
    let plain = master(service)?
        .open(&context, &sealed)
        .map_err(Error::Internal)?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(Error::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotated(revealed: &Revealed) -> Option<Option<DateTime<Utc>>> {
        let stored = serde_json::to_vec(revealed).unwrap();
        match serde_json::from_slice(&stored).unwrap() {
            Revealed::ApiKey { rotated, .. } => rotated,
            Revealed::Password { .. }
            | Revealed::Invitation { .. }
            | Revealed::WebhookSecret { .. } => panic!("a key"),
        }
    }

    #[test]
    fn a_rotation_without_grace_stays_one_when_stored() {
        let key = |rotated| Revealed::ApiKey {
            client_id: "kgc_1".into(),
            name: "n".into(),
            client_secret: "s".into(),
            rotated,
        };
        let until = Utc::now();
        assert_eq!(rotated(&key(None)), None, "a new key");
        assert_eq!(rotated(&key(Some(None))), Some(None), "no grace");
        assert_eq!(rotated(&key(Some(Some(until)))), Some(Some(until)));
    }
}
