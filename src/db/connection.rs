//! The database connection: SQLite or PostgreSQL, chosen explicitly from the URL, behind one
//! diesel `MultiConnection` so every query is written once.

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::config::DatabaseSettings;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = r2d2::Pool<Manager>;

/// Where the data lives, parsed from `database.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseTarget {
    /// `postgres://` and `postgresql://` URLs select PostgreSQL; `sqlite://PATH`, `sqlite:PATH`
    /// or a bare path select SQLite.
    pub fn parse(url: &str) -> anyhow::Result<DatabaseTarget> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        anyhow::ensure!(!path.is_empty(), "database.url is empty");
        anyhow::ensure!(
            !path.contains("://"),
            "database.url must be a postgres:// URL or a path to a SQLite file"
        );
        Ok(DatabaseTarget::Sqlite(PathBuf::from(path)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseTarget::Postgres(_))
    }
}

/// An r2d2 manager that opens the backend the URL names (never guesses) and prepares each
/// SQLite connection (WAL, foreign keys, a busy timeout instead of "database is locked").
#[derive(Debug)]
pub struct Manager {
    target: DatabaseTarget,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.target {
            DatabaseTarget::Postgres(url) => {
                let conn = PgConnection::establish(url).map_err(r2d2::Error::ConnectionError)?;
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
    let target = DatabaseTarget::parse(&settings.url)?;
    if let DatabaseTarget::Sqlite(path) = &target {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // Switch the file to WAL (readers never wait for the writer) through one connection
        // before the pool opens several: switching takes an exclusive lock.
        let mut conn = SqliteConnection::establish(&path.to_string_lossy())
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", describe(&target)))?;
        conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")?;
    }
    let pool = r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .connection_timeout(Duration::from_secs(settings.connect_timeout_seconds))
        .build(Manager {
            target: target.clone(),
        })
        .map_err(|e| anyhow::anyhow!("cannot open the database ({}): {e}", describe(&target)))?;
    Ok(pool)
}

/// The target without credentials, for log lines and errors.
pub fn describe(target: &DatabaseTarget) -> String {
    match target {
        DatabaseTarget::Sqlite(path) => format!("SQLite at {}", path.display()),
        DatabaseTarget::Postgres(url) => {
            let url = url.split('?').next().unwrap_or(url);
            let host = url.rsplit('@').next().unwrap_or(url);
            let host = host.split_once("://").map(|(_, rest)| rest).unwrap_or(host);
            format!("PostgreSQL at {host}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_scheme_chooses_the_backend() {
        assert!(
            DatabaseTarget::parse("postgres://u@h/db")
                .unwrap()
                .is_postgres()
        );
        assert!(
            DatabaseTarget::parse("postgresql://u@h/db")
                .unwrap()
                .is_postgres()
        );
        for sqlite in [
            "data/keygate.db",
            "sqlite://data/k.db",
            "sqlite:k.db",
            "/tmp/k.db",
        ] {
            assert!(matches!(
                DatabaseTarget::parse(sqlite).unwrap(),
                DatabaseTarget::Sqlite(_)
            ));
        }
        assert!(DatabaseTarget::parse("mysql://h/db").is_err());
        assert!(DatabaseTarget::parse("").is_err());
    }

    #[test]
    fn descriptions_drop_credentials() {
        let url = "postgres://user:pa55@db.internal:5432/keygate?password=pw2";
        let shown = describe(&DatabaseTarget::parse(url).unwrap());
        assert!(!shown.contains("pa55") && !shown.contains("pw2"), "{shown}");
        assert!(shown.contains("db.internal:5432/keygate"));
    }
}
