//! The command line as clap parses it: every value arrives typed (see
//! `values.rs`), so a command only checks what needs the store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cdc_source::conninfo::ConnInfo;
use cdc_source::Until;
use changelog::TableName;
use clap::{Args, Parser, Subcommand};
use materializer::When;

use crate::output::Format;
use crate::values;

macro_rules! when_note {
    () => {
        "WHEN is an RFC 3339 timestamp (2026-11-20T09:00:00Z, '2026-11-20 09:00:00.123+09'; no offset means \
UTC), an LSN (lsn:0/16B3748 or 0/16B3748), 'now', or a relative time (-10m, -2h, -1d). A timestamp \
resolves to the last commit at or before it; every answer states the commit it used on stderr."
    };
}

/// asof: ask what a PostgreSQL table looked like at any past moment.
///
/// `asof tail` keeps every committed change of a database as a durable,
/// timestamped log; the other commands fold that log into the state of a
/// table at any moment, the history of a row, or the difference between
/// two moments. Data goes to stdout; the resolved moment, notes and
/// progress go to stderr.
#[derive(Parser, Debug)]
#[command(name = "asof", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The store directory.
    #[arg(
        long,
        global = true,
        env = "ASOF_STORE",
        default_value = "./asof-data",
        value_name = "DIR"
    )]
    pub store: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Capture a database's changes into the store.
    #[command(after_long_help = TAIL_EXAMPLES)]
    Tail(TailArgs),
    /// Rebuild the store from a Kafka topic that `asof tail --kafka` publishes, and keep it current.
    #[command(after_long_help = FOLLOW_EXAMPLES)]
    Follow(FollowArgs),
    /// Print a table as of a moment.
    #[command(after_long_help = SNAPSHOT_EXAMPLES)]
    Snapshot(SnapshotArgs),
    /// Print one row, by primary key, as of a moment.
    #[command(after_long_help = GET_EXAMPLES)]
    Get(GetArgs),
    /// Print every version of one row.
    #[command(after_long_help = HISTORY_EXAMPLES)]
    History(HistoryArgs),
    /// Print the rows that differ between two moments.
    #[command(after_long_help = DIFF_EXAMPLES)]
    Diff(DiffArgs),
    /// Print the raw change log as Debezium-style JSON lines.
    #[command(after_long_help = CHANGES_EXAMPLES)]
    Changes(ChangesArgs),
    /// List the tables as of a moment.
    #[command(after_long_help = TABLES_EXAMPLES)]
    Tables(TablesArgs),
    /// Show how far the log reaches, the source, the horizon and sizes.
    #[command(after_long_help = STATUS_EXAMPLES)]
    Status(StatusArgs),
    /// Drop history before a moment (answers from then on are unchanged).
    #[command(after_long_help = COMPACT_EXAMPLES)]
    Compact(CompactArgs),
    /// Write base images of tables, so reads at past moments do not wade through each row's history.
    #[command(after_long_help = IMAGE_EXAMPLES)]
    Image(ImageArgs),
    /// Check that the store holds exactly what the source holds, at one exact LSN.
    #[command(after_long_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
    /// Run the showcase on a private PostgreSQL (nothing is left running).
    #[command(after_long_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Remove what `asof tail` installed on a database (slot, publication, DDL triggers).
    #[command(after_long_help = UNINSTALL_EXAMPLES)]
    Uninstall(UninstallArgs),
    /// Run a SQL query over every table as of a moment.
    #[command(after_long_help = SQL_EXAMPLES)]
    Sql(SqlArgs),
    /// Write tables as of a moment, or their whole history, as Parquet files.
    #[command(after_long_help = EXPORT_EXAMPLES)]
    Export(ExportArgs),
    /// Answer the same SQL over the PostgreSQL wire protocol (psql, psycopg, JDBC).
    #[command(after_long_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
}

