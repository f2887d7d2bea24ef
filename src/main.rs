//! The `storybook` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use storybook::commands;
use storybook::config::{Cli, Command};

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
        let (stdin, stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
        let status = storybook_ocr::prepare_command(stdin, stdout, args.max_bytes, args.max_pixels);
        return ExitCode::from(status);
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
            None => commands::serve(cli.serve).await,
            Some(Command::Serve(args)) => commands::serve(*args).await,
            Some(Command::Migrate(args)) => commands::migrate(args).await,
            Some(Command::CreateAdmin(args)) => commands::create_admin(args).await,
            Some(Command::Seed(args)) => commands::seed(args).await,
            Some(Command::ImportDjango(args)) => commands::import_django(args).await,
            Some(Command::Export(args)) => commands::export(args).await,
            Some(Command::Import(args)) => commands::import(args).await,
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
