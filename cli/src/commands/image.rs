//! `asof image`.

use std::path::Path;

use anyhow::{Context, Result};
use changelog::{Lsn, Store, StoreOptions};
use materializer::Cut;

use crate::args::ImageArgs;
use crate::when;

/// Commits read at a time while looking for the moments of `--every`.
const PAGE: usize = 10_000;

pub fn run(store_path: &Path, a: ImageArgs) -> Result<()> {
    let mut store = Store::open(store_path, &StoreOptions::default())
        .with_context(|| format!("cannot open the store at {} to write images", store_path.display()))?;
    let cuts = match a.every {
        Some(n) => periodic(&store, n)?,
        None => vec![when::resolve(&store, a.at, "images at: ")?.cut.lsn],
    };
    for name in &a.tables {
        let known = store.catalog().tables().any(|(_, e)| {
            e.history
                .versions()
                .iter()
                .any(|v| v.schema().is_some_and(|s| &s.name == name))
        });
        if !known {
            return Err(crate::UsageError(format!("--tables: the store has no table {name}")).into());
        }
    }
    let mut written = 0;
    for lsn in cuts {
        let Some(commit) = store.commit(lsn)? else { continue };
        let cut = Cut::from_commit(&commit);
        let tables: Vec<_> = materializer::tables_at(&store, cut)
            .into_iter()
            .filter(|t| a.tables.is_empty() || a.tables.contains(&t.schema.name))
            .map(|t| (t.id, t.schema.name.clone()))
            .collect();
        for (id, name) in tables {
            // Periodic images skip a table unchanged since its last one:
            // that image reads the same.
            let last = store.images(id)?.into_iter().rev().find(|i| i.at < lsn);
            if let Some(last) = last.filter(|_| a.every.is_some()) {
                if !store.changed_between(id, last.at, lsn)? {
                    eprintln!("image of {name} at {cut}: unchanged since its image at {}", last.at);
                    continue;
                }
            }
            let new = store.write_image(id, lsn)?;
            match new.run {
                Some(run) => eprintln!(
                    "image of {name} at {cut}: {} rows; {} versions since the image at {}",
                    new.image.rows, run.versions, run.from
                ),
                None => eprintln!("image of {name} at {cut}: {} rows", new.image.rows),
            }
            written += 1;
        }
    }
    eprintln!("{written} images written");
    Ok(())
}

/// The commits that end each run of `n` changes of the log, counted from
/// the newest image already written (or the first commit).
fn periodic(store: &Store, n: u64) -> Result<Vec<Lsn>> {
    let Some(top) = store.watermark().map(|w| w.commit_lsn) else {
        return Ok(Vec::new());
    };
    let newest_image = store
        .catalog()
        .tables()
        .map(|(t, _)| store.images(t).map(|i| i.last().map(|i| i.at)))
        .collect::<changelog::Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .max();
    let mut from = newest_image.map_or_else(|| store.first_commit_lsn().unwrap_or(Lsn::ZERO), Lsn::next);
    let (mut cuts, mut since) = (Vec::new(), 0u64);
    loop {
        let page = store.commits_from(from, top, PAGE)?;
        let Some(last) = page.last() else { break };
        from = last.commit_lsn.next();
        for c in &page {
            since += u64::from(c.records);
            if since >= n {
                cuts.push(c.commit_lsn);
                since = 0;
            }
        }
    }
    Ok(cuts)
}
