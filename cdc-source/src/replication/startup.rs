//! Opening a replication connection: socket, TLS, startup message,
//! authentication, and the server's initial parameter reports.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use postgres_protocol::authentication::{self, sasl};
use postgres_protocol::message::backend::{AuthenticationSaslBody, Message};
use postgres_protocol::message::frontend;
use tokio::net::{TcpStream, UnixStream};
use tokio_postgres::config::{ChannelBinding, Host};
use tokio_postgres::fallible_iterator::FallibleIterator;
use tokio_postgres::Config;

use super::frame::{self, Conn, Frame};
use super::transport::Transport;
use super::{tls, ReplicationError};

const DEFAULT_PORT: u16 = 5432;

/// What the server told us while the connection started.
pub(crate) struct Session {
    pub(crate) parameters: HashMap<String, String>,
    pub(crate) backend_pid: Option<i32>,
}

/// Where to connect: the first host of the configuration.
enum Target {
    Tcp { host: String, port: u16 },
    Unix { path: PathBuf },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix { path } => write!(f, "{}", path.display()),
        }
    }
}

impl Target {
    fn from_config(config: &Config) -> Result<Target, ReplicationError> {
        let port = config.get_ports().first().copied().unwrap_or(DEFAULT_PORT);
        // `hostaddr` names the address to dial; `host` stays the name (SNI).
        if let Some(addr) = config.get_hostaddrs().first() {
            return Ok(Target::Tcp {
                host: addr.to_string(),
                port,
            });
        }
        match config.get_hosts().first() {
            Some(Host::Tcp(host)) => Ok(Target::Tcp {
                host: host.clone(),
                port,
            }),
            Some(Host::Unix(dir)) => Ok(Target::Unix {
                path: dir.join(format!(".s.PGSQL.{port}")),
            }),
            None => Err(ReplicationError::Config("no host given (set host or hostaddr)".into())),
        }
    }
}

/// What a connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A walsender that also accepts SQL, bound to one database: what
    /// logical replication needs.
    Replication,
    /// An ordinary session, for SQL only (the initial copy's reads): it
    /// takes a connection slot, not one of the server's walsenders.
    Sql,
}

/// Connects, authenticates and waits until the server is ready for a
/// command, within the configured connect timeout.
pub(crate) async fn connect(config: &Config, mode: Mode) -> Result<(Conn, Session), ReplicationError> {
    let target = Target::from_config(config)?;
    let attempt = connect_to(config, &target, mode);
    match config.get_connect_timeout() {
        Some(limit) => tokio::time::timeout(*limit, attempt)
            .await
            .map_err(|_| ReplicationError::ConnectTimeout {
                target: target.to_string(),
            })?,
        None => attempt.await,
    }
}

async fn connect_to(config: &Config, target: &Target, mode: Mode) -> Result<(Conn, Session), ReplicationError> {
    let connect_error = |source| ReplicationError::Connect {
        target: target.to_string(),
        source,
    };
    let transport = match target {
        Target::Tcp { host, port } => {
            let tcp = TcpStream::connect((host.as_str(), *port))
                .await
                .map_err(connect_error)?;
            // Status updates are tiny and must leave at once, not wait for
            // Nagle's algorithm to batch them.
            tcp.set_nodelay(true).map_err(connect_error)?;
            let sni = match config.get_hosts().first() {
                Some(Host::Tcp(name)) => name.as_str(),
                _ => host.as_str(),
            };
            tls::negotiate(tcp, config.get_ssl_mode(), sni).await?
        }
        // libpq never uses TLS on a Unix socket, whatever sslmode says.
        Target::Unix { path } => Transport::Unix(UnixStream::connect(path).await.map_err(connect_error)?),
    };
    let mut conn = Conn::new(transport);
    let user = config
        .get_user()
        .ok_or_else(|| ReplicationError::Config("no user name given".into()))?;
    send_startup(&mut conn, config, user, mode).await?;
    authenticate(&mut conn, config, user).await?;
    let session = read_session(&mut conn).await?;
    Ok((conn, session))
}

