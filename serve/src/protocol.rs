//! The PostgreSQL frontend/backend protocol (version 3.0) as far as a
//! read-only server speaks it: reading the client's messages and framing
//! the server's.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::PgError;
use crate::wire_types::PgType;

/// Protocol version 3.0, the only one spoken.
const PROTOCOL_3: i32 = 196_608;
const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// The largest message accepted; a longer one ends the connection rather
/// than making the server buffer it.
const MAX_MESSAGE: usize = 64 << 20;

/// The first message of a connection.
#[derive(Debug)]
pub enum Startup {
    /// The client asks for TLS.
    Ssl,
    /// The client asks for GSSAPI encryption (declined).
    Gss,
    /// A request to cancel the query of the session with this process id
    /// and secret; the connection is then closed, as Postgres does.
    Cancel {
        /// The process id from `BackendKeyData`.
        pid: i32,
        /// The secret key from `BackendKeyData`.
        secret: i32,
    },
    /// The startup packet: the client's parameters (`user`, `database`, ...).
    Start(Vec<(String, String)>),
}

/// A message from the client after startup.
#[derive(Debug)]
pub enum Frontend {
    /// `Q`: a simple query.
    Query(String),
    /// `P`: prepare a statement.
    Parse {
        /// Statement name (empty: the unnamed statement).
        name: String,
        /// Its SQL.
        sql: String,
        /// Declared parameter type OIDs (0: unspecified).
        param_types: Vec<u32>,
    },
    /// `B`: bind parameters to a statement, making a portal.
    Bind {
        /// Portal name.
        portal: String,
        /// Statement name.
        statement: String,
        /// Parameter format codes (0 text, 1 binary).
        param_formats: Vec<i16>,
        /// Parameter values; `None` is NULL.
        params: Vec<Option<Bytes>>,
        /// Result column format codes.
        result_formats: Vec<i16>,
    },
    /// `D`: describe a statement (`b'S'`) or portal (`b'P'`).
    Describe {
        /// `S` or `P`.
        kind: u8,
        /// Its name.
        name: String,
    },
    /// `E`: run a portal.
    Execute {
        /// Portal name.
        portal: String,
        /// At most this many rows (0: all).
        max_rows: i32,
    },
    /// `C`: close a statement or portal.
    Close {
        /// `S` or `P`.
        kind: u8,
        /// Its name.
        name: String,
    },
    /// `S`.
    Sync,
    /// `H`.
    Flush,
    /// `X`.
    Terminate,
    /// `p`: a password or SASL response.
    Password(Bytes),
    /// Anything else (COPY data, function calls): refused.
    Other(u8),
}

/// Reads the first message of a connection.
pub async fn read_startup<R: AsyncRead + Unpin>(r: &mut R) -> Result<Startup, PgError> {
    let len = r.read_i32().await.map_err(PgError::io)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (8..=10_000).contains(l))
        .ok_or_else(|| PgError::protocol("invalid length of startup packet"))?;
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await.map_err(PgError::io)?;
    let mut body = Bytes::from(body);
    let code = body.get_i32();
    match code {
        SSL_REQUEST => Ok(Startup::Ssl),
        GSSENC_REQUEST => Ok(Startup::Gss),
        CANCEL_REQUEST if body.remaining() == 8 => Ok(Startup::Cancel {
            pid: body.get_i32(),
            secret: body.get_i32(),
        }),
        CANCEL_REQUEST => Err(PgError::protocol("invalid length of cancel request")),
        PROTOCOL_3 => {
            let mut params = Vec::new();
            loop {
                let key = cstr(&mut body)?;
                if key.is_empty() {
                    break;
                }
                params.push((key, cstr(&mut body)?));
            }
            Ok(Startup::Start(params))
        }
        other => Err(PgError::new(
            "0A000",
            format!(
                "unsupported frontend protocol {}.{}: server supports 3.0",
                other >> 16,
                other & 0xffff
            ),
        )),
    }
}

