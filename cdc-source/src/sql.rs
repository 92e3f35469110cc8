//! Ordinary SQL connections to the source (catalog queries, the initial
//! copy), with TLS as the connection string asks.

use std::future::Future;

use std::pin::Pin;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::{TlsConnector, TlsStream};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, NoTls};

use crate::conninfo::{ConnInfo, SslMode};
use crate::error::{CaptureError, Result};

/// Refuses TLS modes the capture cannot honour, instead of silently
/// connecting without the certificate check the user asked for.
pub fn check_tls_mode(info: &ConnInfo) -> Result<()> {
    match info.ssl_mode() {
        mode @ (SslMode::VerifyCa | SslMode::VerifyFull) => Err(CaptureError::UnsupportedSslMode { mode }),
        _ => Ok(()),
    }
}

/// Connects and drives the connection on the current runtime.
pub async fn connect(info: &ConnInfo) -> Result<Client> {
    check_tls_mode(info)?;
    let config = info.config();
    let client = if config.get_ssl_mode() == PgSslMode::Disable {
        let (client, conn) = config.connect(NoTls).await?;
        drive(conn);
        client
    } else {
        let (client, conn) = config.connect(OnDemandTls).await?;
        drive(conn);
        client
    };
    // The initial copy prints values in the same settings as the stream.
    client.batch_execute(&crate::output::set_statements()).await?;
    Ok(client)
}

/// Runs a connection's I/O until the client is dropped or it fails; the
/// failure reaches the caller through the client's next call.
fn drive(conn: impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static) {
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("sql connection ended: {e}");
        }
    });
}

/// libpq's `prefer` and `require`: encrypt, do not verify the certificate.
/// The TLS context is built only when the server agrees to TLS: building
/// one reads the system's whole certificate bundle (tens of milliseconds of
/// every command's start), which a connection that verifies nothing never
/// uses.
struct OnDemandTls;

/// [`OnDemandTls`] for one connection.
struct OnDemandConnect {
    domain: String,
}

type TlsError = Box<dyn std::error::Error + Send + Sync>;

impl<S> MakeTlsConnect<S> for OnDemandTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = OnDemandConnect;
    type Error = TlsError;

    fn make_tls_connect(&mut self, domain: &str) -> std::result::Result<OnDemandConnect, TlsError> {
        Ok(OnDemandConnect {
            domain: domain.to_owned(),
        })
    }
}

impl<S> TlsConnect<S> for OnDemandConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = TlsError;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<TlsStream<S>, TlsError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let mut builder = SslConnector::builder(SslMethod::tls())?;
            builder.set_verify(SslVerifyMode::NONE);
            let ssl = builder.build().configure()?.verify_hostname(false);
            TlsConnector::new(ssl, &self.domain).connect(stream).await
        })
    }
}
