//! HTTP routes. Handlers are thin: parse, call a plain function, render.

// Visible to the crate so that `openapi` can list each handler's `#[utoipa::path]`.
pub mod api_keys;
pub(crate) mod audit;
pub mod body;
pub(crate) mod docs;
pub(crate) mod health;
pub(crate) mod introspection;
pub(crate) mod invitations;
pub(crate) mod me;
pub(crate) mod metrics;
pub(crate) mod organizations;
pub(crate) mod revocation_stream;
pub(crate) mod session;
pub(crate) mod token;
pub(crate) mod usage;
pub(crate) mod users;
pub(crate) mod webhooks;
pub(crate) mod well_known;

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

/// Declares every route once: `configure` registers them (other methods on a path get 405
/// with `Allow`), and `ROUTES` lists the documented ones, so a test can hold the OpenAPI
/// document to them; `UNDOCUMENTED_ROUTES`, the few left out of it on purpose.
macro_rules! routes {
    (
        $($path:literal => { $($method:ident => $handler:path),+ $(,)? }),+ ,
        $(undocumented $u_path:literal => { $($u_method:ident => $u_handler:path),+ $(,)? }),+ $(,)?
    ) => {
        /// Every (method, path) keygate serves and the OpenAPI document describes.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path),)+)+];

        /// Every (method, path) keygate serves that the OpenAPI document leaves out.
        pub const UNDOCUMENTED_ROUTES: &[(&str, &str)] =
            &[$($((stringify!($u_method), $u_path),)+)+];

        pub fn configure(cfg: &mut web::ServiceConfig) {
            $(
                cfg.service(
                    resource($path, &[$(stringify!($method)),+])
                        $(.route(web::route().method(Method::$method).to($handler)))+
                );
            )+
            $(
                cfg.service(
                    resource($u_path, &[$(stringify!($u_method)),+])
                        $(.route(web::route().method(Method::$u_method).to($u_handler)))+
                );
            )+
        }
    };
}

routes! {
    "/v1/token" => { POST => token::issue_token },
    "/v1/introspect" => { POST => introspection::introspect },
    "/v1/revoke" => { POST => introspection::revoke },
    "/v1/revocation-stream" => { GET => revocation_stream::follow },
    "/.well-known/jwks.json" => { GET => well_known::jwks },
    "/.well-known/oauth-authorization-server" => { GET => well_known::authorization_server_metadata },
    "/v1/me" => { GET => me::me },
    "/v1/me/permissions" => { GET => me::permissions },
    "/v1/session" => {
        POST => session::log_in,
        GET => session::current_session,
        DELETE => session::log_out,
    },
    "/v1/api-keys" => { GET => api_keys::list_api_keys, POST => api_keys::create_api_key },
    "/v1/api-keys/{client_id}" => {
        GET => api_keys::retrieve_api_key,
        PATCH => api_keys::update_api_key,
        DELETE => api_keys::delete_api_key,
    },
    "/v1/api-keys/{client_id}/revoke" => { POST => api_keys::revoke_api_key },
    "/v1/api-keys/{client_id}/rotate" => { POST => api_keys::rotate_api_key },
    "/v1/api-keys/{client_id}/usage" => { GET => usage::key_usage },
    "/v1/usage" => { GET => usage::organization_usage },
    "/v1/users" => { GET => users::list_users, POST => users::create_user },
    "/v1/users/invitations" => {
        GET => invitations::list_invitations,
        POST => invitations::invite_user,
    },
    "/v1/users/invitations/{user_id}" => { DELETE => invitations::revoke_invitation },
    "/v1/users/invitations/{user_id}/resend" => { POST => invitations::resend_invitation },
    "/v1/invitations/accept" => { POST => invitations::accept_invitation },
    "/v1/users/{user_id}" => { GET => users::retrieve_user, PATCH => users::update_user },
    "/v1/organizations" => {
        GET => organizations::list_organizations,
        POST => organizations::create_organization,
    },
    "/v1/organizations/{name}" => {
        GET => organizations::retrieve_organization,
        PATCH => organizations::update_organization,
        DELETE => organizations::delete_organization,
    },
    "/v1/audit-events" => { GET => audit::list_audit_events },
    "/v1/webhook-endpoints" => {
        GET => webhooks::list_endpoints,
        POST => webhooks::create_endpoint,
    },
    "/v1/webhook-endpoints/{id}" => {
        GET => webhooks::retrieve_endpoint,
        PATCH => webhooks::update_endpoint,
        DELETE => webhooks::delete_endpoint,
    },
    "/v1/webhook-endpoints/{id}/roll-secret" => { POST => webhooks::roll_secret },
    "/v1/webhook-endpoints/{id}/test" => { POST => webhooks::send_test },
    "/v1/webhook-endpoints/{id}/deliveries" => { GET => webhooks::list_deliveries },
    "/v1/webhook-deliveries/{id}" => { GET => webhooks::get_delivery },
    "/v1/webhook-deliveries/{id}/retry" => { POST => webhooks::retry_delivery },
    "/v1/events" => { GET => webhooks::list_events },
    "/openapi.json" => { GET => well_known::openapi },
    "/docs" => { GET => docs::page },
    "/healthz" => { GET => health::live },
    "/readyz" => { GET => health::ready },
    "/metrics" => { GET => metrics::metrics },
    // The files of the /docs page (Swagger UI's script and stylesheet, and keygate's own): how
    // that page is drawn, changing with any upgrade of Swagger UI, and no part of the API a
    // client may rely on, so the document leaves them out.
    undocumented "/docs/{file}" => { GET => docs::asset },
}

