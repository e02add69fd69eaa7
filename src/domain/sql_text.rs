//! Closed sets stored as text columns: each type's `as_str` and `FromStr` are its one mapping
//! to the database, for SQLite and PostgreSQL alike.

/// Implements diesel's `ToSql`/`FromSql` for `Text` through the type's `as_str` and `FromStr`.
macro_rules! stored_as_text {
    ($type:ty) => {
        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $type
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                self.as_str().to_sql(out)
            }
        }

        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $type
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = $crate::domain::sql_text::text::<DB>(bytes)?;
                text.parse::<$type>().map_err(|_| {
                    format!("unexpected {} {text:?} in the database", stringify!($type)).into()
                })
            }
        }
    };
}

pub(crate) use stored_as_text;

/// A text column's value, as [`stored_as_text`] reads it.
pub fn text<DB>(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<String>
where
    DB: diesel::backend::Backend,
    String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
{
    <String as diesel::deserialize::FromSql<diesel::sql_types::Text, DB>>::from_sql(bytes)
}
