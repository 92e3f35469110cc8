//! Step 3, last part: what a user would otherwise build inside Postgres, a
//! system-versioned table (the `periods` extension: a history table filled
//! by triggers, read through `<table>__as_of(t)`), against `asof snapshot`
//! at the same depth of history.
//!
//! The history is loaded in bulk, as the triggers would have written it (one
//! history row per key and round, each closing when the next begins), since
//! 15M trigger-fired updates would take most of an hour here; what the
//! triggers cost a writer is measured on a sample of updates instead.

use std::path::Path;

use anyhow::{Context, Result};
use asof_benches::median;

use crate::ctx::Ctx;
use crate::measure::{timed, Run};
use crate::pg::{one, orders_ddl, psql};
use crate::report::{report_pairs, walls};
use pg_fixture::PgCluster;

/// The first round's start; round `r` holds `[T0 + r h, T0 + (r + 1) h)`.
const T0: &str = "timestamptz '2026-12-01 00:00:00+00'";
/// The columns the tables share (not the period's own).
const COLUMNS: &str = "id, customer, status, amount, note, created";

/// Builds `v<versions>`: `rows` keys, each with `versions` versions of the
/// deep table's rounds; returns its name.
fn build(cl: &PgCluster, rows: u64, versions: u32) -> Result<String> {
    let name = format!("v{versions}");
    let last = versions - 1;
    // Version `r` of key `g`, as the deep table's round `r` left it.
    let row = |r: &str| {
        format!(
            "g, (g % 10007)::int, (ARRAY['new','paid','shipped','delivered'])[1 + ((g + {r}) % 4)::int], \
             round(((g * 7) % 100000) + (g % 100) / 100.0, 2) + {r}, 'order ' || g || ' revision ' || {r}, \
             timestamptz '2026-11-01 00:00:00+00' + g * interval '1 second'"
        )
    };
    let started = std::time::Instant::now();
    for sql in [
        "CREATE EXTENSION IF NOT EXISTS periods CASCADE".to_string(),
        orders_ddl(&name),
        format!("SELECT periods.add_system_time_period('{name}')"),
        format!("SELECT periods.add_system_versioning('{name}')"),
        // The triggers would stamp every row with the loading transaction's
        // time: the bulk load writes the times of the rounds itself.
        format!("ALTER TABLE {name} DISABLE TRIGGER USER"),
        format!(
            "INSERT INTO {name}_history SELECT {}, {T0} + r * interval '1 hour', {T0} + (r + 1) * interval '1 hour' \
             FROM generate_series(0, {}) r, generate_series(1, {rows}) g",
            row("r"),
            last - 1
        ),
        format!(
            "INSERT INTO {name} SELECT {}, {T0} + {last} * interval '1 hour' FROM generate_series(1, {rows}) g",
            row(&last.to_string())
        ),
        format!("ALTER TABLE {name} ENABLE TRIGGER USER"),
        // What the extension advises when it creates the history table.
        format!("CREATE INDEX ON {name}_history (system_time_end, system_time_start)"),
        format!("VACUUM ANALYZE {name}"),
        format!("VACUUM ANALYZE {name}_history"),
    ] {
        cl.execute(&sql).with_context(|| format!("building {name}: {sql}"))?;
    }
    let history = one(cl, &format!("SELECT count(*) FROM {name}_history"))?;
    println!(
        "\n{name}: {rows} rows with system versioning (periods), {history} history rows, loaded in bulk in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(name)
}

/// The system-versioned twin of the deep table, and the moment of its
/// history that matches the deep table's cut.
pub struct Versioned {
    name: String,
    deep: String,
    rows: u64,
    versions: u32,
    /// `COPY` of the twin as of the moment.
    as_of: String,
}

impl Versioned {
    /// Builds the twin of `t<versions>`; the moment is where `half + 1`
    /// versions of each key exist, as at the deep table's first cut.
    pub fn build(cl: &PgCluster, versions: u32, half: u32) -> Result<Versioned> {
        let deep = format!("t{versions}");
        let rows = one(cl, &format!("SELECT count(*) FROM {deep}"))?.parse::<u64>()?;
        let name = build(cl, rows, versions)?;
        let when = format!("{T0} + interval '{half} hours 30 minutes'");
        let keys = one(cl, &format!("SELECT count(*) FROM {name}__as_of({when})"))?;
        println!("{name}__as_of({when}): {keys} rows");
        let as_of = format!("COPY (SELECT {COLUMNS} FROM {name}__as_of({when})) TO STDOUT (FORMAT csv)");
        Ok(Versioned {
            name,
            deep,
            rows,
            versions,
            as_of,
        })
    }

    /// Reads the deep table at `at` through asof, and the twin at its
    /// moment, beside a live COPY, alternated.
    pub fn compare(&self, ctx: &Ctx, cl: &PgCluster, store: &Path, dir: &Path, at: &str, label: &str) -> Result<()> {
        let (name, deep) = (&self.name, &self.deep);
        let live = format!("COPY {deep} TO STDOUT (FORMAT csv)");
        let mut r: [Vec<Run>; 3] = Default::default();
        for i in 1..=ctx.reps {
            r[0].push(timed(
                &mut psql(cl, &live),
                &dir.join(format!("versioned_live_{label}_{i}.log")),
            )?);
            r[1].push(timed(
                &mut psql(cl, &self.as_of),
                &dir.join(format!("versioned_as_of_{label}_{i}.log")),
            )?);
            r[2].push(timed(
                ctx.asof(store).args(["snapshot", deep, "--at", at, "--format", "csv"]),
                &dir.join(format!("versioned_asof_{label}_{i}.log")),
            )?);
        }
        let twin = format!("psql COPY (SELECT ... FROM {name}__as_of(...)) > /dev/null");
        let pg = report_pairs(
            &format!("system-versioned table at the same point of its history, against a live COPY ({label})"),
            &format!("psql {live} > /dev/null"),
            &twin,
            &r[0],
            &r[1],
        );
        let ours = report_pairs(
            &format!("asof snapshot {deep} at {at}, against the system-versioned table ({label})"),
            &twin,
            &format!("asof snapshot {deep} --at {at} --format csv > /dev/null"),
            &r[1],
            &r[2],
        );
        let live_ratio = median(&walls(&r[2])) / median(&walls(&r[0]));
        println!(
            "
at {at}, store {label}: {name}__as_of / live COPY = {pg:.2}; asof / {name}__as_of = {ours:.2}; asof / live COPY = {live_ratio:.2}"
        );
        Ok(())
    }

    /// What the triggers cost the source: 10 transactions of 10,000
    /// updates, the deep table's own statement, on a plain copy and on the
    /// twin, alternated; each repetition on keys not updated before.
    pub fn write_cost(&self, ctx: &Ctx, cl: &PgCluster, dir: &Path) -> Result<()> {
        let (name, versions) = (&self.name, self.versions);
        let plain = format!("p{versions}");
        for sql in [
            format!("CREATE TABLE {plain} AS SELECT {COLUMNS} FROM {name}"),
            format!("ALTER TABLE {plain} ADD PRIMARY KEY (id)"),
            format!("VACUUM ANALYZE {plain}"),
        ] {
            cl.execute(&sql)?;
        }
        let update = |t: &str, rep: u64| {
            format!(
                "DO $$ BEGIN FOR i IN {}..{} LOOP UPDATE {t} SET status = (ARRAY['new','paid','shipped','delivered'])[1 + ((id + {versions}) % 4)::int], \
                 amount = amount + 1, note = 'order ' || id || ' revision {versions}' \
                 WHERE id BETWEEN i::bigint * 10000 + 1 AND (i + 1)::bigint * 10000; COMMIT; END LOOP; END $$",
                rep * 10,
                rep * 10 + 9
            )
        };
        let mut w: [Vec<Run>; 2] = Default::default();
        for i in 0..(ctx.reps as u64).min(self.rows / 100_000).max(1) {
            w[0].push(timed(
                &mut psql(cl, &update(&plain, i)),
                &dir.join(format!("update_plain_{i}.log")),
            )?);
            w[1].push(timed(
                &mut psql(cl, &update(name, i)),
                &dir.join(format!("update_versioned_{i}.log")),
            )?);
        }
        let cost = report_pairs(
            "100,000 updates in 10 transactions, without and with system versioning",
            &format!("UPDATE {plain} (no triggers)"),
            &format!("UPDATE {name} (system versioning)"),
            &w[0],
            &w[1],
        );
        println!(
            "
updates with system versioning / without = {cost:.2}"
        );
        Ok(())
    }
}
