//! `GET /v1/api-keys`: filter by `environment` and `status` (repeatable), order by
//! `order_by`/`order`, page with `limit` (1 to 100) and `offset`.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiKeyView, views};
use crate::auth::caller::{ApiKeysRead, Operator};
use crate::db::{self, api_keys::KeyOrder, api_keys::KeySearch};
use crate::domain::{Environment, ValidationError};
use crate::error::ApiError;
use crate::routes::Page;
use crate::state::AppState;

#[derive(Debug, PartialEq)]
struct ListQuery {
    environments: Vec<String>,
    statuses: Vec<String>,
    order: KeyOrder,
    descending: bool,
    limit: i64,
    offset: i64,
}

/// Parses the query string strictly: unknown parameters and bad values name themselves.
fn parse_query(query: &str) -> Result<ListQuery, ValidationError> {
    let mut parsed = ListQuery {
        environments: Vec::new(),
        statuses: Vec::new(),
        order: KeyOrder::CreatedAt,
        descending: false,
        limit: 100,
        offset: 0,
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = value.as_ref();
        match name.as_ref() {
            "environment" => {
                let environment: Environment = value.parse()?;
                parsed.environments.push(environment.as_str().to_owned());
            }
            "status" => match value {
                "enabled" | "disabled" | "revoked" => parsed.statuses.push(value.to_owned()),
                _ => {
                    return Err(ValidationError::new(
                        "status",
                        "must be enabled, disabled or revoked",
                    ));
                }
            },
            "order_by" => {
                parsed.order = match value {
                    "name" => KeyOrder::Name,
                    "environment" => KeyOrder::Environment,
                    "status" => KeyOrder::Status,
                    "created_at" => KeyOrder::CreatedAt,
                    "last_used_at" => KeyOrder::LastUsedAt,
                    _ => {
                        return Err(ValidationError::new(
                            "order_by",
                            "must be name, environment, status, created_at or last_used_at",
                        ));
                    }
                }
            }
            "order" => {
                parsed.descending = match value {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(ValidationError::new("order", "must be asc or desc")),
                }
            }
            "limit" => {
                parsed.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=100).contains(l))
                    .ok_or_else(|| {
                        ValidationError::new("limit", "must be an integer from 1 to 100")
                    })?;
            }
            "offset" => {
                parsed.offset = value
                    .parse()
                    .ok()
                    .filter(|o| (0..=10_000_000).contains(o))
                    .ok_or_else(|| {
                        ValidationError::new("offset", "must be an integer from 0 to 10000000")
                    })?;
            }
            other => {
                let field = other.chars().take(40).collect::<String>();
                return Err(ValidationError::new(field, "unknown query parameter"));
            }
        }
    }
    parsed.environments.dedup();
    parsed.statuses.dedup();
    Ok(parsed)
}

pub async fn list_api_keys(
    operator: Operator<ApiKeysRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = parse_query(req.query_string())?;
    let search = KeySearch {
        organization_id: operator.organization_id,
        created_by: (!operator.holds("api_keys:manage")).then_some(operator.owner_user_id),
        environments: query.environments,
        statuses: query.statuses,
        order: query.order,
        descending: query.descending,
        limit: query.limit,
        offset: query.offset,
    };
    let page = db::run(&state.pool, move |conn| {
        let (keys, count) = db::api_keys::search(conn, &search)?;
        Ok(Page::<ApiKeyView> {
            data: views(conn, keys)?,
            count,
            limit: search.limit,
            offset: search.offset,
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_repeated_filters() {
        let q = parse_query("").unwrap();
        assert_eq!(
            (q.limit, q.offset, q.order, q.descending),
            (100, 0, KeyOrder::CreatedAt, false)
        );
        let q = parse_query("environment=live&environment=test&status=enabled&order_by=last_used_at&order=desc&limit=5&offset=10").unwrap();
        assert_eq!(q.environments, ["live", "test"]);
        assert_eq!(q.statuses, ["enabled"]);
        assert_eq!(
            (q.order, q.descending, q.limit, q.offset),
            (KeyOrder::LastUsedAt, true, 5, 10)
        );
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
        ] {
            assert_eq!(parse_query(query).unwrap_err().field, field, "{query}");
        }
    }
}
