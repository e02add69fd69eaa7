//! Pages of API keys: filtered, ordered, by offset or keyset cursor, fenced by the caller's
//! reach (its organization, its own keys without `api_keys:manage`, its environment).
//!
//! The `count` of a list is linear in the keys that match, so a list over a very large
//! organization would cost far more than its page: once a count is large (10 000 or more),
//! it is reused for up to five seconds, and such lists report a count at most that stale.
//! Smaller counts are always exact.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use quick_cache::sync::Cache;

use super::api_keys::KeyRecord;
use super::policy::{self, Listed};
use super::{Caller, Error, Service};
use crate::db::DbConnection;
use crate::db::key_lists::{self, KeyCursor, KeyOrder, KeySearch};
use crate::domain::{Environment, KeyStatus, ManagementPermission, ValidationError};

/// A cursor as front ends pass it around: opaque, URL-safe.
pub fn encode_cursor(cursor: &KeyCursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).expect("a cursor serialises"))
}

/// A cursor a list returned; anything else is refused, naming the `cursor` field.
pub fn decode_cursor(text: &str) -> Result<KeyCursor, ValidationError> {
    let refuse = || ValidationError::new("cursor", "is not a cursor this list returned");
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| refuse())?;
    serde_json::from_slice(&bytes).map_err(|_| refuse())
}

/// What a list asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyListQuery {
    pub environments: Vec<Environment>,
    pub statuses: Vec<KeyStatus>,
    pub order: KeyOrder,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
    pub cursor: Option<KeyCursor>,
    /// Only the caller's own keys, even for a holder of `api_keys:manage`.
    pub only_own: bool,
}

/// One page, how many keys match in all, and where the next page starts (when this one is
/// full).
pub struct KeyPage {
    pub keys: Vec<KeyRecord>,
    pub count: i64,
    pub next_cursor: Option<KeyCursor>,
}

/// A page of the keys the caller may see.
pub async fn list(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    query: KeyListQuery,
) -> Result<KeyPage, Error> {
    policy::require(caller, ManagementPermission::ApiKeysRead)?;
    if !policy::reaches(caller, organization_id) {
        return Err(Error::NotFound);
    }
    let nothing = || KeyPage {
        keys: Vec::new(),
        count: 0,
        next_cursor: None,
    };
    let created_by = match policy::listed_keys(caller) {
        Listed::Every if query.only_own => match caller.owner_user_id {
            Some(owner) => Some(owner),
            None => return Ok(nothing()),
        },
        Listed::Every => None,
        Listed::OwnedBy(owner) => Some(owner),
        Listed::Nothing => return Ok(nothing()),
    };
    let mut environments = query.environments;
    if let Some(fence) = caller.fence() {
        if !environments.is_empty() && !environments.contains(&fence) {
            return Ok(nothing());
        }
        environments = vec![fence];
    }
    let search = KeySearch {
        organization_id,
        created_by,
        environments,
        statuses: query.statuses,
        order: query.order,
        descending: query.descending,
        limit: query.limit,
        offset: query.offset,
        after: query.cursor,
    };
    let counts = service.key_counts.clone();
    service
        .db(move |conn| {
            let keys = key_lists::page(conn, &search)?;
            let count = counts.count(conn, &search)?;
            let next_cursor = keys
                .last()
                .filter(|_| keys.len() as i64 == search.limit)
                .map(|(last, _)| KeyCursor::after(last, search.order, search.descending));
            Ok(KeyPage {
                keys: keys
                    .into_iter()
                    .map(|(key, created_by)| KeyRecord { key, created_by })
                    .collect(),
                count,
                next_cursor,
            })
        })
        .await
}

const LARGE: i64 = 10_000;
const REUSE_FOR: Duration = Duration::from_secs(5);

/// What a count depends on: the organization, the owner filter and the filters.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CountKey {
    organization_id: i64,
    created_by: Option<i64>,
    environments: Vec<Environment>,
    statuses: Vec<KeyStatus>,
}

/// Large counts, reused for a few seconds. Cloning shares the cache.
#[derive(Clone)]
pub struct ListCounts {
    large: std::sync::Arc<Cache<CountKey, (i64, Instant)>>,
}

impl Default for ListCounts {
    fn default() -> Self {
        ListCounts {
            large: std::sync::Arc::new(Cache::new(1024)),
        }
    }
}

impl ListCounts {
    pub fn count(&self, conn: &mut DbConnection, search: &KeySearch) -> diesel::QueryResult<i64> {
        let key = CountKey {
            organization_id: search.organization_id,
            created_by: search.created_by,
            environments: search.environments.clone(),
            statuses: search.statuses.clone(),
        };
        if let Some((count, at)) = self.large.get(&key)
            && at.elapsed() < REUSE_FOR
        {
            return Ok(count);
        }
        let count = key_lists::count(conn, search)?;
        if count >= LARGE {
            self.large.insert(key, (count, Instant::now()));
        }
        Ok(count)
    }
}
