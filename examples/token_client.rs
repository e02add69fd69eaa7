//! An app that calls an API with keygate's tokens: `TokenSource` gets one with the client's
//! credentials, keeps it, renews it before it expires and once more when the API answers 401.
//!
//! KEYGATE_URL=http://127.0.0.1:8080 KEYGATE_CLIENT_ID=kgc_… KEYGATE_CLIENT_SECRET=kgs_… \
//!     cargo run --example token_client

use keygate::client::TokenSource;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // KEYGATE_URL, KEYGATE_CLIENT_ID, and KEYGATE_CLIENT_SECRET or KEYGATE_CLIENT_SECRET_FILE.
    let tokens = TokenSource::from_env()?;
    let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(tokens)
        .build();
    // Any API that takes keygate's tokens; keygate's own /v1/me/permissions is one.
    let url = format!("{}/v1/me/permissions", std::env::var("KEYGATE_URL")?);
    let answer = api.get(url).send().await?;
    println!("{} {}", answer.status().as_u16(), answer.text().await?);
    Ok(())
}
