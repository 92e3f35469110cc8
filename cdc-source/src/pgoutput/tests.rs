//! Tests of the decoder: hand-built wire bytes, round trips through the
//! test encoder, and the never-panic guarantees on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use bytes::Bytes;
use changelog::Lsn;
use proptest::prelude::*;

use super::*;

fn encode(message: &Message) -> Bytes {
    let mut out = Vec::new();
    message.encode(&mut out);
    Bytes::from(out)
}

fn text(s: &str) -> TupleValue {
    TupleValue::Text(Bytes::copy_from_slice(s.as_bytes()))
}

/// One message of every kind, with the shapes seen in a real session.
fn samples() -> Vec<Message> {
    vec![
        Message::Begin(BeginBody {
            final_lsn: Lsn(0x0000_0001_0000_0010),
            commit_time_us: 812_345_678_901_234,
            xid: 740,
        }),
        Message::Commit(CommitBody {
            flags: 0,
            commit_lsn: Lsn(0x10),
            end_lsn: Lsn(0x40),
            commit_time_us: -1,
        }),
        Message::Origin(OriginBody {
            commit_lsn: Lsn(7),
            name: "upstream".into(),
        }),
        Message::Relation(RelationBody {
            rel_id: 16_385,
            namespace: "public".into(),
            name: "orders".into(),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                RelationColumn {
                    is_key: true,
                    name: "id".into(),
                    type_oid: 20,
                    type_modifier: -1,
                },
                RelationColumn {
                    is_key: false,
                    name: "note".into(),
                    type_oid: 25,
                    type_modifier: -1,
                },
            ],
        }),
        Message::Type(TypeBody {
            type_oid: 16_400,
            namespace: "public".into(),
            name: "mood".into(),
        }),
        Message::Insert(InsertBody {
            rel_id: 16_385,
            new: TupleData {
                values: vec![text("1"), TupleValue::Null],
            },
        }),
        Message::Update(UpdateBody {
            rel_id: 16_385,
            old: None,
            new: TupleData {
                values: vec![text("1"), TupleValue::UnchangedToast],
            },
        }),
        Message::Update(UpdateBody {
            rel_id: 16_385,
            old: Some(OldTuple::Key(TupleData {
                values: vec![text("1"), TupleValue::Null],
            })),
            new: TupleData {
                values: vec![text("2"), text("x")],
            },
        }),
        Message::Delete(DeleteBody {
            rel_id: 16_385,
            old: OldTuple::Full(TupleData {
                values: vec![text("2"), TupleValue::Binary(Bytes::from_static(b"\0\x01"))],
            }),
        }),
        Message::Truncate(TruncateBody {
            options: TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY,
            rel_ids: vec![16_385, 16_390],
        }),
        Message::LogicalMessage(LogicalMessageBody {
            transactional: true,
            lsn: Lsn(0x99),
            prefix: "asof.ddl".into(),
            content: Bytes::from_static(b"{\"alter\":1}"),
        }),
    ]
}

#[test]
fn decodes_hand_built_begin() {
    // 'B', final LSN 0/2E34AE0, commit time, xid 3556: the field order and
    // widths of the documented wire format, written out by hand.
    let wire = Bytes::from_static(&[
        b'B', 0, 0, 0, 0, 0x02, 0xE3, 0x4A, 0xE0, 0, 0x02, 0x92, 0x49, 0x2D, 0x0F, 0x8A, 0xE6, 0, 0, 0x0D, 0xE4,
    ]);
    assert_eq!(
        Message::parse(&wire).unwrap(),
        Message::Begin(BeginBody {
            final_lsn: "0/2E34AE0".parse().unwrap(),
            commit_time_us: 723_792_939_682_534,
            xid: 3556,
        })
    );
}

#[test]
fn decodes_hand_built_update_with_unchanged_toast() {
    let mut wire = vec![b'U', 0, 0, 0x40, 0x01, b'N', 0, 3];
    wire.extend_from_slice(&[b't', 0, 0, 0, 2, b'4', b'2']);
    wire.push(b'u');
    wire.push(b'n');
    let wire = Bytes::from(wire);
    let Message::Update(update) = Message::parse(&wire).unwrap() else {
        panic!("not an update");
    };
    assert_eq!(update.rel_id, 0x4001);
    assert_eq!(update.old, None);
    assert_eq!(
        update.new.values,
        vec![text("42"), TupleValue::UnchangedToast, TupleValue::Null]
    );
}

#[test]
fn values_are_slices_of_the_input() {
    let wire = encode(&samples()[5]);
    let Message::Insert(insert) = Message::parse(&wire).unwrap() else {
        panic!("not an insert");
    };
    let TupleValue::Text(value) = &insert.new.values[0] else {
        panic!("not text");
    };
    let input = wire.as_ptr_range();
    assert!(input.contains(&value.as_ptr()), "value was copied");
}

