//! Capturing DDL, which pgoutput never decodes.
//!
//! Three kinds of schema change would otherwise be wrong or invisible in
//! the stream: a transaction that only runs DDL (no row changes, so no
//! Relation message), `ADD COLUMN ... DEFAULT <constant>` (every existing
//! row gains the value with no change event), and rewriting ALTERs such as
//! `ALTER COLUMN ... TYPE` (every stored value may change, again with no
//! change events). Event triggers installed by the capture emit
//! transactional logical messages at the DDL's own position in the WAL:
//!
//! - `asof.ddl`: the table's new shape as JSON, including for each column
//!   the value existing rows take (`attmissingval`);
//! - `asof.row`: after a rewrite, when a table without a usable key gains
//!   one, after an `ALTER TABLE` of a table keyed by all its columns
//!   (`REPLICA IDENTITY FULL` without a primary key) or one that was, or
//!   when DDL changes how stored rows read without a rewrite (module
//!   `reread`), every row of the table in composite-text form, so the
//!   capture re-reads the table exactly as the DDL left it, inside the same
//!   transaction (no separate snapshot to reconcile). A table keyed by all
//!   its columns is re-read because its rows are stored under keys made of
//!   every column: after a column is added or dropped, or the key changes,
//!   the old keys no longer name the rows Postgres sends;
//! - `asof.drop`: a dropped table;
//! - `asof.unlogged`: an unlogged table under a `FOR ALL TABLES`
//!   publication, which is not in the WAL and so is not captured;
//! - `asof.xacts`: before a trigger's first other message, the xids its
//!   session holds. In a streamed transaction pgoutput labels a logical
//!   message with the top transaction's xid, not the savepoint's that
//!   wrote it, so without this a savepoint's rollback could not take its
//!   DDL's messages back (see `capture::streamed`).
//!
//! Partitioned tables: DDL on a parent is described for each of its
//! partitions too (a publication of the leaves sees it at its position),
//! and a root whose leaves change without row changes (`ATTACH`, `DETACH`,
//! `DROP` of a partition) is described and re-read, so a publication
//! through the root follows it.
//!
//! Values are printed in the fixed output settings of [`crate::output`],
//! whatever the DDL session's own settings are.
//!
//! Creating event triggers needs a superuser. Without one the capture still
//! sees column changes through Relation messages (at the next change of
//! the table), but cannot see the three cases above; it says so at start.

use changelog::{Column, Coverage, Datum, Omission, OmittedColumn, TableName, TableSchema};
use serde::Deserialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;

use crate::catalog::{quote_ident, quote_literal};
use crate::error::{CaptureError, Result};
use crate::identity::{self, KeyMembership};
use crate::reread;
use crate::text_formats::TextFormatError;

/// Logical message prefix of a schema description.
pub const DDL_PREFIX: &str = "asof.ddl";
/// Logical message prefix of one re-read row.
pub const ROW_PREFIX: &str = "asof.row";
/// Logical message prefix of a dropped table.
pub const DROP_PREFIX: &str = "asof.drop";
/// Logical message prefix of an unlogged table, which is not captured.
pub const UNLOGGED_PREFIX: &str = "asof.unlogged";
/// Prefix of messages naming a table the publication stopped publishing.
pub const UNPUBLISHED_PREFIX: &str = "asof.unpublished";
/// Logical message prefix of the xids a session holds: see [`parse_xacts`].
pub const XACTS_PREFIX: &str = "asof.xacts";

/// The session's own xids at this point, comma-separated: its transaction,
/// its open savepoints with an xid, and those released into them (a
/// backend holds an exclusive lock on each xid it was given until its
/// transaction ends or the savepoint is rolled back).
const HELD_XIDS_SQL: &str = "(SELECT coalesce(string_agg(l.transactionid::text, ','), '') FROM pg_locks l \
    WHERE l.locktype = 'transactionid' AND l.pid = pg_backend_pid() AND l.mode = 'ExclusiveLock' AND l.granted)";

