//! The command line: `keygate` (serve), `serve`, `migrate`, `api-keys`, `signing-keys`.

mod api_keys;
mod import;
mod signing_keys;
#[cfg(feature = "client")]
mod token;
mod users;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Settings;
use crate::service::{Caller, Service};
use crate::startup::{Application, prepare_database};
use crate::tokens::{Keyring, TokenValidator, ValidationParams};

#[derive(Debug, Parser)]
#[command(
    name = "keygate",
    version,
    about = "OAuth 2.0 client-credentials token service"
)]
pub struct Cli {
    /// Directory holding default.toml and <profile>.toml [default: ./config]
    #[arg(long, global = true, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Configuration profile [default: $KEYGATE_PROFILE or development]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Database URL: a SQLite path or a postgres:// URL (overrides the configuration)
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default command)
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8080
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Apply pending database migrations and exit
    Migrate,
    /// Create, list and revoke API keys
    #[command(subcommand)]
    ApiKeys(api_keys::ApiKeysCommand),
    /// List and rotate token-signing keys
    #[command(subcommand)]
    SigningKeys(signing_keys::SigningKeysCommand),
    /// Create and list operators who log in to the console and own keys
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Create and list organizations (tenants)
    #[command(subcommand)]
    Organizations(users::OrganizationsCommand),
    /// Webhook endpoints for key events, and their deliveries
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Print an access token for scripts (as an app gets one: client credentials)
    #[cfg(feature = "client")]
    Token(token::TokenArgs),
}

pub fn run(cli: Cli) -> ExitCode {
    match execute(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut settings = Settings::load(cli.config.as_deref(), cli.profile.as_deref())?;
    if let Some(url) = cli.database {
        settings.database.url = url.parse()?;
    }
    let command = cli.command.unwrap_or(Command::Serve { bind: None });
    if command.uses_database() {
        let target = &settings.database.url;
        // Which database a command used, every time: a command run from another directory or
        // with other settings must not be mistaken for one on the server's.
        eprintln!("keygate: using {target}");
        if command.reads_only() && !target.exists() {
            anyhow::bail!(
                "there is no database yet ({target}), and this command only reads: start \
                 keygate (`cargo run --release`) or run `keygate migrate` first, or name the \
                 database with --database"
            );
        }
    }
    match command {
        Command::Serve { bind } => {
            if let Some(bind) = bind {
                settings.server.bind = bind;
            }
            serve(settings)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let target = settings.database.url.clone();
            let progress = ProgressBar::new(0).with_style(
                ProgressStyle::with_template(
                    "{spinner} migration {pos}/{len} {wide_msg} {elapsed}",
                )
                .expect("a valid template"),
            );
            let (_, applied) = crate::startup::prepare(&settings, None, &mut |step| {
                progress.set_length(step.total as u64);
                progress.set_position(step.index as u64 + 1);
                progress.set_message(step.name.to_owned());
                progress.enable_steady_tick(std::time::Duration::from_millis(200));
            })?;
            progress.finish_and_clear();
            match applied {
                0 => println!("{target} was up to date: no migration to apply"),
                n => println!("applied {n} migration(s): {target} is up to date"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ApiKeys(command) => api_keys::run(command, &settings),
        Command::SigningKeys(command) => signing_keys::run(command, &settings),
        Command::Users(command) => users::run_users(command, &settings),
        Command::Organizations(command) => users::run_organizations(command, &settings),
        Command::Webhooks(command) => webhooks::run(command, &settings),
        #[cfg(feature = "client")]
        Command::Token(args) => token::run(args, &settings),
    }
}

impl Command {
    /// Whether the command only reads (and so must never create a database).
    fn reads_only(&self) -> bool {
        match self {
            Command::ApiKeys(c) => c.reads_only(),
            Command::SigningKeys(c) => c.reads_only(),
            Command::Users(c) => matches!(c, users::UsersCommand::List { .. }),
            Command::Organizations(c) => matches!(c, users::OrganizationsCommand::List),
            Command::Webhooks(c) => c.reads_only(),
            Command::Serve { .. } | Command::Migrate => false,
            #[cfg(feature = "client")]
            Command::Token(_) => false,
        }
    }

    /// Whether the command works on the database (rather than serving, or asking a running
    /// keygate over HTTP).
    fn uses_database(&self) -> bool {
        match self {
            Command::Serve { .. } => false,
            #[cfg(feature = "client")]
            Command::Token(_) => false,
            _ => true,
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await?;
        Ok(())
    })
}

/// A pool for one CLI command: small, migrated.
fn open_database(settings: &Settings) -> anyhow::Result<crate::db::DbPool> {
    let mut settings = settings.clone();
    settings.database.pool_size = 2;
    prepare_database(&settings, None)
}

/// The application layer for one CLI command, and the CLI as its caller: every permission, in
/// every organization. It verifies no tokens, so its validator holds no keys.
fn open_service(settings: &Settings) -> anyhow::Result<(Service, Caller)> {
    let pool = open_database(settings)?;
    let tokens = &settings.tokens;
    let params = ValidationParams::new(tokens.issuer.clone(), tokens.audience.clone())
        .test_audience(tokens.test_audience.clone());
    let validator = TokenValidator::new(params, Keyring::default());
    let service = Service::new(
        settings.clone(),
        tokens.issuer.clone(),
        pool,
        validator,
        None,
    );
    let caller = Caller::cli(&service.catalog);
    Ok((service, caller))
}

/// The organization an operator named, or an error saying how to make it.
async fn organization_named(
    service: &Service,
    name: &str,
) -> Result<crate::db::organizations::Organization, crate::service::Error> {
    crate::service::organizations::find(service, name)
        .await
        .map_err(|err| match err {
            crate::service::Error::NotFound => crate::domain::ValidationError::new(
                "org",
                format!("no organization {name:?}; create it with `keygate organizations create`"),
            )
            .into(),
            other => other,
        })
}

/// Runs a command's async work (the application layer hashes on a bounded thread pool).
fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    actix_web::rt::System::new().block_on(work)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command says what it does, and every option and argument what it takes, in
    /// `--help`.
    #[test]
    fn every_command_and_argument_is_described() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in command.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_about().is_none() {
                    missing.push(format!("`{name}` has no description"));
                }
                for arg in sub.get_arguments() {
                    let id = arg.get_id().as_str();
                    if matches!(id, "help" | "version") || arg.is_global_set() {
                        continue;
                    }
                    if arg.get_help().is_none() && arg.get_long_help().is_none() {
                        missing.push(format!("`{name}` has no help for `{id}`"));
                    }
                }
                walk(sub, &name, missing);
            }
        }
        let mut command = super::Cli::command();
        command.build();
        let mut missing = Vec::new();
        walk(&command, "keygate", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }
}
