//! The story tools' settings: the story generator and text recognition.

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::{Secret, ServeArgs};

/// The story generator and text recognition.
#[derive(Debug, Clone, Args)]
pub struct ToolArgs {
    /// Which story generator `POST /api/stories/generate` uses.
    #[arg(long, env = "STORY_GENERATOR", value_enum, default_value_t = GeneratorKind::Builtin)]
    pub story_generator: GeneratorKind,

    /// Base URL of an OpenAI-compatible API (`/chat/completions` is appended).
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    pub openai_base_url: String,

    /// API key for the OpenAI-compatible API.
    #[arg(long, env = "OPENAI_API_KEY")]
    pub openai_api_key: Option<Secret>,

    /// Model name sent to the OpenAI-compatible API.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4o-mini")]
    pub openai_model: String,

    /// Seconds the remote model may take before the answer is `503`.
    #[arg(long, env = "OPENAI_TIMEOUT_SECS", default_value_t = 20)]
    pub openai_timeout_secs: u64,

    /// Most bytes of the remote model's answer that are read.
    #[arg(long, env = "OPENAI_MAX_RESPONSE_BYTES", default_value_t = 256 * 1024)]
    pub openai_max_response_bytes: usize,

    /// The curl command that makes the requests to the OpenAI-compatible API.
    #[arg(long, env = "CURL_COMMAND", default_value = "curl")]
    pub curl_command: String,

    /// Requests to the OpenAI-compatible API at once (each is a curl process
    /// of a few MB); more wait within the time-out.
    #[arg(long, env = "OPENAI_CONCURRENCY", default_value_t = 4)]
    pub openai_concurrency: usize,

    /// The Tesseract command used for photo stories.
    #[arg(long, env = "TESSERACT_COMMAND", default_value = "tesseract")]
    pub tesseract_command: String,

    /// Tesseract language(s), as for `tesseract -l`.
    #[arg(long, env = "OCR_LANGUAGE", default_value = "eng")]
    pub ocr_language: String,

    /// Largest photo, in pixels (checked from the header before decoding).
    #[arg(long, env = "OCR_MAX_PIXELS", default_value_t = 25_000_000)]
    pub ocr_max_pixels: u64,

    /// Largest photo upload, in bytes.
    #[arg(long, env = "OCR_MAX_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub ocr_max_bytes: usize,

    /// Seconds one recognition may take.
    #[arg(long, env = "OCR_TIMEOUT_SECS", default_value_t = 30)]
    pub ocr_timeout_secs: u64,

    /// Recognitions at once (each runs a Tesseract process of ~40 MB).
    #[arg(long, env = "OCR_CONCURRENCY", default_value_t = 1)]
    pub ocr_concurrency: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GeneratorKind {
    Builtin,
    Openai,
}

impl Default for ToolArgs {
    fn default() -> Self {
        ServeArgs::parse_from(["storybook"]).tools
    }
}

impl ToolArgs {
    pub fn ocr_settings(&self) -> storybook_ocr::OcrSettings {
        // The preparation is this very binary, run as a child.
        let this_binary = std::env::current_exe().unwrap_or_else(|_| "storybook".into());
        storybook_ocr::OcrSettings {
            command: self.tesseract_command.clone().into(),
            prepare_command: vec![this_binary.into(), "photo-prepare".into()],
            language: self.ocr_language.clone(),
            max_pixels: self.ocr_max_pixels,
            max_bytes: self.ocr_max_bytes,
            timeout: Duration::from_secs(self.ocr_timeout_secs.max(1)),
            concurrency: self.ocr_concurrency.max(1),
        }
    }

    /// The configured generator.
    pub fn generator(&self) -> Result<std::sync::Arc<dyn storybook_storygen::Generator>, String> {
        Ok(match self.story_generator {
            GeneratorKind::Builtin => std::sync::Arc::new(storybook_storygen::Builtin),
            GeneratorKind::Openai => std::sync::Arc::new(
                storybook_storygen::OpenAi::new(storybook_storygen::OpenAiSettings {
                    base_url: self.openai_base_url.clone(),
                    api_key: self
                        .openai_api_key
                        .as_ref()
                        .map(|k| k.expose().to_owned())
                        .unwrap_or_default(),
                    model: self.openai_model.clone(),
                    timeout: Duration::from_secs(self.openai_timeout_secs.max(1)),
                    max_response_bytes: self.openai_max_response_bytes,
                    curl_command: self.curl_command.clone().into(),
                    concurrency: self.openai_concurrency.max(1),
                })
                .map_err(|e| e.to_string())?,
            ),
        })
    }
}
