//! What the change feed has said, kept in memory: tokens of a key issued before a change,
//! single revoked tokens, and when a key's secrets last changed. Reads are lock-free
//! snapshots; writes make a new snapshot from persistent maps, which share all but the
//! changed entries with the old one, so a change costs the same however many entries there
//! are.

use std::sync::Arc;

use arc_swap::ArcSwap;
use imbl::{HashMap, OrdSet};

use crate::domain::status::closed_set;

closed_set! {
    /// The kinds of entries the change feed carries.
    ChangeKind, field "kind" {
        Client => "client",
        Token => "token",
        SigningKeys => "signing_keys",
        Secrets => "secrets",
    }
}

/// One entry of the change feed, as the validator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Tokens of `client_id` issued before `not_before` are refused until `expires_at`
    /// (revoke, disable, delete, narrowed permissions).
    Client {
        client_id: String,
        not_before: i64,
        expires_at: i64,
    },
    /// One token, by `jti`, refused until it would have expired (RFC 7009).
    Token { jti: String, expires_at: i64 },
    /// The signing keys changed: reload the keyring.
    SigningKeys { expires_at: i64 },
    /// A key's secrets changed at `changed_at` (rotation): what was verified before is to be
    /// verified again.
    Secrets {
        client_id: String,
        changed_at: i64,
        expires_at: i64,
    },
}

impl Change {
    /// Reads one entry of the change feed; `None` for a kind this version does not know.
    pub fn from_feed(
        kind: &str,
        subject: &str,
        not_before: i64,
        expires_at: i64,
    ) -> Option<Change> {
        let subject = subject.to_owned();
        Some(match kind.parse::<ChangeKind>().ok()? {
            ChangeKind::Client => Change::Client {
                client_id: subject,
                not_before,
                expires_at,
            },
            ChangeKind::Token => Change::Token {
                jti: subject,
                expires_at,
            },
            ChangeKind::SigningKeys => Change::SigningKeys { expires_at },
            ChangeKind::Secrets => Change::Secrets {
                client_id: subject,
                changed_at: not_before,
                expires_at,
            },
        })
    }

