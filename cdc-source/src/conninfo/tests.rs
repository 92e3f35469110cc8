use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::{ChannelBinding, LoadBalanceHosts, TargetSessionAttrs};

use super::resolve::{os_user_name, parse_with, Defaults};
use super::*;

const SECRET: &str = "hunter2-SECRET";

/// A fixed machine: no socket directory, OS user `osuser`.
fn tcp_machine() -> Defaults {
    Defaults {
        socket_dir: None,
        os_user: Some("osuser".to_owned()),
    }
}

fn parse_env(s: &str, env: &[(&str, &str)]) -> Result<ConnInfo, ConnInfoError> {
    let env: HashMap<String, String> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    parse_with(s, &|name| env.get(name).cloned(), &tcp_machine())
}

fn parse(s: &str) -> ConnInfo {
    parse_env(s, &[]).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn tcp_hosts(info: &ConnInfo) -> Vec<String> {
    info.config().get_hosts().iter().map(host_text).collect()
}

#[test]
fn key_value_string() {
    let info = parse(
        "host=db.example port=5433 user=alice password='p w' dbname=shop \
         sslmode=require application_name=asof connect_timeout=10",
    );
    let config = info.config();
    assert_eq!(tcp_hosts(&info), vec!["db.example"]);
    assert_eq!(config.get_ports(), &[5433]);
    assert_eq!(info.user(), "alice");
    assert_eq!(config.get_password(), Some(&b"p w"[..]));
    assert_eq!(info.dbname(), "shop");
    assert_eq!(info.ssl_mode(), SslMode::Require);
    assert_eq!(config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    assert_eq!(config.get_application_name(), Some("asof"));
    assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(10)));
}

