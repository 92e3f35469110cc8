//! The rows of each `pg_catalog` table, built from the tables captured at
//! the session's cut.
//!
//! OIDs of tables are the source's own (`pg_class.oid` is the relation's
//! OID in the captured database); schemas other than `pg_catalog` and
//! `public` get OIDs of their own, stable for a given set of schema names.
//! Columns are typed as Postgres types them, with `oid` and `regproc` read
//! as `int8` and `text`, and `"char"` as `text`.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Int16Array, Int32Array, Int64Array, ListArray, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use materializer::TableAt;

use super::builtin::{self, BuiltinType};
use super::Owner;

/// OID of the `pg_catalog` schema.
pub const PG_CATALOG_OID: i64 = 11;
/// OID of the `public` schema.
pub const PUBLIC_OID: i64 = 2200;
/// OID of the `information_schema` schema (DataFusion's own).
pub const INFORMATION_SCHEMA_OID: i64 = 13_000;
/// OIDs given to the other schemas, in name order.
const FIRST_SCHEMA_OID: i64 = 1_000_000;
/// The `heap` access method.
const HEAP_AM: i64 = 2;
/// The database's OID.
pub const DATABASE_OID: i64 = 16_384;

/// A table's columns, built one at a time.
#[derive(Default)]
struct Columns {
    fields: Vec<Field>,
    arrays: Vec<ArrayRef>,
}

impl Columns {
    fn add(mut self, name: &str, array: ArrayRef, nullable: bool) -> Self {
        self.fields.push(Field::new(name, array.data_type().clone(), nullable));
        self.arrays.push(array);
        self
    }
    fn oid(self, name: &str, v: Vec<i64>) -> Self {
        self.add(name, Arc::new(Int64Array::from(v)), false)
    }
    fn int2(self, name: &str, v: Vec<i16>) -> Self {
        self.add(name, Arc::new(Int16Array::from(v)), false)
    }
    fn int4(self, name: &str, v: Vec<i32>) -> Self {
        self.add(name, Arc::new(Int32Array::from(v)), false)
    }
    fn float4(self, name: &str, v: Vec<f32>) -> Self {
        self.add(name, Arc::new(Float32Array::from(v)), false)
    }
    fn boolean(self, name: &str, v: Vec<bool>) -> Self {
        self.add(name, Arc::new(BooleanArray::from(v)), false)
    }
    fn text<S: AsRef<str>>(self, name: &str, v: Vec<S>) -> Self {
        let v: Vec<&str> = v.iter().map(AsRef::as_ref).collect();
        self.add(name, Arc::new(StringArray::from(v)), false)
    }
    fn null_text(self, name: &str, rows: usize) -> Self {
        self.add(name, Arc::new(StringArray::new_null(rows)), true)
    }
    fn null_text_array(self, name: &str, rows: usize) -> Self {
        let item = Arc::new(Field::new_list_field(DataType::Utf8, true));
        self.add(name, Arc::new(ListArray::new_null(item, rows)), true)
    }
    fn finish(self) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(Arc::new(Schema::new(self.fields)), self.arrays)
    }
}

fn repeat<T: Clone>(v: T, n: usize) -> Vec<T> {
    vec![v; n]
}

/// The schemas of the catalog: `pg_catalog`, `public`,
/// `information_schema`, and every schema a captured table lives in.
pub struct Namespaces {
    names: Vec<(i64, String)>,
}

