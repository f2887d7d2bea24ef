//! The command line. Every flag is also an environment variable (and a
//! `.env` file is read when present); the doc comments are the `--help`.

use std::fmt;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use storybook_store::PoolSettings;

mod limits;
mod tools;
pub use limits::Limits;
pub use tools::{GeneratorKind, ToolArgs};

#[derive(Debug, Parser)]
#[command(
    name = "storybook",
    version,
    about = "A lean server for a children's storybook app"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Serving options, used when no subcommand is given.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Create an admin account; the password is read from standard input.
    CreateAdmin(CreateAdminArgs),
    /// Fill the database with generated users and stories, for measuring.
    Seed(SeedArgs),
    /// Import users from a Django `dumpdata` file (they keep their
    /// passwords); running it again changes nothing.
    ImportDjango(ImportDjangoArgs),
    /// Write everything in the database as a backup (JSON Lines), from
    /// one consistent snapshot.
    Export(ExportArgs),
    /// Load a backup into an empty database (of either backend), in one
    /// transaction.
    Import(ImportArgs),
    /// Internal: prepares a photo for text recognition (standard input to
    /// grey PNG on standard output). The server runs it as a child process
    /// so that decoding a photo never happens in the server itself.
    #[command(hide = true)]
    PhotoPrepare(PhotoPrepareArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PhotoPrepareArgs {
    /// Largest photo, in pixels (checked from the header before decoding).
    #[arg(long)]
    pub max_pixels: u64,
    /// Largest photo, in bytes: more on standard input is refused.
    #[arg(long)]
    pub max_bytes: usize,
}

#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Stories to write (about 90% published).
    #[arg(long, default_value_t = 1_000)]
    pub stories: usize,

    /// Users to write them (every one has the password `password123`).
    #[arg(long, default_value_t = 50)]
    pub users: usize,

    /// Seed of the generator: the same seed makes the same library.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite:<file>` (created on first run) or
    /// `postgres://user:pass@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://storybook.db")]
    pub database_url: Secret,

    /// Most database connections in the pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 5)]
    pub database_pool_size: u32,

    /// Seconds before a pooled connection is replaced (hosted PostgreSQL
    /// drops long-lived connections).
    #[arg(long, env = "DATABASE_MAX_LIFETIME_SECS", default_value_t = 60)]
    pub database_max_lifetime_secs: u64,

    /// Seconds an unused pooled connection stays open.
    #[arg(long, env = "DATABASE_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub database_idle_timeout_secs: u64,

    /// Milliseconds a request waits for a pooled database connection
    /// before it is answered `503 busy` (with `Retry-After`).
    #[arg(long, env = "DATABASE_ACQUIRE_MS", default_value_t = 1000)]
    pub database_acquire_ms: u64,

    /// SQLite page cache per connection, in KiB.
    #[arg(long, env = "SQLITE_CACHE_KIB", default_value_t = 1024)]
    pub sqlite_cache_kib: u32,
}

impl DatabaseArgs {
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.database_pool_size,
            max_lifetime: Duration::from_secs(self.database_max_lifetime_secs),
            idle_timeout: Duration::from_secs(self.database_idle_timeout_secs),
            acquire_timeout: Duration::from_millis(self.database_acquire_ms.max(1)),
            sqlite_cache_kib: self.sqlite_cache_kib,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,

    /// Port to listen on (Render sets PORT).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub limits: Limits,

    /// Bearer token that `/metrics` requires; unset, `/metrics` is public.
    #[arg(long, env = "METRICS_TOKEN")]
    pub metrics_token: Option<Secret>,

    #[command(flatten)]
    pub tools: ToolArgs,

