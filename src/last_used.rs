//! `last_used_at`, written behind: issuing a token notes the time in memory; a background
//! task writes the notes in one transaction every flush interval, and once more at shutdown.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::api_keys;

#[derive(Default)]
pub struct LastUsed {
    pending: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl LastUsed {
    pub fn touch(&self, client_id: &str, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().expect("last-used lock");
        match pending.get_mut(client_id) {
            Some(seen) => *seen = (*seen).max(at),
            None => {
                pending.insert(client_id.to_owned(), at);
            }
        }
    }

    /// Writes what accumulated; on failure, puts it back for the next flush.
    pub fn flush(&self, conn: &mut DbConnection) -> QueryResult<usize> {
        let batch = std::mem::take(&mut *self.pending.lock().expect("last-used lock"));
        if batch.is_empty() {
            return Ok(0);
        }
        let result = crate::db::write_transaction(conn, |conn| {
            for (client_id, at) in &batch {
                let at = at.naive_utc();
                diesel::update(
                    api_keys::table
                        .filter(api_keys::client_id.eq(client_id))
                        .filter(
                            api_keys::last_used_at
                                .is_null()
                                .or(api_keys::last_used_at.lt(at)),
                        ),
                )
                .set(api_keys::last_used_at.eq(at))
                .execute(conn)?;
            }
            Ok(batch.len())
        });
        if result.is_err() {
            for (client_id, at) in batch {
                self.touch(&client_id, at);
            }
        }
        result
    }

    pub fn pending(&self) -> usize {
        self.pending.lock().expect("last-used lock").len()
    }
}
