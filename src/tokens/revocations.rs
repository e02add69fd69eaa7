//! What the change feed has said, kept in memory: tokens of a key issued before a change, and
//! single revoked tokens. Reads are lock-free snapshots; the rare writes copy and swap.

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
    /// A key's secrets changed (rotation): forget what was learned about them.
    Secrets { client_id: String },
}

impl Change {
    /// Reads one entry of the change feed; `None` for a kind this version does not know.
    pub fn from_feed(
        kind: &str,
        subject: &str,
        not_before: i64,
        expires_at: i64,
    ) -> Option<Change> {
        match kind {
            "client" => Some(Change::Client {
                client_id: subject.to_owned(),
                not_before,
                expires_at,
            }),
            "token" => Some(Change::Token {
                jti: subject.to_owned(),
                expires_at,
            }),
            "signing_keys" => Some(Change::SigningKeys),
            "secrets" => Some(Change::Secrets {
                client_id: subject.to_owned(),
            }),
            _ => None,
        }
    }
}

#[derive(Default)]
struct Snapshot {
    clients: HashMap<String, (i64, i64)>,
    tokens: HashMap<String, i64>,
}

#[derive(Default)]
pub struct Revocations {
    snapshot: ArcSwap<Snapshot>,
}

impl Revocations {
    /// Whether a token with these claims was revoked after it was issued.
    pub fn is_revoked(&self, client_id: &str, jti: &str, iat: i64) -> bool {
        let snapshot = self.snapshot.load();
        if let Some(&(not_before, _)) = snapshot.clients.get(client_id) {
            if iat < not_before {
                return true;
            }
        }
        snapshot.tokens.contains_key(jti)
    }

    /// Applies changes and forgets entries that expired before `now`. Returns whether any
    /// change asks for the signing keys to be reloaded.
    pub fn apply(&self, changes: &[Change], now: i64) -> bool {
        let mut reload_keys = false;
        self.snapshot.rcu(|current| {
            reload_keys = false;
            let mut next = Snapshot {
                clients: current
                    .clients
                    .iter()
                    .filter(|(_, (_, exp))| *exp > now)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
                tokens: current
                    .tokens
                    .iter()
                    .filter(|(_, exp)| **exp > now)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect(),
            };
            for change in changes {
                match change {
                    Change::Client {
                        client_id,
                        not_before,
                        expires_at,
                    } if *expires_at > now => {
                        let entry = next
                            .clients
                            .entry(client_id.clone())
                            .or_insert((*not_before, *expires_at));
                        entry.0 = entry.0.max(*not_before);
                        entry.1 = entry.1.max(*expires_at);
                    }
                    Change::Token { jti, expires_at } if *expires_at > now => {
                        next.tokens.insert(jti.clone(), *expires_at);
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
        snapshot.clients.len() + snapshot.tokens.len()
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
    fn expired_entries_are_ignored_and_key_reloads_reported() {
        let r = Revocations::default();
        assert!(!r.apply(&[client("a", 100, 200)], 300));
        assert!(r.is_empty());
        assert!(r.apply(&[Change::SigningKeys], 0));
    }
}
