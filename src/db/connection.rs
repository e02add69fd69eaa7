//! The database connection: SQLite or PostgreSQL, chosen explicitly from the URL, behind one
//! diesel `MultiConnection` so every query is written once.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::config::{DatabaseSettings, DatabaseTarget};

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = r2d2::Pool<Manager>;

/// An r2d2 manager that opens the backend the URL names (never guesses) and prepares each
/// SQLite connection (WAL, foreign keys, a busy timeout instead of "database is locked").
#[derive(Debug)]
pub struct Manager {
    target: DatabaseTarget,
    /// libpq's `connect_timeout`: a database host that does not answer costs this long,
    /// not the operating system's TCP timeout (minutes).
    connect_timeout_seconds: u64,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.target {
            DatabaseTarget::Postgres(url) => {
                let url = with_connect_timeout(url, self.connect_timeout_seconds);
                let conn = PgConnection::establish(&url).map_err(r2d2::Error::ConnectionError)?;
                Ok(DbConnection::Postgres(conn))
            }
            DatabaseTarget::Sqlite(path) => {
                let url = path.to_string_lossy();
                let mut conn =
                    SqliteConnection::establish(&url).map_err(r2d2::Error::ConnectionError)?;
                // WAL is a property of the file, set once by `connect`.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; \
                     PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// Opens a pool, creating the SQLite file's directory on first use.
pub fn connect(settings: &DatabaseSettings) -> anyhow::Result<DbPool> {
    let target = &settings.url;
    if let DatabaseTarget::Sqlite(path) = target {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // Switch the file to WAL (readers never wait for the writer) through one connection
        // before the pool opens several: switching takes an exclusive lock.
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())
            .map_err(|e| anyhow::anyhow!("cannot open {target}: {e}"))?;
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    }
    let pool = r2d2::Pool::builder()
        // One clear error when the database cannot be reached, not one line per attempt.
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .max_size(settings.pool_size)
        .connection_timeout(Duration::from_secs(settings.connect_timeout_seconds))
        .build(Manager {
            target: target.clone(),
            connect_timeout_seconds: settings.connect_timeout_seconds,
        })
        .map_err(|e| anyhow::anyhow!("cannot open the database ({target}): {e}"))?;
    Ok(pool)
}

/// `url` with libpq's `connect_timeout` parameter, unless it sets one itself.
fn with_connect_timeout(url: &str, seconds: u64) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={}", seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::with_connect_timeout;

    #[test]
    fn postgres_urls_get_a_connect_timeout_unless_they_set_one() {
        assert_eq!(
            with_connect_timeout("postgres://db/keygate", 5),
            "postgres://db/keygate?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://db/keygate?sslmode=require", 3),
            "postgres://db/keygate?sslmode=require&connect_timeout=3"
        );
        assert_eq!(
            with_connect_timeout("postgres://db/k?connect_timeout=9", 3),
            "postgres://db/k?connect_timeout=9"
        );
    }
}