/// PL/pgSQL that emits one message of a trigger function (which declares
/// `v_marked boolean := false`), preceded, the first time in the run, by
/// an `asof.xacts` message.
///
/// Why the held xids place the messages: every xid listed is either open
/// (the transaction or a savepoint enclosing this point) or released into
/// one that is; either way it can only be rolled back together with a
/// savepoint that encloses this point, and all that the session writes
/// from here until that rollback is inside it too. The savepoint running
/// the DDL has an xid by now if the DDL changed anything, and a DDL that
/// changed nothing describes what was there before the savepoint.
fn emit_sql(prefix: &str, content: &str) -> String {
    format!(
        "IF NOT v_marked THEN\n      v_marked := true;\n      \
         PERFORM pg_logical_emit_message(true, '{XACTS_PREFIX}', {HELD_XIDS_SQL});\n    END IF;\n    \
         PERFORM pg_logical_emit_message(true, '{prefix}', {content});"
    )
}

/// The xids of an `asof.xacts` message.
pub fn parse_xacts(content: &[u8]) -> Result<Vec<u32>, MessageError> {
    let text = std::str::from_utf8(content).map_err(|_| MessageError::Xacts)?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|x| x.parse().map_err(|_| MessageError::Xacts))
        .collect()
}

/// The event triggers and functions the DDL capture installs for one
/// publication (functions in schema `public`). A trigger and its function
/// share a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DdlObjects {
    /// On `ddl_command_start`.
    pub start: String,
    /// On `table_rewrite`.
    pub rewrite: String,
    /// On `ddl_command_end`.
    pub end: String,
    /// On `sql_drop`.
    pub drop: String,
}

impl DdlObjects {
    /// The names for `publication`.
    pub fn for_publication(publication: &str) -> DdlObjects {
        DdlObjects::with_suffix(&name_suffix(publication))
    }

    fn with_suffix(suffix: &str) -> DdlObjects {
        let name = |kind: &str| format!("asof_ddl_{kind}_{suffix}");
        DdlObjects {
            start: name("start"),
            rewrite: name("rewrite"),
            end: name("end"),
            drop: name("drop"),
        }
    }

    /// The four names, in the order triggers are dropped.
    pub fn names(&self) -> [&str; 4] {
        [&self.start, &self.rewrite, &self.end, &self.drop]
    }
}

/// Whether any of the DDL capture's event triggers for `publication` exist.
pub async fn is_installed(client: &impl GenericClient, publication: &str) -> Result<bool, tokio_postgres::Error> {
    let names: Vec<String> = DdlObjects::for_publication(publication)
        .names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname = ANY($1)",
            &[&names],
        )
        .await?;
    Ok(row.get::<_, i64>(0) > 0)
}

/// Installs (or replaces) the event triggers for `publication`. Returns
/// `false` when the role may not create event triggers.
///
/// The functions pin `search_path` (nothing of the user's schemas can stand
/// in for a catalog function) and the output settings ([`crate::output`]);
/// user tables are named only through `%I` and read through a whole-row
/// reference of an alias, so no column or table name can change the SQL's
/// meaning.
pub async fn install(client: &impl GenericClient, publication: &str, superuser: bool) -> Result<bool> {
    if !superuser {
        return Ok(false);
    }
    let stale = drop_stale_sql(client, publication).await?;
    let (install, stamp) = stamped_install_sql(publication);
    // Replacing the functions takes a lock on the catalogs and tens of
    // milliseconds on every start; what is there already may stay when it
    // is exactly this install, whole and enabled.
    if stale.is_empty() && is_current(client, publication, &stamp).await? {
        return Ok(true);
    }
    client
        .batch_execute(&format!("{stale}{install}"))
        .await
        .map_err(|e| match e.code() {
            Some(&SqlState::INSUFFICIENT_PRIVILEGE) => CaptureError::DdlTriggersDenied,
            _ => CaptureError::Sql(e),
        })?;
    Ok(true)
}

/// The install's SQL, each function's source marked with a stamp: a hash
/// of the whole SQL (names, publication, output settings and bodies).
fn stamped_install_sql(publication: &str) -> (String, String) {
    let sql = install_sql(publication);
    let stamp = format!("asof install {:016x}", fnv1a(sql.as_bytes()));
    let marked = sql.replace(" AS $fn$\n", &format!(" AS $fn$\n-- {stamp}\n"));
    (marked, stamp)
}

