//! `Limits`: every bound the server keeps, each a flag and an environment
//! variable with its default.

use clap::Args;

use super::ServeArgs;

/// Every bound the server keeps, each with its default.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Largest JSON request body, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// Bytes of memory all requests in flight may reserve for their bodies
    /// (twice each byte as it arrives, then what its parser may build: 16
    /// times a JSON body's length, 8 times a drawing's strokes); a request
    /// that does not fit is `503 busy` at once.
    #[arg(long, env = "REQUEST_MEMORY_BUDGET", default_value_t = 96 * 1024 * 1024)]
    pub request_memory_budget: usize,

    /// Seconds a streamed answer (a drawing's strokes) waits for a client
    /// that stopped reading before it is dropped.
    #[arg(long, env = "RESPONSE_STALL_SECS", default_value_t = 10)]
    pub response_stall_secs: u64,

    /// Seconds a request may take before it is answered `503 timeout`.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Requests handled at once; more are answered `503 busy` at once
    /// (`/healthz` and `/readyz` are never counted).
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,

    /// Password hashes computed at once (each takes `ARGON2_MEMORY_KIB`).
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY", default_value_t = 1)]
    pub password_hash_concurrency: usize,

    /// Registrations, logins and password changes that may wait for a
    /// hash; more are answered `503 busy` at once, and so is one whose turn
    /// would come after half of `REQUEST_TIMEOUT_SECS` by the expected
    /// cost of the work ahead of it (a Django hash's rounds, the recent
    /// Argon2id times).
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

    /// Origins whose browser pages may call `/api/` (comma-separated,
    /// exact: `https://app.example.org,http://localhost:5173`). Empty: no
    /// CORS header is ever sent. `*` or a malformed origin is refused at
    /// start-up. A `/ws` handshake from a page is accepted from these and
    /// from the server's own origin.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "")]
    pub cors_allowed_origins: crate::cors::AllowedOrigins,

    /// Proxies whose `X-Forwarded-For` is believed (comma-separated CIDRs);
    /// the client is then the right-most forwarded address that is not one
    /// of them. Empty: the TCP peer is the client.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::client_addr::TrustedProxies,

    /// Registrations each client address may attempt a minute, and failed
    /// sign-ins (and reset codes) it may make a minute: successful
    /// sign-ins do not count (contract v1.6: a school is one address).
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

    /// Hours a password reset code works (`POST /api/auth/reset`).
    #[arg(long, env = "RESET_CODE_HOURS", default_value_t = 24)]
    pub reset_code_hours: u32,

    /// Reports one user may file in 24 hours; beyond, `429` with
    /// `Retry-After` until the oldest of them is a day old.
    #[arg(long, env = "REPORTS_PER_USER_PER_DAY", default_value_t = 20)]
    pub reports_per_user_per_day: u32,

    /// Live tokens a user may hold: a sign-in past it revokes the oldest
    /// (and closes its sockets with 1008, as a logout does).
    #[arg(long, env = "TOKENS_PER_USER", default_value_t = 20)]
    pub tokens_per_user: u32,

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

    /// Signed-in story reads acknowledged and waiting to be written (in
    /// one transaction, every second); past it a read is written at once.
    #[arg(long, env = "READS_PENDING", default_value_t = 10_000)]
    pub reads_pending: usize,

    /// Milliseconds between two writes of the pending reads (they are
    /// also written before an export and when the server stops).
    #[arg(long, env = "READS_WRITE_MS", default_value_t = 1000)]
    pub reads_write_ms: u64,

    /// Stories remembered as read, over all recent readers, so that a
    /// reader's next stories cost no database work; forgotten all at once
    /// when full.
    #[arg(long, env = "READS_KNOWN", default_value_t = 20_000)]
    pub reads_known: usize,

    /// Most stories remembered for one reader; one who has read more is
    /// looked up story by story.
    #[arg(long, env = "READS_USER_LIST", default_value_t = 1_000)]
    pub reads_user_list: usize,

    /// Most entries in the read cache (story details, first library pages).
    #[arg(long, env = "CACHE_MAX_ENTRIES", default_value_t = 2000)]
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
