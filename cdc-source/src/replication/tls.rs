//! TLS negotiation with libpq's `prefer` and `require` semantics.
//!
//! Those modes encrypt but do not authenticate the server: no certificate
//! or host name is verified, exactly as libpq does for them. Verifying modes
//! (`verify-ca`, `verify-full`) are not offered by `tokio_postgres::Config`
//! and are not implemented here.

use std::pin::Pin;

use bytes::BytesMut;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::ssl::{SslConnector, SslMethod, SslRef, SslVerifyMode};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tokio_postgres::config::SslMode;

use super::transport::Transport;
use super::ReplicationError;

/// Sends `SSLRequest` unless TLS is disabled and upgrades the connection if
/// the server agrees. `host` is used for SNI only.
pub(crate) async fn negotiate(mut tcp: TcpStream, mode: SslMode, host: &str) -> Result<Transport, ReplicationError> {
    let required = match mode {
        SslMode::Disable => return Ok(Transport::Tcp(tcp)),
        SslMode::Prefer => false,
        SslMode::Require => true,
        other => return Err(ReplicationError::Config(format!("sslmode {other:?} is not supported"))),
    };

    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    tcp.write_all(&request).await?;
    // Exactly one byte: anything the server sent after it must go through
    // the TLS handshake, never be read as plaintext (CVE-2021-23222).
    let answer = match tcp.read_u8().await {
        Ok(byte) => byte,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(ReplicationError::Closed),
        Err(e) => return Err(e.into()),
    };
    match answer {
        b'S' => handshake(tcp, host).await,
        b'N' if required => Err(ReplicationError::TlsRefused),
        b'N' => Ok(Transport::Tcp(tcp)),
        other => Err(ReplicationError::protocol(format!(
            "unexpected answer {other:#04x} to SSLRequest"
        ))),
    }
}

async fn handshake(tcp: TcpStream, host: &str) -> Result<Transport, ReplicationError> {
    let tls = |e: openssl::error::ErrorStack| ReplicationError::Tls(Box::new(e));
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls)?;
    builder.set_verify(SslVerifyMode::NONE);
    let ssl = builder
        .build()
        .configure()
        .map_err(tls)?
        .verify_hostname(false)
        .into_ssl(host)
        .map_err(tls)?;
    let mut stream = SslStream::new(ssl, tcp).map_err(tls)?;
    Pin::new(&mut stream)
        .connect()
        .await
        .map_err(|e| ReplicationError::Tls(Box::new(e)))?;
    Ok(Transport::Tls(Box::new(stream)))
}

/// The `tls-server-end-point` channel binding data (RFC 5929): a hash of
/// the server certificate, with MD5 and SHA-1 upgraded to SHA-256.
pub(crate) fn tls_server_end_point(ssl: &SslRef) -> Option<Vec<u8>> {
    let cert = ssl.peer_certificate()?;
    let algorithms = cert.signature_algorithm().object().nid().signature_algorithms()?;
    let digest = match algorithms.digest {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        nid => MessageDigest::from_nid(nid)?,
    };
    cert.digest(digest).ok().map(|d| d.to_vec())
}
