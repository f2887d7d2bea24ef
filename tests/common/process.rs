//! The `storybook` binary as a child process, for black-box tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test, with nothing of the test's environment.
pub fn storybook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_storybook"));
    // The test environment must not leak into the server under test.
    for key in [
        "DATABASE_URL",
        "PORT",
        "HOST",
        "METRICS_TOKEN",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "REDIS_URL",
        "REDIS_PREFIX",
    ] {
        command.env_remove(key);
    }
    command
}

/// Runs a `storybook` command on `database_url` to its end: whether it
/// succeeded, its standard output and its standard error.
pub fn run(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let output = storybook()
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .expect("the storybook binary");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Starts `storybook serve` on port 0 and reads the address it logged.
pub fn start_server(database_url: &str) -> (Child, SocketAddr) {
    start_server_with(database_url, &[], &[])
}

/// [`start_server`] with more flags and environment variables.
pub fn start_server_with(
    database_url: &str,
    flags: &[&str],
    environment: &[(&str, &str)],
) -> (Child, SocketAddr) {
    let mut command = storybook();
    command
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args(flags)
        .env("DATABASE_URL", database_url)
        .env("LOG_FORMAT", "json")
        .envs(environment.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("spawn storybook");
    let address = read_address(&mut child);
    (child, address)
}

/// Registers a user over HTTP (password `password123`); returns the token.
pub async fn register(address: SocketAddr, name: &str) -> String {
    let body = serde_json::json!({"username": name, "email": format!("{name}@example.com"), "password": "password123"});
    let (status, body) = super::raw_http(
        address,
        "POST",
        "/api/auth/register",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

/// The address a server started with `LOG_FORMAT=json` logged.
pub fn read_address(child: &mut Child) -> SocketAddr {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(address) = entry["fields"]["address"].as_str() {
            // Keep draining the logs so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return address.parse().expect("address");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not log its address");
}
