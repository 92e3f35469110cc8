//! libpq's `sslmode`, which `tokio_postgres` can only approximate.

use std::fmt;
use std::str::FromStr;

/// libpq's `sslmode`. `tokio_postgres` only knows disable/prefer/require;
/// the connector asof builds must add the verification the stricter modes
/// promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// libpq tries plaintext first, then TLS; asof treats it as `Prefer`.
    Allow,
    /// Use TLS if the server offers it, without verifying the certificate.
    #[default]
    Prefer,
    /// Require TLS; verify the certificate only if a root certificate is
    /// configured (libpq's rule).
    Require,
    /// Require TLS and a certificate signed by a trusted CA.
    VerifyCa,
    /// As `VerifyCa`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling (`verify-full`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The closest mode `tokio_postgres` knows: the stricter modes all
    /// require TLS there, and verification is up to the TLS connector.
    pub fn to_tokio(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Tokio;
        match self {
            SslMode::Disable => Tokio::Disable,
            SslMode::Allow | SslMode::Prefer => Tokio::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Tokio::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = ();

    fn from_str(s: &str) -> Result<SslMode, ()> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return Err(()),
        })
    }
}
