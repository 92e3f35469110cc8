//! Parquet exports: every table at one cut ([`export_at`]), or every
//! table's whole history as SCD type-2 rows ([`export_history`]). One file
//! per table plus `manifest.json`, each written under a temporary name and
//! renamed when complete; the manifest comes last, so a directory with a
//! manifest holds a whole export.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::Arc;

use changelog::keys::KeyRange;
use changelog::{CommitTime, DatumRef, Store, TableName, TableSchema};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::schema::types::ColumnPath;
use materializer::{Cut, HistoryEntry, TableAt};
use serde::Serialize;

use crate::atomic::{io_error, write_atomically};
use crate::error::{Result, SqlError};
use crate::pushdown::Selection;
use crate::table::{arrow_schema, Scan};
use crate::types::{BatchBuilder, ColumnType, Typing};

/// Rows per record batch written.
const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group: bounds what the writer buffers.
const ROW_GROUP_ROWS: usize = 128 * 1024;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// What to export, and how.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Only these tables (all when empty).
    pub tables: Vec<TableName>,
    /// Write into a directory that already holds files.
    pub force: bool,
    /// Column typing.
    pub typing: Typing,
}

/// `manifest.json`: what an export holds.
#[derive(Clone, Debug, Serialize)]
pub struct Manifest {
    /// `snapshot` (tables at one cut) or `history` (SCD type-2 rows).
    pub kind: &'static str,
    /// The cut: the snapshot's, or the last commit the history reaches.
    pub cut: CutInfo,
    /// One entry per file.
    pub tables: Vec<TableManifest>,
}

/// A cut as the manifest states it.
#[derive(Clone, Debug, Serialize)]
pub struct CutInfo {
    /// Commit LSN (`X/Y`).
    pub lsn: String,
    /// The same LSN as a number (what the history's LSN columns hold).
    pub lsn_number: u64,
    /// Commit time, RFC 3339 UTC.
    pub commit_time: String,
    /// Transaction id.
    pub xid: u32,
}

impl From<Cut> for CutInfo {
    fn from(c: Cut) -> Self {
        CutInfo {
            lsn: c.lsn.to_string(),
            lsn_number: c.lsn.0,
            commit_time: c.commit_time.to_string(),
            xid: c.xid.0,
        }
    }
}

/// One exported table.
#[derive(Clone, Debug, Serialize)]
pub struct TableManifest {
    /// Schema-qualified name.
    pub name: String,
    /// The file, relative to the export directory.
    pub file: String,
    /// Rows written.
    pub rows: u64,
    /// The key columns (every column for a table keyed by its whole row).
    pub key: Vec<String>,
    /// The columns, in file order.
    pub columns: Vec<ColumnManifest>,
}

/// One column of an exported table.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnManifest {
    /// Name.
    pub name: String,
    /// Postgres type, as Postgres names it (empty for asof's own columns).
    pub postgres_type: String,
    /// Arrow type in the file.
    pub arrow_type: String,
}

/// Writes every table (or those asked for) as it was at `cut` into `dir`,
/// one Parquet file each, then the manifest.
pub fn export_at(store: &Store, cut: Cut, dir: &Path, options: &ExportOptions) -> Result<Manifest> {
    prepare(dir, options.force)?;
    let tables = if options.tables.is_empty() {
        materializer::tables_at(store, cut)
    } else {
        options
            .tables
            .iter()
            .map(|n| materializer::table_at(store, n, cut))
            .collect::<Result<Vec<_>, _>>()?
    };
    let mut manifest = Manifest {
        kind: "snapshot",
        cut: cut.into(),
        tables: Vec::new(),
    };
    for table in &tables {
        let (schema, types) = arrow_schema(table, options.typing);
        let file = file_name(&table.schema.name);
        let scan = Scan {
            name: table.schema.name.clone(),
            cut,
            range: KeyRange::ALL,
            schema: schema.clone(),
            sources: types.into_iter().enumerate().collect(),
            batch_rows: BATCH_ROWS,
            limit: None,
            selection: Selection::All,
            plan: Default::default(),
        };
        let rows = write_parquet(
            &dir.join(&file),
            schema.clone(),
            unique_column(table.schema),
            |writer| scan_beside(store, &scan, |batch| Ok(writer.write(&batch)?)),
        )?;
        manifest.tables.push(table_manifest(
            table.schema,
            &file,
            rows,
            &schema,
            &table.schema.columns,
        ));
    }
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Record batches a scan may build ahead of the Parquet writer.
const BATCHES_AHEAD: usize = 4;

/// Runs `scan` on a thread of its own while `write` takes its batches on
/// this one: reading the store and encoding Parquet each take about half
/// of an export, so on two cores they overlap. The channel is bounded, so
/// memory stays at a few batches. Returns the number of rows read.
fn scan_beside(store: &Store, scan: &Scan, mut write: impl FnMut(RecordBatch) -> Result<()>) -> Result<u64> {
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(BATCHES_AHEAD);
        let reader = s.spawn(move || scan.run(store, |batch| Ok(tx.send(batch).is_ok())));
        let mut written = Ok(());
        for batch in rx.iter() {
            written = write(batch);
            if written.is_err() {
                // Dropping the receiver stops the scan at its next batch.
                break;
            }
        }
        drop(rx);
        let rows = reader.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written?;
        rows
    })
}