/// Whether the four triggers for `publication` are installed as `stamp`
/// installs them: each enabled, on its event, calling its own function in
/// `public`, whose source carries the stamp.
async fn is_current(client: &impl GenericClient, publication: &str, stamp: &str) -> Result<bool> {
    let names = DdlObjects::for_publication(publication);
    let expected: Vec<String> = [
        (&names.start, "ddl_command_start"),
        (&names.rewrite, "table_rewrite"),
        (&names.end, "ddl_command_end"),
        (&names.drop, "sql_drop"),
    ]
    .iter()
    .map(|(name, event)| format!("{name}:{event}"))
    .collect();
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_event_trigger e \
             JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid \
             JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
             WHERE e.evtname || ':' || e.evtevent = ANY($1) AND e.evtenabled = 'O' \
             AND n.nspname = 'public' AND p.proname = e.evtname AND strpos(p.prosrc, $2) > 0",
            &[&expected, &stamp],
        )
        .await?;
    Ok(usize::try_from(row.get::<_, i64>(0)).ok() == Some(expected.len()))
}

/// Drops the triggers an earlier install left for this publication under
/// other names, before the set-up runs any DDL of its own (creating or
/// marking the publication) that they would react to. A no-op without a
/// superuser, who alone could have installed them.
pub async fn drop_stale(client: &impl GenericClient, publication: &str, superuser: bool) -> Result<()> {
    if superuser {
        let sql = drop_stale_sql(client, publication).await?;
        if !sql.is_empty() {
            client.batch_execute(&sql).await?;
        }
    }
    Ok(())
}

/// The triggers an earlier install left for this publication under
/// other names (the names were once made differently): they would send
/// every message a second time. They are found by the publication literal
/// in their `ddl_command_end` function.
async fn drop_stale_sql(client: &impl GenericClient, publication: &str) -> Result<String> {
    let needle = format!("p.pubname = {}", quote_literal(publication));
    let current = DdlObjects::for_publication(publication).end;
    let rows = client
        .query(
            "SELECT e.evtname::text FROM pg_catalog.pg_event_trigger e \
             JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid \
             WHERE e.evtname LIKE 'asof\\_ddl\\_end\\_%' AND strpos(p.prosrc, $1) > 0 AND e.evtname <> $2",
            &[&needle, &current],
        )
        .await?;
    let mut sql = String::new();
    for row in rows {
        let name: String = row.get(0);
        let stale = DdlObjects::with_suffix(name.trim_start_matches("asof_ddl_end_"));
        for trigger in stale.names() {
            sql.push_str(&format!("DROP EVENT TRIGGER IF EXISTS {};\n", quote_ident(trigger)));
        }
    }
    Ok(sql)
}

/// A suffix for the trigger and function names that differs for different
/// publications: the name itself when it is a short lower-case word, else
/// a hash of it (names that differ only in case or punctuation differ).
fn name_suffix(publication: &str) -> String {
    let plain = publication.len() <= 40
        && publication
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        return publication.to_owned();
    }
    format!("h{:016x}", fnv1a(publication.as_bytes()))
}

