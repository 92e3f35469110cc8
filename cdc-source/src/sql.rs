//! Ordinary SQL connections to the source (catalog queries, the initial
//! copy), with TLS as the connection string asks.

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
        SslMode::VerifyCa | SslMode::VerifyFull => Err(CaptureError::Setup(format!(
            "sslmode={} is not supported yet; use sslmode=require (encrypted, certificate not verified)",
            info.ssl_mode()
        ))),
        _ => Ok(()),
    }
}

/// Connects and drives the connection on the current runtime.
pub async fn connect(info: &ConnInfo) -> Result<Client> {
    check_tls_mode(info)?;
    let config = info.config();
    let client = if config.get_ssl_mode() == PgSslMode::Disable {
        let (client, conn) = config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("sql connection ended: {e}");
            }
        });
        client
    } else {
        let mut builder = SslConnector::builder(SslMethod::tls())
            .map_err(|e| CaptureError::Setup(format!("cannot set up TLS: {e}")))?;
        // libpq's prefer/require: encrypt, do not verify the certificate.
        builder.set_verify(SslVerifyMode::NONE);
        let mut tls = MakeTlsConnector::new(builder.build());
        tls.set_callback(|c, _| {
            c.set_verify_hostname(false);
            Ok(())
        });
        let (client, conn) = config.connect(tls).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("sql connection ended: {e}");
            }
        });
        client
    };
    Ok(client)
}
