//! `keygate api-keys create|list|show|revoke|rotate`: the same application layer as the HTTP
//! API, acting as the deployment's operator.

use std::process::ExitCode;

use chrono::{NaiveDateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{block_on, open_service, organization_named};
use crate::config::Settings;
use crate::db::api_keys::ApiKey;
use crate::db::key_lists::KeyOrder;
use crate::db::organizations::DEFAULT_ORGANIZATION;
use crate::domain::{
    Email, Environment, Expiry, GracePeriod, KeyName, KeyStatus, Metadata, ScopeSet, UsageWindow,
};
use crate::service::api_keys::{self, KeyOwner, KeyRecord, NewKey, ScopeChoice};
use crate::service::key_lists::{self, KeyListQuery};
use crate::service::usage::{self, UsageReport};
use crate::service::{Caller, Error, Service};

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create an API key and print its client_id and client_secret (shown only this once)
    Create(CreateArgs),
    /// List an organization's API keys
    List(ListArgs),
    /// Show one API key
    Show {
        /// The key's client_id (kgc_…)
        client_id: String,
        /// Print JSON instead of a table or text
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key at once; its tokens stop working everywhere
    Revoke {
        /// The key's client_id (kgc_…)
        client_id: String,
        /// Print JSON instead of a table or text
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret (printed once); the old one keeps working for the grace period
    Rotate {
        /// The key's client_id (kgc_…)
        client_id: String,
        /// How long the old secret keeps working: 0, 30m, 24h, 7d (at most 7 days)
        #[arg(long, default_value = "0", value_parser = parse_grace)]
        grace: GracePeriod,
        /// Print JSON instead of a table or text
        #[arg(long, conflicts_with = "shell")]
        json: bool,
        /// Print `export CLIENT_ID=...` and `export CLIENT_SECRET=...`
        #[arg(long)]
        shell: bool,
    },
    /// Create many keys from a JSON Lines file (one key per line); prints each key's
    /// client_id and client_secret as one JSON line, in the file's order
    Import(ImportArgs),
    /// Show a key's usage history: tokens issued, refused, direct calls, introspections
    Usage {
        /// The key's client_id (kgc_…)
        client_id: String,
        /// Start: an RFC 3339 time or a date (default: 24 hours, or 30 days by day, ago)
        #[arg(long)]
        from: Option<String>,
        /// End: an RFC 3339 time or a date (default: now)
        #[arg(long)]
        to: Option<String>,
        /// hour or day
        #[arg(long, default_value = "hour")]
        granularity: String,
        /// Print the report as the API's JSON
        #[arg(long)]
        json: bool,
    },
}

impl ApiKeysCommand {
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            ApiKeysCommand::List(_) | ApiKeysCommand::Show { .. } | ApiKeysCommand::Usage { .. }
        )
    }
}

/// `24h`, `30m`, `7d`, `0`: from none to 7 days.
fn parse_grace(text: &str) -> Result<GracePeriod, String> {
    GracePeriod::parse_human(text).map_err(|e| e.message)
}

/// The filters and orders of `GET /v1/api-keys`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The organization whose keys to list
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ORGANIZATION)]
    org: String,
    /// Only keys of this environment (repeatable)
    #[arg(long = "env", value_name = "ENV")]
    environments: Vec<Environment>,
    /// Only keys with this status: enabled, disabled, revoked (repeatable)
    #[arg(long = "status", value_name = "STATUS")]
    statuses: Vec<KeyStatus>,
    /// name, key_prefix, environment, scopes, status, created_at, last_used_at, expires_at
    #[arg(long, value_name = "COLUMN", default_value = "created_at", value_parser = parse_order)]
    order_by: KeyOrder,
    /// Ascending instead of the default (newest first for created_at, else ascending)
    #[arg(long, conflicts_with = "desc")]
    asc: bool,
    /// Descending
    #[arg(long)]
    desc: bool,
    /// Print JSON instead of a table or text
    #[arg(long)]
    json: bool,
}

