//! A follower's position in its upstream log travels with the data.

use changelog::{CommitInfo, CommitTime, FollowPosition, Lsn, Store, StoreOptions, Transaction, Xid};

fn txn(n: u64) -> Transaction {
    Transaction {
        commit: CommitInfo {
            commit_lsn: Lsn(0x100 * n),
            end_lsn: Lsn(0x100 * n + 0x10),
            commit_time: CommitTime::from_unix_micros(1_700_000_000_000_000 + n as i64),
            xid: Xid(n as u32),
        },
        records: Vec::new(),
    }
}

fn position(next_offset: i64) -> FollowPosition {
    FollowPosition {
        brokers: "127.0.0.1:9092".into(),
        topic: "asof.log".into(),
        next_offset,
    }
}

#[test]
fn the_position_is_stored_with_the_transactions_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        create_if_missing: true,
        ..StoreOptions::default()
    };
    {
        let mut store = Store::open(dir.path(), &opts).unwrap();
        assert_eq!(store.follow_position().unwrap(), None);
        store.append_following(&[txn(1), txn(2)], &position(7)).unwrap();
        // Transactions already stored move the position on alone.
        store.append_following(&[txn(2)], &position(9)).unwrap();
    }
    let store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.follow_position().unwrap(), Some(position(9)));
    assert_eq!(store.watermark().map(|w| w.commit_lsn), Some(Lsn(0x200)));
}
