//! The server: opening the store, TLS and authentication set-up, the
//! listening socket, and a task per connection until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use asof_sql::Typing;
use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod};
use tokio::net::TcpListener;

use crate::connection::{self, Authentication, Settings};
use crate::error::ServeError;
use crate::scram::Verifier;
use crate::session::Shared;
use crate::stores::Stores;

/// How the server is to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The store's directory.
    pub store: PathBuf,
    /// Where to listen (`127.0.0.1:6543`).
    pub listen: String,
    /// Who may connect.
    pub access: Access,
    /// Certificate and key files (PEM), for TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How columns are typed.
    pub typing: Typing,
}

/// Who may connect.
#[derive(Clone, Debug)]
pub enum Access {
    /// Anyone: only on a loopback address unless `anywhere`.
    Trust {
        /// Allowed on any address (an explicit choice).
        anywhere: bool,
    },
    /// One user with a password.
    Password {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    settings: Arc<Settings>,
    shared: Arc<Shared>,
}

impl Server {
    /// Opens the store, prepares TLS and authentication, and binds the
    /// address. Connections without authentication are only allowed on a
    /// loopback address, or anywhere when asked for explicitly.
    pub async fn bind(config: &Config) -> Result<Server, ServeError> {
        let tls = config.tls.as_ref().map(|(cert, key)| acceptor(cert, key)).transpose()?;
        let authentication = match &config.access {
            Access::Trust { anywhere } => {
                if !anywhere && !is_loopback(&config.listen) {
                    return Err(ServeError::Config(format!(
                        "{} is not a loopback address: give --user with a password, or --trust to allow anyone",
                        config.listen
                    )));
                }
                Authentication::Trust
            }
            Access::Password { user, password } => {
                if password.is_empty() {
                    return Err(ServeError::Config("the password is empty".into()));
                }
                Authentication::Password {
                    user: user.clone(),
                    verifier: Verifier::new(password).map_err(ServeError::Password)?,
                }
            }
        };
        let stores = Arc::new(Stores::open(&config.store).map_err(|source| ServeError::Store {
            path: config.store.clone(),
            source,
        })?);
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|source| ServeError::Listen {
                addr: config.listen.clone(),
                source,
            })?;
        Ok(Server {
            listener,
            settings: Arc::new(Settings {
                tls,
                authentication,
                cancels: Arc::default(),
            }),
            shared: Arc::new(Shared::new(stores, config.typing)),
        })
    }

    /// The address it listens on (the port chosen, for port 0).
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Io)
    }

    /// Serves connections until `shutdown` completes; connections still
    /// open then are closed.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        tokio::pin!(shutdown);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        // Out of descriptors and the like: the next accept may work.
                        Err(e) => {
                            tracing::warn!("accept failed: {e}");
                            continue;
                        }
                    };
                    let (settings, shared) = (self.settings.clone(), self.shared.clone());
                    tasks.spawn(async move {
                        if let Err(e) = connection::serve(tcp, settings, shared).await {
                            tracing::debug!("connection from {peer} ended: {e}");
                        }
                    });
                }
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        tasks.shutdown().await;
        Ok(())
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<SslAcceptor, ServeError> {
    for path in [cert, key] {
        std::fs::metadata(path).map_err(|source| ServeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    }
    let tls = |source| ServeError::Tls {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(tls)?;
    builder.set_certificate_chain_file(cert).map_err(tls)?;
    builder.set_private_key_file(key, SslFiletype::PEM).map_err(tls)?;
    builder.check_private_key().map_err(tls)?;
    Ok(builder.build())
}

/// Whether `listen` names only this machine (`127.0.0.1:p`, `[::1]:p`,
/// `localhost:p`).
fn is_loopback(listen: &str) -> bool {
    match listen.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => listen.rsplit_once(':').is_some_and(|(host, _)| host == "localhost"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_count_as_local() {
        assert!(is_loopback("127.0.0.1:6543"));
        assert!(is_loopback("[::1]:6543"));
        assert!(is_loopback("localhost:6543"));
        assert!(!is_loopback("0.0.0.0:6543"));
        assert!(!is_loopback("10.1.2.3:6543"));
    }
}
