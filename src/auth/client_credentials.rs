//! Reading a token request (RFC 6749 sections 2.3.1, 3.2, 4.4.2): an RFC 6749 form body with
//! the secret in HTTP Basic (`client_secret_basic`) or in the body (`client_secret_post`), or
//! keygate's JSON body (with fiskaly's `api_key`/`api_secret` names). Every malformed request
//! gets its RFC 6749 error here, before any database or bcrypt work.

use actix_web::http::header;
use actix_web::{HttpMessage, HttpRequest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

/// Largest token request body accepted (a real one is under 300 bytes).
pub const MAX_TOKEN_REQUEST_BYTES: usize = 4096;

/// Why a token request was refused before its credentials were looked at (RFC 6749 5.2).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// `invalid_request`: missing, repeated or malformed parameters.
    #[error("{0}")]
    InvalidRequest(String),
    /// `invalid_client`: no credentials, or an authentication scheme that is not supported.
    #[error("client authentication failed")]
    InvalidClient,
    #[error("only the client_credentials and refresh_token grants are supported")]
    UnsupportedGrantType,
}

impl CredentialError {
    pub fn invalid_request(message: impl Into<String>) -> CredentialError {
        CredentialError::InvalidRequest(message.into())
    }

    /// The RFC 6749 error code.
    pub fn code(&self) -> &'static str {
        match self {
            CredentialError::InvalidRequest(_) => "invalid_request",
            CredentialError::InvalidClient => "invalid_client",
            CredentialError::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// `client_secret_basic`
    Basic,
    /// `client_secret_post` (form) or keygate's JSON body.
    Body,
}

/// Client credentials, not checked yet.
pub struct ClientAuth {
    pub client_id: String,
    pub client_secret: String,
    pub method: AuthMethod,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("method", &self.method)
            .finish()
    }
}

/// What a token request trades.
pub enum Grant {
    /// RFC 6749 section 4.4: the client's own credentials.
    ClientCredentials(ClientAuth),
    /// RFC 6749 section 6: a refresh token; client authentication is optional (the token is
    /// bound to its key) and, when sent, must be the token's key.
    RefreshToken {
        refresh_token: String,
        client: Option<ClientAuth>,
    },
}

/// A well-formed request for a token; the credentials are not checked yet.
pub struct TokenRequest {
    pub grant: Grant,
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("TokenRequest");
        match &self.grant {
            Grant::ClientCredentials(client) => out.field("client", client),
            Grant::RefreshToken { client, .. } => out
                .field("refresh_token", &"[redacted]")
                .field("client", client),
        };
        out.field("scope", &self.scope).finish()
    }
}

/// The parameters of a token request, from either kind of body (documented as the form's).
#[derive(Default, utoipa::ToSchema)]
#[schema(
    as = TokenForm,
    description = "An RFC 6749 section 4.4.2 token request; unrecognised parameters are ignored"
)]
pub struct BodyParams {
    #[schema(required = true, schema_with = supported_grants)]
    grant_type: Option<String>,
    /// `client_secret_post`: the API key's client_id. With HTTP Basic, it may repeat the
    /// client_id sent there.
    #[schema(nullable = false)]
    client_id: Option<String>,
    /// `client_secret_post`: the API key's secret.
    #[schema(nullable = false)]
    client_secret: Option<String>,
    /// Space-separated; narrows the token to these of the key's scopes (or, with
    /// `refresh_token`, of the scopes first granted).
    #[schema(nullable = false)]
    scope: Option<String>,
    /// With `grant_type=refresh_token`: the refresh token to trade (single use).
    #[schema(nullable = false)]
    refresh_token: Option<String>,
}

fn supported_grants() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["client_credentials", "refresh_token"]))
}

/// keygate's JSON token request.
#[derive(Deserialize)]
pub struct JsonBody {
    #[serde(default, alias = "api_key")]
    client_id: Option<String>,
    #[serde(default, alias = "api_secret")]
    client_secret: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The JSON body, with the second names of the credentials; unknown members are ignored.
impl utoipa::PartialSchema for JsonBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The token request as JSON: the credentials in the body, by either name, or a refresh token",
            ))
            .property("client_id", text("The API key's client_id"))
            .property("client_secret", text("The API key's secret"))
            .property("api_key", text("Alias of client_id"))
            .property("api_secret", text("Alias of client_secret"))
            .property(
                "scope",
                text("Space-separated; narrows the token to these of the key's scopes"),
            )
            .property(
                "refresh_token",
                text("A refresh token to trade for a new pair (instead of the credentials)"),
            )
            .property(
                "grant_type",
                supported_grants().description(Some(
                    "Optional in a JSON body: refresh_token when refresh_token is sent, else client_credentials",
                )),
            )
            .into()
    }
}

