//! The resource server of the remote scenarios, run by the harness as a process of its own
//! (`keygate-bench resource-server`): examples/resource_server.rs's `GET /invoices` behind a
//! `RemoteValidator` that knows only keygate's URL and follows its revocation stream, plus
//! `GET /bare`, the same process's route without validation, as those scenarios' baseline.
//! It is configured as the example is: `KEYGATE_URL`, `BIND`, `KEYGATE_CLIENT_ID` and
//! `KEYGATE_CLIENT_SECRET` (a key with `revocations:read`).
//!
//! It lives in the harness's binary rather than being the example itself because building an
//! example builds every dev-dependency of keygate (release, on two cores: many minutes).

use std::process::ExitCode;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use keygate::remote::RemoteValidator;
use keygate::{Authenticated, require_scopes};

/// The hidden subcommand that runs it.
pub const SUBCOMMAND: &str = "resource-server";

require_scopes!(InvoicesRead => "invoices:read");

/// The example's route: a valid, unrevoked token holding `invoices:read`.
async fn list_invoices(caller: Authenticated<InvoicesRead>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "client_id": caller.client_id(), "invoices": [] }))
}

/// The baseline: a fixed JSON answer, no validation.
async fn bare() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

pub fn main() -> ExitCode {
    env_logger::init_from_env(env_logger::Env::default().default_filter_or("warn"));
    match actix_web::rt::System::new().block_on(serve()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    // Discovery, the JWKS, and the revocation stream up to its first `sync`.
    let validator = RemoteValidator::from_env()?.connect().await?;
    let validator = web::Data::new(validator);
    let bind = std::env::var("BIND").context("BIND is not set")?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(validator.clone())
            .route("/invoices", web::get().to(list_invoices))
            .route("/bare", web::get().to(bare))
    })
    .bind(&bind)
    .with_context(|| format!("cannot listen on {bind}"))?;
    println!("resource server listening on http://{}", server.addrs()[0]);
    server.run().await?;
    Ok(())
}
