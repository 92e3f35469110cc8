//! A small table and a commit, for tests that spell out records.

use changelog::{Column, CommitInfo, CommitTime, Datum, Lsn, ReplicaIdentity, RowImage, TableName, TableSchema, Xid};

pub fn column(name: &str, type_oid: u32, type_name: &str, is_key: bool) -> Column {
    Column {
        name: name.into(),
        type_oid,
        type_name: type_name.into(),
        type_modifier: -1,
        is_key,
    }
}

pub fn orders() -> TableSchema {
    TableSchema {
        name: TableName::new("public", "orders"),
        relation_oid: 16_385,
        columns: vec![
            column("id", 23, "int4", true),
            column("note", 25, "text", false),
            column("qty", 23, "int4", false),
        ],
        replica_identity: ReplicaIdentity::Default,
    }
}

pub fn commit() -> CommitInfo {
    CommitInfo {
        commit_lsn: Lsn(0x16B_3748),
        end_lsn: Lsn(0x16B_3778),
        commit_time: CommitTime::from_unix_micros(1_795_165_200_123_456),
        xid: Xid(571),
    }
}

pub fn row(values: &[Datum]) -> RowImage {
    RowImage(values.to_vec())
}
