//! Interop: a real third-party OAuth 2.0 client library, the Rust `oauth2` crate (v5), gets
//! tokens from a running keygate (catalog 4.3 and the 4.8 matrix). The crate is strict where
//! hand-written requests are forgiving: it needs status 200 exactly, a JSON `Content-Type`,
//! `access_token` and `token_type`, an integer `expires_in`, and error bodies it can parse as
//! RFC 6749 section 5.2; in HTTP Basic it form-urlencodes id and secret (RFC 6749 2.3.1).

use std::collections::BTreeSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth2::basic::{
    BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse, BasicTokenType,
};
use oauth2::{
    AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, HttpClientError,
    RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestKey, spawn_app};

/// A `BasicClient` with only its token endpoint set.
type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

type TokenResult = Result<
    BasicTokenResponse,
    RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>,
>;

/// Both client authentication methods keygate advertises, as the crate names them.
const AUTH_TYPES: [(&str, AuthType); 2] = [
    ("client_secret_basic", AuthType::BasicAuth),
    ("client_secret_post", AuthType::RequestBody),
];

/// The HTTP client an application would hand to the crate: no redirects (the crate's advice,
/// so that credentials are never replayed to another host).
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}

fn oauth_client(
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    auth_type: AuthType,
) -> TokenClient {
    BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_client_secret(ClientSecret::new(client_secret.to_owned()))
        .set_token_uri(TokenUrl::new(token_url.to_owned()).expect("a valid token URL"))
        .set_auth_type(auth_type)
}

fn client_for(app: &TestApp, key: &TestKey, auth_type: AuthType) -> TokenClient {
    oauth_client(
        &app.url("/v1/token"),
        &key.client_id,
        &key.client_secret,
        auth_type,
    )
}

async fn request_token(client: &TokenClient, scopes: &[&str]) -> TokenResult {
    let http = http_client();
    let mut request = client.exchange_client_credentials();
    for scope in scopes {
        request = request.add_scope(Scope::new((*scope).to_owned()));
    }
    request.request_async(&http).await
}

/// The token, or a panic that shows what the crate could not accept (and the raw body when it
/// failed to parse one).
fn expect_token(result: TokenResult, why: &str) -> BasicTokenResponse {
    match result {
        Ok(token) => token,
        Err(RequestTokenError::Parse(error, body)) => {
            panic!(
                "{why}: the oauth2 crate cannot parse the response ({error}): {}",
                String::from_utf8_lossy(&body)
            )
        }
        Err(other) => panic!("{why}: the oauth2 crate got no token: {other:?}"),
    }
}

/// Asserts that the crate parsed an RFC 6749 5.2 error response with this code.
fn expect_server_error(result: TokenResult, expected: BasicErrorResponseType, why: &str) {
    match result {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(*error.error(), expected, "{why}: {error:?}");
            assert!(
                error.error_description().is_some_and(|d| !d.is_empty()),
                "{why}: {error:?}"
            );
        }
        Err(RequestTokenError::Parse(error, body)) => panic!(
            "{why}: the oauth2 crate cannot parse the error response ({error}): {}",
            String::from_utf8_lossy(&body)
        ),
        Ok(token) => panic!("{why}: expected {expected:?}, got a token: {token:?}"),
        Err(other) => panic!("{why}: expected ServerResponse({expected:?}), got {other:?}"),
    }
}

fn scope_set<'a>(scopes: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    scopes.into_iter().map(str::to_owned).collect()
}

fn token_scopes(token: &BasicTokenResponse) -> BTreeSet<String> {
    let scopes = token
        .scopes()
        .expect("keygate always returns the granted scope");
    scopes.iter().map(|s| s.to_string()).collect()
}

/// The checks every successful exchange must pass, from the crate's side and the API's side.
async fn assert_usable_token(
    app: &TestApp,
    key: &TestKey,
    token: &BasicTokenResponse,
    scopes: &[&str],
    why: &str,
) {
    assert_eq!(*token.token_type(), BasicTokenType::Bearer, "{why}");
    assert_eq!(token.expires_in(), Some(Duration::from_secs(900)), "{why}");
    assert!(token.refresh_token().is_none(), "{why}: RFC 6749 4.4.3");
    assert_eq!(
        token_scopes(token),
        scope_set(scopes.iter().copied()),
        "{why}"
    );

    let response = app
        .get_with_token("/v1/me", token.access_token().secret())
        .await;
    assert_eq!(
        response.status(),
        200,
        "{why}: the token works on GET /v1/me"
    );
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["client_id"], key.client_id.as_str(), "{why}");
    let granted = me["token"]["scopes"]
        .as_array()
        .expect("token.scopes")
        .iter()
        .map(|s| s.as_str().unwrap());
    assert_eq!(
        scope_set(granted),
        token_scopes(token),
        "{why}: the scopes the crate saw are the token's"
    );
}

