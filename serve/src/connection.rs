//! One client connection: TLS negotiation, startup and authentication,
//! then the simple and extended query protocols until the client leaves.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::cancel::{Cancels, Key};
use crate::error::PgError;
use crate::params::{self, Param};
use crate::protocol::{self, format_of, Column, Frontend, Out, Startup};
use crate::scram::{self, Verifier};
use crate::session::{default_setting, Answer, Planned, Session, Shared};
use crate::statement::{self, Command};
use crate::wire_types::{pg_type_of, PgType};
use crate::{binary, text};

/// Write out once this much is framed, so a large result streams.
const FLUSH_AT: usize = 64 << 10;

/// How clients prove who they are.
#[derive(Clone, Debug)]
pub enum Authentication {
    /// Anyone may connect.
    Trust,
    /// One user, by password (SCRAM-SHA-256).
    Password {
        /// The user name.
        user: String,
        /// The password's verifier.
        verifier: Verifier,
    },
}

/// Settings every connection shares.
pub struct Settings {
    /// TLS, if configured.
    pub tls: Option<SslAcceptor>,
    /// Authentication.
    pub authentication: Authentication,
    /// The sessions cancel requests may name.
    pub cancels: Arc<Cancels>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Serves one connection to its end. Errors end the connection; the
/// client has been told when it could be.
pub async fn serve(tcp: TcpStream, settings: Arc<Settings>, shared: Arc<Shared>) -> Result<(), PgError> {
    tcp.set_nodelay(true).map_err(PgError::io)?;
    let mut stream: Box<dyn Stream> = Box::new(tcp);
    let params = loop {
        match protocol::read_startup(&mut stream).await? {
            Startup::Ssl => match &settings.tls {
                Some(acceptor) => {
                    stream.write_all(b"S").await.map_err(PgError::io)?;
                    stream = Box::new(accept_tls(acceptor, stream).await?);
                }
                None => stream.write_all(b"N").await.map_err(PgError::io)?,
            },
            Startup::Gss => stream.write_all(b"N").await.map_err(PgError::io)?,
            Startup::Cancel { pid, secret } => {
                settings.cancels.cancel(pid, secret);
                return Ok(());
            }
            Startup::Start(params) => break params,
        }
    };
    let mut connection = Connection {
        stream: BufReader::new(stream),
        out: Out::default(),
        session: Session::new(shared),
        statements: HashMap::new(),
        portals: HashMap::new(),
        transaction: Transaction::Idle,
        skipping: false,
        key: settings.cancels.register(),
    };
    let user = params
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    if let Err(e) = connection.authenticate(&settings.authentication, &user).await {
        connection.out.fatal(&e);
        connection.flush().await.ok();
        return Err(e);
    }
    connection.start(&params, &user);
    connection.flush().await?;
    let result = connection.run().await;
    if let Err(e) = &result {
        // A broken message ends the connection, as in Postgres, with a word.
        if e.code == "08P01" {
            connection.out.fatal(e);
            connection.flush().await.ok();
        }
    }
    result
}

async fn accept_tls(acceptor: &SslAcceptor, stream: Box<dyn Stream>) -> Result<SslStream<Box<dyn Stream>>, PgError> {
    let ssl = Ssl::new(acceptor.context()).map_err(|e| PgError::new("08006", e.to_string()))?;
    let mut tls = SslStream::new(ssl, stream).map_err(|e| PgError::new("08006", e.to_string()))?;
    Pin::new(&mut tls)
        .accept()
        .await
        .map_err(|e| PgError::new("08006", format!("TLS handshake failed: {e}")))?;
    Ok(tls)
}

/// The transaction block state `ReadyForQuery` reports.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Transaction {
    Idle,
    Open,
    Failed,
}

/// A prepared statement.
struct Prepared {
    command: Command,
    /// The client's declared parameter types.
    declared: Vec<u32>,
    /// For a query, its plan, replaced when the log has grown.
    planned: Option<Mutex<Arc<Planned>>>,
}

