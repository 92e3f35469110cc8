//! A damaged store is never read as an empty or partial one: with any of
//! its table files deleted or cut short, or its `CURRENT` pointer gone,
//! every query fails with a one-line "damaged" error and exit 1.

use std::path::{Path, PathBuf};

use crate::support::*;

/// The queries a user would run, each of which must notice the damage.
fn queries(shop: &Shop) -> Vec<Vec<String>> {
    let at = shop.m[2].at_lsn();
    let from = shop.m[1].at_lsn();
    [
        vec!["snapshot", "orders", "--at", &at],
        vec!["snapshot", "order_lines"],
        vec!["get", "orders", "1", "--at", &at],
        vec!["history", "orders", "1"],
        vec!["diff", "orders", "--from", &from, "--to", "now"],
        vec!["tables"],
        vec!["status"],
    ]
    .into_iter()
    .map(|q| q.into_iter().map(str::to_string).collect())
    .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy");
    for e in std::fs::read_dir(from).expect("read store dir") {
        let e = e.expect("dir entry");
        if e.file_type().expect("file type").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy store file");
        }
    }
}

fn sst_files(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(store)
        .expect("read store dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    v.sort();
    v
}

/// Runs every query on a damaged copy and expects "damaged" from each.
fn assert_every_query_fails(store: &Path, damage: &str, queries: &[Vec<String>], problems: &mut Vec<String>) {
    let asof = Asof::new(store);
    for q in queries {
        let args: Vec<&str> = q.iter().map(String::as_str).collect();
        check(problems, &format!("{damage}: asof {}", q.join(" ")), || {
            let line = asof.run(&args).runtime_error();
            assert!(line.contains("damaged"), "error names the damage: {line}");
        });
    }
}

#[test]
fn damaged_store_files_are_errors_not_empty_answers() {
    let shop = Shop::build();
    let queries = queries(&shop);
    // The intact store answers every query.
    let intact: Vec<Vec<u8>> = queries
        .iter()
        .map(|q| {
            let args: Vec<&str> = q.iter().map(String::as_str).collect();
            shop.asof.run(&args).ok().stdout
        })
        .collect();
    let ssts = sst_files(&shop.asof.store);
    assert!(!ssts.is_empty(), "the stopped capture left table files");
    let work = scratch();
    let mut problems = Vec::new();
    for (i, sst) in ssts.iter().enumerate() {
        let name = sst.file_name().expect("file name").to_owned();
        // Deleted.
        let copy = work.path().join(format!("deleted-{i}"));
        copy_dir(&shop.asof.store, &copy);
        std::fs::remove_file(copy.join(&name)).expect("delete table file");
        assert_every_query_fails(&copy, &format!("{name:?} deleted"), &queries, &mut problems);
        // Cut short.
        let copy = work.path().join(format!("truncated-{i}"));
        copy_dir(&shop.asof.store, &copy);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.join(&name))
            .expect("open table file");
        let len = f.metadata().expect("metadata").len();
        f.set_len(len / 2).expect("truncate table file");
        assert_every_query_fails(&copy, &format!("{name:?} truncated"), &queries, &mut problems);
    }
    // A flipped byte inside a file: whatever a query reads is checked, so
    // each query answers exactly as before or says the store is damaged.
    for (i, sst) in ssts.iter().enumerate() {
        let name = sst.file_name().expect("file name").to_owned();
        let copy = work.path().join(format!("flipped-{i}"));
        copy_dir(&shop.asof.store, &copy);
        let mut bytes = std::fs::read(copy.join(&name)).expect("read table file");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x5a;
        std::fs::write(copy.join(&name), bytes).expect("write table file");
        let damaged = Asof::new(&copy);
        for (q, want) in queries.iter().zip(&intact) {
            let args: Vec<&str> = q.iter().map(String::as_str).collect();
            check(
                &mut problems,
                &format!("{name:?} flipped: asof {}", q.join(" ")),
                || {
                    let out = damaged.run(&args);
                    if out.code == Some(0) {
                        // `status` names the store's path and size, which differ.
                        if q[0] != "status" {
                            assert_eq!(&out.stdout, want, "a query that succeeds answers as before");
                        }
                    } else {
                        let line = out.runtime_error();
                        assert!(line.contains("damaged"), "error names the damage: {line}");
                    }
                },
            );
        }
    }
    // No CURRENT: the directory is still a store, a damaged one.
    let copy = work.path().join("no-current");
    copy_dir(&shop.asof.store, &copy);
    std::fs::remove_file(copy.join("CURRENT")).expect("delete CURRENT");
    assert_every_query_fails(&copy, "CURRENT deleted", &queries, &mut problems);
    assert_no_problems(&problems);

    // The original is untouched by all that and still answers.
    shop.asof.run(&["snapshot", "orders"]).ok();
}
