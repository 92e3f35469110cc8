//! A table as of a cut, as a DataFusion [`TableProvider`]: its rows stream
//! from [`materializer::snapshot_range`] in record batches, one partition
//! per range of its keys, converting only the columns the query reads.
//! Filters on its key columns read only the keys or the key range they
//! select (see [`crate::pushdown`]).

use std::ops::{Bound, ControlFlow};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use changelog::keys::KeyRange;
use changelog::{Store, TableId, TableName};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_plan::stream::{RecordBatchReceiverStreamBuilder, RecordBatchStreamAdapter};
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use datafusion::physical_plan::ExecutionPlan;
use materializer::{Cut, SnapshotPlan, TableAt};

use crate::error::SqlError;
use crate::pushdown::{self, KeyColumn, Selection};
use crate::types::{BatchBuilder, ColumnType, Typing};

/// Batches a scan keeps ready ahead of the query.
const BATCHES_AHEAD: usize = 2;

/// Selections of at most this many keys are read where the scan starts.
const INLINE_KEYS: usize = 16;

/// One captured table at one cut.
#[derive(Debug)]
pub struct AsOfTable {
    store: Arc<Store>,
    id: TableId,
    name: TableName,
    cut: Cut,
    schema: SchemaRef,
    types: Vec<ColumnType>,
    /// The key columns filters can select rows by, in key order; empty
    /// when some key column is keyed in a way filters cannot name.
    keys: Vec<KeyColumn>,
}

impl AsOfTable {
    /// The table as it was at `cut`, its columns typed under `typing`.
    pub fn new(store: Arc<Store>, table: &TableAt<'_>, cut: Cut, typing: Typing) -> AsOfTable {
        let (schema, types) = arrow_schema(table, typing);
        let keys = key_columns(table, &types);
        AsOfTable {
            store,
            id: table.id,
            name: table.schema.name.clone(),
            cut,
            schema,
            types,
            keys,
        }
    }

    /// The table's name.
    pub fn name(&self) -> &TableName {
        &self.name
    }

    /// The cut it is read at.
    pub fn cut(&self) -> Cut {
        self.cut
    }
}

/// The key columns of a table, if every one is keyed as filters can name
/// it: an integer column, or a text column keyed by its text.
fn key_columns(table: &TableAt<'_>, types: &[ColumnType]) -> Vec<KeyColumn> {
    let mut keys = Vec::new();
    for (c, t) in table.schema.columns.iter().zip(types) {
        if !c.is_key {
            continue;
        }
        let integer = pushdown::integer_type(&t.data_type());
        let integer_keyed = changelog::keys::is_integer_key_type(c.type_oid);
        if integer != integer_keyed || !(integer || *t == ColumnType::Text) {
            return Vec::new();
        }
        keys.push(KeyColumn {
            name: c.name.clone(),
            integer,
        });
    }
    keys
}

/// The Arrow schema of a table at a cut, and how each column is read.
pub fn arrow_schema(table: &TableAt<'_>, typing: Typing) -> (SchemaRef, Vec<ColumnType>) {
    let types: Vec<ColumnType> = table
        .schema
        .columns
        .iter()
        .map(|c| ColumnType::of_column(c, typing))
        .collect();
    let fields: Vec<_> = table
        .schema
        .columns
        .iter()
        .zip(&types)
        .map(|(c, t)| t.column_field(c))
        .collect();
    (Arc::new(Schema::new(fields)), types)
}

#[async_trait]
impl TableProvider for AsOfTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Inexact: the filter still runs on what the scan reads.
        Ok(filters
            .iter()
            .map(|f| {
                if pushdown::usable(f, &self.keys) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.types.len()).collect(),
        };
        let schema = Arc::new(self.schema.project(&columns)?);
        let sources = columns
            .iter()
            .map(|i| {
                self.types
                    .get(*i)
                    .cloned()
                    .map(|t| (*i, t))
                    .ok_or_else(|| DataFusionError::Internal(format!("no column {i} in {}", self.name)))
            })
            .collect::<DfResult<Vec<_>>>()?;
        // Filters on the key read only what they select; otherwise one
        // partition per key range, so the table is read on every core the
        // session has (one range when the query wants a few rows).
        let selection = pushdown::select(filters, &self.keys);
        let ranges = if selection != Selection::All || limit.is_some() {
            vec![KeyRange::ALL]
        } else {
            self.store
                .split_table(self.id, state.config().target_partitions())
                .map_err(|e| DataFusionError::External(Box::new(e)))?
        };
        let plan = Arc::new(SharedPlan::default());
        let partitions: Vec<Arc<dyn PartitionStream>> = ranges
            .into_iter()
            .map(|range| -> Arc<dyn PartitionStream> {
                Arc::new(SnapshotPartition {
                    store: self.store.clone(),
                    scan: Arc::new(Scan {
                        name: self.name.clone(),
                        cut: self.cut,
                        range,
                        schema: schema.clone(),
                        sources: sources.clone(),
                        batch_rows: state.config().batch_size(),
                        limit,
                        selection: selection.clone(),
                        plan: plan.clone(),
                    }),
                })
            })
            .collect();
        // The partition yields projected batches itself, so no projection
        // is applied after it.
        let exec = StreamingTableExec::try_new(schema, partitions, None, Vec::<LexOrdering>::new(), false, limit)?;
        Ok(Arc::new(exec))
    }
}

/// The scan of one range of a table's keys at one cut: one partition, rows
/// in key order.
#[derive(Debug)]
struct SnapshotPartition {
    store: Arc<Store>,
    scan: Arc<Scan>,
}

