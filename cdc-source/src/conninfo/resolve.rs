//! From tokens to settings: which options exist, the environment
//! variables behind them, libpq's defaults and the password file, applied
//! to a `tokio_postgres::Config`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::{ChannelBinding, LoadBalanceHosts, SslNegotiation, TargetSessionAttrs};
use tokio_postgres::Config;

use super::error::invalid;
use super::{pgpass, syntax, ConnInfo, ConnInfoError, SslMode, ValueSource, DEFAULT_PORT};

/// Debian's (and so Ubuntu's) libpq default socket directory.
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";
/// The host used when there is no socket directory.
const DEFAULT_TCP_HOST: &str = "localhost";
/// libpq treats shorter connect timeouts as 2 seconds.
const MIN_CONNECT_TIMEOUT_SECS: u64 = 2;

/// Every option asof accepts, with the environment variable that supplies
/// it when the string does not. Anything else is rejected.
const OPTIONS: &[(&str, Option<&str>)] = &[
    ("host", Some("PGHOST")),
    ("hostaddr", Some("PGHOSTADDR")),
    ("port", Some("PGPORT")),
    ("user", Some("PGUSER")),
    ("password", Some("PGPASSWORD")),
    ("passfile", Some("PGPASSFILE")),
    ("dbname", Some("PGDATABASE")),
    ("options", Some("PGOPTIONS")),
    ("application_name", Some("PGAPPNAME")),
    ("fallback_application_name", None),
    ("connect_timeout", Some("PGCONNECT_TIMEOUT")),
    ("sslmode", Some("PGSSLMODE")),
    ("sslrootcert", Some("PGSSLROOTCERT")),
    ("sslcert", Some("PGSSLCERT")),
    ("sslkey", Some("PGSSLKEY")),
    ("sslnegotiation", Some("PGSSLNEGOTIATION")),
    ("keepalives", None),
    ("keepalives_idle", None),
    ("keepalives_interval", None),
    ("keepalives_count", None),
    ("tcp_user_timeout", None),
    ("target_session_attrs", Some("PGTARGETSESSIONATTRS")),
    ("channel_binding", Some("PGCHANNELBINDING")),
    ("load_balance_hosts", Some("PGLOADBALANCEHOSTS")),
];

/// The machine-dependent defaults, separate so tests can fix them.
pub(super) struct Defaults {
    pub(super) socket_dir: Option<PathBuf>,
    pub(super) os_user: Option<String>,
}

impl Defaults {
    /// This machine's: the socket directory if it exists, the OS user.
    pub(super) fn of_this_machine() -> Defaults {
        Defaults {
            socket_dir: Some(PathBuf::from(DEFAULT_SOCKET_DIR)).filter(|dir| dir.is_dir()),
            os_user: os_user_name(),
        }
    }
}

/// The settings after merging the string over the environment.
struct Settings {
    values: BTreeMap<&'static str, (String, ValueSource)>,
}

impl Settings {
    /// A non-empty value; libpq treats an empty one as "use the default".
    fn get(&self, key: &str) -> Option<(&str, ValueSource)> {
        self.values
            .get(key)
            .filter(|(value, _)| !value.is_empty())
            .map(|(value, source)| (value.as_str(), *source))
    }
}

/// Tokenises `s`, rejects unknown options, lets `env` fill the options the
/// string does not mention, and builds the result over `defaults`.
pub(super) fn parse_with(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    defaults: &Defaults,
) -> Result<ConnInfo, ConnInfoError> {
    let mut values = BTreeMap::new();
    for param in syntax::tokenize(s)? {
        let Some(&(key, _)) = OPTIONS.iter().find(|(name, _)| *name == param.key) else {
            return Err(ConnInfoError::UnsupportedOption { key: param.key });
        };
        values.insert(key, (param.value, ValueSource::ConnectionString));
    }
    // The environment fills only options the string did not mention at
    // all; an explicitly empty value selects the built-in default.
    for &(key, var) in OPTIONS {
        if let (Some(var), false) = (var, values.contains_key(key)) {
            if let Some(value) = env(var) {
                values.insert(key, (value, ValueSource::Environment(var)));
            }
        }
    }
    build(&Settings { values }, env, defaults)
}

