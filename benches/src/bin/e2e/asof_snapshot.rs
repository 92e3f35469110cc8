//! Step 3: an as-of snapshot of a table with 1 and with many versions per
//! key, against `COPY (FORMAT csv)`, and against a system-versioned table.

use std::process::Stdio;
use std::time::Instant;

use anyhow::Result;
use asof_benches::{dir_size, median};
use changelog::{Store, StoreOptions};

use crate::ctx::Ctx;
use crate::measure::{count_stdout, timed, Run};
use crate::pg::{current_lsn, insert_sql, orders_ddl, psql};
use crate::probe::{probe, Walk};
use crate::report::{mib, report_pairs, tail_summary, walls};
use crate::versioned::Versioned;

pub fn run(ctx: &Ctx, versions: u32, image_every: Option<u64>) -> Result<()> {
    let (cl, conn, dir) = ctx.step(
        &format!("3. As-of snapshot, 1 and {versions} versions per key"),
        "asof_snapshot",
    )?;
    let rows = ctx.n(800_000, 10_000);
    let deep = format!("t{versions}");
    for t in ["t1", deep.as_str()] {
        cl.execute(&orders_ddl(t))?;
        cl.execute(&insert_sql(t, "1", &rows.to_string()))?;
    }
    let store = dir.join("store");
    let s = timed(
        ctx.asof(&store).args(["tail", &conn, "--until", "caught-up"]),
        &dir.join("tail_copy.log"),
    )?;
    println!(
        "initial copy of 2 x {rows} rows: {:.1} s (asof CPU {:.1} s, server CPU {:.1} s)",
        s.wall, s.cpu, s.server
    );

    // Updates in transactions of 10,000 rows, every row once per round; the
    // WAL position halfway is a cut where every key of the deep table has
    // changed since (the worst case for a walk of the newest versions).
    let t = Instant::now();
    let chunks = rows.div_ceil(10_000);
    let half = (versions - 1) / 2;
    // Rounds `rounds`, chunks `from..=to` of each.
    let update = |rounds: (u32, u32), (from, to): (u64, u64)| -> Result<()> {
        if rounds.0 > rounds.1 || from > to {
            return Ok(());
        }
        cl.execute(&format!(
            "DO $$ BEGIN FOR r IN {}..{} LOOP FOR i IN {from}..{to} LOOP \
             UPDATE {deep} SET status = (ARRAY['new','paid','shipped','delivered'])[1 + ((id + r) % 4)::int], \
             amount = amount + 1, note = 'order ' || id || ' revision ' || r \
             WHERE id BETWEEN i::bigint * 10000 + 1 AND (i + 1)::bigint * 10000; COMMIT; END LOOP; END LOOP; END $$",
            rounds.0, rounds.1
        ))?;
        Ok(())
    };
    update((1, half), (0, chunks - 1))?;
    let mid = current_lsn(&cl)?;
    // Half a round more: a cut between two images of one per round.
    update((half + 1, half + 1), (0, chunks / 2 - 1))?;
    let mid_round = current_lsn(&cl)?;
    // All but the last chunk: the farthest a cut gets from an image.
    update((half + 1, half + 1), (chunks / 2, chunks.saturating_sub(2)))?;
    let late_round = current_lsn(&cl)?;
    update(
        (half + 1, half + 1),
        (chunks.saturating_sub(1).max(chunks / 2), chunks - 1),
    )?;
    update((half + 2, versions - 1), (0, chunks - 1))?;
    let upd = u64::from(versions - 1) * rows;
    println!("{upd} updates on {deep} in {:.1} s", t.elapsed().as_secs_f64());
    let log = dir.join("tail_updates.log");
    let s = timed(ctx.asof(&store).args(["tail", &conn, "--until", "caught-up"]), &log)?;
    let (txns, changes, _) = tail_summary(&log)?;
    println!(
        "asof tail captured {changes} changes in {txns} transactions in {:.1} s ({:.0} changes/s; asof CPU {:.1} s, server CPU {:.1} s)",
        s.wall,
        changes as f64 / s.wall,
        s.cpu,
        s.server
    );
    println!("store: {:.1} MiB as left by tail", mib(dir_size(&store)?));
    for sql in [
        "VACUUM FULL t1".to_string(),
        format!("VACUUM FULL {deep}"),
        "ANALYZE".to_string(),
    ] {
        cl.execute(&sql)?;
    }

    // Sanity: row counts, and warm every cache once.
    for t in ["t1", deep.as_str()] {
        let (bytes, lines) = count_stdout(
            ctx.asof(&store)
                .args(["snapshot", t, "--at", "now", "--format", "csv"])
                .stderr(Stdio::null()),
        )?;
        let (pbytes, plines) = count_stdout(&mut psql(&cl, &format!("COPY {t} TO STDOUT (FORMAT csv)")))?;
        println!(
            "{t}: asof csv {lines} lines / {:.1} MiB; COPY csv {plines} lines / {:.1} MiB",
            mib(bytes),
            mib(pbytes)
        );
        if lines != rows + 1 {
            println!("  WARNING: expected {} lines (header + rows)", rows + 1);
        }
    }

    let run = |ctx: &Ctx, label: &str, at: &str| -> Result<[Vec<Run>; 4]> {
        let mut r: [Vec<Run>; 4] = Default::default();
        for i in 1..=ctx.reps {
            for (k, t) in ["t1", deep.as_str()].into_iter().enumerate() {
                r[2 * k].push(timed(
                    &mut psql(&cl, &format!("COPY {t} TO STDOUT (FORMAT csv)")),
                    &dir.join(format!("copy_{t}_{i}.log")),
                )?);
                r[2 * k + 1].push(timed(
                    ctx.asof(&store).args(["snapshot", t, "--at", at, "--format", "csv"]),
                    &dir.join(format!("snap_{label}_{t}_{i}.log")),
                )?);
            }
        }
        Ok(r)
    };
    let summarize = |r: &[Vec<Run>; 4], label: &str, at: &str| {
        let r1 = report_pairs(
            &format!("as-of snapshot at {at}, 1 version per key, {rows} rows, store {label}"),
            "psql COPY t1 (FORMAT csv) > /dev/null",
            &format!("asof snapshot t1 --at {at} --format csv > /dev/null"),
            &r[0],
            &r[1],
        );
        let r20 = report_pairs(
            &format!("as-of snapshot at {at}, {versions} versions per key, {rows} rows, store {label}"),
            &format!("psql COPY {deep} (FORMAT csv) > /dev/null"),
            &format!("asof snapshot {deep} --at {at} --format csv > /dev/null"),
            &r[2],
            &r[3],
        );
        let depth = median(&walls(&r[3])) / median(&walls(&r[1]));
        println!(
            "\nat {at}, store {label}: asof/COPY = {r1:.2} (1 version), {r20:.2} ({versions} versions) (bar: <= 1.50); \
             {versions} vs 1 versions per key = {depth:.2} (bar: <= 1.50)"
        );
    };
    probe(
        &store,
        materializer::When::Now,
        Walk::Estimate,
        false,
        &["t1".to_string(), deep.clone()],
    )?;
    let r = run(ctx, "as-left", "now")?;
    summarize(&r, "as left by tail", "now");

    // The same after the engine has flushed and compacted its files.
    let t = Instant::now();
    {
        let s = Store::open(&store, &StoreOptions::default())?;
        s.flush()?;
        s.compact_files()?;
    }
    println!(
        "\nflush + compact_files took {:.1} s; store now {:.1} MiB",
        t.elapsed().as_secs_f64(),
        mib(dir_size(&store)?)
    );
    probe(
        &store,
        materializer::When::Now,
        Walk::Estimate,
        false,
        &["t1".to_string(), deep.clone()],
    )?;
    let r = run(ctx, "compacted", "now")?;
    summarize(&r, "after flush + compact_files", "now");

    // A past cut: halfway through the deep table's history.
    let at = format!("lsn:{mid}");
    println!("\nthe same at {at}, halfway through the history of {deep} (every key of {deep} changed after it; {deep} has {} versions per key then)", half + 1);
    let r = run(ctx, "compacted-mid", &at)?;
    summarize(&r, "after flush + compact_files", &at);

    // What a user would otherwise build inside Postgres: a system-versioned
    // twin of the deep table, read at the same depth of its history.
    let twin = Versioned::build(&cl, versions, half)?;
    twin.compare(ctx, &cl, &store, &dir, &at, "compacted")?;

    // Base images, by default two per round of updates (`asof image
    // --every` half the table's size): the same past cut, at an image, half
    // a round past it and one chunk before the round's end.
    let every = image_every.unwrap_or(rows.div_ceil(2));
    let s = timed(
        ctx.asof(&store).args(["image", "--every", &every.to_string()]),
        &dir.join("image.log"),
    )?;
    println!(
        "\nasof image --every {every}: {:.1} s (asof CPU {:.1} s); store now {:.1} MiB",
        s.wall,
        s.cpu,
        mib(dir_size(&store)?)
    );
    let r = run(ctx, "images-mid", &at)?;
    summarize(
        &r,
        &format!("with images every {every} changes (cut at a round's end)"),
        &at,
    );
    let at = format!("lsn:{mid_round}");
    let r = run(ctx, "images-mid-round", &at)?;
    summarize(
        &r,
        &format!("with images every {every} changes (cut half a round past its end)"),
        &at,
    );
    let at = format!("lsn:{late_round}");
    let r = run(ctx, "images-late-round", &at)?;
    summarize(
        &r,
        &format!("with images every {every} changes (cut one chunk before the next round's end)"),
        &at,
    );
    twin.compare(ctx, &cl, &store, &dir, &format!("lsn:{mid}"), "with-images")?;
    twin.write_cost(ctx, &cl, &dir)
}
