//! `GET /v1/api-keys`: filter by `environment` and `status` (repeatable), order by
//! `order_by`/`order`, page with `limit` (1 to 100) and either `offset` or the `cursor` the
//! previous page returned as `next_cursor` (keyset pagination: as fast deep in a million
//! keys as on the first page).

use actix_web::{HttpRequest, HttpResponse, web};

use super::ApiKeyView;
use crate::auth::caller::{ApiKeysRead, Operator};
use crate::db::key_lists::KeyOrder;
use crate::domain::{Environment, KeyStatus, ValidationError};
use crate::error::ApiError;
use crate::openapi::ManagementErrors;
use crate::routes::{Page, PageParameters, integer_parameter};
use crate::service::key_lists::{self, KeyListQuery, decode_cursor, encode_cursor};
use crate::service::policy;
use crate::state::AppState;

/// The query parameters `parse_query` reads, besides `PageParameters`; a test holds the two
/// together.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "only its shape is read, by the OpenAPI document")]
pub struct ListParameters {
    /// repeatable filter
    pub environment: Option<Vec<Environment>>,
    /// a synonym of environment (repeatable filter)
    pub kind: Option<Vec<Environment>>,
    /// repeatable filter
    pub status: Option<Vec<KeyStatus>>,
    #[param(schema_with = sort_column)]
    pub order_by: Option<KeyOrder>,
    #[param(schema_with = sort_direction)]
    pub order: Option<String>,
    /// the previous page's next_cursor: continue after it (keyset pagination; not with offset)
    pub cursor: Option<String>,
}

fn sort_column() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{RefOr, schema::Schema};
    let mut schema = <KeyOrder as utoipa::PartialSchema>::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        object.description = Some("sort column (`kind` is a synonym of `environment`)".into());
        if let Some(values) = &mut object.enum_values {
            values.push("kind".into());
        }
        object.default = Some("created_at".into());
    }
    schema
}

fn sort_direction() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["asc", "desc"]))
        .default(Some("asc".into()))
        .description(Some("sort direction"))
}

/// Parses the query string strictly: unknown parameters and bad values name themselves.
fn parse_query(query: &str) -> Result<KeyListQuery, ValidationError> {
    let mut parsed = KeyListQuery {
        environments: Vec::new(),
        statuses: Vec::new(),
        order: KeyOrder::CreatedAt,
        descending: false,
        limit: 100,
        offset: 0,
        cursor: None,
        only_own: false,
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.as_ref();
        match name.as_ref() {
            "environment" => parsed.environments.push(value.parse::<Environment>()?),
            "kind" => parsed.environments.push(
                value
                    .parse::<Environment>()
                    .map_err(|e| ValidationError::new("kind", e.message))?,
            ),
            "status" => parsed.statuses.push(value.parse::<KeyStatus>()?),
            "order_by" => {
                parsed.order = serde_json::from_value(serde_json::Value::String(value.to_owned()))
                    .map_err(|_| {
                        ValidationError::new(
                            "order_by",
                            "must be name, key_prefix, environment (or kind), scopes, status, created_at, last_used_at or expires_at",
                        )
                    })?;
            }
            "order" => {
                parsed.descending = match value {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(ValidationError::new("order", "must be asc or desc")),
                }
            }
            "limit" => parsed.limit = integer_parameter("limit", value, 1..=100)?,
            "offset" => parsed.offset = integer_parameter("offset", value, 0..=10_000_000)?,
            "cursor" => parsed.cursor = Some(decode_cursor(value)?),
            other => {
                let field = other.chars().take(40).collect::<String>();
                return Err(ValidationError::new(field, "unknown query parameter"));
            }
        }
    }
    if let Some(cursor) = &parsed.cursor {
        if parsed.offset != 0 {
            return Err(ValidationError::new(
                "cursor",
                "give cursor or offset, not both",
            ));
        }
        if cursor.order != parsed.order || cursor.descending != parsed.descending {
            return Err(ValidationError::new(
                "cursor",
                "was made for another order_by or order",
            ));
        }
    }
    parsed.environments.dedup();
    parsed.statuses.dedup();
    Ok(parsed)
}

