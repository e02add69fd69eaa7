//! What the change feed has said, kept in memory: tokens of a key issued before a change,
//! single revoked tokens, and when a key's secrets last changed. Reads are lock-free
//! snapshots; the rare writes copy and swap.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

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
    SigningKeys,
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
        match kind {
            "client" => Some(Change::Client {
                client_id: subject,
                not_before,
                expires_at,
            }),
            "token" => Some(Change::Token {
                jti: subject,
                expires_at,
            }),
            "signing_keys" => Some(Change::SigningKeys),
            "secrets" => Some(Change::Secrets {
                client_id: subject,
                changed_at: not_before,
                expires_at,
            }),
            _ => None,
        }
    }
}

#[derive(Clone, Copy)]
struct Cut {
    at: i64,
    expires_at: i64,
}

impl Cut {
    fn merge(&mut self, at: i64, expires_at: i64) {
        self.at = self.at.max(at);
        self.expires_at = self.expires_at.max(expires_at);
    }
}

#[derive(Default)]
struct Snapshot {
    /// Tokens issued before `at` are refused.
    clients: HashMap<String, Cut>,
    tokens: HashMap<String, i64>,
    /// Secrets changed at `at`.
    secrets: HashMap<String, Cut>,
}

#[derive(Default)]
pub struct Revocations {
    snapshot: ArcSwap<Snapshot>,
}

impl Revocations {
    /// Whether a token with these claims was revoked after it was issued.
    pub fn is_revoked(&self, client_id: &str, jti: &str, iat: i64) -> bool {
        let snapshot = self.snapshot.load();
        if snapshot
            .clients
            .get(client_id)
            .is_some_and(|cut| iat < cut.at)
        {
            return true;
        }
        snapshot.tokens.contains_key(jti)
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

    /// Applies changes and forgets entries that expired before `now`. Returns whether any
    /// change asks for the signing keys to be reloaded.
    pub fn apply(&self, changes: &[Change], now: i64) -> bool {
        let mut reload_keys = false;
        self.snapshot.rcu(|current| {
            reload_keys = false;
            let live = |map: &HashMap<String, Cut>| -> HashMap<String, Cut> {
                map.iter()
                    .filter(|(_, cut)| cut.expires_at > now)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            };
            let mut next = Snapshot {
                clients: live(&current.clients),
                tokens: current
                    .tokens
                    .iter()
                    .filter(|(_, exp)| **exp > now)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                secrets: live(&current.secrets),
            };
            for change in changes {
                match change {
                    Change::Client {
                        client_id,
                        not_before,
                        expires_at,
                    } if *expires_at > now => {
                        next.clients
                            .entry(client_id.clone())
                            .or_insert(Cut {
                                at: *not_before,
                                expires_at: *expires_at,
                            })
                            .merge(*not_before, *expires_at);
                    }
                    Change::Token { jti, expires_at } if *expires_at > now => {
                        next.tokens.insert(jti.clone(), *expires_at);
                    }
                    Change::Secrets {
                        client_id,
                        changed_at,
                        expires_at,
                    } if *expires_at > now => {
                        next.secrets
                            .entry(client_id.clone())
                            .or_insert(Cut {
                                at: *changed_at,
                                expires_at: *expires_at,
                            })
                            .merge(*changed_at, *expires_at);
                    }
                    Change::SigningKeys => reload_keys = true,
                    _ => {}
                }
            }
            Arc::new(next)
        });
        reload_keys
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
        assert!(r.apply(&[Change::SigningKeys], 0));
    }
}
