//! `keygate webhooks`: an organization's webhook endpoints and their deliveries, as the API
//! manages them.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{block_on, open_service, organization_named};
use crate::config::Settings;
use crate::db::organizations::DEFAULT_ORGANIZATION;
use crate::db::webhooks::Endpoint;
use crate::domain::{DeliveryStatus, EventFilter, GracePeriod};
use crate::service::webhooks::{self, EndpointUpdate, NewWebhookEndpoint};
use crate::service::{Caller, Error, Service, signing_keys};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint and print its signing secret (shown only this once)
    Create {
        /// https:// URL that receives the events
        #[arg(long)]
        url: String,
        /// Event types, comma-separated (default: every event)
        #[arg(long, value_delimiter = ',', default_value = "*")]
        events: Vec<String>,
        /// What the endpoint is for, for the people who read the list
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        org: OrgArg,
        /// Print JSON instead of a table or text
        #[arg(long, conflicts_with = "shell")]
        json: bool,
        /// Print `export WEBHOOK_ENDPOINT=...` and `export WEBHOOK_SECRET=...` for `eval`
        #[arg(long)]
        shell: bool,
    },
    /// List an organization's endpoints (never their secrets)
    List {
        #[command(flatten)]
        org: OrgArg,
        /// Print JSON instead of a table or text
        #[arg(long)]
        json: bool,
    },
    /// Change an endpoint's URL, events or description, or disable or enable it
    Update {
        /// The endpoint's id (whe_…)
        id: String,
        /// The HTTPS URL deliveries are POSTed to
        #[arg(long)]
        url: Option<String>,
        /// Comma-separated event types to send (every event unless given)
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        /// What the endpoint is for, for the people who read the list
        #[arg(long)]
        description: Option<String>,
        /// Stop delivering to the endpoint (deliveries wait until it is enabled)
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Deliver to the endpoint again
        #[arg(long)]
        enable: bool,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Delete an endpoint (its delivery history stays)
    Delete {
        /// The endpoint's id (whe_…)
        id: String,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Issue a new signing secret (printed once); the old one also signs for the grace period
    RollSecret {
        /// The endpoint's id (whe_…)
        id: String,
        /// How long the old secret keeps signing: 0, 30m, 24h, 7d (at most 7 days)
        #[arg(long, default_value = "0", value_parser = parse_grace)]
        grace: GracePeriod,
        #[command(flatten)]
        org: OrgArg,
    },
    /// Send an endpoint a webhook_endpoint.test event and wait for the receiver's answer
    Test {
        /// The endpoint's id (whe_…)
        id: String,
        /// Only queue the event (the running server sends it)
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        org: OrgArg,
    },
    /// An endpoint's deliveries, newest first, with their attempts
    Deliveries {
        /// The endpoint's id (whe_…)
        id: String,
        /// pending, succeeded or failed
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        org: OrgArg,
        /// Print JSON instead of a table or text
        #[arg(long)]
        json: bool,
    },
    /// Send a delivery again now
    Retry {
        /// The delivery's id (whd_…)
        delivery_id: String,
        #[command(flatten)]
        org: OrgArg,
    },
}

impl WebhooksCommand {
    pub fn reads_only(&self) -> bool {
        matches!(
            self,
            WebhooksCommand::List { .. } | WebhooksCommand::Deliveries { .. }
        )
    }
}

#[derive(Debug, Args)]
pub struct OrgArg {
    /// The organization (default: the deployment's own)
    #[arg(long = "org", value_name = "NAME", default_value = DEFAULT_ORGANIZATION)]
    name: String,
}

/// Waits for a delivery's first attempt and says how it went.
async fn first_attempt(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
    delivery: &str,
    wait: Duration,
) -> Result<String, Error> {
    let deadline = Instant::now() + wait;
    loop {
        let record = webhooks::delivery(service, caller, organization_id, delivery).await?;
        if let Some(attempt) = record.attempts.first() {
            let answer = match (attempt.status_code, &attempt.error) {
                (Some(code), _) => format!("the receiver answered {code}"),
                (None, Some(error)) => format!("no answer: {error}"),
                (None, None) => "no answer".to_owned(),
            };
            let next = match record.delivery.status {
                DeliveryStatus::Succeeded => "delivered",
                DeliveryStatus::Pending => "will be retried",
                failed @ DeliveryStatus::Failed => failed.as_str(),
            };
            return Ok(format!(
                "{delivery} {}: {answer} in {} ms; {next}",
                record.event.event_type, attempt.duration_ms
            ));
        }
        if Instant::now() >= deadline {
            return Ok(format!(
                "queued {delivery}, but no keygate server has sent it after {} s: is one running on this database?",
                wait.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn parse_grace(text: &str) -> Result<GracePeriod, String> {
    GracePeriod::parse_human(text).map_err(|e| e.message)
}

pub fn run(command: WebhooksCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let (mut service, caller) = open_service(settings)?;
    if matches!(
        command,
        WebhooksCommand::Create { .. } | WebhooksCommand::RollSecret { .. }
    ) {
        // Endpoint secrets are sealed with the master key, as the server keeps them.
        service.master_key = Some(Arc::new(signing_keys::master_key(settings)?));
    }
    // The server's worker sends the test event: wait as long as one attempt may take.
    let wait = Duration::from_secs(settings.webhooks.timeout_seconds + 5);
    match block_on(execute(command, &service, &caller, wait)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(Error::NotFound) => {
            eprintln!("error: no such webhook endpoint or delivery in that organization");
            Ok(ExitCode::from(2))
        }
        Err(err) => Err(anyhow::Error::from(err)),
    }
}

async fn execute(
    command: WebhooksCommand,
    service: &Service,
    caller: &Caller,
    wait: Duration,
) -> Result<(), Error> {
    let organization = |org: &OrgArg| {
        let name = org.name.clone();
        async move { Ok::<_, Error>(organization_named(service, &name).await?.id) }
    };
    match command {
        WebhooksCommand::Create {
            url,
            events,
            description,
            org,
            json,
            shell,
        } => {
            let new = NewWebhookEndpoint {
                url,
                events,
                description,
            };
            let created = webhooks::create(service, caller, organization(&org).await?, new).await?;
            let (endpoint, secret) = (&created.endpoint, created.secret.expose());
            if json {
                let mut shown = endpoint_json(endpoint);
                shown["secret"] = json!(secret);
                println!("{shown}");
            } else if shell {
                // Ids are base-62 with `_`; the secret is base64, quoted.
                println!("export WEBHOOK_ENDPOINT={}", endpoint.public_id);
                println!("export WEBHOOK_SECRET='{secret}'");
                eprintln!("The signing secret is shown only this once.");
            } else {
                println!("id:     {}", endpoint.public_id);
                println!("secret: {secret}");
                eprintln!("The signing secret is shown only this once.");
            }
        }
        WebhooksCommand::List { org, json } => {
            let all = webhooks::list(service, caller, organization(&org).await?).await?;
            if json {
                let shown: Vec<_> = all.iter().map(endpoint_json).collect();
                println!("{}", json!(shown));
            } else {
                for e in &all {
                    println!(
                        "{}  {:<8}  {}  {}",
                        e.public_id,
                        e.status.as_str(),
                        e.url,
                        EventFilter::from_stored(&e.events).names().join(",")
                    );
                }
            }
        }
        WebhooksCommand::Update {
            id,
            url,
            events,
            description,
            disable,
            enable,
            org,
        } => {
            let update = EndpointUpdate {
                url,
                events,
                description,
                enabled: (disable || enable).then_some(enable),
            };
            let id_of = organization(&org).await?;
            let changed = webhooks::update(service, caller, id_of, &id, update).await?;
            println!("{}", endpoint_json(&changed));
        }
        WebhooksCommand::Delete { id, org } => {
            webhooks::delete(service, caller, organization(&org).await?, &id).await?;
            println!("deleted {id}");
        }
        WebhooksCommand::RollSecret { id, grace, org } => {
            let id_of = organization(&org).await?;
            let rolled = webhooks::roll_secret(service, caller, id_of, &id, grace).await?;
            println!("secret: {}", rolled.secret.expose());
            eprintln!("The new signing secret is shown only this once.");
        }
        WebhooksCommand::Test { id, no_wait, org } => {
            let organization_id = organization(&org).await?;
            let delivery = webhooks::send_test(service, caller, organization_id, &id).await?;
            if no_wait {
                println!("queued {delivery}, a webhook_endpoint.test event for {id}");
            } else {
                let outcome = first_attempt(service, caller, organization_id, &delivery, wait);
                println!("{}", outcome.await?);
            }
        }
        WebhooksCommand::Deliveries {
            id,
            status,
            org,
            json,
        } => {
            let status = status
                .as_deref()
                .map(str::parse::<DeliveryStatus>)
                .transpose()?;
            let id_of = organization(&org).await?;
            let records =
                webhooks::deliveries(service, caller, id_of, &id, status, (100, 0)).await?;
            let shown: Vec<_> = records
                .iter()
                .map(|r| {
                    json!({
                        "id": r.delivery.public_id,
                        "event_id": r.event.public_id,
                        "event_type": r.event.event_type,
                        "status": r.delivery.status,
                        "attempts": r.delivery.attempts,
                        "last_status_code": r.delivery.last_status_code,
                        "created_at": r.delivery.created_at.and_utc(),
                    })
                })
                .collect();
            if json {
                println!("{}", json!(shown));
            } else {
                for row in &shown {
                    println!(
                        "{}  {:<9}  {:<24}  attempts {}  last {}",
                        row["id"].as_str().unwrap_or_default(),
                        row["status"].as_str().unwrap_or_default(),
                        row["event_type"].as_str().unwrap_or_default(),
                        row["attempts"],
                        row["last_status_code"]
                    );
                }
            }
        }
        WebhooksCommand::Retry { delivery_id, org } => {
            webhooks::retry(service, caller, organization(&org).await?, &delivery_id).await?;
            println!("queued {delivery_id} again");
        }
    }
    Ok(())
}

fn endpoint_json(e: &Endpoint) -> serde_json::Value {
    json!({
        "id": e.public_id,
        "url": e.url,
        "description": e.description,
        "events": EventFilter::from_stored(&e.events).names(),
        "status": e.status,
        "consecutive_failures": e.consecutive_failures,
        "failing_since": e.failing_since.map(|t| t.and_utc()),
        "created_at": e.created_at.and_utc(),
    })
}
