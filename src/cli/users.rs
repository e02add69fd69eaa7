//! `keygate users create|list` and `keygate organizations create|list`.

use std::io::Read;
use std::process::ExitCode;

use chrono::Utc;
use clap::Subcommand;
use serde_json::json;

use super::open_database;
use crate::config::Settings;
use crate::db::organizations::{self, DEFAULT_ORGANIZATION, NewOrganization};
use crate::db::users;
use crate::domain::{Email, Password, ScopeCatalog, ScopeSet};
use crate::lifecycle::Actor;
use crate::lifecycle::users::{NewUserRequest, create, permissions_of};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints a generated password once (or reads one with --password-stdin)
    Create {
        #[arg(long)]
        email: String,
        /// The user's organization
        #[arg(long, value_name = "NAME", default_value = DEFAULT_ORGANIZATION)]
        org: String,
        /// An administrator holds every permission of the organization
        #[arg(long)]
        admin: bool,
        /// Comma-separated permissions: API scopes and management permissions
        #[arg(long, value_delimiter = ',')]
        permissions: Vec<String>,
        /// Read the password from standard input instead of generating one
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the users of an organization
    List {
        #[arg(long, value_name = "NAME", default_value = DEFAULT_ORGANIZATION)]
        org: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrganizationsCommand {
    /// Create an organization (a tenant)
    Create { name: String },
    /// List organizations
    List,
}

pub fn run_users(command: UsersCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let catalog = ScopeCatalog::new(&settings.scopes.catalog)?;
    let pool = open_database(settings)?;
    let mut conn = pool.get()?;
    match command {
        UsersCommand::Create {
            email,
            org,
            admin,
            permissions,
            password_stdin,
            json: as_json,
        } => {
            let email = Email::parse(&email)?;
            let permissions = ScopeSet::from_items(
                permissions
                    .iter()
                    .map(|p| p.trim())
                    .filter(|p| !p.is_empty()),
            )?;
            let password = if password_stdin {
                let mut input = String::new();
                std::io::stdin().read_to_string(&mut input)?;
                Some(Password::parse(&input)?)
            } else {
                None
            };
            let organization = organizations::find_by_name(&mut conn, &org)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no organization {org:?}; create it with `keygate organizations create`"
                )
            })?;
            let request = NewUserRequest {
                organization_id: organization.id,
                email,
                is_admin: admin,
                permissions,
                password,
            };
            let (user, generated) = create(
                &mut conn,
                request,
                &catalog,
                settings.secrets.password_bcrypt_cost,
                &Actor::cli(),
                Utc::now(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let held = permissions_of(&user, &organization, &catalog);
            if as_json {
                println!(
                    "{}",
                    json!({
                        "id": user.public_id, "email": user.email, "organization": organization.name,
                        "admin": user.is_admin, "permissions": held,
                        "password": generated.as_ref().map(Password::expose),
                    })
                );
            } else {
                eprintln!(
                    "Created user {} in {:?} with: {}",
                    user.email, organization.name, held
                );
                if let Some(password) = &generated {
                    println!("password: {}", password.expose());
                    eprintln!("The password is shown only this once.");
                }
            }
        }
        UsersCommand::List { org, json: as_json } => {
            let organization = organizations::find_by_name(&mut conn, &org)?
                .ok_or_else(|| anyhow::anyhow!("no organization {org:?}"))?;
            let rows = users::list(&mut conn, organization.id)?;
            if as_json {
                let rows: Vec<_> = rows
                    .iter()
                    .map(|u| {
                        json!({
                            "id": u.public_id, "email": u.email, "admin": u.is_admin, "status": u.status,
                            "permissions": permissions_of(u, &organization, &catalog),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<22} {:<32} {:<6} {:<9} PERMISSIONS",
                    "ID", "EMAIL", "ADMIN", "STATUS"
                );
                for u in &rows {
                    println!(
                        "{:<22} {:<32} {:<6} {:<9} {}",
                        u.public_id.as_deref().unwrap_or("-"),
                        u.email,
                        u.is_admin,
                        u.status,
                        permissions_of(u, &organization, &catalog)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_organizations(
    command: OrganizationsCommand,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    let pool = open_database(settings)?;
    let mut conn = pool.get()?;
    match command {
        OrganizationsCommand::Create { name } => {
            let name = crate::lifecycle::organizations::parse_name(&name)?;
            if organizations::find_by_name(&mut conn, &name)?.is_some() {
                anyhow::bail!("organization {name:?} already exists");
            }
            organizations::insert(
                &mut conn,
                &NewOrganization {
                    name: &name,
                    created_at: Utc::now().naive_utc(),
                },
            )?;
            println!("created organization {name}");
        }
        OrganizationsCommand::List => {
            for organization in organizations::list(&mut conn)? {
                println!("{}", organization.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
