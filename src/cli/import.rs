//! `keygate api-keys import FILE`: many keys from a JSON Lines file, through the same
//! application layer as `create`. Every line is read and checked before the first key is made,
//! so a mistake on line 900 creates nothing; then each key is created and printed (its secret,
//! this once) as it is made, with a progress bar on a terminal.

use std::io::{BufRead, Write};

use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;

use super::api_keys::{ImportArgs, created_json};
use super::organization_named;
use crate::domain::{
    Email, Environment, Expiry, KeyName, Metadata, ScopeCatalog, ScopeSet, ValidationError,
};
use crate::service::api_keys::{self, KeyOwner, NewKey, ScopeChoice};
use crate::service::{Caller, Error, Service};

/// The most keys one import makes.
const MAX_KEYS: usize = 100_000;
/// The longest line read.
const MAX_LINE_BYTES: usize = 64 * 1024;

/// One line of the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportedKey {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    expires_in_days: Option<u64>,
    #[serde(default)]
    expires_on: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    token_only: bool,
    #[serde(default)]
    refresh_tokens: bool,
}

impl ImportedKey {
    fn parse(self, organization_id: i64, catalog: &ScopeCatalog) -> Result<NewKey, String> {
        let now = Utc::now();
        let scopes = ScopeSet::from_items(self.scopes.iter().map(|s| s.trim()))
            .map_err(|e| e.to_string())?;
        catalog.check(&scopes).map_err(|e| e.message)?;
        let expiry = match (&self.expires_on, self.expires_in_days) {
            (Some(_), Some(_)) => {
                return Err("give expires_on or expires_in_days, not both".into());
            }
            (Some(date), None) => Expiry::parse_date(date, now),
            (None, Some(days)) => Expiry::in_days(days, now),
            (None, None) => Ok(Expiry::never()),
        }
        .map_err(|e| e.to_string())?;
        Ok(NewKey {
            organization_id,
            name: KeyName::parse(&self.name).map_err(|e| e.to_string())?,
            environment: self.environment.unwrap_or(Environment::Live),
            scopes: ScopeChoice::Listed(scopes),
            expiry,
            metadata: match &self.metadata {
                Some(value) => Metadata::parse(value).map_err(|e| e.to_string())?,
                None => Metadata::default(),
            },
            owner: match &self.owner {
                Some(email) => KeyOwner::User(Email::parse(email).map_err(|e| e.to_string())?),
                None => KeyOwner::FirstAdministrator,
            },
            enabled: !self.disabled,
            token_only: self.token_only,
            refresh_tokens: self.refresh_tokens,
        })
    }
}

pub async fn run(args: ImportArgs, service: &Service, caller: &Caller) -> Result<(), Error> {
    let organization = organization_named(service, &args.org).await?;
    let keys = read(&args.file, organization.id, &service.catalog)?;
    let progress = ProgressBar::new(keys.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} keys, {eta} left")
            .expect("a valid template"),
    );
    let mut out = std::io::stdout().lock();
    for (index, (line, key)) in keys.into_iter().enumerate() {
        let created = api_keys::create(service, caller, key)
            .await
            .map_err(|err| {
                progress.abandon();
                eprintln!(
                    "line {line}: {err}; the {index} keys before it were created and printed"
                );
                err
            })?;
        writeln!(out, "{}", created_json(&created)).map_err(Error::internal)?;
        progress.inc(1);
    }
    out.flush().map_err(Error::internal)?;
    progress.finish_and_clear();
    eprintln!(
        "The secrets are shown only this once: store them now (a secret manager, not a \
         repository)."
    );
    Ok(())
}

/// A refusal of the file, before anything was made.
fn invalid(message: String) -> Error {
    ValidationError::new("file", message).into()
}

/// Every line of the file as a new key, with its line number; or every line's problem.
fn read(
    path: &std::path::Path,
    organization_id: i64,
    catalog: &ScopeCatalog,
) -> Result<Vec<(usize, NewKey)>, Error> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| invalid(format!("reading the file: {e}")))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() > MAX_LINE_BYTES {
            problems.push(format!("line {number}: longer than {MAX_LINE_BYTES} bytes"));
            continue;
        }
        let parsed = serde_json::from_slice::<ImportedKey>(&line)
            .map_err(|e| e.to_string())
            .and_then(|key| key.parse(organization_id, catalog));
        match parsed {
            Ok(key) => keys.push((number, key)),
            Err(problem) => problems.push(format!("line {number}: {problem}")),
        }
        if keys.len() > MAX_KEYS {
            return Err(invalid(format!("an import makes at most {MAX_KEYS} keys")));
        }
    }
    if !problems.is_empty() {
        let shown = problems.len().min(20);
        let mut message = problems[..shown].join("\n");
        if problems.len() > shown {
            message.push_str(&format!("\n… and {} more", problems.len() - shown));
        }
        return Err(invalid(format!("nothing was imported:\n{message}")));
    }
    if keys.is_empty() {
        return Err(invalid("the file holds no key".to_owned()));
    }
    Ok(keys)
}
