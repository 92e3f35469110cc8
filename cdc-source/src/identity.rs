//! Replica identity: how a table names the old row of an update or
//! delete, and which columns are therefore its key. One home for the
//! `pg_class.relreplident` letters, whichever way they arrive (a catalog
//! query, the DDL capture's JSON, or a pgoutput Relation message).

use changelog::{ReplicaIdentity, TableSchema};

use crate::catalog::qualified;
use crate::pgoutput;

impl From<pgoutput::ReplicaIdentity> for ReplicaIdentity {
    fn from(wire: pgoutput::ReplicaIdentity) -> Self {
        match wire {
            pgoutput::ReplicaIdentity::Default => ReplicaIdentity::Default,
            pgoutput::ReplicaIdentity::Nothing => ReplicaIdentity::Nothing,
            pgoutput::ReplicaIdentity::Full => ReplicaIdentity::Full,
            pgoutput::ReplicaIdentity::Index => ReplicaIdentity::Index,
        }
    }
}

/// The identity a `relreplident` letter (`d`, `n`, `f`, `i`) names. An
/// unknown letter is `Nothing`: no column becomes a key, so the table is
/// refused rather than captured with a guessed key.
pub fn from_relreplident(letter: &str) -> ReplicaIdentity {
    let wire = match letter.as_bytes() {
        [byte] => pgoutput::ReplicaIdentity::from_byte(*byte),
        _ => None,
    };
    wire.map_or(ReplicaIdentity::Nothing, ReplicaIdentity::from)
}

/// Where a column stands in the table's indexes.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyMembership {
    /// The column is part of the primary key.
    pub in_primary_key: bool,
    /// The column is part of the replica identity index.
    pub in_identity_index: bool,
}

/// Which columns are the key: the replica identity index under `USING
/// INDEX`, else the primary key, else every column under `FULL`.
pub fn key_columns(identity: ReplicaIdentity, columns: &[KeyMembership]) -> Vec<bool> {
    let has_primary_key = columns.iter().any(|c| c.in_primary_key);
    let has_identity_index = columns.iter().any(|c| c.in_identity_index);
    columns
        .iter()
        .map(|c| match identity {
            ReplicaIdentity::Index if has_identity_index => c.in_identity_index,
            _ if has_primary_key => c.in_primary_key,
            ReplicaIdentity::Full => true,
            _ => false,
        })
        .collect()
}

/// The one rule for a table whose rows cannot be told apart (no column is
/// a key): it is not captured, at the start or later. Returns why, with
/// the fix that fits the table's actual state; `None` when it has a key.
pub fn missing_key(schema: &TableSchema) -> Option<String> {
    // Under FULL a table without columns is a count of empty rows.
    if schema.columns.iter().any(|c| c.is_key) || schema.counts_copies() {
        return None;
    }
    let table = qualified(&schema.name);
    Some(match (schema.columns.is_empty(), schema.replica_identity) {
        (true, _) => format!(
            "it has no columns, so its rows cannot be told apart; run: ALTER TABLE {table} REPLICA IDENTITY FULL"
        ),
        (false, ReplicaIdentity::Index) => format!(
            "its replica identity index is gone and it has no primary key, so its rows cannot be told apart; \
             add a primary key, or run: ALTER TABLE {table} REPLICA IDENTITY FULL"
        ),
        (false, _) => format!(
            "it has no primary key or usable replica identity, so its updates and deletes cannot be captured; \
             add a primary key, or run: ALTER TABLE {table} REPLICA IDENTITY FULL"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_map_like_the_wire_bytes() {
        assert_eq!(from_relreplident("d"), ReplicaIdentity::Default);
        assert_eq!(from_relreplident("n"), ReplicaIdentity::Nothing);
        assert_eq!(from_relreplident("f"), ReplicaIdentity::Full);
        assert_eq!(from_relreplident("i"), ReplicaIdentity::Index);
        assert_eq!(from_relreplident("x"), ReplicaIdentity::Nothing);
        assert_eq!(from_relreplident(""), ReplicaIdentity::Nothing);
    }

    #[test]
    fn the_identity_index_wins_then_the_primary_key_then_full() {
        let pk = KeyMembership {
            in_primary_key: true,
            in_identity_index: false,
        };
        let ri = KeyMembership {
            in_primary_key: false,
            in_identity_index: true,
        };
        let plain = KeyMembership::default();
        assert_eq!(key_columns(ReplicaIdentity::Index, &[pk, ri]), [false, true]);
        assert_eq!(key_columns(ReplicaIdentity::Default, &[pk, ri]), [true, false]);
        assert_eq!(key_columns(ReplicaIdentity::Full, &[plain, plain]), [true, true]);
        assert_eq!(key_columns(ReplicaIdentity::Full, &[pk, plain]), [true, false]);
        assert_eq!(key_columns(ReplicaIdentity::Default, &[plain]), [false]);
    }

    fn table(identity: ReplicaIdentity, keys: &[bool]) -> TableSchema {
        TableSchema {
            name: changelog::TableName::new("public", "t"),
            relation_oid: 1,
            columns: keys
                .iter()
                .enumerate()
                .map(|(i, k)| changelog::Column {
                    name: format!("c{i}"),
                    type_oid: 23,
                    type_name: "integer".into(),
                    type_modifier: -1,
                    is_key: *k,
                })
                .collect(),
            replica_identity: identity,
        }
    }

    #[test]
    fn advice_fits_the_tables_state() {
        assert_eq!(missing_key(&table(ReplicaIdentity::Default, &[true, false])), None);
        let plain = missing_key(&table(ReplicaIdentity::Default, &[false])).expect("no key");
        assert!(
            plain.contains("ALTER TABLE \"public\".\"t\" REPLICA IDENTITY FULL"),
            "{plain}"
        );
        // Without columns, FULL counts its (empty) rows.
        assert_eq!(missing_key(&table(ReplicaIdentity::Full, &[])), None);
        let empty = missing_key(&table(ReplicaIdentity::Nothing, &[])).expect("no columns");
        assert!(empty.contains("REPLICA IDENTITY FULL"), "{empty}");
    }
}
