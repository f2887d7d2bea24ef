//! The application state handed to every handler through axum's `State`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRef;
use storybook_profanity::Filter;
use storybook_store::Store;

use crate::admission::MemoryBudget;
use crate::auth::{AddressThrottles, GenerationQuota, LoginThrottle, Passwords};
use crate::cache::ReadCache;
use crate::config::{Limits, Secret, ServeArgs, ToolArgs};
use crate::events::Events;
use crate::image_cache::ImageCache;
use crate::likes_cache::LikesCache;
use crate::metrics::Metrics;
use crate::notifications::Notifier;
use crate::read_counter::ReadCounter;
use crate::slots::Slots;
use crate::token_cache::TokenCache;

/// Everything the server holds, in parts: a handler takes the parts it
/// uses (`State<Store>`, `State<Caches>`, …, each extracted with `FromRef`),
/// and only wiring and the realtime layer take the whole. Cheap to clone:
/// each part is shared.
#[derive(Clone)]
pub struct AppState {
    /// The database, SQLite or PostgreSQL.
    pub store: Store,
    /// What is kept in memory to answer without the database.
    pub caches: Caches,
    /// Passwords, throttles and the token cache.
    pub auth: Auth,
    /// The profanity matcher, the story generator, OCR, and the slots that
    /// bound the dear work (renders, searches, generations).
    pub tools: Tools,
    /// Writes notifications and pushes them (see `notifications`).
    pub notifier: Notifier,
    /// Where handlers say what open connections must hear (nothing is
    /// listening in the lean build).
    pub events: Arc<dyn Events>,
    /// The bounds the server keeps.
    pub limits: Arc<Limits>,
    /// Request counters and latency histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Memory the requests in flight have reserved for their bodies.
    pub memory: Arc<MemoryBudget>,
    /// Bearer token `/metrics` requires, when set.
    pub metrics_token: Option<Arc<Secret>>,
    /// Channels, presence and open connections (`--features realtime`).
    #[cfg(feature = "realtime")]
    pub realtime: Arc<crate::realtime::Realtime>,
    /// When the process started serving, for `uptime_s`.
    pub started_at: Instant,
    /// Pause points a test may arm to replay a race (none armed otherwise).
    pub pauses: Arc<crate::pause::Pauses>,
}

/// What is kept in memory to answer without the database. Each cache is
/// bounded by its settings and correct by invalidation (see its module).
#[derive(Clone)]
pub struct Caches {
    /// Hot reads (story details, first library pages, their JSON bytes).
    pub reads: Arc<ReadCache>,
    /// Users' liked story ids, for a few seconds.
    pub likes: Arc<LikesCache>,
    /// Rendered PNGs by ETag, bounded by bytes.
    pub images: Arc<ImageCache>,
    /// Signed-in reads, counted here and written in batches.
    pub read_counter: Arc<ReadCounter>,
}

/// Signing in and staying signed in.
#[derive(Clone)]
pub struct Auth {
    /// Argon2id hashing with its own concurrency limit.
    pub passwords: Arc<Passwords>,
    /// Failed-login counts per account (bounded).
    pub login_throttle: Arc<LoginThrottle>,
    /// Registrations and logins per client address (bounded).
    pub address_throttles: Arc<AddressThrottles>,
    /// Users by token hash, for a few seconds.
    pub tokens: Arc<TokenCache>,
}

/// The dear work a request may start, each bounded.
#[derive(Clone)]
pub struct Tools {
    /// The profanity matcher, built once at start-up.
    pub profanity: Arc<Filter>,
    /// Writes stories from a prompt (builtin or a remote model).
    pub generator: Arc<dyn storybook_storygen::Generator>,
    /// Story generations per user an hour.
    pub generation_quota: Arc<GenerationQuota>,
    /// Text recognition for photo stories.
    pub ocr: Arc<storybook_ocr::Ocr>,
    /// PNG renders allowed at once (they run off the async threads), and
    /// how many may wait.
    pub renders: Arc<Slots>,
    /// Drawing time one render may use (`RENDER_CPU_MS`).
    pub render_cpu_budget: std::time::Duration,
    /// Full-text searches allowed at once, and how many may wait.
    pub searches: Arc<Slots>,
    /// Backup downloads: one at a time, none waiting (a second is `busy`).
    pub backups: Arc<Slots>,
}

