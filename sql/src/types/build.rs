//! Arrow builders fed with stored rows: one [`ColumnBuilder`] per column,
//! a [`BatchBuilder`] per record batch.

use std::sync::Arc;

use changelog::DatumRef;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, ListArray, NullBufferBuilder, RecordBatch, RecordBatchOptions,
    StringArray, TimestampMicrosecondBuilder,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{Field, SchemaRef};
use datafusion::arrow::error::ArrowError;

use super::parse::{self, Unrepresentable};
use super::{list_item, ColumnType};
use crate::error::{SqlError, ValueError};

/// Builds one Arrow array from stored values of one column.
pub enum ColumnBuilder {
    /// `int2`.
    Int16(Int16Builder),
    /// `int4`.
    Int32(Int32Builder),
    /// `int8`.
    Int64(Int64Builder),
    /// `bool`.
    Bool(BooleanBuilder),
    /// `float4`.
    Float32(Float32Builder),
    /// `float8`.
    Float64(Float64Builder),
    /// `numeric(p,s)`.
    Decimal(Decimal128Builder, u8, i8),
    /// Text, verbatim. Its bytes are checked to be UTF-8 once per array,
    /// when it is finished, rather than value by value: for the short
    /// values of most text columns the check of each cost more than the
    /// copy.
    Text(BinaryBuilder),
    /// `bytea`.
    Bytes(BinaryBuilder),
    /// `date`.
    Date(Date32Builder),
    /// `timestamp[tz]`.
    Timestamp(TimestampMicrosecondBuilder, bool),
    /// A one-dimensional array.
    List {
        /// The element field.
        item: Arc<Field>,
        /// The elements of every list so far.
        values: Box<ColumnBuilder>,
        /// Where each list starts in `values`, and where the last ends.
        offsets: Vec<i32>,
        /// Which lists are NULL.
        nulls: NullBufferBuilder,
    },
}

impl ColumnBuilder {
    /// An empty builder for a column of type `t`.
    pub fn new(t: &ColumnType) -> ColumnBuilder {
        match t {
            ColumnType::Int16 => ColumnBuilder::Int16(Int16Builder::new()),
            ColumnType::Int32 => ColumnBuilder::Int32(Int32Builder::new()),
            ColumnType::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
            ColumnType::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
            ColumnType::Float32 => ColumnBuilder::Float32(Float32Builder::new()),
            ColumnType::Float64 => ColumnBuilder::Float64(Float64Builder::new()),
            ColumnType::Decimal { precision, scale } => ColumnBuilder::Decimal(
                Decimal128Builder::new().with_data_type(t.data_type()),
                *precision,
                *scale,
            ),
            ColumnType::Text => ColumnBuilder::Text(BinaryBuilder::new()),
            ColumnType::Bytes => ColumnBuilder::Bytes(BinaryBuilder::new()),
            ColumnType::Date => ColumnBuilder::Date(Date32Builder::new()),
            ColumnType::Timestamp { tz } => {
                ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new().with_data_type(t.data_type()), *tz)
            }
            ColumnType::List(inner) => ColumnBuilder::List {
                item: Arc::new(list_item(inner)),
                values: Box::new(ColumnBuilder::new(inner)),
                offsets: vec![0],
                nulls: NullBufferBuilder::new(0),
            },
        }
    }

    /// Appends a stored value (`None` for NULL). On error nothing is
    /// appended.
    pub fn append(&mut self, value: Option<&[u8]>) -> Result<(), Unrepresentable> {
        let Some(v) = value else {
            self.append_null();
            return Ok(());
        };
        match self {
            ColumnBuilder::Int16(b) => b.append_value(parse::int(v)?),
            ColumnBuilder::Int32(b) => b.append_value(parse::int(v)?),
            ColumnBuilder::Int64(b) => b.append_value(parse::int(v)?),
            ColumnBuilder::Bool(b) => b.append_value(parse::boolean(v)?),
            ColumnBuilder::Float32(b) => b.append_value(parse::float32(v)?),
            ColumnBuilder::Float64(b) => b.append_value(parse::float(v)?),
            ColumnBuilder::Decimal(b, p, s) => b.append_value(parse::decimal(v, *p, *s)?),
            ColumnBuilder::Text(b) => b.append_value(v),
            ColumnBuilder::Bytes(b) => b.append_value(parse::bytea(v)?),
            ColumnBuilder::Date(b) => b.append_value(parse::date(v)?),
            ColumnBuilder::Timestamp(b, tz) => b.append_value(parse::timestamp(v, *tz)?),
            ColumnBuilder::List {
                values, offsets, nulls, ..
            } => {
                let elements = parse::parse_array(v)?;
                // Parse every element before appending any, so a failure
                // leaves the builder as it was.
                let mut staged = ColumnBuilder::new(&values.column_type());
                for e in &elements {
                    staged.append(e.as_deref())?;
                }
                let end = offsets
                    .last()
                    .copied()
                    .and_then(|o| o.checked_add(i32::try_from(elements.len()).ok()?))
                    .ok_or(Unrepresentable::OutOfRange)?;
                for e in &elements {
                    values.append(e.as_deref())?;
                }
                offsets.push(end);
                nulls.append_non_null();
            }
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Int16(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Bool(b) => b.append_null(),
            ColumnBuilder::Float32(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Decimal(b, ..) => b.append_null(),
            ColumnBuilder::Text(b) => b.append_null(),
            ColumnBuilder::Bytes(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::List { offsets, nulls, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
                nulls.append_null();
            }
        }
    }

    /// The type this builder was made for.
    fn column_type(&self) -> ColumnType {
        match self {
            ColumnBuilder::Int16(_) => ColumnType::Int16,
            ColumnBuilder::Int32(_) => ColumnType::Int32,
            ColumnBuilder::Int64(_) => ColumnType::Int64,
            ColumnBuilder::Bool(_) => ColumnType::Bool,
            ColumnBuilder::Float32(_) => ColumnType::Float32,
            ColumnBuilder::Float64(_) => ColumnType::Float64,
            ColumnBuilder::Decimal(_, precision, scale) => ColumnType::Decimal {
                precision: *precision,
                scale: *scale,
            },
            ColumnBuilder::Text(_) => ColumnType::Text,
            ColumnBuilder::Bytes(_) => ColumnType::Bytes,
            ColumnBuilder::Date(_) => ColumnType::Date,
            ColumnBuilder::Timestamp(_, tz) => ColumnType::Timestamp { tz: *tz },
            ColumnBuilder::List { values, .. } => ColumnType::List(Box::new(values.column_type())),
        }
    }

    /// The array of everything appended; the builder starts over empty.
    pub fn finish(&mut self) -> Result<ArrayRef, Unfinished> {
        Ok(match self {
            ColumnBuilder::Int16(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Float32(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Decimal(b, ..) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) => {
                let bytes = b.finish();
                match StringArray::try_from_binary(bytes.clone()) {
                    Ok(text) => Arc::new(text),
                    Err(_) => {
                        let bad = bytes.iter().flatten().find(|v| std::str::from_utf8(v).is_err());
                        return Err(Unfinished::NotUtf8(bad.unwrap_or_default().to_vec()));
                    }
                }
            }
            ColumnBuilder::Bytes(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, _) => Arc::new(b.finish()),
            ColumnBuilder::List {
                item,
                values,
                offsets,
                nulls,
            } => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])));
                Arc::new(
                    ListArray::try_new(item.clone(), offsets, values.finish()?, nulls.finish())
                        .map_err(Unfinished::Arrow)?,
                )
            }
        })
    }
}

