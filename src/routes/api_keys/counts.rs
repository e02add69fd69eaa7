//! The `count` of a key list. Counting is linear in the keys that match, so a list over a
//! very large organization would cost far more than its page: once a count is large (10 000
//! or more), it is reused for up to five seconds, and such lists report a count at most that
//! stale. Smaller counts are always exact.

use std::time::{Duration, Instant};

use quick_cache::sync::Cache;

use crate::db::DbConnection;
use crate::db::key_lists::{self, KeySearch};

const LARGE: i64 = 10_000;
const REUSE_FOR: Duration = Duration::from_secs(5);

/// What a count depends on: the organization, the owner filter and the filters.
#[derive(Clone, PartialEq, Eq, Hash)]
struct CountKey {
    organization_id: i64,
    created_by: Option<Option<i64>>,
    environments: Vec<String>,
    statuses: Vec<String>,
}

pub struct ListCounts {
    large: Cache<CountKey, (i64, Instant)>,
}

impl Default for ListCounts {
    fn default() -> Self {
        ListCounts {
            large: Cache::new(1024),
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
        if let Some((count, at)) = self.large.get(&key) {
            if at.elapsed() < REUSE_FOR {
                return Ok(count);
            }
        }
        let count = key_lists::count(conn, search)?;
        if count >= LARGE {
            self.large.insert(key, (count, Instant::now()));
        }
        Ok(count)
    }
}