impl Prepared {
    /// The query's latest plan.
    fn plan(&self) -> Option<Arc<Planned>> {
        self.planned
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// A portal: a statement with its parameters bound.
struct Portal {
    statement: Arc<Prepared>,
    params: Vec<ScalarValue>,
    result_formats: Vec<i16>,
    /// Rows left of a suspended execution.
    running: Option<Running>,
}

/// A result partly sent.
struct Running {
    stream: SendableRecordBatchStream,
    batch: Option<(RecordBatch, usize)>,
    rows: u64,
}

struct Connection {
    stream: BufReader<Box<dyn Stream>>,
    out: Out,
    session: Session,
    statements: HashMap<String, Arc<Prepared>>,
    portals: HashMap<String, Portal>,
    transaction: Transaction,
    /// After an error in the extended protocol, messages up to Sync are
    /// skipped.
    skipping: bool,
    /// What a cancel request names this session by.
    key: Key,
}

impl Connection {
    async fn flush(&mut self) -> Result<(), PgError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let bytes = self.out.take();
        let stream = self.stream.get_mut();
        stream.write_all(&bytes).await.map_err(PgError::io)?;
        stream.flush().await.map_err(PgError::io)
    }

    async fn authenticate(&mut self, authentication: &Authentication, user: &str) -> Result<(), PgError> {
        let Authentication::Password {
            user: expected,
            verifier,
        } = authentication
        else {
            return Ok(());
        };
        let failed = || PgError::new("28P01", format!("password authentication failed for user \"{user}\""));
        let mut mechanisms = BytesMut::new();
        mechanisms.put_slice(scram::MECHANISM.as_bytes());
        mechanisms.put_slice(b"\0\0");
        self.out.authentication(10, &mechanisms);
        self.flush().await?;
        let Some(Frontend::Password(mut initial)) = protocol::read_message(&mut self.stream).await? else {
            return Err(PgError::protocol("expected a SASL initial response"));
        };
        let mechanism = protocol::cstr(&mut initial)?;
        if mechanism != scram::MECHANISM {
            return Err(PgError::new(
                "28000",
                format!("SASL mechanism {mechanism} is not offered"),
            ));
        }
        let len = protocol::get_i32(&mut initial)?;
        if usize::try_from(len).ok() != Some(initial.len()) {
            return Err(PgError::protocol("malformed SASL initial response"));
        }
        let exchange = scram::server_first(verifier, &initial)?;
        self.out.authentication(11, exchange.message().as_bytes());
        self.flush().await?;
        let Some(Frontend::Password(last)) = protocol::read_message(&mut self.stream).await? else {
            return Err(PgError::protocol("expected a SASL response"));
        };
        let server_final =
            exchange
                .server_final(verifier, &last)
                .map_err(|e| if e.code == "28P01" { failed() } else { e })?;
        if user != expected {
            return Err(failed());
        }
        self.out.authentication(12, server_final.as_bytes());
        Ok(())
    }

    /// AuthenticationOk, the parameters clients read, ReadyForQuery.
    fn start(&mut self, params: &[(String, String)], user: &str) {
        self.out.authentication(0, &[]);
        let application = params
            .iter()
            .find(|(k, _)| k == "application_name")
            .map_or("", |(_, v)| v.as_str());
        for name in [
            "server_version",
            "server_encoding",
            "client_encoding",
            "DateStyle",
            "IntervalStyle",
            "TimeZone",
            "integer_datetimes",
            "standard_conforming_strings",
            "is_superuser",
            "default_transaction_read_only",
            "in_hot_standby",
        ] {
            let value = default_setting(&name.to_ascii_lowercase()).unwrap_or("");
            self.out.parameter_status(name, value);
        }
        self.out.parameter_status("application_name", application);
        self.out.parameter_status("session_authorization", user);
        self.out.backend_key(self.key.pid, self.key.secret);
        self.out.ready(b'I');
    }

    fn ready(&mut self) {
        self.out.ready(match self.transaction {
            Transaction::Idle => b'I',
            Transaction::Open => b'T',
            Transaction::Failed => b'E',
        });
    }

    async fn run(&mut self) -> Result<(), PgError> {
        loop {
            let Some(message) = protocol::read_message(&mut self.stream).await? else {
                return Ok(());
            };
            match message {
                Frontend::Terminate => return Ok(()),
                Frontend::Query(sql) => {
                    self.skipping = false;
                    self.simple_query(&sql).await?;
                    self.ready();
                    self.flush().await?;
                }
                Frontend::Sync => {
                    self.skipping = false;
                    // The unnamed portal does not outlive its transaction.
                    self.portals.remove("");
                    self.ready();
                    self.flush().await?;
                }
                Frontend::Flush => self.flush().await?,
                _ if self.skipping => {}
                message => {
                    if let Err(e) = self.extended(message).await {
                        self.fail(&e);
                        self.skipping = true;
                    }
                    if self.out.len() >= FLUSH_AT {
                        self.flush().await?;
                    }
                }
            }
        }
    }

    /// Reports an error, failing an open transaction block.
    fn fail(&mut self, e: &PgError) {
        self.out.error(e);
        if self.transaction == Transaction::Open {
            self.transaction = Transaction::Failed;
        }
    }

    /// Whether the statement may run: in a failed block only its end may.
    fn check_block(&self, command: &Command) -> Result<(), PgError> {
        if self.transaction == Transaction::Failed && !matches!(command, Command::Transaction(_, Some(false))) {
            return Err(PgError::new(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block",
            ));
        }
        Ok(())
    }

    /// Follows BEGIN, COMMIT and ROLLBACK; COMMIT of a failed block rolls
    /// back, as in Postgres.
    fn transaction_command(&mut self, command: &Command) -> Option<String> {
        let Command::Transaction(tag, Some(opens)) = command else {
            return None;
        };
        let failed = self.transaction == Transaction::Failed;
        self.transaction = if *opens { Transaction::Open } else { Transaction::Idle };
        Some(if failed && *tag == "COMMIT" {
            "ROLLBACK".into()
        } else {
            (*tag).into()
        })
    }

    async fn simple_query(&mut self, sql: &str) -> Result<(), PgError> {
        let statements = statement::split(sql);
        if statements.is_empty() {
            self.out.empty_query();
            return Ok(());
        }
        for sql in statements {
            if let Err(e) = self.simple_statement(sql).await {
                if e.code.starts_with("08") {
                    return Err(e);
                }
                self.fail(&e);
                // The rest of a failed simple query is not run.
                break;
            }
        }
        Ok(())
    }

    async fn simple_statement(&mut self, sql: &str) -> Result<(), PgError> {
        let command = statement::classify(sql);
        self.check_block(&command)?;
        if let Some(tag) = self.transaction_command(&command) {
            self.out.command_complete(&tag);
            return Ok(());
        }
        match &command {
            Command::Query(sql) => {
                let planned = self.session.plan(sql).await?;
                let stream = self.session.run(&planned, Vec::new()).await?;
                self.out.row_description(&planned.columns, &[]);
                let mut running = Running {
                    stream,
                    batch: None,
                    rows: 0,
                };
                self.send_rows(&mut running, &[], 0).await?;
                self.out.command_complete(&format!("SELECT {}", running.rows));
            }
            command => {
                let columns = Session::command_columns(command);
                match self.session.command(command)? {
                    Answer::Done(tag) => self.out.command_complete(&tag),
                    Answer::Rows(stream) => {
                        self.out.row_description(columns.as_deref().unwrap_or(&[]), &[]);
                        let mut running = Running {
                            stream,
                            batch: None,
                            rows: 0,
                        };
                        self.send_rows(&mut running, &[], 0).await?;
                        self.out.command_complete("SHOW");
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends rows of `running` until it ends (true) or `max_rows` rows were
    /// sent (0: no limit; false when rows are left).
    async fn send_rows(&mut self, running: &mut Running, formats: &[i16], max_rows: usize) -> Result<bool, PgError> {
        let mut sent = 0usize;
        let mut fields = BytesMut::new();
        // A cancel request from now on ends this query.
        let requested = self.key.requested.clone();
        let canceled = requested.notified();
        tokio::pin!(canceled);
        canceled.as_mut().enable();
        // What each column is sent as, for values kept in text form.
        let pg_types: Vec<PgType> = running.stream.schema().fields().iter().map(|f| pg_type_of(f)).collect();
        loop {
            let (batch, mut row) = match running.batch.take() {
                Some(b) => b,
                None => match tokio::select! {
                    biased;
                    () = &mut canceled => return Err(PgError::new("57014", "canceling statement due to user request")),
                    next = running.stream.next() => next,
                } {
                    Some(Ok(batch)) => (batch, 0),
                    Some(Err(e)) => return Err(PgError::from_datafusion(e)),
                    None => return Ok(true),
                },
            };
            let columns = batch.columns();
            while row < batch.num_rows() {
                if max_rows > 0 && sent == max_rows {
                    running.batch = Some((batch, row));
                    return Ok(false);
                }
                fields.clear();
                for (i, column) in columns.iter().enumerate() {
                    let at = fields.len();
                    fields.put_i32(-1);
                    if column.is_null(row) {
                        continue;
                    }
                    if format_of(formats, i) == 1 {
                        let pg = pg_types.get(i).copied().unwrap_or(crate::wire_types::oid::TEXT);
                        binary::write_value(column.as_ref(), row, pg, &mut fields)?;
                    } else {
                        text::write_value(column.as_ref(), row, &mut fields)
                            .map_err(|e| PgError::new("XX000", e.to_string()))?;
                    }
                    let len = i32::try_from(fields.len() - at - 4).unwrap_or(i32::MAX);
                    fields[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
                self.out.data_row(columns.len(), &fields);
                sent += 1;
                running.rows += 1;
                row += 1;
                if self.out.len() >= FLUSH_AT {
                    self.flush().await?;
                }
            }
        }
    }

    async fn extended(&mut self, message: Frontend) -> Result<(), PgError> {
        match message {
            Frontend::Parse { name, sql, param_types } => {
                let command = statement::classify(&sql);
                let planned = match &command {
                    Command::Query(sql) if !statement::is_blank(sql) => {
                        Some(Mutex::new(Arc::new(self.session.plan(sql).await?)))
                    }
                    _ => None,
                };
                self.statements.insert(
                    name,
                    Arc::new(Prepared {
                        command,
                        declared: param_types,
                        planned,
                    }),
                );
                self.out.parse_complete();
            }
            Frontend::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => {
                let prepared = self.statements.get(&statement).cloned().ok_or_else(|| {
                    PgError::new("26000", format!("prepared statement \"{statement}\" does not exist"))
                })?;
                let values = bind(&prepared, &param_formats, &params)?;
                if let Some(planned) = prepared.plan() {
                    for (i, (t, c)) in planned.types.iter().zip(&planned.columns).enumerate() {
                        if format_of(&result_formats, i) == 1 && !binary::supported(t, c.pg_type) {
                            return Err(binary::unsupported(t, c.pg_type));
                        }
                    }
                }
                self.portals.insert(
                    portal,
                    Portal {
                        statement: prepared,
                        params: values,
                        result_formats,
                        running: None,
                    },
                );
                self.out.bind_complete();
            }
            Frontend::Describe { kind: b'S', name } => {
                let prepared = self
                    .statements
                    .get(&name)
                    .ok_or_else(|| PgError::new("26000", format!("prepared statement \"{name}\" does not exist")))?;
                let plan = prepared.plan();
                let inferred = plan.as_deref().map_or(&[][..], |p| &p.params[..]);
                let count = prepared.declared.len().max(inferred.len());
                let types: Vec<u32> = (0..count)
                    .map(|i| match prepared.declared.get(i) {
                        Some(t) if *t != 0 => *t,
                        _ => inferred
                            .get(i)
                            .and_then(|t| t.as_ref())
                            .map_or(crate::wire_types::oid::TEXT.oid, |t| crate::wire_types::pg_type(t).oid),
                    })
                    .collect();
                self.out.parameter_description(&types);
                let columns = describe(prepared);
                match columns {
                    Some(c) => self.out.row_description(&c, &[]),
                    None => self.out.no_data(),
                }
            }
            Frontend::Describe { name, .. } => {
                let portal = self
                    .portals
                    .get(&name)
                    .ok_or_else(|| PgError::new("34000", format!("portal \"{name}\" does not exist")))?;
                match describe(&portal.statement) {
                    Some(c) => {
                        let formats = portal.result_formats.clone();
                        self.out.row_description(&c, &formats);
                    }
                    None => self.out.no_data(),
                }
            }
            Frontend::Execute { portal, max_rows } => self.execute(&portal, max_rows).await?,
            Frontend::Close { kind, name } => {
                if kind == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                self.out.close_complete();
            }
            Frontend::Password(_) => return Err(PgError::protocol("unexpected password message")),
            Frontend::Other(tag) => {
                return Err(PgError::protocol(&format!(
                    "unsupported message type {:?}",
                    char::from(tag)
                )))
            }
            Frontend::Query(_) | Frontend::Sync | Frontend::Flush | Frontend::Terminate => {}
        }
        Ok(())
    }

    async fn execute(&mut self, name: &str, max_rows: i32) -> Result<(), PgError> {
        let mut portal = self
            .portals
            .remove(name)
            .ok_or_else(|| PgError::new("34000", format!("portal \"{name}\" does not exist")))?;
        let result = self.execute_portal(&mut portal, max_rows).await;
        self.portals.insert(name.to_string(), portal);
        result
    }

    async fn execute_portal(&mut self, portal: &mut Portal, max_rows: i32) -> Result<(), PgError> {
        let max_rows = usize::try_from(max_rows).unwrap_or(0);
        let command = &portal.statement.command;
        self.check_block(command)?;
        if portal.running.is_none() {
            if let Some(tag) = self.transaction_command(command) {
                self.out.command_complete(&tag);
                return Ok(());
            }
            let stream = match (portal.statement.plan(), command) {
                (Some(planned), _) => {
                    let planned = if self.session.is_current(&planned.engine)? {
                        planned
                    } else {
                        // The log grew since the plan: plan again at the new cut.
                        let Command::Query(sql) = command else {
                            return Err(PgError::new("XX000", "a planned statement that is not a query"));
                        };
                        let again = Arc::new(self.session.plan(sql).await?);
                        if let Some(m) = &portal.statement.planned {
                            *m.lock().unwrap_or_else(PoisonError::into_inner) = again.clone();
                        }
                        again
                    };
                    self.session.run(&planned, portal.params.clone()).await?
                }
                (None, Command::Query(_)) => {
                    self.out.empty_query();
                    return Ok(());
                }
                (None, command) => match self.session.command(command)? {
                    Answer::Done(tag) => {
                        self.out.command_complete(&tag);
                        return Ok(());
                    }
                    Answer::Rows(stream) => stream,
                },
            };
            portal.running = Some(Running {
                stream,
                batch: None,
                rows: 0,
            });
        }
        let Some(mut running) = portal.running.take() else {
            return Ok(());
        };
        let done = self.send_rows(&mut running, &portal.result_formats, max_rows).await?;
        if done {
            let tag = match command {
                Command::Show(_) => "SHOW".to_string(),
                _ => format!("SELECT {}", running.rows),
            };
            self.out.command_complete(&tag);
        } else {
            self.out.portal_suspended();
            portal.running = Some(running);
        }
        Ok(())
    }
}

/// The result columns of a prepared statement, if it returns rows.
fn describe(prepared: &Prepared) -> Option<Vec<Column>> {
    match prepared.plan() {
        Some(p) => Some(p.columns.clone()),
        None => Session::command_columns(&prepared.command),
    }
}

/// The values of a Bind's parameters.
fn bind(prepared: &Prepared, formats: &[i16], values: &[Option<Bytes>]) -> Result<Vec<ScalarValue>, PgError> {
    let plan = prepared.plan();
    let inferred = plan.as_deref().map_or(&[][..], |p| &p.params[..]);
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            params::value(
                i + 1,
                &Param {
                    value: v.as_ref(),
                    binary: format_of(formats, i) == 1,
                    // A client that declared no type sends the one it was told.
                    declared: match prepared.declared.get(i).copied().unwrap_or(0) {
                        0 => inferred
                            .get(i)
                            .and_then(|t| t.as_ref())
                            .map_or(0, |t| crate::wire_types::pg_type(t).oid),
                        declared => declared,
                    },
                    inferred: inferred.get(i).and_then(|t| t.as_ref()),
                },
            )
        })
        .collect()
}
