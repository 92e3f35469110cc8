//! `asof verify`: compares the store with the source at one exact LSN and
//! names the keys that differ.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Result};
use verify::{Outcome, TableReport, VerifyOptions};

use crate::args::VerifyArgs;
use crate::commands::{open_follower, stdout};

pub fn run(store_path: &Path, a: VerifyArgs) -> Result<()> {
    let mut store = open_follower(store_path)?;
    let options = VerifyOptions {
        conninfo: a.conninfo,
        tables: a.tables,
        timeout: a.timeout,
    };
    let mut out = stdout();
    let mut write_error = None;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = rt.block_on(verify::verify(&mut store, &options, |t| {
        eprintln!("{}", summary(t));
        if write_error.is_none() {
            write_error = differences(&mut out, t).err();
        }
    }))?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    out.flush()?;
    let differing = report.tables.iter().filter(|t| t.outcome != Outcome::Equal).count();
    if differing > 0 {
        bail!(
            "the store differs from the source at {} (store cut {}): {differing} of {} tables",
            report.lsn,
            report.cut,
            report.tables.len()
        );
    }
    eprintln!(
        "the store equals the source at {} (store cut {}): {} tables",
        report.lsn,
        report.cut,
        report.tables.len()
    );
    Ok(())
}

/// One line per differing key, and a count of those not named.
fn differences(out: &mut impl Write, t: &TableReport) -> std::io::Result<()> {
    for d in &t.differences {
        let key = match d.key.as_slice() {
            [one] => one.clone(),
            many => format!("({})", many.join(", ")),
        };
        writeln!(out, "{} key {key}: {}", t.table, d.kind.describe())?;
    }
    let unnamed = t.differing.saturating_sub(t.differences.len() as u64);
    if unnamed > 0 {
        writeln!(out, "{}: {unnamed} more differing keys", t.table)?;
    }
    Ok(())
}

/// The table's verdict in one line.
fn summary(t: &TableReport) -> String {
    let rows = match t.source_rows {
        Some(s) if s == t.store_rows => format!("{s} rows"),
        Some(s) => format!("{s} rows at the source, {} in the store", t.store_rows),
        None => format!("{} rows in the store", t.store_rows),
    };
    let how = if t.keyed {
        format!(
            "{} key ranges compared, {} rows listed",
            t.ranges_compared, t.rows_listed
        )
    } else {
        "no usable key: compared by fingerprint only".to_owned()
    };
    let verdict = match &t.outcome {
        Outcome::Equal if t.kept > 0 => format!(
            "equal ({rows}; {how}; {} rows the source removed are kept: the publication does not publish deletes)",
            t.kept
        ),
        Outcome::Equal => format!("equal ({rows}; {how})"),
        Outcome::RowsDiffer if t.keyed => format!(
            "DIFFERS: {} keys{} ({rows}; {how})",
            t.differing,
            if t.incomplete { " and more not listed" } else { "" }
        ),
        Outcome::RowsDiffer => format!("DIFFERS ({rows}; {how})"),
        Outcome::MissingAtSource => "DIFFERS: no such table at the source".to_owned(),
        Outcome::MissingInStore => "DIFFERS: no such table in the store at this cut".to_owned(),
        Outcome::ColumnsDiffer(store, source) => format!(
            "DIFFERS: columns differ (store: {}; source: {})",
            store.join(", "),
            source.join(", ")
        ),
        _ => "DIFFERS".to_owned(),
    };
    format!("{}: {verdict}", t.table)
}
