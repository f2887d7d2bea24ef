//! Passwords, tokens and login throttling: the security parts of accounts,
//! kept apart from the handlers that use them.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

// tokio's clock: the same as std's, except that tests can pause it.
use tokio::time::Instant;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use blake2::{Blake2b, Digest, digest::consts::U32};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;
use crate::error::ApiError;
use queue::{HashQueue, Work};

/// Argon2id hashing, run off the async threads, a bounded number at once
/// with a bounded queue (`503 busy` past it): each hash takes
/// `argon2_memory_kib` of memory and tens of milliseconds.
pub struct Passwords {
    params: Params,
    queue: HashQueue,
    /// A hash of no one's password, made once with our parameters: what a
    /// login for an unknown or deactivated account is checked against, so
    /// it takes the time a wrong password takes and says nothing of who
    /// exists.
    dummy_hash: tokio::sync::OnceCell<String>,
    /// Password checks made (for the tests that count them instead of
    /// timing logins).
    checks: AtomicU64,
}

impl Passwords {
    pub fn new(limits: &Limits) -> Self {
        let params = Params::new(limits.argon2_memory_kib, limits.argon2_iterations, 1, None)
            .unwrap_or_default();
        Self {
            params,
            queue: HashQueue::new(limits),
            dummy_hash: tokio::sync::OnceCell::new(),
            checks: AtomicU64::new(0),
        }
    }

    /// Checks `password` against a hash of no one's password, through the
    /// same queue and with the same cost as a real check; always `false`.
    pub async fn verify_nobody(&self, password: String) -> Result<bool, ApiError> {
        let dummy = self
            .dummy_hash
            .get_or_try_init(|| self.hash("not anyone's password".into()))
            .await?
            .clone();
        self.check(password, dummy, Work::Argon2).await?;
        Ok(false)
    }

    /// Password checks made so far.
    pub fn checks_made(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    fn hasher(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// A PHC string (`$argon2id$v=19$…`) with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let turn = self.queue.enter(Work::Argon2).await?;
        let params = self.params.clone();
        // The turn goes with the work: its slot is free only once the hash
        // is done.
        tokio::task::spawn_blocking(move || {
            let hashed = Self::hasher(params)
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(ApiError::internal);
            turn.finish();
            hashed
        })
        .await
        .map_err(ApiError::internal)?
    }

    /// Whether `password` matches a stored hash: this server's Argon2id,
    /// or one of Django's ([`django`]: PBKDF2-SHA256, PBKDF2-SHA1, Argon2).
    /// Every check is one slot of the same queue, off the async workers; a
    /// hash that cannot sign in (`!…`, an unknown format, too many rounds)
    /// is checked as no one's, so it costs what a wrong password costs.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        let work = match django::StoredHash::parse(&hash) {
            django::StoredHash::Unusable => return self.verify_nobody(password).await,
            django::StoredHash::Pbkdf2 { rounds, .. } => Work::Pbkdf2 { rounds },
            django::StoredHash::Argon2(_) => Work::Argon2,
        };
        self.check(password, hash, work).await
    }

    /// Checks `password` against `hash` in a turn of the queue sized by
    /// `work` (what the stored hash asks), off the async workers.
    async fn check(&self, password: String, hash: String, work: Work) -> Result<bool, ApiError> {
        let turn = self.queue.enter(work).await?;
        self.checks.fetch_add(1, Ordering::Relaxed);
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let matched = match django::StoredHash::parse(&hash) {
                // The stored string carries its own parameters; ours are unused.
                django::StoredHash::Argon2(phc) => Self::hasher(params)
                    .verify_password(password.as_bytes(), phc)
                    .is_ok(),
                django::StoredHash::Pbkdf2 {
                    hash,
                    rounds,
                    salt,
                    digest,
                } => django::pbkdf2_matches(&password, hash, rounds, salt, &digest),
                django::StoredHash::Unusable => false,
            };
            turn.finish();
            matched
        })
        .await
        .map_err(ApiError::internal)
    }
}

/// The oldest issue time of a token that still works: tokens expire
/// `ttl_days` after they were issued.
pub fn tokens_issued_after(ttl_days: u32) -> storybook_store::Timestamp {
    const DAY_MILLIS: i64 = 24 * 60 * 60 * 1000;
    let now = storybook_store::Timestamp::now().millis();
    storybook_store::Timestamp(now.saturating_sub(i64::from(ttl_days) * DAY_MILLIS))
}

/// How long until a token issued at `issued` expires (zero if it has).
pub fn token_expires_in(issued: storybook_store::Timestamp, ttl_days: u32) -> std::time::Duration {
    let left = issued
        .millis()
        .saturating_sub(tokens_issued_after(ttl_days).millis());
    std::time::Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

/// A new bearer token: 256 random bits, hex-encoded.
pub fn new_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(hex(&bytes))
}

