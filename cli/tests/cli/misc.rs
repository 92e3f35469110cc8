//! Help texts and the demo.

use crate::support::*;

const SUBCOMMANDS: &[&str] = &[
    "tail", "snapshot", "get", "history", "diff", "changes", "tables", "status", "compact", "verify", "demo",
];

#[test]
fn every_subcommand_help_has_examples() {
    for sub in SUBCOMMANDS {
        for args in [vec![*sub, "--help"], vec!["help", *sub]] {
            let out = asof_raw(&args).ok();
            let text = out.text();
            assert!(
                text.contains("Examples:"),
                "`asof {}` has no examples:\n{text}",
                args.join(" ")
            );
            assert!(
                text.contains(&format!("asof {sub}")),
                "examples of `asof {sub}`:\n{text}"
            );
        }
    }
    let top = asof_raw(["--help"]).ok().text();
    for sub in SUBCOMMANDS {
        assert!(top.contains(sub), "`asof --help` lists {sub}:\n{top}");
    }
    let version = asof_raw(["--version"]).ok().text();
    assert!(version.starts_with("asof "), "{version}");
    // The WHEN forms are documented where a WHEN is taken.
    for sub in ["snapshot", "get", "diff", "changes", "tables", "compact"] {
        let text = asof_raw([sub, "--help"]).ok().text();
        assert!(
            text.contains("lsn:0/16B3748") && text.contains("-10m"),
            "`asof {sub} --help` explains WHEN:\n{text}"
        );
    }
}

#[test]
fn demo_runs_and_shows_snapshots() {
    let dir = scratch();
    let kept = dir.path().join("demo-store");
    let out = asof_raw(["demo", "--keep-store", kept.to_str().expect("utf-8")]).ok();
    let text = out.text();
    for needle in [
        "=== phase 1: initial copy ===",
        "=== asof snapshot orders --at",
        "=== asof history orders 7 ===",
        "=== asof diff orders --from",
        "=== asof status ===",
        "(8 rows)",
        "(7 rows)",
        "demo finished",
    ] {
        assert!(text.contains(needle), "demo output lacks {needle:?}:\n{text}");
    }
    // The kept store answers afterwards: order 7 ended delivered.
    let a = Asof::new(&kept);
    let rows = json_lines(&a.run(&["get", "orders", "--format", "jsonl", "7"]).ok());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "delivered");
    assert_eq!(rows[0]["priority"], "high");
    let snap = a.run(&["snapshot", "orders", "--format", "csv"]).ok().text();
    assert_eq!(snap.lines().count(), 8, "7 orders and a header:\n{snap}");
}
