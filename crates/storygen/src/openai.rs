//! Any OpenAI-compatible chat-completions endpoint, asked for JSON pages,
//! with a time-out and a bound on how much of the answer is read.
//!
//! The request is made by the `curl` command, not by an HTTP client linked
//! into the server. A TLS stack (rustls, ring, certificate roots) and an
//! HTTP client were over 1 MB of the server's binary, and the binary's
//! pages are most of its idle memory; `curl` is in every Debian image,
//! uses the system's certificates, and its memory leaves with it. The API
//! key and the body go through curl's standard input as a config file, so
//! neither shows in the process list.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::{GenerateError, GenerateFuture, Generated, Generator, Request};

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub api_key: String,
    pub model: String,
    pub timeout: Duration,
    /// Most bytes of an answer read; more is an error.
    pub max_response_bytes: usize,
    /// The `curl` command that makes the request.
    pub curl_command: PathBuf,
    /// Requests in flight at once; more wait (within the time-out).
    pub concurrency: usize,
}

pub struct OpenAi {
    settings: OpenAiSettings,
    permits: Semaphore,
}

impl OpenAi {
    pub fn new(settings: OpenAiSettings) -> Result<Self, GenerateError> {
        if !settings.base_url.starts_with("http://") && !settings.base_url.starts_with("https://") {
            return Err(GenerateError::Unavailable(format!(
                "the base URL must start with http:// or https://, not {:?}",
                settings.base_url
            )));
        }
        // Probed once (~5 ms), so a server without curl says so at start-up
        // rather than at the first story.
        let curl_runs = std::process::Command::new(&settings.curl_command)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !curl_runs {
            return Err(GenerateError::Unavailable(format!(
                "the openai generator needs the curl command, and {:?} does not run",
                settings.curl_command
            )));
        }
        let permits = Semaphore::new(settings.concurrency.max(1));
        Ok(Self { settings, permits })
    }

    fn body(&self, request: &Request) -> Value {
        let system = "You write short, kind, age-appropriate stories for children. \
            Answer with a JSON object only: {\"title\": string, \"pages\": [string, ...]}.";
        let user = format!(
            "Write a {} story for children aged {} in exactly {} pages (a few sentences each) about: {}",
            request.genre, request.age_group, request.pages, request.prompt
        );
        json!({
            "model": self.settings.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_object"},
            "temperature": 0.8,
        })
    }

    /// curl's config, read from its standard input: the URL, the headers
    /// and the body, each a quoted value.
    fn curl_config(&self, body: &Value) -> String {
        let url = format!(
            "{}/chat/completions",
            self.settings.base_url.trim_end_matches('/')
        );
        let mut config = String::new();
        for (option, value) in [
            ("url", url.as_str()),
            ("header", "content-type: application/json"),
            (
                "header",
                &format!("authorization: Bearer {}", self.settings.api_key),
            ),
            ("data-binary", &body.to_string()),
        ] {
            config.push_str(option);
            config.push_str(" = ");
            config.push_str(&quote(value));
            config.push('\n');
        }
        config
    }

