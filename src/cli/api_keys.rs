//! `keygate api-keys create|list|revoke`.

use std::process::ExitCode;

use chrono::{NaiveDateTime, Utc};
use clap::{Args, Subcommand};
use serde_json::json;

use super::open_database;
use crate::config::Settings;
use crate::db::api_keys::ApiKey;
use crate::db::organizations::{self, DEFAULT_ORGANIZATION};
use crate::db::users;
use crate::domain::{Email, Environment, Expiry, KeyName, Metadata, ScopeCatalog, ScopeSet};
use crate::lifecycle::users::permissions_of;
use crate::lifecycle::{Actor, api_keys};

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create an API key and print its client_id and client_secret (shown only this once)
    Create(CreateArgs),
    /// List API keys
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one API key
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key at once; its tokens stop working everywhere
    Revoke {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new secret (printed once); the old one keeps working for the grace period
    Rotate {
        client_id: String,
        /// How long the old secret keeps working: 0, 30m, 24h, 7d (at most 7 days)
        #[arg(long, default_value = "0", value_parser = parse_grace)]
        grace: i64,
        #[arg(long, conflicts_with = "shell")]
        json: bool,
        /// Print `export CLIENT_ID=...` and `export CLIENT_SECRET=...`
        #[arg(long)]
        shell: bool,
    },
}

/// `24h`, `30m`, `7d`, `0`: seconds from 0 to 7 days.
fn parse_grace(text: &str) -> Result<i64, String> {
    let seconds = if text == "0" {
        0
    } else {
        humantime::parse_duration(text)
            .map_err(|e| format!("{e} (use 0, 30m, 24h or 7d)"))?
            .as_secs() as i64
    };
    if seconds > api_keys::MAX_GRACE_SECONDS {
        return Err("the grace period is at most 7 days".into());
    }
    Ok(seconds)
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
    #[arg(long = "env", default_value = "live")]
    environment: String,
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
    /// Print one JSON object
    #[arg(long, conflicts_with = "shell")]
    json: bool,
    /// Print `export CLIENT_ID=...` and `export CLIENT_SECRET=...` for `eval` in a shell
    #[arg(long)]
    shell: bool,
}

pub fn run(command: ApiKeysCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeysCommand::Create(args) => create(args, settings),
        ApiKeysCommand::List { json } => list(json, settings),
        ApiKeysCommand::Show { client_id, json } => show(&client_id, json, settings),
        ApiKeysCommand::Revoke { client_id, json } => revoke(&client_id, json, settings),
        ApiKeysCommand::Rotate {
            client_id,
            grace,
            json,
            shell,
        } => rotate(&client_id, grace, json, shell, settings),
    }
}

