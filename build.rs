//! Rebuilds when a migration is added, and marks the PostgreSQL variants of the black-box tests as ignored (rather than silently
//! passing) unless KEYGATE_TEST_POSTGRES_URL names a server to run them against.

fn main() {
    // The migrations are embedded at compile time: a new one must rebuild the crate.
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed=KEYGATE_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(keygate_postgres_tests)");
    if std::env::var_os("KEYGATE_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=keygate_postgres_tests");
    }
}
