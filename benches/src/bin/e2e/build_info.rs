//! Which build is being measured.

use std::path::Path;
use std::process::Command;

use changelog::CommitTime;

/// Prints what is being measured: the repository commit and whether the
/// tree differs from it, and when the asof and e2e binaries were built
/// (both must come from the same tree: they share the store format).
pub fn describe_build(asof: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let head = git(&["log", "-1", "--format=%h %cI %s"]);
    let dirty = git(&["status", "--porcelain", "--", ".", ":!BENCHMARKS.md"]);
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or("?".to_string(), |d| {
                CommitTime::from_unix_micros(d.as_micros() as i64).to_string()
            })
    };
    println!(
        "commit {head}; tree {}",
        if dirty.is_empty() {
            "unchanged".to_string()
        } else {
            format!("modified:\n{dirty}")
        }
    );
    println!(
        "asof binary built {}, e2e binary built {}",
        mtime(asof),
        std::env::current_exe().map(|p| mtime(&p)).unwrap_or_default()
    );
}