macro_rules! part {
    ($part:ty, $field:ident) => {
        impl FromRef<AppState> for $part {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    };
}
part!(Store, store);
part!(Caches, caches);
part!(Auth, auth);
part!(Tools, tools);
part!(Notifier, notifier);
part!(Arc<dyn Events>, events);
part!(Arc<Limits>, limits);
part!(Arc<Metrics>, metrics);
part!(Arc<crate::pause::Pauses>, pauses);

impl AppState {
    /// The state with every default (builtin generator, default text
    /// recognition and realtime bounds): for tests and embedding.
    pub fn new(store: Store, limits: Limits, metrics_token: Option<Secret>) -> Self {
        let defaults = ServeArgs::defaults();
        Self::assemble(
            store,
            limits,
            metrics_token,
            &defaults.tools,
            Arc::new(storybook_storygen::Builtin),
            #[cfg(feature = "realtime")]
            crate::realtime::Realtime::new(defaults.realtime)
                .expect("the memory broker needs no set-up"),
        )
    }

    /// The state the command line asks for; each part is built once (the
    /// Tesseract probe runs once at start-up).
    pub fn from_args(store: Store, args: ServeArgs) -> Result<Self, String> {
        let generator = args.tools.generator()?;
        #[cfg(feature = "realtime")]
        let realtime = crate::realtime::Realtime::new(args.realtime)?;
        Ok(Self::assemble(
            store,
            args.limits,
            args.metrics_token,
            &args.tools,
            generator,
            #[cfg(feature = "realtime")]
            realtime,
        ))
    }

    fn assemble(
        store: Store,
        limits: Limits,
        metrics_token: Option<Secret>,
        tools: &ToolArgs,
        generator: Arc<dyn storybook_storygen::Generator>,
        #[cfg(feature = "realtime")] realtime: Arc<crate::realtime::Realtime>,
    ) -> Self {
        let tokens = Arc::new(TokenCache::new(
            limits.token_cache_entries,
            std::time::Duration::from_secs(limits.token_cache_secs),
        ));
        #[cfg(feature = "realtime")]
        realtime.share_token_cache(tokens.clone());
        #[cfg(feature = "realtime")]
        let events: Arc<dyn Events> = realtime.clone();
        #[cfg(not(feature = "realtime"))]
        let events: Arc<dyn Events> = Arc::new(crate::events::NoEvents);
        Self {
            notifier: Notifier::new(store.clone(), events.clone()),
            store,
            caches: Caches {
                reads: Arc::new(ReadCache::new(
                    limits.cache_max_entries,
                    limits.cache_max_bytes,
                    std::time::Duration::from_secs(limits.cache_ttl_secs),
                )),
                likes: Arc::new(LikesCache::new(
                    limits.likes_cache_users,
                    std::time::Duration::from_secs(limits.likes_cache_secs),
                )),
                images: Arc::new(ImageCache::new(limits.render_cache_bytes)),
                read_counter: Arc::new(ReadCounter::new(
                    limits.reads_pending,
                    limits.reads_known,
                    limits.reads_user_list,
                )),
            },
            auth: Auth {
                passwords: Arc::new(Passwords::new(&limits)),
                login_throttle: Arc::new(LoginThrottle::new(&limits)),
                address_throttles: Arc::new(AddressThrottles::new(&limits)),
                tokens,
            },
            tools: Tools {
                profanity: Arc::new(Filter::new()),
                generator,
                generation_quota: Arc::new(GenerationQuota::new(&limits)),
                ocr: Arc::new(storybook_ocr::Ocr::new(tools.ocr_settings())),
                renders: Arc::new(Slots::new(
                    "renders",
                    limits.render_concurrency,
                    limits.render_queue,
                )),
                render_cpu_budget: std::time::Duration::from_millis(limits.render_cpu_ms),
                searches: Arc::new(Slots::new(
                    "searches",
                    limits.search_concurrency,
                    limits.search_queue,
                )),
                backups: Arc::new(Slots::new("backups", 1, 0)),
            },
            events,
            memory: Arc::new(MemoryBudget::new(limits.request_memory_budget)),
            metrics: Arc::new(Metrics::default()),
            limits: Arc::new(limits),
            metrics_token: metrics_token.map(Arc::new),
            #[cfg(feature = "realtime")]
            realtime,
            started_at: Instant::now(),
            pauses: Arc::default(),
        }
    }

    /// Uses the given realtime settings (`--features realtime`).
    #[cfg(feature = "realtime")]
    pub fn with_realtime(mut self, settings: crate::config::RealtimeArgs) -> Result<Self, String> {
        self.realtime = crate::realtime::Realtime::new(settings)?;
        self.realtime.share_token_cache(self.auth.tokens.clone());
        self.events = self.realtime.clone();
        self.notifier = Notifier::new(self.store.clone(), self.events.clone());
        Ok(self)
    }
}
