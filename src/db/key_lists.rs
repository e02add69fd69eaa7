//! Pages of an organization's keys: filters, every order the API offers, offset or keyset
//! cursor, and the count.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::api_keys::ApiKey;
use super::schema::api_keys;
use crate::domain::{Environment, KeyStatus};

/// Columns a key list may be ordered by.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KeyOrder {
    Name,
    KeyPrefix,
    /// Also `kind`, the name some other services give the environment.
    #[serde(alias = "kind")]
    Environment,
    Scopes,
    Status,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
}

/// Where the previous page ended: its last row's sort value and id (keyset pagination, which
/// costs the same on page 10 000 as on page 1, where `offset` reads and skips every row
/// before).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KeyCursor {
    pub order: KeyOrder,
    pub descending: bool,
    pub text: Option<String>,
    pub time: Option<NaiveDateTime>,
    pub id: i64,
}

impl KeyCursor {
    /// The cursor just after `key` in this order.
    pub fn after(key: &ApiKey, order: KeyOrder, descending: bool) -> KeyCursor {
        let (text, time) = match order {
            KeyOrder::Name => (Some(key.name.clone()), None),
            KeyOrder::KeyPrefix => (Some(key.key_prefix.clone()), None),
            KeyOrder::Scopes => (Some(key.scopes.clone()), None),
            KeyOrder::ExpiresAt => (None, key.expires_at),
            KeyOrder::Environment => (Some(key.environment.as_str().to_owned()), None),
            KeyOrder::Status => (Some(key.status.as_str().to_owned()), None),
            KeyOrder::CreatedAt => (None, Some(key.created_at)),
            KeyOrder::LastUsedAt => (None, key.last_used_at),
        };
        KeyCursor {
            order,
            descending,
            text,
            time,
            id: key.id,
        }
    }
}

/// A page of an organization's undeleted keys.
pub struct KeySearch {
    pub organization_id: i64,
    /// `Some(owner)`: only keys whose creator is `owner`.
    pub created_by: Option<i64>,
    pub environments: Vec<Environment>,
    pub statuses: Vec<KeyStatus>,
    pub order: KeyOrder,
    pub descending: bool,
    pub limit: i64,
    pub offset: i64,
    /// Continue after this row instead of skipping `offset` rows.
    pub after: Option<KeyCursor>,
}

type KeyQuery<'a> = diesel::dsl::IntoBoxed<
    'a,
    diesel::dsl::LeftJoin<api_keys::table, super::schema::users::table>,
    super::MultiBackend,
>;

fn filtered(search: &KeySearch) -> KeyQuery<'_> {
    let mut query = api_keys::table
        .left_join(super::schema::users::table)
        .filter(api_keys::organization_id.eq(search.organization_id))
        .filter(api_keys::deleted_at.is_null())
        .into_boxed();
    if let Some(owner) = search.created_by {
        query = query.filter(api_keys::created_by.eq(owner));
    }
    if !search.environments.is_empty() {
        query = query.filter(api_keys::environment.eq_any(&search.environments));
    }
    if !search.statuses.is_empty() {
        query = query.filter(api_keys::status.eq_any(&search.statuses));
    }
    query
}

/// Rows strictly after the cursor in the order (column, id): `column >= v AND (column > v OR
/// id > i)` (mirrored when descending). The first half is a range the index can seek to; the
/// OR alone would make the database read the index from its start.
macro_rules! after_value {
    ($query:expr, $column:expr, $value:expr, $cursor:expr) => {{
        let (value, id) = ($value, $cursor.id);
        if $cursor.descending {
            $query
                .filter($column.le(value.clone()))
                .filter($column.lt(value).or(api_keys::id.lt(id)))
        } else {
            $query
                .filter($column.ge(value.clone()))
                .filter($column.gt(value).or(api_keys::id.gt(id)))
        }
    }};
}

/// Rows after the cursor in an order on a column that may be null: rows with a value first
/// (in either direction), then the nulls, by id.
macro_rules! after_nullable {
    ($query:expr, $column:expr, $cursor:expr) => {{
        let (id, descending) = ($cursor.id, $cursor.descending);
        match ($cursor.time, descending) {
            (Some(at), false) => $query.filter(
                $column
                    .gt(at)
                    .or($column.eq(at).and(api_keys::id.gt(id)))
                    .or($column.is_null()),
            ),
            (Some(at), true) => $query.filter(
                $column
                    .lt(at)
                    .or($column.eq(at).and(api_keys::id.lt(id)))
                    .or($column.is_null()),
            ),
            (None, false) => $query.filter($column.is_null().and(api_keys::id.gt(id))),
            (None, true) => $query.filter($column.is_null().and(api_keys::id.lt(id))),
        }
    }};
}

fn after<'a>(query: KeyQuery<'a>, cursor: &KeyCursor) -> KeyQuery<'a> {
    let text = || cursor.text.clone().unwrap_or_default();
    match cursor.order {
        KeyOrder::Name => after_value!(query, api_keys::name, text(), cursor),
        KeyOrder::KeyPrefix => after_value!(query, api_keys::key_prefix, text(), cursor),
        KeyOrder::Environment => after_value!(query, api_keys::environment, text(), cursor),
        KeyOrder::Scopes => after_value!(query, api_keys::scopes, text(), cursor),
        KeyOrder::Status => after_value!(query, api_keys::status, text(), cursor),
        KeyOrder::CreatedAt => after_value!(
            query,
            api_keys::created_at,
            cursor.time.unwrap_or_default(),
            cursor
        ),
        KeyOrder::LastUsedAt => after_nullable!(query, api_keys::last_used_at, cursor),
        KeyOrder::ExpiresAt => after_nullable!(query, api_keys::expires_at, cursor),
    }
}

/// How many keys match the search's filters in all.
pub fn count(conn: &mut DbConnection, search: &KeySearch) -> QueryResult<i64> {
    filtered(search).count().get_result(conn)
}

/// The page of keys the search asks for, each with its creator's email: one query.
pub fn page(
    conn: &mut DbConnection,
    search: &KeySearch,
) -> QueryResult<Vec<(ApiKey, Option<String>)>> {
    let mut query = filtered(search);
    if let Some(cursor) = &search.after {
        query = after(query, cursor);
    }
    // Nulls (never used, never expiring) sort last either way, on both backends; the id
    // breaks ties so that pages never overlap.
    macro_rules! by {
        ($column:expr) => {
            if search.descending {
                query.order(($column.desc(), api_keys::id.desc()))
            } else {
                query.order(($column.asc(), api_keys::id.asc()))
            }
        };
        (nullable $column:expr) => {
            if search.descending {
                query.order(($column.is_null().asc(), $column.desc(), api_keys::id.desc()))
            } else {
                query.order(($column.is_null().asc(), $column.asc(), api_keys::id.asc()))
            }
        };
    }
    query = match search.order {
        KeyOrder::Name => by!(api_keys::name),
        KeyOrder::KeyPrefix => by!(api_keys::key_prefix),
        KeyOrder::Environment => by!(api_keys::environment),
        KeyOrder::Scopes => by!(api_keys::scopes),
        KeyOrder::Status => by!(api_keys::status),
        KeyOrder::CreatedAt => by!(api_keys::created_at),
        KeyOrder::LastUsedAt => by!(nullable api_keys::last_used_at),
        KeyOrder::ExpiresAt => by!(nullable api_keys::expires_at),
    };
    let keys = query
        .limit(search.limit)
        .offset(search.offset)
        .select((ApiKey::as_select(), super::schema::users::email.nullable()))
        .load(conn)?;
    Ok(keys)
}
