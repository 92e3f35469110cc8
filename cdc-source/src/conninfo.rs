//! Connection settings for the source database.
//!
//! Turns what a user gives asof (a libpq connection string, `key=value` or
//! `postgres://` URI, plus the usual `PG*` environment variables and
//! `~/.pgpass`) into a [`tokio_postgres::Config`] and the TLS settings
//! that `tokio_postgres` cannot express (`verify-ca`, `verify-full`, root
//! certificate, client certificate). Precedence follows libpq: the string,
//! then the environment, then libpq's defaults (host: the Unix socket
//! directory `/var/run/postgresql` if it exists, else `localhost`; port
//! 5432; user: the OS user; database: the user name).
//!
//! Not for: connecting or setting up TLS (the replication module does, from
//! [`ConnInfo::config`] and [`ConnInfo::ssl_mode`]); service files
//! (`service=`), GSSAPI and the other libpq options asof has no use for,
//! which are rejected rather than silently ignored.
//!
//! Secrets: [`ConnInfo`]'s `Display` (meant for logs) and `Debug` never
//! print the password, and no [`ConnInfoError`] quotes the input, since a
//! malformed string may hold a password in any position.
//!
//! The syntax is tokenised here rather than by `tokio_postgres::Config`'s
//! `FromStr` because that parser rejects libpq's `sslmode=verify-full`
//! (and `allow`, `verify-ca`), cannot tell an explicit `sslmode=prefer`
//! from its default (so `PGSSLMODE` could not be applied), and reads
//! `tcp_user_timeout` in seconds where libpq uses milliseconds. Values are
//! still handed to `tokio_postgres::Config`'s setters.

mod error;
mod pgpass;
mod resolve;
mod ssl_mode;
mod syntax;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use tokio_postgres::config::Host;
use tokio_postgres::Config;

pub use error::{ConnInfoError, ValueSource};
pub use ssl_mode::SslMode;

/// The default port, as in libpq.
pub const DEFAULT_PORT: u16 = 5432;
/// What Display and Debug print in place of a password.
const PASSWORD_MASK: &str = "********";

/// Parsed connection settings: a `tokio_postgres::Config` with host, port,
/// user and database always set, plus libpq's TLS settings.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnInfo {
    config: Config,
    ssl_mode: SslMode,
    ssl_root_cert: Option<PathBuf>,
    ssl_cert: Option<PathBuf>,
    ssl_key: Option<PathBuf>,
}

impl ConnInfo {
    /// The driver configuration. Its `ssl_mode` is [`SslMode::to_tokio`]
    /// of [`ConnInfo::ssl_mode`], so for `verify-ca` and `verify-full` it
    /// says only `Require`: code that sets up TLS must read
    /// [`ConnInfo::ssl_mode`], or it would encrypt without verifying.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The libpq TLS mode (default `prefer`).
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// `sslrootcert`: CA certificates to verify the server with.
    pub fn ssl_root_cert(&self) -> Option<&Path> {
        self.ssl_root_cert.as_deref()
    }

    /// `sslcert`: a client certificate.
    pub fn ssl_cert(&self) -> Option<&Path> {
        self.ssl_cert.as_deref()
    }

    /// `sslkey`: the client certificate's private key.
    pub fn ssl_key(&self) -> Option<&Path> {
        self.ssl_key.as_deref()
    }

    /// The database user (always set).
    pub fn user(&self) -> &str {
        self.config.get_user().unwrap_or_default()
    }

    /// The database name (always set).
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or_default()
    }

    /// Whether a password was given (string, `PGPASSWORD` or password file).
    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }
}

impl FromStr for ConnInfo {
    type Err = ConnInfoError;

    /// [`parse_conninfo`], with the process environment.
    fn from_str(s: &str) -> Result<ConnInfo, ConnInfoError> {
        parse_conninfo(s)
    }
}

/// Parses a libpq connection string (`key=value ...` or a `postgres://` /
/// `postgresql://` URI), filling what it leaves out from the `PG*`
/// environment variables, the password file and libpq's defaults.
pub fn parse_conninfo(s: &str) -> Result<ConnInfo, ConnInfoError> {
    parse_conninfo_with_env(s, |name| std::env::var(name).ok())
}

/// [`parse_conninfo`] with the environment supplied by `env`, which is
/// asked for `PG*` variables and `HOME` (to find `~/.pgpass`).
pub fn parse_conninfo_with_env(s: &str, env: impl Fn(&str) -> Option<String>) -> Result<ConnInfo, ConnInfoError> {
    resolve::parse_with(s, &env, &resolve::Defaults::of_this_machine())
}

impl fmt::Display for ConnInfo {
    /// A redacted `key=value` form for logs and messages, e.g.
    /// `host=db port=5432 user=alice dbname=shop password=******** sslmode=require`.
    /// Settings other than these are omitted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self.config.get_hosts().iter().map(host_text).collect();
        write!(f, "host={}", quote(&hosts.join(",")))?;
        let addrs = self.config.get_hostaddrs();
        if !addrs.is_empty() {
            let addrs: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
            write!(f, " hostaddr={}", addrs.join(","))?;
        }
        let ports: Vec<String> = self.config.get_ports().iter().map(u16::to_string).collect();
        write!(f, " port={}", ports.join(","))?;
        write!(f, " user={} dbname={}", quote(self.user()), quote(self.dbname()))?;
        if self.has_password() {
            write!(f, " password={PASSWORD_MASK}")?;
        }
        if self.ssl_mode != SslMode::default() {
            write!(f, " sslmode={}", self.ssl_mode)?;
        }
        if let Some(name) = self.config.get_application_name() {
            write!(f, " application_name={}", quote(name))?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConnInfo {
    /// Written by hand so that the password can never appear.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<String> = self.config.get_hosts().iter().map(host_text).collect();
        f.debug_struct("ConnInfo")
            .field("hosts", &hosts)
            .field("hostaddrs", &self.config.get_hostaddrs())
            .field("ports", &self.config.get_ports())
            .field("user", &self.user())
            .field("dbname", &self.dbname())
            .field("password", &self.has_password().then_some(PASSWORD_MASK))
            .field("ssl_mode", &self.ssl_mode)
            .field("ssl_root_cert", &self.ssl_root_cert)
            .field("ssl_cert", &self.ssl_cert)
            .field("ssl_key", &self.ssl_key)
            .field("application_name", &self.config.get_application_name())
            .field("options", &self.config.get_options())
            .field("connect_timeout", &self.config.get_connect_timeout())
            .field("target_session_attrs", &self.config.get_target_session_attrs())
            .finish()
    }
}

fn host_text(host: &Host) -> String {
    match host {
        Host::Tcp(name) => name.clone(),
        Host::Unix(path) => path.display().to_string(),
    }
}

/// Quotes a value the way libpq's parser reads it back, when needed.
fn quote(value: &str) -> String {
    let plain = !value.is_empty() && !value.chars().any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests;
