//! Logging set-up for the commands that serve or write.

use crate::config::LogFormat;

/// `LOG_LEVEL` is a level (`info`) or targets with levels
/// (`storybook=debug,sqlx=warn,info`). Parsed without regular expressions:
/// the regex engine would add a few hundred KiB of code to every process.
/// Logging for the commands other than `serve`: to standard error, since
/// their standard output is data (`storybook export` writes the backup
/// there, and a warning from the driver in the middle of it, such as a
/// slow statement's, would corrupt it).
pub fn init_for_command(filter: &str) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let targets: Targets = filter
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::WARN));
    tracing_subscriber::registry()
        .with(targets)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .init();
}

pub fn init(format: LogFormat, filter: &str) {
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