    /// The feed row this change is written as: (kind, subject, not_before, expires_at).
    pub fn to_feed(&self) -> (ChangeKind, &str, i64, i64) {
        match self {
            Change::Client {
                client_id,
                not_before,
                expires_at,
            } => (ChangeKind::Client, client_id, *not_before, *expires_at),
            Change::Token { jti, expires_at } => (ChangeKind::Token, jti, 0, *expires_at),
            Change::SigningKeys { expires_at } => (ChangeKind::SigningKeys, "", 0, *expires_at),
            Change::Secrets {
                client_id,
                changed_at,
                expires_at,
            } => (ChangeKind::Secrets, client_id, *changed_at, *expires_at),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cut {
    at: i64,
    expires_at: i64,
}

impl Cut {
    fn merge(self, at: i64, expires_at: i64) -> Cut {
        Cut {
            at: self.at.max(at),
            expires_at: self.expires_at.max(expires_at),
        }
    }
}

/// Which map an expiry belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Client(String),
    Token(String),
    Secrets(String),
}

#[derive(Clone, Default)]
struct Snapshot {
    /// Tokens issued before `at` are refused.
    clients: HashMap<String, Cut>,
    tokens: HashMap<String, i64>,
    /// Secrets changed at `at`.
    secrets: HashMap<String, Cut>,
    /// Every entry by the time it stops mattering (possibly also by an earlier time it was
    /// extended past), so that forgetting costs only what is forgotten.
    expiries: OrdSet<(i64, Entry)>,
}

impl Snapshot {
    fn forget_expired(&mut self, now: i64) {
        while let Some((expires_at, entry)) = self.expiries.get_min().cloned() {
            if expires_at > now {
                break;
            }
            self.expiries.remove_min();
            match entry {
                Entry::Client(id) => {
                    if self.clients.get(&id).is_some_and(|c| c.expires_at <= now) {
                        self.clients.remove(&id);
                    }
                }
                Entry::Token(jti) => {
                    if self.tokens.get(&jti).is_some_and(|e| *e <= now) {
                        self.tokens.remove(&jti);
                    }
                }
                Entry::Secrets(id) => {
                    if self.secrets.get(&id).is_some_and(|c| c.expires_at <= now) {
                        self.secrets.remove(&id);
                    }
                }
            }
        }
    }

    fn cut(map: &mut HashMap<String, Cut>, id: &str, at: i64, expires_at: i64) {
        let cut = match map.get(id) {
            Some(existing) => existing.merge(at, expires_at),
            None => Cut { at, expires_at },
        };
        map.insert(id.to_owned(), cut);
    }
}

#[derive(Default)]
pub struct Revocations {
    snapshot: ArcSwap<Snapshot>,
}

impl Revocations {
    /// Whether a token with these claims was revoked after it was issued.
    pub fn is_revoked(&self, client_id: &str, jti: &str, iat: i64) -> bool {
        self.cut_after(client_id, iat) || self.snapshot.load().tokens.contains_key(jti)
    }

    /// Whether a token of `client_id` issued at `iat` would be refused by a cut.
    pub fn cut_after(&self, client_id: &str, iat: i64) -> bool {
        let snapshot = self.snapshot.load();
        snapshot
            .clients
            .get(client_id)
            .is_some_and(|cut| iat < cut.at)
    }

    /// Whether what was learned about `client_id`'s credentials at `verified_at` (unix
    /// seconds) may have changed since: revoked, disabled, narrowed, or rotated.
    pub fn credentials_changed_since(&self, client_id: &str, verified_at: i64) -> bool {
        let snapshot = self.snapshot.load();
        snapshot
            .clients
            .get(client_id)
            .is_some_and(|cut| verified_at < cut.at)
            || snapshot
                .secrets
                .get(client_id)
                .is_some_and(|cut| verified_at <= cut.at)
    }

    /// Applies changes and forgets entries that expired at or before `now`. Returns whether
    /// any change asks for the signing keys to be reloaded.
    pub fn apply(&self, changes: &[Change], now: i64) -> bool {
        let mut reload_keys = false;
        self.snapshot.rcu(|current| {
            reload_keys = false;
            let mut next = Snapshot::clone(current);
            next.forget_expired(now);
            for change in changes {
                match change {
                    Change::Client {
                        client_id,
                        not_before,
                        expires_at,
                    } if *expires_at > now => {
                        Snapshot::cut(&mut next.clients, client_id, *not_before, *expires_at);
                        next.expiries
                            .insert((*expires_at, Entry::Client(client_id.clone())));
                    }
                    Change::Token { jti, expires_at } if *expires_at > now => {
                        let kept = next
                            .tokens
                            .get(jti)
                            .map_or(*expires_at, |e| (*e).max(*expires_at));
                        next.tokens.insert(jti.clone(), kept);
                        next.expiries
                            .insert((*expires_at, Entry::Token(jti.clone())));
                    }
                    Change::Secrets {
                        client_id,
                        changed_at,
                        expires_at,
                    } if *expires_at > now => {
                        Snapshot::cut(&mut next.secrets, client_id, *changed_at, *expires_at);
                        next.expiries
                            .insert((*expires_at, Entry::Secrets(client_id.clone())));
                    }
                    Change::SigningKeys { .. } => reload_keys = true,
                    _ => {}
                }
            }
            Arc::new(next)
        });
        reload_keys
    }

    /// Single tokens revoked and not yet expired: what bounds the memory revocations take.
    pub fn revoked_tokens(&self) -> usize {
        self.snapshot.load().tokens.len()
    }

    pub fn len(&self) -> usize {
        let snapshot = self.snapshot.load();
        snapshot.clients.len() + snapshot.tokens.len() + snapshot.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str, not_before: i64, expires_at: i64) -> Change {
        Change::Client {
            client_id: id.into(),
            not_before,
            expires_at,
        }
    }

    #[test]
    fn refuses_tokens_issued_before_a_client_change_only() {
        let r = Revocations::default();
        r.apply(&[client("a", 100, 1000)], 50);
        assert!(r.is_revoked("a", "j", 99));
        assert!(!r.is_revoked("a", "j", 100));
        assert!(!r.is_revoked("b", "j", 10));
    }

    #[test]
    fn a_final_revocation_refuses_every_token() {
        let r = Revocations::default();
        r.apply(&[client("a", i64::MAX, 1000)], 50);
        assert!(r.is_revoked("a", "j", 999_999_999));
        assert!(r.credentials_changed_since("a", 999_999_999));
    }

    #[test]
    fn later_changes_move_the_cut_forward_never_back() {
        let r = Revocations::default();
        r.apply(&[client("a", 200, 1000), client("a", 100, 900)], 50);
        assert!(r.is_revoked("a", "j", 150));
    }

    #[test]
    fn single_tokens_are_refused_until_they_expire() {
        let r = Revocations::default();
        r.apply(
            &[Change::Token {
                jti: "t1".into(),
                expires_at: 500,
            }],
            0,
        );
        assert!(r.is_revoked("a", "t1", 10));
        r.apply(&[], 501);
        assert!(!r.is_revoked("a", "t1", 10));
        assert!(r.is_empty());
    }

    #[test]
    fn secret_changes_invalidate_what_was_verified_before_or_at_them() {
        let r = Revocations::default();
        r.apply(
            &[Change::Secrets {
                client_id: "a".into(),
                changed_at: 100,
                expires_at: 1000,
            }],
            50,
        );
        assert!(r.credentials_changed_since("a", 99));
        assert!(r.credentials_changed_since("a", 100));
        assert!(!r.credentials_changed_since("a", 101));
        assert!(
            !r.is_revoked("a", "j", 50),
            "a rotation does not revoke tokens"
        );
    }

    #[test]
    fn expired_entries_are_ignored_and_key_reloads_reported() {
        let r = Revocations::default();
        assert!(!r.apply(&[client("a", 100, 200)], 300));
        assert!(r.is_empty());
        assert!(r.apply(&[Change::SigningKeys { expires_at: 10 }], 0));
    }

    #[test]
    fn extended_cuts_outlive_their_first_expiry() {
        let r = Revocations::default();
        r.apply(&[client("a", 100, 200)], 50);
        r.apply(&[client("a", 150, 400)], 60);
        r.apply(&[], 250);
        assert!(
            r.is_revoked("a", "j", 120),
            "the later expiry keeps the cut"
        );
        r.apply(&[], 400);
        assert!(r.is_empty());
    }

    #[test]
    fn many_revoked_tokens_are_forgotten_as_they_expire() {
        let r = Revocations::default();
        let changes: Vec<Change> = (0..10_000)
            .map(|i| Change::Token {
                jti: format!("t{i}"),
                expires_at: 1_000 + i,
            })
            .collect();
        r.apply(&changes, 0);
        assert_eq!(r.revoked_tokens(), 10_000);
        r.apply(&[], 1_000 + 4_999);
        assert_eq!(r.revoked_tokens(), 5_000);
        assert!(r.is_revoked("x", "t9999", 0));
        assert!(!r.is_revoked("x", "t10", 0));
    }

    #[test]
    fn feed_rows_round_trip() {
        for change in [
            client("a", 5, 9),
            Change::Token {
                jti: "j".into(),
                expires_at: 9,
            },
            Change::SigningKeys { expires_at: 9 },
            Change::Secrets {
                client_id: "a".into(),
                changed_at: 5,
                expires_at: 9,
            },
        ] {
            let (kind, subject, not_before, expires_at) = change.to_feed();
            assert_eq!(
                Change::from_feed(kind.as_str(), subject, not_before, expires_at),
                Some(change.clone())
            );
        }
        assert_eq!(Change::from_feed("webhook", "x", 0, 1), None);
    }
}