/// Why a column's array could not be finished.
#[derive(Debug)]
pub enum Unfinished {
    /// A text value (this one) is not UTF-8.
    NotUtf8(Vec<u8>),
    /// Arrow refused the array.
    Arrow(ArrowError),
}

/// Builds record batches of some columns of a table's stored rows.
pub struct BatchBuilder {
    table: String,
    schema: SchemaRef,
    /// For each output column: its index in a stored row, and its builder.
    columns: Vec<(usize, ColumnBuilder)>,
    rows: usize,
}

impl BatchBuilder {
    /// A builder of batches with `schema`, whose columns are read from
    /// these indices of a stored row with these types. `table` names the
    /// table in errors.
    pub fn new(table: impl Into<String>, schema: SchemaRef, sources: &[(usize, ColumnType)]) -> BatchBuilder {
        BatchBuilder {
            table: table.into(),
            schema,
            columns: sources.iter().map(|(i, t)| (*i, ColumnBuilder::new(t))).collect(),
            rows: 0,
        }
    }

    /// Appends a stored row (values in the table's column order).
    pub fn push(&mut self, row: &[DatumRef<'_>]) -> Result<(), ValueError> {
        for (position, (index, builder)) in self.columns.iter_mut().enumerate() {
            let value = row.get(*index).copied().unwrap_or(DatumRef::Missing);
            let appended = match value {
                DatumRef::Null => builder.append(None),
                DatumRef::Text(b) => builder.append(Some(b)),
                DatumRef::Missing => Err(Unrepresentable::Missing),
            };
            if let Err(reason) = appended {
                // Keep every column the same length: the row is abandoned,
                // and so is the batch (the caller stops on the error).
                let field = self.schema.field(position);
                return Err(ValueError {
                    table: self.table.clone(),
                    column: field.name().clone(),
                    value: preview(value),
                    arrow_type: field.data_type().to_string(),
                    reason,
                });
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows appended since the last batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row waits.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The rows appended so far as one batch; the builder starts over. A
    /// text value that is not UTF-8 fails the batch, named as
    /// [`BatchBuilder::push`] names a value it cannot read.
    pub fn finish(&mut self) -> Result<RecordBatch, SqlError> {
        let rows = std::mem::take(&mut self.rows);
        let mut arrays = Vec::with_capacity(self.columns.len());
        for (position, (_, builder)) in self.columns.iter_mut().enumerate() {
            match builder.finish() {
                Ok(array) => arrays.push(array),
                Err(Unfinished::Arrow(e)) => return Err(e.into()),
                Err(Unfinished::NotUtf8(value)) => {
                    let field = self.schema.field(position);
                    return Err(ValueError {
                        table: self.table.clone(),
                        column: field.name().clone(),
                        value: preview(DatumRef::Text(&value)),
                        arrow_type: field.data_type().to_string(),
                        reason: Unrepresentable::NotUtf8,
                    }
                    .into());
                }
            }
        }
        // The row count matters for a batch without columns (`count(*)`).
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &options,
        )?)
    }
}

/// The start of a value for an error message.
fn preview(value: DatumRef<'_>) -> String {
    const MAX: usize = 60;
    match value {
        DatumRef::Null => "NULL".into(),
        DatumRef::Missing => "<not captured>".into(),
        DatumRef::Text(b) => {
            let s = String::from_utf8_lossy(b);
            match s.char_indices().nth(MAX) {
                Some((i, _)) => format!("{}...", &s[..i]),
                None => s.into_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Int32Type, Schema};

    fn text(s: &str) -> DatumRef<'_> {
        DatumRef::Text(s.as_bytes())
    }

    #[test]
    fn a_failed_row_names_table_column_and_value() {
        let t = ColumnType::Timestamp { tz: true };
        let schema = Arc::new(Schema::new(vec![ColumnType::Int32.field("id"), t.field("at")]));
        let mut b = BatchBuilder::new("public.events", schema, &[(0, ColumnType::Int32), (1, t)]);
        b.push(&[text("1"), text("2026-01-01 00:00:00+00")]).unwrap();
        let e = b.push(&[text("2"), text("infinity")]).unwrap_err();
        assert_eq!(
            (e.table.as_str(), e.column.as_str(), e.value.as_str()),
            ("public.events", "at", "infinity")
        );
        assert_eq!(e.reason, Unrepresentable::Infinite);
    }

    #[test]
    fn lists_and_nulls() {
        let t = ColumnType::List(Box::new(ColumnType::Int32));
        let schema = Arc::new(Schema::new(vec![t.field("xs")]));
        let mut b = BatchBuilder::new("t", schema, &[(0, t)]);
        b.push(&[text("{1,NULL,3}")]).unwrap();
        b.push(&[DatumRef::Null]).unwrap();
        assert!(b.push(&[text("{{1}}")]).is_err());
        b.push(&[text("{}")]).unwrap();
        let batch = b.finish().unwrap();
        let list = batch.column(0).as_list::<i32>();
        assert_eq!(list.len(), 3);
        assert!(list.is_null(1));
        let first = list.value(0);
        let first = first.as_primitive::<Int32Type>();
        assert_eq!(first.iter().collect::<Vec<_>>(), vec![Some(1), None, Some(3)]);
        assert_eq!(list.value(2).len(), 0);
    }

    #[test]
    fn text_that_is_not_utf8_fails_its_batch_naming_the_value() {
        let schema = Arc::new(Schema::new(vec![
            ColumnType::Int32.field("id"),
            ColumnType::Text.field("name"),
        ]));
        let sources = [(0, ColumnType::Int32), (1, ColumnType::Text)];
        let mut b = BatchBuilder::new("public.people", schema.clone(), &sources);
        b.push(&[text("1"), text("Zoë")]).unwrap();
        b.push(&[text("2"), DatumRef::Text(b"caf\xe9")]).unwrap();
        let Err(SqlError::Value(e)) = b.finish() else {
            panic!("a batch with Latin-1 text is an error naming it");
        };
        assert_eq!((e.table.as_str(), e.column.as_str()), ("public.people", "name"));
        assert_eq!((e.value.as_str(), e.reason), ("caf\u{fffd}", Unrepresentable::NotUtf8));
        // Each value must be text on its own, not only all of them together.
        let mut b = BatchBuilder::new("public.people", schema, &sources);
        b.push(&[text("1"), DatumRef::Text(b"\xc3")]).unwrap();
        b.push(&[text("2"), DatumRef::Text(b"\xab")]).unwrap();
        assert!(matches!(b.finish(), Err(SqlError::Value(_))));
        // The builder starts over after a failed batch.
        b.push(&[text("3"), text("ok")]).unwrap();
        let batch = b.finish().unwrap();
        assert_eq!(batch.column(1).as_string::<i32>().value(0), "ok");
    }

    #[test]
    fn batches_without_columns_count_rows() {
        let mut b = BatchBuilder::new("t", Arc::new(Schema::empty()), &[]);
        b.push(&[text("1")]).unwrap();
        b.push(&[text("2")]).unwrap();
        assert_eq!(b.finish().unwrap().num_rows(), 2);
    }
}
