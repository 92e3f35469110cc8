//! Step 6: SQL at a past cut against the same query on the live table, and
//! a Parquet export against `COPY (FORMAT binary)`.

use anyhow::{bail, Result};

use crate::ctx::Ctx;
use crate::measure::{count_stdout, timed, Run};
use crate::pg::psql;
use crate::report::{mib, report_pairs};
use crate::workloads::orders_with_history;

const GROUP_BY: &str = "SELECT status, count(*) AS n, sum(amount) AS total FROM t GROUP BY status ORDER BY status";

pub fn run(ctx: &Ctx) -> Result<()> {
    let (cl, conn, dir) = ctx.step("6. SQL at a past cut, Parquet export", "sql_export")?;
    let rows = ctx.n(800_000, 10_000);
    let store = dir.join("store");
    let past = orders_with_history(ctx, &cl, &conn, &store, &dir, rows)?;

    // Sanity: both answer four groups; warms every cache once.
    let (_, lines) = count_stdout(
        ctx.asof(&store)
            .args(["sql", GROUP_BY, "--at", &past, "--format", "csv"]),
    )?;
    if lines != 5 {
        bail!("asof sql answered {lines} lines, expected a header and 4 groups");
    }
    count_stdout(&mut psql(&cl, &format!("COPY ({GROUP_BY}) TO STDOUT")))?;

    let (mut pg_q, mut asof_q) = (Vec::<Run>::new(), Vec::<Run>::new());
    for i in 1..=ctx.reps {
        pg_q.push(timed(&mut psql(&cl, GROUP_BY), &dir.join(format!("pg_query_{i}.log")))?);
        asof_q.push(timed(
            ctx.asof(&store)
                .args(["sql", GROUP_BY, "--at", &past, "--format", "csv"]),
            &dir.join(format!("asof_sql_{i}.log")),
        )?);
    }
    let q = report_pairs(
        &format!("GROUP BY over {rows} rows"),
        "psql: the query on the live table",
        &format!("asof sql \"...\" --at {past} (a past cut)"),
        &pg_q,
        &asof_q,
    );

    let copy = "COPY t TO STDOUT (FORMAT binary)";
    let (bin_bytes, _) = count_stdout(&mut psql(&cl, copy))?;
    let (mut pg_c, mut asof_e) = (Vec::<Run>::new(), Vec::<Run>::new());
    let mut parquet_bytes = 0;
    for i in 1..=ctx.reps {
        pg_c.push(timed(&mut psql(&cl, copy), &dir.join(format!("copy_{i}.log")))?);
        let out = dir.join(format!("export_{i}"));
        asof_e.push(timed(
            ctx.asof(&store)
                .args(["export", "--at", &past, "--tables", "t", "--to"])
                .arg(&out),
            &dir.join(format!("export_{i}.log")),
        )?);
        parquet_bytes = std::fs::metadata(out.join("public.t.parquet"))?.len();
        std::fs::remove_dir_all(&out)?;
    }
    let e = report_pairs(
        &format!("export of {rows} rows"),
        "psql COPY t (FORMAT binary) > /dev/null",
        &format!("asof export --at {past} --tables t (Parquet, Snappy)"),
        &pg_c,
        &asof_e,
    );
    println!(
        "\nasof sql at a past cut / query on the live table = {q:.2}; \
         asof export (Parquet {:.1} MiB) / COPY binary ({:.1} MiB) = {e:.2}",
        mib(parquet_bytes),
        mib(bin_bytes)
    );
    Ok(())
}