#[test]
fn stream_messages_read_as_the_server_sends_them() {
    let parse = |b: &'static [u8]| Message::parse(&Bytes::from_static(b)).unwrap();
    let in_stream = |b: &'static [u8]| Message::parse_in_stream(&Bytes::from_static(b));
    assert_eq!(
        parse(b"S\0\0\x02\xe4\x01"),
        Message::StreamStart(StreamStartBody {
            xid: 740,
            first_segment: true
        })
    );
    assert_eq!(
        parse(b"c\0\0\x02\xe4\0\0\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\x40\0\0\0\0\0\0\0\x07"),
        Message::StreamCommit(StreamCommitBody {
            xid: 740,
            flags: 0,
            commit_lsn: Lsn(0x10),
            end_lsn: Lsn(0x40),
            commit_time_us: 7,
        })
    );
    assert_eq!(
        parse(b"A\0\0\x02\xe4\0\0\x02\xe5"),
        Message::StreamAbort(StreamAbortBody { xid: 740, subxid: 741 })
    );
    // Inside a block, a change names its subtransaction before the body.
    assert_eq!(
        in_stream(b"I\0\0\x02\xe5\0\0\x40\x01N\0\x01t\0\0\0\x017").unwrap(),
        InStream {
            xid: Some(741),
            message: Message::Insert(InsertBody {
                rel_id: 16_385,
                new: TupleData {
                    values: vec![text("7")]
                },
            }),
        }
    );
    assert_eq!(
        in_stream(b"E").unwrap(),
        InStream {
            xid: None,
            message: Message::StreamStop
        }
    );
    // A transaction's own Begin or Commit cannot be inside a block.
    assert_eq!(
        in_stream(b"B\0\0\0\0\0\0\0\x10\0\0\0\0\0\0\0\x07\0\0\x02\xe4"),
        Err(DecodeError::NotInStream { tag: b'B' })
    );
    // Outside a block the same insert bytes are a different message: the
    // caller must know which side of a block it is on.
    assert!(Message::parse(&Bytes::from_static(b"I\0\0\x02\xe5\0\0\x40\x01N\0\x01t\0\0\0\x017")).is_err());
}