/// FNV-1a: stable across releases, unlike the standard library's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The functions and triggers of the DDL capture.
fn install_sql(publication: &str) -> String {
    let names = DdlObjects::for_publication(publication);
    let (f_start, f_end, f_rw, f_drop) = (
        quote_ident(&names.start),
        quote_ident(&names.end),
        quote_ident(&names.rewrite),
        quote_ident(&names.drop),
    );
    let pubname = quote_literal(publication);
    let pinned = "SET search_path TO pg_catalog, pg_temp";
    let output = crate::output::function_clauses();
    let probe = format!("asof_probe_{}", name_suffix(publication));
    let (probe_start, probe_end) = (reread::start_block(&probe), reread::end_block(&probe));
    let reshaped = reread::RESHAPED_VAR;
    // A table is captured (see `identity::missing_key`): a primary key, a
    // replica identity index, or FULL (rows counted when not keyed).
    let keyed = "(EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid \
                   AND (i.indisprimary OR (c.relreplident = 'i' AND i.indisreplident))) \
                 OR c.relreplident = 'f')";
    // What the publication publishes: `oid:hash` of each table's column
    // list and row filter, and `0:flags` for its kinds of change. A
    // `FOR ALL TABLES` publication has neither lists nor filters.
    let (published, unpublished_operations) = (crate::catalog::PUBLISHED, crate::catalog::UNPUBLISHED_OPERATIONS);
    let scope = format!(
        "coalesce((SELECT string_agg(e, ',') FROM (
           SELECT '0:' || p.pubinsert::text || p.pubupdate::text || p.pubdelete::text || p.pubtruncate::text AS e
             FROM pg_publication p WHERE p.pubname = {pubname}
           UNION ALL SELECT c.oid::text || ':' || md5(coalesce(t.attnames::text, '') || '|' || coalesce(t.rowfilter, ''))
             FROM {published} JOIN pg_publication p ON p.pubname = t.pubname
             WHERE p.pubname = {pubname} AND NOT p.puballtables) s), '')"
    );
    // Keyed by all its columns (see `TableSchema::counts_copies`).
    let all_columns = "(c.relreplident = 'f' AND NOT EXISTS (SELECT 1 FROM pg_index i \
                       WHERE i.indrelid = c.oid AND i.indisprimary))";
    let named_oid = format!("json_build_object('oid', v_rel::bigint, 'publication', {pubname})::text");
    let emit_unpublished = emit_sql(UNPUBLISHED_PREFIX, &named_oid);
    let emit_into_root = emit_sql(DROP_PREFIX, &named_oid);
    let emit_unlogged = emit_sql(
        UNLOGGED_PREFIX,
        "(SELECT json_build_object('schema', n.nspname, 'name', c.relname)::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_rel)",
    );
    let emit_ddl = emit_sql(DDL_PREFIX, "v_payload");
    let emit_row = emit_sql(ROW_PREFIX, "v_rel::text || ':' || v_row.v");
    let emit_dropped = emit_sql(
        DROP_PREFIX,
        &format!(
            "json_build_object('oid', v_obj.objid::bigint, 'schema', v_obj.schema_name, \
             'name', v_obj.object_name, 'publication', {pubname})::text"
        ),
    );
    format!(
        r#"
CREATE OR REPLACE FUNCTION public.{f_start}() RETURNS event_trigger LANGUAGE plpgsql {pinned} AS $fn$
BEGIN
  -- Settings are cleared here, not at the end: every publication's DDL
  -- capture reads them at the end of the same command.
  PERFORM set_config('asof.rewritten', '', true);
  -- Tables without a usable key, or keyed by all their columns, before
  -- this command: one that has a key at its end is read afresh, since its
  -- rows are stored under other keys than Postgres names them by now.
  PERFORM set_config('asof.keyless', coalesce((SELECT string_agg(c.oid::text, ',') FROM pg_class c
    WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' AND (NOT {keyed} OR {all_columns})), ''), true);
  -- Each leaf partition with its root before this command ('+' marks the
  -- list as taken): a root whose leaves change is read afresh at its end.
  PERFORM set_config('asof.leaves', '+' || coalesce((SELECT string_agg(c.oid::text || ':' || pg_partition_root(c.oid)::oid::text, ',')
    FROM pg_class c WHERE c.relispartition AND c.relkind = 'r'), ''), true);
  -- What the publication publishes before this command ('+' marks it
  -- taken): a table it starts to publish, or publishes differently, is
  -- read afresh at its end; one it stops publishing is not captured.
  PERFORM set_config('asof.scope', '+' || {scope}, true);
{probe_start}
END $fn$;

CREATE OR REPLACE FUNCTION public.{f_rw}() RETURNS event_trigger LANGUAGE plpgsql {pinned} AS $fn$
BEGIN
  PERFORM set_config('asof.rewritten',
    coalesce(current_setting('asof.rewritten', true), '') || pg_event_trigger_table_rewrite_oid()::text || ',', true);
END $fn$;

CREATE OR REPLACE FUNCTION public.{f_end}() RETURNS event_trigger LANGUAGE plpgsql {pinned}{output} AS $fn$
DECLARE
  v_rel oid;
  v_rels oid[];
  v_done oid[] := '{{}}';
  v_before text[];
  v_after text[];
  v_moved oid[] := '{{}}';
  {reshaped} oid[] := '{{}}';
  v_rewritten text[] := string_to_array(coalesce(current_setting('asof.rewritten', true), ''), ',');
  v_keyless text[] := string_to_array(coalesce(current_setting('asof.keyless', true), ''), ',');
  v_altered oid[];
  v_reread boolean;
  v_payload text;
  v_row record;
  v_scope_before text[];
  v_scope_after text[];
  v_rescoped oid[] := '{{}}';
  v_cols text[];
  v_filter text;
  v_marked boolean := false;
BEGIN
  IF left(coalesce(current_setting('asof.scope', true), ''), 1) = '+' THEN
    v_scope_before := string_to_array(substr(current_setting('asof.scope', true), 2), ',');
    v_scope_after := string_to_array({scope}, ',');
    -- Tables published from now on, or with another column list or filter.
    v_rescoped := ARRAY(SELECT split_part(e, ':', 1)::oid FROM unnest(v_scope_after) e
      WHERE split_part(e, ':', 1) <> '0' AND NOT e = ANY(v_scope_before));
    -- Other kinds of change published: every table is described again.
    IF EXISTS (SELECT 1 FROM unnest(v_scope_after) e WHERE split_part(e, ':', 1) = '0' AND NOT e = ANY(v_scope_before)) THEN
      v_rels := ARRAY(SELECT c.oid FROM {published} WHERE t.pubname = {pubname});
    END IF;
    FOR v_rel IN SELECT split_part(e, ':', 1)::oid FROM unnest(v_scope_before) e
        WHERE split_part(e, ':', 1) <> '0'
          AND NOT split_part(e, ':', 1) = ANY(ARRAY(SELECT split_part(a, ':', 1) FROM unnest(v_scope_after) a))
          AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = split_part(e, ':', 1)::oid) LOOP
      {emit_unpublished}
    END LOOP;
  END IF;
  -- Roots that gained a leaf with rows or lost one (ATTACH, DETACH, DROP):
  -- their rows changed without any row change in the WAL.
  IF left(coalesce(current_setting('asof.leaves', true), ''), 1) = '+' THEN
    v_before := string_to_array(substr(current_setting('asof.leaves', true), 2), ',');
    v_after := coalesce((SELECT array_agg(c.oid::text || ':' || pg_partition_root(c.oid)::oid::text) FROM pg_class c
      WHERE c.relispartition AND c.relkind = 'r'), '{{}}');
    -- A detached leaf is a table of its own again, with its rows; an
    -- attached one may be published only from now on.
    v_moved := ARRAY(
      SELECT split_part(e, ':', 2)::oid FROM unnest(v_before) e WHERE NOT e = ANY(v_after)
      UNION SELECT split_part(e, ':', 1)::oid FROM unnest(v_before) e WHERE NOT e = ANY(v_after)
      UNION SELECT unnest(ARRAY[split_part(e, ':', 1)::oid, split_part(e, ':', 2)::oid]) FROM unnest(v_after) e
        WHERE NOT e = ANY(v_before) AND pg_relation_size(split_part(e, ':', 1)::oid) > 0);
    -- Through the root, a table that became a partition is no table of
    -- its own any more: its rows are the root's.
    IF EXISTS (SELECT 1 FROM pg_publication p WHERE p.pubname = {pubname} AND p.pubviaroot) THEN
      FOR v_rel IN SELECT split_part(e, ':', 1)::oid FROM unnest(v_after) e WHERE NOT e = ANY(v_before) LOOP
        {emit_into_root}
      END LOOP;
    END IF;
  END IF;
  v_rels := coalesce(v_rels, '{{}}') || v_rescoped
    || ARRAY(SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type IN ('table', 'table column'));
  -- Altered tables (and their partitions): one keyed by all its columns
  -- now is read afresh, its columns or its key may have changed.
  v_altered := ARRAY(SELECT t.relid FROM pg_event_trigger_ddl_commands() d, pg_partition_tree(d.objid) t
    WHERE d.command_tag = 'ALTER TABLE' AND d.object_type IN ('table', 'table column'));
  -- A partitioned table's DDL changes its partitions too.
  v_rels := v_rels || ARRAY(SELECT t.relid FROM unnest(v_rels) r, pg_partition_tree(r) t WHERE t.relid <> r) || v_moved;
{probe_end}
  FOREACH v_rel IN ARRAY v_rels LOOP
    CONTINUE WHEN v_rel = ANY(v_done);
    v_done := v_done || v_rel;
    -- Unlogged tables are not in the WAL: say so, capture nothing.
    IF EXISTS (SELECT 1 FROM pg_publication p, pg_class c WHERE p.pubname = {pubname} AND p.puballtables
               AND c.oid = v_rel AND c.relkind IN ('r', 'p') AND c.relpersistence = 'u') THEN
      {emit_unlogged}
    END IF;
    CONTINUE WHEN NOT EXISTS (
      SELECT 1 FROM pg_publication p JOIN pg_class c ON c.oid = v_rel
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.pubname = {pubname} AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
        -- All tables means the leaves, or the roots when published via
        -- the root (a partitioned table has no rows of its own).
        AND ((p.puballtables AND CASE WHEN p.pubviaroot THEN NOT c.relispartition ELSE c.relkind = 'r' END)
          OR EXISTS (SELECT 1 FROM pg_publication_tables pt
             WHERE pt.pubname = p.pubname AND pt.schemaname = n.nspname AND pt.tablename = c.relname)));
    SELECT v_rel::text = ANY(v_rewritten) OR v_rel = ANY(v_moved) OR v_rel = ANY(v_rescoped)
        -- A rewrite is reported for the table the command named.
        OR EXISTS (SELECT 1 FROM pg_partition_tree(v_rel) t WHERE t.relid::oid::text = ANY(v_rewritten))
        OR EXISTS (SELECT 1 FROM pg_partition_ancestors(v_rel) t WHERE t.relid::oid::text = ANY(v_rewritten))
        OR (v_rel::text = ANY(v_keyless) AND {keyed})
        OR (v_rel = ANY(v_altered) AND {all_columns})
        OR v_rel = ANY({reshaped})
      INTO v_reread FROM pg_class c WHERE c.oid = v_rel;
    -- The publication's column list and row filter for the table.
    SELECT t.attnames::text[], t.rowfilter INTO v_cols, v_filter
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_publication_tables t ON t.pubname = {pubname} AND t.schemaname = n.nspname AND t.tablename = c.relname
      WHERE c.oid = v_rel;
    SELECT json_build_object(
      'oid', c.oid::bigint, 'schema', n.nspname, 'name', c.relname, 'ident', c.relreplident::text,
      'publication', {pubname},
      'rewrite', v_reread,
      'columns', coalesce((SELECT json_agg(json_build_object(
          'name', a.attname, 'type_oid', a.atttypid::bigint, 'type_name', format_type(a.atttypid, a.atttypmod),
          'typmod', a.atttypmod,
          'pk', coalesce(a.attnum = ANY((SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)::int2[]), false),
          'ri', coalesce(a.attnum = ANY((SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)::int2[]), false),
          -- A partitioned table keeps no missing values; its leaves do.
          'missing', CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1]
            WHEN c.relkind = 'p' THEN (SELECT (l.attmissingval::text::text[])[1] FROM pg_partition_tree(c.oid) t
              JOIN pg_attribute l ON l.attrelid = t.relid AND l.attname = a.attname
              WHERE t.isleaf AND l.atthasmissing LIMIT 1) END) ORDER BY a.attnum)
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
          AND (v_cols IS NULL OR a.attname::text = ANY(v_cols))), '[]'::json),
      'unpublished', coalesce((SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
          AND NOT a.attname::text = ANY(v_cols)), '[]'::json),
      'rowfilter', v_filter,
      'unpublished_operations', (SELECT to_json({unpublished_operations}) FROM pg_publication p WHERE p.pubname = {pubname}),
      'generated', coalesce((SELECT json_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated <> ''), '[]'::json),
      'partitioned', c.relkind = 'p')::text
    INTO v_payload
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_rel;
    {emit_ddl}
    IF v_reread THEN
      -- Generated columns are left out, as pgoutput leaves them out; so
      -- are the columns and rows the publication does not publish.
      FOR v_row IN EXECUTE (SELECT format('SELECT ROW(%s)::text AS v FROM %I.%I AS asof_row%s',
                              coalesce((SELECT string_agg(format('asof_row.%I', a.attname), ', ' ORDER BY a.attnum)
                                FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                  AND a.attgenerated = '' AND (v_cols IS NULL OR a.attname::text = ANY(v_cols))), ''),
                              n.nspname, c.relname, coalesce(' WHERE ' || v_filter, ''))
                            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = v_rel) LOOP
        {emit_row}
      END LOOP;
    END IF;
  END LOOP;
END $fn$;

CREATE OR REPLACE FUNCTION public.{f_drop}() RETURNS event_trigger LANGUAGE plpgsql {pinned} AS $fn$
DECLARE
  v_obj record;
  v_marked boolean := false;
BEGIN
  FOR v_obj IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE object_type = 'table' AND NOT is_temporary LOOP
    {emit_dropped}
  END LOOP;
END $fn$;

DROP EVENT TRIGGER IF EXISTS {f_start};
DROP EVENT TRIGGER IF EXISTS {f_rw};
DROP EVENT TRIGGER IF EXISTS {f_end};
DROP EVENT TRIGGER IF EXISTS {f_drop};
CREATE EVENT TRIGGER {f_start} ON ddl_command_start EXECUTE FUNCTION public.{f_start}();
CREATE EVENT TRIGGER {f_rw} ON table_rewrite EXECUTE FUNCTION public.{f_rw}();
CREATE EVENT TRIGGER {f_end} ON ddl_command_end EXECUTE FUNCTION public.{f_end}();
CREATE EVENT TRIGGER {f_drop} ON sql_drop EXECUTE FUNCTION public.{f_drop}();
"#
    )
}

