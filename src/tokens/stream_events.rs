//! The revocation stream's events (Server-Sent Events, WHATWG HTML section 9.2), written by
//! keygate and read by remote validators: one definition for both sides.
//!
//! | event | data | meaning |
//! |---|---|---|
//! | `key_cut` | `{"client_id", "issued_before", "until"}` | tokens of the key issued before `issued_before` are refused until `until` |
//! | `token_revoked` | `{"jti", "until"}` | this one token is refused until `until` |
//! | `signing_keys` | `{}` | the JWKS changed: fetch it again |
//! | `sync` | `{"as_of"}` | every change made before `as_of` was sent |
//!
//! Times are unix seconds. Change events carry their position in keygate's change feed as
//! `id`, and `sync` events the position reached, so a follower that reconnects with
//! `Last-Event-ID` misses nothing.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::Change;

pub const KEY_CUT: &str = "key_cut";
pub const TOKEN_REVOKED: &str = "token_revoked";
pub const SIGNING_KEYS: &str = "signing_keys";
pub const SYNC: &str = "sync";

#[derive(Serialize, Deserialize)]
struct KeyCut<'a> {
    #[serde(borrow)]
    client_id: Cow<'a, str>,
    issued_before: i64,
    until: i64,
}

#[derive(Serialize, Deserialize)]
struct TokenRevoked<'a> {
    #[serde(borrow)]
    jti: Cow<'a, str>,
    until: i64,
}

/// `sync`: every change made before `as_of` (unix seconds) was sent.
#[derive(Serialize, Deserialize)]
pub struct Sync {
    pub as_of: i64,
}

/// The event a change is sent as: its name and data. `None` for changes followers do not
/// hear of (secret rotations).
pub fn encode(change: &Change) -> Option<(&'static str, String)> {
    let (name, data) = match change {
        Change::Client {
            client_id,
            not_before,
            expires_at,
        } => (
            KEY_CUT,
            serde_json::to_string(&KeyCut {
                client_id: Cow::Borrowed(client_id),
                issued_before: *not_before,
                until: *expires_at,
            }),
        ),
        Change::Token { jti, expires_at } => (
            TOKEN_REVOKED,
            serde_json::to_string(&TokenRevoked {
                jti: Cow::Borrowed(jti),
                until: *expires_at,
            }),
        ),
        Change::SigningKeys { .. } => (SIGNING_KEYS, Ok("{}".to_owned())),
        Change::Secrets { .. } => return None,
    };
    Some((name, data.expect("plain structs serialize")))
}

/// The change an event announces: `Ok(None)` for `sync` and for names this version does not
/// know (a newer keygate may send more), an error for data that does not parse.
pub fn decode(name: &str, data: &str) -> Result<Option<Change>, serde_json::Error> {
    Ok(Some(match name {
        KEY_CUT => {
            let cut: KeyCut = serde_json::from_str(data)?;
            Change::Client {
                client_id: cut.client_id.into_owned(),
                not_before: cut.issued_before,
                expires_at: cut.until,
            }
        }
        TOKEN_REVOKED => {
            let revoked: TokenRevoked = serde_json::from_str(data)?;
            Change::Token {
                jti: revoked.jti.into_owned(),
                expires_at: revoked.until,
            }
        }
        SIGNING_KEYS => Change::SigningKeys { expires_at: 0 },
        _ => return Ok(None),
    }))
}

/// One event as it is sent: `id` (when given), `event` and one `data` line (JSON never
/// holds a line break), then the blank line that ends it.
pub fn frame(out: &mut String, id: Option<i64>, name: &str, data: &str) {
    use std::fmt::Write;
    debug_assert!(!data.contains('\n') && !data.contains('\r'));
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    let _ = write!(out, "event: {name}\ndata: {data}\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_followed_change_round_trips() {
        for change in [
            Change::Client {
                client_id: "kg_abc".into(),
                not_before: i64::MAX,
                expires_at: 900,
            },
            Change::Token {
                jti: "j\"1".into(),
                expires_at: 5,
            },
            Change::SigningKeys { expires_at: 0 },
        ] {
            let (name, data) = encode(&change).unwrap();
            assert_eq!(decode(name, &data).unwrap(), Some(change));
        }
    }

    #[test]
    fn secret_rotations_are_not_sent_and_unknown_events_are_skipped() {
        let rotation = Change::Secrets {
            client_id: "kg_abc".into(),
            changed_at: 1,
            expires_at: 2,
        };
        assert_eq!(encode(&rotation), None);
        assert_eq!(decode("something_new", "{\"x\":1}").unwrap(), None);
        assert_eq!(decode(SYNC, "{\"as_of\":1}").unwrap(), None);
        assert!(decode(KEY_CUT, "{\"client_id\":1}").is_err());
    }

    #[test]
    fn frames_end_with_a_blank_line() {
        let mut out = String::new();
        frame(
            &mut out,
            Some(7),
            TOKEN_REVOKED,
            "{\"jti\":\"a\",\"until\":9}",
        );
        frame(&mut out, None, SYNC, "{\"as_of\":3}");
        assert_eq!(
            out,
            "id: 7\nevent: token_revoked\ndata: {\"jti\":\"a\",\"until\":9}\n\n\
             event: sync\ndata: {\"as_of\":3}\n\n"
        );
    }
}