    #[cfg(feature = "realtime")]
    #[command(flatten)]
    pub realtime: RealtimeArgs,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Log filter, in `tracing` syntax (`info`, `storybook=debug,info`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Bounds of the realtime layer (`--features realtime`).
#[cfg(feature = "realtime")]
#[derive(Debug, Clone, Args)]
pub struct RealtimeArgs {
    /// Messages a channel keeps for recovery.
    #[arg(long, env = "WS_HISTORY_MESSAGES", default_value_t = 100)]
    pub ws_history_messages: usize,
    /// Seconds a channel keeps a message for recovery.
    #[arg(long, env = "WS_HISTORY_SECS", default_value_t = 60)]
    pub ws_history_secs: u64,
    /// Bytes a channel's history may hold.
    #[arg(long, env = "WS_HISTORY_BYTES", default_value_t = 256 * 1024)]
    pub ws_history_bytes: usize,
    /// Frames queued for one connection before it is closed as too slow (1013).
    #[arg(long, env = "WS_QUEUE_FRAMES", default_value_t = 256)]
    pub ws_queue_frames: usize,
    /// Bytes queued for one connection before it is closed as too slow (1013).
    #[arg(long, env = "WS_QUEUE_BYTES", default_value_t = 256 * 1024)]
    pub ws_queue_bytes: usize,
    /// Client frames (any op: subscribes and pings cost as publishes do) a
    /// second per connection (sustained).
    #[arg(long, env = "WS_PUBLISH_RATE", default_value_t = 30)]
    pub ws_publish_rate: u32,
    /// Client frames a connection may send in a burst.
    #[arg(long, env = "WS_PUBLISH_BURST", default_value_t = 60)]
    pub ws_publish_burst: u32,
    /// Largest `data` of a publish, in bytes.
    #[arg(long, env = "WS_MAX_DATA_BYTES", default_value_t = 16 * 1024)]
    pub ws_max_data_bytes: usize,
    /// Channels one connection may join.
    #[arg(long, env = "WS_MAX_CHANNELS", default_value_t = 32)]
    pub ws_max_channels: usize,
    /// Open connections per user.
    #[arg(long, env = "WS_MAX_PER_USER", default_value_t = 8)]
    pub ws_max_per_user: usize,
    /// Open connections per client address. A school is behind one
    /// address and connects at once (contract v1.6: at least 5,000).
    #[arg(long, env = "WS_MAX_PER_IP", default_value_t = 5000)]
    pub ws_max_per_ip: usize,
    /// Open connections in all.
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub ws_max_connections: usize,
    /// Milliseconds between two `presence` frames of a channel: joins and
    /// leaves in between go out together, as net changes (contract v1.6).
    #[arg(long, env = "WS_PRESENCE_INTERVAL_MS", default_value_t = 1000)]
    pub ws_presence_interval_ms: u64,
    /// Most users a `subscribed` frame lists; a channel with more sends
    /// counts instead of lists in its `presence` frames.
    #[arg(long, env = "WS_PRESENCE_LIST", default_value_t = 100)]
    pub ws_presence_list: usize,
    /// Seconds between server pings.
    #[arg(long, env = "WS_PING_SECS", default_value_t = 15)]
    pub ws_ping_secs: u64,
    /// Seconds without a pong (or any frame) before a connection is closed.
    #[arg(long, env = "WS_IDLE_SECS", default_value_t = 45)]
    pub ws_idle_secs: u64,

    /// Seconds between two checks of an open socket's token, on top of the
    /// events that close it at once (logout, password change, expiry seen
    /// here): what a lost event or an expiry costs at most. Rounded to
    /// whole pings.
    #[arg(long, env = "WS_TOKEN_RECHECK_SECS", default_value_t = 60)]
    pub ws_token_recheck_secs: u64,
    /// Socket read buffer per connection, in bytes (tungstenite's default of
    /// 128 KiB would cost a gigabyte at 10,000 sockets; frames are written
    /// out as they come, with no write buffer to speak of).
    #[arg(long, env = "WS_BUFFER_BYTES", default_value_t = 512)]
    pub ws_buffer_bytes: usize,
    /// Share channels, offsets, history and presence with other server
    /// processes through this Redis (`redis://host:port/db`); unset, the
    /// broker is in memory and this process is alone.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key and pub/sub channel this server uses.
    #[arg(long, env = "REDIS_PREFIX", default_value = "storybook")]
    pub redis_prefix: String,
    /// Seconds a process's presence entries live in Redis without renewal
    /// (renewed every third of it): a crashed process's users leave
    /// within this plus one renewal.
    #[arg(long, env = "REDIS_PRESENCE_TTL_SECS", default_value_t = 45)]
    pub redis_presence_ttl_secs: u64,
    /// Milliseconds one Redis command may take before the broker treats
    /// Redis as away and serves this process's sockets alone.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 2000)]
    pub redis_timeout_ms: u64,
    /// Channel subscriptions waiting for the Redis pub/sub connection; a
    /// subscribe beyond them is served by this process alone.
    #[arg(long, env = "REDIS_PENDING_SUBSCRIPTIONS", default_value_t = 1024)]
    pub redis_pending_subscriptions: usize,
}

#[cfg(feature = "realtime")]
impl Default for RealtimeArgs {
    fn default() -> Self {
        ServeArgs::parse_from(["storybook"]).realtime
    }
}

#[derive(Debug, Clone, Args)]
pub struct ImportDjangoArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// What `python manage.py dumpdata <model>` wrote: a JSON array.
    pub file: std::path::PathBuf,

    /// The user model's `app.label`, as the dump names it (a custom user
    /// model: `accounts.user`).
    #[arg(long, default_value = "auth.user")]
    pub model: String,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Where to write the backup (standard output when not given). The
    /// file appears only once the backup is whole.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// A file `storybook export` wrote.
    pub file: std::path::PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct CreateAdminArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// The admin's username.
    #[arg(long)]
    pub username: String,

    /// The admin's email address.
    #[arg(long)]
    pub email: String,

    /// Read the password from standard input (the only way: never a flag,
    /// which would show in `ps`).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A string that never shows in `Debug` output or logs (database URLs carry
/// passwords).
#[derive(Clone)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` is this secret, in time that does not depend on
    /// where they differ: both are hashed to 32 bytes, and every byte of
    /// the digests is compared.
    pub fn matches(&self, candidate: &str) -> bool {
        use blake2::{Blake2b, Digest, digest::consts::U32};
        let expected = Blake2b::<U32>::digest(self.0.as_bytes());
        let sent = Blake2b::<U32>::digest(candidate.as_bytes());
        expected
            .iter()
            .zip(sent.iter())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl ServeArgs {
    /// The settings with every default, for tests and embedding.
    pub fn defaults() -> Self {
        Self::parse_from(["storybook"])
    }
}

#[derive(Debug, Parser)]
struct ServeOnly {
    #[command(flatten)]
    serve: ServeArgs,
}

impl ServeArgs {
    /// Parses `args` as clap would, but with every setting's environment
    /// variable ignored: the defaults are the defaults, whatever the
    /// process's environment holds.
    fn parse_from<I: IntoIterator<Item = &'static str>>(args: I) -> Self {
        use clap::{CommandFactory, FromArgMatches};
        let command = ServeOnly::command().mut_args(|arg| arg.env(None));
        let matches = command.get_matches_from(args);
        match ServeOnly::from_arg_matches(&matches) {
            Ok(only) => only.serve,
            Err(error) => error.exit(),
        }
    }
}

#[cfg(test)]
mod secret_tests {
    use super::Secret;

    #[test]
    fn a_secret_matches_only_itself() {
        let secret = Secret("s3cret-token".into());
        assert!(secret.matches("s3cret-token"));
        for other in ["", "s3cret-toke", "s3cret-token2", "S3cret-token", "x"] {
            assert!(!secret.matches(other), "{other}");
        }
    }
}