impl PartitionStream for SnapshotPartition {
    fn schema(&self) -> &SchemaRef {
        &self.scan.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        // A few keys are a few point look-ups: read them here rather than
        // hand them to a blocking thread, whose hop costs more.
        if matches!(&self.scan.selection, Selection::Keys(keys) if keys.len() <= INLINE_KEYS) {
            let mut batches = Vec::new();
            let result = self.scan.run(&self.store, |batch| {
                batches.push(Ok(batch));
                Ok(true)
            });
            if let Err(e) = result {
                batches.push(Err(DataFusionError::External(Box::new(e))));
            }
            let stream = futures::stream::iter(batches);
            return Box::pin(RecordBatchStreamAdapter::new(self.scan.schema.clone(), stream));
        }
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.scan.schema.clone(), BATCHES_AHEAD);
        let tx = builder.tx();
        let (store, scan) = (self.store.clone(), self.scan.clone());
        // The store's scan is synchronous: it runs on a blocking thread
        // and hands batches over a bounded channel, so memory stays at a
        // few batches however large the table.
        builder.spawn_blocking(move || {
            let scanned = scan.run(&store, |batch| Ok(tx.blocking_send(Ok(batch)).is_ok()));
            scanned.map(|_| ()).map_err(|e| DataFusionError::External(Box::new(e)))
        });
        builder.build()
    }
}

/// What to read of one table at one cut, and in what batches.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The table.
    pub name: TableName,
    /// The cut.
    pub cut: Cut,
    /// The keys to read.
    pub range: KeyRange,
    /// The schema of the batches.
    pub schema: SchemaRef,
    /// For each of its columns, the stored row's column and its type.
    pub sources: Vec<(usize, ColumnType)>,
    /// Rows per batch (the last may have fewer).
    pub batch_rows: usize,
    /// At most this many rows.
    pub limit: Option<usize>,
    /// Which rows to read.
    pub selection: Selection,
    /// The read's plan, shared with the scans of the table's other ranges.
    pub plan: Arc<SharedPlan>,
}

/// The plan of one table's read at one cut, made by the first of its
/// partitions to run and shared with the others, which then share what it
/// reads (the log since a base image) instead of each reading it again.
#[derive(Debug, Default)]
pub(crate) struct SharedPlan(Mutex<Option<Arc<SnapshotPlan>>>);

impl SharedPlan {
    fn get(&self, store: &Store, table: &TableAt<'_>, cut: Cut) -> Result<Arc<SnapshotPlan>, SqlError> {
        let mut held = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(plan) = &*held {
            return Ok(plan.clone());
        }
        let plan = Arc::new(materializer::plan_snapshot(store, table, cut)?);
        *held = Some(plan.clone());
        Ok(plan)
    }
}

impl Scan {
    /// Streams the rows as record batches into `send`, which returns false
    /// when nobody listens any more; the number of rows read.
    pub fn run(
        &self,
        store: &Store,
        mut send: impl FnMut(RecordBatch) -> Result<bool, SqlError>,
    ) -> Result<u64, SqlError> {
        let table = materializer::table_at(store, &self.name, self.cut)?;
        let mut batch = BatchBuilder::new(self.name.to_string(), self.schema.clone(), &self.sources);
        let mut rows: u64 = 0;
        let mut listening = true;
        let limit = self.limit.map_or(u64::MAX, |l| u64::try_from(l).unwrap_or(u64::MAX));
        let batch_rows = self.batch_rows.max(1);
        let mut each_row = |row: &[changelog::DatumRef<'_>]| -> Result<_, SqlError> {
            batch.push(row)?;
            rows += 1;
            if batch.len() >= batch_rows {
                listening = send(batch.finish()?)?;
            }
            Ok(if listening && rows < limit {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(())
            })
        };
        match &self.selection {
            Selection::All => {
                let plan = self.plan.get(store, &table, self.cut)?;
                materializer::snapshot_part(store, &table, &plan, &self.range, each_row)?;
            }
            Selection::Keys(values) => {
                let mut keys = values
                    .iter()
                    .map(|v| materializer::user_key(&table, &v.iter().map(String::as_str).collect::<Vec<_>>()))
                    .collect::<Result<Vec<_>, _>>()?;
                // In key order, as a whole scan reads them.
                keys.sort();
                keys.dedup();
                'keys: for key in &keys {
                    let Some(found) = materializer::get(store, &table, key, self.cut)? else {
                        continue;
                    };
                    let refs: Vec<changelog::DatumRef<'_>> = found.row.iter().map(changelog::Datum::as_ref).collect();
                    for _ in 0..found.copies {
                        if each_row(&refs)?.is_break() {
                            break 'keys;
                        }
                    }
                }
            }
            Selection::Range(low, high) => {
                let bound = |b: &Bound<String>| -> Result<Bound<changelog::keys::UserKey>, SqlError> {
                    Ok(match b {
                        Bound::Included(v) => Bound::Included(materializer::user_key(&table, &[v.as_str()])?),
                        Bound::Excluded(v) => Bound::Excluded(materializer::user_key(&table, &[v.as_str()])?),
                        Bound::Unbounded => Bound::Unbounded,
                    })
                };
                let range = KeyRange::from_bounds(bound(low)?, bound(high)?);
                materializer::snapshot_range(store, &table, &range, self.cut, each_row)?;
            }
        }
        if listening && !batch.is_empty() {
            send(batch.finish()?)?;
        }
        Ok(rows)
    }
}