fn create(args: CreateArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let now = Utc::now();
    let name = KeyName::parse(&args.name)?;
    let environment: Environment = args.environment.parse()?;
    let scopes = ScopeSet::from_items(
        args.scopes
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty()),
    )?;
    anyhow::ensure!(!scopes.is_empty(), "--scopes needs at least one scope");
    ScopeCatalog::new(&settings.scopes.catalog)?.check(&scopes)?;
    let expiry = match (&args.expires_on, args.expires_in_days) {
        (Some(date), _) => Expiry::parse_date(date, now)?,
        (None, Some(days)) => Expiry::in_days(days, now)?,
        (None, None) => Expiry::never(),
    };

    let catalog = ScopeCatalog::new(&settings.scopes.catalog)?;
    let pool = open_database(settings)?;
    let mut conn = pool.get()?;
    let organization = organizations::find_by_name(&mut conn, &args.org)?
        .ok_or_else(|| anyhow::anyhow!("no organization {:?}", args.org))?;
    let owner = match &args.owner {
        Some(email) => {
            let email = Email::parse(email)?;
            let user = users::find_by_email(&mut conn, email.as_str())?
                .filter(|u| u.organization_id == organization.id)
                .ok_or_else(|| {
                    anyhow::anyhow!("no user {email} in organization {:?}", organization.name)
                })?;
            Some(user)
        }
        None => users::first_admin(&mut conn, organization.id)?,
    };
    if let Some(owner) = &owner {
        let held = permissions_of(owner, &organization, &catalog);
        if let Some(missing) = scopes.first_missing_from(&held) {
            anyhow::bail!(
                "the owner {} does not hold `{missing}`: a key can only be granted its owner's permissions",
                owner.email
            );
        }
    }
    let new = api_keys::NewKey {
        organization_id: organization.id,
        name,
        environment,
        scopes,
        expiry,
        metadata: Metadata::default(),
        created_by: owner.as_ref().map(|o| o.id),
    };
    let created = api_keys::create(
        &mut conn,
        &new,
        settings.secrets.bcrypt_cost,
        &Actor::cli(),
        now,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = &created.key;
    if args.json {
        println!(
            "{}",
            json!({
                "client_id": key.client_id,
                "client_secret": created.secret.expose(),
                "name": key.name,
                "environment": key.environment,
                "scopes": ScopeSet::from_stored(&key.scopes),
                "secret_prefix": created.secret.prefix(),
                "expires_at": key.expires_at.map(|t| t.and_utc()),
            })
        );
    } else if args.shell {
        // Both values are base-62 with `_`: nothing a shell would interpret.
        println!("export CLIENT_ID={}", key.client_id);
        println!("export CLIENT_SECRET={}", created.secret.expose());
    } else {
        eprintln!(
            "Created API key {:?} ({}) with scopes: {}",
            key.name, key.environment, key.scopes
        );
        println!("client_id:     {}", key.client_id);
        println!("client_secret: {}", created.secret.expose());
        eprintln!(
            "The secret is shown only this once: store it now (a secret manager, not a repository)."
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(as_json: bool, settings: &Settings) -> anyhow::Result<ExitCode> {
    let pool = open_database(settings)?;
    let mut conn = pool.get()?;
    let organization = organizations::find_by_name(&mut conn, DEFAULT_ORGANIZATION)?
        .ok_or_else(|| anyhow::anyhow!("the default organization is missing"))?;
    let keys = crate::db::api_keys::list(&mut conn, organization.id)?;
    if as_json {
        let rows: Vec<_> = keys.iter().map(key_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
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
            key.environment,
            key.status,
            minute(key.created_at),
            key.expires_at.map(minute).unwrap_or_else(|| "never".into()),
            key.scopes,
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(client_id: &str, as_json: bool, settings: &Settings) -> anyhow::Result<ExitCode> {
    let pool = open_database(settings)?;
    let mut conn = pool.get()?;
    let revoked = api_keys::revoke(&mut conn, None, client_id, &Actor::cli(), Utc::now())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match revoked {
        Some((key, _)) => {
            if as_json {
                println!("{}", key_json(&key));
            } else {
                println!("revoked {}", key.client_id);
            }
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("error: no API key {client_id:?}");
            Ok(ExitCode::from(2))
        }
    }
}

fn show(client_id: &str, as_json: bool, settings: &Settings) -> anyhow::Result<ExitCode> {
    let pool = open_database(settings)?;
    let mut conn = pool.get()?;
    let Some(key) = crate::db::api_keys::find_by_client_id(&mut conn, client_id)? else {
        eprintln!("error: no API key {client_id:?}");
        return Ok(ExitCode::from(2));
    };
    let shown = key_json(&key);
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
    Ok(ExitCode::SUCCESS)
}

fn rotate(
    client_id: &str,
    grace: i64,
    as_json: bool,
    shell: bool,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    let pool = open_database(settings)?;
    let mut conn = pool.get()?;
    let Some(key) = crate::db::api_keys::find_by_client_id(&mut conn, client_id)?
        .filter(|k| k.deleted_at.is_none())
    else {
        eprintln!("error: no API key {client_id:?}");
        return Ok(ExitCode::from(2));
    };
    let (rotated, _) = api_keys::rotate(
        &mut conn,
        &key,
        grace,
        settings.secrets.bcrypt_cost,
        &Actor::cli(),
        Utc::now(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secret = rotated.secret.expose();
    if as_json {
        println!(
            "{}",
            json!({
                "client_id": key.client_id,
                "client_secret": secret,
                "secret_prefix": rotated.secret.prefix(),
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
    Ok(ExitCode::SUCCESS)
}

fn key_json(key: &ApiKey) -> serde_json::Value {
    json!({
        "client_id": key.client_id,
        "name": key.name,
        "environment": key.environment,
        "status": key.status,
        "scopes": ScopeSet::from_stored(&key.scopes),
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