fn parse_order(text: &str) -> Result<KeyOrder, String> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| {
        "one of name, key_prefix, environment, scopes, status, created_at, last_used_at, \
         expires_at"
            .to_owned()
    })
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file: one JSON object per line, `{"name", "scopes", "environment"?,
    /// "expires_in_days"?, "expires_on"?, "metadata"?, "owner"?, "disabled"?, "token_only"?,
    /// "refresh_tokens"?}`; `-` reads standard input
    pub(super) file: std::path::PathBuf,
    /// The organization the keys belong to
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ORGANIZATION)]
    pub(super) org: String,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name that says where the key is used
    #[arg(long)]
    name: String,
    /// Comma-separated scopes from the configured catalog
    #[arg(long, value_delimiter = ',', required = true)]
    scopes: Vec<String>,
    /// live or test
    #[arg(long = "env", default_value_t = Environment::Live)]
    environment: Environment,
    /// Expire at 00:00 UTC on this date (YYYY-MM-DD)
    #[arg(long, conflicts_with = "expires_in_days")]
    expires_on: Option<String>,
    /// Expire this many days from now
    #[arg(long)]
    expires_in_days: Option<u64>,
    /// The organization the key belongs to
    #[arg(long, value_name = "NAME", default_value = DEFAULT_ORGANIZATION)]
    org: String,
    /// The user the key acts for (at most their permissions) [default: the organization's
    /// first administrator; none while the organization has no users]
    #[arg(long, value_name = "EMAIL")]
    owner: Option<String>,
    /// Create the key disabled: it gets no token until enabled
    #[arg(long)]
    disabled: bool,
    /// Only ever trade the key for tokens: never accept it as a bearer credential itself
    #[arg(long)]
    token_only: bool,
    /// Hand out a single-use refresh token beside each access token
    #[arg(long)]
    refresh_tokens: bool,
    /// Print one JSON object
    #[arg(long, conflicts_with = "shell")]
    json: bool,
    /// Print `export CLIENT_ID=...` and `export CLIENT_SECRET=...` for `eval` in a shell
    #[arg(long)]
    shell: bool,
}

pub fn run(command: ApiKeysCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let (service, caller) = open_service(settings)?;
    let done = block_on(async {
        match command {
            ApiKeysCommand::Create(args) => create(args, &service, &caller).await,
            ApiKeysCommand::List(args) => list(args, &service, &caller).await,
            ApiKeysCommand::Import(args) => super::import::run(args, &service, &caller).await,
            ApiKeysCommand::Show { client_id, json } => {
                let record = api_keys::get(&service, &caller, &client_id).await?;
                show(&record, json)
            }
            ApiKeysCommand::Revoke { client_id, json } => {
                let record = api_keys::revoke(&service, &caller, &client_id).await?;
                if json {
                    println!("{}", key_json(&record.key));
                } else {
                    println!("revoked {}", record.key.client_id);
                }
                Ok(())
            }
            ApiKeysCommand::Rotate {
                client_id,
                grace,
                json,
                shell,
            } => rotate(&client_id, grace, json, shell, &service, &caller).await,
            ApiKeysCommand::Usage {
                client_id,
                from,
                to,
                granularity,
                json,
            } => {
                let window = UsageWindow::parse(
                    from.as_deref(),
                    to.as_deref(),
                    Some(&granularity),
                    Utc::now(),
                )?;
                let report = usage::of_key(&service, &caller, &client_id, window).await?;
                print_usage(&client_id, &report, json);
                Ok(())
            }
        }
    });
    match done {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Error::NotFound) => {
            eprintln!("error: no API key by that client_id");
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(err.into()),
    }
}

async fn create(args: CreateArgs, service: &Service, caller: &Caller) -> Result<(), Error> {
    let now = Utc::now();
    let scopes = ScopeSet::from_items(
        args.scopes
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty()),
    )?;
    let organization = organization_named(service, &args.org).await?;
    let new = NewKey {
        organization_id: organization.id,
        name: KeyName::parse(&args.name)?,
        environment: args.environment,
        scopes: ScopeChoice::Listed(scopes),
        expiry: match (&args.expires_on, args.expires_in_days) {
            (Some(date), _) => Expiry::parse_date(date, now)?,
            (None, Some(days)) => Expiry::in_days(days, now)?,
            (None, None) => Expiry::never(),
        },
        metadata: Metadata::default(),
        owner: match &args.owner {
            Some(email) => KeyOwner::User(Email::parse(email)?),
            None => KeyOwner::FirstAdministrator,
        },
        enabled: !args.disabled,
        token_only: args.token_only,
        refresh_tokens: args.refresh_tokens,
    };
    let created = api_keys::create(service, caller, new).await?;
    let key = &created.record.key;
    if args.json {
        println!("{}", created_json(&created));
    } else if args.shell {
        // Both values are base-62 with `_`: nothing a shell would interpret.
        println!("export CLIENT_ID={}", key.client_id);
        println!("export CLIENT_SECRET={}", created.secret.expose());
    } else {
        eprintln!(
            "Created API key {:?} ({}{}) with scopes: {}",
            key.name,
            key.environment,
            if args.disabled { ", disabled" } else { "" },
            key.scopes
        );
        println!("client_id:     {}", key.client_id);
        println!("client_secret: {}", created.secret.expose());
        eprintln!(
            "The secret is shown only this once: store it now (a secret manager, not a repository)."
        );
    }
    Ok(())
}

/// A new key as `create --json` and `import` print it: the secret, this once.
pub(super) fn created_json(created: &api_keys::CreatedKey) -> serde_json::Value {
    let key = &created.record.key;
    json!({
        "client_id": key.client_id,
        "client_secret": created.secret.expose(),
        "name": key.name,
        "environment": key.environment,
        "status": key.status,
        "token_only": key.token_only,
        "refresh_tokens": key.refresh_tokens,
        "scopes": ScopeSet::from_stored(&key.scopes),
        "key_prefix": created.secret.prefix(),
        "expires_at": key.expires_at.map(|t| t.and_utc()),
    })
}