/// A resource whose other methods get 405 with `Allow`, in the documented error format.
fn resource(path: &str, methods: &[&str]) -> actix_web::Resource {
    let allow = methods.join(", ");
    web::resource(path).default_service(web::to(move || {
        let allow = allow.clone();
        async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
    }))
}

/// One page of a list: `{data, count, limit, offset}`, `count` being how many match in all,
/// and `next_cursor` where a list can continue by keyset.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// How many match in all.
    pub count: i64,
    pub limit: i64,
    pub offset: i64,
    /// Where a full page of keys ends; pass it as `cursor` to continue after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub next_cursor: Option<String>,
}

/// The query parameters that page a list, as `integer_parameter` reads them.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParameters {
    /// 1 to 100
    #[param(minimum = 1, maximum = 100, default = 100)]
    pub limit: Option<i64>,
    /// rows to skip
    #[param(minimum = 0, maximum = 10_000_000, default = 0)]
    pub offset: Option<i64>,
}

impl<T> Page<T> {
    /// Everything there is, in one page.
    pub fn all(data: Vec<T>) -> Page<T> {
        let count = data.len() as i64;
        Page {
            data,
            count,
            limit: count,
            offset: 0,
            next_cursor: None,
        }
    }
}

/// Marks an answer that carries a token, a secret or a session as never to be stored
/// (RFC 6749 section 5.1).
pub fn no_store(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    use actix_web::http::header::{self, HeaderValue};
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
    response
}

/// An integer query parameter within `range`, or an error naming it.
pub fn integer_parameter(
    field: &'static str,
    value: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, crate::domain::ValidationError> {
    value
        .parse()
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| {
            crate::domain::ValidationError::new(
                field,
                format!(
                    "must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        })
}

/// The answer for every path keygate does not serve.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Maps actix's own extractor failures (bad JSON, query or path) to the documented format.
pub fn extractor_configs(
    max_body_bytes: usize,
) -> (web::JsonConfig, web::QueryConfig, web::PathConfig) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(|err, _req: &HttpRequest| {
            use actix_web::error::JsonPayloadError;
            let api_error = match &err {
                JsonPayloadError::OverflowKnownLength { limit, .. }
                | JsonPayloadError::Overflow { limit } => {
                    ApiError::PayloadTooLarge { limit: *limit }
                }
                JsonPayloadError::ContentType => {
                    ApiError::invalid_request("Content-Type must be application/json")
                }
                // serde's message can quote the value: say what is wrong, not what was sent
                // (routes with bodies use `JsonBody`, which names the field).
                JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::invalid_request(
                    "a field of the JSON body has the wrong type or value",
                ),
                _ => ApiError::invalid_request("the body is not valid JSON"),
            };
            api_error.into()
        });
    let query = web::QueryConfig::default().error_handler(|_err, _req: &HttpRequest| {
        ApiError::invalid_request("the query string is malformed").into()
    });
    let path = web::PathConfig::default()
        .error_handler(|_err, _req: &HttpRequest| ApiError::NotFound.into());
    (json, query, path)
}