/// The source database and the names asof uses there.
#[derive(Args, Debug)]
pub struct SourceArgs {
    /// libpq connection string or URI; PG* environment variables fill the gaps.
    #[arg(value_name = "CONNINFO", value_parser = values::conninfo)]
    pub conninfo: ConnInfo,
    /// Replication slot (`tail` creates it when missing).
    #[arg(long, default_value = "asof")]
    pub slot: String,
    /// Publication (`tail` creates it when missing; `uninstall` drops it only if asof created it).
    #[arg(long, default_value = "asof")]
    pub publication: String,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Capture only these tables (schema.name, comma separated) when creating the publication.
    #[arg(long, value_delimiter = ',', value_name = "TABLE,...", value_parser = values::table)]
    pub tables: Vec<TableName>,
    /// Do not copy existing rows; history starts empty at the slot's creation.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Stop at 'caught-up' (everything committed before the start is stored) or at an LSN.
    #[arg(long, value_name = "caught-up|LSN", value_parser = values::until)]
    pub until: Option<Until>,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (lag, throughput, store size, reconnects).
    #[arg(long, value_name = "HOST:PORT", value_parser = values::listen_address)]
    pub metrics: Option<SocketAddr>,
    /// Read a backlog larger than this through Postgres's SQL decoding interface, in chunks, before streaming (faster for a slot far behind); 'off' always streams.
    #[arg(long, value_name = "SIZE|off", default_value = "off", value_parser = values::size_or_off)]
    pub sql_catch_up_above: values::SizeOrOff,
    /// Receive a large transaction only once it has committed, as one piece (the server spills it to disk and decodes it after the COMMIT), instead of in blocks while it runs.
    #[arg(long)]
    pub no_streaming: bool,
    /// Connections the initial copy reads on at once: a large table in ranges of its pages, several tables side by side (default: one per two cores, up to 4).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub copy_connections: Option<u16>,
    #[command(flatten)]
    pub kafka: PublishArgs,
}

/// Publishing the log to Kafka.
#[derive(Args, Debug)]
pub struct PublishArgs {
    /// Publish every transaction to this Kafka cluster before acknowledging it; the topic becomes the log of record.
    #[arg(long, value_name = "HOST:PORT,...", requires = "topic", value_parser = values::brokers)]
    pub kafka: Option<String>,
    /// The topic to publish to (created when missing: one partition, kept forever, replicated).
    #[arg(long, value_name = "TOPIC", requires = "kafka", value_parser = values::topic)]
    pub topic: Option<String>,
    /// Also write each row change to a per-table topic PREFIX.schema.table (Debezium's naming, keyed by primary key).
    #[arg(long, value_name = "PREFIX", requires = "kafka", value_parser = values::topic)]
    pub fan_out: Option<String>,
    #[command(flatten)]
    pub timeout: KafkaTimeoutArg,
}

#[derive(Args, Debug)]
pub struct KafkaTimeoutArg {
    /// How long Kafka may fail without progress before giving up.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = values::seconds)]
    pub kafka_timeout: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct FollowArgs {
    /// Kafka bootstrap servers.
    #[arg(value_name = "BROKERS", value_parser = values::brokers)]
    pub brokers: String,
    /// The topic `asof tail --kafka` publishes to.
    #[arg(value_name = "TOPIC", value_parser = values::topic)]
    pub topic: String,
    /// Stop at 'caught-up': once everything committed to the topic before the start is applied.
    #[arg(long, value_name = "caught-up", value_parser = values::follow_until)]
    pub until: Option<kafka_relay::FollowUntil>,
    #[command(flatten)]
    pub timeout: KafkaTimeoutArg,
}

#[derive(Args, Debug)]
pub struct AtArg {
    /// The moment (default: now). See WHEN below.
    #[arg(long, value_name = "WHEN", default_value = "now", allow_hyphen_values = true, value_parser = values::when)]
    pub at: When,
}

#[derive(Args, Debug)]
pub struct FormatArg {
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Args, Debug)]
pub struct SnapshotArgs {
    /// Table name (schema.name; public when no schema is given).
    #[arg(value_parser = values::table)]
    pub table: TableName,
    #[command(flatten)]
    pub at: AtArg,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    /// Table name.
    #[arg(value_parser = values::table)]
    pub table: TableName,
    /// Primary-key value(s) in Postgres text form, in key-column order.
    #[arg(required = true, num_args = 1.., allow_negative_numbers = true)]
    pub key: Vec<String>,
    #[command(flatten)]
    pub at: AtArg,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Table name.
    #[arg(value_parser = values::table)]
    pub table: TableName,
    /// Primary-key value(s), in key-column order.
    #[arg(required = true, num_args = 1.., allow_negative_numbers = true)]
    pub key: Vec<String>,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// Table name.
    #[arg(value_parser = values::table)]
    pub table: TableName,
    /// The earlier moment.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true, value_parser = values::when)]
    pub from: When,
    /// The later moment.
    #[arg(long, value_name = "WHEN", default_value = "now", allow_hyphen_values = true, value_parser = values::when)]
    pub to: When,
    #[command(flatten)]
    pub format: FormatArg,
}

