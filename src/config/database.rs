//! Where the data lives: a SQLite file or a PostgreSQL server, parsed from `database.url`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The backend and its address, chosen explicitly from the URL's scheme (never guessed).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseTarget {
    /// `postgres://` and `postgresql://` URLs select PostgreSQL; `sqlite://PATH`, `sqlite:PATH`
    /// or a bare path select SQLite; empty selects `keygate.db` in the user's data directory.
    pub fn parse(url: &str) -> anyhow::Result<DatabaseTarget> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(url.to_owned()));
        }
        if url.is_empty() {
            return Ok(DatabaseTarget::Sqlite(data_directory().join("keygate.db")));
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

    /// Whether the database is there already (a SQLite file is made on first use).
    pub fn exists(&self) -> bool {
        match self {
            DatabaseTarget::Sqlite(path) => path.is_file(),
            DatabaseTarget::Postgres(_) => true,
        }
    }
}

/// Where keygate keeps its files by default: `keygate` in the user's data directory
/// (`$XDG_DATA_HOME` or `~/.local/share` on Linux), or `./data` where there is none.
pub fn data_directory() -> PathBuf {
    dirs::data_dir()
        .map(|dir| dir.join("keygate"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

impl FromStr for DatabaseTarget {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<DatabaseTarget> {
        DatabaseTarget::parse(s)
    }
}

impl TryFrom<String> for DatabaseTarget {
    type Error = anyhow::Error;

    fn try_from(s: String) -> anyhow::Result<DatabaseTarget> {
        DatabaseTarget::parse(&s)
    }
}

/// The target without credentials, for log lines and errors.
impl fmt::Display for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseTarget::Sqlite(path) => write!(f, "SQLite at {}", path.display()),
            DatabaseTarget::Postgres(url) => {
                let url = url.split('?').next().unwrap_or(url);
                let host = url.rsplit('@').next().unwrap_or(url);
                let host = host.split_once("://").map(|(_, rest)| rest).unwrap_or(host);
                write!(f, "PostgreSQL at {host}")
            }
        }
    }
}

/// The URL may carry a password: `Debug` shows where the database is, not how to log in.
impl fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseTarget({self})")
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
        assert_eq!(
            DatabaseTarget::parse("").unwrap(),
            DatabaseTarget::Sqlite(data_directory().join("keygate.db"))
        );
    }

    #[test]
    fn descriptions_drop_credentials() {
        let url = "postgres://user:pa55@db.internal:5432/keygate?password=pw2";
        let target = DatabaseTarget::parse(url).unwrap();
        for shown in [target.to_string(), format!("{target:?}")] {
            assert!(!shown.contains("pa55") && !shown.contains("pw2"), "{shown}");
            assert!(shown.contains("db.internal:5432/keygate"));
        }
    }
}
