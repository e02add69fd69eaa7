//! Storage: the pool, migrations, and one module of plain query functions per aggregate.
//! Query functions are synchronous and take `&mut DbConnection`, so they compose inside
//! transactions; handlers reach them through [`run`], off the async workers.

pub mod api_keys;
pub mod audit;
pub mod changes;
mod connection;
pub mod invitations;
pub mod key_lists;
pub mod login_failures;
pub mod organizations;
pub mod refresh_tokens;
pub mod reveals;
pub mod schedule;
pub mod schema;
pub mod sessions;
pub mod signing_keys;
pub mod usage;
pub mod users;
pub mod webhooks;

use diesel::RunQueryDsl;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use connection::{DbConnection, DbPool, MultiBackend, connect};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Serialises start-up work (migrations, first signing keys) across instances sharing one
/// PostgreSQL database; SQLite's single writer needs no help.
const BOOTSTRAP_LOCK: i64 = 0x6b65_7967_6174_6501;

/// Runs `work` while holding the cluster-wide bootstrap lock.
pub fn with_bootstrap_lock<T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let postgres = matches!(conn, DbConnection::Postgres(_));
    if postgres {
        diesel::sql_query(format!("SELECT pg_advisory_lock({BOOTSTRAP_LOCK})")).execute(conn)?;
    }
    let result = work(conn);
    if postgres {
        diesel::sql_query(format!("SELECT pg_advisory_unlock({BOOTSTRAP_LOCK})")).execute(conn)?;
    }
    result
}

/// Applies every pending migration of the connection's backend; returns how many ran.
pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<usize> {
    run_migrations_telling(conn, &mut |_| {})
}

/// A migration about to run: its place among the pending ones, and its name.
pub struct MigrationStep<'a> {
    pub index: usize,
    pub total: usize,
    pub name: &'a str,
}

/// [`run_migrations`], telling `before_each` which one runs next (for a progress bar: one
/// migration on a large database can take minutes).
pub fn run_migrations_telling(
    conn: &mut DbConnection,
    before_each: &mut dyn FnMut(MigrationStep<'_>),
) -> anyhow::Result<usize> {
    let applied = match conn {
        DbConnection::Sqlite(c) => apply_each(c, SQLITE_MIGRATIONS, before_each),
        DbConnection::Postgres(c) => apply_each(c, POSTGRES_MIGRATIONS, before_each),
    };
    applied.map_err(|e| anyhow::anyhow!("migration failed: {e}"))
}

fn apply_each<B: diesel::backend::Backend>(
    conn: &mut impl MigrationHarness<B>,
    source: EmbeddedMigrations,
    before_each: &mut dyn FnMut(MigrationStep<'_>),
) -> diesel::migration::Result<usize> {
    let pending = conn.pending_migrations(source)?;
    let total = pending.len();
    for (index, migration) in pending.iter().enumerate() {
        let name = migration.name().to_string();
        before_each(MigrationStep {
            index,
            total,
            name: &name,
        });
        conn.run_migration(migration)?;
    }
    Ok(total)
}

/// How many of this binary's migrations the database has not run (readiness: an instance
/// older or newer than its database's schema should not serve).
pub fn pending_migrations(conn: &mut DbConnection) -> anyhow::Result<usize> {
    let pending = match conn {
        DbConnection::Sqlite(c) => c.pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConnection::Postgres(c) => c.pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
    };
    pending.map_err(|e| anyhow::anyhow!("reading the applied migrations: {e}"))
}

/// A write transaction. On SQLite it begins IMMEDIATE, taking the write lock (and waiting for
/// it under `busy_timeout`) before its first read: a deferred transaction that reads, then
/// writes, can fail at once with SQLITE_BUSY when another writer went first. `work` must not
/// open a transaction itself.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::Connection;
    use diesel::connection::SimpleConnection;

    if matches!(conn, DbConnection::Postgres(_)) {
        return conn.transaction(work);
    }
    /// Rolls back unless committed, also when `work` panics.
    struct Open<'a>(&'a mut DbConnection, bool);
    impl Drop for Open<'_> {
        fn drop(&mut self) {
            if !self.1 {
                let _ = self.0.batch_execute("ROLLBACK");
            }
        }
    }
    conn.batch_execute("BEGIN IMMEDIATE")?;
    let mut open = Open(conn, false);
    let value = work(open.0)?;
    open.0.batch_execute("COMMIT")?;
    open.1 = true;
    Ok(value)
}

/// Whether a query failed because the database is out of reach or out of space (a lost
/// connection, a server shutting down, a full disk), not because of the query: the caller
/// is told to retry (`503`), and the pool replaces a broken connection.
pub fn unavailable_because(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    /// What PostgreSQL and SQLite say when the server or the disk, not the query, failed.
    const GONE: [&str; 8] = [
        "database or disk is full",
        "disk i/o error",
        "no space left on device",
        "could not extend file",
        "server closed the connection",
        "terminating connection",
        "no connection to the server",
        "could not receive data",
    ];
    match err {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | Error::BrokenTransactionManager => true,
        Error::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            GONE.iter().any(|gone| message.contains(gone))
        }
        Error::RollbackErrorOnCommit { commit_error, .. } => unavailable_because(commit_error),
        _ => false,
    }
}

/// Why [`run`] could not run its work.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No connection within the pool's timeout.
    #[error("the database is unavailable")]
    Unavailable(#[source] diesel::r2d2::PoolError),
    /// The blocking task failed (it panicked, or the runtime is shutting down).
    #[error("the database task failed")]
    Task(#[source] actix_web::rt::task::JoinError),
}

/// Runs a query function on a pooled connection on a blocking thread, off the async workers.
pub async fn run<T, E, F>(pool: &DbPool, work: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<RunError> + Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
{
    let pool = pool.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut conn = pool.get().map_err(RunError::Unavailable)?;
        work(&mut conn)
    })
    .await
    .map_err(RunError::Task)?
}
