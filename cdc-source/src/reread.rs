//! DDL that changes how existing rows read without rewriting the table.
//!
//! A rewrite (`table_rewrite`) is seen, and the DDL capture then re-reads
//! the table at the DDL's position. Some commands change what existing rows
//! read as while leaving every stored tuple where it was:
//!
//! - `ALTER COLUMN ... TYPE` that Postgres does without a rewrite, where the
//!   new type prints the same bytes differently (`timestamp` to
//!   `timestamptz` with `TimeZone` UTC);
//! - `ALTER COLUMN ... DROP EXPRESSION`: a column that was not captured
//!   (generated) keeps its stored values as an ordinary one;
//! - a new key (`REPLICA IDENTITY USING INDEX`, `FULL`, `DEFAULT`, or the
//!   columns of a `FULL` table without a primary key): later changes name
//!   rows by other columns than the ones they are stored under;
//! - `ALTER TYPE`: an enum value renamed, or a composite attribute added,
//!   dropped or retyped, changes every stored value of that type, wherever
//!   it is used: directly, as an array, through a domain or a range, or
//!   nested in another composite. (Postgres refuses to change the columns
//!   of a table whose row type is a column type elsewhere.)
//!
//! Such a table is re-read like a rewritten one. To tell these commands
//! from the many that change nothing about existing rows (a rename, a new
//! column with its `attmissingval`, `SET STATISTICS`, `ADD VALUE`), the
//! `ddl_command_start` trigger of `ALTER TABLE` and `ALTER TYPE` opens a
//! cursor over a *probe* of the catalog: how the rows of the objects named
//! by the setting `asof.probe` read. A cursor's query runs in the snapshot
//! taken when it was opened, but evaluates its filter only when fetched;
//! so at `ddl_command_end`, once the command's objects are known, the
//! trigger names them in `asof.probe`, fetches the probe as it was before
//! the command and runs it again as it is now. Opening costs no catalog
//! read, and both probes read only the command's own tables and types, so
//! nothing is recorded table-wide at the start of a command.
//!
//! A changed type leads to the tables that store it through `pg_depend`
//! (arrays, domains, ranges and multiranges depend on their element type,
//! and every column, of a table or of a composite type, on its type), one
//! index lookup per step. An `ALTER TYPE` on a type no permanent table uses
//! reads nothing but those lookups.

/// The PL/pgSQL variables of the `ddl_command_end` function that the end
/// block reads and writes: the tables the command named, to which it adds
/// the tables that store a changed type; and the tables to re-read.
pub(crate) const RELS_VAR: &str = "v_rels";
/// See [`RELS_VAR`].
pub(crate) const RESHAPED_VAR: &str = "v_reshaped";

/// Commands whose start opens the probe.
const PROBED_TAGS: &str = "('ALTER TABLE', 'ALTER TYPE')";

/// The objects the probe reads, named at the end of the command.
const PROBED: &str = "string_to_array(current_setting('asof.probe', true), ',')::oid[]";

/// The type a column prints as: its own, except that `varchar` prints the
/// same text as `text` (a common change Postgres does without a rewrite).
/// A type modifier never changes a stored value's text: output functions
/// do not see it.
const PRINTED_TYPE: &str = "(CASE a.atttypid WHEN 'varchar'::regtype::oid THEN 'text'::regtype::oid \
                            ELSE a.atttypid END)::text";