#[derive(Deserialize)]
struct DdlColumn {
    name: String,
    type_oid: u32,
    type_name: String,
    typmod: i32,
    pk: bool,
    ri: bool,
    missing: Option<String>,
}

#[derive(Deserialize)]
struct DdlMessage {
    oid: u32,
    #[serde(default)]
    publication: Option<String>,
    schema: String,
    name: String,
    ident: String,
    rewrite: bool,
    columns: Vec<DdlColumn>,
    #[serde(default)]
    generated: Vec<String>,
    #[serde(default)]
    partitioned: bool,
    #[serde(default)]
    unpublished: Vec<String>,
    #[serde(default)]
    rowfilter: Option<String>,
    #[serde(default)]
    unpublished_operations: Vec<String>,
}

/// A decoded `asof.ddl` message.
#[derive(Clone, Debug)]
pub struct DdlEvent {
    /// The table's new shape.
    pub schema: TableSchema,
    /// For each column, the value rows that existed before it was added
    /// take (Postgres's `attmissingval`); only meaningful for new columns.
    pub missing: Vec<(String, Datum)>,
    /// The table was rewritten, or gained a usable key: `asof.row`
    /// messages with all its rows follow.
    pub rewrite: bool,
    /// The publication whose DDL capture sent it (every capture of the
    /// database decodes every message); `None` from older triggers.
    pub publication: Option<String>,
    /// What of the table is not captured.
    pub coverage: Coverage,
}

