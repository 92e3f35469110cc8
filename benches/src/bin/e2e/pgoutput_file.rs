//! Counting the messages of a `pg_recvlogical -f FILE` run with pgoutput,
//! decoded by the capture's own decoder.

use anyhow::{anyhow, Result};
use bytes::Bytes;
use cdc_source::pgoutput::Message;

/// What a `pg_recvlogical -f FILE` run with pgoutput wrote: each message's
/// payload followed by a newline.
#[derive(Debug, Default)]
pub struct PgoutputStats {
    pub messages: u64,
    pub payload: u64,
    begin: u64,
    commit: u64,
    relation: u64,
    insert: u64,
    update: u64,
    delete: u64,
    other: u64,
}

impl PgoutputStats {
    pub fn changes(&self) -> u64 {
        self.insert + self.update + self.delete
    }

    fn count(&mut self, message: &Message) {
        let counter = match message {
            Message::Begin(_) => &mut self.begin,
            Message::Commit(_) => &mut self.commit,
            Message::Relation(_) => &mut self.relation,
            Message::Insert(_) => &mut self.insert,
            Message::Update(_) => &mut self.update,
            Message::Delete(_) => &mut self.delete,
            _ => &mut self.other,
        };
        *counter += 1;
    }
}

impl std::fmt::Display for PgoutputStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages, {} payload bytes (BEGIN {}, COMMIT {}, RELATION {}, INSERT {}, UPDATE {}, DELETE {}, other {})",
            self.messages, self.payload, self.begin, self.commit, self.relation, self.insert, self.update, self.delete, self.other
        )
    }
}

/// Walks the messages of a pgoutput (proto_version 1) file written by
/// pg_recvlogical. A payload may itself hold newlines, so a message ends
/// at the first newline before which the bytes decode as one whole
/// message: the decoder refuses a payload cut short, and no message is a
/// prefix of another, so that newline is the separator.
pub fn pgoutput_file_stats(file: Vec<u8>) -> Result<PgoutputStats> {
    let buf = Bytes::from(file);
    let mut st = PgoutputStats::default();
    let mut start = 0;
    while start < buf.len() {
        let mut end = start;
        let mut refused = None;
        let message = loop {
            let Some(newline) = buf.get(end..).and_then(|rest| rest.iter().position(|&c| c == b'\n')) else {
                return Err(match refused {
                    Some(e) => anyhow!("the message at {start} does not decode: {e}"),
                    None => anyhow!("no newline after the message at {start}"),
                });
            };
            end += newline;
            match Message::parse(&buf.slice(start..end)) {
                Ok(m) => break m,
                Err(e) => {
                    refused = Some(e);
                    end += 1;
                }
            }
        };
        st.count(&message);
        st.payload += (end - start) as u64;
        st.messages += 1;
        start = end + 1;
    }
    Ok(st)
}
