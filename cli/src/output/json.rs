//! JSON values for data: Postgres text as strings, NULL as null.

use changelog::DatumRef;

/// A JSON value for a datum: Postgres text as a string, NULL as null.
pub fn json_value(d: DatumRef<'_>) -> serde_json::Value {
    match d {
        DatumRef::Text(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        DatumRef::Null => serde_json::Value::Null,
        DatumRef::Missing => serde_json::Value::String("<unavailable>".into()),
    }
}

/// A JSON object of column name to value.
pub fn json_row<'a>(
    columns: &[String],
    values: impl IntoIterator<Item = DatumRef<'a>>,
) -> serde_json::Map<String, serde_json::Value> {
    columns
        .iter()
        .cloned()
        .zip(values.into_iter().map(json_value))
        .collect()
}