#[derive(Args, Debug)]
pub struct ChangesArgs {
    /// Start after this moment (default: the beginning).
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true, value_parser = values::when)]
    pub from: Option<When>,
    /// End at this moment, inclusive (default: now).
    #[arg(long, value_name = "WHEN", default_value = "now", allow_hyphen_values = true, value_parser = values::when)]
    pub to: When,
    /// Only these tables (repeatable).
    #[arg(long = "table", value_name = "TABLE", value_parser = values::table)]
    pub tables: Vec<TableName>,
    /// Output format (only jsonl).
    #[arg(long, value_parser = ["jsonl"], default_value = "jsonl")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct TablesArgs {
    #[command(flatten)]
    pub at: AtArg,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Also query the source database for lag and slot health.
    #[arg(long, value_name = "CONNINFO", value_parser = values::conninfo)]
    pub source: Option<ConnInfo>,
}

#[derive(Args, Debug)]
pub struct CompactArgs {
    /// The new retention horizon: history before it is folded away.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true, value_parser = values::when)]
    pub before: When,
}

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// The moment to write the images at (default: the latest captured commit).
    #[arg(long, value_name = "WHEN", default_value = "now", allow_hyphen_values = true, value_parser = values::when, conflicts_with = "every")]
    pub at: When,
    /// Instead, write images through the whole log, one every N changes (counted over every table),
    /// after the last image already written, skipping a table unchanged since its last image. A read
    /// between two images costs about the table's rows plus N versions.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub every: Option<u64>,
    /// Only these tables (schema.name, comma separated; default: every table at each moment).
    #[arg(long, value_delimiter = ',', value_name = "TABLE,...", value_parser = values::table)]
    pub tables: Vec<TableName>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// libpq connection string or URI of the source; PG* environment variables fill the gaps.
    #[arg(value_name = "CONNINFO", value_parser = values::conninfo)]
    pub conninfo: ConnInfo,
    /// Compare only these tables (schema.name, comma separated; default: every table in the store).
    #[arg(long, value_delimiter = ',', value_name = "TABLE,...", value_parser = values::table)]
    pub tables: Vec<TableName>,
    /// How long to wait for the store to reach the source's position (e.g. 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = values::duration)]
    pub timeout: Duration,
}

/// Output formats of `asof sql`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum SqlFormat {
    /// Aligned columns for reading (the default on a terminal).
    Table,
    /// CSV with a header line (the default otherwise).
    Csv,
    /// One JSON object per row.
    Jsonl,
    /// A Parquet file (needs --output).
    Parquet,
}

#[derive(Args, Debug)]
pub struct TypingArg {
    /// Read every column as Postgres's text instead of a typed Arrow column.
    #[arg(long)]
    pub text: bool,
}

#[derive(Args, Debug)]
pub struct SqlArgs {
    /// The query (DataFusion's SQL dialect).
    #[arg(value_name = "QUERY")]
    pub query: String,
    #[command(flatten)]
    pub at: AtArg,
    /// Output format (default: table on a terminal, csv otherwise).
    #[arg(long, value_enum)]
    pub format: Option<SqlFormat>,
    /// Write the rows to FILE (written whole, then renamed into place) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub typing: TypingArg,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The address to listen on (port 0 picks a free port, printed on stderr).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6543")]
    pub listen: String,
    /// Require this user name and a password (SCRAM-SHA-256).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// The password, from a file (its first line); else from ASOF_SERVE_PASSWORD.
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
    /// Let anyone connect without a password even on a non-loopback address
    /// (on a loopback address no password is needed unless --user is given).
    #[arg(long, conflicts_with = "user")]
    pub trust: bool,
    /// TLS certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub typing: TypingArg,
}

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("moment").required(true).args(["at", "history"]))]
pub struct ExportArgs {
    /// The moment to export. See WHEN below.
    #[arg(long, value_name = "WHEN", allow_hyphen_values = true, value_parser = values::when)]
    pub at: Option<When>,
    /// Export each table's whole history as SCD type-2 rows instead.
    #[arg(long)]
    pub history: bool,
    /// The directory to write into (created when missing; must be empty).
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Only these tables (schema.name, comma separated; default: all).
    #[arg(long, value_delimiter = ',', value_name = "TABLE,...", value_parser = values::table)]
    pub tables: Vec<TableName>,
    /// Write into a directory that is not empty (files of the same name are replaced).
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub typing: TypingArg,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo's store in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub keep_store: Option<PathBuf>,
    /// Run the log on a private 3-broker Kafka cluster: publish, lose a broker, follow.
    #[arg(long)]
    pub kafka: bool,
}