#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "List API keys (holders of api_keys:manage see the organization's, others their own)",
    description = "Needs `api_keys:read`. Unknown query parameters are refused. Page with `limit` \
        and either `offset` or the `cursor` the previous page returned as `next_cursor` (keyset \
        pagination: as fast deep in a million keys as on the first page).",
    security(("bearerAuth" = ["api_keys:read"]), ("sessionCookie" = [])),
    params(ListParameters, PageParameters),
    responses(ManagementErrors, (status = 200, description = "A page of keys", body = Page<ApiKeyView>))
)]
pub async fn list_api_keys(
    operator: Operator<ApiKeysRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = parse_query(req.query_string())?;
    let (limit, offset) = (query.limit, query.offset);
    let organization_id = policy::home_organization(&operator)?;
    let page = key_lists::list(&state.service, &operator, organization_id, query).await?;
    Ok(HttpResponse::Ok().json(Page {
        data: page.keys.into_iter().map(ApiKeyView::from).collect(),
        count: page.count,
        limit,
        offset,
        next_cursor: page.next_cursor.as_ref().map(encode_cursor),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::key_lists::KeyCursor;
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Query strings made of the list's own parameter names and values, mangled.
        fn queries() -> impl Strategy<Value = String> {
            let name = prop_oneof![
                Just("environment"),
                Just("kind"),
                Just("status"),
                Just("order_by"),
                Just("order"),
                Just("limit"),
                Just("offset"),
                Just("cursor"),
                Just("colour"),
            ];
            let value = prop_oneof![
                "live|test|enabled|disabled|revoked|created_at|name|last_used_at|asc|desc",
                "-?[0-9]{1,12}",
                "[A-Za-z0-9_-]{0,40}",
                "\\PC{0,20}",
            ];
            proptest::collection::vec((name, value), 0..6).prop_map(|pairs| {
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish()
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::domain::property_cases(4096)))]

            /// Any query is a list request within the documented bounds, or refused naming the
            /// parameter at fault; never a panic, never a limit past 100.
            #[test]
            fn any_query_is_bounded_or_names_its_fault(query in queries()) {
                match parse_query(&query) {
                    Ok(q) => {
                        prop_assert!((1..=100).contains(&q.limit));
                        prop_assert!(q.offset >= 0);
                    }
                    Err(refused) => prop_assert!(!refused.field.is_empty()),
                }
            }

            /// Any bytes as a query string: no panic.
            #[test]
            fn any_text_as_a_query_never_panics(query in "\\PC{0,200}") {
                let _ = parse_query(&query);
            }
        }
    }

    #[test]
    fn defaults_and_repeated_filters() {
        let q = parse_query("").unwrap();
        assert_eq!(
            (q.limit, q.offset, q.order, q.descending),
            (100, 0, KeyOrder::CreatedAt, false)
        );
        let q = parse_query("environment=live&environment=test&status=enabled&order_by=last_used_at&order=desc&limit=5&offset=10").unwrap();
        assert_eq!(q.environments, [Environment::Live, Environment::Test]);
        assert_eq!(q.statuses, [KeyStatus::Enabled]);
        assert_eq!(
            (q.order, q.descending, q.limit, q.offset),
            (KeyOrder::LastUsedAt, true, 5, 10)
        );
        let q = parse_query("kind=test&order_by=kind").unwrap();
        assert_eq!(
            (q.environments, q.order),
            (vec![Environment::Test], KeyOrder::Environment),
            "kind is a synonym of environment"
        );
        assert_eq!(parse_query("kind=prod").unwrap_err().field, "kind");
    }

    #[test]
    fn bad_parameters_name_themselves() {
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=x", "limit"),
            ("offset=-1", "offset"),
            ("order=up", "order"),
            ("order_by=secret", "order_by"),
            ("status=active", "status"),
            ("environment=prod", "environment"),
            ("colour=blue", "colour"),
            ("cursor=!!", "cursor"),
            ("cursor=e30", "cursor"),
        ] {
            assert_eq!(parse_query(query).unwrap_err().field, field, "{query}");
        }
    }

    #[test]
    fn every_documented_parameter_is_read() {
        use utoipa::IntoParams;
        let cursor = encode_cursor(&KeyCursor {
            order: KeyOrder::Name,
            descending: true,
            text: Some("a".into()),
            time: None,
            id: 7,
        });
        let samples = [
            ("environment", "test"),
            ("kind", "live"),
            ("status", "disabled"),
            ("order_by", "name"),
            ("order", "desc"),
            ("cursor", &cursor),
            ("limit", "7"),
            ("offset", "0"),
        ];
        let mut documented: Vec<String> = ListParameters::into_params(|| None)
            .into_iter()
            .chain(PageParameters::into_params(|| None))
            .map(|p| p.name)
            .collect();
        documented.sort();
        let mut sampled: Vec<&str> = samples.iter().map(|(name, _)| *name).collect();
        sampled.sort();
        assert_eq!(documented, sampled);
        let query: Vec<String> = samples.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let q = parse_query(&query.join("&")).unwrap();
        assert_eq!(q.environments, [Environment::Test, Environment::Live]);
        assert_eq!(q.statuses, [KeyStatus::Disabled]);
        assert_eq!(
            (q.order, q.descending, q.limit, q.offset),
            (KeyOrder::Name, true, 7, 0)
        );
        assert_eq!(q.cursor.unwrap().id, 7);
    }

    #[test]
    fn a_cursor_must_match_its_order_and_excludes_offset() {
        let cursor = KeyCursor {
            order: KeyOrder::Name,
            descending: false,
            text: Some("a".into()),
            time: None,
            id: 7,
        };
        let encoded = encode_cursor(&cursor);
        assert_eq!(
            parse_query(&format!("order_by=name&cursor={encoded}"))
                .unwrap()
                .cursor,
            Some(cursor)
        );
        assert_eq!(
            parse_query(&format!("cursor={encoded}")).unwrap_err().field,
            "cursor"
        );
        assert_eq!(
            parse_query(&format!("order_by=name&offset=5&cursor={encoded}"))
                .unwrap_err()
                .field,
            "cursor"
        );
    }
}
