//! Workloads more than one step reads.

use std::path::Path;

use anyhow::Result;
use pg_fixture::PgCluster;

use crate::ctx::Ctx;
use crate::measure::timed;
use crate::pg::{current_lsn, insert_sql, orders_ddl};

/// `t`, the `orders` shape, with `rows` rows captured into `store`, then
/// every other row updated and captured, so the moment before the updates
/// is a past cut; vacuumed and analyzed so Postgres reads no bloat. Returns
/// that past cut as `lsn:X/Y`.
pub fn orders_with_history(
    ctx: &Ctx,
    cl: &PgCluster,
    conn: &str,
    store: &Path,
    dir: &Path,
    rows: u64,
) -> Result<String> {
    cl.execute(&orders_ddl("t"))?;
    cl.execute(&insert_sql("t", "1", &rows.to_string()))?;
    timed(
        ctx.asof(store).args(["tail", conn, "--until", "caught-up"]),
        &dir.join("tail_copy.log"),
    )?;
    let past = format!("lsn:{}", current_lsn(cl)?);
    cl.execute("UPDATE t SET amount = amount + 1 WHERE id % 2 = 0")?;
    timed(
        ctx.asof(store).args(["tail", conn, "--until", "caught-up"]),
        &dir.join("tail_updates.log"),
    )?;
    cl.execute("VACUUM FULL t")?;
    cl.execute("ANALYZE t")?;
    Ok(past)
}
