//! Printing measurements as markdown tables, and reading what `asof tail`
//! reported.

use std::path::Path;

use anyhow::{anyhow, Result};
use asof_benches::median;

use crate::measure::{thread_line, Run};

/// Prints interleaved pairs as a markdown table (wall seconds, and the CPU
/// seconds of the client process and of the server processes serving it);
/// returns the ratio of the median wall times.
pub fn report_pairs(title: &str, ref_name: &str, ours_name: &str, refs: &[Run], ours: &[Run]) -> f64 {
    println!("\n### {title}\n");
    println!("reference = `{ref_name}`, ours = `{ours_name}`\n");
    println!("| rep | reference wall s | ours wall s | ratio | ref client CPU s | ours client CPU s | ref server CPU s | ours server CPU s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (i, (r, o)) in refs.iter().zip(ours).enumerate() {
        println!(
            "| {} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            i + 1,
            r.wall,
            o.wall,
            o.wall / r.wall,
            r.cpu,
            o.cpu,
            r.server,
            o.server
        );
    }
    let m = |xs: &[Run], f: fn(&Run) -> f64| median(&xs.iter().map(f).collect::<Vec<_>>());
    let (mr, mo) = (m(refs, |r| r.wall), m(ours, |r| r.wall));
    let ratio = mo / mr;
    println!(
        "| **median** | **{mr:.3}** | **{mo:.3}** | **{ratio:.2}** | {:.2} | {:.2} | {:.2} | {:.2} |",
        m(refs, |r| r.cpu),
        m(ours, |r| r.cpu),
        m(refs, |r| r.server),
        m(ours, |r| r.server)
    );
    let total = |xs: &[Run]| median(&xs.iter().map(|r| r.cpu + r.server).collect::<Vec<_>>());
    println!(
        "\ntotal CPU (client + server), medians: reference {:.2} s, ours {:.2} s, ratio {:.2}",
        total(refs),
        total(ours),
        total(ours) / total(refs)
    );
    // Processes only: a run in process has no peak of its own.
    if ours.iter().any(|r| r.peak_rss > 0) {
        println!(
            "\npeak resident memory of ours: {} MiB (median; reps {})",
            mib(median(&ours.iter().map(|r| r.peak_rss as f64).collect::<Vec<_>>()) as u64).round(),
            ours.iter()
                .map(|r| format!("{:.0}", mib(r.peak_rss)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!("\nCPU seconds by thread of ours (sampled every 50 ms from /proc):\n");
    for (i, o) in ours.iter().enumerate() {
        println!("- rep {}: {}", i + 1, thread_line(o));
    }
    ratio
}

pub fn walls(runs: &[Run]) -> Vec<f64> {
    runs.iter().map(|r| r.wall).collect()
}

pub fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

/// `asof tail` prints "N transactions (M changes) stored[, K rows copied]".
pub fn tail_summary(log: &Path) -> Result<(u64, u64, u64)> {
    let text = std::fs::read_to_string(log)?;
    let line = text
        .lines()
        .rev()
        .find(|l| l.contains("transactions (") && l.contains("stored"))
        .ok_or_else(|| anyhow!("no summary in {}:\n{text}", log.display()))?;
    let num = |s: &str| s.trim().parse::<u64>().unwrap_or(0);
    // "stored N transactions (M changes), K rows copied; ..."
    let txns = num(line
        .split(" transactions")
        .next()
        .and_then(|s| s.split_whitespace().last())
        .unwrap_or(""));
    let changes = num(line
        .split('(')
        .nth(1)
        .and_then(|s| s.split(" changes").next())
        .unwrap_or(""));
    let copied = line
        .split(", ")
        .nth(1)
        .and_then(|s| s.split(" rows copied").next())
        .map_or(0, num);
    Ok((txns, changes, copied))
}

/// Prints the medians of each variant (the first is the reference) and
/// their wall-time ratio to the reference.
pub fn report_variants(reference: &str, names: &[&str], results: &[Vec<Run>]) {
    println!("\n| variant | median wall s | ratio to {reference} | median client CPU s | median server CPU s |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let med = |xs: &[Run], f: fn(&Run) -> f64| median(&xs.iter().map(f).collect::<Vec<_>>());
    let base = results.first().map_or(f64::NAN, |r| med(r, |r| r.wall));
    for (name, runs) in names.iter().zip(results) {
        println!(
            "| {name} | {:.3} | {:.2} | {:.2} | {:.2} |",
            med(runs, |r| r.wall),
            med(runs, |r| r.wall) / base,
            med(runs, |r| r.cpu),
            med(runs, |r| r.server)
        );
    }
}