/// Columns an SCD type-2 file adds after the table's own.
const VALID_FROM_LSN: &str = "asof_valid_from_lsn";
const VALID_TO_LSN: &str = "asof_valid_to_lsn";
const VALID_FROM_TIME: &str = "asof_valid_from_time";
const VALID_TO_TIME: &str = "asof_valid_to_time";
const OP: &str = "asof_op";

/// Writes every table's whole history (or those asked for) into `dir` as
/// SCD type-2 rows: one row per version of a row (per copy, in a table
/// that counts copies), valid from the commit that wrote it until the
/// commit that replaced or removed it (`NULL` while current). The table's
/// state at any cut `c` is the rows with `from <= c < to` (or no `to`).
/// Streams key by key, so memory holds one key's history at a time.
pub fn export_history(store: &Store, dir: &Path, options: &ExportOptions) -> Result<Manifest> {
    prepare(dir, options.force)?;
    let last = materializer::resolve(store, materializer::When::Now, CommitTime::now())?.cut;
    let mut manifest = Manifest {
        kind: "history",
        cut: last.into(),
        tables: Vec::new(),
    };
    let mut entries: Vec<_> = store
        .catalog()
        .tables()
        .filter_map(|(id, e)| {
            let latest = e.history.versions().iter().rev().find(|v| v.schema().is_some())?;
            Some((id, latest))
        })
        .collect();
    entries.sort_by(|a, b| a.1.schema().map(|s| &s.name).cmp(&b.1.schema().map(|s| &s.name)));
    for wanted in &options.tables {
        if !entries
            .iter()
            .any(|(_, v)| v.schema().is_some_and(|s| &s.name == wanted))
        {
            return Err(SqlError::NoSuchTable(wanted.clone()));
        }
    }
    for (id, version) in entries {
        let (Some(schema), Some(coverage)) = (version.schema(), version.coverage()) else {
            continue;
        };
        if !options.tables.is_empty() && !options.tables.contains(&schema.name) {
            continue;
        }
        let table = TableAt {
            id,
            version,
            schema,
            coverage,
        };
        let history = store
            .catalog()
            .table(id)
            .map(|e| e.history.versions())
            .unwrap_or_default();
        let columns = history_columns(history.iter().filter_map(|v| v.schema()), options.typing);
        let file = file_name(&schema.name);
        let mut scd = ScdBatch::new(&schema.name, &columns);
        let out_schema = scd.schema.clone();
        let rows = write_parquet(&dir.join(&file), out_schema.clone(), None, |writer| {
            let mut rows = 0u64;
            store.for_each_key(id, |key| -> Result<_> {
                let versions = materializer::history(store, &table, &key)?;
                rows += scd.push_key(&versions)?;
                if scd.len() >= BATCH_ROWS {
                    writer.write(&scd.finish()?)?;
                }
                Ok(std::ops::ControlFlow::Continue(()))
            })?;
            if !scd.is_empty() {
                writer.write(&scd.finish()?)?;
            }
            Ok(rows)
        })?;
        let pg_columns: Vec<changelog::Column> = columns.iter().map(|(c, _)| c.clone()).collect();
        manifest
            .tables
            .push(table_manifest(schema, &file, rows, &out_schema, &pg_columns));
    }
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// Every column a table ever had, in order of first appearance, with the
/// type it is read as: a column whose type changed over its history is
/// text, the one form every version has.
fn history_columns<'a>(
    versions: impl Iterator<Item = &'a TableSchema>,
    typing: Typing,
) -> Vec<(changelog::Column, ColumnType)> {
    let mut out: Vec<(changelog::Column, ColumnType)> = Vec::new();
    for schema in versions {
        for c in &schema.columns {
            let t = ColumnType::of_column(c, typing);
            match out.iter_mut().find(|(seen, _)| seen.name == c.name) {
                Some((seen, seen_type)) => {
                    if *seen_type != t {
                        *seen_type = ColumnType::Text;
                        seen.type_name = "text".into();
                    }
                    seen.is_key |= c.is_key;
                }
                None => out.push((c.clone(), t)),
            }
        }
    }
    out
}

