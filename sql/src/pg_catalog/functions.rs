//! The functions clients call on the catalog (`format_type`,
//! `current_schemas`, `pg_table_is_visible`, ...), answered from what the
//! store knows; those about things it does not keep (comments, column
//! defaults, privileges) answer as Postgres does when there are none.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::cast::as_list_array;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

use super::builtin;

/// What one catalog function computes.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Kind {
    /// The same text for every row (`NULL` for none).
    Text(Option<String>),
    /// The same boolean for every row.
    Bool(bool),
    /// `current_schemas(include_implicit)`.
    CurrentSchemas,
    /// `format_type(oid, typmod)`: the names the source gave its columns'
    /// types, else the built-in names.
    FormatType(BTreeMap<(u32, i32), String>),
    /// `array_upper(array, dimension)`, of one-dimensional arrays.
    ArrayUpper,
    /// `array_lower(array, dimension)`.
    ArrayLower,
    /// `to_regclass(name)`: the OID of a table named as Postgres reads a
    /// name (a bare name is looked up in `pg_catalog`, then `public`), or
    /// an OID given as digits.
    ToRegclass(BTreeMap<String, i64>),
    /// Whether a relation's OID is among these, those on the search path.
    Among(BTreeSet<i64>),
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CatalogFn {
    name: &'static str,
    signature: Signature,
    kind: Kind,
}

fn any_args() -> Signature {
    Signature::one_of(
        vec![
            TypeSignature::Nullary,
            TypeSignature::Any(1),
            TypeSignature::Any(2),
            TypeSignature::Any(3),
        ],
        Volatility::Stable,
    )
}

fn text_list() -> DataType {
    DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)))
}

impl ScalarUDFImpl for CatalogFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(match self.kind {
            Kind::Text(_) | Kind::FormatType(_) => DataType::Utf8,
            Kind::Bool(_) | Kind::Among(_) => DataType::Boolean,
            Kind::CurrentSchemas => text_list(),
            // Postgres's are `int4`; DataFusion's `generate_series` takes `int8`.
            Kind::ArrayUpper | Kind::ArrayLower => DataType::Int64,
            Kind::ToRegclass(_) => DataType::Int64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        match &self.kind {
            Kind::Text(v) => Ok(ColumnarValue::Scalar(ScalarValue::Utf8(v.clone()))),
            Kind::Bool(v) => Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(*v)))),
            Kind::CurrentSchemas => {
                let implicit = match args.args.first() {
                    Some(ColumnarValue::Scalar(ScalarValue::Boolean(b))) => b.unwrap_or(false),
                    _ => true,
                };
                let names: &[&str] = if implicit {
                    &["pg_catalog", "public"]
                } else {
                    &["public"]
                };
                let items: Vec<ScalarValue> = names.iter().map(|n| ScalarValue::Utf8(Some(n.to_string()))).collect();
                Ok(ColumnarValue::Scalar(ScalarValue::List(
                    ScalarValue::new_list_nullable(&items, &DataType::Utf8),
                )))
            }
            Kind::FormatType(names) => {
                let arrays = ColumnarValue::values_to_arrays(&args.args)?;
                let column = |i: usize| -> DfResult<Option<ArrayRef>> {
                    arrays
                        .get(i)
                        .map(|a| cast(a, &DataType::Int64))
                        .transpose()
                        .map_err(Into::into)
                };
                let (Some(oids), modifiers) = (column(0)?, column(1)?) else {
                    return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
                };
                let oids = oids.as_any().downcast_ref::<Int64Array>().cloned();
                let modifiers = modifiers.and_then(|m| m.as_any().downcast_ref::<Int64Array>().cloned());
                let out: StringArray = (0..oids.as_ref().map_or(rows, Array::len))
                    .map(|i| {
                        let oid = oids.as_ref().filter(|o| o.is_valid(i)).map(|o| o.value(i))?;
                        let typmod = modifiers.as_ref().filter(|m| m.is_valid(i)).map_or(-1, |m| m.value(i));
                        let (oid, typmod) = (u32::try_from(oid).ok()?, i32::try_from(typmod).unwrap_or(-1));
                        Some(
                            names
                                .get(&(oid, typmod))
                                .cloned()
                                .unwrap_or_else(|| format_builtin(oid, typmod)),
                        )
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Kind::Among(set) => {
                let arrays = ColumnarValue::values_to_arrays(&args.args)?;
                let Some(oids) = arrays.first() else {
                    return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None)));
                };
                let oids = cast(oids, &DataType::Int64)?;
                let oids = oids.as_any().downcast_ref::<Int64Array>().ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal("an OID that is not a number".into())
                })?;
                let out: datafusion::arrow::array::BooleanArray =
                    oids.iter().map(|o| o.map(|o| set.contains(&o))).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Kind::ToRegclass(oids) => {
                let arrays = ColumnarValue::values_to_arrays(&args.args)?;
                let Some(names) = arrays.first() else {
                    return Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)));
                };
                let names = cast(names, &DataType::Utf8)?;
                let names = names
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or_else(|| datafusion::error::DataFusionError::Internal("to_regclass of non-text".into()))?;
                let out: Int64Array = names.iter().map(|n| n.and_then(|n| regclass(oids, n))).collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            Kind::ArrayUpper | Kind::ArrayLower => {
                let arrays = ColumnarValue::values_to_arrays(&args.args)?;
                let Some(list) = arrays.first() else {
                    return Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)));
                };
                let list = as_list_array(list)?;
                let upper = self.kind == Kind::ArrayUpper;
                let out: Int64Array = (0..list.len())
                    .map(|i| {
                        let n = i64::from(list.value_length(i));
                        (list.is_valid(i) && n > 0).then_some(if upper { n } else { 1 })
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
        }
    }
}

