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
//! - `asof.row`: after a rewrite, every row of the table in composite-text
//!   form, so the capture re-reads the table exactly as the DDL left it,
//!   inside the same transaction (no separate snapshot to reconcile);
//! - `asof.drop`: a dropped table.
//!
//! Creating event triggers needs a superuser. Without one the capture still
//! sees column changes through Relation messages (at the next change of
//! the table), but cannot see the three cases above; it says so at start.

use changelog::{Column, Datum, TableName, TableSchema};
use serde::Deserialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::GenericClient;

use crate::catalog::quote_ident;
use crate::error::{CaptureError, Result};
use crate::identity::{self, KeyMembership};
use crate::text_formats::TextFormatError;

/// Logical message prefix of a schema description.
pub const DDL_PREFIX: &str = "asof.ddl";
/// Logical message prefix of one re-read row.
pub const ROW_PREFIX: &str = "asof.row";
/// Logical message prefix of a dropped table.
pub const DROP_PREFIX: &str = "asof.drop";

/// The event triggers and functions the DDL capture installs for one
/// publication (functions in schema `public`). A trigger and its function
/// share a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DdlObjects {
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
        let suffix: String = publication
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        DdlObjects {
            rewrite: format!("asof_ddl_rewrite_{suffix}"),
            end: format!("asof_ddl_end_{suffix}"),
            drop: format!("asof_ddl_drop_{suffix}"),
        }
    }

    /// The three names, in the order triggers are dropped.
    pub fn names(&self) -> [&str; 3] {
        [&self.rewrite, &self.end, &self.drop]
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
pub async fn install(client: &impl GenericClient, publication: &str, superuser: bool) -> Result<bool> {
    if !superuser {
        return Ok(false);
    }
    let names = DdlObjects::for_publication(publication);
    let f_end = quote_ident(&names.end);
    let f_rw = quote_ident(&names.rewrite);
    let f_drop = quote_ident(&names.drop);
    let (t_end, t_rw, t_drop) = (&f_end, &f_rw, &f_drop);
    let pubname = crate::catalog::quote_literal(publication);
    let sql = format!(
        r#"
CREATE OR REPLACE FUNCTION public.{f_rw}() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
BEGIN
  PERFORM set_config('asof.rewritten',
    coalesce(current_setting('asof.rewritten', true), '') || pg_event_trigger_table_rewrite_oid()::text || ',', true);
END $fn$;

CREATE OR REPLACE FUNCTION public.{f_end}() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cmd record;
  rel oid;
  done oid[] := '{{}}';
  rewritten text := coalesce(current_setting('asof.rewritten', true), '');
  payload text;
  r record;
BEGIN
  FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE object_type IN ('table', 'table column') LOOP
    rel := cmd.objid;
    CONTINUE WHEN rel = ANY(done);
    done := done || rel;
    CONTINUE WHEN NOT EXISTS (
      SELECT 1 FROM pg_publication p JOIN pg_class c ON c.oid = rel
      JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE p.pubname = {pubname} AND c.relkind IN ('r', 'p')
        AND (p.puballtables OR EXISTS (SELECT 1 FROM pg_publication_tables t
             WHERE t.pubname = p.pubname AND t.schemaname = n.nspname AND t.tablename = c.relname)));
    SELECT json_build_object(
      'oid', c.oid::bigint, 'schema', n.nspname, 'name', c.relname, 'ident', c.relreplident::text,
      'rewrite', position(c.oid::text || ',' in ',' || rewritten) > 0,
      'columns', coalesce((SELECT json_agg(json_build_object(
          'name', a.attname, 'type_oid', a.atttypid::bigint, 'type_name', format_type(a.atttypid, a.atttypmod),
          'typmod', a.atttypmod,
          'pk', coalesce(a.attnum = ANY((SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)::int2[]), false),
          'ri', coalesce(a.attnum = ANY((SELECT i.indkey FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident)::int2[]), false),
          'missing', CASE WHEN a.atthasmissing THEN (a.attmissingval::text::text[])[1] END) ORDER BY a.attnum)
        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'::json))::text
    INTO payload
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel;
    PERFORM pg_logical_emit_message(true, '{DDL_PREFIX}', payload);
    IF position(rel::text || ',' in ',' || rewritten) > 0 THEN
      FOR r IN EXECUTE format('SELECT t::text AS v FROM %s t', rel::regclass) LOOP
        PERFORM pg_logical_emit_message(true, '{ROW_PREFIX}', rel::text || ':' || r.v);
      END LOOP;
    END IF;
  END LOOP;
  PERFORM set_config('asof.rewritten', '', true);
END $fn$;

CREATE OR REPLACE FUNCTION public.{f_drop}() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  obj record;
BEGIN
  FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() WHERE object_type = 'table' AND NOT is_temporary LOOP
    PERFORM pg_logical_emit_message(true, '{DROP_PREFIX}',
      json_build_object('oid', obj.objid::bigint, 'schema', obj.schema_name, 'name', obj.object_name)::text);
  END LOOP;
END $fn$;

DROP EVENT TRIGGER IF EXISTS {t_rw};
DROP EVENT TRIGGER IF EXISTS {t_end};
DROP EVENT TRIGGER IF EXISTS {t_drop};
CREATE EVENT TRIGGER {t_rw} ON table_rewrite EXECUTE FUNCTION public.{f_rw}();
CREATE EVENT TRIGGER {t_end} ON ddl_command_end EXECUTE FUNCTION public.{f_end}();
CREATE EVENT TRIGGER {t_drop} ON sql_drop EXECUTE FUNCTION public.{f_drop}();
"#
    );
    client.batch_execute(&sql).await.map_err(|e| match e.code() {
        Some(&SqlState::INSUFFICIENT_PRIVILEGE) => CaptureError::DdlTriggersDenied,
        _ => CaptureError::Sql(e),
    })?;
    Ok(true)
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
    schema: String,
    name: String,
    ident: String,
    rewrite: bool,
    columns: Vec<DdlColumn>,
}

/// A decoded `asof.ddl` message.
#[derive(Clone, Debug)]
pub struct DdlEvent {
    /// The table's new shape.
    pub schema: TableSchema,
    /// For each column, the value rows that existed before it was added
    /// take (Postgres's `attmissingval`); only meaningful for new columns.
    pub missing: Vec<(String, Datum)>,
    /// The table was rewritten: `asof.row` messages with all rows follow.
    pub rewrite: bool,
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
    /// An `asof.row` message does not start with `<table oid>:`.
    #[error("bad row message: no table OID")]
    RowTable,
    /// An `asof.row` message's row is not composite-row text.
    #[error("bad row message")]
    Row(#[source] TextFormatError),
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
    })
}

#[derive(Deserialize)]
struct DropMessage {
    oid: u32,
}

/// Decodes an `asof.drop` message into the dropped table's OID.
pub fn parse_drop(content: &[u8]) -> Result<u32, MessageError> {
    let m: DropMessage = serde_json::from_slice(content).map_err(MessageError::Drop)?;
    Ok(m.oid)
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