impl Namespaces {
    /// The schemas seen by `tables`.
    pub fn of(tables: &[TableAt<'_>]) -> Namespaces {
        let others: BTreeSet<&str> = tables
            .iter()
            .map(|t| t.schema.name.schema.as_str())
            .filter(|s| !["pg_catalog", "public", "information_schema"].contains(s))
            .collect();
        let mut names = vec![
            (PG_CATALOG_OID, "pg_catalog".to_string()),
            (PUBLIC_OID, "public".to_string()),
            (INFORMATION_SCHEMA_OID, "information_schema".to_string()),
        ];
        names.extend((FIRST_SCHEMA_OID..).zip(others).map(|(oid, n)| (oid, n.to_string())));
        Namespaces { names }
    }

    /// The OID of the schema `name` (that of `public` for one not listed).
    pub fn oid(&self, name: &str) -> i64 {
        self.names
            .iter()
            .find(|(_, n)| n == name)
            .map_or(PUBLIC_OID, |(oid, _)| *oid)
    }

    /// `pg_namespace`.
    pub fn batch(&self, owner: &Owner) -> Result<RecordBatch, ArrowError> {
        let n = self.names.len();
        Columns::default()
            .oid("oid", self.names.iter().map(|(o, _)| *o).collect())
            .text("nspname", self.names.iter().map(|(_, n)| n.as_str()).collect())
            .oid("nspowner", repeat(owner.oid, n))
            .null_text("nspacl", n)
            .finish()
    }
}

/// `pg_class`: one ordinary table per captured table.
pub fn pg_class(tables: &[TableAt<'_>], ns: &Namespaces, owner: &Owner) -> Result<RecordBatch, ArrowError> {
    let n = tables.len();
    let identity = |t: &TableAt<'_>| match t.schema.replica_identity {
        changelog::ReplicaIdentity::Default => "d",
        changelog::ReplicaIdentity::Nothing => "n",
        changelog::ReplicaIdentity::Full => "f",
        changelog::ReplicaIdentity::Index => "i",
    };
    Columns::default()
        .oid("oid", tables.iter().map(|t| i64::from(t.schema.relation_oid)).collect())
        .text("relname", tables.iter().map(|t| t.schema.name.name.as_str()).collect())
        .oid(
            "relnamespace",
            tables.iter().map(|t| ns.oid(&t.schema.name.schema)).collect(),
        )
        .oid("reltype", repeat(0, n))
        .oid("reloftype", repeat(0, n))
        .oid("relowner", repeat(owner.oid, n))
        .oid("relam", repeat(HEAP_AM, n))
        .oid("relfilenode", repeat(0, n))
        .oid("reltablespace", repeat(0, n))
        .int4("relpages", repeat(0, n))
        .float4("reltuples", repeat(-1.0, n))
        .int4("relallvisible", repeat(0, n))
        .oid("reltoastrelid", repeat(0, n))
        .boolean("relhasindex", repeat(false, n))
        .boolean("relisshared", repeat(false, n))
        .text("relpersistence", repeat("p", n))
        .text("relkind", repeat("r", n))
        .int2(
            "relnatts",
            tables
                .iter()
                .map(|t| i16::try_from(t.schema.columns.len()).unwrap_or(i16::MAX))
                .collect(),
        )
        .int2("relchecks", repeat(0, n))
        .boolean("relhasrules", repeat(false, n))
        .boolean("relhastriggers", repeat(false, n))
        .boolean("relhassubclass", repeat(false, n))
        .boolean("relrowsecurity", repeat(false, n))
        .boolean("relforcerowsecurity", repeat(false, n))
        .boolean("relispopulated", repeat(true, n))
        .text("relreplident", tables.iter().map(identity).collect())
        .boolean("relispartition", repeat(false, n))
        .oid("relrewrite", repeat(0, n))
        .null_text_array("relacl", n)
        .null_text_array("reloptions", n)
        .null_text("relpartbound", n)
        .finish()
}

/// `pg_tables`, the view over `pg_class` psql and tools also read.
pub fn pg_tables(tables: &[TableAt<'_>], owner: &Owner) -> Result<RecordBatch, ArrowError> {
    let n = tables.len();
    Columns::default()
        .text(
            "schemaname",
            tables.iter().map(|t| t.schema.name.schema.as_str()).collect(),
        )
        .text(
            "tablename",
            tables.iter().map(|t| t.schema.name.name.as_str()).collect(),
        )
        .text("tableowner", repeat(owner.name.as_str(), n))
        .null_text("tablespace", n)
        .boolean("hasindexes", repeat(false, n))
        .boolean("hasrules", repeat(false, n))
        .boolean("hastriggers", repeat(false, n))
        .boolean("rowsecurity", repeat(false, n))
        .finish()
}

/// `pg_attribute`: the captured columns of every table, numbered from 1.
pub fn pg_attribute(tables: &[TableAt<'_>]) -> Result<RecordBatch, ArrowError> {
    let columns: Vec<(i64, i16, &changelog::Column)> = tables
        .iter()
        .flat_map(|t| {
            let rel = i64::from(t.schema.relation_oid);
            (1i16..).zip(&t.schema.columns).map(move |(num, c)| (rel, num, c))
        })
        .collect();
    let n = columns.len();
    let len = |c: &changelog::Column| builtin::typlen(c.type_oid);
    Columns::default()
        .oid("attrelid", columns.iter().map(|(r, _, _)| *r).collect())
        .text("attname", columns.iter().map(|(_, _, c)| c.name.as_str()).collect())
        .oid(
            "atttypid",
            columns.iter().map(|(_, _, c)| i64::from(c.type_oid)).collect(),
        )
        .int2("attlen", columns.iter().map(|(_, _, c)| len(c)).collect())
        .int2("attnum", columns.iter().map(|(_, num, _)| *num).collect())
        .int4(
            "attndims",
            columns
                .iter()
                .map(|(_, _, c)| i32::from(builtin::by_oid(c.type_oid).is_some_and(|t| t.elem != 0)))
                .collect(),
        )
        .int4("atttypmod", columns.iter().map(|(_, _, c)| c.type_modifier).collect())
        .boolean(
            "attbyval",
            columns.iter().map(|(_, _, c)| (1..=8).contains(&len(c))).collect(),
        )
        // Key columns are never null; of the others the store cannot say.
        .boolean("attnotnull", columns.iter().map(|(_, _, c)| c.is_key).collect())
        .boolean("atthasdef", repeat(false, n))
        .boolean("atthasmissing", repeat(false, n))
        .text("attidentity", repeat("", n))
        .text("attgenerated", repeat("", n))
        .boolean("attisdropped", repeat(false, n))
        .boolean("attislocal", repeat(true, n))
        .int4("attinhcount", repeat(0, n))
        .oid("attcollation", repeat(0, n))
        .int2("attstattarget", repeat(-1, n))
        .text("attstorage", repeat("p", n))
        .text("attalign", repeat("i", n))
        .text("attcompression", repeat("", n))
        .null_text_array("attacl", n)
        .null_text_array("attoptions", n)
        .finish()
}

/// One `pg_type` row.
struct TypeRow {
    oid: u32,
    name: String,
    namespace: i64,
    len: i16,
    category: char,
    elem: u32,
    array: u32,
}

/// `pg_type`: the built-in types, and any other type a captured column
/// has (an enum, a domain, ...), under the name the source gave it.
pub fn pg_type(tables: &[TableAt<'_>], ns: &Namespaces, owner: &Owner) -> Result<RecordBatch, ArrowError> {
    let mut rows: Vec<TypeRow> = builtin::TYPES
        .iter()
        .map(|t: &BuiltinType| TypeRow {
            oid: t.oid,
            name: t.name.to_string(),
            namespace: PG_CATALOG_OID,
            len: t.len,
            category: t.category,
            elem: t.elem,
            array: t.array,
        })
        .collect();
    let mut seen: BTreeSet<u32> = rows.iter().map(|r| r.oid).collect();
    for c in tables.iter().flat_map(|t| &t.schema.columns) {
        if !seen.insert(c.type_oid) {
            continue;
        }
        // The source printed the name as it reads from its search path:
        // `mood` or `other.mood`, possibly quoted.
        let (schema, name) = match c.type_name.rsplit_once('.') {
            Some((s, n)) => (s.trim_matches('"'), n),
            None => ("public", c.type_name.as_str()),
        };
        let name = name.trim_matches('"');
        let is_array = name.ends_with("[]");
        rows.push(TypeRow {
            oid: c.type_oid,
            name: if is_array {
                format!("_{}", name.trim_end_matches("[]"))
            } else {
                name.to_string()
            },
            namespace: ns.oid(schema),
            len: -1,
            category: if is_array { 'A' } else { 'U' },
            elem: 0,
            array: 0,
        });
    }
    let n = rows.len();
    let char_text = |c: char| c.to_string();
    let func = |r: &TypeRow, suffix: &str| {
        if r.category == 'A' {
            format!("array_{suffix}")
        } else {
            format!("{}{suffix}", r.name)
        }
    };
    Columns::default()
        .oid("oid", rows.iter().map(|r| i64::from(r.oid)).collect())
        .text("typname", rows.iter().map(|r| r.name.as_str()).collect())
        .oid("typnamespace", rows.iter().map(|r| r.namespace).collect())
        .oid("typowner", repeat(owner.oid, n))
        .int2("typlen", rows.iter().map(|r| r.len).collect())
        .boolean("typbyval", rows.iter().map(|r| (1..=8).contains(&r.len)).collect())
        .text("typtype", repeat("b", n))
        .text("typcategory", rows.iter().map(|r| char_text(r.category)).collect())
        .boolean("typispreferred", repeat(false, n))
        .boolean("typisdefined", repeat(true, n))
        .text("typdelim", repeat(",", n))
        .oid("typrelid", repeat(0, n))
        .oid("typelem", rows.iter().map(|r| i64::from(r.elem)).collect())
        .oid("typarray", rows.iter().map(|r| i64::from(r.array)).collect())
        .text("typinput", rows.iter().map(|r| func(r, "in")).collect())
        .text("typoutput", rows.iter().map(|r| func(r, "out")).collect())
        .text("typreceive", rows.iter().map(|r| func(r, "recv")).collect())
        .text("typsend", rows.iter().map(|r| func(r, "send")).collect())
        .text("typalign", repeat("i", n))
        .text("typstorage", repeat("p", n))
        .boolean("typnotnull", repeat(false, n))
        .oid("typbasetype", repeat(0, n))
        .int4("typtypmod", repeat(-1, n))
        .int4("typndims", repeat(0, n))
        .oid("typcollation", repeat(0, n))
        .null_text("typdefault", n)
        .null_text_array("typacl", n)
        .finish()
}

/// `pg_database`: the captured database, under its own name.
pub fn pg_database(database: &str, owner: &Owner) -> Result<RecordBatch, ArrowError> {
    Columns::default()
        .oid("oid", vec![DATABASE_OID])
        .text("datname", vec![database])
        .oid("datdba", vec![owner.oid])
        .int4("encoding", vec![6])
        .text("datcollate", vec!["C"])
        .text("datctype", vec!["C"])
        .boolean("datistemplate", vec![false])
        .boolean("datallowconn", vec![true])
        .int4("datconnlimit", vec![-1])
        .oid("dattablespace", vec![1663])
        .null_text_array("datacl", 1)
        .finish()
}

/// `pg_am`: the one access method the tables name.
pub fn pg_am() -> Result<RecordBatch, ArrowError> {
    Columns::default()
        .oid("oid", vec![HEAP_AM])
        .text("amname", vec!["heap"])
        .text("amtype", vec!["t"])
        .finish()
}

/// `pg_roles` and `pg_user`'s shared part: the one role tables belong to.
pub fn pg_roles(owner: &Owner) -> Result<RecordBatch, ArrowError> {
    Columns::default()
        .oid("oid", vec![owner.oid])
        .text("rolname", vec![owner.name.as_str()])
        .boolean("rolsuper", vec![false])
        .boolean("rolinherit", vec![true])
        .boolean("rolcreaterole", vec![false])
        .boolean("rolcreatedb", vec![false])
        .boolean("rolcanlogin", vec![true])
        .boolean("rolreplication", vec![false])
        .int4("rolconnlimit", vec![-1])
        .finish()
}

/// The catalogs that are empty here (no indexes, constraints beyond the
/// key, defaults, comments or inheritance are captured): their names and
/// the columns clients read of them.
pub const EMPTY: &[(&str, &[(&str, DataType)])] = &[
    (
        "pg_index",
        &[
            ("indexrelid", DataType::Int64),
            ("indrelid", DataType::Int64),
            ("indnatts", DataType::Int16),
            ("indisunique", DataType::Boolean),
            ("indisprimary", DataType::Boolean),
            ("indisexclusion", DataType::Boolean),
            ("indimmediate", DataType::Boolean),
            ("indisclustered", DataType::Boolean),
            ("indisvalid", DataType::Boolean),
            ("indisreplident", DataType::Boolean),
            ("indkey", DataType::Utf8),
        ],
    ),
    (
        "pg_constraint",
        &[
            ("oid", DataType::Int64),
            ("conname", DataType::Utf8),
            ("connamespace", DataType::Int64),
            ("contype", DataType::Utf8),
            ("conrelid", DataType::Int64),
            ("conindid", DataType::Int64),
            ("confrelid", DataType::Int64),
            ("conparentid", DataType::Int64),
        ],
    ),
    (
        "pg_attrdef",
        &[
            ("oid", DataType::Int64),
            ("adrelid", DataType::Int64),
            ("adnum", DataType::Int16),
            ("adbin", DataType::Utf8),
        ],
    ),
    (
        "pg_description",
        &[
            ("objoid", DataType::Int64),
            ("classoid", DataType::Int64),
            ("objsubid", DataType::Int32),
            ("description", DataType::Utf8),
        ],
    ),
    (
        "pg_inherits",
        &[
            ("inhrelid", DataType::Int64),
            ("inhparent", DataType::Int64),
            ("inhseqno", DataType::Int32),
            ("inhdetachpending", DataType::Boolean),
        ],
    ),
    (
        "pg_policy",
        &[
            ("oid", DataType::Int64),
            ("polname", DataType::Utf8),
            ("polrelid", DataType::Int64),
            ("polcmd", DataType::Utf8),
            ("polpermissive", DataType::Boolean),
            ("polroles", DataType::Utf8),
            ("polqual", DataType::Utf8),
            ("polwithcheck", DataType::Utf8),
        ],
    ),
    (
        "pg_statistic_ext",
        &[
            ("oid", DataType::Int64),
            ("stxrelid", DataType::Int64),
            ("stxname", DataType::Utf8),
            ("stxnamespace", DataType::Int64),
            ("stxowner", DataType::Int64),
            ("stxstattarget", DataType::Int32),
            ("stxkeys", DataType::Utf8),
            ("stxkind", DataType::Utf8),
        ],
    ),
    (
        "pg_publication",
        &[
            ("oid", DataType::Int64),
            ("pubname", DataType::Utf8),
            ("pubowner", DataType::Int64),
            ("puballtables", DataType::Boolean),
            ("pubinsert", DataType::Boolean),
            ("pubupdate", DataType::Boolean),
            ("pubdelete", DataType::Boolean),
            ("pubtruncate", DataType::Boolean),
            ("pubviaroot", DataType::Boolean),
        ],
    ),
    (
        "pg_publication_rel",
        &[
            ("oid", DataType::Int64),
            ("prpubid", DataType::Int64),
            ("prrelid", DataType::Int64),
            ("prqual", DataType::Utf8),
            ("prattrs", DataType::Utf8),
        ],
    ),
    (
        "pg_publication_namespace",
        &[
            ("oid", DataType::Int64),
            ("pnpubid", DataType::Int64),
            ("pnnspid", DataType::Int64),
        ],
    ),
    (
        "pg_trigger",
        &[
            ("oid", DataType::Int64),
            ("tgrelid", DataType::Int64),
            ("tgparentid", DataType::Int64),
            ("tgname", DataType::Utf8),
            ("tgenabled", DataType::Utf8),
            ("tgisinternal", DataType::Boolean),
        ],
    ),
    (
        "pg_rewrite",
        &[
            ("oid", DataType::Int64),
            ("rulename", DataType::Utf8),
            ("ev_class", DataType::Int64),
            ("ev_type", DataType::Utf8),
            ("ev_enabled", DataType::Utf8),
            ("is_instead", DataType::Boolean),
        ],
    ),
    (
        "pg_foreign_table",
        &[
            ("ftrelid", DataType::Int64),
            ("ftserver", DataType::Int64),
            ("ftoptions", DataType::Utf8),
        ],
    ),
    (
        "pg_partitioned_table",
        &[
            ("partrelid", DataType::Int64),
            ("partstrat", DataType::Utf8),
            ("partnatts", DataType::Int16),
        ],
    ),
    (
        "pg_collation",
        &[
            ("oid", DataType::Int64),
            ("collname", DataType::Utf8),
            ("collnamespace", DataType::Int64),
        ],
    ),
];