/// The OID `name` names among `oids` (keyed `schema.table`).
fn regclass(oids: &BTreeMap<String, i64>, name: &str) -> Option<i64> {
    if let Ok(oid) = name.trim().parse::<i64>() {
        return Some(oid);
    }
    // Unquoted parts fold to lower case, as Postgres reads identifiers.
    let part = |p: &str| match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => p.to_lowercase(),
    };
    match name.split_once('.') {
        Some((schema, table)) => oids.get(&format!("{}.{}", part(schema), part(table))).copied(),
        None => ["pg_catalog", "public"]
            .iter()
            .find_map(|schema| oids.get(&format!("{schema}.{}", part(name))).copied()),
    }
}

/// How Postgres's `format_type` prints a built-in type with a modifier.
pub fn format_builtin(oid: u32, typmod: i32) -> String {
    let Some(t) = builtin::by_oid(oid) else {
        return "???".to_string();
    };
    let name = t.sql_name;
    if typmod < 0 {
        return name.to_string();
    }
    let with_precision = |p: i32| match name.split_once(' ') {
        Some((first, rest)) => format!("{first}({p}) {rest}"),
        None => format!("{name}({p})"),
    };
    match oid {
        1042 | 1043 if typmod >= 4 => format!("{name}({})", typmod - 4),
        1700 if typmod >= 4 => format!("numeric({},{})", ((typmod - 4) >> 16) & 0xffff, (typmod - 4) & 0xffff),
        1083 | 1114 | 1184 | 1266 => with_precision(typmod),
        1560 | 1562 => format!("{name}({typmod})"),
        _ => name.to_string(),
    }
}

/// The catalog functions of a session over tables whose columns have the
/// type names in `type_names`, owned by `owner`, in `database`.
/// `relations` maps `schema.table` to each table's OID; `visible` are
/// the OIDs of those on the search path (`pg_catalog`, `public`).
pub fn all(
    type_names: BTreeMap<(u32, i32), String>,
    relations: BTreeMap<String, i64>,
    visible: BTreeSet<i64>,
    owner: &str,
    database: &str,
) -> Vec<ScalarUDF> {
    let f = |name: &'static str, signature: Signature, kind: Kind| {
        ScalarUDF::new_from_impl(CatalogFn { name, signature, kind })
    };
    let text = |v: &str| Kind::Text(Some(v.to_string()));
    vec![
        f("current_schemas", any_args(), Kind::CurrentSchemas),
        f("current_database", any_args(), text(database)),
        f("format_type", any_args(), Kind::FormatType(type_names)),
        f("pg_get_userbyid", any_args(), text(owner)),
        f("pg_table_is_visible", any_args(), Kind::Among(visible)),
        f("pg_type_is_visible", any_args(), Kind::Bool(true)),
        f("has_table_privilege", any_args(), Kind::Bool(true)),
        f("has_schema_privilege", any_args(), Kind::Bool(true)),
        f("has_database_privilege", any_args(), Kind::Bool(true)),
        f("obj_description", any_args(), Kind::Text(None)),
        f("col_description", any_args(), Kind::Text(None)),
        f("shobj_description", any_args(), Kind::Text(None)),
        f("pg_get_expr", any_args(), Kind::Text(None)),
        f("pg_get_constraintdef", any_args(), Kind::Text(None)),
        f("pg_get_indexdef", any_args(), Kind::Text(None)),
        f("pg_encoding_to_char", any_args(), text("UTF8")),
        f("array_upper", any_args(), Kind::ArrayUpper),
        f("array_lower", any_args(), Kind::ArrayLower),
        f("to_regclass", any_args(), Kind::ToRegclass(relations)),
    ]
}

#[cfg(test)]
mod tests {
    use super::{format_builtin, regclass};
    use std::collections::BTreeMap;

    #[test]
    fn names_find_tables_as_postgres_reads_them() {
        let oids: BTreeMap<String, i64> = [
            ("pg_catalog.pg_class".to_string(), 1259),
            ("public.orders".to_string(), 16390),
            ("Sales.Big Table".to_string(), 16400),
        ]
        .into();
        assert_eq!(regclass(&oids, "pg_class"), Some(1259));
        assert_eq!(regclass(&oids, "pg_catalog.pg_class"), Some(1259));
        assert_eq!(regclass(&oids, "ORDERS"), Some(16390));
        assert_eq!(regclass(&oids, "\"ORDERS\""), None);
        assert_eq!(regclass(&oids, "\"Sales\".\"Big Table\""), Some(16400));
        assert_eq!(regclass(&oids, "16384"), Some(16384));
        assert_eq!(regclass(&oids, "missing"), None);
    }

    #[test]
    fn modifiers_print_as_postgres_prints_them() {
        assert_eq!(format_builtin(1043, 24), "character varying(20)");
        assert_eq!(format_builtin(1042, 5), "character(1)");
        assert_eq!(format_builtin(1700, (12 << 16 | 2) + 4), "numeric(12,2)");
        assert_eq!(format_builtin(1114, 3), "timestamp(3) without time zone");
        assert_eq!(format_builtin(1184, -1), "timestamp with time zone");
        assert_eq!(format_builtin(23, -1), "integer");
        assert_eq!(format_builtin(424242, -1), "???");
    }
}
