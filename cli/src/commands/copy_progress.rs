//! The line `tail` shows while it copies a table: rows, bytes, rate and,
//! when Postgres has an estimate of the table's rows, a bar and the time
//! left.

use std::time::Duration;

use cdc_source::snapshot::CopyProgress;

/// Width of the bar in characters.
const BAR: usize = 24;

/// The progress line of `p`, `elapsed` after the table's copy began; with a
/// bar when `bar` (a terminal).
pub fn copy_line(p: &CopyProgress, elapsed: Duration, bar: bool) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { p.table_rows as f64 / secs } else { 0.0 };
    let table_no = (p.tables_done + 1).min(p.tables_total);
    let mut line = format!("copying {} ({table_no}/{} tables)", p.table, p.tables_total);
    // An estimate below what was already copied is stale: no bar then.
    let fraction = p
        .table_estimate
        .filter(|&n| n > 0 && n >= p.table_rows)
        .map(|n| p.table_rows as f64 / n as f64);
    if let (Some(f), true) = (fraction, bar) {
        let done = ((f * BAR as f64) as usize).min(BAR);
        line.push_str(&format!(
            " [{}{}] {:>3.0}%",
            "#".repeat(done),
            "-".repeat(BAR - done),
            f * 100.0
        ));
    }
    line.push_str(&format!(": {} rows", thousands(p.table_rows)));
    if let Some(n) = p.table_estimate.filter(|&n| n >= p.table_rows) {
        line.push_str(&format!(" of ~{}", thousands(n)));
    }
    line.push_str(&format!(", {:.1} MiB read", p.bytes as f64 / 1_048_576.0));
    if rate >= 1.0 {
        line.push_str(&format!(", {} rows/s", thousands(rate as u64)));
        if let Some(n) = p.table_estimate.filter(|&n| n >= p.table_rows) {
            line.push_str(&format!(", ETA {}", duration((n - p.table_rows) as f64 / rate)));
        }
    }
    line
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `42s`, `3m07s` or `2h05m`.
fn duration(secs: f64) -> String {
    let s = secs.ceil().max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(rows: u64, estimate: Option<u64>) -> CopyProgress {
        CopyProgress {
            table: "public.orders".into(),
            rows,
            table_rows: rows,
            table_estimate: estimate,
            bytes: 3 << 20,
            tables_done: 0,
            tables_total: 2,
        }
    }

    #[test]
    fn shows_a_bar_and_the_time_left_when_the_size_is_estimated() {
        let line = copy_line(&progress(250_000, Some(1_000_000)), Duration::from_secs(2), true);
        assert_eq!(
            line,
            "copying public.orders (1/2 tables) [######------------------]  25%: 250,000 rows of ~1,000,000, \
             3.0 MiB read, 125,000 rows/s, ETA 6s"
        );
    }

    #[test]
    fn without_an_estimate_or_a_terminal_there_is_no_bar() {
        let line = copy_line(&progress(1_234_567, None), Duration::from_secs(600), false);
        assert_eq!(
            line,
            "copying public.orders (1/2 tables): 1,234,567 rows, 3.0 MiB read, 2,057 rows/s"
        );
        // An estimate already passed is not shown.
        let line = copy_line(&progress(20, Some(10)), Duration::from_secs(1), true);
        assert_eq!(
            line,
            "copying public.orders (1/2 tables): 20 rows, 3.0 MiB read, 20 rows/s"
        );
    }

    #[test]
    fn long_copies_count_minutes_and_hours() {
        assert_eq!(duration(187.0), "3m07s");
        assert_eq!(duration(7_500.0), "2h05m");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
    }
}