#[derive(Args, Debug)]
pub struct UninstallArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// List what would be dropped, drop nothing.
    #[arg(long)]
    pub dry_run: bool,
}

const TAIL_EXAMPLES: &str = "Examples:
  asof tail 'postgres://capture@db.internal/shop' --until caught-up
  asof tail 'host=db.internal dbname=shop user=capture' --tables public.orders,public.customers
  PGPASSWORD=... asof --store /var/lib/asof tail 'host=db dbname=shop'
  asof tail 'host=db.internal dbname=shop user=capture' --metrics 127.0.0.1:9187
  asof tail 'host=db.internal dbname=shop' --kafka k1:9092,k2:9092 --topic shop.asof

The role needs REPLICATION (or superuser) and SELECT on the captured tables; the server needs
wal_level=logical. Ctrl-C or SIGTERM finishes the transaction in hand, acknowledges it and exits 0.
With --kafka each transaction is acknowledged only once the topic holds it; the store is the
publisher's working copy. A newer publisher of the same topic fences this one (exit code 3).";

const FOLLOW_EXAMPLES: &str = "Examples:
  asof --store ./replica follow k1:9092,k2:9092 shop.asof
  asof --store ./replica follow 127.0.0.1:9092 shop.asof --until caught-up

Reads the topic (read_committed) into the store and answers every query exactly as a store
captured from Postgres would. The offset is kept in the store with the data: a killed follower
resumes where it stopped. Read commands work beside a running follower.";

const SNAPSHOT_EXAMPLES: &str = concat!(
    "Examples:
  asof snapshot orders --at 2026-11-20T09:00:00Z
  asof snapshot shop.orders --at -2h --format csv > orders.csv
  asof snapshot orders --at lsn:0/16B3748 --format jsonl

  wrong: asof snapshot orders --at '20/11/2026 9am'
  right: asof snapshot orders --at '2026-11-20 09:00:00+01'",
    "\n\n",
    when_note!()
);

const GET_EXAMPLES: &str = concat!(
    "Examples:
  asof get orders 42 --at 2026-11-20T09:00:00Z
  asof get order_lines 42 3 --at -1d     (composite key: values in key-column order)

A table without a primary key under REPLICA IDENTITY FULL is keyed by all its columns (give
every value) and may hold identical rows: the row prints once per copy.",
    "\n\n",
    when_note!()
);

const HISTORY_EXAMPLES: &str = "Examples:
  asof history orders 42
  asof history orders 42 --format jsonl

A table without a primary key under REPLICA IDENTITY FULL may hold identical rows: a copies
column gives the number after each commit; insert means copies were added, delete that some
were removed, update that as many remain.";

const DIFF_EXAMPLES: &str = concat!(
    "Examples:
  asof diff orders --from 2026-11-20T09:00:00Z --to 2026-11-20T10:00:00Z
  asof diff orders --from -1h --format jsonl

Identical rows (a table without a primary key under REPLICA IDENTITY FULL) print one line per
copy inserted or deleted.",
    "\n\n",
    when_note!()
);

const CHANGES_EXAMPLES: &str = concat!(
    "Examples:
  asof changes --from -10m
  asof changes --table orders --from lsn:0/16B3748 --to now",
    "\n\n",
    when_note!()
);

const TABLES_EXAMPLES: &str = concat!(
    "Examples:
  asof tables
  asof tables --at 2026-11-01",
    "\n\n",
    "A partitioned table published through its root (publish_via_partition_root, as asof's own
publication does) is one table with the rows of all its partitions. Postgres does not send a
TRUNCATE of a single partition through the root: the rows it removes stay in the root's answers.",
    "\n\n",
    when_note!()
);

const STATUS_EXAMPLES: &str = "Examples:
  asof status
  asof status --source 'host=db dbname=shop user=capture'";

const COMPACT_EXAMPLES: &str = concat!(
    "Examples:
  asof compact --before -30d
  asof compact --before 2026-10-01T00:00:00Z

Answers at or after the new horizon do not change; earlier moments are refused from then on.
Stop `asof tail` first: compaction needs the store's write lock.",
    "\n\n",
    when_note!()
);

