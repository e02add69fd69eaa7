//! `keygate signing-keys list|rotate|rewrap`.

use std::process::ExitCode;

use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;

use super::{block_on, open_service};
use crate::config::Settings;
use crate::service::master_key::rewrap;
use crate::service::signing_keys::{self, master_key};

#[derive(Debug, Subcommand)]
pub enum SigningKeysCommand {
    /// List signing keys: next (published), active (signing), retired (verifying until)
    List {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Make the next key active; the old one verifies until its last token expires
    Rotate {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Seal every stored secret again under KEYGATE_MASTER_KEY, opening what the old key
    /// sealed with KEYGATE_PREVIOUS_MASTER_KEY (the step that changes the master key)
    Rewrap {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

impl SigningKeysCommand {
    pub fn reads_only(&self) -> bool {
        matches!(self, SigningKeysCommand::List { .. })
    }
}

pub fn run(command: SigningKeysCommand, settings: &Settings) -> anyhow::Result<ExitCode> {
    let (mut service, caller) = open_service(settings)?;
    match command {
        SigningKeysCommand::List { json: as_json } => {
            let keys = block_on(signing_keys::list(&service, &caller))?;
            if as_json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(|k| {
                        json!({
                            "kid": k.kid, "algorithm": k.algorithm, "status": k.status,
                            "created_at": k.created_at.and_utc(),
                            "activated_at": k.activated_at.map(|t| t.and_utc()),
                            "verify_until": k.verify_until.map(|t| t.and_utc()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<18} {:<6} {:<8} {:<20} VERIFY_UNTIL",
                    "KID", "ALG", "STATUS", "CREATED"
                );
                for k in &keys {
                    println!(
                        "{:<18} {:<6} {:<8} {:<20} {}",
                        k.kid,
                        k.algorithm.as_str(),
                        k.status.as_str(),
                        k.created_at.format("%Y-%m-%d %H:%M:%S"),
                        k.verify_until
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                            .unwrap_or_default(),
                    );
                }
            }
        }
        SigningKeysCommand::Rewrap { json: as_json } => {
            let master = master_key(settings)?;
            let had_previous = master.has_previous();
            service.master_key = Some(Arc::new(master));
            let done = block_on(rewrap(&service, &caller))?;
            if as_json {
                println!("{}", serde_json::to_string(&done)?);
            } else {
                println!(
                    "sealed again under KEYGATE_MASTER_KEY: {} signing key(s), {} webhook \
                     endpoint(s), {} one-time view(s); {} were under the previous key",
                    done.signing_keys,
                    done.webhook_secrets,
                    done.reveals,
                    done.were_under_previous_key
                );
                if had_previous {
                    println!(
                        "every instance may now drop KEYGATE_PREVIOUS_MASTER_KEY; keep the old \
                         key until backups taken before now have expired"
                    );
                }
            }
        }
        SigningKeysCommand::Rotate { json: as_json } => {
            service.master_key = Some(Arc::new(master_key(settings)?));
            let rotation = block_on(signing_keys::rotate_now(&service, &caller))?;
            if as_json {
                println!(
                    "{}",
                    json!({ "active": rotation.activated, "retired": rotation.retired, "retired_verify_until": rotation.verify_until })
                );
            } else {
                println!("active signing key: {}", rotation.activated);
                for kid in &rotation.retired {
                    println!(
                        "retired {kid}: verifies tokens until {}",
                        rotation.verify_until.format("%Y-%m-%d %H:%M:%S UTC")
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