/// Reads one message; `None` at the end of the stream.
pub async fn read_message<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Frontend>, PgError> {
    let tag = match r.read_u8().await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(PgError::io(e)),
    };
    let len = r.read_i32().await.map_err(PgError::io)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| (4..=MAX_MESSAGE).contains(l))
        .ok_or_else(|| PgError::protocol("invalid message length"))?;
    let mut body = vec![0; len - 4];
    r.read_exact(&mut body).await.map_err(PgError::io)?;
    let mut b = Bytes::from(body);
    let message = match tag {
        b'Q' => Frontend::Query(cstr(&mut b)?),
        b'P' => {
            let name = cstr(&mut b)?;
            let sql = cstr(&mut b)?;
            let n = get_i16(&mut b)?;
            let param_types = (0..n)
                .map(|_| get_i32(&mut b).map(|v| v as u32))
                .collect::<Result<_, _>>()?;
            Frontend::Parse { name, sql, param_types }
        }
        b'B' => {
            let portal = cstr(&mut b)?;
            let statement = cstr(&mut b)?;
            let param_formats = codes(&mut b)?;
            let n = get_i16(&mut b)?;
            let mut params = Vec::new();
            for _ in 0..n {
                let len = get_i32(&mut b)?;
                if len < 0 {
                    params.push(None);
                } else {
                    let len = len as usize;
                    if b.remaining() < len {
                        return Err(PgError::protocol("truncated Bind message"));
                    }
                    params.push(Some(b.split_to(len)));
                }
            }
            let result_formats = codes(&mut b)?;
            Frontend::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            }
        }
        b'D' => Frontend::Describe {
            kind: get_u8(&mut b)?,
            name: cstr(&mut b)?,
        },
        b'E' => Frontend::Execute {
            portal: cstr(&mut b)?,
            max_rows: get_i32(&mut b)?,
        },
        b'C' => Frontend::Close {
            kind: get_u8(&mut b)?,
            name: cstr(&mut b)?,
        },
        b'S' => Frontend::Sync,
        b'H' => Frontend::Flush,
        b'X' => Frontend::Terminate,
        b'p' => Frontend::Password(b),
        other => Frontend::Other(other),
    };
    Ok(Some(message))
}

fn codes(b: &mut Bytes) -> Result<Vec<i16>, PgError> {
    let n = get_i16(b)?;
    (0..n).map(|_| get_i16(b)).collect()
}

fn get_u8(b: &mut Bytes) -> Result<u8, PgError> {
    if b.remaining() < 1 {
        return Err(PgError::protocol("truncated message"));
    }
    Ok(b.get_u8())
}

fn get_i16(b: &mut Bytes) -> Result<i16, PgError> {
    if b.remaining() < 2 {
        return Err(PgError::protocol("truncated message"));
    }
    Ok(b.get_i16())
}

pub(crate) fn get_i32(b: &mut Bytes) -> Result<i32, PgError> {
    if b.remaining() < 4 {
        return Err(PgError::protocol("truncated message"));
    }
    Ok(b.get_i32())
}

/// A NUL-terminated UTF-8 string.
pub(crate) fn cstr(b: &mut Bytes) -> Result<String, PgError> {
    let end = b
        .iter()
        .position(|c| *c == 0)
        .ok_or_else(|| PgError::protocol("unterminated string in message"))?;
    let s = b.split_to(end);
    b.advance(1);
    String::from_utf8(s.to_vec()).map_err(|_| PgError::new("22021", "invalid UTF-8 in message"))
}

/// A result column as a RowDescription describes it.
#[derive(Clone, Debug)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its type.
    pub pg_type: PgType,
}

/// Server messages, framed into a buffer that is written out at once.
#[derive(Default)]
pub struct Out {
    buf: BytesMut,
}

impl Out {
    /// Messages framed so far, taken out.
    pub fn take(&mut self) -> BytesMut {
        self.buf.split()
    }

