//! A hand-written spilled transaction, and writing transactions in chunks.

use changelog::reference::{column, initial_schema};
use changelog::{ChangeRecord, Datum, RowImage, SchemaChange, Store, TableId, Transaction};

use super::gen::{big, commit_info};
use super::rng::Rng;

/// Splits `n` records at `cuts` (sorted positions) into chunks; the last
/// chunk goes to `finish_spill` and may be empty.
pub fn chunks<'a>(records: &'a [ChangeRecord], cuts: &[usize]) -> Vec<&'a [ChangeRecord]> {
    let mut out = Vec::new();
    let mut from = 0;
    for &c in cuts {
        let c = c.clamp(from, records.len());
        out.push(&records[from..c]);
        from = c;
    }
    out.push(&records[from..]);
    out
}

/// Random sorted cut positions splitting `n` records into up to `max` chunks.
pub fn random_cuts(rng: &mut Rng, n: usize, max: usize) -> Vec<usize> {
    let k = rng.range(1, max.max(1));
    let mut cuts: Vec<usize> = (0..k).map(|_| rng.below(n + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// Writes `txn` as a spilled transaction with the given chunking.
pub fn spill_txn(store: &mut Store, txn: &Transaction, cuts: &[usize]) -> changelog::Result<changelog::AppendOutcome> {
    let parts = chunks(&txn.records, cuts);
    let (last, first) = parts.split_last().unwrap();
    let mut sp = store.begin_spill(txn.commit.commit_lsn)?;
    for c in first {
        store.spill(&mut sp, c)?;
    }
    store.finish_spill(sp, &txn.commit, last)
}

/// Two tables, two base transactions, one transaction to spill in chunks,
/// and one transaction after it.
pub struct SpillScenario {
    pub base: Vec<Transaction>,
    pub spilled: Transaction,
    /// Chunk boundaries of `spilled`; the records after the last boundary
    /// go to `finish_spill`.
    pub cuts: Vec<usize>,
    /// Valid whether or not `spilled` happened.
    pub after: Transaction,
}

pub const ORDERS: TableId = TableId(0);
pub const TAGS: TableId = TableId(1);

fn texts(values: &[&str]) -> Vec<Datum> {
    values.iter().map(|v| Datum::text(*v)).collect()
}

/// With `ddl`, the spilled transaction also adds a column to `orders` in its
/// second chunk (after rows of the old shape in the first) and truncates
/// `tags` in its third (after the first chunk inserted into `tags`).
///
/// Either way it updates, with an unchanged-TOAST `note`, a row stored
/// before it, a row its own first chunk inserted, and a row whose key its
/// second chunk changed; and it deletes rows.
pub fn spill_scenario(ddl: bool) -> SpillScenario {
    let orders = initial_schema(0);
    let tags = initial_schema(2);
    let order = |id: &str, status: &str, note: Datum| {
        let mut r = texts(&[id, status]);
        r.push(note);
        if ddl {
            r.push(Datum::text("us"));
        }
        RowImage(r)
    };
    let base_order = |i: usize| RowImage(vec![Datum::text(i.to_string()), Datum::text("new"), big(i)]);
    let key = |id: &str| RowImage(vec![Datum::text(id), Datum::Missing, Datum::Missing]);
    let key4 = |id: &str| {
        let mut r = key(id).0;
        if ddl {
            r.push(Datum::Missing);
        }
        RowImage(r)
    };

    let mut first = vec![
        ChangeRecord::Schema {
            table: ORDERS,
            change: SchemaChange::Define {
                schema: orders.clone(),
                backfill: vec![],
                coverage: Default::default(),
            },
        },
        ChangeRecord::Schema {
            table: TAGS,
            change: SchemaChange::Define {
                schema: tags.clone(),
                backfill: vec![],
                coverage: Default::default(),
            },
        },
    ];
    first.extend((1..=5).map(|i| ChangeRecord::Insert {
        table: ORDERS,
        new: base_order(i),
    }));
    first.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["a", "1"])),
    });
    first.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["b", "2"])),
    });
    let second = vec![ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: RowImage(vec![Datum::text("2"), Datum::text("paid"), Datum::UnchangedToast]),
    }];
    let base = vec![
        Transaction {
            commit: commit_info(0x1000, 1_000, 1),
            records: first,
        },
        Transaction {
            commit: commit_info(0x1100, 2_000, 2),
            records: second,
        },
    ];

    let mut records = Vec::new();
    let mut cuts = Vec::new();
    // Chunk 1: rows of the old shape.
    records.push(ChangeRecord::Insert {
        table: ORDERS,
        new: base_order(6),
    });
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: RowImage(vec![Datum::text("1"), Datum::text("shipped"), Datum::UnchangedToast]),
    });
    records.push(ChangeRecord::Delete {
        table: ORDERS,
        old: key("3"),
    });
    records.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["c", "3"])),
    });
    cuts.push(records.len());
    // Chunk 2: maybe a new column; TOAST against chunk 1; a key change.
    if ddl {
        let mut wider = orders.clone();
        wider.columns.push(column("region", 25, false));
        records.push(ChangeRecord::Schema {
            table: ORDERS,
            change: SchemaChange::Define {
                schema: wider,
                backfill: vec![("region".into(), Datum::text("eu"))],
                coverage: Default::default(),
            },
        });
    }
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: order("6", "packed", Datum::UnchangedToast),
    });
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: Some(key4("4")),
        new: order("40", "moved", Datum::UnchangedToast),
    });
    cuts.push(records.len());
    // Chunk 3: maybe a truncate undoing chunk 1's row in `tags`.
    if ddl {
        records.push(ChangeRecord::Truncate { tables: vec![TAGS] });
    }
    records.push(ChangeRecord::Insert {
        table: TAGS,
        new: RowImage(texts(&["d", "4"])),
    });
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: order("40", "moved again", Datum::UnchangedToast),
    });
    cuts.push(records.len());
    // Final records, written with the commit.
    records.push(ChangeRecord::Update {
        table: ORDERS,
        old: None,
        new: order("6", "done", Datum::UnchangedToast),
    });
    records.push(ChangeRecord::Delete {
        table: ORDERS,
        old: key4("5"),
    });
    let spilled = Transaction {
        commit: commit_info(0x2000, 3_000, 3),
        records,
    };

    let after = Transaction {
        commit: commit_info(0x3000, 4_000, 4),
        records: vec![
            ChangeRecord::Insert {
                table: TAGS,
                new: RowImage(texts(&["e", "5"])),
            },
            ChangeRecord::Insert {
                table: TAGS,
                new: RowImage(texts(&["f", "6"])),
            },
        ],
    };
    SpillScenario {
        base,
        spilled,
        cuts,
        after,
    }
}

impl SpillScenario {
    /// Every transaction, with or without the spilled one.
    pub fn txns(&self, with_spilled: bool) -> Vec<Transaction> {
        let mut t = self.base.clone();
        if with_spilled {
            t.push(self.spilled.clone());
        }
        t.push(self.after.clone());
        t
    }

    /// Writes every chunk of the spilled transaction but not its commit.
    pub fn spill_without_finish(&self, store: &mut Store) -> changelog::SpillTxn {
        let parts = chunks(&self.spilled.records, &self.cuts);
        let mut sp = store.begin_spill(self.spilled.commit.commit_lsn).unwrap();
        for c in &parts[..parts.len() - 1] {
            store.spill(&mut sp, c).unwrap();
        }
        sp
    }
}
