//! Ordinary SQL connections to the source (catalog queries, the initial
//! copy), with TLS as the connection string asks.

use std::future::Future;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::config::SslMode as PgSslMode;
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
        let mut builder = SslConnector::builder(SslMethod::tls()).map_err(CaptureError::Tls)?;
        // libpq's prefer/require: encrypt, do not verify the certificate.
        builder.set_verify(SslVerifyMode::NONE);
        let mut tls = MakeTlsConnector::new(builder.build());
        tls.set_callback(|c, _| {
            c.set_verify_hostname(false);
            Ok(())
        });
        let (client, conn) = config.connect(tls).await?;
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
