//! `keygate token`: prints an access token for scripts, got with the client-credentials grant
//! like any app gets one (`KEYGATE_CLIENT_ID`, and `KEYGATE_CLIENT_SECRET` or a secret file).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::block_on;
use crate::client::TokenSource;
use crate::config::Settings;

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// keygate's URL [default: $KEYGATE_URL, else this configuration's issuer]
    #[arg(long, env = "KEYGATE_URL", value_name = "URL")]
    url: Option<String>,
    /// The key's client_id
    #[arg(long, env = "KEYGATE_CLIENT_ID", value_name = "ID")]
    client_id: String,
    /// Read the client secret from this file's first line instead of $KEYGATE_CLIENT_SECRET
    #[arg(long, env = "KEYGATE_CLIENT_SECRET_FILE", value_name = "PATH")]
    secret_file: Option<PathBuf>,
    /// Scopes to ask for, space- or comma-separated (default: every scope of the key)
    #[arg(long)]
    scope: Option<String>,
}

pub fn run(args: TokenArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let url = match args.url {
        Some(url) => url,
        None if !settings.tokens.issuer.is_empty() => settings.tokens.issuer.clone(),
        None => format!("http://{}", settings.server.bind),
    };
    let mut source = TokenSource::builder(url).client_id(args.client_id);
    source = match &args.secret_file {
        Some(path) => source.secret_from_file(path)?,
        None => source.secret_from_env("KEYGATE_CLIENT_SECRET")?,
    };
    if let Some(scope) = args.scope {
        source = source.scope(scope.replace(',', " "));
    }
    let source = source.build()?;
    let token = block_on(source.token())?;
    println!("{}", token.secret());
    Ok(ExitCode::SUCCESS)
}
