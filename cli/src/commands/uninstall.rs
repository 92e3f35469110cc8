//! `asof uninstall`: remove what the capture installed on a database.

use std::io::Write;

use anyhow::{Context, Result};
use cdc_source::uninstall;

use crate::args::UninstallArgs;

pub fn run(a: UninstallArgs) -> Result<()> {
    let source = &a.source;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let removal = rt.block_on(async {
        let client = cdc_source::sql::connect(&source.conninfo)
            .await
            .context("cannot connect to the source")?;
        let removal = uninstall::find(&client, &source.slot, &source.publication).await?;
        if !a.dry_run {
            uninstall::remove(&client, &removal.objects).await?;
        }
        anyhow::Ok(removal)
    })?;
    let verb = if a.dry_run { "would drop" } else { "dropped" };
    let mut out = super::stdout();
    for object in &removal.objects {
        writeln!(out, "{verb} {object}")?;
    }
    for kept in &removal.kept {
        writeln!(out, "kept {kept}")?;
    }
    if removal.objects.is_empty() {
        writeln!(out, "nothing of asof's found on {}", source.conninfo)?;
    }
    out.flush()?;
    Ok(())
}
