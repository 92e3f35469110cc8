//! What every step is given: the asof binary, a work directory, how many
//! repetitions and how large a workload.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use pg_fixture::PgCluster;

use crate::pg::cluster;

pub struct Ctx {
    pub asof: PathBuf,
    pub work: PathBuf,
    pub reps: usize,
    pub scale: f64,
}

impl Ctx {
    /// `base` scaled, at least `min`.
    pub fn n(&self, base: u64, min: u64) -> u64 {
        ((base as f64 * self.scale).round() as u64).max(min)
    }

    /// The capture backlog: transactions of 1,000 inserts, of 1,000
    /// updates and of 1,000 deletes.
    pub fn backlog_size(&self) -> (u64, u64, u64) {
        (self.n(1000, 1), self.n(500, 1), self.n(200, 1))
    }

    /// A fresh sub-directory of the work directory.
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.work.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
        std::fs::create_dir_all(&d)?;
        Ok(d)
    }

    /// Starts a step: its heading, its private cluster (and the cluster's
    /// connection string), and a fresh work directory `dir`.
    pub fn step(&self, title: &str, dir: &str) -> Result<(PgCluster, String, PathBuf)> {
        println!("\n## {title}");
        let cl = cluster()?;
        let conn = cl.conninfo();
        Ok((cl, conn, self.dir(dir)?))
    }

    /// `asof --store <store>`.
    pub fn asof(&self, store: &Path) -> Command {
        let mut c = Command::new(&self.asof);
        c.arg("--store").arg(store);
        c
    }
}