/// The letters a reset code is made of: 32, none that looks like another
/// (no 0/O, no 1/I), so a code read aloud or copied by hand survives.
const RESET_CODE_ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

/// A password reset code: 12 letters of a 32-letter alphabet, 60 bits.
pub fn new_reset_code() -> Result<String, ApiError> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    Ok(bytes
        .iter()
        .map(|b| char::from(RESET_CODE_ALPHABET[usize::from(b % 32)]))
        .collect())
}

/// A reset code as typed: spaces and dashes dropped (a code may be shown
/// in groups), letters upper-cased.
pub fn typed_reset_code(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// What the database stores for a token: its BLAKE2b-256 hash. Tokens are
/// random, so a fast unsalted hash is enough to make a leaked table useless.
pub fn hash_token(token: &str) -> String {
    let digest = Blake2b::<U32>::digest(token.as_bytes());
    hex(&digest)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Login attempts per account. An attempt counts from the moment it
/// starts ([`LoginThrottle::begin`]), so however many arrive at once, at
/// most `max_failures` passwords of one account are checked in a window;
/// the attempt that reaches the count locks the account for `window`
/// (attempts during the lock do not extend it), and a correct password
/// clears it ([`LoginThrottle::succeeded`]).
pub struct LoginThrottle {
    accounts: DashMap<String, Attempts>,
    max_failures: usize,
    window: Duration,
    max_tracked: usize,
    /// When the table was last found full of live entries, until when
    /// none of them expires: new accounts are refused until then without
    /// scanning the table again.
    full_until: std::sync::Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Attempts {
    /// When the attempts inside the window started (fewer than `max_failures`).
    started: Vec<Instant>,
    locked_until: Option<Instant>,
}

impl Attempts {
    /// When there is nothing left to remember.
    fn expires(&self, window: Duration) -> Instant {
        let last_attempt = self.started.iter().max().map(|at| *at + window);
        match (self.locked_until, last_attempt) {
            (Some(lock), Some(attempt)) => lock.max(attempt),
            (lock, attempt) => lock.or(attempt).unwrap_or_else(Instant::now),
        }
    }

    /// Whether anything is left to remember at `now`.
    fn is_live(&self, now: Instant, window: Duration) -> bool {
        self.locked_until.is_some_and(|until| until > now)
            || self
                .started
                .iter()
                .any(|at| now.duration_since(*at) < window)
    }
}

impl LoginThrottle {
    pub fn new(limits: &Limits) -> Self {
        Self {
            accounts: DashMap::new(),
            max_failures: limits.login_max_failures.max(1) as usize,
            window: Duration::from_secs(limits.login_lock_secs),
            max_tracked: limits.login_tracked_accounts.max(1),
            full_until: std::sync::Mutex::new(None),
        }
    }

    /// Reserves an attempt on `account`: `RateLimited` while it is locked,
    /// `busy` when the table is full of live entries and this account is
    /// not in it (failures are never forgotten to make room: flooding other
    /// names must not reset a victim's count), else the attempt is counted
    /// now, before its password is checked.
    pub fn begin(&self, account: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        if !self.accounts.contains_key(account) && self.accounts.len() >= self.max_tracked {
            self.make_room(now)?;
        }
        let mut attempts = self.accounts.entry(account.to_owned()).or_default();
        if let Some(until) = attempts.locked_until {
            if until > now {
                return Err(rate_limited_for(until - now));
            }
            attempts.locked_until = None;
        }
        let window = self.window;
        attempts
            .started
            .retain(|at| now.duration_since(*at) < window);
        attempts.started.push(now);
        if attempts.started.len() >= self.max_failures {
            attempts.locked_until = Some(now + window);
            attempts.started.clear();
        }
        Ok(())
    }

    /// The password was right: the account's count and lock are cleared.
    pub fn succeeded(&self, account: &str) {
        self.accounts.remove(account);
    }

    /// Drops what has expired (run by the housekeeping, so a burst of
    /// names does not stay until the map fills) and gives back the table.
    pub fn purge_expired(&self) {
        let now = Instant::now();
        let window = self.window;
        self.accounts.retain(|_, a| a.is_live(now, window));
        self.accounts.shrink_to_fit();
    }

    /// Drops entries with nothing left to remember; if the table is still
    /// full, refuses (`busy`) until its first entry expires.
    fn make_room(&self, now: Instant) -> Result<(), ApiError> {
        let mut full_until = self.full_until.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = *full_until
            && until > now
        {
            return Err(login_table_full(until - now));
        }
        let window = self.window;
        self.accounts.retain(|_, a| a.is_live(now, window));
        if self.accounts.len() < self.max_tracked {
            *full_until = None;
            return Ok(());
        }
        let first_expiry = self
            .accounts
            .iter()
            .map(|entry| entry.value().expires(window))
            .min()
            .unwrap_or(now + window);
        *full_until = Some(first_expiry);
        Err(login_table_full(
            first_expiry.saturating_duration_since(now),
        ))
    }

    pub fn tracked(&self) -> usize {
        self.accounts.len()
    }
}

/// The login lock's table is full of accounts with failures.
fn login_table_full(wait: Duration) -> ApiError {
    ApiError::Busy {
        what: "login attempts",
        retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Which address-throttled route an attempt is on (each has its count).
#[derive(Debug, Clone, Copy)]
pub enum AuthRoute {
    Register,
    Login,
}

/// A `governor` limiter with one count per key and a bound on how many
/// keys it remembers: when that many are counting and none has expired,
/// new keys are told to wait (429) rather than grow the table.
struct KeyedThrottle<K: std::hash::Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    max_tracked: usize,
    /// What a new key is told to wait when the table is full, in seconds.
    full_wait_secs: u64,
}

impl<K: std::hash::Hash + Eq + Clone> KeyedThrottle<K> {
    fn new(quota: Quota, max_tracked: usize, full_wait_secs: u64) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            max_tracked: max_tracked.max(1),
            full_wait_secs,
        }
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        if self.limiter.len() >= self.max_tracked {
            self.limiter.retain_recent();
            if self.limiter.len() >= self.max_tracked {
                return Err(ApiError::RateLimited {
                    retry_after_secs: self.full_wait_secs,
                });
            }
        }
        self.limiter.check_key(key).map_err(|not_until| {
            rate_limited_for(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    fn purge_expired(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

/// `RateLimited` for a wait, rounded up to whole seconds.
fn rate_limited_for(wait: Duration) -> ApiError {
    ApiError::RateLimited {
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

/// Quota of `per_period` a `period` (at least one).
fn quota(per_period: u32, period: fn(NonZeroU32) -> Quota) -> Quota {
    period(NonZeroU32::new(per_period.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// Registrations and logins per client address (contract v1.3), one count
/// each. IPv6 clients are counted by their /64, the block one subscriber
/// usually gets, so a single household cannot dodge the count by walking
/// its own addresses.
/// Sign-ins (and reset codes) count only their failures (contract v1.6:
/// a school signs in from one address).
pub struct AddressThrottles {
    register: KeyedThrottle<IpAddr>,
    login: failures::FailureCount<IpAddr>,
}

impl AddressThrottles {
    pub fn new(limits: &Limits) -> Self {
        let per_minute = quota(limits.auth_attempts_per_minute, Quota::per_minute);
        Self {
            register: KeyedThrottle::new(per_minute, limits.auth_tracked_addresses, 60),
            login: failures::FailureCount::new(
                limits.auth_attempts_per_minute,
                limits.auth_tracked_addresses,
            ),
        }
    }

    /// Whether `client` may attempt: `RateLimited` past the quota. A
    /// registration counts here; a sign-in counts only when it fails
    /// ([`login_failed`](Self::login_failed)).
    pub fn check(&self, route: AuthRoute, client: IpAddr) -> Result<(), ApiError> {
        match route {
            AuthRoute::Register => self.register.check(&subscriber(client)),
            AuthRoute::Login => self.login.check(&subscriber(client)),
        }
    }

    /// A sign-in or reset code from `client` was wrong.
    pub fn login_failed(&self, client: IpAddr) {
        self.login.failed(&subscriber(client));
    }

    /// Forgets addresses whose counts are back to full and gives back the
    /// tables (run by the housekeeping).
    pub fn purge_expired(&self) {
        self.register.purge_expired();
        self.login.purge_expired();
    }

    pub fn tracked(&self) -> usize {
        self.register.tracked() + self.login.tracked()
    }
}

/// Story generations per user an hour (one count per user; at most
/// `GENERATION_TRACKED_USERS` users counted at once).
pub struct GenerationQuota(KeyedThrottle<i64>);

impl GenerationQuota {
    pub fn new(limits: &Limits) -> Self {
        Self(KeyedThrottle::new(
            quota(limits.generations_per_user_per_hour, Quota::per_hour),
            limits.generation_tracked_users,
            3600,
        ))
    }

    /// Counts one generation by `user`; `RateLimited` past the quota.
    pub fn check(&self, user: i64) -> Result<(), ApiError> {
        self.0.check(&user)
    }

    /// Forgets users whose count is back to full (run by the housekeeping).
    pub fn purge_expired(&self) {
        self.0.purge_expired();
    }
}

/// The key an address is counted under: itself, or its /64 for IPv6.
fn subscriber(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

pub mod django;
pub mod failures;
pub mod queue;

#[cfg(test)]
mod tests;