fn build(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
    defaults: &Defaults,
) -> Result<ConnInfo, ConnInfoError> {
    let mut config = Config::new();

    let hostaddrs = match settings.get("hostaddr") {
        Some((list, source)) => list
            .split(',')
            .map(|addr| {
                addr.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| invalid("hostaddr", source, "IP addresses separated by commas"))
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let default_host = || match &defaults.socket_dir {
        Some(dir) => dir.display().to_string(),
        None => DEFAULT_TCP_HOST.to_owned(),
    };
    let hosts: Vec<String> = match settings.get("host") {
        Some((list, _)) => list
            .split(',')
            .map(|host| match host {
                "" => default_host(),
                host => host.to_owned(),
            })
            .collect(),
        // libpq connects to hostaddr alone when no host name is given.
        None if !hostaddrs.is_empty() => hostaddrs.iter().map(IpAddr::to_string).collect(),
        None => vec![default_host()],
    };
    if !hostaddrs.is_empty() && hostaddrs.len() != hosts.len() {
        return Err(ConnInfoError::CountMismatch {
            key: "hostaddr",
            count: hostaddrs.len(),
            hosts: hosts.len(),
        });
    }
    let ports = match settings.get("port") {
        Some((list, source)) => list
            .split(',')
            .map(|port| parse_port(port, source))
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![DEFAULT_PORT],
    };
    if ports.len() != 1 && ports.len() != hosts.len() {
        return Err(ConnInfoError::CountMismatch {
            key: "port",
            count: ports.len(),
            hosts: hosts.len(),
        });
    }
    for host in &hosts {
        // A host starting with `/` becomes a Unix socket directory.
        config.host(host.as_str());
    }
    for addr in &hostaddrs {
        config.hostaddr(*addr);
    }
    for port in &ports {
        config.port(*port);
    }

    let user = match settings.get("user") {
        Some((user, _)) => user.to_owned(),
        None => defaults.os_user.clone().ok_or(ConnInfoError::UnknownUser)?,
    };
    let dbname = settings.get("dbname").map_or(user.as_str(), |(db, _)| db).to_owned();
    let password = match settings.get("password") {
        Some((password, _)) => Some(password.to_owned()),
        None => password_from_file(settings, env, &hosts, &ports, &dbname, &user),
    };
    config.user(user.as_str()).dbname(dbname.as_str());
    if let Some(password) = password {
        config.password(password);
    }

    let ssl_mode = match settings.get("sslmode") {
        Some((mode, source)) => mode.parse().map_err(|()| {
            invalid(
                "sslmode",
                source,
                "disable, allow, prefer, require, verify-ca or verify-full",
            )
        })?,
        None => SslMode::default(),
    };
    config.ssl_mode(ssl_mode.to_tokio());
    let path = |key| settings.get(key).map(|(path, _)| PathBuf::from(path));

    apply_session_options(&mut config, settings)?;
    apply_socket_options(&mut config, settings)?;

    Ok(ConnInfo {
        config,
        ssl_mode,
        ssl_root_cert: path("sslrootcert"),
        ssl_cert: path("sslcert"),
        ssl_key: path("sslkey"),
    })
}

/// Options that shape the session rather than the socket.
fn apply_session_options(config: &mut Config, settings: &Settings) -> Result<(), ConnInfoError> {
    if let Some((name, _)) = settings
        .get("application_name")
        .or_else(|| settings.get("fallback_application_name"))
    {
        config.application_name(name);
    }
    if let Some((options, _)) = settings.get("options") {
        config.options(options);
    }
    let attrs = [
        ("any", TargetSessionAttrs::Any),
        ("read-write", TargetSessionAttrs::ReadWrite),
        ("read-only", TargetSessionAttrs::ReadOnly),
    ];
    if let Some(attrs) = choice(settings, "target_session_attrs", &attrs, "any, read-write or read-only")? {
        config.target_session_attrs(attrs);
    }
    let bindings = [
        ("disable", ChannelBinding::Disable),
        ("prefer", ChannelBinding::Prefer),
        ("require", ChannelBinding::Require),
    ];
    if let Some(binding) = choice(settings, "channel_binding", &bindings, "disable, prefer or require")? {
        config.channel_binding(binding);
    }
    let negotiations = [
        ("postgres", SslNegotiation::Postgres),
        ("direct", SslNegotiation::Direct),
    ];
    if let Some(negotiation) = choice(settings, "sslnegotiation", &negotiations, "postgres or direct")? {
        config.ssl_negotiation(negotiation);
    }
    Ok(())
}

/// Timeouts, keepalives and host selection.
fn apply_socket_options(config: &mut Config, settings: &Settings) -> Result<(), ConnInfoError> {
    if let Some(secs) = integer(settings, "connect_timeout", "a whole number of seconds")? {
        // libpq: zero or negative means no limit, and 1 means 2.
        if let Ok(secs @ 1..) = u64::try_from(secs) {
            config.connect_timeout(Duration::from_secs(secs.max(MIN_CONNECT_TIMEOUT_SECS)));
        }
    }
    if let Some(on) = integer(settings, "keepalives", "1 or 0")? {
        config.keepalives(on != 0);
    }
    if let Some(Ok(secs @ 1..)) = integer(settings, "keepalives_idle", "a whole number of seconds")?.map(u64::try_from)
    {
        config.keepalives_idle(Duration::from_secs(secs));
    }
    if let Some(Ok(secs @ 1..)) =
        integer(settings, "keepalives_interval", "a whole number of seconds")?.map(u64::try_from)
    {
        config.keepalives_interval(Duration::from_secs(secs));
    }
    if let Some(Ok(count @ 1..)) = integer(settings, "keepalives_count", "a whole number")?.map(u32::try_from) {
        config.keepalives_retries(count);
    }
    // Milliseconds, as in libpq.
    if let Some(Ok(millis @ 1..)) =
        integer(settings, "tcp_user_timeout", "a whole number of milliseconds")?.map(u64::try_from)
    {
        config.tcp_user_timeout(Duration::from_millis(millis));
    }
    let modes = [
        ("disable", LoadBalanceHosts::Disable),
        ("random", LoadBalanceHosts::Random),
    ];
    if let Some(mode) = choice(settings, "load_balance_hosts", &modes, "disable or random")? {
        config.load_balance_hosts(mode);
    }
    Ok(())
}

/// A setting that takes one of a few words; `expected` lists them.
fn choice<T: Copy>(
    settings: &Settings,
    key: &'static str,
    choices: &[(&str, T)],
    expected: &'static str,
) -> Result<Option<T>, ConnInfoError> {
    settings
        .get(key)
        .map(|(value, source)| {
            choices
                .iter()
                .find(|(word, _)| *word == value)
                .map(|(_, choice)| *choice)
                .ok_or_else(|| invalid(key, source, expected))
        })
        .transpose()
}

fn integer(settings: &Settings, key: &'static str, expected: &'static str) -> Result<Option<i64>, ConnInfoError> {
    settings
        .get(key)
        .map(|(value, source)| value.trim().parse::<i64>().map_err(|_| invalid(key, source, expected)))
        .transpose()
}

fn parse_port(port: &str, source: ValueSource) -> Result<u16, ConnInfoError> {
    if port.is_empty() {
        return Ok(DEFAULT_PORT);
    }
    match port.trim().parse::<u16>() {
        Ok(port @ 1..) => Ok(port),
        _ => Err(invalid("port", source, "a port number from 1 to 65535")),
    }
}

/// The password file's entry for the first host (a `tokio_postgres::Config`
/// has one password for all hosts).
fn password_from_file(
    settings: &Settings,
    env: &dyn Fn(&str) -> Option<String>,
    hosts: &[String],
    ports: &[u16],
    dbname: &str,
    user: &str,
) -> Option<String> {
    let file = match settings.get("passfile") {
        Some((path, _)) => PathBuf::from(path),
        None => PathBuf::from(env("HOME")?).join(".pgpass"),
    };
    let host = hosts.first()?;
    // libpq matches socket connections against `localhost`.
    let host = if host.starts_with('/') { DEFAULT_TCP_HOST } else { host };
    pgpass::find_password(
        &file,
        &pgpass::Lookup {
            host,
            port: ports.first().copied().unwrap_or(DEFAULT_PORT),
            dbname,
            user,
        },
    )
}

/// The effective user's name, as libpq's `getpwuid(geteuid())`, without a
/// libc dependency: `/proc/self` is owned by the effective uid. Falls back
/// to `$USER` and `$LOGNAME`.
pub(super) fn os_user_name() -> Option<String> {
    let from_passwd = || {
        let uid = std::fs::metadata("/proc/self").ok()?.uid();
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?.parse::<u32>().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_owned())
        })
    };
    from_passwd()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|name| !name.is_empty())
}
