//! The subcommands of the `storybook` binary, each given its parsed
//! settings: `serve` (the default), `migrate`, `create-admin`, `seed`,
//! `import-django`, and `export` / `import` (backups, in `backup`).
//! (`photo-prepare` is the OCR crate's, run before any runtime exists.)

use std::io::Read;
use std::time::Duration;

use storybook_store::Store;
use tokio::net::TcpListener;

use crate::AppState;
use crate::config::{
    CreateAdminArgs, DatabaseArgs, ExportArgs, ImportArgs, ImportDjangoArgs, SeedArgs, ServeArgs,
};

async fn connect(database: &DatabaseArgs) -> Result<Store, String> {
    Store::connect(database.database_url.expose(), &database.pool_settings())
        .await
        .map_err(|e| format!("database: {e}"))
}

/// Connects and leaves the schema as it is.
async fn connect_as_is(database: &DatabaseArgs) -> Result<Store, String> {
    Store::connect_without_migrating(database.database_url.expose(), &database.pool_settings())
        .await
        .map_err(|e| format!("database: {e}"))
}

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    crate::logging::init(args.log_format, &args.log_level);
    let store = connect(&args.database).await?;
    let address = format!("{}:{}", args.host, args.port);
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(%address, database = store.backend().name(), "serving");
    let grace = Duration::from_secs(args.limits.shutdown_grace_secs);
    let state = AppState::from_args(store.clone(), args)?;
    crate::start_background_tasks(&state);
    let caches = state.caches.clone();
    tracing::info!(
        generator = state.tools.generator.name(),
        ocr = state.tools.ocr.available(),
        "story tools"
    );
    crate::serve(
        listener,
        crate::app(state),
        crate::shutdown::signal(),
        grace,
    )
    .await
    .map_err(|e| format!("server: {e}"))?;
    // Acknowledged reads are written before the process goes.
    match caches.read_counter.flush(&store, &caches.reads).await {
        Ok(written) => tracing::info!(written, "pending reads written"),
        Err(error) => tracing::error!(%error, "pending reads could not be written"),
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub async fn migrate(args: DatabaseArgs) -> Result<(), String> {
    crate::logging::init_for_command("info");
    let store = connect_as_is(&args).await?;
    let applied = store.migrate().await.map_err(|e| e.to_string())?;
    println!("{applied} migration(s) applied");
    store.close().await;
    Ok(())
}

pub async fn create_admin(args: CreateAdminArgs) -> Result<(), String> {
    crate::logging::init_for_command("warn");
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let store = connect(&args.database).await?;
    let user = crate::accounts::create_admin(&store, &args.username, &args.email, password).await?;
    println!("admin {} created (id {})", user.username, user.id);
    store.close().await;
    Ok(())
}

pub async fn import_django(args: ImportDjangoArgs) -> Result<(), String> {
    crate::logging::init_for_command("warn");
    let store = connect(&args.database).await?;
    let summary = crate::django_import::import(&store, &args.file, &args.model).await;
    store.close().await;
    println!("{}", summary?);
    Ok(())
}

/// An export reads the database as it is: it never migrates it (the
/// server that owns it may be an older build).
pub async fn export(args: ExportArgs) -> Result<(), String> {
    crate::logging::init_for_command("warn");
    let store = connect_as_is(&args.database).await?;
    let result = crate::backup::export(&store, args.output.as_deref()).await;
    store.close().await;
    eprintln!("{}", result?);
    Ok(())
}

/// An import migrates the database itself: up to the backup's schema
/// before loading, and on to the newest after.
pub async fn import(args: ImportArgs) -> Result<(), String> {
    crate::logging::init_for_command("warn");
    let store = connect_as_is(&args.database).await?;
    let result = crate::backup::import(&store, &args.file).await;
    store.close().await;
    println!("{}", result?);
    Ok(())
}

pub async fn seed(args: SeedArgs) -> Result<(), String> {
    crate::logging::init_for_command("warn");
    let store = connect(&args.database).await?;
    let passwords = crate::auth::Passwords::new(&crate::config::Limits::default());
    // One hash for every seeded user: hashing is the slow part otherwise.
    let password_hash = passwords
        .hash(crate::seed::SEED_PASSWORD.to_owned())
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let written =
        crate::seed::seed(&store, args.stories, args.users, args.seed, password_hash).await?;
    println!(
        "seeded {written} stories and {} users in {:.1?}",
        args.users,
        started.elapsed()
    );
    store.close().await;
    Ok(())
}