/// Record batches of SCD type-2 rows of one table.
struct ScdBatch {
    schema: SchemaRef,
    /// The table's own columns.
    values: BatchBuilder,
    /// Column position by name, to place a version's values (which come
    /// in the columns of its own moment).
    position: HashMap<String, usize>,
    width: usize,
    from_lsn: UInt64Builder,
    to_lsn: UInt64Builder,
    from_time: TimestampMicrosecondBuilder,
    to_time: TimestampMicrosecondBuilder,
    op: StringBuilder,
}

impl ScdBatch {
    fn new(name: &TableName, columns: &[(changelog::Column, ColumnType)]) -> ScdBatch {
        let own: Vec<Field> = columns.iter().map(|(c, t)| t.field(&c.name)).collect();
        let time = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let mut all = own.clone();
        all.extend([
            Field::new(VALID_FROM_LSN, DataType::UInt64, false),
            Field::new(VALID_TO_LSN, DataType::UInt64, true),
            Field::new(VALID_FROM_TIME, time.clone(), false),
            Field::new(VALID_TO_TIME, time, true),
            Field::new(OP, DataType::Utf8, false),
        ]);
        let sources: Vec<(usize, ColumnType)> = columns.iter().map(|(_, t)| t.clone()).enumerate().collect();
        let utc = || TimestampMicrosecondBuilder::new().with_timezone("UTC");
        ScdBatch {
            schema: Arc::new(Schema::new(all)),
            values: BatchBuilder::new(name.to_string(), Arc::new(Schema::new(own)), &sources),
            position: columns
                .iter()
                .enumerate()
                .map(|(i, (c, _))| (c.name.clone(), i))
                .collect(),
            width: columns.len(),
            from_lsn: UInt64Builder::new(),
            to_lsn: UInt64Builder::new(),
            from_time: utc(),
            to_time: utc(),
            op: StringBuilder::new(),
        }
    }