    async fn call(&self, request: &Request) -> Result<Generated, GenerateError> {
        let unavailable = |why: String| GenerateError::Unavailable(why);
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let seconds = self.settings.timeout.as_secs_f64().to_string();
        let mut child = tokio::process::Command::new(&self.settings.curl_command)
            // `-q` first: no ~/.curlrc. Only the config from stdin counts.
            .args(["-q", "--silent", "--show-error", "--config", "-"])
            .args(["--proto", "=http,https", "--max-redirs", "0"])
            .args(["--connect-timeout", &seconds, "--max-time", &seconds])
            .args([
                "--max-filesize",
                &self.settings.max_response_bytes.to_string(),
            ])
            // The status goes to stderr after any error message, so the
            // body on stdout is the answer alone.
            .args(["--write-out", "%{stderr}\n%{http_code}"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                unavailable(format!("cannot run {:?}: {e}", self.settings.curl_command))
            })?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(unavailable("curl's pipes were not made".into()));
        };
        let config = self.curl_config(&self.body(request));
        let send = async move {
            // A failed write shows as curl's own error below.
            let _ = stdin.write_all(config.as_bytes()).await;
        };
        let limit = self.settings.max_response_bytes;
        let mut answer = Vec::new();
        let mut bounded_stdout = stdout.take(limit as u64 + 1);
        let (_, read_answer) = tokio::join!(send, bounded_stdout.read_to_end(&mut answer));
        read_answer.map_err(|e| unavailable(e.to_string()))?;
        if answer.len() > limit {
            // Returning drops the child, which kills curl mid-answer.
            return Err(unavailable("the answer was too large".into()));
        }
        // Read after the answer: curl writes a line or two here, far less
        // than a pipe holds, so it never waits on this while writing stdout.
        let mut report = Vec::new();
        stderr
            .take(4096)
            .read_to_end(&mut report)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = child.wait().await.map_err(|e| unavailable(e.to_string()))?;
        let report = String::from_utf8_lossy(&report);
        let (message, http_status) = report.trim_end().rsplit_once('\n').unwrap_or(("", &report));
        if !status.success() {
            return Err(unavailable(format!(
                "curl failed ({status}): {}",
                message.trim()
            )));
        }
        if !http_status.trim().starts_with('2') {
            return Err(unavailable(format!(
                "the model answered HTTP {}",
                http_status.trim()
            )));
        }
        parse_answer(&answer, request.pages)
    }
}

/// A value for curl's config file: in double quotes, where a backslash
/// escapes the next character.
fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Reads `choices[0].message.content` as `{"title", "pages": [..]}`.
fn parse_answer(bytes: &[u8], wanted_pages: usize) -> Result<Generated, GenerateError> {
    let garbage = |why: &str| GenerateError::Unavailable(format!("unusable answer: {why}"));
    let answer: Value = serde_json::from_slice(bytes).map_err(|_| garbage("not JSON"))?;
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| garbage("no content"))?;
    let story: Value =
        serde_json::from_str(content.trim()).map_err(|_| garbage("content is not JSON"))?;
    let title = story["title"]
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| garbage("no title"))?;
    let pages: Vec<String> = story["pages"]
        .as_array()
        .ok_or_else(|| garbage("no pages"))?
        .iter()
        .filter_map(|p| p.as_str().or_else(|| p["text"].as_str()))
        .map(|p| p.trim().chars().take(5_000).collect::<String>())
        .filter(|p| !p.is_empty())
        .take(wanted_pages)
        .collect();
    if pages.is_empty() {
        return Err(garbage("no pages"));
    }
    Ok(Generated {
        title: title.chars().take(120).collect(),
        pages,
    })
}

impl Generator for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn generate<'a>(&'a self, request: &'a Request) -> GenerateFuture<'a> {
        Box::pin(async move {
            // curl's own time-out covers the request; this bounds the wait
            // for a permit as well. Dropping the future kills curl.
            match tokio::time::timeout(self.settings.timeout, self.call(request)).await {
                Ok(result) => result,
                Err(_) => Err(GenerateError::Unavailable("the model took too long".into())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(content: &str) -> Vec<u8> {
        json!({"choices": [{"message": {"content": content}}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn reads_json_pages() {
        let story = parse_answer(
            &wrap(r#"{"title": "Sky", "pages": ["One.", {"text": "Two."}, "Three."]}"#),
            2,
        )
        .unwrap();
        assert_eq!(story.title, "Sky");
        assert_eq!(story.pages, ["One.", "Two."]);
    }

    #[test]
    fn quotes_config_values() {
        assert_eq!(quote(r#"{"a":"b\\c"}"#), r#""{\"a\":\"b\\\\c\"}""#);
        assert_eq!(quote("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse_answer(b"<html>", 3).is_err());
        assert!(parse_answer(&wrap("not json"), 3).is_err());
        assert!(parse_answer(&wrap(r#"{"title": "x", "pages": []}"#), 3).is_err());
        assert!(parse_answer(&wrap(r#"{"pages": ["a"]}"#), 3).is_err());
    }
}
