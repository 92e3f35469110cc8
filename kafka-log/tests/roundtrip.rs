//! Encoding then reassembling is the identity, whatever the transactions
//! and however the producer chunks them; streams with records repeated,
//! lost, reordered or cut short are refused with the error that says so.

mod support;

use kafka_log::{Reassembler, ReassemblyError, TopicRecord};
use proptest::prelude::*;
use support::{encode_all, numbered, read_all, Gen};

fn header_ordinal(r: &TopicRecord) -> u64 {
    std::str::from_utf8(r.header(kafka_log::header::ORDINAL).unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

fn is_end(r: &TopicRecord) -> bool {
    r.header(kafka_log::header::TYPE) == Some(b"end".as_slice())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Transactions of every kind of record, from an empty directory or
    /// from one with tables, come back exactly.
    #[test]
    fn encode_then_reassemble_is_identity(seed in any::<u64>(), setup in 0usize..12, n in 1usize..12) {
        let mut g = Gen::new(seed);
        for _ in 0..setup {
            g.txn(6);
        }
        let start = g.tables();
        let txns: Vec<_> = (0..n).map(|_| g.txn(12)).collect();
        let records = encode_all(start.clone(), &txns);
        let stream = numbered(records.into_iter().flatten());
        prop_assert_eq!(read_all(start, &stream).unwrap(), txns);
    }

    /// A big transaction committed in Kafka chunks of random sizes: the
    /// consumer sees offsets skip the commit markers, and a chunk the
    /// producer committed before it failed, followed by the whole
    /// transaction again from its first record.
    #[test]
    fn chunked_and_restarted_transactions_reassemble(seed in any::<u64>(), restart_at in 1usize..40) {
        let mut g = Gen::new(seed);
        let start = g.tables();
        let txns: Vec<_> = (0..4).map(|_| g.txn(300)).collect();
        let records = encode_all(start.clone(), &txns);
        let mut stream = Vec::new();
        let mut offset = 0i64;
        for (i, tx) in records.iter().enumerate() {
            if i == 1 {
                // A chunk of the second transaction, then the producer starts over.
                for r in tx.iter().take(restart_at.min(tx.len() - 1)) {
                    stream.push((offset, r.clone()));
                    offset += 1;
                }
                offset += 1;
            }
            for r in tx {
                stream.push((offset, r.clone()));
                offset += 1;
                if g.rng.chance(5) {
                    offset += 1; // a transaction commit marker
                }
            }
        }
        let mut reader = Reassembler::new(start);
        let mut out = Vec::new();
        for (o, r) in &stream {
            out.extend(reader.push(*o, r).unwrap());
        }
        let restarted = records.get(1).is_some_and(|tx| tx.len() > 1);
        prop_assert_eq!(reader.restarts(), u64::from(restarted));
        prop_assert_eq!(out, txns);
    }

    /// One record repeated right after itself.
    #[test]
    fn a_repeated_record_is_a_duplicate(seed in any::<u64>(), pick in any::<prop::sample::Index>()) {
        let mut g = Gen::new(seed);
        let start = g.tables();
        let txns: Vec<_> = (0..3).map(|_| g.txn(10)).collect();
        let mut records: Vec<_> = encode_all(start.clone(), &txns).into_iter().flatten().collect();
        let i = pick.index(records.len());
        let copy = records[i].clone();
        records.insert(i + 1, copy.clone());
        let copy_offset = (i + 1) as i64;
        let result = read_all(start, &numbered(records));
        if is_end(&copy) {
            prop_assert!(
                matches!(&result, Err(ReassemblyError::NotAfterLast { offset, .. }) if *offset == copy_offset),
                "{:?}", result
            );
        } else if header_ordinal(&copy) == 0 {
            // Read as the transaction starting over: nothing lost.
            prop_assert_eq!(result.unwrap(), txns);
        } else {
            prop_assert!(
                matches!(result, Err(ReassemblyError::Duplicate { offset, ordinal, .. })
                    if offset == copy_offset && ordinal == header_ordinal(&copy)),
                "{:?}", result
            );
        }
    }

    /// One record lost.
    #[test]
    fn a_lost_record_is_a_gap(seed in any::<u64>(), pick in any::<prop::sample::Index>()) {
        let mut g = Gen::new(seed);
        let start = g.tables();
        let txns: Vec<_> = (0..3).map(|_| g.txn(10)).collect();
        let mut records: Vec<_> = encode_all(start.clone(), &txns).into_iter().flatten().collect();
        let i = pick.index(records.len());
        let lost = records.remove(i);
        let result = read_all(start, &numbered(records.clone()));
        let offset = i as i64;
        let empty_txn = is_end(&lost) && header_ordinal(&lost) == 0;
        match records.get(i) {
            _ if !is_end(&lost) => prop_assert!(
                matches!(&result, Err(ReassemblyError::Gap { offset: o, expected, found, .. })
                    if *o == offset && *expected == header_ordinal(&lost) && *found == expected + 1),
                "{:?}", result
            ),
            // The first transaction lost whole: a reader that knows no
            // last transaction cannot say so.
            Some(_) if empty_txn && i == 0 => prop_assert_eq!(result.unwrap(), &txns[1..]),
            // A whole transaction lost: the next end marker names it.
            Some(_) if empty_txn => {
                let next_end = records[i..].iter().position(is_end).unwrap() + i;
                prop_assert!(
                    matches!(&result, Err(ReassemblyError::Lost { offset: o, .. }) if *o == next_end as i64),
                    "{:?}", result
                );
            }
            Some(_) => prop_assert!(
                matches!(&result, Err(ReassemblyError::Interleaved { offset: o, .. }) if *o == offset),
                "{:?}", result
            ),
            // The last transaction lost whole: nothing in the stream can say so.
            None if empty_txn => prop_assert_eq!(result.unwrap(), &txns[..txns.len() - 1]),
            None => prop_assert!(matches!(&result, Err(ReassemblyError::Incomplete { .. })), "{:?}", result),
        }
    }

    /// The stream cut short: the complete transactions before the cut, and
    /// the one cut reported as incomplete.
    #[test]
    fn a_stream_cut_short_is_incomplete(seed in any::<u64>(), pick in any::<prop::sample::Index>()) {
        let mut g = Gen::new(seed);
        let start = g.tables();
        let txns: Vec<_> = (0..3).map(|_| g.txn(10)).collect();
        let records: Vec<_> = encode_all(start.clone(), &txns).into_iter().flatten().collect();
        let cut = pick.index(records.len());
        let stream = numbered(records[..cut].iter().cloned());
        let mut reader = Reassembler::new(start);
        let mut out = Vec::new();
        for (o, r) in &stream {
            out.extend(reader.push(*o, r).unwrap());
        }
        let whole = records[..cut].iter().filter(|r| is_end(r)).count();
        prop_assert_eq!(&out[..], &txns[..whole]);
        let ends_on_end = cut == 0 || is_end(&records[cut - 1]);
        match reader.finish() {
            Ok(_) => prop_assert!(ends_on_end),
            Err(ReassemblyError::Incomplete { commit_lsn, .. }) => {
                prop_assert!(!ends_on_end);
                prop_assert_eq!(commit_lsn, txns[whole].commit.commit_lsn);
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}