/// Every key of the organization that the filters keep, in their order, read page by page.
async fn list(args: ListArgs, service: &Service, caller: &Caller) -> Result<(), Error> {
    let organization = organization_named(service, &args.org).await?;
    let descending = args.desc || (!args.asc && args.order_by == KeyOrder::CreatedAt);
    let as_json = args.json;
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let query = KeyListQuery {
            environments: args.environments.clone(),
            statuses: args.statuses.clone(),
            order: args.order_by,
            descending,
            limit: 100,
            offset: 0,
            cursor,
            only_own: false,
        };
        let page = key_lists::list(service, caller, organization.id, query).await?;
        keys.extend(page.keys.into_iter().map(|r| r.key));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    if as_json {
        let rows: Vec<_> = keys.iter().map(key_json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(Error::internal)?
        );
        return Ok(());
    }
    println!(
        "{:<25} {:<24} {:<5} {:<9} {:<17} {:<17} SCOPES",
        "CLIENT_ID", "NAME", "ENV", "STATUS", "CREATED", "EXPIRES"
    );
    for key in &keys {
        println!(
            "{:<25} {:<24} {:<5} {:<9} {:<17} {:<17} {}",
            key.client_id,
            truncate(&key.name, 24),
            key.environment.as_str(),
            key.status.as_str(),
            minute(key.created_at),
            key.expires_at.map(minute).unwrap_or_else(|| "never".into()),
            key.scopes,
        );
    }
    Ok(())
}

fn print_usage(client_id: &str, report: &UsageReport, as_json: bool) {
    if as_json {
        let view = crate::routes::usage::ReportView::of(report, Some(client_id.to_owned()));
        println!("{}", json!(view));
        return;
    }
    println!(
        "{:<17} {:>8} {:>8} {:>8} {:>14}",
        "start (UTC)", "tokens", "refused", "direct", "introspections"
    );
    for bucket in &report.buckets {
        let c = &bucket.counts;
        println!(
            "{:<17} {:>8} {:>8} {:>8} {:>14}",
            bucket.start.format("%Y-%m-%d %H:%M"),
            c.tokens_issued,
            c.refused_total(),
            c.direct_calls,
            c.introspections
        );
    }
    let t = &report.totals;
    println!(
        "{:<17} {:>8} {:>8} {:>8} {:>14}",
        "total",
        t.tokens_issued,
        t.refused_total(),
        t.direct_calls,
        t.introspections
    );
    for (reason, n) in &t.refused {
        println!("  refused ({reason}): {n}");
    }
}

fn show(record: &KeyRecord, as_json: bool) -> Result<(), Error> {
    let shown = key_json(&record.key);
    if as_json {
        println!("{shown}");
    } else {
        for (field, value) in shown.as_object().expect("an object") {
            println!(
                "{field:<13} {}",
                value
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| value.to_string())
            );
        }
    }
    Ok(())
}

async fn rotate(
    client_id: &str,
    grace: GracePeriod,
    as_json: bool,
    shell: bool,
    service: &Service,
    caller: &Caller,
) -> Result<(), Error> {
    let rotated = api_keys::rotate(service, caller, client_id, grace).await?;
    let (key, secret) = (&rotated.record.key, rotated.secret.expose());
    if as_json {
        println!(
            "{}",
            json!({
                "client_id": key.client_id,
                "client_secret": secret,
                "key_prefix": rotated.secret.prefix(),
                "previous_secret_expires_at": rotated.previous_valid_until,
            })
        );
    } else if shell {
        println!("export CLIENT_ID={}", key.client_id);
        println!("export CLIENT_SECRET={secret}");
    } else {
        println!("client_id:     {}", key.client_id);
        println!("client_secret: {secret}");
        match rotated.previous_valid_until {
            Some(until) => eprintln!(
                "The previous secret works until {}.",
                until.format("%Y-%m-%d %H:%M:%S UTC")
            ),
            None => eprintln!("The previous secret no longer works."),
        }
        eprintln!("The new secret is shown only this once.");
    }
    Ok(())
}

fn key_json(key: &ApiKey) -> serde_json::Value {
    json!({
        "client_id": key.client_id,
        "name": key.name,
        "environment": key.environment,
        "status": key.status,
        "scopes": ScopeSet::from_stored(&key.scopes),
        "token_only": key.token_only,
        "refresh_tokens": key.refresh_tokens,
        "created_at": key.created_at.and_utc(),
        "expires_at": key.expires_at.map(|t| t.and_utc()),
        "last_used_at": key.last_used_at.map(|t| t.and_utc()),
        "revoked_at": key.revoked_at.map(|t| t.and_utc()),
    })
}

fn minute(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}
