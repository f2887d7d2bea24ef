//! The `storybook` binary: parses the command line and hands over to the library.

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use storybook::config::{
    Cli, Command, CreateAdminArgs, DatabaseArgs, LogFormat, PhotoPrepareArgs, SeedArgs, ServeArgs,
};
use storybook::{AppState, app, serve, shutdown};
use storybook_store::Store;
use tokio::net::TcpListener;

/// Only with `--features jemalloc` (the allocator comparison).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // glibc's tunables mean nothing to jemalloc.
    #[cfg(not(feature = "jemalloc"))]
    storybook::allocator::tune_and_reexec();
    // A missing .env is normal; a broken one is worth saying.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("warning: .env not read: {error}");
    }
    let cli = Cli::parse();
    // A child of the server, short-lived: no runtime, no logging set-up.
    if let Some(Command::PhotoPrepare(args)) = &cli.command {
        return photo_prepare(args);
    }
    storybook::threads::presize_parking_lot();
    let workers = storybook::threads::worker_count();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .on_thread_start(storybook::threads::warm_up_first(workers))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            None => run_server(cli.serve).await,
            Some(Command::Serve(args)) => run_server(*args).await,
            Some(Command::Migrate(args)) => migrate(args).await,
            Some(Command::CreateAdmin(args)) => create_admin(args).await,
            Some(Command::Seed(args)) => seed(args).await,
            Some(Command::PhotoPrepare(_)) => unreachable!("handled before the runtime starts"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `storybook photo-prepare`: a photo on standard input, grey upright PNG
/// on standard output; a refusal is an exit status the server reads back
/// (`storybook_ocr::prepare_exit_code`) with the reason on standard error.
fn photo_prepare(args: &PhotoPrepareArgs) -> ExitCode {
    use std::io::Write;
    let mut photo = Vec::new();
    if let Err(error) = std::io::stdin()
        .take(args.max_bytes as u64 + 1)
        .read_to_end(&mut photo)
    {
        eprintln!("cannot read the photo: {error}");
        return ExitCode::FAILURE;
    }
    let prepared = if photo.len() > args.max_bytes {
        Err(storybook_ocr::OcrError::BadImage(format!(
            "larger than {} bytes",
            args.max_bytes
        )))
    } else {
        storybook_ocr::prepare(&photo, args.max_pixels)
    };
    match prepared {
        Ok(png) => match std::io::stdout().lock().write_all(&png) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("cannot write the prepared photo: {error}");
                ExitCode::FAILURE
            }
        },
        Err(error) => {
            eprintln!("{error}");
            ExitCode::from(storybook_ocr::prepare_exit_code(&error) as u8)
        }
    }
}

/// `LOG_LEVEL` is a level (`info`) or targets with levels
/// (`storybook=debug,sqlx=warn,info`). Parsed without regular expressions:
/// the regex engine would add a few hundred KiB of code to every process.
fn init_logging(format: LogFormat, filter: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let targets: Targets = filter.parse().unwrap_or_else(|_| {
        eprintln!("warning: LOG_LEVEL {filter:?} is not a level or target list; using info");
        Targets::new().with_default(tracing::Level::INFO)
    });
    let registry = tracing_subscriber::registry().with(targets);
    // Standard output's buffer is made at its first use; with LOG_LEVEL=warn
    // that is the first warning, in the middle of whatever caused it, where
    // a block kept for good stops glibc returning the memory around it
    // (src/threads.rs). Made now, it sits at the bottom of the heap.
    drop(std::io::stdout());
    match format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json())
            .init(),
        LogFormat::Pretty => registry.with(tracing_subscriber::fmt::layer()).init(),
    }
}

async fn connect(database: &DatabaseArgs) -> Result<Store, String> {
    Store::connect(database.database_url.expose(), &database.pool_settings())
        .await
        .map_err(|e| format!("database: {e}"))
}

async fn run_server(args: ServeArgs) -> Result<(), String> {
    init_logging(args.log_format, &args.log_level);
    let store = connect(&args.database).await?;
    let address = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, database = store.backend().name(), "serving");
    let grace = Duration::from_secs(args.limits.shutdown_grace_secs);
    let state = AppState::from_args(store.clone(), args)?;
    storybook::start_background_tasks(&state);
    tracing::info!(
        generator = state.generator.name(),
        ocr = state.ocr.available(),
        "story tools"
    );
    serve(listener, app(state), shutdown::signal(), grace)
        .await
        .map_err(|e| format!("server: {e}"))?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(args: DatabaseArgs) -> Result<(), String> {
    init_logging(LogFormat::Pretty, "info");
    let store = Store::connect_without_migrating(args.database_url.expose(), &args.pool_settings())
        .await
        .map_err(|e| format!("database: {e}"))?;
    let applied = store.migrate().await.map_err(|e| e.to_string())?;
    println!("{applied} migration(s) applied");
    store.close().await;
    Ok(())
}

async fn create_admin(args: CreateAdminArgs) -> Result<(), String> {
    init_logging(LogFormat::Pretty, "warn");
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let store = connect(&args.database).await?;
    let user = storybook::http::create_admin(&store, &args.username, &args.email, password).await?;
    println!("admin {} created (id {})", user.username, user.id);
    store.close().await;
    Ok(())
}

async fn seed(args: SeedArgs) -> Result<(), String> {
    init_logging(LogFormat::Pretty, "warn");
    let store = connect(&args.database).await?;
    let passwords = storybook::auth::Passwords::new(&storybook::config::Limits::default());
    // One hash for every seeded user: hashing is the slow part otherwise.
    let password_hash = passwords
        .hash("password123".to_owned())
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let written =
        storybook::seed::seed(&store, args.stories, args.users, args.seed, password_hash).await?;
    println!(
        "seeded {written} stories and {} users in {:.1?}",
        args.users,
        started.elapsed()
    );
    store.close().await;
    Ok(())
}
