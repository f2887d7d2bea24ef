//! The command line. Every flag is also an environment variable (and a
//! `.env` file is read when present); the doc comments are the `--help`.

use std::fmt;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use storybook_store::PoolSettings;

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
            sqlite_cache_kib: self.sqlite_cache_kib,
            ..PoolSettings::default()
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

/// The story generator and text recognition.
#[derive(Debug, Clone, Args)]
pub struct ToolArgs {
    /// Which story generator `POST /api/stories/generate` uses.
    #[arg(long, env = "STORY_GENERATOR", value_enum, default_value_t = GeneratorKind::Builtin)]
    pub story_generator: GeneratorKind,

    /// Base URL of an OpenAI-compatible API (`/chat/completions` is appended).
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,

    /// API key for the OpenAI-compatible API.
    #[arg(long, env = "OPENAI_API_KEY")]
    pub openai_api_key: Option<Secret>,

    /// Model name sent to the OpenAI-compatible API.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,

    /// Seconds the remote model may take before the answer is `503`.
    #[arg(long, env = "OPENAI_TIMEOUT_SECS", default_value_t = 20)]
    pub openai_timeout_secs: u64,

    /// Most bytes of the remote model's answer that are read.
    #[arg(long, env = "OPENAI_MAX_RESPONSE_BYTES", default_value_t = 256 * 1024)]
    pub openai_max_response_bytes: usize,

    /// The curl command that makes the requests to the OpenAI-compatible API.
    #[arg(long, env = "CURL_COMMAND", default_value = "curl")]
    pub curl_command: String,

    /// Requests to the OpenAI-compatible API at once (each is a curl process
    /// of a few MB); more wait within the time-out.
    #[arg(long, env = "OPENAI_CONCURRENCY", default_value_t = 4)]
    pub openai_concurrency: usize,

    /// The Tesseract command used for photo stories.
    #[arg(long, env = "TESSERACT_COMMAND", default_value = "tesseract")]
    pub tesseract_command: String,

    /// Tesseract language(s), as for `tesseract -l`.
    #[arg(long, env = "OCR_LANGUAGE", default_value = "eng")]
    pub ocr_language: String,

    /// Largest photo, in pixels (checked from the header before decoding).
    #[arg(long, env = "OCR_MAX_PIXELS", default_value_t = 25_000_000)]
    pub ocr_max_pixels: u64,

    /// Largest photo upload, in bytes.
    #[arg(long, env = "OCR_MAX_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub ocr_max_bytes: usize,

    /// Seconds one recognition may take.
    #[arg(long, env = "OCR_TIMEOUT_SECS", default_value_t = 30)]
    pub ocr_timeout_secs: u64,

    /// Recognitions at once (each runs a Tesseract process of ~40 MB).
    #[arg(long, env = "OCR_CONCURRENCY", default_value_t = 1)]
    pub ocr_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeneratorKind {
    Builtin,
    Openai,
}

impl Default for ToolArgs {
    fn default() -> Self {
        ServeArgs::parse_from(["storybook"]).tools
    }
}

impl ToolArgs {
    pub fn ocr_settings(&self) -> storybook_ocr::OcrSettings {
        // The preparation is this very binary, run as a child.
        let this_binary = std::env::current_exe().unwrap_or_else(|_| "storybook".into());
        storybook_ocr::OcrSettings {
            command: self.tesseract_command.clone().into(),
            prepare_command: vec![this_binary.into(), "photo-prepare".into()],
            language: self.ocr_language.clone(),
            max_pixels: self.ocr_max_pixels,
            max_bytes: self.ocr_max_bytes,
            timeout: Duration::from_secs(self.ocr_timeout_secs.max(1)),
            concurrency: self.ocr_concurrency.max(1),
        }
    }