async fn send_startup(conn: &mut Conn, config: &Config, user: &str, mode: Mode) -> Result<(), ReplicationError> {
    let mut params = vec![
        ("user", user),
        // Query results are decoded as UTF-8.
        ("client_encoding", "UTF8"),
    ];
    if mode == Mode::Replication {
        params.push(("replication", "database"));
    }
    // Decoded values are printed in these, whatever the server's defaults;
    // start-up parameters win over `options`.
    params.extend(crate::output::OUTPUT_SETTINGS);
    if let Some(dbname) = config.get_dbname() {
        params.push(("database", dbname));
    }
    if let Some(name) = config.get_application_name() {
        params.push(("application_name", name));
    }
    if let Some(options) = config.get_options() {
        params.push(("options", options));
    }
    conn.stage(|buf| frontend::startup_message(params, buf))
        .map_err(|e| ReplicationError::Config(format!("startup parameters: {e}")))?;
    conn.flush().await
}

fn password(config: &Config) -> Result<&[u8], ReplicationError> {
    config.get_password().ok_or_else(|| {
        ReplicationError::Authentication("the server asked for a password but none is configured".into())
    })
}

fn check_channel_binding_optional(config: &Config) -> Result<(), ReplicationError> {
    match config.get_channel_binding() {
        ChannelBinding::Require => Err(ReplicationError::Authentication(
            "channel_binding=require but the server did not use channel binding".into(),
        )),
        _ => Ok(()),
    }
}

async fn authenticate(conn: &mut Conn, config: &Config, user: &str) -> Result<(), ReplicationError> {
    match conn.read_frame().await? {
        Frame::Message(Message::AuthenticationOk) => {
            check_channel_binding_optional(config)?;
            return Ok(());
        }
        Frame::Message(Message::AuthenticationCleartextPassword) => {
            check_channel_binding_optional(config)?;
            send_password(conn, password(config)?).await?;
        }
        Frame::Message(Message::AuthenticationMd5Password(body)) => {
            check_channel_binding_optional(config)?;
            let hash = authentication::md5_hash(user.as_bytes(), password(config)?, body.salt());
            send_password(conn, hash.as_bytes()).await?;
        }
        Frame::Message(Message::AuthenticationSasl(body)) => {
            authenticate_sasl(conn, config, body).await?;
        }
        Frame::Message(
            Message::AuthenticationKerberosV5
            | Message::AuthenticationScmCredential
            | Message::AuthenticationGss
            | Message::AuthenticationSspi,
        ) => {
            return Err(ReplicationError::Authentication(
                "the server asked for an unsupported method (Kerberos, GSSAPI, SSPI or SCM); \
                 use password, md5 or scram-sha-256"
                    .into(),
            ))
        }
        Frame::Message(Message::ErrorResponse(body)) => return Err(frame::server_error(&body)),
        other => return Err(frame::unexpected(&other, "during authentication")),
    }
    expect_auth_ok(conn).await
}

async fn expect_auth_ok(conn: &mut Conn) -> Result<(), ReplicationError> {
    match conn.read_frame().await? {
        Frame::Message(Message::AuthenticationOk) => Ok(()),
        Frame::Message(Message::ErrorResponse(body)) => Err(frame::server_error(&body)),
        other => Err(frame::unexpected(&other, "instead of AuthenticationOk")),
    }
}

async fn send_password(conn: &mut Conn, password: &[u8]) -> Result<(), ReplicationError> {
    conn.stage(|buf| frontend::password_message(password, buf))
        .map_err(|_| ReplicationError::Authentication("the password contains a NUL byte".into()))?;
    conn.flush().await
}