impl utoipa::ToSchema for JsonBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "TokenJson".into()
    }
}

const CREDENTIAL_NAMES: [&str; 5] = [
    "client_id",
    "client_secret",
    "api_key",
    "api_secret",
    "refresh_token",
];

pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<TokenRequest, CredentialError> {
    if form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(k, _)| CREDENTIAL_NAMES.contains(&k.as_ref()))
    {
        return Err(CredentialError::invalid_request(
            "credentials must not be sent in the URL (RFC 6749 section 2.3.1)",
        ));
    }
    let basic = basic_credentials(req)?;
    let kind = body_kind(req)?;
    let params = match kind {
        BodyKind::Form => form_params(body)?,
        BodyKind::Json => json_params(body)?,
    };
    let grant_type = match params.grant_type.as_deref() {
        Some(grant) => grant,
        None if kind == BodyKind::Form => {
            return Err(CredentialError::invalid_request("grant_type is required"));
        }
        // keygate's JSON body names no grant: a refresh token, or the credentials.
        None if params.refresh_token.is_some() => "refresh_token",
        None => "client_credentials",
    };
    let grant = match grant_type {
        "client_credentials" => Grant::ClientCredentials(
            client_auth(basic, params.client_id, params.client_secret)?
                .ok_or(CredentialError::InvalidClient)?,
        ),
        "refresh_token" => Grant::RefreshToken {
            refresh_token: params
                .refresh_token
                .ok_or_else(|| CredentialError::invalid_request("refresh_token is required"))?,
            client: client_auth(basic, params.client_id, params.client_secret)?,
        },
        _ => return Err(CredentialError::UnsupportedGrantType),
    };
    Ok(TokenRequest {
        grant,
        scope: params.scope,
    })
}

/// The client's credentials, from HTTP Basic or the body (never both); `None` if neither
/// holds any.
fn client_auth(
    basic: Option<(String, String)>,
    client_id: Option<String>,
    client_secret: Option<String>,
) -> Result<Option<ClientAuth>, CredentialError> {
    let (client_id, client_secret, method) = match (basic, client_id, client_secret) {
        (Some(_), _, Some(_)) => {
            return Err(CredentialError::invalid_request(
                "use one client authentication method: HTTP Basic or client_secret in the body, not both",
            ));
        }
        (Some((id, _)), Some(body_id), None) if body_id != id => {
            return Err(CredentialError::invalid_request(
                "client_id in the body differs from the one in HTTP Basic",
            ));
        }
        (Some((id, secret)), _, None) => (id, secret, AuthMethod::Basic),
        (None, Some(id), Some(secret)) => (id, secret, AuthMethod::Body),
        (None, None, None) => return Ok(None),
        (None, _, _) => return Err(CredentialError::InvalidClient),
    };
    if client_id.is_empty() || client_secret.is_empty() {
        return Err(CredentialError::InvalidClient);
    }
    Ok(Some(ClientAuth {
        client_id,
        client_secret,
        method,
    }))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Form,
    Json,
}

fn body_kind(req: &HttpRequest) -> Result<BodyKind, CredentialError> {
    let unsupported = || {
        CredentialError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded or application/json (UTF-8)",
        )
    };
    let mime = req
        .mime_type()
        .map_err(|_| unsupported())?
        .ok_or_else(unsupported)?;
    if let Some(charset) = mime.get_param("charset")
        && !charset.as_str().eq_ignore_ascii_case("utf-8")
    {
        return Err(unsupported());
    }
    match (mime.type_().as_str(), mime.subtype().as_str()) {
        ("application", "x-www-form-urlencoded") => Ok(BodyKind::Form),
        ("application", "json") => Ok(BodyKind::Json),
        _ => Err(unsupported()),
    }
}

/// `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 2.3.1).
pub fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, CredentialError> {
    let mut values = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CredentialError::invalid_request(
            "send exactly one Authorization header",
        ));
    }
    let malformed = || CredentialError::invalid_request("malformed HTTP Basic credentials");
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        // An authentication method the token endpoint does not support (RFC 6749 5.2).
        return Err(CredentialError::InvalidClient);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    Ok(Some((form_decode(id)?, form_decode(secret)?)))
}

