//! Writing a query's rows: an aligned table for people, CSV, JSON lines,
//! or Parquet.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::parquet::arrow::ArrowWriter;
use futures::StreamExt;

use crate::error::{Result, SqlError};

/// How a query's rows are written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OutputFormat {
    /// Aligned columns (the whole result is gathered first).
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row.
    Jsonl,
    /// A Parquet file.
    Parquet,
}

/// Writes every row of `stream` to `out` in `format`, batch by batch
/// (except `Table`, which aligns the whole result); the number of rows.
pub async fn write_rows<W: Write + Send>(
    mut stream: SendableRecordBatchStream,
    format: OutputFormat,
    mut out: W,
) -> Result<u64> {
    let mut rows = 0u64;
    let mut count = |b: &RecordBatch| rows += u64::try_from(b.num_rows()).unwrap_or(u64::MAX);
    match format {
        OutputFormat::Table => {
            let mut batches = Vec::new();
            while let Some(b) = next_batch(&mut stream).await? {
                count(&b);
                batches.push(b);
            }
            let table = pretty_format_batches(&batches)?;
            writeln!(out, "{table}").map_err(write_error)?;
            out.flush().map_err(write_error)?;
        }
        OutputFormat::Csv => {
            let mut writer = CsvWriterBuilder::new().with_header(true).build(out);
            while let Some(b) = next_batch(&mut stream).await? {
                count(&b);
                writer.write(&b)?;
            }
            writer.into_inner().flush().map_err(write_error)?;
        }
        OutputFormat::Jsonl => {
            let mut writer = LineDelimitedWriter::new(out);
            while let Some(b) = next_batch(&mut stream).await? {
                count(&b);
                writer.write(&b)?;
            }
            writer.finish()?;
            writer.into_inner().flush().map_err(write_error)?;
        }
        OutputFormat::Parquet => {
            let mut writer = ArrowWriter::try_new(out, stream.schema(), None)?;
            while let Some(b) = next_batch(&mut stream).await? {
                count(&b);
                writer.write(&b)?;
            }
            writer.close()?;
        }
    }
    Ok(rows)
}

/// The next batch, with an error carried out of a scan found again.
async fn next_batch(stream: &mut SendableRecordBatchStream) -> Result<Option<RecordBatch>> {
    match stream.next().await {
        Some(Ok(batch)) => Ok(Some(batch)),
        Some(Err(e)) => Err(SqlError::from_datafusion(e)),
        None => Ok(None),
    }
}

fn write_error(e: std::io::Error) -> SqlError {
    SqlError::Io {
        what: "cannot write",
        path: "output".into(),
        source: e,
    }
}
