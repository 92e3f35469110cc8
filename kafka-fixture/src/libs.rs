//! Finding the Kafka jars and the Java runtime that runs them.
//!
//! The jars are not in the repository: `scripts/setup.sh` resolves
//! `kafka-fixture/maven/pom.xml` with Maven and copies them to
//! `$HOME/.cache/asof-kafka/<version>/libs` (or `$ASOF_KAFKA_LIBS`). This
//! module looks in the same place, in the same order.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::KafkaFixtureError;

/// The Apache Kafka version the fixture runs (the one in the pom).
pub const KAFKA_VERSION: &str = "4.4.0";

/// Environment variable naming the directory that holds the Kafka jars.
pub const LIBS_DIR_ENV: &str = "ASOF_KAFKA_LIBS";

/// The jar whose presence says the directory holds this Kafka version.
/// The setup script fills the directory under another name and renames it
/// when every jar is there, so one jar stands for all.
const MARKER_JAR: &str = "kafka_2.13-4.4.0.jar";

/// Returns the directory holding the Kafka jars.
pub(crate) fn locate(explicit: Option<&Path>) -> Result<PathBuf, KafkaFixtureError> {
    let dir = match explicit {
        Some(dir) => dir.to_path_buf(),
        None => default_dir(
            std::env::var_os(LIBS_DIR_ENV).filter(|v| !v.is_empty()),
            std::env::var_os("HOME"),
        ),
    };
    if dir.join(MARKER_JAR).is_file() {
        Ok(dir)
    } else {
        Err(KafkaFixtureError::LibsNotFound {
            looked_in: dir,
            version: KAFKA_VERSION,
        })
    }
}

fn default_dir(from_env: Option<OsString>, home: Option<OsString>) -> PathBuf {
    if let Some(dir) = from_env {
        return PathBuf::from(dir);
    }
    let home = home.map_or_else(|| PathBuf::from("/"), PathBuf::from);
    home.join(".cache/asof-kafka").join(KAFKA_VERSION).join("libs")
}

/// The class path covering every jar of `dir` (the JVM expands `*`).
pub(crate) fn class_path(dir: &Path) -> OsString {
    dir.join("*").into_os_string()
}

/// `$JAVA_HOME/bin/java` when `JAVA_HOME` is set, else `java` from `PATH`.
pub(crate) fn java() -> PathBuf {
    match std::env::var_os("JAVA_HOME").filter(|v| !v.is_empty()) {
        Some(home) => Path::new(&home).join("bin").join("java"),
        None => PathBuf::from("java"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_home_cache() {
        assert_eq!(
            default_dir(Some("/opt/kafka-libs".into()), Some("/home/u".into())),
            PathBuf::from("/opt/kafka-libs")
        );
        assert_eq!(
            default_dir(None, Some("/home/u".into())),
            PathBuf::from("/home/u/.cache/asof-kafka/4.4.0/libs")
        );
    }

    #[test]
    fn marker_names_the_version() {
        assert!(MARKER_JAR.contains(KAFKA_VERSION));
    }

    #[test]
    fn empty_dir_is_not_a_libs_dir() {
        let dir = tempfile::tempdir().expect("temp dir");
        let err = locate(Some(dir.path())).expect_err("must fail");
        assert!(matches!(err, KafkaFixtureError::LibsNotFound { .. }), "{err}");
    }
}
