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
    Environment,
    Status,
    CreatedAt,
    LastUsedAt,
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
    /// `Some(owner)`: only keys whose creator is `owner` (None: keys without a creator).
    pub created_by: Option<Option<i64>>,
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
    match search.created_by {
        Some(Some(owner)) => query = query.filter(api_keys::created_by.eq(owner)),
        Some(None) => query = query.filter(api_keys::created_by.is_null()),
        None => {}
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

fn after<'a>(query: KeyQuery<'a>, cursor: &KeyCursor) -> KeyQuery<'a> {
    let (id, descending) = (cursor.id, cursor.descending);
    let text = || cursor.text.clone().unwrap_or_default();
    match cursor.order {
        KeyOrder::Name => after_value!(query, api_keys::name, text(), cursor),
        KeyOrder::Environment => after_value!(query, api_keys::environment, text(), cursor),
        KeyOrder::Status => after_value!(query, api_keys::status, text(), cursor),
        KeyOrder::CreatedAt => after_value!(
            query,
            api_keys::created_at,
            cursor.time.unwrap_or_default(),
            cursor
        ),
        // Used keys first (in either direction), never-used keys after them, by id.
        KeyOrder::LastUsedAt => match (cursor.time, descending) {
            (Some(at), false) => query.filter(
                api_keys::last_used_at
                    .gt(at)
                    .or(api_keys::last_used_at.eq(at).and(api_keys::id.gt(id)))
                    .or(api_keys::last_used_at.is_null()),
            ),
            (Some(at), true) => query.filter(
                api_keys::last_used_at
                    .lt(at)
                    .or(api_keys::last_used_at.eq(at).and(api_keys::id.lt(id)))
                    .or(api_keys::last_used_at.is_null()),
            ),
            (None, false) => {
                query.filter(api_keys::last_used_at.is_null().and(api_keys::id.gt(id)))
            }
            (None, true) => query.filter(api_keys::last_used_at.is_null().and(api_keys::id.lt(id))),
        },
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
    // Never-used keys sort last either way, on both backends; the id breaks ties so that
    // pages never overlap.
    query = match (search.order, search.descending) {
        (KeyOrder::Name, false) => query.order((api_keys::name.asc(), api_keys::id.asc())),
        (KeyOrder::Name, true) => query.order((api_keys::name.desc(), api_keys::id.desc())),
        (KeyOrder::Environment, false) => {
            query.order((api_keys::environment.asc(), api_keys::id.asc()))
        }
        (KeyOrder::Environment, true) => {
            query.order((api_keys::environment.desc(), api_keys::id.desc()))
        }
        (KeyOrder::Status, false) => query.order((api_keys::status.asc(), api_keys::id.asc())),
        (KeyOrder::Status, true) => query.order((api_keys::status.desc(), api_keys::id.desc())),
        (KeyOrder::CreatedAt, false) => {
            query.order((api_keys::created_at.asc(), api_keys::id.asc()))
        }
        (KeyOrder::CreatedAt, true) => {
            query.order((api_keys::created_at.desc(), api_keys::id.desc()))
        }
        (KeyOrder::LastUsedAt, false) => query.order((
            api_keys::last_used_at.is_null().asc(),
            api_keys::last_used_at.asc(),
            api_keys::id.asc(),
        )),
        (KeyOrder::LastUsedAt, true) => query.order((
            api_keys::last_used_at.is_null().asc(),
            api_keys::last_used_at.desc(),
            api_keys::id.desc(),
        )),
    };
    let keys = query
        .limit(search.limit)
        .offset(search.offset)
        .select((ApiKey::as_select(), super::schema::users::email.nullable()))
        .load(conn)?;
    Ok(keys)
}
