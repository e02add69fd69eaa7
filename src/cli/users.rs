//! `keygate users create|list` and `keygate organizations create|list`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::json;

use super::{block_on, open_service, organization_named};
use crate::config::Settings;
use crate::db::organizations::{DEFAULT_ORGANIZATION, Organization};
use crate::domain::{Email, OrganizationStatus, Password, ScopeSet};
use crate::service::invitations;
use crate::service::organizations::OrganizationUpdate;
use crate::service::users::{self, NewUserRequest};
use crate::service::{Caller, Service, organizations};

/// Who a new user is: the arguments `users create` and `users invite` share.
#[derive(Debug, Args)]
pub struct NewUserArgs {
    /// The operator's email address, which they log in with
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
}

impl NewUserArgs {
    /// The request, in the named organization (returned too, for the printout).
    async fn request(
        &self,
        service: &Service,
        password: Option<Password>,
    ) -> anyhow::Result<(Organization, NewUserRequest)> {
        let organization = organization_named(service, &self.org).await?;
        let request = NewUserRequest {
            organization_id: organization.id,
            email: Email::parse(&self.email)?,
            is_admin: self.admin,
            permissions: ScopeSet::from_items(
                self.permissions
                    .iter()
                    .map(|p| p.trim())
                    .filter(|p| !p.is_empty()),
            )?,
            password,
        };
        Ok((organization, request))
    }
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; prints a generated password once (or reads one with --password-stdin)
    Create {
        #[command(flatten)]
        user: NewUserArgs,
        /// Read the password from standard input instead of generating one
        #[arg(long)]
        password_stdin: bool,
        /// Print JSON instead of a table or text
        #[arg(long)]
        json: bool,
    },
    /// Invite a user: prints a one-time link (valid 7 days) where they set their password
    Invite {
        #[command(flatten)]
        user: NewUserArgs,
    },
    /// List the users of an organization
    List {
        /// The organization whose users to list
        #[arg(long, value_name = "NAME", default_value = DEFAULT_ORGANIZATION)]
        org: String,
        /// Print JSON instead of a table or text
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrganizationsCommand {
    /// Create an organization (a tenant)
    Create {
        /// Its name (lowercase letters, digits and -)
        name: String,
    },
    /// List organizations
    List,
    /// Change an organization's display name or status (disabling refuses its keys' tokens
    /// and ends its users' sessions)
    Update {
        /// The organization's name
        name: String,
        /// A name for people to read
        #[arg(long)]
        display_name: Option<String>,
        /// enabled or disabled
        #[arg(long)]
        status: Option<OrganizationStatus>,
    },
    /// Delete an organization: revoke its keys, end its sessions, hide it (its rows and audit
    /// trail stay)
    Delete {
        /// The organization's name
        name: String,
    },
}

pub fn run_users(command: UsersCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let (service, caller) = open_service(settings)?;
    block_on(async {
        match command {
            UsersCommand::Create {
                user,
                password_stdin,
                json,
            } => {
                let password = if password_stdin {
                    let mut input = String::new();
                    std::io::stdin().read_to_string(&mut input)?;
                    Some(Password::parse(&input)?)
                } else {
                    None
                };
                let (organization, request) = user.request(&service, password).await?;
                create(&service, &caller, &organization, request, json).await?;
            }
            UsersCommand::Invite { user } => {
                let (organization, request) = user.request(&service, None).await?;
                let (record, issued) = invitations::invite(&service, &caller, request).await?;
                eprintln!(
                    "Invited {} to {:?}; the link works once, until {}:",
                    record.user.email, organization.name, issued.expires_at
                );
                println!("{}", issued.url(&service));
            }
            UsersCommand::List { org, json } => list(&service, &caller, &org, json).await?,
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn create(
    service: &Service,
    caller: &Caller,
    organization: &Organization,
    request: NewUserRequest,
    as_json: bool,
) -> anyhow::Result<()> {
    let (record, generated) = users::create(service, caller, request).await?;
    let (user, held) = (&record.user, record.permissions(service));
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
    Ok(())
}

async fn list(service: &Service, caller: &Caller, org: &str, as_json: bool) -> anyhow::Result<()> {
    let organization = organization_named(service, org).await?;
    let records = users::list(service, caller, organization.id).await?;
    if as_json {
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                let u = &r.user;
                json!({
                    "id": u.public_id, "email": u.email, "admin": u.is_admin, "status": u.status,
                    "permissions": r.permissions(service),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<22} {:<32} {:<6} {:<9} PERMISSIONS",
        "ID", "EMAIL", "ADMIN", "STATUS"
    );
    for r in &records {
        let u = &r.user;
        println!(
            "{:<22} {:<32} {:<6} {:<9} {}",
            u.public_id.as_deref().unwrap_or("-"),
            u.email,
            u.is_admin,
            u.status.as_str(),
            r.permissions(service)
        );
    }
    Ok(())
}

pub fn run_organizations(
    command: OrganizationsCommand,
    settings: &Settings,
) -> anyhow::Result<ExitCode> {
    let (service, caller) = open_service(settings)?;
    block_on(async {
        match command {
            OrganizationsCommand::Create { name } => {
                let created = organizations::create(&service, &caller, &name).await?;
                println!("created organization {}", created.name);
            }
            OrganizationsCommand::List => {
                for organization in organizations::list(&service, &caller).await? {
                    println!("{}", organization.name);
                }
            }
            OrganizationsCommand::Update {
                name,
                display_name,
                status,
            } => {
                let update = OrganizationUpdate {
                    display_name: display_name
                        .map(|d| organizations::parse_display_name(&d).map(Some))
                        .transpose()?,
                    status,
                };
                let updated = organizations::update(&service, &caller, &name, update).await?;
                println!("organization {} is {}", updated.name, updated.status);
            }
            OrganizationsCommand::Delete { name } => {
                organizations::delete(&service, &caller, &name).await?;
                println!("deleted organization {name}: its keys are revoked");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
