//! An API that accepts keygate's tokens knowing only keygate's URL: the signing keys come from
//! keygate's JWKS, and revocations from its revocation stream (given a key with
//! `revocations:read`), so a revoked token is refused here within a second.
//!
//! KEYGATE_URL=http://127.0.0.1:8080 BIND=127.0.0.1:9000 \
//!     KEYGATE_CLIENT_ID=kgc_… KEYGATE_CLIENT_SECRET=kgs_… \
//!     cargo run --example resource_server

use actix_web::{App, HttpResponse, HttpServer, web};
use keygate::remote::RemoteValidator;
use keygate::{Authenticated, require_scopes};

require_scopes!(InvoicesRead => "invoices:read");
require_scopes!(PayoutsWrite => "payouts:write");

async fn list_invoices(caller: Authenticated<InvoicesRead>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "client_id": caller.client_id(), "invoices": [] }))
}

async fn create_payout(caller: Authenticated<PayoutsWrite>) -> HttpResponse {
    HttpResponse::Created().json(serde_json::json!({ "client_id": caller.client_id() }))
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    env_logger::init_from_env(env_logger::Env::default().default_filter_or("info"));
    // KEYGATE_URL; KEYGATE_CLIENT_ID and KEYGATE_CLIENT_SECRET to follow revocations.
    let validator = RemoteValidator::from_env()?.connect().await?;
    let validator = web::Data::new(validator);
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:9000".to_owned());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(validator.clone())
            .route("/invoices", web::get().to(list_invoices))
            .route("/payouts", web::post().to(create_payout))
    })
    .bind(&bind)?;
    println!("resource server listening on http://{}", server.addrs()[0]);
    server.run().await?;
    Ok(())
}