/// Why a logical message of the DDL capture could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// An `asof.ddl` message is not the expected JSON.
    #[error("bad DDL message")]
    Ddl(#[source] serde_json::Error),
    /// An `asof.drop` message is not the expected JSON.
    #[error("bad drop message")]
    Drop(#[source] serde_json::Error),
    /// An `asof.unlogged` message is not the expected JSON.
    #[error("bad unlogged-table message")]
    Unlogged(#[source] serde_json::Error),
    /// An `asof.row` message does not start with `<table oid>:`.
    #[error("bad row message: no table OID")]
    RowTable,
    /// An `asof.row` message's row is not composite-row text.
    #[error("bad row message")]
    Row(#[source] TextFormatError),
    /// An `asof.xacts` message is not a comma-separated list of xids.
    #[error("bad transaction-ids message")]
    Xacts,
}

/// Columns left out of the capture, for one reason.
fn omitted(names: Vec<String>, why: Omission) -> impl Iterator<Item = OmittedColumn> {
    names.into_iter().map(move |name| OmittedColumn { name, why })
}

/// Decodes an `asof.ddl` message.
pub fn parse_ddl(content: &[u8]) -> Result<DdlEvent, MessageError> {
    let m: DdlMessage = serde_json::from_slice(content).map_err(MessageError::Ddl)?;
    let ident = identity::from_relreplident(&m.ident);
    let membership: Vec<KeyMembership> = m
        .columns
        .iter()
        .map(|c| KeyMembership {
            in_primary_key: c.pk,
            in_identity_index: c.ri,
        })
        .collect();
    let missing = m
        .columns
        .iter()
        .filter_map(|c| c.missing.as_ref().map(|v| (c.name.clone(), Datum::text(v.clone()))))
        .collect();
    let columns = m
        .columns
        .into_iter()
        .zip(identity::key_columns(ident, &membership))
        .map(|(c, is_key)| Column {
            name: c.name,
            type_oid: c.type_oid,
            type_name: c.type_name,
            type_modifier: c.typmod,
            is_key,
        })
        .collect();
    Ok(DdlEvent {
        schema: TableSchema {
            name: TableName::new(m.schema, m.name),
            relation_oid: m.oid,
            columns,
            replica_identity: ident,
        },
        missing,
        rewrite: m.rewrite,
        publication: m.publication,
        coverage: Coverage {
            omitted: omitted(m.generated, Omission::Generated)
                .chain(omitted(m.unpublished, Omission::NotPublished))
                .collect(),
            row_filter: m.rowfilter,
            partition_truncates_unseen: m.partitioned,
            unpublished_operations: m.unpublished_operations,
        },
    })
}

/// A decoded `asof.drop` message: a table dropped, or, through the root,
/// a table that became a partition.
#[derive(Clone, Debug, Deserialize)]
pub struct DropEvent {
    /// The table's OID.
    pub oid: u32,
    /// The publication whose DDL capture sent it; `None` from older
    /// triggers.
    #[serde(default)]
    pub publication: Option<String>,
}

/// Decodes an `asof.drop` or `asof.unpublished` message.
pub fn parse_drop(content: &[u8]) -> Result<DropEvent, MessageError> {
    serde_json::from_slice(content).map_err(MessageError::Drop)
}

#[derive(Deserialize)]
struct TableMessage {
    schema: String,
    name: String,
}

/// Decodes an `asof.unlogged` message into the table's name.
pub fn parse_unlogged(content: &[u8]) -> Result<TableName, MessageError> {
    let m: TableMessage = serde_json::from_slice(content).map_err(MessageError::Unlogged)?;
    Ok(TableName::new(m.schema, m.name))
}

/// Decodes an `asof.row` message into (table OID, row values).
pub fn parse_row(content: &[u8]) -> Result<(u32, Vec<Datum>), MessageError> {
    let colon = content.iter().position(|b| *b == b':').ok_or(MessageError::RowTable)?;
    let (oid, rest) = content.split_at(colon);
    let oid: u32 = std::str::from_utf8(oid)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(MessageError::RowTable)?;
    let row = crate::text_formats::parse_record(rest.get(1..).unwrap_or_default()).map_err(MessageError::Row)?;
    Ok((oid, row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_names_differ_for_publications_that_differ() {
        assert_eq!(name_suffix("asof_pub"), "asof_pub");
        let odd = ["My,Pub", "my,pub", "my pub", "my_pub\"x", "MY_PUB"];
        let suffixes: std::collections::HashSet<String> = odd.iter().map(|p| name_suffix(p)).collect();
        assert_eq!(suffixes.len(), odd.len());
        assert!(suffixes.iter().all(|s| s.len() == 17 && s.starts_with('h')));
        assert_eq!(name_suffix("My,Pub"), name_suffix("My,Pub"));
    }

    #[test]
    fn every_function_carries_the_stamp_of_its_install() {
        let (sql, stamp) = stamped_install_sql("asof");
        assert_eq!(sql.matches(&format!("AS $fn$\n-- {stamp}\n")).count(), 4, "{sql}");
        assert_eq!(sql.matches("CREATE OR REPLACE FUNCTION").count(), 4);
        assert_ne!(stamped_install_sql("other").1, stamp);
    }

    #[test]
    fn the_publication_is_a_literal_and_names_are_identifiers() {
        let sql = install_sql("it's \"odd\", Pub");
        assert!(sql.contains("p.pubname = 'it''s \"odd\", Pub'"), "{sql}");
        assert!(sql.contains("%I.%I AS asof_row"));
        assert!(sql.contains("format('asof_row.%I', a.attname)"));
        assert!(sql.contains("SET search_path TO pg_catalog, pg_temp"));
    }

    #[test]
    fn every_message_is_placed_by_the_held_xids() {
        let sql = install_sql("p");
        let all = sql.matches("pg_logical_emit_message(").count();
        let marks = sql
            .matches(&format!("pg_logical_emit_message(true, '{XACTS_PREFIX}'"))
            .count();
        assert_eq!(marks, all / 2, "{sql}");
        assert_eq!(sql.matches("IF NOT v_marked THEN").count(), marks);
        assert_eq!(sql.matches("v_marked boolean := false;").count(), 2);
    }

    #[test]
    fn held_xids_read_back() {
        assert_eq!(parse_xacts(b"").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_xacts(b"731").unwrap(), [731]);
        assert_eq!(parse_xacts(b"731,4294967295").unwrap(), [731, u32::MAX]);
        for bad in [&b"7,"[..], b"x", b"-1", b"4294967296", b"\xff"] {
            assert!(matches!(parse_xacts(bad), Err(MessageError::Xacts)), "{bad:?}");
        }
    }

    #[test]
    fn the_reread_blocks_find_the_variables_they_use() {
        let sql = install_sql("p");
        assert!(sql.contains(&format!("\n  {} oid[];\n", reread::RELS_VAR)), "{sql}");
        assert!(
            sql.contains(&format!("\n  {} oid[] := '{{}}';\n", reread::RESHAPED_VAR)),
            "{sql}"
        );
        assert!(sql.contains(&reread::start_block("asof_probe_p")));
        assert!(sql.contains(&reread::end_block("asof_probe_p")));
    }
}
