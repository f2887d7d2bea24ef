//! `storybook-load`: drives a running storybook server and measures it,
//! including the server's memory (RSS from `/proc/PID/status`).

mod abuse;
mod abuse_ws;
mod client;
mod creative;
mod http;
mod report;
mod rss;
mod ws;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "storybook-load",
    about = "Load and memory measurements for the storybook server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// HTTP scenarios at a set concurrency, for a duration or a request count.
    Http(http::HttpArgs),
    /// Drawing renders (small and maximal) and a photo story, with the
    /// server's peak RSS for each.
    Creative(creative::CreativeArgs),
    /// WebSocket connections over channels, then a fan-out run.
    Ws(ws::WsArgs),
    /// Only sample the server's RSS (idle figure).
    Rss(rss::RssArgs),
    /// Replays hostile clients (issue #12) and prints each attack's figures
    /// beside its budget.
    Abuse(abuse::AbuseArgs),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Http(args) => http::run(args).await,
        Command::Rss(args) => rss::run(args).await,
        Command::Creative(args) => creative::run(args).await,
        Command::Ws(args) => ws::run(args).await,
        Command::Abuse(args) => abuse::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
