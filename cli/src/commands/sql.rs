//! `asof sql` and `asof export`: SQL over the tables as of a moment, and
//! Parquet files of them.

use std::io::{self, IsTerminal as _, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use asof_sql::{AtomicFile, Engine, ExportOptions, OutputFormat, SqlError, Typing};

use crate::args::{ExportArgs, SqlArgs, SqlFormat, TypingArg};
use crate::commands::open_reader;
use crate::{when, UsageError};

pub fn run(store_path: &Path, a: SqlArgs) -> Result<()> {
    let format = match a.format {
        Some(SqlFormat::Table) => OutputFormat::Table,
        Some(SqlFormat::Csv) => OutputFormat::Csv,
        Some(SqlFormat::Jsonl) => OutputFormat::Jsonl,
        Some(SqlFormat::Parquet) => OutputFormat::Parquet,
        None if a.output.is_none() && io::stdout().is_terminal() => OutputFormat::Table,
        None => OutputFormat::Csv,
    };
    if format == OutputFormat::Parquet && a.output.is_none() {
        return Err(UsageError("--format parquet needs --output FILE".into()).into());
    }
    let store = Arc::new(open_reader(store_path)?);
    let r = when::resolve(&store, a.at.at, "as of ")?;
    let engine = Engine::new(store, r.cut, typing(&a.typing))?;
    runtime()?.block_on(async {
        let rows = engine.query(&a.query).await.map_err(explain)?;
        for (table, asked, at) in engine.other_moments() {
            when::note(&format!("{table} at {asked}: as of "), &at);
        }
        match &a.output {
            Some(path) => {
                let mut file = AtomicFile::create(path)?;
                asof_sql::write_rows(rows, format, file.writer()?)
                    .await
                    .map_err(explain)?;
                file.commit()?;
            }
            None => {
                // Not the locked stdout of the other commands: the rows
                // are written from the query's runtime, which needs `Send`.
                let mut out = io::BufWriter::with_capacity(256 << 10, io::stdout());
                asof_sql::write_rows(rows, format, &mut out).await.map_err(explain)?;
                out.flush().context("cannot write")?;
            }
        }
        Ok::<(), anyhow::Error>(())
    })
}

pub fn export(store_path: &Path, a: ExportArgs) -> Result<()> {
    let store = open_reader(store_path)?;
    let options = ExportOptions {
        tables: a.tables,
        force: a.force,
        typing: typing(&a.typing),
    };
    let manifest = match a.at {
        Some(at) => {
            let r = when::resolve(&store, at, "as of ")?;
            asof_sql::export_at(&store, r.cut, &a.to, &options).map_err(explain)?
        }
        None => asof_sql::export_history(&store, &a.to, &options).map_err(explain)?,
    };
    for t in &manifest.tables {
        eprintln!("{}: {} rows -> {}", t.name, t.rows, a.to.join(&t.file).display());
    }
    eprintln!("wrote {}", a.to.join(asof_sql::MANIFEST).display());
    Ok(())
}

fn typing(a: &TypingArg) -> Typing {
    if a.text {
        Typing::Text
    } else {
        Typing::Typed
    }
}

/// A value a typed column cannot hold says how to read it anyway.
fn explain(e: SqlError) -> anyhow::Error {
    match e {
        SqlError::Value(v) => {
            anyhow::Error::from(v).context("cannot answer (--text reads every column as Postgres text)")
        }
        e => e.into(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the query runtime")
}