const IMAGE_EXAMPLES: &str = concat!(
    "Examples:
  asof image
  asof image --at -1d --tables public.orders
  asof image --every 1000000

A read at a past moment walks the newest image at or before it and the log since, instead of the
history of every row changed after it; without images such a read costs more the more often rows
changed. Images take about the space of the table each; `compact` drops those before its horizon.
Stop `asof tail` first: writing images needs the store's write lock.",
    "\n\n",
    when_note!()
);

const UNINSTALL_EXAMPLES: &str = "Examples:
  asof uninstall 'host=db.internal dbname=shop user=postgres' --dry-run
  asof uninstall 'postgres://postgres@db.internal/shop'
  asof uninstall 'host=db dbname=shop' --slot asof_reports --publication asof_reports

Drops the replication slot, the publication if asof created it (never one that existed before),
and the DDL capture's event triggers and functions. Refused while `asof tail` streams from the
slot. The store is not touched; once the slot is gone its history cannot continue, so a later
`asof tail` needs a new store.";

const VERIFY_EXAMPLES: &str = "Examples:
  asof verify 'host=db.internal dbname=shop user=capture'
  asof verify 'postgres://capture@db.internal/shop' --tables public.orders --timeout 5m

Reads the source at the position of a temporary replication slot (the role needs REPLICATION),
waits until the store has passed it (a running `asof tail` gets it there; verify never writes
the store), and compares each table's rows there. Exits 0 only when every table is equal;
otherwise prints one line per differing key on stdout and exits 1.";

const SERVE_EXAMPLES: &str = "Examples:
  asof serve
  psql -h 127.0.0.1 -p 6543 -c \"SET asof.at = '-1h'\" -c 'SELECT count(*) FROM orders'
  asof serve --listen 0.0.0.0:6543 --user reader --tls-cert cert.pem --tls-key key.pem
  asof serve --user reader --password-file /run/secrets/asof

A session reads at 'now' (the latest captured state, following the log)
until SET asof.at = 'WHEN' (a timestamp, lsn:0/16B3748, -10m, now: the
WHEN forms of the other commands); SHOW asof.at tells the cut it resolved
to, RESET asof.at returns to now. The server is read-only.

With --user, the password comes from --password-file or ASOF_SERVE_PASSWORD.
Without --user, only a loopback address is served unless --trust is given.
";

const SQL_EXAMPLES: &str = concat!(
    "Examples:
  asof sql \"SELECT status, count(*) FROM orders GROUP BY status\" --at -1h
  asof sql \"SELECT name, o.id FROM orders o JOIN customers c ON c.id = customer_id\" --at -2h
  asof sql \"SELECT * FROM shop.orders\" --at lsn:0/16B3748 --format parquet --output o.parquet
  asof sql \"SELECT id FROM asof_at('orders', 'now') EXCEPT SELECT id FROM orders\" --at -1d

  wrong: asof sql \"SELECT * FROM orders\" --at '20/11/2026 9am'
  right: asof sql \"SELECT * FROM orders\" --at '2026-11-20 09:00:00+01'

Every table captured at the moment is a table of the query (schema.name; public ones also by
bare name), all read at that one commit. asof_at('schema.table', 'WHEN') reads a table at
another moment. Columns are typed (int, float, numeric(p,s), bool, bytea, date, timestamp[tz],
arrays of them; anything else is Postgres's text); a value a typed column cannot hold
(infinity, NaN in numeric(p,s), a multi-dimensional array) fails the query and is named; --text
reads every column as text.",
    "\n\n",
    when_note!()
);

const EXPORT_EXAMPLES: &str = concat!(
    "Examples:
  asof export --at 2026-11-20T09:00:00Z --to ./lake/2026-11-20
  asof export --at -1h --to ./lake/hourly --tables public.orders,shop.orders
  asof export --history --to ./lake/history

  wrong: asof export --at yesterday --to ./lake/daily
  right: asof export --at -1d --to ./lake/daily

--at writes one Parquet file per table, all at one commit; --history writes each table's whole
history as SCD type-2 rows (the row's columns, asof_valid_from_lsn, asof_valid_to_lsn (null
while current), asof_valid_from_time, asof_valid_to_time, asof_op). manifest.json states the
commit, each table's columns with their Postgres and Arrow types, and its key; it is written
last, so a directory with a manifest holds a whole export.",
    "\n\n",
    when_note!()
);

const DEMO_EXAMPLES: &str = "Examples:
  asof demo
  asof demo --keep-store ./demo-data     (then: asof --store ./demo-data snapshot orders)
  asof demo --kafka                      (the log on a private 3-broker Kafka)";