/// How existing rows of the probed objects read, as one JSON array of
/// `{kind, obj, item, val}`: an item present before and after the command
/// with another value means the object's stored values read differently.
/// Items that appear or disappear (a new column, a new enum value) do not:
/// rows take a new column's `attmissingval`, and a new enum value is in no
/// row yet.
fn probe_query() -> String {
    format!(
        "SELECT coalesce(jsonb_agg(p), '[]') FROM (
      -- Each column of a table: the type it prints as, and whether it is
      -- generated (not captured).
      SELECT 't' AS kind, c.oid AS obj, a.attnum::text AS item, {PRINTED_TYPE} || a.attgenerated::text AS val
        FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.oid = ANY({PROBED}) AND c.relkind IN ('r', 'p')
      UNION ALL
      -- A table's key columns (see `identity::key_columns`), when it has a
      -- key: losing it is seen by the DDL message alone.
      SELECT 't', c.oid, 'key', k.cols
        FROM pg_class c, LATERAL (SELECT coalesce(
          CASE WHEN c.relreplident = 'i' THEN (SELECT i.indkey::text FROM pg_index i
            WHERE i.indrelid = c.oid AND i.indisreplident) END,
          (SELECT i.indkey::text FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
          CASE WHEN c.relreplident = 'f' THEN (SELECT string_agg(a.attnum::text, ' ' ORDER BY a.attnum)
            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attgenerated = '') END, '')) k(cols)
        WHERE c.oid = ANY({PROBED}) AND c.relkind IN ('r', 'p') AND k.cols <> ''
      UNION ALL
      -- A composite type's attributes, all in one item: each one, added
      -- or dropped, is a field of every stored value. ALTER TYPE names the
      -- type's relation.
      SELECT 'c', c.reltype, '', coalesce((SELECT string_agg(a.attnum || ':' || {PRINTED_TYPE}, ',' ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
        FROM pg_class c WHERE c.oid = ANY({PROBED}) AND c.relkind = 'c'
      UNION ALL
      -- An enum's labels, each by its value.
      SELECT 'e', e.enumtypid, e.oid::text, e.enumlabel::text
        FROM pg_enum e WHERE e.enumtypid = ANY({PROBED})
    ) p"
    )
}

/// The block the `ddl_command_start` function runs: opens the probe under
/// the name `cursor` (closing one a failed command left open).
pub(crate) fn start_block(cursor: &str) -> String {
    let cursor = crate::catalog::quote_literal(cursor);
    format!(
        "
  -- How existing rows read before this command: see `reread` in asof.
  DECLARE
    v_probe refcursor := {cursor};
  BEGIN
    IF TG_TAG IN {PROBED_TAGS} THEN
      IF EXISTS (SELECT 1 FROM pg_cursors WHERE name = v_probe::text) THEN
        CLOSE v_probe;
      END IF;
      OPEN v_probe FOR {probe};
    END IF;
  END;
",
        probe = probe_query()
    )
}

/// The block the `ddl_command_end` function runs once [`RELS_VAR`] holds
/// the command's tables: compares the probe before and after the command,
/// sets [`RESHAPED_VAR`] to the tables to re-read and adds to
/// [`RELS_VAR`] those it did not name.
pub(crate) fn end_block(cursor: &str) -> String {
    let cursor = crate::catalog::quote_literal(cursor);
    format!(
        "
  -- Tables whose existing rows read differently after this command
  -- without a rewrite: see `reread` in asof.
  DECLARE
    v_probe refcursor := {cursor};
    v_was jsonb;
    v_types oid[];
    v_stored oid[];
  BEGIN
    IF TG_TAG IN {PROBED_TAGS} AND EXISTS (SELECT 1 FROM pg_cursors WHERE name = v_probe::text) THEN
      PERFORM set_config('asof.probe', array_to_string({RELS_VAR} || ARRAY(SELECT objid FROM pg_event_trigger_ddl_commands()
        WHERE object_type IN ('type', 'composite type')), ','), true);
      FETCH v_probe INTO v_was;
      CLOSE v_probe;
      SELECT coalesce(array_agg(DISTINCT b.obj) FILTER (WHERE b.kind = 't'), '{{}}'),
             coalesce(array_agg(DISTINCT b.obj) FILTER (WHERE b.kind <> 't'), '{{}}')
        INTO {RESHAPED_VAR}, v_types
        FROM jsonb_to_recordset(v_was) b(kind text, obj oid, item text, val text)
        JOIN jsonb_to_recordset(({probe})) a(kind text, obj oid, item text, val text)
          ON a.kind = b.kind AND a.obj = b.obj AND a.item = b.item
        WHERE a.val <> b.val;
      IF cardinality(v_types) > 0 THEN
        -- The permanent tables with a column that stores a changed type.
        v_stored := ARRAY(
          WITH RECURSIVE reach(typ) AS (
            SELECT unnest(v_types)
            UNION
            SELECT CASE WHEN d.classid = 'pg_type'::regclass THEN d.objid ELSE c.reltype END
              FROM reach r JOIN pg_depend d ON d.refclassid = 'pg_type'::regclass AND d.refobjid = r.typ
              LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND d.objsubid > 0 AND c.oid = d.objid
              WHERE d.classid = 'pg_type'::regclass OR c.reltype <> 0)
          SELECT DISTINCT c.oid FROM reach r
            JOIN pg_depend d ON d.refclassid = 'pg_type'::regclass AND d.refobjid = r.typ
              AND d.classid = 'pg_class'::regclass AND d.objsubid > 0
            JOIN pg_class c ON c.oid = d.objid AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p');
        {RESHAPED_VAR} := {RESHAPED_VAR} || v_stored;
        {RELS_VAR} := {RELS_VAR} || v_stored;
      END IF;
    END IF;
  END;
",
        probe = probe_query()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_ends_run_the_same_probe() {
        let probe = probe_query();
        assert!(start_block("asof_probe_p").contains(&probe));
        assert!(end_block("asof_probe_p").contains(&probe));
    }

    #[test]
    fn the_cursor_is_named_by_a_literal() {
        assert!(start_block("it's").contains("v_probe refcursor := 'it''s';"));
        assert!(end_block("it's").contains("v_probe refcursor := 'it''s';"));
    }
}
