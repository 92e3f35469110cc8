//! What the fixture writes into `postgresql.conf` and `pg_hba.conf`.

use std::io::Write;
use std::path::Path;

use crate::FixtureError;

/// How TCP clients authenticate. Unix-socket clients are always trusted:
/// the socket lives in the cluster's private directory, and the fixture's
/// own helpers connect through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TcpAuth {
    Trust,
    ScramSha256,
}

/// Everything `postgresql.conf` gets beyond initdb's defaults.
pub(crate) struct ServerConf<'a> {
    pub(crate) socket_dir: &'a Path,
    pub(crate) durable: bool,
    /// Appended last, so they override the fixture's own choices.
    pub(crate) extra: &'a [(String, String)],
}

/// Rejects names that could not be a parameter; values are quoted on write
/// so they need no check here.
pub(crate) fn validate_setting_name(name: &str) -> Result<(), FixtureError> {
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if valid {
        Ok(())
    } else {
        Err(FixtureError::InvalidSetting { name: name.to_owned() })
    }
}

/// Appends the fixture's settings to `postgresql.conf`. The port is not
/// among them: it is passed on the command line because it can change
/// between start attempts.
pub(crate) fn append_server_conf(data_dir: &Path, conf: &ServerConf<'_>) -> Result<(), FixtureError> {
    let path = data_dir.join("postgresql.conf");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
        file.write_all(server_conf_text(conf).as_bytes())
    };
    write().map_err(|e| FixtureError::io(format!("writing {}", path.display()), e))
}

fn server_conf_text(conf: &ServerConf<'_>) -> String {
    let fixed: [(&str, String); 11] = [
        ("listen_addresses", "127.0.0.1".to_owned()),
        ("unix_socket_directories", conf.socket_dir.display().to_string()),
        ("wal_level", "logical".to_owned()),
        ("max_replication_slots", "20".to_owned()),
        ("max_wal_senders", "20".to_owned()),
        // Tests and benchmarks throw the data away; fsync only costs time.
        ("fsync", if conf.durable { "on" } else { "off" }.to_owned()),
        ("shared_buffers", "128MB".to_owned()),
        ("max_connections", "100".to_owned()),
        ("log_min_messages", "warning".to_owned()),
        // The server's stderr goes to the log file the fixture opened.
        ("logging_collector", "off".to_owned()),
        ("password_encryption", "scram-sha-256".to_owned()),
    ];
    let mut text = String::from("\n# Added by pg-fixture (a throwaway test cluster).\n");
    let extra = conf.extra.iter().map(|(k, v)| (k.as_str(), v.clone()));
    for (name, value) in fixed.into_iter().chain(extra) {
        text.push_str(&format!("{name} = {}\n", quote(&value)));
    }
    text
}

/// Quotes a value for postgresql.conf: every parameter type accepts a
/// single-quoted value, inside which `'` and `\` must be escaped.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// Replaces `pg_hba.conf`: trust on the socket, `tcp` for 127.0.0.1 and ::1,
/// for ordinary and replication connections alike.
pub(crate) fn write_hba(data_dir: &Path, tcp: TcpAuth) -> Result<(), FixtureError> {
    let method = match tcp {
        TcpAuth::Trust => "trust",
        TcpAuth::ScramSha256 => "scram-sha-256",
    };
    let text = format!(
        "# Written by pg-fixture.\n\
         # TYPE  DATABASE     USER  ADDRESS       METHOD\n\
         local   all          all                 trust\n\
         local   replication  all                 trust\n\
         host    all          all   127.0.0.1/32  {method}\n\
         host    all          all   ::1/128       {method}\n\
         host    replication  all   127.0.0.1/32  {method}\n\
         host    replication  all   ::1/128       {method}\n"
    );
    let path = data_dir.join("pg_hba.conf");
    std::fs::write(&path, text).map_err(|e| FixtureError::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_and_escaped() {
        assert_eq!(quote("1GB"), "'1GB'");
        assert_eq!(quote(r"it's a \ path"), r"'it''s a \\ path'");
    }

    #[test]
    fn extra_settings_come_last() {
        let extra = [("shared_buffers".to_owned(), "32MB".to_owned())];
        let text = server_conf_text(&ServerConf {
            socket_dir: Path::new("/tmp/x"),
            durable: false,
            extra: &extra,
        });
        let fixed = text.find("shared_buffers = '128MB'").expect("fixed");
        let user = text.find("shared_buffers = '32MB'").expect("extra");
        assert!(fixed < user);
        assert!(text.contains("fsync = 'off'"));
        assert!(text.contains("unix_socket_directories = '/tmp/x'"));
    }

    #[test]
    fn setting_names_are_checked() {
        assert!(validate_setting_name("max_wal_size").is_ok());
        assert!(validate_setting_name("auto_explain.log_min_duration").is_ok());
        assert!(validate_setting_name("").is_err());
        assert!(validate_setting_name("a = b\nfsync").is_err());
    }
}
