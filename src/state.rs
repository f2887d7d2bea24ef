//! The application state handed to every handler through axum's `State`.

use std::sync::Arc;
use std::time::Instant;

use storybook_profanity::Filter;
use storybook_store::Store;

use crate::admission::MemoryBudget;
use crate::slots::Slots;

use crate::auth::{AddressThrottles, GenerationQuota, LoginThrottle, Passwords};
use crate::cache::ReadCache;
use crate::config::{Limits, Secret, ServeArgs, ToolArgs};
use crate::events::{Event, Events};
use crate::image_cache::ImageCache;
use crate::likes_cache::LikesCache;
use crate::metrics::Metrics;
use crate::token_cache::TokenCache;

/// Everything a handler may need. Cheap to clone: each part is shared.
#[derive(Clone)]
pub struct AppState {
    /// The database, SQLite or PostgreSQL.
    pub store: Store,
    /// The profanity matcher, built once at start-up.
    pub profanity: Arc<Filter>,
    /// Argon2id hashing with its own concurrency limit.
    pub passwords: Arc<Passwords>,
    /// Failed-login counts per account (bounded).
    pub login_throttle: Arc<LoginThrottle>,
    /// Registrations and logins per client address (bounded).
    pub address_throttles: Arc<AddressThrottles>,
    /// Users by token hash, for a few seconds (see `token_cache`).
    pub tokens: Arc<TokenCache>,
    /// Users' liked story ids, for a few seconds (see `likes_cache`).
    pub likes: Arc<LikesCache>,
    /// Story generations per user an hour.
    pub generation_quota: Arc<GenerationQuota>,
    /// Hot reads (story details, first library pages), bounded.
    pub cache: Arc<ReadCache>,
    /// PNG renders allowed at once (they run off the async threads), and
    /// how many may wait.
    pub renders: Arc<Slots>,
    /// Rendered PNGs by ETag, bounded by bytes.
    pub images: Arc<ImageCache>,
    /// Full-text searches allowed at once, and how many may wait.
    pub searches: Arc<Slots>,
    /// Memory the requests in flight have reserved for their bodies.
    pub memory: Arc<MemoryBudget>,
    /// Request counters and latency histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The bounds the server keeps.
    pub limits: Arc<Limits>,
    /// Bearer token `/metrics` requires, when set.
    pub metrics_token: Option<Arc<Secret>>,
    /// Writes stories from a prompt (builtin or a remote model).
    pub generator: Arc<dyn storybook_storygen::Generator>,
    /// Text recognition for photo stories.
    pub ocr: Arc<storybook_ocr::Ocr>,
    /// Where handlers say what open connections must hear (nothing is
    /// listening in the lean build).
    pub events: Arc<dyn Events>,
    /// Channels, presence and open connections (`--features realtime`).
    #[cfg(feature = "realtime")]
    pub realtime: Arc<crate::realtime::Realtime>,
    /// When the process started serving, for `uptime_s`.
    pub started_at: Instant,
}

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
        Self {
            store,
            profanity: Arc::new(Filter::new()),
            passwords: Arc::new(Passwords::new(&limits)),
            login_throttle: Arc::new(LoginThrottle::new(&limits)),
            address_throttles: Arc::new(AddressThrottles::new(&limits)),
            generation_quota: Arc::new(GenerationQuota::new(&limits)),
            tokens,
            likes: Arc::new(LikesCache::new(
                limits.likes_cache_users,
                std::time::Duration::from_secs(limits.likes_cache_secs),
            )),
            cache: Arc::new(ReadCache::new(
                limits.cache_max_entries,
                limits.cache_max_bytes,
                std::time::Duration::from_secs(limits.cache_ttl_secs),
            )),
            renders: Arc::new(Slots::new(
                "renders",
                limits.render_concurrency,
                limits.render_queue,
            )),
            images: Arc::new(ImageCache::new(limits.render_cache_bytes)),
            memory: Arc::new(MemoryBudget::new(limits.request_memory_budget)),
            searches: Arc::new(Slots::new(
                "searches",
                limits.search_concurrency,
                limits.search_queue,
            )),
            metrics: Arc::new(Metrics::default()),
            limits: Arc::new(limits),
            metrics_token: metrics_token.map(Arc::new),
            generator,
            ocr: Arc::new(storybook_ocr::Ocr::new(tools.ocr_settings())),
            #[cfg(feature = "realtime")]
            events: realtime.clone(),
            #[cfg(not(feature = "realtime"))]
            events: Arc::new(crate::events::NoEvents),
            #[cfg(feature = "realtime")]
            realtime,
            started_at: Instant::now(),
        }
    }

    /// Writes a notification for `user_id` and pushes it to their open
    /// connections. A failure is logged, not returned: the action that
    /// caused it already happened.
    pub async fn notify(&self, user_id: i64, kind: &str, data: serde_json::Value) {
        match self.store.create_notification(user_id, kind, &data).await {
            Ok(notification) => {
                let event = Event::Notification {
                    user_id,
                    notification: &notification,
                };
                self.events.send(event).await;
            }
            Err(error) => tracing::error!(%error, user_id, kind, "could not write a notification"),
        }
    }

    /// Uses the given realtime settings (`--features realtime`).
    #[cfg(feature = "realtime")]
    pub fn with_realtime(mut self, settings: crate::config::RealtimeArgs) -> Result<Self, String> {
        self.realtime = crate::realtime::Realtime::new(settings)?;
        self.realtime.share_token_cache(self.tokens.clone());
        self.events = self.realtime.clone();
        Ok(self)
    }
}