    /// Appends the rows of one key's history (oldest first); how many.
    fn push_key(&mut self, versions: &[HistoryEntry]) -> Result<u64> {
        let mut rows = 0;
        let mut placed: Vec<DatumRef<'_>> = Vec::with_capacity(self.width);
        for (i, v) in versions.iter().enumerate() {
            let Some(row) = &v.row else { continue };
            let until = versions.get(i + 1).map(|next| next.cut);
            placed.clear();
            placed.resize(self.width, DatumRef::Null);
            for (name, value) in v.columns.iter().zip(row) {
                if let Some(slot) = self.position.get(name).and_then(|p| placed.get_mut(*p)) {
                    *slot = value.as_ref();
                }
            }
            for _ in 0..v.copies {
                self.values.push(&placed)?;
                self.from_lsn.append_value(v.cut.lsn.0);
                self.to_lsn.append_option(until.map(|c| c.lsn.0));
                self.from_time.append_value(v.cut.commit_time.unix_micros());
                self.to_time.append_option(until.map(|c| c.commit_time.unix_micros()));
                self.op.append_value(v.op.code());
                rows += 1;
            }
        }
        Ok(rows)
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn finish(&mut self) -> Result<RecordBatch> {
        let own = self.values.finish()?;
        let mut columns: Vec<ArrayRef> = own.columns().to_vec();
        columns.extend([
            Arc::new(self.from_lsn.finish()) as ArrayRef,
            Arc::new(self.to_lsn.finish()),
            Arc::new(self.from_time.finish()),
            Arc::new(self.to_time.finish()),
            Arc::new(self.op.finish()),
        ]);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

/// Creates `dir`, or accepts an existing one that is empty (or any with
/// `force`).
fn prepare(dir: &Path, force: bool) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() && !force {
                return Err(SqlError::TargetNotEmpty(dir.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_error("cannot create", dir))
        }
        Err(e) => Err(io_error("cannot read", dir)(e)),
    }
}

/// Writes one Parquet file: `fill` writes its batches.
pub fn write_parquet<T>(
    path: &Path,
    schema: SchemaRef,
    unique: Option<&str>,
    fill: impl FnOnce(&mut ArrowWriter<&mut BufWriter<File>>) -> Result<T>,
) -> Result<T> {
    write_atomically(path, |out| {
        let mut writer = ArrowWriter::try_new(out, schema, Some(parquet_properties(unique)))?;
        let v = fill(&mut writer)?;
        writer.close()?;
        Ok(v)
    })
}

/// Snappy: fast to write and read by every Parquet reader. A column
/// whose values are all different (`unique`) is written without a
/// dictionary: the writer would hash each of its values into one until
/// the dictionary outgrew its limit, and then write them plain anyway.
fn parquet_properties(unique: Option<&str>) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
    if let Some(column) = unique {
        props = props.set_column_dictionary_enabled(ColumnPath::from(column), false);
    }
    props.build()
}

/// The column of a table snapshot whose values are all different: a
/// primary key of one column. Tables counting copies of a row can hold
/// the same row more than once.
fn unique_column(schema: &TableSchema) -> Option<&str> {
    let mut keys = schema.columns.iter().filter(|c| c.is_key);
    match (keys.next(), keys.next()) {
        (Some(key), None) if !schema.counts_copies() => Some(&key.name),
        _ => None,
    }
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let path = dir.join(MANIFEST);
    write_atomically(&path, |out| {
        serde_json::to_writer_pretty(&mut *out, manifest)
            .map_err(|e| io_error("cannot write", &path)(io::Error::other(e)))?;
        io::Write::write_all(out, b"\n").map_err(io_error("cannot write", &path))
    })
}

fn table_manifest(
    schema: &TableSchema,
    file: &str,
    rows: u64,
    arrow: &Schema,
    columns: &[changelog::Column],
) -> TableManifest {
    let postgres_type = |name: &str| {
        columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.type_name.clone())
            .unwrap_or_default()
    };
    TableManifest {
        name: schema.name.to_string(),
        file: file.to_string(),
        rows,
        key: schema
            .columns
            .iter()
            .filter(|c| c.is_key)
            .map(|c| c.name.clone())
            .collect(),
        columns: arrow
            .fields()
            .iter()
            .map(|f| ColumnManifest {
                name: f.name().clone(),
                postgres_type: postgres_type(f.name()),
                arrow_type: f.data_type().to_string(),
            })
            .collect(),
    }
}

/// `schema.table.parquet`, each byte outside `[A-Za-z0-9_-]` written as
/// `%XX`, so every table name gets its own file name on any file system.
pub fn file_name(name: &TableName) -> String {
    let escape = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!("{}.{}.parquet", escape(&name.schema), escape(&name.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_distinct_and_safe() {
        assert_eq!(file_name(&TableName::new("public", "orders")), "public.orders.parquet");
        assert_eq!(file_name(&TableName::new("a.b", "c")), "a%2Eb.c.parquet");
        assert_ne!(
            file_name(&TableName::new("a.b", "c")),
            file_name(&TableName::new("a", "b.c"))
        );
        assert_eq!(file_name(&TableName::new("s", "x/y ü")), "s.x%2Fy%20%C3%BC.parquet");
    }

    #[test]
    fn a_non_empty_directory_is_refused_without_force() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("x"), b"x").unwrap();
        assert!(matches!(prepare(dir.path(), false), Err(SqlError::TargetNotEmpty(_))));
        assert!(prepare(dir.path(), true).is_ok());
        assert!(prepare(&dir.path().join("new"), false).is_ok());
    }
}