    /// The configured generator.
    pub fn generator(&self) -> Result<std::sync::Arc<dyn storybook_storygen::Generator>, String> {
        Ok(match self.story_generator {
            GeneratorKind::Builtin => std::sync::Arc::new(storybook_storygen::Builtin),
            GeneratorKind::Openai => std::sync::Arc::new(
                storybook_storygen::OpenAi::new(storybook_storygen::OpenAiSettings {
                    base_url: self.openai_base_url.clone(),
                    api_key: self
                        .openai_api_key
                        .as_ref()
                        .map(|k| k.expose().to_owned())
                        .unwrap_or_default(),
                    model: self.openai_model.clone(),
                    timeout: Duration::from_secs(self.openai_timeout_secs.max(1)),
                    max_response_bytes: self.openai_max_response_bytes,
                    curl_command: self.curl_command.clone().into(),
                    concurrency: self.openai_concurrency.max(1),
                })
                .map_err(|e| e.to_string())?,
            ),
        })
    }
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
    /// Open connections per client address.
    #[arg(long, env = "WS_MAX_PER_IP", default_value_t = 1000)]
    pub ws_max_per_ip: usize,
    /// Open connections in all.
    #[arg(long, env = "WS_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub ws_max_connections: usize,
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

/// Every bound the server keeps, each with its default.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Bytes of memory all requests in flight may reserve for their bodies
    /// (a JSON body is weighed at 48 times its length, what its parsed tree
    /// may take); a request that does not fit is `503 busy` at once.
    #[arg(long, env = "REQUEST_MEMORY_BUDGET", default_value_t = 96 * 1024 * 1024)]
    pub request_memory_budget: usize,

    /// Seconds a streamed answer (a drawing's strokes) waits for a client
    /// that stopped reading before it is dropped.
    #[arg(long, env = "RESPONSE_STALL_SECS", default_value_t = 10)]
    pub response_stall_secs: u64,

    /// Seconds a request may take before it is answered `503 timeout`.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Requests handled at once; more wait their turn.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,

    /// Password hashes computed at once (each takes `ARGON2_MEMORY_KIB`).
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", default_value_t = 1)]
    pub password_hash_concurrency: usize,

    /// Registrations, logins and password changes that may wait for a
    /// hash; more are answered `503 busy` at once.
    #[arg(long, env = "PASSWORD_HASH_QUEUE", default_value_t = 32)]
    pub password_hash_queue: usize,

    /// Argon2id memory cost in KiB (OWASP: 7168 KiB with 5 passes is
    /// equivalent to 19 MiB with 2).
    #[arg(long, env = "ARGON2_MEMORY_KIB", default_value_t = 7168)]
    pub argon2_memory_kib: u32,

