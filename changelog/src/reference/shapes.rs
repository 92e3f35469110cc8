//! What generated histories are made of: four table shapes (an integer
//! key, a composite (text, int) key, a prefix-heavy text key, and a table
//! without a primary key under `REPLICA IDENTITY FULL`, whose identical
//! rows are counted), their keys, and key-only before-images.

use crate::{Column, Datum, ReplicaIdentity, RowImage, TableName, TableSchema};

/// A column of type `oid` (int8 = 20, int4 = 23, anything else is text).
pub fn column(name: &str, oid: u32, is_key: bool) -> Column {
    let type_name = match oid {
        20 => "int8",
        23 => "int4",
        _ => "text",
    };
    Column {
        name: name.into(),
        type_oid: oid,
        type_name: type_name.into(),
        type_modifier: -1,
        is_key,
    }
}

/// The shape kind of [`initial_schema`] that counts copies (`bag`).
pub const BAG: usize = 3;

/// Shape `kind` (0: `orders`, 1: `lines`, 2: `tags`, [`BAG`]: `bag`) as
/// first created.
pub fn initial_schema(kind: usize) -> TableSchema {
    let (name, columns) = match kind {
        0 => (
            "orders",
            vec![
                column("id", 20, true),
                column("status", 25, false),
                column("note", 25, false),
            ],
        ),
        1 => (
            "lines",
            vec![column("k1", 25, true), column("k2", 23, true), column("qty", 25, false)],
        ),
        BAG => ("bag", vec![column("n", 20, true), column("s", 25, true)]),
        _ => ("tags", vec![column("name", 25, true), column("v", 25, false)]),
    };
    TableSchema {
        name: TableName::new("public", name),
        relation_oid: 16_000 + u32::try_from(kind).unwrap_or(0),
        columns,
        replica_identity: if kind == BAG {
            ReplicaIdentity::Full
        } else {
            ReplicaIdentity::Default
        },
    }
}

/// Key column values for key choice `k` of shape `kind`; text keys are
/// prefixes of each other on purpose.
pub fn key_values(kind: usize, k: usize) -> Vec<Datum> {
    const TEXT: [&str; 8] = ["", "a", "ab", "abc", "b", "a b", "ab\\", "é"];
    let text = TEXT.get(k % TEXT.len()).copied().unwrap_or_default();
    let k = i64::try_from(k).unwrap_or(i64::MAX);
    match kind {
        0 => vec![Datum::text((k - 10).to_string())],
        1 => vec![Datum::text(text), Datum::text((k / 8 - 2).to_string())],
        // Few distinct rows, so inserts make copies of each other.
        BAG => vec![
            Datum::text((k % 3).to_string()),
            if k % 5 == 4 {
                Datum::Null
            } else {
                Datum::text(text.get(..1).unwrap_or_default())
            },
        ],
        _ => vec![Datum::text(text.repeat(1 + usize::try_from(k / 8).unwrap_or(0)))],
    }
}

/// A before-image with only the key columns of `row` set, as pgoutput sends
/// for a delete, or an update that changes the key, under the default
/// replica identity.
pub fn key_image(schema: &TableSchema, row: &[Datum]) -> RowImage {
    RowImage(
        schema
            .columns
            .iter()
            .zip(row)
            .map(|(c, d)| if c.is_key { d.clone() } else { Datum::Missing })
            .collect(),
    )
}