#[test]
fn uri_string() {
    for scheme in ["postgres", "postgresql"] {
        let info = parse(&format!(
            "{scheme}://alice:p%40ss@db.example:5433/shop?sslmode=verify-full&sslrootcert=/etc/ca.pem"
        ));
        assert_eq!(tcp_hosts(&info), vec!["db.example"]);
        assert_eq!(info.config().get_ports(), &[5433]);
        assert_eq!(info.user(), "alice");
        assert_eq!(info.config().get_password(), Some(&b"p@ss"[..]));
        assert_eq!(info.dbname(), "shop");
        assert_eq!(info.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(info.ssl_root_cert(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(info.config().get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    }
}

#[test]
fn quoted_values_and_escapes() {
    let info = parse(r"user='o\'brien' dbname='my db' password='a\\b' application_name=x\ y");
    assert_eq!(info.user(), "o'brien");
    assert_eq!(info.dbname(), "my db");
    assert_eq!(info.config().get_password(), Some(&br"a\b"[..]));
    assert_eq!(info.config().get_application_name(), Some("x y"));
}

#[test]
fn defaults_follow_libpq() {
    let info = parse("");
    assert_eq!(tcp_hosts(&info), vec!["localhost"]);
    assert_eq!(info.config().get_ports(), &[5432]);
    assert_eq!(info.user(), "osuser");
    assert_eq!(info.dbname(), "osuser");
    assert!(!info.has_password());
    assert_eq!(info.ssl_mode(), SslMode::Prefer);

    let socket_machine = Defaults {
        socket_dir: Some(PathBuf::from("/var/run/postgresql")),
        os_user: None,
    };
    let info = parse_with("user=bob", &|_| None, &socket_machine).expect("parse");
    assert_eq!(
        info.config().get_hosts(),
        &[Host::Unix(PathBuf::from("/var/run/postgresql"))]
    );
    assert_eq!(info.dbname(), "bob");
    assert_eq!(
        parse_with("", &|_| None, &socket_machine),
        Err(ConnInfoError::UnknownUser)
    );
}

#[test]
fn environment_fills_what_the_string_leaves_out() {
    let env = [
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", SECRET),
        ("PGDATABASE", "envdb"),
        ("PGSSLMODE", "disable"),
        ("PGAPPNAME", "envapp"),
        ("PGCONNECT_TIMEOUT", "7"),
    ];
    let info = parse_env("", &env).expect("parse");
    assert_eq!(tcp_hosts(&info), vec!["envhost"]);
    assert_eq!(info.config().get_ports(), &[6000]);
    assert_eq!(info.user(), "envuser");
    assert_eq!(info.config().get_password(), Some(SECRET.as_bytes()));
    assert_eq!(info.dbname(), "envdb");
    assert_eq!(info.ssl_mode(), SslMode::Disable);
    assert_eq!(info.config().get_application_name(), Some("envapp"));
    assert_eq!(info.config().get_connect_timeout(), Some(&Duration::from_secs(7)));

    // The string wins over the environment.
    let info = parse_env("postgres://u@h:1234/d?sslmode=prefer", &env).expect("parse");
    assert_eq!(tcp_hosts(&info), vec!["h"]);
    assert_eq!(info.config().get_ports(), &[1234]);
    assert_eq!(info.user(), "u");
    assert_eq!(info.dbname(), "d");
    assert_eq!(info.ssl_mode(), SslMode::Prefer);
    // ...but what it does not mention still comes from the environment.
    assert!(info.has_password());
}

#[test]
fn empty_value_selects_the_default_not_the_environment() {
    let info = parse_env("port='' host=''", &[("PGPORT", "6000"), ("PGHOST", "envhost")]).expect("parse");
    assert_eq!(info.config().get_ports(), &[5432]);
    assert_eq!(tcp_hosts(&info), vec!["localhost"]);
}

#[test]
fn dbname_defaults_to_the_user_from_any_source() {
    assert_eq!(parse("user=carol").dbname(), "carol");
    let info = parse_env("", &[("PGUSER", "dave")]).expect("parse");
    assert_eq!(info.dbname(), "dave");
}

#[test]
fn invalid_environment_values_name_the_variable() {
    let err = parse_env("", &[("PGPORT", "many")]).expect_err("bad port");
    assert_eq!(
        err,
        ConnInfoError::InvalidValue {
            key: "port",
            source_of_value: ValueSource::Environment("PGPORT"),
            expected: "a port number from 1 to 65535",
        }
    );
    assert!(err.to_string().contains("environment variable PGPORT"), "{err}");
}

#[test]
fn ssl_modes() {
    for (text, mode, tokio) in [
        ("disable", SslMode::Disable, tokio_postgres::config::SslMode::Disable),
        ("allow", SslMode::Allow, tokio_postgres::config::SslMode::Prefer),
        ("prefer", SslMode::Prefer, tokio_postgres::config::SslMode::Prefer),
        ("require", SslMode::Require, tokio_postgres::config::SslMode::Require),
        ("verify-ca", SslMode::VerifyCa, tokio_postgres::config::SslMode::Require),
        (
            "verify-full",
            SslMode::VerifyFull,
            tokio_postgres::config::SslMode::Require,
        ),
    ] {
        let info = parse(&format!("sslmode={text} sslcert=/c.pem sslkey=/k.pem"));
        assert_eq!(info.ssl_mode(), mode);
        assert_eq!(mode.as_str(), text);
        assert_eq!(info.config().get_ssl_mode(), tokio);
        assert_eq!(info.ssl_cert(), Some(Path::new("/c.pem")));
        assert_eq!(info.ssl_key(), Some(Path::new("/k.pem")));
    }
    assert!(matches!(
        parse_env("sslmode=verify", &[]),
        Err(ConnInfoError::InvalidValue { key: "sslmode", .. })
    ));
}

#[test]
fn multiple_hosts_and_ports() {
    let info = parse("host=a,b,/tmp port=1,,3");
    assert_eq!(
        info.config().get_hosts(),
        &[
            Host::Tcp("a".to_owned()),
            Host::Tcp("b".to_owned()),
            Host::Unix(PathBuf::from("/tmp"))
        ]
    );
    assert_eq!(info.config().get_ports(), &[1, 5432, 3]);
    // One port serves all hosts.
    assert_eq!(parse("host=a,b port=7").config().get_ports(), &[7]);
    assert_eq!(
        parse_env("host=a,b port=1,2,3", &[]),
        Err(ConnInfoError::CountMismatch {
            key: "port",
            count: 3,
            hosts: 2
        })
    );
    let info = parse("postgresql://h1:5433,h2/db");
    assert_eq!(tcp_hosts(&info), vec!["h1", "h2"]);
    assert_eq!(info.config().get_ports(), &[5433, 5432]);
}

#[test]
fn hostaddr_alone_is_the_host() {
    let info = parse("hostaddr=127.0.0.1");
    assert_eq!(tcp_hosts(&info), vec!["127.0.0.1"]);
    assert_eq!(
        info.config().get_hostaddrs(),
        &["127.0.0.1".parse::<IpAddr>().expect("ip")]
    );
    assert!(matches!(
        parse_env("host=a,b hostaddr=127.0.0.1", &[]),
        Err(ConnInfoError::CountMismatch { key: "hostaddr", .. })
    ));
}

#[test]
fn numeric_options_follow_libpq() {
    let timeout = |s: &str| parse(s).config().get_connect_timeout().copied();
    assert_eq!(timeout("connect_timeout=1"), Some(Duration::from_secs(2)));
    assert_eq!(timeout("connect_timeout=0"), None);
    assert_eq!(timeout("connect_timeout=-5"), None);
    let info = parse("keepalives=0 keepalives_idle=30 keepalives_interval=5 keepalives_count=3 tcp_user_timeout=1500");
    let config = info.config();
    assert!(!config.get_keepalives());
    assert_eq!(config.get_keepalives_idle(), Duration::from_secs(30));
    assert_eq!(config.get_keepalives_interval(), Some(Duration::from_secs(5)));
    assert_eq!(config.get_keepalives_retries(), Some(3));
    assert_eq!(config.get_tcp_user_timeout(), Some(&Duration::from_millis(1500)));
    assert!(matches!(
        parse_env("connect_timeout=soon", &[]),
        Err(ConnInfoError::InvalidValue {
            key: "connect_timeout",
            ..
        })
    ));
    assert!(matches!(
        parse_env("port=0", &[]),
        Err(ConnInfoError::InvalidValue { key: "port", .. })
    ));
    assert!(matches!(
        parse_env("port=65536", &[]),
        Err(ConnInfoError::InvalidValue { key: "port", .. })
    ));
}

#[test]
fn session_options() {
    let info = parse(
        "options='-c search_path=app' target_session_attrs=read-write \
         channel_binding=require fallback_application_name=fb load_balance_hosts=random",
    );
    let config = info.config();
    assert_eq!(config.get_options(), Some("-c search_path=app"));
    assert_eq!(config.get_target_session_attrs(), TargetSessionAttrs::ReadWrite);
    assert_eq!(config.get_channel_binding(), ChannelBinding::Require);
    assert_eq!(config.get_application_name(), Some("fb"));
    assert_eq!(config.get_load_balance_hosts(), LoadBalanceHosts::Random);
    assert_eq!(
        parse("application_name=a fallback_application_name=fb")
            .config()
            .get_application_name(),
        Some("a")
    );
}

#[test]
fn unknown_options_are_rejected() {
    assert_eq!(
        parse_env("host=h service=prod", &[]),
        Err(ConnInfoError::UnsupportedOption {
            key: "service".to_owned()
        })
    );
    assert_eq!(
        parse_env("postgres://h/db?replication=database", &[]),
        Err(ConnInfoError::UnsupportedOption {
            key: "replication".to_owned()
        })
    );
}

#[test]
fn display_is_redacted() {
    let info = parse(&format!("host=db port=5432 user=alice password={SECRET} dbname=shop"));
    assert_eq!(
        info.to_string(),
        "host=db port=5432 user=alice dbname=shop password=********"
    );
    let info = parse("host=127.0.0.1 user=alice dbname=shop");
    assert_eq!(info.to_string(), "host=127.0.0.1 port=5432 user=alice dbname=shop");
    let info = parse("host=/tmp user='a b' dbname=x sslmode=verify-full application_name=asof");
    assert_eq!(
        info.to_string(),
        "host=/tmp port=5432 user='a b' dbname=x sslmode=verify-full application_name=asof"
    );
}

#[test]
fn display_reparses_to_the_same_settings_without_the_password() {
    let original = parse(&format!(
        r"host=a,b port=1,2 user='o\'b' dbname='my db' password={SECRET} sslmode=require application_name=x"
    ));
    let shown = original.to_string();
    let reparsed = parse(&shown.replace(" password=********", ""));
    assert_eq!(reparsed.config().get_hosts(), original.config().get_hosts());
    assert_eq!(reparsed.config().get_ports(), original.config().get_ports());
    assert_eq!(reparsed.user(), original.user());
    assert_eq!(reparsed.dbname(), original.dbname());
    assert_eq!(reparsed.ssl_mode(), original.ssl_mode());
    assert!(!reparsed.has_password());
}

#[test]
fn debug_is_redacted() {
    for s in [format!("password={SECRET}"), format!("postgres://u:{SECRET}@h/db")] {
        let info = parse(&s);
        let debug = format!("{info:?} {info:#?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("********"), "{debug}");
    }
}

#[test]
fn errors_never_contain_the_input() {
    let bad = [
        format!("password={SECRET} port=x{SECRET}"),
        format!("password={SECRET} {SECRET}"),
        format!("password='{SECRET}"),
        format!("postgres://u:{SECRET}@h:{SECRET}/db"),
        format!("postgres://u:pa/{SECRET}@h/db"),
        format!("postgres://u:{SECRET}%zz@h/db"),
        format!("postgres://h/db?sslmode={SECRET}"),
        format!("postgres://h/db?{SECRET}"),
        format!("sslmode={SECRET}"),
        format!("host=a hostaddr={SECRET}"),
        format!("connect_timeout={SECRET}"),
    ];
    for s in bad {
        let err = parse_env(&s, &[]).expect_err(&s);
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("hunter2"), "{s} -> {text}");
        }
    }
}

#[test]
fn password_file_supplies_a_missing_password() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("pgpass");
    std::fs::write(&file, "db:5432:shop:alice:from-file\nlocalhost:*:*:sock:socket-pw\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let file_str = file.display().to_string();

    let info = parse_env("host=db user=alice dbname=shop", &[("PGPASSFILE", &file_str)]).expect("parse");
    assert_eq!(info.config().get_password(), Some(&b"from-file"[..]));

    // An explicit password wins; no match leaves none.
    let info = parse_env(
        "host=db user=alice dbname=shop password=given",
        &[("PGPASSFILE", &file_str)],
    )
    .expect("parse");
    assert_eq!(info.config().get_password(), Some(&b"given"[..]));
    let info = parse_env(&format!("host=other user=alice passfile={file_str}"), &[]).expect("parse");
    assert!(!info.has_password());

    // Socket connections match `localhost`.
    let info = parse_env(&format!("host=/tmp user=sock passfile={file_str}"), &[]).expect("parse");
    assert_eq!(info.config().get_password(), Some(&b"socket-pw"[..]));

    // ~/.pgpass through HOME.
    std::fs::rename(&file, dir.path().join(".pgpass")).expect("rename");
    let home = dir.path().display().to_string();
    let info = parse_env("host=db user=alice dbname=shop", &[("HOME", &home)]).expect("parse");
    assert!(info.has_password());
}

#[test]
fn from_str_and_public_entry_points() {
    let info: ConnInfo = "host=h user=u dbname=d".parse().expect("parse");
    assert_eq!(info.dbname(), "d");
    let info = parse_conninfo_with_env("host=h", |name| (name == "PGUSER").then(|| "e".to_owned())).expect("parse");
    assert_eq!(info.user(), "e");
    assert_eq!(info.dbname(), "e");
}

#[test]
fn os_user_is_found() {
    assert!(os_user_name().is_some());
}