/// CA-01, SR-01..SR-08, TOK-B-05.
async fn oauth2_crate_gets_a_token_with_client_secret_basic(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "clients:read"]);
    let client = client_for(&app, &key, AuthType::BasicAuth);
    let token = expect_token(request_token(&client, &[]).await, "client_secret_basic");
    assert_usable_token(
        &app,
        &key,
        &token,
        &["invoices:read", "clients:read"],
        "client_secret_basic",
    )
    .await;
}

/// CA-03.
async fn oauth2_crate_gets_a_token_with_client_secret_post(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "clients:read"]);
    let client = client_for(&app, &key, AuthType::RequestBody);
    let token = expect_token(request_token(&client, &[]).await, "client_secret_post");
    assert_usable_token(
        &app,
        &key,
        &token,
        &["invoices:read", "clients:read"],
        "client_secret_post",
    )
    .await;
}

/// CC-07.
async fn oauth2_crate_narrows_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "clients:read"]);
    for (why, auth_type) in AUTH_TYPES {
        let client = client_for(&app, &key, auth_type);
        let token = expect_token(request_token(&client, &["invoices:read"]).await, why);
        assert_usable_token(&app, &key, &token, &["invoices:read"], why).await;
    }
}

async fn oauth2_crate_sees_invalid_client_for_a_wrong_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "clients:read"]);
    let other = app.create_key(&["invoices:read", "clients:read"]);
    for (why, auth_type) in AUTH_TYPES {
        let client = oauth_client(
            &app.url("/v1/token"),
            &key.client_id,
            &other.client_secret,
            auth_type,
        );
        expect_server_error(
            request_token(&client, &[]).await,
            BasicErrorResponseType::InvalidClient,
            why,
        );
    }
}

async fn oauth2_crate_sees_invalid_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "clients:read"]);
    for (why, auth_type) in AUTH_TYPES {
        let client = client_for(&app, &key, auth_type);
        for scopes in [
            &["invoices:write"][..],
            &["invoices:read", "invoices:write"][..],
        ] {
            let result = request_token(&client, scopes).await;
            expect_server_error(
                result,
                BasicErrorResponseType::InvalidScope,
                &format!("{why} asking for {scopes:?}"),
            );
        }
    }
}

/// RFC 8414: a client configured with the issuer alone finds the token endpoint and uses it.
/// MD-01..MD-03.
async fn oauth2_crate_discovers_the_token_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = app.create_key(&["invoices:read", "clients:read"]);

    let response = http_client()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            app.address
        ))
        .send()
        .await
        .expect("metadata request sent");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let metadata: Value = response.json().await.expect("JSON metadata");

    let issuer = metadata["issuer"].as_str().expect("issuer");
    assert_eq!(
        issuer, app.address,
        "the issuer is the URL the client used, byte for byte (no trailing slash)"
    );
    let token_endpoint = metadata["token_endpoint"].as_str().expect("token_endpoint");
    assert_eq!(token_endpoint, format!("{issuer}/v1/token"));
    let strings = |field: &str| -> Vec<String> {
        metadata[field]
            .as_array()
            .unwrap_or_else(|| panic!("{field} is an array: {metadata}"))
            .iter()
            .map(|v| {
                v.as_str()
                    .unwrap_or_else(|| panic!("{field} holds strings"))
                    .to_owned()
            })
            .collect()
    };
    assert!(
        strings("grant_types_supported").contains(&"client_credentials".to_owned()),
        "{metadata}"
    );
    let methods = strings("token_endpoint_auth_methods_supported");
    for method in ["client_secret_basic", "client_secret_post"] {
        assert!(
            methods.contains(&method.to_owned()),
            "{method} is advertised: {metadata}"
        );
    }
    assert!(
        metadata["response_types_supported"].is_array(),
        "REQUIRED by RFC 8414 2: {metadata}"
    );

    for (why, auth_type) in AUTH_TYPES {
        let client = oauth_client(
            token_endpoint,
            &key.client_id,
            &key.client_secret,
            auth_type,
        );
        let token = expect_token(request_token(&client, &[]).await, why);
        assert_usable_token(&app, &key, &token, &["invoices:read", "clients:read"], why).await;
        let payload = token
            .access_token()
            .secret()
            .split('.')
            .nth(1)
            .expect("a JWT")
            .to_owned();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(
            claims["iss"], issuer,
            "{why}: the token's iss is the discovered issuer"
        );
    }
}

backend_tests!(
    oauth2_crate_gets_a_token_with_client_secret_basic,
    oauth2_crate_gets_a_token_with_client_secret_post,
    oauth2_crate_narrows_scopes,
    oauth2_crate_sees_invalid_client_for_a_wrong_secret,
    oauth2_crate_sees_invalid_scope,
    oauth2_crate_discovers_the_token_endpoint,
);