    /// Bytes framed so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is framed.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One message: tag, length, body written by `body`.
    fn message(&mut self, tag: u8, body: impl FnOnce(&mut BytesMut)) {
        self.buf.put_u8(tag);
        let at = self.buf.len();
        self.buf.put_i32(0);
        body(&mut self.buf);
        let len = i32::try_from(self.buf.len() - at).unwrap_or(i32::MAX);
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// `AuthenticationOk`, or another authentication request by code.
    pub fn authentication(&mut self, code: i32, data: &[u8]) {
        self.message(b'R', |b| {
            b.put_i32(code);
            b.put_slice(data);
        });
    }

    /// `ParameterStatus`.
    pub fn parameter_status(&mut self, name: &str, value: &str) {
        self.message(b'S', |b| {
            put_cstr(b, name);
            put_cstr(b, value);
        });
    }

    /// `BackendKeyData`.
    pub fn backend_key(&mut self, pid: i32, secret: i32) {
        self.message(b'K', |b| {
            b.put_i32(pid);
            b.put_i32(secret);
        });
    }

    /// `ReadyForQuery`: idle (`I`), in a transaction (`T`) or a failed one (`E`).
    pub fn ready(&mut self, status: u8) {
        self.message(b'Z', |b| b.put_u8(status));
    }

    /// `RowDescription`, each column in its format code.
    pub fn row_description(&mut self, columns: &[Column], formats: &[i16]) {
        self.message(b'T', |b| {
            b.put_i16(i16::try_from(columns.len()).unwrap_or(i16::MAX));
            for (i, c) in columns.iter().enumerate() {
                put_cstr(b, &c.name);
                b.put_i32(0);
                b.put_i16(0);
                b.put_u32(c.pg_type.oid);
                b.put_i16(c.pg_type.size);
                b.put_i32(-1);
                b.put_i16(format_of(formats, i));
            }
        });
    }

    /// `DataRow` whose fields (each length-prefixed) are already in `fields`.
    pub fn data_row(&mut self, count: usize, fields: &[u8]) {
        self.message(b'D', |b| {
            b.put_i16(i16::try_from(count).unwrap_or(i16::MAX));
            b.put_slice(fields);
        });
    }

    /// `CommandComplete`.
    pub fn command_complete(&mut self, tag: &str) {
        self.message(b'C', |b| put_cstr(b, tag));
    }

    /// `ErrorResponse`.
    pub fn error(&mut self, e: &PgError) {
        self.notice_or_error(b'E', "ERROR", e);
    }

    /// `ErrorResponse` that ends the connection.
    pub fn fatal(&mut self, e: &PgError) {
        self.notice_or_error(b'E', "FATAL", e);
    }

    fn notice_or_error(&mut self, tag: u8, severity: &str, e: &PgError) {
        self.message(tag, |b| {
            b.put_u8(b'S');
            put_cstr(b, severity);
            b.put_u8(b'V');
            put_cstr(b, severity);
            b.put_u8(b'C');
            put_cstr(b, e.code);
            b.put_u8(b'M');
            put_cstr(b, &e.message);
            b.put_u8(0);
        });
    }

    /// `ParseComplete`.
    pub fn parse_complete(&mut self) {
        self.message(b'1', |_| {});
    }

    /// `BindComplete`.
    pub fn bind_complete(&mut self) {
        self.message(b'2', |_| {});
    }

    /// `CloseComplete`.
    pub fn close_complete(&mut self) {
        self.message(b'3', |_| {});
    }

    /// `NoData`.
    pub fn no_data(&mut self) {
        self.message(b'n', |_| {});
    }

    /// `ParameterDescription`.
    pub fn parameter_description(&mut self, types: &[u32]) {
        self.message(b't', |b| {
            b.put_i16(i16::try_from(types.len()).unwrap_or(i16::MAX));
            for t in types {
                b.put_u32(*t);
            }
        });
    }

    /// `PortalSuspended`.
    pub fn portal_suspended(&mut self) {
        self.message(b's', |_| {});
    }

    /// `EmptyQueryResponse`.
    pub fn empty_query(&mut self) {
        self.message(b'I', |_| {});
    }
}

/// The format code of column `i` under Bind's result format codes: none
/// means all text, one applies to all.
pub fn format_of(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => 0,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(0),
    }
}

fn put_cstr(b: &mut BytesMut, s: &str) {
    // A NUL inside would end the string early on the client.
    b.put_slice(s.replace('\0', "").as_bytes());
    b.put_u8(0);
}