    /// Argon2id passes.
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 5)]
    pub argon2_iterations: u32,

    /// Failed logins for one account within the window before it is locked.
    #[arg(long, env = "LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Seconds of the failed-login window, and of the lock after it.
    #[arg(long, env = "LOGIN_LOCK_SECS", default_value_t = 60)]
    pub login_lock_secs: u64,

    /// Accounts whose failed logins are remembered at once; the oldest
    /// entries are dropped past it.
    #[arg(long, env = "LOGIN_TRACKED_ACCOUNTS", default_value_t = 10_000)]
    pub login_tracked_accounts: usize,

    /// Proxies whose `X-Forwarded-For` is believed (comma-separated CIDRs);
    /// the client is then the right-most forwarded address that is not one
    /// of them. Empty: the TCP peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::client_addr::TrustedProxies,

    /// Registrations, and logins, each client address may attempt a
    /// minute (each its own count; a family behind one address never
    /// meets it).
    #[arg(long, env = "AUTH_ATTEMPTS_PER_MINUTE", default_value_t = 20)]
    pub auth_attempts_per_minute: u32,

    /// Client addresses whose attempts are remembered at once; when that
    /// many are remembered and none has expired, new addresses are told
    /// to wait (429) until some do.
    #[arg(long, env = "AUTH_TRACKED_ADDRESSES", default_value_t = 10_000)]
    pub auth_tracked_addresses: usize,

    /// Stories each user may generate an hour (`POST /api/stories/generate`;
    /// with a remote model each one is a paid request). Past it, `429`.
    #[arg(long, env = "GENERATIONS_PER_USER_PER_HOUR", default_value_t = 30)]
    pub generations_per_user_per_hour: u32,

    /// Users whose generations are counted at once; when that many are
    /// counting, others are told to wait (429) rather than grow the table.
    #[arg(long, env = "GENERATION_TRACKED_USERS", default_value_t = 10_000)]
    pub generation_tracked_users: usize,

    /// Days a token works after it was issued; an expired token is `401`
    /// like a revoked one, and the housekeeping deletes it.
    #[arg(long, env = "TOKEN_TTL_DAYS", default_value_t = 30)]
    pub token_ttl_days: u32,

    /// Tokens whose user is kept in memory, so a signed-in request does
    /// not start with a database statement; 0 keeps none.
    #[arg(long, env = "TOKEN_CACHE_ENTRIES", default_value_t = 1000)]
    pub token_cache_entries: usize,

    /// Seconds a kept user is served: the bound on what no invalidation
    /// covers (a token's expiry; another lean process's write).
    #[arg(long, env = "TOKEN_CACHE_SECS", default_value_t = 10)]
    pub token_cache_secs: u64,

    /// Users whose liked stories are kept in memory, so a signed-in
    /// library page needs no database statement; 0 keeps none.
    #[arg(long, env = "LIKES_CACHE_USERS", default_value_t = 1000)]
    pub likes_cache_users: usize,

    /// Seconds a kept set of likes is served: the bound on a like written
    /// by another process.
    #[arg(long, env = "LIKES_CACHE_SECS", default_value_t = 10)]
    pub likes_cache_secs: u64,

    /// Most entries in the read cache (story details, first library pages).
    #[arg(long, env = "CACHE_MAX_ENTRIES", default_value_t = 500)]
    pub cache_max_entries: usize,

    /// Most bytes (estimated) the read cache holds.
    #[arg(long, env = "CACHE_MAX_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub cache_max_bytes: usize,

    /// Seconds a cached read may be served.
    #[arg(long, env = "CACHE_TTL_SECS", default_value_t = 30)]
    pub cache_ttl_secs: u64,

    /// Drawings rendered to PNG at once (each holds one output image, at
    /// most 4 MiB); more wait their turn.
    #[arg(long, env = "RENDER_CONCURRENCY", default_value_t = 2)]
    pub render_concurrency: usize,

    /// Renders that may wait for one of those; more are `503 busy` at once.
    #[arg(long, env = "RENDER_QUEUE", default_value_t = 8)]
    pub render_queue: usize,

    /// CPU milliseconds one render may draw for: the API accepts drawings
    /// (10,000 strokes of 2,000 points) that take minutes to draw, so a
    /// render stops there and its image, marked `Render-Incomplete`, shows
    /// the drawing up to that point. Real drawings take milliseconds.
    #[arg(long, env = "RENDER_CPU_MS", default_value_t = 3000)]
    pub render_cpu_ms: u64,

    /// Bytes of rendered PNGs kept by ETag, so a repeated render is a
    /// lookup; 0 keeps none.
    #[arg(long, env = "RENDER_CACHE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub render_cache_bytes: usize,

    /// Full-text searches run at once, so that search queues behind
    /// itself and not in front of every other request.
    #[arg(long, env = "SEARCH_CONCURRENCY", default_value_t = 2)]
    pub search_concurrency: usize,

    /// Searches that may wait for one of those; more are `503 busy` at once.
    #[arg(long, env = "SEARCH_QUEUE", default_value_t = 16)]
    pub search_queue: usize,

    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 20)]
    pub shutdown_grace_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        // The defaults clap would give with no flags and no environment.
        ServeArgs::parse_from(["storybook"]).limits
    }
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
    fn parse_from<I: IntoIterator<Item = &'static str>>(args: I) -> Self {
        ServeOnly::parse_from(args).serve
    }
}
