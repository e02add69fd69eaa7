//! Usage history, counted behind like `last_used_at`: every token issued, token request
//! refused, direct-key call and introspection adds one to its key's counter for the hour, in
//! memory; the write-behind task adds the counters to the stored ones in one transaction every
//! flush interval, and once more at shutdown. Counters of a client_id that names no key are
//! dropped when written.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use diesel::QueryResult;

use crate::db::{self, DbConnection};
use crate::domain::{Granularity, UsageMetric};

type Counter = (String, DateTime<Utc>, UsageMetric);

#[derive(Default)]
pub struct UsageCounters {
    pending: Mutex<HashMap<Counter, i64>>,
}

impl UsageCounters {
    /// Adds one to `client_id`'s `metric` for the hour of `at`.
    pub fn count(&self, client_id: &str, metric: UsageMetric, at: DateTime<Utc>) {
        let hour = Granularity::Hour.floor(at);
        let mut pending = self.pending.lock().expect("usage lock");
        *pending
            .entry((client_id.to_owned(), hour, metric))
            .or_insert(0) += 1;
    }

    /// Writes what accumulated; on failure, puts it back for the next flush.
    pub fn flush(&self, conn: &mut DbConnection) -> QueryResult<usize> {
        let batch = std::mem::take(&mut *self.pending.lock().expect("usage lock"));
        if batch.is_empty() {
            return Ok(0);
        }
        let result = db::write_transaction(conn, |conn| {
            for ((client_id, hour, metric), count) in &batch {
                db::usage::add(conn, client_id, hour.naive_utc(), &metric.name(), *count)?;
            }
            Ok(batch.len())
        });
        if result.is_err() {
            let mut pending = self.pending.lock().expect("usage lock");
            for (counter, count) in batch {
                *pending.entry(counter).or_insert(0) += count;
            }
        }
        result
    }

    pub fn pending(&self) -> usize {
        self.pending.lock().expect("usage lock").len()
    }
}
