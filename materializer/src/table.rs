//! Finding tables by name at a cut, and building keys from user input.

use changelog::keys::{self, UserKey};
use changelog::{Coverage, DatumRef, SchemaChange, SchemaVersion, Store, TableId, TableName, TableSchema};

use crate::cut::Cut;
use crate::error::{QueryError, Result};

/// A table as it was at a cut.
#[derive(Clone, Debug)]
pub struct TableAt<'s> {
    /// The store's id.
    pub id: TableId,
    /// The schema version in effect at the cut.
    pub version: &'s SchemaVersion,
    /// Its shape.
    pub schema: &'s TableSchema,
    /// What of the source table that shape leaves out.
    pub coverage: &'s Coverage,
}

impl<'s> TableAt<'s> {
    /// The table under a schema version, if the version gives it a shape.
    fn of(id: TableId, version: &'s SchemaVersion) -> Option<Self> {
        Some(TableAt {
            id,
            version,
            schema: version.schema()?,
            coverage: version.coverage()?,
        })
    }
}

/// The tables that existed at `cut`, sorted by name.
pub fn tables_at(store: &Store, cut: Cut) -> Vec<TableAt<'_>> {
    let mut out: Vec<_> = store
        .catalog()
        .tables_at(cut.lsn)
        .into_iter()
        .filter_map(|(id, version)| TableAt::of(id, version))
        .collect();
    out.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
    out
}

/// A table that existed at a cut but was not captured then.
#[derive(Clone, Debug)]
pub struct UncapturedAt<'s> {
    /// Its shape in the source.
    pub schema: &'s TableSchema,
    /// Why it was not captured.
    pub reason: &'s str,
}

/// The tables that existed at `cut` but were not captured, sorted by name.
pub fn uncaptured_at(store: &Store, cut: Cut) -> Vec<UncapturedAt<'_>> {
    let mut out: Vec<_> = store
        .catalog()
        .tables()
        .filter_map(|(_, e)| match &e.history.at(cut.lsn)?.change {
            SchemaChange::Uncaptured { schema, reason } => Some(UncapturedAt { schema, reason }),
            _ => None,
        })
        .collect();
    out.sort_by(|a, b| a.schema.name.cmp(&b.schema.name));
    out
}

/// The table named `name` at `cut`, or an error saying it was not
/// captured then, or one suggesting close names.
pub fn table_at<'s>(store: &'s Store, name: &TableName, cut: Cut) -> Result<TableAt<'s>> {
    if let Some((id, version)) = store.catalog().table_named_at(name, cut.lsn) {
        if let Some(table) = TableAt::of(id, version) {
            return Ok(table);
        }
    }
    if let Some(u) = uncaptured_at(store, cut).into_iter().find(|u| &u.schema.name == name) {
        return Err(QueryError::NotCaptured {
            name: name.clone(),
            cut,
            reason: u.reason.to_owned(),
        });
    }
    // Compare bare names when the schema matches, so a shared `public.`
    // prefix does not make every table look close.
    let score = |n: &TableName| {
        if n.schema == name.schema {
            strsim::jaro_winkler(&name.name, &n.name)
        } else {
            strsim::jaro_winkler(&name.to_string(), &n.to_string())
        }
    };
    let mut scored: Vec<(f64, String)> = store
        .catalog()
        .tables()
        .filter_map(|(_, e)| e.history.latest().and_then(|v| v.schema()).map(|s| s.name.clone()))
        .chain(tables_at(store, cut).into_iter().map(|t| t.schema.name.clone()))
        .map(|n| (score(&n), n.to_string()))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut suggestions: Vec<String> = scored.into_iter().map(|(_, n)| n).collect();
    suggestions.dedup();
    suggestions.truncate(3);
    Err(QueryError::UnknownTable {
        name: name.clone(),
        cut,
        suggestions,
    })
}

/// The last cut at which a table of this name existed (for tables dropped
/// since), if its defining commit is still stored.
pub fn last_moment_of(store: &Store, name: &TableName) -> Result<Option<Cut>> {
    let mut best: Option<changelog::Lsn> = None;
    for (_, entry) in store.catalog().tables() {
        let versions = entry.history.versions();
        for (i, v) in versions.iter().enumerate() {
            if v.schema().is_some_and(|s| &s.name == name) {
                // It existed until the next version (a drop or a rename).
                let end = versions.get(i + 1).map_or(v.valid_from, |n| n.valid_from.prev());
                best = best.max(Some(end));
            }
        }
    }
    let Some(lsn) = best else { return Ok(None) };
    Ok(store.commit_at_or_before(lsn)?.map(|c| Cut::from_commit(&c)))
}

/// Builds a row's key from key values in text form, in key-column order.
pub fn user_key(table: &TableAt<'_>, values: &[&str]) -> Result<UserKey> {
    let key_cols: Vec<_> = table.schema.columns.iter().filter(|c| c.is_key).collect();
    if key_cols.len() != values.len() {
        return Err(QueryError::KeyArity {
            table: table.schema.name.clone(),
            expected: key_cols.len(),
            columns: key_cols.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
            got: values.len(),
        });
    }
    // Integer keys are stored numerically: a value that is not an integer
    // cannot match any row, which is worth saying rather than answering
    // "no such row".
    for (c, v) in key_cols.iter().zip(values) {
        if keys::is_integer_key_type(c.type_oid) && v.trim().parse::<i64>().is_err() {
            return Err(QueryError::BadKey {
                column: c.name.clone(),
                value: (*v).to_owned(),
                type_name: c.type_name.clone(),
            });
        }
    }
    let types: Vec<u32> = key_cols.iter().map(|c| c.type_oid).collect();
    Ok(keys::encode_user_key(
        table.id,
        &types,
        values.iter().map(|v| DatumRef::Text(v.as_bytes())),
    ))
}
