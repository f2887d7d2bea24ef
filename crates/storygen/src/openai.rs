//! Any OpenAI-compatible chat-completions endpoint, asked for JSON pages,
//! with a time-out and a bound on how much of the answer is read.

use std::time::Duration;

use serde_json::{Value, json};

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
}

pub struct OpenAi {
    settings: OpenAiSettings,
    client: reqwest::Client,
}

impl OpenAi {
    pub fn new(settings: OpenAiSettings) -> Result<Self, GenerateError> {
        // reqwest is built with rustls but no crypto provider of its own
        // (aws-lc would double the build); ring is installed once here.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| GenerateError::Unavailable(e.to_string()))?;
        Ok(Self { settings, client })
    }

    async fn call(&self, request: &Request) -> Result<Generated, GenerateError> {
        let unavailable = |why: String| GenerateError::Unavailable(why);
        let system = "You write short, kind, age-appropriate stories for children. \
            Answer with a JSON object only: {\"title\": string, \"pages\": [string, ...]}.";
        let user = format!(
            "Write a {} story for children aged {} in exactly {} pages (a few sentences each) about: {}",
            request.genre, request.age_group, request.pages, request.prompt
        );
        let body = json!({
            "model": self.settings.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "response_format": {"type": "json_object"},
            "temperature": 0.8,
        });
        let url = format!(
            "{}/chat/completions",
            self.settings.base_url.trim_end_matches('/')
        );
        let mut response = self
            .client
            .post(url)
            .bearer_auth(&self.settings.api_key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| unavailable(format!("request failed: {e}")))?;
        if !response.status().is_success() {
            return Err(unavailable(format!(
                "the model answered {}",
                response.status()
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(e.to_string()))?
        {
            if bytes.len() + chunk.len() > self.settings.max_response_bytes {
                return Err(unavailable("the answer was too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        parse_answer(&bytes, request.pages)
    }
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
            // The client's own time-out covers each phase; this bounds the whole.
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
    fn refuses_garbage() {
        assert!(parse_answer(b"<html>", 3).is_err());
        assert!(parse_answer(&wrap("not json"), 3).is_err());
        assert!(parse_answer(&wrap(r#"{"title": "x", "pages": []}"#), 3).is_err());
        assert!(parse_answer(&wrap(r#"{"pages": ["a"]}"#), 3).is_err());
    }
}
