//! The one error type of the decoder.

/// A `pgoutput` payload that is not a well-formed message.
///
/// Every variant carries the byte offset (from the start of the payload) at
/// which decoding stopped and names the field that was expected there, so a
/// log line is enough to find the problem in a hex dump of the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload ended before a field was complete.
    #[error("pgoutput message ends at byte {offset}: expected {expected}")]
    UnexpectedEnd {
        /// Where the incomplete field starts.
        offset: usize,
        /// The field that was expected.
        expected: &'static str,
    },

    /// The first byte is not the tag of a message this decoder knows.
    #[error("unknown pgoutput message tag {tag:#04x} at byte {offset}")]
    UnknownTag {
        /// Always 0: the tag is the first byte.
        offset: usize,
        /// The tag byte as received.
        tag: u8,
    },

    /// A message that only occurs outside a stream block arrived inside one.
    #[error("pgoutput message tag {tag:#04x} inside a stream block")]
    NotInStream {
        /// The tag byte as received.
        tag: u8,
    },

    /// A one-byte field holds a value the protocol does not define.
    #[error("invalid {field} {value:#04x} at byte {offset}")]
    InvalidByte {
        /// Where the byte is.
        offset: usize,
        /// The field it should have been.
        field: &'static str,
        /// The byte as received.
        value: u8,
    },

    /// A length or count field is larger than the bytes left in the payload.
    #[error("{field} {value} at byte {offset} exceeds the {remaining} bytes left in the message")]
    LengthOutOfRange {
        /// Where the length field is.
        offset: usize,
        /// Which length it is.
        field: &'static str,
        /// The length as received.
        value: u64,
        /// Bytes left after the length field.
        remaining: usize,
    },

    /// A string has no NUL terminator before the end of the payload.
    #[error("{field} at byte {offset} has no NUL terminator")]
    UnterminatedString {
        /// Where the string starts.
        offset: usize,
        /// Which string it is.
        field: &'static str,
    },

    /// A string is not valid UTF-8.
    #[error("{field} at byte {offset} is not valid UTF-8")]
    InvalidUtf8 {
        /// Where the string starts.
        offset: usize,
        /// Which string it is.
        field: &'static str,
    },

    /// The message was complete but bytes followed it.
    #[error("{remaining} unexpected bytes at byte {offset} after a complete {message} message")]
    TrailingBytes {
        /// Where the unexpected bytes start.
        offset: usize,
        /// How many there are.
        remaining: usize,
        /// The message they follow.
        message: &'static str,
    },
}

impl DecodeError {
    /// The byte offset in the payload at which decoding stopped.
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::UnexpectedEnd { offset, .. }
            | DecodeError::UnknownTag { offset, .. }
            | DecodeError::InvalidByte { offset, .. }
            | DecodeError::LengthOutOfRange { offset, .. }
            | DecodeError::UnterminatedString { offset, .. }
            | DecodeError::InvalidUtf8 { offset, .. }
            | DecodeError::TrailingBytes { offset, .. } => offset,
            DecodeError::NotInStream { .. } => 0,
        }
    }
}