async fn authenticate_sasl(
    conn: &mut Conn,
    config: &Config,
    body: AuthenticationSaslBody,
) -> Result<(), ReplicationError> {
    let password = password(config)?;
    let mut has_scram = false;
    let mut has_scram_plus = false;
    let mut mechanisms = body.mechanisms();
    while let Some(mechanism) = mechanisms.next().map_err(ReplicationError::protocol_io)? {
        match mechanism {
            sasl::SCRAM_SHA_256 => has_scram = true,
            sasl::SCRAM_SHA_256_PLUS => has_scram_plus = true,
            _ => {}
        }
    }

    // Channel binding ties the SCRAM exchange to this TLS session, so a
    // man in the middle cannot relay it; without TLS there is none.
    let end_point = match config.get_channel_binding() {
        ChannelBinding::Disable => None,
        _ => conn.transport().ssl().and_then(tls::tls_server_end_point),
    };
    let (binding, mechanism) = match (has_scram_plus, has_scram, end_point) {
        (true, _, Some(data)) => (
            sasl::ChannelBinding::tls_server_end_point(data),
            sasl::SCRAM_SHA_256_PLUS,
        ),
        // We could bind but the server does not offer it: say so ("y").
        (false, true, Some(_)) => (sasl::ChannelBinding::unrequested(), sasl::SCRAM_SHA_256),
        (_, true, None) | (true, false, None) => (sasl::ChannelBinding::unsupported(), sasl::SCRAM_SHA_256),
        (false, false, _) => {
            return Err(ReplicationError::Authentication(
                "the server offered no supported SASL mechanism (SCRAM-SHA-256)".into(),
            ))
        }
    };
    if mechanism != sasl::SCRAM_SHA_256_PLUS {
        check_channel_binding_optional(config)?;
    }

    let mut scram = sasl::ScramSha256::new(password, binding);
    conn.stage(|buf| frontend::sasl_initial_response(mechanism, scram.message(), buf))
        .map_err(|e| ReplicationError::Authentication(format!("SCRAM initial response: {e}")))?;
    conn.flush().await?;

    let data = read_sasl_step(conn, SaslStep::Continue).await?;
    scram
        .update(&data)
        .map_err(|e| ReplicationError::Authentication(format!("SCRAM: {e}")))?;
    conn.stage(|buf| frontend::sasl_response(scram.message(), buf))
        .map_err(|e| ReplicationError::Authentication(format!("SCRAM response: {e}")))?;
    conn.flush().await?;

    let data = read_sasl_step(conn, SaslStep::Final).await?;
    // Verifies the server's proof: it knows the password too.
    scram
        .finish(&data)
        .map_err(|e| ReplicationError::Authentication(format!("SCRAM server verification: {e}")))
}

/// The server's SASL messages after the client's first.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SaslStep {
    Continue,
    Final,
}

/// Reads the expected SASL step's data, or the server's error.
async fn read_sasl_step(conn: &mut Conn, step: SaslStep) -> Result<Vec<u8>, ReplicationError> {
    match (conn.read_frame().await?, step) {
        (Frame::Message(Message::AuthenticationSaslContinue(body)), SaslStep::Continue) => Ok(body.data().to_vec()),
        (Frame::Message(Message::AuthenticationSaslFinal(body)), SaslStep::Final) => Ok(body.data().to_vec()),
        (Frame::Message(Message::ErrorResponse(body)), _) => Err(frame::server_error(&body)),
        (other, SaslStep::Continue) => Err(frame::unexpected(&other, "instead of SASL continue")),
        (other, SaslStep::Final) => Err(frame::unexpected(&other, "instead of SASL final")),
    }
}

/// Reads the parameter reports and backend key up to the first
/// `ReadyForQuery`.
async fn read_session(conn: &mut Conn) -> Result<Session, ReplicationError> {
    let mut session = Session {
        parameters: HashMap::new(),
        backend_pid: None,
    };
    loop {
        match conn.read_frame().await? {
            Frame::Message(Message::ParameterStatus(body)) => {
                let name = body.name().map_err(ReplicationError::protocol_io)?;
                let value = body.value().map_err(ReplicationError::protocol_io)?;
                session.parameters.insert(name.to_owned(), value.to_owned());
            }
            Frame::Message(Message::BackendKeyData(body)) => {
                session.backend_pid = Some(body.process_id());
            }
            Frame::Message(Message::NoticeResponse(body)) => frame::log_notice(&body),
            Frame::Message(Message::ReadyForQuery(_)) => return Ok(session),
            Frame::Message(Message::ErrorResponse(body)) => return Err(frame::server_error(&body)),
            other => return Err(frame::unexpected(&other, "while the session starts")),
        }
    }
}