#[test]
fn samples_round_trip() {
    for message in samples() {
        assert_eq!(Message::parse(&encode(&message)).unwrap(), message);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for message in samples() {
        let wire = encode(&message);
        for end in 0..wire.len() {
            let err = Message::parse(&wire.slice(..end)).expect_err("truncated payload accepted");
            assert!(err.offset() <= end, "{err} points past the input");
        }
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    for message in samples() {
        let mut wire = encode(&message).to_vec();
        let len = wire.len();
        wire.push(0);
        let err = Message::parse(&Bytes::from(wire)).unwrap_err();
        assert!(
            matches!(err, DecodeError::TrailingBytes { offset, remaining: 1, .. } if offset == len),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_unknown_tags_and_values() {
    let parse = |b: &'static [u8]| Message::parse(&Bytes::from_static(b)).unwrap_err();
    assert_eq!(
        parse(b""),
        DecodeError::UnexpectedEnd {
            offset: 0,
            expected: "message tag"
        }
    );
    // 'b' (begin prepare) belongs to two-phase decoding, never requested.
    assert_eq!(
        parse(b"b\0\0\0\x01\x01"),
        DecodeError::UnknownTag { offset: 0, tag: b'b' }
    );
    // 'E' (stream stop) only ends a stream block.
    assert_eq!(parse(b"E"), DecodeError::UnknownTag { offset: 0, tag: b'E' });
    assert_eq!(
        parse(b"S\0\0\0\x01\x02"),
        DecodeError::InvalidByte {
            offset: 5,
            field: "Stream Start first-segment flag",
            value: 2
        }
    );
    assert!(matches!(
        parse(b"R\0\0\0\x01s\0t\0x\0\0"),
        DecodeError::InvalidByte {
            offset: 9,
            value: b'x',
            ..
        }
    ));
    assert!(matches!(
        parse(b"I\0\0\0\x01N\0\x01z"),
        DecodeError::InvalidByte {
            offset: 8,
            value: b'z',
            ..
        }
    ));
    assert!(matches!(
        parse(b"I\0\0\0\x01K\0\0"),
        DecodeError::InvalidByte {
            offset: 5,
            value: b'K',
            ..
        }
    ));
    assert!(matches!(
        parse(b"D\0\0\0\x01N\0\0"),
        DecodeError::InvalidByte {
            offset: 5,
            value: b'N',
            ..
        }
    ));
    assert!(matches!(
        parse(b"M\x02\0\0\0\0\0\0\0\0p\0\0\0\0\0"),
        DecodeError::InvalidByte {
            offset: 1,
            value: 2,
            ..
        }
    ));
}

#[test]
fn rejects_lengths_beyond_the_payload() {
    let parse = |b: &'static [u8]| Message::parse(&Bytes::from_static(b)).unwrap_err();
    // A column count of 65535 with 3 bytes left must not allocate 65535 slots.
    assert_eq!(
        parse(b"I\0\0\0\x01N\xff\xffnnn"),
        DecodeError::LengthOutOfRange {
            offset: 6,
            field: "tuple column count",
            value: 65_535,
            remaining: 3
        }
    );
    assert!(matches!(
        parse(b"I\0\0\0\x01N\0\x01t\xff\xff\xff\xffabc"),
        DecodeError::LengthOutOfRange {
            offset: 9,
            value: 4_294_967_295,
            remaining: 3,
            ..
        }
    ));
    assert!(matches!(
        parse(b"T\x40\0\0\0\0\0\0\0\x01"),
        DecodeError::LengthOutOfRange { offset: 1, .. }
    ));
}

#[test]
fn rejects_bad_strings() {
    let parse = |b: &'static [u8]| Message::parse(&Bytes::from_static(b)).unwrap_err();
    assert_eq!(
        parse(b"Y\0\0\0\x01pub"),
        DecodeError::UnterminatedString {
            offset: 5,
            field: "Type namespace"
        }
    );
    assert_eq!(
        parse(b"Y\0\0\0\x01p\0\xff\xfe\0"),
        DecodeError::InvalidUtf8 {
            offset: 7,
            field: "Type name"
        }
    );
}

#[test]
fn errors_name_offset_and_field() {
    let err = Message::parse(&Bytes::from_static(b"B\0\0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pgoutput message ends at byte 1: expected Begin final LSN"
    );
}

fn arb_lsn() -> impl Strategy<Value = Lsn> {
    any::<u64>().prop_map(Lsn)
}

fn arb_string() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,10}"
}

fn arb_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn arb_tuple() -> impl Strategy<Value = TupleData> {
    let value = prop_oneof![
        Just(TupleValue::Null),
        Just(TupleValue::UnchangedToast),
        arb_bytes().prop_map(TupleValue::Text),
        arb_bytes().prop_map(TupleValue::Binary),
    ];
    proptest::collection::vec(value, 0..6).prop_map(|values| TupleData { values })
}

fn arb_old() -> impl Strategy<Value = OldTuple> {
    prop_oneof![
        arb_tuple().prop_map(OldTuple::Key),
        arb_tuple().prop_map(OldTuple::Full)
    ]
}

fn arb_identity() -> impl Strategy<Value = ReplicaIdentity> {
    prop_oneof![
        Just(ReplicaIdentity::Default),
        Just(ReplicaIdentity::Nothing),
        Just(ReplicaIdentity::Full),
        Just(ReplicaIdentity::Index),
    ]
}

fn arb_message() -> impl Strategy<Value = Message> {
    let column = (any::<bool>(), arb_string(), any::<u32>(), any::<i32>()).prop_map(
        |(is_key, name, type_oid, type_modifier)| RelationColumn {
            is_key,
            name,
            type_oid,
            type_modifier,
        },
    );
    prop_oneof![
        (arb_lsn(), any::<i64>(), any::<u32>()).prop_map(|(final_lsn, commit_time_us, xid)| {
            Message::Begin(BeginBody {
                final_lsn,
                commit_time_us,
                xid,
            })
        }),
        (any::<u8>(), arb_lsn(), arb_lsn(), any::<i64>()).prop_map(|(flags, commit_lsn, end_lsn, commit_time_us)| {
            Message::Commit(CommitBody {
                flags,
                commit_lsn,
                end_lsn,
                commit_time_us,
            })
        }),
        (arb_lsn(), arb_string()).prop_map(|(commit_lsn, name)| Message::Origin(OriginBody { commit_lsn, name })),
        (
            any::<u32>(),
            arb_string(),
            arb_string(),
            arb_identity(),
            proptest::collection::vec(column, 0..5)
        )
            .prop_map(|(rel_id, namespace, name, replica_identity, columns)| {
                Message::Relation(RelationBody {
                    rel_id,
                    namespace,
                    name,
                    replica_identity,
                    columns,
                })
            }),
        (any::<u32>(), arb_string(), arb_string()).prop_map(|(type_oid, namespace, name)| {
            Message::Type(TypeBody {
                type_oid,
                namespace,
                name,
            })
        }),
        (any::<u32>(), arb_tuple()).prop_map(|(rel_id, new)| Message::Insert(InsertBody { rel_id, new })),
        (any::<u32>(), proptest::option::of(arb_old()), arb_tuple())
            .prop_map(|(rel_id, old, new)| Message::Update(UpdateBody { rel_id, old, new })),
        (any::<u32>(), arb_old()).prop_map(|(rel_id, old)| Message::Delete(DeleteBody { rel_id, old })),
        (any::<u8>(), proptest::collection::vec(any::<u32>(), 0..5))
            .prop_map(|(options, rel_ids)| Message::Truncate(TruncateBody { options, rel_ids })),
        (any::<bool>(), arb_lsn(), arb_string(), arb_bytes()).prop_map(|(transactional, lsn, prefix, content)| {
            Message::LogicalMessage(LogicalMessageBody {
                transactional,
                lsn,
                prefix,
                content,
            })
        }),
        (any::<u32>(), any::<bool>())
            .prop_map(|(xid, first_segment)| Message::StreamStart(StreamStartBody { xid, first_segment })),
        (any::<u32>(), any::<u8>(), arb_lsn(), arb_lsn(), any::<i64>()).prop_map(
            |(xid, flags, commit_lsn, end_lsn, commit_time_us)| {
                Message::StreamCommit(StreamCommitBody {
                    xid,
                    flags,
                    commit_lsn,
                    end_lsn,
                    commit_time_us,
                })
            }
        ),
        (any::<u32>(), any::<u32>()).prop_map(|(xid, subxid)| Message::StreamAbort(StreamAbortBody { xid, subxid })),
    ]
}

/// A message as sent inside a stream block: the ones that occur there,
/// with an xid exactly when they carry one.
fn arb_in_stream() -> impl Strategy<Value = InStream> {
    let streamable = arb_message().prop_filter("occurs in a stream block", |m| {
        m.carries_xid_in_stream() || matches!(m, Message::Origin(_))
    });
    prop_oneof![
        (streamable, any::<u32>()).prop_map(|(message, xid)| InStream {
            xid: message.carries_xid_in_stream().then_some(xid),
            message,
        }),
        Just(InStream {
            xid: None,
            message: Message::StreamStop
        }),
    ]
}

fn encode_in_stream(message: &InStream) -> Bytes {
    let mut out = Vec::new();
    message.encode(&mut out);
    Bytes::from(out)
}

/// `wire` with some bytes overwritten, then cut short.
fn mutated(wire: Bytes, flips: &[(prop::sample::Index, u8)], cut: prop::sample::Index) -> Bytes {
    let mut data = wire.to_vec();
    for (at, byte) in flips {
        let i = at.index(data.len());
        data[i] = *byte;
    }
    data.truncate(cut.index(data.len() + 1));
    Bytes::from(data)
}

/// Parses and, when accepted, checks the decoder is canonical: accepted
/// bytes re-encode to themselves.
fn check_canonical(wire: &Bytes) -> Result<(), TestCaseError> {
    if let Ok(message) = Message::parse(wire) {
        prop_assert_eq!(&encode(&message), wire);
    }
    if let Ok(message) = Message::parse_in_stream(wire) {
        prop_assert_eq!(&encode_in_stream(&message), wire);
    }
    Ok(())
}

proptest! {
    #[test]
    fn encode_then_parse_is_identity(message in arb_message()) {
        prop_assert_eq!(Message::parse(&encode(&message)).unwrap(), message);
    }

    #[test]
    fn encode_then_parse_in_stream_is_identity(message in arb_in_stream()) {
        prop_assert_eq!(Message::parse_in_stream(&encode_in_stream(&message)).unwrap(), message);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        check_canonical(&Bytes::from(data))?;
    }

    /// Random bytes rarely get past the tag; starting from a valid tag
    /// reaches the body parsers.
    #[test]
    fn arbitrary_bodies_never_panic(
        tag in proptest::sample::select(b"BCORYIUDTMSEcA".to_vec()),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut data = vec![tag];
        data.extend_from_slice(&body);
        check_canonical(&Bytes::from(data))?;
    }

    /// Small corruptions of valid messages exercise every field's checks.
    #[test]
    fn mutated_in_stream_messages_never_panic(
        message in arb_in_stream(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        check_canonical(&mutated(encode_in_stream(&message), &flips, cut))?;
    }

    #[test]
    fn mutated_messages_never_panic(
        message in arb_message(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        check_canonical(&mutated(encode(&message), &flips, cut))?;
    }
}

#[cfg(feature = "fuzzing")]
#[test]
fn fuzz_entry_point_holds_on_samples_and_garbage() {
    for message in samples() {
        let wire = encode(&message);
        fuzz_parse(&wire);
        fuzz_parse(&wire[..wire.len() / 2]);
    }
    fuzz_parse(b"");
    fuzz_parse(b"\xff\x00");
}