fn form_decode(s: &str) -> Result<String, CredentialError> {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("v={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
        .map_err(|_| CredentialError::invalid_request("malformed HTTP Basic credentials"))
}

fn form_params(body: &[u8]) -> Result<BodyParams, CredentialError> {
    std::str::from_utf8(body)
        .map_err(|_| CredentialError::invalid_request("the form body is not UTF-8"))?;
    let mut params = BodyParams::default();
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "grant_type" => &mut params.grant_type,
            "client_id" => &mut params.client_id,
            "client_secret" => &mut params.client_secret,
            "scope" => &mut params.scope,
            "refresh_token" => &mut params.refresh_token,
            // RFC 6749 3.2: unrecognised parameters are ignored.
            _ => continue,
        };
        if slot.is_some() {
            return Err(CredentialError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        // RFC 6749 3.2: a parameter without a value is treated as omitted (but still counts
        // as present for the repetition rule above).
        *slot = Some(value.into_owned());
    }
    Ok(BodyParams {
        grant_type: params.grant_type.filter(|v| !v.is_empty()),
        client_id: params.client_id.filter(|v| !v.is_empty()),
        client_secret: params.client_secret.filter(|v| !v.is_empty()),
        scope: params.scope.filter(|v| !v.is_empty()),
        refresh_token: params.refresh_token.filter(|v| !v.is_empty()),
    })
}

fn json_params(body: &[u8]) -> Result<BodyParams, CredentialError> {
    // serde would also read a struct from an array; only an object is a request.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(CredentialError::invalid_request(
            "the body must be a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed: JsonBody = serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(&e))?;
    de.end()
        .map_err(|_| CredentialError::invalid_request("trailing data after the JSON body"))?;
    Ok(BodyParams {
        grant_type: parsed.grant_type.filter(|v| !v.is_empty()),
        client_id: parsed.client_id.filter(|v| !v.is_empty()),
        client_secret: parsed.client_secret.filter(|v| !v.is_empty()),
        scope: parsed.scope.filter(|v| !v.is_empty()),
        refresh_token: parsed.refresh_token.filter(|v| !v.is_empty()),
    })
}

/// Names the field and the kind of problem, never the value (which may be a secret).
pub fn json_error(err: &serde_path_to_error::Error<serde_json::Error>) -> CredentialError {
    let inner = err.inner();
    let path = err.path().to_string();
    let message = inner.to_string();
    let description = if inner.is_syntax() || inner.is_eof() {
        format!(
            "the body is not valid JSON (line {}, column {})",
            inner.line(),
            inner.column()
        )
    } else if let Some(field) = message.strip_prefix("duplicate field ") {
        format!(
            "field {} is repeated",
            field.split(" at ").next().unwrap_or(field)
        )
    } else if path == "." {
        "the body must be a JSON object".to_owned()
    } else {
        format!("field {path} has the wrong type (expected a string)")
    };
    CredentialError::invalid_request(description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn form(body: &str) -> (HttpRequest, Vec<u8>) {
        let req = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .to_http_request();
        (req, body.as_bytes().to_vec())
    }

    fn json(body: &str) -> (HttpRequest, Vec<u8>) {
        let req = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .to_http_request();
        (req, body.as_bytes().to_vec())
    }

    fn code(result: Result<TokenRequest, CredentialError>) -> &'static str {
        result.map(|_| "ok").unwrap_or_else(|e| e.code())
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// A form value as a client would encode it.
        fn encoded(value: &str) -> String {
            form_urlencoded::byte_serialize(value.as_bytes()).collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::domain::property_cases(2048)))]

            /// Any body, under either content type, is a token request or an error with one
            /// of the documented codes; it never panics.
            #[test]
            fn any_body_parses_or_gets_a_documented_error(
                body in proptest::collection::vec(any::<u8>(), 0..512),
                as_json in any::<bool>(),
            ) {
                let req = TestRequest::post()
                    .insert_header((
                        header::CONTENT_TYPE,
                        if as_json { "application/json" } else { "application/x-www-form-urlencoded" },
                    ))
                    .to_http_request();
                let answer = code(parse(&req, &body));
                prop_assert!(
                    ["ok", "invalid_request", "invalid_client", "unsupported_grant_type"]
                        .contains(&answer),
                    "{}", answer
                );
            }

            /// Credentials of any text come back exactly as sent, whatever unknown parameters
            /// ride along (RFC 6749 section 3.2: they are ignored).
            #[test]
            fn credentials_come_back_as_sent_beside_unknown_parameters(
                client_id in "\\PC{1,40}",
                client_secret in "\\PC{1,80}",
                extra in proptest::collection::vec(("x_[a-z]{1,8}", "\\PC{0,20}"), 0..4),
            ) {
                let mut body = format!(
                    "grant_type=client_credentials&client_id={}&client_secret={}",
                    encoded(&client_id),
                    encoded(&client_secret)
                );
                let mut names = std::collections::HashSet::new();
                for (name, value) in &extra {
                    if names.insert(name.clone()) {
                        body.push_str(&format!("&{name}={}", encoded(value)));
                    }
                }
                let (req, body) = form(&body);
                let parsed = parse(&req, &body);
                prop_assume!(parsed.is_ok());
                let parsed = parsed.unwrap();
                let client = credentials(&parsed);
                prop_assert_eq!(&client.client_id, &client_id);
                prop_assert_eq!(&client.client_secret, &client_secret);
            }
        }
    }

    #[test]
    fn form_with_body_credentials_is_client_secret_post() {
        let (req, body) =
            form("grant_type=client_credentials&client_id=a&client_secret=b&scope=x%20y&extra=1");
        let parsed = parse(&req, &body).unwrap();
        let client = credentials(&parsed);
        assert_eq!(
            (client.client_id.as_str(), client.client_secret.as_str()),
            ("a", "b")
        );
        assert_eq!(parsed.scope.as_deref(), Some("x y"));
        assert_eq!(client.method, AuthMethod::Body);
    }

    #[test]
    fn basic_credentials_are_form_decoded_after_base64() {
        let encoded = STANDARD.encode("my%2Bid:s%3Ae+cret");
        let req = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((header::AUTHORIZATION, format!("Basic {encoded}")))
            .to_http_request();
        let parsed = parse(&req, b"grant_type=client_credentials").unwrap();
        let client = credentials(&parsed);
        assert_eq!(client.client_id, "my+id");
        assert_eq!(client.client_secret, "s:e cret");
        assert_eq!(client.method, AuthMethod::Basic);
    }

    #[test]
    fn json_accepts_the_fiskaly_aliases_and_defaults_the_grant() {
        let (req, body) = json(r#"{"api_key":"a","api_secret":"b"}"#);
        let parsed = parse(&req, &body).unwrap();
        let client = credentials(&parsed);
        assert_eq!(
            (client.client_id.as_str(), client.client_secret.as_str()),
            ("a", "b")
        );
    }

    #[test]
    fn a_refresh_token_alone_is_a_refresh_grant_in_either_body() {
        for (req, body) in [
            json(r#"{"refresh_token":"r"}"#),
            form("grant_type=refresh_token&refresh_token=r"),
        ] {
            let parsed = parse(&req, &body).unwrap();
            let Grant::RefreshToken {
                refresh_token,
                client: None,
            } = &parsed.grant
            else {
                panic!("not a refresh grant without client authentication");
            };
            assert_eq!(refresh_token, "r");
            assert!(!format!("{parsed:?}").contains("\"r\""));
        }
        let (req, body) =
            form("grant_type=refresh_token&refresh_token=r&client_id=a&client_secret=b");
        let parsed = parse(&req, &body).unwrap();
        assert!(matches!(
            &parsed.grant,
            Grant::RefreshToken { client: Some(c), .. } if c.client_id == "a"
        ));
    }

    fn credentials(request: &TokenRequest) -> &ClientAuth {
        match &request.grant {
            Grant::ClientCredentials(client) => client,
            Grant::RefreshToken { .. } => panic!("not a client-credentials grant"),
        }
    }

    #[test]
    fn bad_requests_get_their_rfc_6749_codes() {
        type Case = (&'static str, (HttpRequest, Vec<u8>), &'static str);
        let cases: &[Case] = &[
            (
                "no grant_type on the form path",
                form("client_id=a&client_secret=b"),
                "invalid_request",
            ),
            (
                "an empty grant_type is omitted",
                form("grant_type=&client_id=a&client_secret=b"),
                "invalid_request",
            ),
            (
                "another grant",
                form("grant_type=password&client_id=a&client_secret=b"),
                "unsupported_grant_type",
            ),
            (
                "a repeated parameter",
                form("grant_type=client_credentials&client_id=a&client_id=a&client_secret=b"),
                "invalid_request",
            ),
            (
                "a repeated empty parameter",
                form("grant_type=client_credentials&scope=&scope=&client_id=a&client_secret=b"),
                "invalid_request",
            ),
            (
                "no credentials",
                form("grant_type=client_credentials"),
                "invalid_client",
            ),
            (
                "an id without a secret",
                form("grant_type=client_credentials&client_id=a"),
                "invalid_client",
            ),
            (
                "an empty secret",
                form("grant_type=client_credentials&client_id=a&client_secret="),
                "invalid_client",
            ),
            (
                "invalid UTF-8",
                (form("").0, b"grant_type=\xff".to_vec()),
                "invalid_request",
            ),
            (
                "JSON with a number",
                json(r#"{"client_id":5,"client_secret":"b"}"#),
                "invalid_request",
            ),
            (
                "JSON with a duplicate key",
                json(r#"{"client_id":"a","client_id":"a","client_secret":"b"}"#),
                "invalid_request",
            ),
            (
                "JSON id and its alias",
                json(r#"{"client_id":"a","api_key":"a","client_secret":"b"}"#),
                "invalid_request",
            ),
            ("JSON that is an array", json(r#"["a"]"#), "invalid_request"),
            (
                "JSON that is broken",
                json(r#"{"client_id":"#),
                "invalid_request",
            ),
            (
                "JSON with trailing data",
                json(r#"{"client_id":"a","client_secret":"b"} x"#),
                "invalid_request",
            ),
            (
                "a refresh grant without its token",
                form("grant_type=refresh_token&client_id=a&client_secret=b"),
                "invalid_request",
            ),
            (
                "a refresh grant with an id but no secret",
                form("grant_type=refresh_token&refresh_token=r&client_id=a"),
                "invalid_client",
            ),
            (
                "JSON with another grant",
                json(r#"{"client_id":"a","client_secret":"b","grant_type":"password"}"#),
                "unsupported_grant_type",
            ),
        ];
        for (why, (req, body), expected) in cases {
            assert_eq!(code(parse(req, body)), *expected, "{why}");
        }
    }

    #[test]
    fn content_types_other_than_form_and_json_are_refused() {
        for ct in [
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded; charset=latin1",
        ] {
            let req = TestRequest::post()
                .insert_header((header::CONTENT_TYPE, ct))
                .to_http_request();
            assert_eq!(
                code(parse(&req, b"grant_type=client_credentials")),
                "invalid_request",
                "{ct}"
            );
        }
        let req = TestRequest::post().to_http_request();
        assert_eq!(
            code(parse(&req, b"grant_type=client_credentials")),
            "invalid_request"
        );
    }

    #[test]
    fn two_authentication_methods_or_credentials_in_the_url_are_refused() {
        let req = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((
                header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode("a:b")),
            ))
            .to_http_request();
        assert_eq!(
            code(parse(
                &req,
                b"grant_type=client_credentials&client_secret=b"
            )),
            "invalid_request"
        );
        let req = TestRequest::post()
            .uri("/v1/token?client_secret=b")
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .to_http_request();
        assert_eq!(
            code(parse(&req, b"grant_type=client_credentials&client_id=a")),
            "invalid_request"
        );
    }

    #[test]
    fn malformed_basic_headers_are_refused() {
        for value in [
            "Basic",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("no-colon")),
        ] {
            let req = TestRequest::post()
                .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
                .insert_header((header::AUTHORIZATION, value.to_string()))
                .to_http_request();
            assert_eq!(
                code(parse(&req, b"grant_type=client_credentials")),
                "invalid_request",
                "{value}"
            );
        }
        let req = TestRequest::post()
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .insert_header((header::AUTHORIZATION, "Bearer abc"))
            .to_http_request();
        assert_eq!(
            code(parse(&req, b"grant_type=client_credentials")),
            "invalid_client"
        );
    }

    #[test]
    fn json_errors_never_echo_values() {
        let secret = "kgs_live_SHOULDNOTAPPEAR";
        let (req, body) = json(&format!(
            r#"{{"client_id":["{secret}"],"client_secret":"b"}}"#
        ));
        let err = parse(&req, &body).unwrap_err();
        assert!(!err.to_string().contains("SHOULDNOTAPPEAR"), "{err}");
        assert!(err.to_string().contains("client_id"), "{err}");
    }
}
