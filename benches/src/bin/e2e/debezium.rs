//! Debezium's PostgreSQL connector as a reference: its embedded engine in
//! a small Java program (`benches/debezium/`) whose consumer only counts
//! the JSON change events, run beside `pg_recvlogical`, `COPY` and `asof`.
//!
//! The jars (Debezium 3.6.1.Final) are resolved once with Maven into
//! `~/.cache/asof-debezium/<version>/libs` (or `$ASOF_DEBEZIUM_LIBS`), and
//! the program is compiled with `javac` next to them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use pg_fixture::PgCluster;

const VERSION: &str = "3.6.1.Final";

/// The compiled program and its class path.
pub struct Debezium {
    classpath: String,
}

impl Debezium {
    /// Resolves the jars and compiles the program when needed.
    pub fn prepare() -> Result<Debezium> {
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("debezium");
        let cache = match std::env::var_os("ASOF_DEBEZIUM_LIBS") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(std::env::var_os("HOME").context("no HOME")?)
                .join(".cache/asof-debezium")
                .join(VERSION)
                .join("libs"),
        };
        if !cache.join(format!("debezium-embedded-{VERSION}.jar")).is_file() {
            println!("fetching Debezium {VERSION} with Maven into {}", cache.display());
            let partial = cache.with_extension("partial");
            let _ = std::fs::remove_dir_all(&partial);
            let ok = Command::new("mvn")
                .args(["-q", "-B", "-f"])
                .arg(project.join("pom.xml"))
                .args(["dependency:copy-dependencies", "-DincludeScope=runtime"])
                .arg(format!("-DoutputDirectory={}", partial.display()))
                .status()
                .context("running mvn")?;
            if !ok.success() {
                bail!("mvn could not resolve Debezium {VERSION}");
            }
            std::fs::rename(&partial, &cache)?;
        }
        let classes = cache.with_file_name("classes");
        let source = project.join("src/main/java/asof/bench/DebeziumCount.java");
        let class = classes.join("asof/bench/DebeziumCount.class");
        let stale = match (std::fs::metadata(&class), std::fs::metadata(&source)) {
            (Ok(c), Ok(s)) => c.modified()? < s.modified()?,
            _ => true,
        };
        let jars = format!("{}/*", cache.display());
        if stale {
            let ok = Command::new("javac")
                .arg("-d")
                .arg(&classes)
                .arg("-cp")
                .arg(&jars)
                .arg(&source)
                .status()
                .context("running javac")?;
            if !ok.success() {
                bail!("javac could not compile {}", source.display());
            }
        }
        Ok(Debezium {
            classpath: format!("{}:{jars}", classes.display()),
        })
    }

    /// Runs the connector on `slot` (created if missing) and `publication`
    /// until it has seen `expected` change events. `snapshot_mode` is
    /// Debezium's: `no_data` streams only, `initial` reads the tables first.
    pub fn command(
        &self,
        cl: &PgCluster,
        slot: &str,
        publication: &str,
        snapshot_mode: &str,
        expected: u64,
    ) -> Command {
        let mut cmd = Command::new("java");
        cmd.args(["-Xmx2g", "-cp", &self.classpath, "asof.bench.DebeziumCount"])
            .arg(cl.host())
            .arg(cl.port().to_string())
            .arg(cl.user())
            .arg("postgres")
            .args([slot, publication, snapshot_mode])
            .arg(expected.to_string());
        cmd
    }
}
